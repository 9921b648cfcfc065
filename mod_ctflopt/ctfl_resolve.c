/* ctfl_resolve — OptimizedEntryResolver, MergeTagValueResolver and the
 * tracking-attribute mapping of the official SDK, on ctfl_value.
 *
 * The predicates mirror the SDK's zod schemas field by field: z.optional(X)
 * accepts an absent key only (a JSON null fails unless X is nullable), z.object
 * ignores unknown keys. None of them recurses into consumer fields, so cyclic
 * entry graphs are safe everywhere in this file. */
#include "ctfl_resolve.h"
#include "ctfl_json.h"

#include <apr_strings.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- small zod-like checks ----------------------------------------------- */

static int is_record(const ctfl_value *v)
{
    return ctfl_value_is(v, CTFL_V_OBJECT);
}

static const ctfl_value *get_record(const ctfl_value *v, const char *key)
{
    const ctfl_value *m = ctfl_value_get(v, key);
    return is_record(m) ? m : NULL;
}

static const char *get_string(const ctfl_value *v, const char *key)
{
    return ctfl_value_str(ctfl_value_get(v, key));
}

/* strcmp equality, inline: most comparisons here fail within a few bytes. */
static int str_eq(const char *a, const char *b)
{
    if (!a || !b) return 0;
    for (; *a == *b; a++, b++)
        if (!*a) return 1;
    return 0;
}

/* key absent, or of type t (or null when nullable) */
static int opt_typed(const ctfl_value *obj, const char *key, ctfl_vtype t, int nullable)
{
    const ctfl_value *m = ctfl_value_get(obj, key);
    return !m || m->type == t || (nullable && m->type == CTFL_V_NULL);
}

static int req_typed(const ctfl_value *obj, const char *key, ctfl_vtype t)
{
    return ctfl_value_is(ctfl_value_get(obj, key), t);
}

static int array_of(const ctfl_value *arr, ctfl_vtype t)
{
    if (!ctfl_value_is(arr, CTFL_V_ARRAY)) return 0;
    for (apr_size_t i = 0; i < arr->u.arr.n; i++)
        if (!ctfl_value_is(arr->u.arr.items[i], t)) return 0;
    return 1;
}

static int object_of(const ctfl_value *obj, ctfl_vtype t)
{
    if (!is_record(obj)) return 0;
    for (apr_size_t i = 0; i < obj->u.obj.n; i++)
        if (!ctfl_value_is(obj->u.obj.vals[i], t)) return 0;
    return 1;
}

/* Length in UTF-16 code units, as JavaScript counts it (zod .length()). */
static apr_size_t utf16_length(const ctfl_value *s)
{
    apr_size_t n = 0;
    for (apr_size_t i = 0; i < s->u.str.len; i++) {
        unsigned char c = (unsigned char)s->u.str.s[i];
        if ((c & 0xC0) != 0x80) n += c >= 0xF0 ? 2 : 1;
    }
    return n;
}

/* ---- §4.2 predicates ----------------------------------------------------- */

const char *ctfl_entry_id(const ctfl_value *entry)
{
    return get_string(get_record(entry, "sys"), "id");
}

const char *ctfl_entry_content_type(const ctfl_value *entry)
{
    return ctfl_value_str(ctfl_value_path(entry, "sys.contentType.sys.id"));
}

/* isResolvedContentfulEntry, answering its content type id (never NULL when
 * v is one) and its fields, so that callers need not walk them again. */
static const char *resolved_entry_type(const ctfl_value *v, const ctfl_value **fields)
{
    const ctfl_value *sys = get_record(v, "sys");
    const ctfl_value *ct_sys = get_record(get_record(sys, "contentType"), "sys");
    const char *type_id;
    if (!str_eq(get_string(sys, "type"), "Entry") || !get_string(sys, "id")
        || !(type_id = get_string(ct_sys, "id")) || !get_record(v, "metadata")
        || !(*fields = get_record(v, "fields")))
        return NULL;
    return type_id;
}

int ctfl_is_resolved_entry(const ctfl_value *v)
{
    const ctfl_value *fields;
    return resolved_entry_type(v, &fields) != NULL;
}

int ctfl_is_unresolved_entry_link(const ctfl_value *v)
{
    const ctfl_value *sys = get_record(v, "sys");
    return str_eq(get_string(sys, "type"), "Link") && str_eq(get_string(sys, "linkType"), "Entry")
        && get_string(sys, "id");
}

