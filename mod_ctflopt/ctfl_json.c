/* ctfl_json — strict decoding of Experience API responses (spec §1.6, §4.4).
 *
 * The response is validated against the SDK schema with a small table of
 * fields per object; the copy handed on keeps only schema keys (zod's
 * z.object strips the others), except the Page objects, which allow extra keys.
 * Every json_t is released before returning: callers only see pool strings. */
#include "ctfl_json.h"
#include "ctfl_value.h"
#include "ctfl_json_value.h"

#include <jansson.h>
#include <apr_strings.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* Hard ceilings independent of configuration: the HTTP layer already caps the
 * body (CtflOpt max response); these protect direct callers and the fuzzer. */
#define JSON_MAX_INPUT  (16u * 1024u * 1024u)
#define JSON_MAX_DEPTH  64        /* real payloads nest < 10 levels; jansson allows 2048 */
#define ERROR_CODE_MAX  64

typedef enum {
    F_STRING, F_NUMBER, F_BOOL,
    F_OBJECT,          /* any JSON object, kept whole (traits) */
    F_STRING_ARRAY,    /* string[] */
    F_STRING_MAP,      /* object string -> string */
    F_COUNTRY_CODE,    /* string of exactly 2 UTF-16 units (zod length(2)) */
    F_VARIABLE,        /* the literal "Variable" */
    F_CHANGE_VALUE,    /* string | bool | null | number | object, never an array */
    F_NESTED           /* object validated by field.nested */
} field_kind;

typedef struct object_schema object_schema;

typedef struct {
    const char *key;
    field_kind kind;
    int optional;
    const object_schema *nested;
} field;

struct object_schema {
    const field *fields;
    size_t n;
    int keep_extra;    /* Page: unknown keys are part of the schema (any JSON) */
};

#define SCHEMA(name, extra) \
    static const object_schema name = { name##_fields, sizeof(name##_fields) / sizeof(field), extra }

static const field coordinates_fields[] = {
    { "latitude", F_NUMBER, 0, NULL },
    { "longitude", F_NUMBER, 0, NULL },
};
SCHEMA(coordinates, 0);

static const field location_fields[] = {
    { "coordinates", F_NESTED, 1, &coordinates },
    { "city", F_STRING, 1, NULL },
    { "postalCode", F_STRING, 1, NULL },
    { "region", F_STRING, 1, NULL },
    { "regionCode", F_STRING, 1, NULL },
    { "country", F_STRING, 1, NULL },
    { "countryCode", F_COUNTRY_CODE, 1, NULL },
    { "continent", F_STRING, 1, NULL },
    { "timezone", F_STRING, 1, NULL },
};
SCHEMA(location, 0);

static const field page_fields[] = {
    { "path", F_STRING, 0, NULL },
    { "query", F_STRING_MAP, 0, NULL },
    { "referrer", F_STRING, 0, NULL },
    { "search", F_STRING, 0, NULL },
    { "url", F_STRING, 0, NULL },
    { "title", F_STRING, 1, NULL },
};
SCHEMA(page, 1);

static const field session_fields[] = {
    { "id", F_STRING, 0, NULL },
    { "isReturningVisitor", F_BOOL, 0, NULL },
    { "landingPage", F_NESTED, 0, &page },
    { "count", F_NUMBER, 0, NULL },
    { "activeSessionLength", F_NUMBER, 0, NULL },
    { "averageSessionLength", F_NUMBER, 0, NULL },
};
SCHEMA(session, 0);

static const field profile_fields[] = {
    { "id", F_STRING, 0, NULL },
    { "stableId", F_STRING, 0, NULL },
    { "random", F_NUMBER, 0, NULL },
    { "audiences", F_STRING_ARRAY, 0, NULL },
    { "traits", F_OBJECT, 0, NULL },
    { "location", F_NESTED, 0, &location },
    { "session", F_NESTED, 0, &session },
};
SCHEMA(profile, 0);

static const field selection_fields[] = {
    { "experienceId", F_STRING, 0, NULL },
    { "variantIndex", F_NUMBER, 0, NULL },
    { "variants", F_STRING_MAP, 0, NULL },
    { "sticky", F_BOOL, 1, NULL },
};
SCHEMA(selection, 0);

static const field change_meta_fields[] = {
    { "experienceId", F_STRING, 0, NULL },
    { "variantIndex", F_NUMBER, 0, NULL },
};
SCHEMA(change_meta, 0);

static const field change_fields[] = {
    { "key", F_STRING, 0, NULL },
    { "type", F_VARIABLE, 0, NULL },
    { "value", F_CHANGE_VALUE, 0, NULL },
    { "meta", F_NESTED, 0, &change_meta },
};
SCHEMA(change, 0);

typedef struct {
    apr_pool_t *p;
    const char *err;
} ctx;

/* Where a value sits, rendered only when a reason is needed. */
typedef struct path_seg {
    const struct path_seg *up;
    const char *key;               /* NULL: array element */
    size_t index;
} path_seg;

static char *render(apr_pool_t *p, const path_seg *at)
{
    char *up;
    if (!at) return "";
    up = render(p, at->up);
    return at->key ? apr_pstrcat(p, up, *up ? "." : "", at->key, NULL)
                   : apr_psprintf(p, "%s[%lu]", up, (unsigned long)at->index);
}

static int fail(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->err = apr_pstrcat(c->p, "schema: ", apr_pvsprintf(c->p, fmt, ap), NULL);
    va_end(ap);
    return -1;
}

static int fail_at(ctx *c, const path_seg *at, const char *what)
{
    return fail(c, "%s %s", render(c->p, at), what);
}

/* Cheap pre-scan so that hostile nesting is refused before jansson recurses. */
static int nesting_ok(const char *s, apr_size_t n, int max_depth)
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
            if (++depth > max_depth) return 0;
        } else if ((ch == '}' || ch == ']') && depth > 0) {
            depth--;
        }
    }
    return 1;
}

