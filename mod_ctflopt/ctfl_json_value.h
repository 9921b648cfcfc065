/* ctfl_json_value — JSON text to a ctfl_value tree. Implemented in ctfl_json.c,
 * the one file that decodes with jansson. */
#ifndef CTFL_JSON_VALUE_H
#define CTFL_JSON_VALUE_H

#include <apr_pools.h>
#include "ctfl_value.h"

/* Ceiling on the text accepted (CDA responses are far smaller). */
#define CTFL_JSON_VALUE_MAX_INPUT (16u * 1024u * 1024u)

/* Parse one JSON text (any value at the top level) into pool memory.
 * Refused: more than CTFL_JSON_VALUE_MAX_INPUT bytes, nesting deeper than
 * CTFL_VALUE_MAX_DEPTH, invalid JSON or UTF-8, "\u0000" in strings, numbers
 * that overflow a double. Integers are read as doubles, like JSON.parse;
 * a repeated key keeps its first position and its last value (JSON.parse).
 * Returns 0 and *out, or -1 and *err ("bad json: ..."). */
int ctfl_json_parse_value(apr_pool_t *p, const char *text, apr_size_t len,
                          ctfl_value **out, const char **err);

#endif