/* A resolved entry of that content type; *fields its fields (set when true). */
static int is_entry_of_type(const ctfl_value *v, const char *content_type, const ctfl_value **fields)
{
    return str_eq(resolved_entry_type(v, fields), content_type);
}

int ctfl_is_audience_entry(const ctfl_value *v)
{
    const ctfl_value *f;
    return is_entry_of_type(v, "nt_audience", &f) && req_typed(f, "nt_audience_id", CTFL_V_STRING)
        && opt_typed(f, "nt_name", CTFL_V_STRING, 0) && opt_typed(f, "nt_description", CTFL_V_STRING, 0);
}

/* EntryReplacementVariant {id: string, hidden?: boolean} */
static int valid_replacement_variant(const ctfl_value *v)
{
    return is_record(v) && req_typed(v, "id", CTFL_V_STRING) && opt_typed(v, "hidden", CTFL_V_BOOL, 0);
}

/* InlineVariableVariant {value: string | boolean | null | number | record} */
static int valid_inline_variant(const ctfl_value *v)
{
    const ctfl_value *value = ctfl_value_get(v, "value");
    return is_record(v) && value && value->type != CTFL_V_ARRAY;
}

static int is_entry_replacement(const ctfl_value *component)
{
    const ctfl_value *type = ctfl_value_get(component, "type");
    return !type || str_eq(ctfl_value_str(type), "EntryReplacement");
}

/* discriminatedUnion('type', [EntryReplacement (type optional), InlineVariable]) */
static int valid_component(const ctfl_value *c)
{
    const ctfl_value *variants = ctfl_value_get(c, "variants");
    if (!is_record(c) || !ctfl_value_is(variants, CTFL_V_ARRAY)) return 0;
    if (is_entry_replacement(c)) {
        if (!valid_replacement_variant(ctfl_value_get(c, "baseline"))) return 0;
        for (apr_size_t i = 0; i < variants->u.arr.n; i++)
            if (!valid_replacement_variant(variants->u.arr.items[i])) return 0;
        return 1;
    }
    if (str_eq(get_string(c, "type"), "InlineVariable")) {
        const char *vt = get_string(c, "valueType");
        if (!req_typed(c, "key", CTFL_V_STRING)
            || !(str_eq(vt, "Boolean") || str_eq(vt, "Number") || str_eq(vt, "Object") || str_eq(vt, "String"))
            || !valid_inline_variant(ctfl_value_get(c, "baseline")))
            return 0;
        for (apr_size_t i = 0; i < variants->u.arr.n; i++)
            if (!valid_inline_variant(variants->u.arr.items[i])) return 0;
        return 1;
    }
    return 0;   /* unknown or non-string type */
}

/* OptimizationConfig: every key optional, none nullable. */
static int valid_config(const ctfl_value *c)
{
    const ctfl_value *dist = ctfl_value_get(c, "distribution");
    const ctfl_value *components = ctfl_value_get(c, "components");
    if (!is_record(c) || (dist && !array_of(dist, CTFL_V_NUMBER))
        || !opt_typed(c, "traffic", CTFL_V_NUMBER, 0) || !opt_typed(c, "sticky", CTFL_V_BOOL, 0))
        return 0;
    if (!components) return 1;
    if (!ctfl_value_is(components, CTFL_V_ARRAY)) return 0;
    for (apr_size_t i = 0; i < components->u.arr.n; i++)
        if (!valid_component(components->u.arr.items[i])) return 0;
    return 1;
}

int ctfl_is_optimization_entry(const ctfl_value *v)
{
    const ctfl_value *f, *config, *audience, *variants;
    const char *type;

    if (!is_entry_of_type(v, "nt_experience", &f)) return 0;
    type = get_string(f, "nt_type");
    config = ctfl_value_get(f, "nt_config");
    audience = ctfl_value_get(f, "nt_audience");
    variants = ctfl_value_get(f, "nt_variants");
    if (!req_typed(f, "nt_name", CTFL_V_STRING) || !opt_typed(f, "nt_description", CTFL_V_STRING, 1)
        || !(str_eq(type, "nt_experiment") || str_eq(type, "nt_personalization"))
        || !req_typed(f, "nt_experience_id", CTFL_V_STRING))
        return 0;
    if (config && config->type != CTFL_V_NULL && !valid_config(config)) return 0;
    if (audience && audience->type != CTFL_V_NULL
        && !ctfl_is_unresolved_entry_link(audience) && !ctfl_is_audience_entry(audience))
        return 0;
    if (variants) {
        if (!ctfl_value_is(variants, CTFL_V_ARRAY)) return 0;
        for (apr_size_t i = 0; i < variants->u.arr.n; i++) {
            const ctfl_value *var = variants->u.arr.items[i];
            if (!ctfl_is_unresolved_entry_link(var) && !ctfl_is_resolved_entry(var)) return 0;
        }
    }
    return 1;
}