/* Parse with the input bounds; *why gets a loggable reason on failure. */
static json_t *load(apr_pool_t *p, const char *body, apr_size_t len, const char **why)
{
    json_error_t je;
    json_t *root;
    if (!body || len == 0) { *why = "bad json: empty body"; return NULL; }
    if (len > JSON_MAX_INPUT) { *why = "bad json: body too large"; return NULL; }
    if (!nesting_ok(body, len, JSON_MAX_DEPTH)) { *why = "bad json: nested too deep"; return NULL; }
    root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!root) {
        /* jansson quotes input bytes near the error: keep the log line clean. */
        char *text = apr_pstrndup(p, je.text, 80);
        for (char *t = text; *t; t++)
            if ((unsigned char)*t < 0x20 || (unsigned char)*t > 0x7e) *t = '?';
        *why = apr_psprintf(p, "bad json: %s at offset %d", text, je.position);
    }
    return root;
}

/* Length in UTF-16 code units, as JavaScript counts string length. */
static size_t utf16_length(const char *s)
{
    size_t n = 0;
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if ((*u & 0xC0) != 0x80) n += (*u >= 0xF0) ? 2 : 1;
    }
    return n;
}

static const char *type_name(field_kind k)
{
    switch (k) {
    case F_STRING: case F_COUNTRY_CODE: return "a string";
    case F_NUMBER: return "a number";
    case F_BOOL: return "a boolean";
    case F_STRING_ARRAY: return "an array";
    case F_VARIABLE: return "\"Variable\"";
    case F_CHANGE_VALUE: return "a string, boolean, null, number or object";
    default: return "an object";
    }
}

static int copy_object(ctx *c, const object_schema *s, json_t *in, const path_seg *at, json_t **out);

