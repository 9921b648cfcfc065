/* ctfl_value — an immutable, pool-allocated JSON value tree.
 *
 * The model for Contentful entries, rich text documents and profiles: the
 * official SDK resolves and renders plain JS objects, and so do we. CDA links
 * are resolved by swapping the link object for the entry object, so the graph
 * may contain cycles: every recursive walk must carry a depth bound or a
 * visited set. Only ctfl_json.c builds values from JSON text (jansson). */
#ifndef CTFL_VALUE_H
#define CTFL_VALUE_H

#include <apr_pools.h>

typedef enum {
    CTFL_V_NULL = 0, CTFL_V_BOOL, CTFL_V_NUMBER, CTFL_V_STRING, CTFL_V_ARRAY, CTFL_V_OBJECT
} ctfl_vtype;

typedef struct ctfl_value ctfl_value;
struct ctfl_value {
    ctfl_vtype type;
    union {
        int b;
        double n;
        struct { const char *s; apr_size_t len; } str;          /* UTF-8, NUL-terminated */
        struct { ctfl_value **items; apr_size_t n; } arr;
        struct { const char **keys; ctfl_value **vals; apr_size_t n; } obj;  /* key order kept */
    } u;
};

/* Object member (first match) or NULL; NULL-safe on any input. */
const ctfl_value *ctfl_value_get(const ctfl_value *obj, const char *key);
/* Dotted path of object members, e.g. "sys.contentType.sys.id"; NULL when missing.
 * Split on every '.' (an empty segment is the key ""), first match per object. */
const ctfl_value *ctfl_value_path(const ctfl_value *v, const char *dotted);
/* The string, or NULL when v is not a string. */
const char *ctfl_value_str(const ctfl_value *v);
int ctfl_value_is(const ctfl_value *v, ctfl_vtype t);
apr_size_t ctfl_value_len(const ctfl_value *v);              /* array length, else 0 */
const ctfl_value *ctfl_value_at(const ctfl_value *v, apr_size_t i);

/* JS-style truthiness: false, 0, NaN, "" and null are falsy; objects/arrays truthy. */
int ctfl_value_truthy(const ctfl_value *v);
/* A number formatted like JavaScript's String(n) (shortest round-trip, no ".0"). */
char *ctfl_js_number(apr_pool_t *p, double n);

/* Constructors (tests, synthetic values). */
ctfl_value *ctfl_value_new(apr_pool_t *p, ctfl_vtype t);
ctfl_value *ctfl_value_string(apr_pool_t *p, const char *s);
ctfl_value *ctfl_value_number(apr_pool_t *p, double n);
ctfl_value *ctfl_value_bool(apr_pool_t *p, int b);

/* Nesting bound shared by the JSON decoder and every recursive walk. */
#define CTFL_VALUE_MAX_DEPTH 128

/* Compact JSON exactly as JavaScript's JSON.stringify writes it (key order
 * kept, JS number formatting, non-finite numbers as null). NULL when the
 * value nests deeper than CTFL_VALUE_MAX_DEPTH (always the case for a
 * cyclic graph) or the output would exceed 64 MiB. */
char *ctfl_value_to_json(apr_pool_t *p, const ctfl_value *v);

#endif