/* fields.nt_experiences when v is an optimized entry, else NULL. Each item is
 * then either an unresolved link or a valid nt_experience, never both (sys.type
 * is "Link" for one and "Entry" for the other). */
static const ctfl_value *optimized_experiences(const ctfl_value *v)
{
    const ctfl_value *fields, *exps;
    if (!resolved_entry_type(v, &fields)) return NULL;
    exps = ctfl_value_get(fields, "nt_experiences");
    if (!ctfl_value_is(exps, CTFL_V_ARRAY)) return NULL;
    for (apr_size_t i = 0; i < exps->u.arr.n; i++) {
        const ctfl_value *x = exps->u.arr.items[i];
        if (!ctfl_is_unresolved_entry_link(x) && !ctfl_is_optimization_entry(x)) return NULL;
    }
    return exps;
}

int ctfl_is_optimized_entry(const ctfl_value *v)
{
    return optimized_experiences(v) != NULL;
}

int ctfl_is_merge_tag_entry(const ctfl_value *v)
{
    const ctfl_value *f;
    return is_entry_of_type(v, "nt_mergetag", &f) && req_typed(f, "nt_name", CTFL_V_STRING)
        && opt_typed(f, "nt_fallback", CTFL_V_STRING, 0) && req_typed(f, "nt_mergetag_id", CTFL_V_STRING);
}

/* Page: catchall(z.object(...), z.json()) — extra keys allowed. */
static int valid_page(const ctfl_value *pg)
{
    return is_record(pg) && req_typed(pg, "path", CTFL_V_STRING) && object_of(ctfl_value_get(pg, "query"), CTFL_V_STRING)
        && req_typed(pg, "referrer", CTFL_V_STRING) && req_typed(pg, "search", CTFL_V_STRING)
        && opt_typed(pg, "title", CTFL_V_STRING, 0) && req_typed(pg, "url", CTFL_V_STRING);
}

static int valid_location(const ctfl_value *loc)
{
    static const char *const strings[] = {
        "city", "postalCode", "region", "regionCode", "country", "continent", "timezone"
    };
    const ctfl_value *coords = ctfl_value_get(loc, "coordinates");
    const ctfl_value *cc = ctfl_value_get(loc, "countryCode");
    if (!is_record(loc)) return 0;
    for (size_t i = 0; i < sizeof(strings) / sizeof(*strings); i++)
        if (!opt_typed(loc, strings[i], CTFL_V_STRING, 0)) return 0;
    if (coords && !(is_record(coords) && req_typed(coords, "latitude", CTFL_V_NUMBER)
                    && req_typed(coords, "longitude", CTFL_V_NUMBER)))
        return 0;
    return !cc || (cc->type == CTFL_V_STRING && utf16_length(cc) == 2);
}

static int valid_session(const ctfl_value *s)
{
    return is_record(s) && req_typed(s, "id", CTFL_V_STRING) && req_typed(s, "isReturningVisitor", CTFL_V_BOOL)
        && valid_page(ctfl_value_get(s, "landingPage")) && req_typed(s, "count", CTFL_V_NUMBER)
        && req_typed(s, "activeSessionLength", CTFL_V_NUMBER)
        && req_typed(s, "averageSessionLength", CTFL_V_NUMBER);
}

int ctfl_is_profile(const ctfl_value *v)
{
    return is_record(v) && req_typed(v, "id", CTFL_V_STRING) && req_typed(v, "stableId", CTFL_V_STRING)
        && req_typed(v, "random", CTFL_V_NUMBER) && array_of(ctfl_value_get(v, "audiences"), CTFL_V_STRING)
        && is_record(ctfl_value_get(v, "traits")) && valid_location(ctfl_value_get(v, "location"))
        && valid_session(ctfl_value_get(v, "session"));
}

/* ---- selections ---------------------------------------------------------- */

