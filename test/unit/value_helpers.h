/* JSON test data as ctfl_value trees, for the tests of the entry model and the
 * resolver. Fails the running test on bad data. */
#ifndef CTFL_VALUE_HELPERS_H
#define CTFL_VALUE_HELPERS_H

#include "unit.h"
#include "ctfl_json_value.h"

/* test/unit/data (or $CTFL_UNIT_DATA), relative to the repository root. */
static inline const char *data_dir(void)
{
    const char *d = getenv("CTFL_UNIT_DATA");
    return d && *d ? d : "test/unit/data";
}

static inline ctfl_value *parse(apr_pool_t *p, const char *json)
{
    ctfl_value *v = NULL;
    const char *err = NULL;
    if (ctfl_json_parse_value(p, json, strlen(json), &v, &err) != 0) fail_msg("%s: %s", err, json);
    return v;
}

static inline ctfl_value *parse_file(apr_pool_t *p, const char *path)
{
    apr_size_t len = 0;
    char *text = unit_read_file(p, path, &len);
    ctfl_value *v = NULL;
    const char *err = NULL;
    if (!text) fail_msg("missing file: %s (run from the repo root, set CTFL_SHARED)", path);
    if (ctfl_json_parse_value(p, text, len, &v, &err) != 0) fail_msg("%s: %s", path, err);
    return v;
}

#endif
