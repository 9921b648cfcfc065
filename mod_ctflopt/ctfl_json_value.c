/* ctfl_json_value — jansson parse, then a copy into pool memory.
 *
 * The nesting is checked by a byte scan before jansson recurses, so the copy
 * below is bounded by CTFL_VALUE_MAX_DEPTH. The json_t tree is released
 * before returning: callers only ever see ctfl_value. */
#include "ctfl_json_value.h"

#include <jansson.h>
#include <apr_strings.h>
#include <string.h>

static int nesting_ok(const char *s, apr_size_t n)
{
    int depth = 0, in_string = 0;
    for (apr_size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_string) {
            if (ch == '\\') i++;
            else if (ch == '"') in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '{' || ch == '[') {
            if (++depth > CTFL_VALUE_MAX_DEPTH) return 0;
        } else if ((ch == '}' || ch == ']') && depth > 0) {
            depth--;
        }
    }
    return 1;
}

static ctfl_value *copy(apr_pool_t *p, json_t *j)
{
    ctfl_value *v;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        apr_size_t i = 0, n = json_object_size(j);
        v = ctfl_value_new(p, CTFL_V_OBJECT);
        v->u.obj.keys = apr_palloc(p, (n ? n : 1) * sizeof(*v->u.obj.keys));
        v->u.obj.vals = apr_palloc(p, (n ? n : 1) * sizeof(*v->u.obj.vals));
        json_object_foreach(j, key, member) {   /* jansson keeps insertion order */
            if (i == n) break;
            v->u.obj.keys[i] = apr_pstrdup(p, key);
            v->u.obj.vals[i] = copy(p, member);
            i++;
        }
        v->u.obj.n = i;
        return v;
    }
    case JSON_ARRAY: {
        apr_size_t n = json_array_size(j);
        v = ctfl_value_new(p, CTFL_V_ARRAY);
        v->u.arr.items = apr_palloc(p, (n ? n : 1) * sizeof(*v->u.arr.items));
        for (apr_size_t i = 0; i < n; i++) v->u.arr.items[i] = copy(p, json_array_get(j, i));
        v->u.arr.n = n;
        return v;
    }
    case JSON_STRING:
        v = ctfl_value_new(p, CTFL_V_STRING);
        v->u.str.len = json_string_length(j);
        v->u.str.s = apr_pstrmemdup(p, json_string_value(j), v->u.str.len);
        return v;
    case JSON_INTEGER:
    case JSON_REAL:
        return ctfl_value_number(p, json_number_value(j));
    case JSON_TRUE:
        return ctfl_value_bool(p, 1);
    case JSON_FALSE:
        return ctfl_value_bool(p, 0);
    default:
        return ctfl_value_new(p, CTFL_V_NULL);
    }
}

int ctfl_json_parse_value(apr_pool_t *p, const char *text, apr_size_t len,
                          ctfl_value **out, const char **err)
{
    json_error_t je;
    json_t *root;
    *out = NULL;
    if (!text || len == 0) { *err = "bad json: empty"; return -1; }
    if (len > CTFL_JSON_VALUE_MAX_INPUT) { *err = "bad json: too large"; return -1; }
    if (!nesting_ok(text, len)) { *err = "bad json: nested too deep"; return -1; }
    root = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
    if (!root) {
        /* jansson quotes input bytes near the error: keep the log line clean. */
        char *t = apr_pstrndup(p, je.text, 80);
        for (char *c = t; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '?';
        *err = apr_psprintf(p, "bad json: %s at offset %d", t, je.position);
        return -1;
    }
    *out = copy(p, root);
    json_decref(root);
    return 0;
}