apr_array_header_t *ctfl_selections_from_model(apr_pool_t *p, const apr_array_header_t *selections)
{
    int n = selections ? selections->nelts : 0;
    apr_array_header_t *out = apr_array_make(p, n + 1, sizeof(ctfl_selected_optimization));
    for (int i = 0; i < n; i++) {
        const ctfl_selection *s = &APR_ARRAY_IDX(selections, i, ctfl_selection);
        ctfl_selected_optimization *o = apr_array_push(out);
        o->experience_id = s->experience_id;
        o->variant_index = (double)s->variant_index;
        o->sticky = s->sticky;
    }
    return out;
}

int ctfl_selections_from_value(apr_pool_t *p, const ctfl_value *experiences, apr_array_header_t **out)
{
    apr_size_t n = ctfl_value_len(experiences);
    *out = NULL;
    if (!ctfl_value_is(experiences, CTFL_V_ARRAY)) return -1;
    *out = apr_array_make(p, (int)n + 1, sizeof(ctfl_selected_optimization));
    for (apr_size_t i = 0; i < n; i++) {
        const ctfl_value *e = experiences->u.arr.items[i];
        const ctfl_value *sticky = ctfl_value_get(e, "sticky");
        ctfl_selected_optimization *o;
        if (!is_record(e) || !req_typed(e, "experienceId", CTFL_V_STRING)
            || !req_typed(e, "variantIndex", CTFL_V_NUMBER) || !opt_typed(e, "sticky", CTFL_V_BOOL, 0)) {
            *out = NULL;
            return -1;
        }
        o = apr_array_push(*out);
        o->experience_id = get_string(e, "experienceId");
        o->variant_index = ctfl_value_get(e, "variantIndex")->u.n;
        o->sticky = sticky ? sticky->u.b : -1;
    }
    return 0;
}

/* ---- §4.3 resolve -------------------------------------------------------- */

static int find_selection(const apr_array_header_t *sels, const char *experience_id)
{
    for (int i = 0; i < sels->nelts; i++)
        if (str_eq(APR_ARRAY_IDX(sels, i, ctfl_selected_optimization).experience_id, experience_id))
            return i;
    return -1;
}

/* Step 7: variants of the first visible EntryReplacement component whose
 * baseline is this entry; NULL when there is none. */
static const ctfl_value *component_variants(const ctfl_value *optimization, const char *baseline_id)
{
    const ctfl_value *components = ctfl_value_path(optimization, "fields.nt_config.components");
    for (apr_size_t i = 0; i < ctfl_value_len(components); i++) {
        const ctfl_value *c = components->u.arr.items[i];
        const ctfl_value *base = ctfl_value_get(c, "baseline");
        if (!is_entry_replacement(c) || ctfl_value_truthy(ctfl_value_get(base, "hidden"))) continue;
        if (str_eq(get_string(base, "id"), baseline_id)) return ctfl_value_get(c, "variants");
    }
    return NULL;
}

/* Array.prototype.at(index): truncate toward zero, negative from the end. */
static const ctfl_value *js_at(const ctfl_value *arr, double index)
{
    double len = (double)ctfl_value_len(arr);
    double k = isnan(index) ? 0 : trunc(index);
    if (k < 0) k += len;
    if (k < 0 || k >= len) return NULL;
    return ctfl_value_at(arr, (apr_size_t)k);
}

void ctfl_resolve(const ctfl_value *baseline, const apr_array_header_t *selections,
                  ctfl_resolution *out)
{
    const ctfl_value *exps, *variants, *variant, *nt_variants;
    const char *variant_id;
    int idx = -1;

    memset(out, 0, sizeof(*out));
    out->entry = baseline;
    out->selection_index = -1;
    if (!selections || selections->nelts == 0) { out->outcome = CTFL_RES_NO_SELECTIONS; return; }
    if (!(exps = optimized_experiences(baseline))) { out->outcome = CTFL_RES_NOT_OPTIMIZED; return; }

    for (apr_size_t i = 0; i < exps->u.arr.n && idx < 0; i++) {
        const ctfl_value *x = exps->u.arr.items[i];
        /* validated above: not a link means a valid nt_experience */
        if (ctfl_is_unresolved_entry_link(x)) continue;
        idx = find_selection(selections, ctfl_value_str(ctfl_value_path(x, "fields.nt_experience_id")));
        if (idx >= 0) out->optimization_entry = x;
    }
    if (idx < 0) { out->outcome = CTFL_RES_NO_OPTIMIZATION; return; }
    out->selection_index = idx;
    out->selection = &APR_ARRAY_IDX(selections, idx, ctfl_selected_optimization);

    if (out->selection->variant_index == 0) { out->outcome = CTFL_RES_BASELINE_SELECTED; return; }

    variants = component_variants(out->optimization_entry, ctfl_entry_id(baseline));
    variant = ctfl_value_len(variants) ? js_at(variants, out->selection->variant_index - 1) : NULL;
    variant_id = get_string(variant, "id");
    if (!variant_id) { out->outcome = CTFL_RES_NO_VARIANT; return; }
    if (!*variant_id) {
        out->is_empty_variant = 1;
        out->outcome = CTFL_RES_EMPTY_VARIANT;
        return;
    }

    nt_variants = ctfl_value_path(out->optimization_entry, "fields.nt_variants");
    for (apr_size_t i = 0; i < ctfl_value_len(nt_variants); i++) {
        const ctfl_value *candidate = nt_variants->u.arr.items[i];
        if (!str_eq(ctfl_value_str(ctfl_value_path(candidate, "sys.id")), variant_id)) continue;
        if (ctfl_is_resolved_entry(candidate)) {
            out->entry = candidate;
            out->outcome = CTFL_RES_VARIANT;
            return;
        }
        break;                                           /* found, but only a link */
    }
    out->outcome = CTFL_RES_VARIANT_UNRESOLVED;
}