/* Validate one present value; *out receives a new reference to what is kept. */
static int copy_value(ctx *c, const field *f, json_t *v, const path_seg *at, json_t **out)
{
    int ok = 0;
    size_t i;
    const char *k;
    json_t *item;

    switch (f->kind) {
    case F_STRING: ok = json_is_string(v); break;
    case F_NUMBER: ok = json_is_number(v); break;
    case F_BOOL: ok = json_is_boolean(v); break;
    case F_OBJECT: case F_STRING_MAP: ok = json_is_object(v); break;
    case F_STRING_ARRAY: ok = json_is_array(v); break;
    case F_COUNTRY_CODE: ok = json_is_string(v); break;
    case F_VARIABLE: ok = json_is_string(v) && strcmp(json_string_value(v), "Variable") == 0; break;
    case F_CHANGE_VALUE: ok = !json_is_array(v); break;
    case F_NESTED:
        if (!json_is_object(v)) break;
        return copy_object(c, f->nested, v, at, out);
    }
    if (f->kind == F_NESTED || !ok)
        return fail_at(c, at, apr_pstrcat(c->p, "not ", type_name(f->kind), NULL));

    if (f->kind == F_COUNTRY_CODE && utf16_length(json_string_value(v)) != 2)
        return fail_at(c, at, "not 2 characters");
    if (f->kind == F_STRING_ARRAY) {
        json_array_foreach(v, i, item)
            if (!json_is_string(item)) {
                path_seg el = { at, NULL, i };
                return fail_at(c, &el, "not a string");
            }
    }
    if (f->kind == F_STRING_MAP) {
        json_object_foreach(v, k, item)
            if (!json_is_string(item)) return fail_at(c, at, "has a value that is not a string");
    }
    *out = json_incref(v);
    return 0;
}

static int copy_object(ctx *c, const object_schema *s, json_t *in, const path_seg *at, json_t **out)
{
    json_t *o = json_object();
    if (!o) return fail(c, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        const field *f = &s->fields[i];
        const path_seg here = { at, f->key, 0 };
        json_t *v = json_object_get(in, f->key), *kept = NULL;
        if (!v) {
            if (f->optional) continue;
            json_decref(o);
            return fail_at(c, &here, "missing");
        }
        if (copy_value(c, f, v, &here, &kept) != 0 || json_object_set_new(o, f->key, kept) != 0) {
            json_decref(o);
            return c->err ? -1 : fail(c, "out of memory");
        }
    }
    if (s->keep_extra) {
        const char *k;
        json_t *v;
        json_object_foreach(in, k, v)
            if (!json_object_get(o, k) && json_object_set(o, k, v) != 0) {
                json_decref(o);
                return fail(c, "out of memory");
            }
    }
    *out = o;
    return 0;
}

static int copy_array(ctx *c, const object_schema *s, json_t *in, const path_seg *at, json_t **out)
{
    size_t i;
    json_t *item, *a;
    if (!json_is_array(in)) return fail_at(c, at, "not an array");
    if (!(a = json_array())) return fail(c, "out of memory");
    json_array_foreach(in, i, item) {
        const path_seg el = { at, NULL, i };
        json_t *kept;
        if (!json_is_object(item)) {
            json_decref(a);
            return fail_at(c, &el, "not an object");
        }
        if (copy_object(c, s, item, &el, &kept) != 0 || json_array_append_new(a, kept) != 0) {
            json_decref(a);
            return c->err ? -1 : fail(c, "out of memory");
        }
    }
    *out = a;
    return 0;
}

/* Compact, printable-ASCII JSON, fit for an HTTP header (X-Ctfl-Opt-Flags) as well
 * as for the page. jansson leaves DEL (0x7f) raw and prints reals with 17 digits
 * (0.92750211849983366); strings get "\u007F" and numbers JavaScript's shortest
 * form (0.9275021184998337), so the browser sees the values the API sent. */
static const char *dump(apr_pool_t *p, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
    apr_array_header_t *out;
    int in_string = 0;
    const char *c;

    if (!s) return NULL;
    out = apr_array_make(p, (int)strlen(s) + 16, 1);
    for (c = s; *c; c++) {
        if (in_string) {
            if (*c == 0x7f) {
                for (const char *e = "\\u007F"; *e; e++) *(char *)apr_array_push(out) = *e;
                continue;
            }
            if (*c == '\\') *(char *)apr_array_push(out) = *c++;
            else if (*c == '"') in_string = 0;
        }
        else if (*c == '"') in_string = 1;
        else if (*c == '-' || (*c >= '0' && *c <= '9')) {
            apr_size_t n = strspn(c, "0123456789+-.eE");
            const char *num = c;
            if (memchr(c, '.', n) || memchr(c, 'e', n) || memchr(c, 'E', n))
                num = ctfl_js_number(p, strtod(c, NULL));
            else
                num = apr_pstrmemdup(p, c, n);
            for (; *num; num++) *(char *)apr_array_push(out) = *num;
            c += n - 1;
            continue;
        }
        *(char *)apr_array_push(out) = *c;
    }
    *(char *)apr_array_push(out) = '\0';
    free(s);
    return out->elts;
}

