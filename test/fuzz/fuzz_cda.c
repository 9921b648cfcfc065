/* libFuzzer target: CDA response decoding and what is built from it.
 *
 * Each input is a CDA collection response: ctfl_cda_decode splits it into raw
 * objects, ctfl_entries resolves its links (cycle-safe), and every entry found
 * is resolved against a fixed selection list and serialized back, so the
 * decoder, the link graph walk, the resolver and the serializer all see hostile
 * graphs. Built and run by `make -f apxs.mk fuzz`. */
#include <apr_general.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctfl_cda.h"
#include "ctfl_entries.h"
#include "ctfl_json.h"
#include "ctfl_json_value.h"
#include "ctfl_resolve.h"

static apr_pool_t *root_pool;

static const char *const selections_json =
    "[{\"experienceId\":\"2qVK4T5lnScbswoyBuGipd\",\"variantIndex\":1},"
    "{\"experienceId\":\"1FHhEY0xkcCC9R5WCmnjRr\",\"variantIndex\":1,\"sticky\":true},"
    "{\"experienceId\":\"x\",\"variantIndex\":-1}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    ctfl_cda_result res = { 0 };
    const char *reason, *err;
    ctfl_entries *entries;
    ctfl_value *sel_value;
    apr_array_header_t *selections, *ids;

    if (!root_pool) {
        apr_initialize();
        if (apr_pool_create(&root_pool, NULL) != APR_SUCCESS) abort();
    }
    apr_pool_create(&p, root_pool);

    (void)ctfl_cda_decode(p, (const char *)data, size, NULL, 0, &res, &reason);

    entries = ctfl_entries_make(p);
    if (ctfl_entries_add_json(entries, (const char *)data, size, &err) == 0
        && ctfl_json_parse_value(p, selections_json, strlen(selections_json), &sel_value, &err) == 0
        && ctfl_selections_from_value(p, sel_value, &selections) == 0) {
        ids = ctfl_entries_ids(entries, p);
        for (int i = 0; i < ids->nelts; i++) {
            const char *id = APR_ARRAY_IDX(ids, i, const char *);
            const ctfl_value *e = ctfl_entries_entry(entries, id);
            ctfl_resolution r;
            ctfl_resolve(e, selections, &r);
            (void)ctfl_tracking_attributes(p, id, &r, NULL);
            (void)ctfl_value_to_json(p, e);    /* NULL on cycles: bounded, never loops */
        }
    }
    apr_pool_destroy(p);
    return 0;
}