const char *ctfl_resolve_outcome_name(ctfl_resolve_outcome o)
{
    static const char *const names[] = {
        "no selections", "not optimized", "no matching optimization", "baseline selected",
        "no variant at index", "empty variant", "variant entry unresolved", "variant"
    };
    return (unsigned)o < sizeof(names) / sizeof(*names) ? names[o] : "unknown";
}

/* ---- §4.5 merge tags ----------------------------------------------------- */

apr_array_header_t *ctfl_merge_tag_selectors(apr_pool_t *p, const char *id)
{
    apr_array_header_t *out = apr_array_make(p, 4, sizeof(char *));
    APR_ARRAY_PUSH(out, char *) = apr_pstrdup(p, id);        /* i = 0: the id itself */
    for (const char *u = strchr(id, '_'); u; u = strchr(u + 1, '_')) {
        /* left: the parts before this '_' joined with '.'; right: the rest as is */
        char *left = apr_pstrmemdup(p, id, (apr_size_t)(u - id));
        const char *right = u + 1;
        for (char *c = left; *c; c++)
            if (*c == '_') *c = '.';
        APR_ARRAY_PUSH(out, char *) = !*left ? apr_pstrdup(p, right)
                                    : !*right ? left : apr_pstrcat(p, left, ".", right, NULL);
    }
    return out;
}

/* What Reflect.get finds on a plain object or array besides own data: the
 * inherited methods are truthy non-primitives, so a selector reaching one
 * stops the search and yields the fallback, exactly as in the SDK. */
static const ctfl_value js_builtin = { .type = CTFL_V_OBJECT, .u.obj = { NULL, NULL, 0 } };

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

static int is_object_builtin(const char *key)
{
    static const char *const names[] = {
        "constructor", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString",
        "toString", "valueOf", "__proto__", "__defineGetter__", "__defineSetter__",
        "__lookupGetter__", "__lookupSetter__"
    };
    return in_list(key, names, sizeof(names) / sizeof(*names));
}

static int is_array_builtin(const char *key)
{
    static const char *const names[] = {
        "at", "concat", "copyWithin", "entries", "every", "fill", "filter", "find", "findIndex",
        "findLast", "findLastIndex", "flat", "flatMap", "forEach", "includes", "indexOf", "join",
        "keys", "lastIndexOf", "map", "pop", "push", "reduce", "reduceRight", "reverse", "shift",
        "slice", "some", "sort", "splice", "toReversed", "toSorted", "toSpliced", "unshift",
        "values", "with"
    };
    return in_list(key, names, sizeof(names) / sizeof(*names)) || is_object_builtin(key);
}

/* Reflect.get(current, key) for an object or array; NULL = undefined. */
static const ctfl_value *js_get(apr_pool_t *p, const ctfl_value *cur, const char *key)
{
    if (cur->type == CTFL_V_ARRAY) {
        size_t n = strlen(key);
        if (n && n < 16 && strspn(key, "0123456789") == n && (key[0] != '0' || n == 1)) {
            unsigned long long i = strtoull(key, NULL, 10);     /* canonical index */
            return i < cur->u.arr.n ? cur->u.arr.items[i] : NULL;
        }
        if (strcmp(key, "length") == 0) return ctfl_value_number(p, (double)cur->u.arr.n);
        return is_array_builtin(key) ? &js_builtin : NULL;
    }
    for (apr_size_t i = 0; i < cur->u.obj.n; i++)
        if (strcmp(cur->u.obj.keys[i], key) == 0) return cur->u.obj.vals[i];
    return is_object_builtin(key) ? &js_builtin : NULL;
}