/* JS numbers may be fractional or huge: truncate toward zero and clamp to
 * ±2^53, which keeps every value the resolver could meaningfully index. */
static long number_to_long(const json_t *v)
{
    const double limit = 9007199254740992.0;
    double d = json_number_value(v);
    if (d > limit) d = limit;
    if (d < -limit) d = -limit;
    return (long)trunc(d);
}

/* Ids go into an env var and a forwarded header: percent-encode anything
 * outside the unreserved set (real experience ids are alphanumeric). */
static const char *list_token(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = apr_palloc(p, 3 * n + 1), *o = out;
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if ((*u >= 'A' && *u <= 'Z') || (*u >= 'a' && *u <= 'z') || (*u >= '0' && *u <= '9')
            || *u == '-' || *u == '_' || *u == '.' || *u == '~') {
            *o++ = (char)*u;
        } else {
            *o++ = '%';
            *o++ = hex[*u >> 4];
            *o++ = hex[*u & 15];
        }
    }
    *o = '\0';
    return out;
}

/* JSON strings may hold U+0000 (traits keep it), but an identifier we turn into a
 * C string, a cookie or a header must not: it would be silently truncated. */
static int has_nul(const json_t *str)
{
    return json_string_length(str) != strlen(json_string_value(str));
}

static ctfl_value *copy(apr_pool_t *p, json_t *j);

static int build_selections(ctx *c, json_t *exps, ctfl_experience_data *d)
{
    size_t i;
    json_t *e;
    apr_array_header_t *tokens = apr_array_make(c->p, (int)json_array_size(exps) + 1, sizeof(char *));
    d->selections = apr_array_make(c->p, (int)json_array_size(exps) + 1, sizeof(ctfl_selection));
    json_array_foreach(exps, i, e) {
        ctfl_selection *s = apr_array_push(d->selections);
        json_t *sticky = json_object_get(e, "sticky");
        if (has_nul(json_object_get(e, "experienceId")))
            return fail(c, "data.experiences[%lu].experienceId contains U+0000", (unsigned long)i);
        s->experience_id = apr_pstrdup(c->p, json_string_value(json_object_get(e, "experienceId")));
        s->variant_index = number_to_long(json_object_get(e, "variantIndex"));
        s->sticky = sticky ? json_is_true(sticky) : -1;
        APR_ARRAY_PUSH(tokens, const char *) =
            apr_psprintf(c->p, "%s:%ld", list_token(c->p, s->experience_id), s->variant_index);
    }
    d->experiences_list = apr_array_pstrcat(c->p, tokens, ',');
    return 0;
}

/* Spec §4.4: fold left, later keys overwrite; {value: <object|array|null>} unwraps. */
static int build_flags(ctx *c, json_t *changes, ctfl_experience_data *d)
{
    size_t i;
    json_t *ch, *flags = json_object();
    if (!flags) return fail(c, "out of memory");
    json_array_foreach(changes, i, ch) {
        json_t *value = json_object_get(ch, "value");
        json_t *inner = json_is_object(value) ? json_object_get(value, "value") : NULL;
        if (inner && (json_is_object(inner) || json_is_array(inner) || json_is_null(inner)))
            value = inner;
        if (has_nul(json_object_get(ch, "key"))) {
            json_decref(flags);
            return fail(c, "data.changes[%lu].key contains U+0000", (unsigned long)i);
        }
        if (json_object_set(flags, json_string_value(json_object_get(ch, "key")), value) != 0) {
            json_decref(flags);
            return fail(c, "out of memory");
        }
    }
    d->flags_json = dump(c->p, flags);
    d->flags = copy(c->p, flags);
    json_decref(flags);
    return d->flags_json ? 0 : fail(c, "out of memory");
}

static int decode_root(ctx *c, json_t *root, ctfl_experience_data *d)
{
    static const path_seg at_data = { NULL, "data", 0 };
    static const path_seg at_profile = { &at_data, "profile", 0 };
    static const path_seg at_experiences = { &at_data, "experiences", 0 };
    static const path_seg at_changes = { &at_data, "changes", 0 };
    json_t *data, *err, *msg, *prof = NULL, *exps = NULL, *changes = NULL;
    int rc = -1;

    if (!json_is_object(root)) return fail(c, "response not an object");
    msg = json_object_get(root, "message");
    if (!json_is_string(msg)) return fail(c, "message %s", msg ? "not a string" : "missing");
    err = json_object_get(root, "error");
    if (!err) return fail(c, "error missing");
    if (!json_is_boolean(err) && !json_is_null(err)) return fail(c, "error not a boolean or null");
    data = json_object_get(root, "data");
    if (!json_is_object(data)) return fail(c, "data %s", data ? "not an object" : "missing");

    if (!json_object_get(data, "profile")) return fail(c, "data.profile missing");
    if (!json_is_object(json_object_get(data, "profile"))) return fail(c, "data.profile not an object");
    if (!json_object_get(data, "experiences")) return fail(c, "data.experiences missing");
    if (!json_object_get(data, "changes")) return fail(c, "data.changes missing");

    if (copy_object(c, &profile, json_object_get(data, "profile"), &at_profile, &prof) == 0
        && copy_array(c, &selection, json_object_get(data, "experiences"), &at_experiences, &exps) == 0
        && copy_array(c, &change, json_object_get(data, "changes"), &at_changes, &changes) == 0
        && build_selections(c, exps, d) == 0
        && build_flags(c, changes, d) == 0
        && (!has_nul(json_object_get(prof, "id")) || fail(c, "data.profile.id contains U+0000") == 0)) {
        d->profile_id = apr_pstrdup(c->p, json_string_value(json_object_get(prof, "id")));
        d->profile_json = dump(c->p, prof);
        d->selections_json = dump(c->p, exps);
        d->profile = copy(c->p, prof);
        d->experiences = copy(c->p, exps);
        d->changes_json = dump(c->p, changes);
        rc = (d->profile_json && d->selections_json && d->changes_json) ? 0 : fail(c, "out of memory");
    }
    json_decref(prof);
    json_decref(exps);
    json_decref(changes);
    return rc;
}

int ctfl_json_decode_experience(apr_pool_t *p, const char *body, apr_size_t len,
                                ctfl_experience_data **out, const char **err)
{
    ctx c = { p, NULL };
    ctfl_experience_data *d;
    json_t *root;

    *out = NULL;
    *err = NULL;
    if (!(root = load(p, body, len, err))) return -1;
    d = apr_pcalloc(p, sizeof(*d));
    if (decode_root(&c, root, d) != 0) {
        json_decref(root);
        *err = c.err;
        return -1;
    }
    json_decref(root);
    *out = d;
    return 0;
}

/* Only a plain token is returned, so it can be logged and compared safely. */
static int error_code_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ERROR_CODE_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
              || *s == '_' || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

const char *ctfl_json_error_code(apr_pool_t *p, const char *body, apr_size_t len)
{
    const char *why, *result = NULL;
    json_t *root = load(p, body, len, &why), *code;
    if (!root) return NULL;
    /* The documented envelope has error.code at the top level; accept it
     * under data as well, the header's historical wording. */
    code = json_object_get(json_object_get(root, "error"), "code");
    if (!code) code = json_object_get(json_object_get(json_object_get(root, "data"), "error"), "code");
    if (json_is_string(code) && error_code_ok(json_string_value(code)))
        result = apr_pstrdup(p, json_string_value(code));
    json_decref(root);
    return result;
}

const char *ctfl_json_version(void)
{
    return "jansson " JANSSON_VERSION;
}

/* ---- any JSON text as a ctfl_value tree (CDA entries, rich text, profiles) ----
 * jansson parse, then a copy into pool memory. The nesting is checked by the byte
 * scan above before jansson recurses, so the copy is bounded by
 * CTFL_VALUE_MAX_DEPTH; the json_t tree is released before returning. */

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
    if (!nesting_ok(text, len, CTFL_VALUE_MAX_DEPTH)) { *err = "bad json: nested too deep"; return -1; }
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