/* getAtPath: segments split on '.', empty ones dropped. */
static const ctfl_value *get_at_path(apr_pool_t *p, const ctfl_value *root, const char *path)
{
    const ctfl_value *cur = root;
    char *copy, *last, *seg;
    if (!root || (root->type != CTFL_V_OBJECT && root->type != CTFL_V_ARRAY)) return NULL;
    copy = apr_pstrdup(p, path);
    for (seg = apr_strtok(copy, ".", &last); seg; seg = apr_strtok(NULL, ".", &last)) {
        if (!cur || (cur->type != CTFL_V_OBJECT && cur->type != CTFL_V_ARRAY)) return NULL;
        cur = js_get(p, cur, seg);
    }
    return cur;
}

const char *ctfl_merge_tag_profile_value(apr_pool_t *p, const char *id, const ctfl_value *profile)
{
    apr_array_header_t *selectors;
    if (!id) return NULL;
    selectors = ctfl_merge_tag_selectors(p, id);
    for (int i = 0; i < selectors->nelts; i++) {
        const ctfl_value *v = get_at_path(p, profile, APR_ARRAY_IDX(selectors, i, const char *));
        if (!ctfl_value_truthy(v)) continue;
        /* the first truthy selector decides, even when it is not a primitive */
        switch (v->type) {
        case CTFL_V_STRING: return v->u.str.s;
        case CTFL_V_NUMBER: return ctfl_js_number(p, v->u.n);
        case CTFL_V_BOOL: return "true";
        default: return NULL;
        }
    }
    return NULL;
}

const char *ctfl_merge_tag_resolve(apr_pool_t *p, const ctfl_value *merge_tag_entry,
                                   const ctfl_value *profile)
{
    const ctfl_value *fields = ctfl_value_get(merge_tag_entry, "fields");
    const char *fallback, *value;
    if (!ctfl_is_merge_tag_entry(merge_tag_entry)) return NULL;
    fallback = get_string(fields, "nt_fallback");
    if (!ctfl_is_profile(profile)) return fallback;
    value = ctfl_merge_tag_profile_value(p, get_string(fields, "nt_mergetag_id"), profile);
    return value ? value : fallback;
}

/* ---- §4.6 tracking attributes -------------------------------------------- */

static void attr(apr_array_header_t *a, const char *name, const char *value)
{
    ctfl_attr *at;
    if (!value || !*value) return;                 /* undefined or empty: omitted */
    at = apr_array_push(a);
    at->name = name;
    at->value = value;
}

static const char *track_value(ctfl_track_override t)
{
    return t == CTFL_TRACK_TRUE ? "true" : t == CTFL_TRACK_FALSE ? "false" : NULL;
}

apr_array_header_t *ctfl_tracking_attributes(apr_pool_t *p, const char *baseline_id,
                                             const ctfl_resolution *r,
                                             const ctfl_attr_options *opt)
{
    apr_array_header_t *a = apr_array_make(p, 8, sizeof(ctfl_attr));
    const ctfl_selected_optimization *sel = r ? r->selection : NULL;
    const char *entry_id = r ? ctfl_entry_id(r->entry) : NULL;

    if (!entry_id || !*entry_id) entry_id = baseline_id;
    attr(a, "data-ctfl-baseline-id", baseline_id);
    attr(a, "data-ctfl-clickable", opt && opt->clickable ? "true" : NULL);
    attr(a, "data-ctfl-empty-variant", r && r->is_empty_variant ? "true" : NULL);
    attr(a, "data-ctfl-entry-id", entry_id);
    attr(a, "data-ctfl-optimization-id", sel ? sel->experience_id : NULL);
    attr(a, "data-ctfl-sticky", sel && sel->sticky >= 0 ? (sel->sticky ? "true" : "false") : NULL);
    attr(a, "data-ctfl-track-clicks", opt ? track_value(opt->track_clicks) : NULL);
    attr(a, "data-ctfl-track-hovers", opt ? track_value(opt->track_hovers) : NULL);
    attr(a, "data-ctfl-track-views", opt ? track_value(opt->track_views) : NULL);
    attr(a, "data-ctfl-variant-index", sel ? ctfl_js_number(p, sel->variant_index) : "0");
    return a;
}
