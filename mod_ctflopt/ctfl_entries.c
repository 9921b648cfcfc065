/* ctfl_entries — entry index and copy-on-write link resolution.
 *
 * Resolution is lazy and iterative: asking for an entry makes a "shell" (a
 * shallow copy of the raw entry) for it and for every entry its links reach,
 * through a work list, so arbitrarily long or cyclic link chains never
 * recurse. Inside one entry's fields the walk is recursive but the raw tree
 * is acyclic and at most CTFL_VALUE_MAX_DEPTH deep; only the containers on the
 * path to a link are copied, the rest is shared with the raw value. */
#include "ctfl_entries.h"
#include "ctfl_json_value.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <string.h>

/* One entry of the index. The memo (shell) is valid while gen == ctfl_entries.gen:
 * adding data may resolve links that were dangling, so it bumps gen. The id is
 * the entry's own sys.id (lives as long as raw), never a caller's string. */
typedef struct {
    const char *id;
    const ctfl_value *raw;
    ctfl_value *shell;
    unsigned gen;
} entry_rec;

struct ctfl_entries {
    apr_pool_t *p;
    apr_hash_t *raw;        /* id -> entry_rec */
    apr_hash_t *assets;     /* id -> const ctfl_value* asset */
    unsigned gen;           /* memo generation, starts at 1 */
};

typedef struct {
    ctfl_value *shell;
    const ctfl_value *raw;
} pending;

/* Children of a shared raw value: never written through. */
static ctfl_value *shared(const ctfl_value *v)
{
    return (ctfl_value *)(apr_uintptr_t)v;
}

ctfl_entries *ctfl_entries_make(apr_pool_t *p)
{
    ctfl_entries *e = apr_pcalloc(p, sizeof(*e));
    e->p = p;
    e->raw = apr_hash_make(p);
    e->assets = apr_hash_make(p);
    e->gen = 1;
    return e;
}

static const char *sys_id(const ctfl_value *v)
{
    const char *id = ctfl_value_str(ctfl_value_path(v, "sys.id"));
    return id && *id ? id : NULL;
}

static void put_entry(ctfl_entries *e, const char *id, const ctfl_value *raw)
{
    entry_rec *rec = apr_palloc(e->p, sizeof(*rec));
    rec->id = id;
    rec->raw = raw;
    rec->shell = NULL;
    rec->gen = 0;
    apr_hash_set(e->raw, id, APR_HASH_KEY_STRING, rec);
    if (++e->gen == 0) e->gen = 1;   /* every memo is stale (0 marks "never") */
}

static int put(ctfl_entries *e, apr_hash_t *h, const ctfl_value *v)
{
    const char *id = ctfl_value_is(ctfl_value_get(v, "sys"), CTFL_V_OBJECT) ? sys_id(v) : NULL;
    if (!id) return -1;
    if (h == e->raw) put_entry(e, id, v);
    else apr_hash_set(h, id, APR_HASH_KEY_STRING, v);
    return 0;
}

int ctfl_entries_add_entry(ctfl_entries *e, const ctfl_value *raw_entry)
{
    return put(e, e->raw, raw_entry);
}

int ctfl_entries_add_asset(ctfl_entries *e, const ctfl_value *raw_asset)
{
    return put(e, e->assets, raw_asset);
}

static void add_list(ctfl_entries *e, const ctfl_value *list, int assets_only)
{
    for (apr_size_t i = 0; i < ctfl_value_len(list); i++) {
        const ctfl_value *v = ctfl_value_at(list, i);
        const char *type = ctfl_value_str(ctfl_value_path(v, "sys.type"));
        if (!type) continue;
        if (strcmp(type, "Asset") == 0) put(e, e->assets, v);
        else if (!assets_only && strcmp(type, "Entry") == 0) put(e, e->raw, v);
    }
}

int ctfl_entries_add_response(ctfl_entries *e, const ctfl_value *response, const char **err)
{
    const ctfl_value *items = ctfl_value_get(response, "items");
    const ctfl_value *includes = ctfl_value_get(response, "includes");
    const char *type = ctfl_value_str(ctfl_value_path(response, "sys.type"));

    if (!ctfl_value_is(response, CTFL_V_OBJECT)) { *err = "cda: response not an object"; return -1; }
    if (type && strcmp(type, "Error") == 0) {
        const char *code = ctfl_value_str(ctfl_value_path(response, "sys.id"));
        *err = apr_pstrcat(e->p, "cda error: ", code ? code : "unknown", NULL);
        return -1;
    }
    if (!ctfl_value_is(items, CTFL_V_ARRAY)) { *err = "cda: no items array"; return -1; }
    add_list(e, items, 0);
    add_list(e, ctfl_value_get(includes, "Entry"), 0);
    add_list(e, ctfl_value_get(includes, "Asset"), 1);
    return 0;
}

int ctfl_entries_add_json(ctfl_entries *e, const char *text, apr_size_t len, const char **err)
{
    ctfl_value *v;
    if (ctfl_json_parse_value(e->p, text, len, &v, err) != 0) return -1;
    return ctfl_entries_add_response(e, v, err);
}

void ctfl_entries_merge(ctfl_entries *dst, const ctfl_entries *src)
{
    apr_hash_index_t *hi;
    if (!src || src == dst) return;
    for (hi = apr_hash_first(dst->p, src->raw); hi; hi = apr_hash_next(hi)) {
        const entry_rec *rec = apr_hash_this_val(hi);
        put_entry(dst, rec->id, rec->raw);
    }
    for (hi = apr_hash_first(dst->p, src->assets); hi; hi = apr_hash_next(hi))
        apr_hash_set(dst->assets, apr_hash_this_key(hi), APR_HASH_KEY_STRING, apr_hash_this_val(hi));
}

/* {sys: {type: "Link", linkType, id}}: the link's type and id, else NULL. */
static const char *link_target(const ctfl_value *v, const char **link_type)
{
    const ctfl_value *sys = ctfl_value_get(v, "sys");
    const char *type = ctfl_value_str(ctfl_value_get(sys, "type"));
    if (!type || strcmp(type, "Link") != 0) return NULL;
    *link_type = ctfl_value_str(ctfl_value_get(sys, "linkType"));
    return *link_type ? ctfl_value_str(ctfl_value_get(sys, "id")) : NULL;
}

static ctfl_value *shell_for(ctfl_entries *e, const char *id, apr_array_header_t *todo)
{
    entry_rec *rec = apr_hash_get(e->raw, id, APR_HASH_KEY_STRING);
    const ctfl_value *raw;
    ctfl_value *shell;
    pending *job;
    if (!rec) return NULL;
    if (rec->gen == e->gen) return rec->shell;
    raw = rec->raw;
    shell = apr_pmemdup(e->p, raw, sizeof(*raw));
    if (raw->type == CTFL_V_OBJECT && raw->u.obj.n) {
        shell->u.obj.vals = apr_pmemdup(e->p, raw->u.obj.vals, raw->u.obj.n * sizeof(ctfl_value *));
    }
    rec->shell = shell;
    rec->gen = e->gen;
    job = apr_array_push(todo);
    job->shell = shell;
    job->raw = raw;
    return shell;
}

/* v with every resolvable link replaced; v itself when nothing changed. */
static const ctfl_value *resolve_node(ctfl_entries *e, const ctfl_value *v, int depth,
                                      apr_array_header_t *todo)
{
    const char *link_type, *id = link_target(v, &link_type);
    ctfl_value *copy = NULL;

    if (id) {
        const ctfl_value *target = NULL;
        if (strcmp(link_type, "Entry") == 0) target = shell_for(e, id, todo);
        else if (strcmp(link_type, "Asset") == 0) target = apr_hash_get(e->assets, id, APR_HASH_KEY_STRING);
        return target ? target : v;
    }
    if (depth >= CTFL_VALUE_MAX_DEPTH || !v) return v;
    if (v->type == CTFL_V_ARRAY) {
        for (apr_size_t i = 0; i < v->u.arr.n; i++) {
            const ctfl_value *r = resolve_node(e, v->u.arr.items[i], depth + 1, todo);
            if (r == v->u.arr.items[i]) continue;
            if (!copy) {
                copy = apr_pmemdup(e->p, v, sizeof(*v));
                copy->u.arr.items = apr_pmemdup(e->p, v->u.arr.items, v->u.arr.n * sizeof(ctfl_value *));
            }
            copy->u.arr.items[i] = shared(r);
        }
    } else if (v->type == CTFL_V_OBJECT) {
        for (apr_size_t i = 0; i < v->u.obj.n; i++) {
            const ctfl_value *r = resolve_node(e, v->u.obj.vals[i], depth + 1, todo);
            if (r == v->u.obj.vals[i]) continue;
            if (!copy) {
                copy = apr_pmemdup(e->p, v, sizeof(*v));
                copy->u.obj.vals = apr_pmemdup(e->p, v->u.obj.vals, v->u.obj.n * sizeof(ctfl_value *));
            }
            copy->u.obj.vals[i] = shared(r);
        }
    }
    return copy ? copy : v;
}

const ctfl_value *ctfl_entries_entry(ctfl_entries *e, const char *id)
{
    apr_array_header_t *todo;
    const entry_rec *rec = id ? apr_hash_get(e->raw, id, APR_HASH_KEY_STRING) : NULL;
    ctfl_value *shell;
    if (!rec) return NULL;
    if (rec->gen == e->gen) return rec->shell;
    todo = apr_array_make(e->p, 8, sizeof(pending));
    shell = shell_for(e, id, todo);
    /* Each entry is queued at most once (memo), so this ends after at most
     * ctfl_entries_count() rounds. */
    for (int i = 0; i < todo->nelts; i++) {
        pending job = APR_ARRAY_IDX(todo, i, pending);   /* by value: todo grows */
        const ctfl_value *raw = job.raw;
        /* contentful.js resolves from `fields` down, never in sys/metadata. */
        for (apr_size_t k = 0; raw->type == CTFL_V_OBJECT && k < raw->u.obj.n; k++) {
            if (strcmp(raw->u.obj.keys[k], "fields") == 0)
                job.shell->u.obj.vals[k] = shared(resolve_node(e, raw->u.obj.vals[k], 0, todo));
        }
    }
    return shell;
}

const ctfl_value *ctfl_entries_asset(const ctfl_entries *e, const char *id)
{
    return id ? apr_hash_get(e->assets, id, APR_HASH_KEY_STRING) : NULL;
}

const ctfl_value *ctfl_entries_raw(const ctfl_entries *e, const char *id)
{
    const entry_rec *rec = id ? apr_hash_get(e->raw, id, APR_HASH_KEY_STRING) : NULL;
    return rec ? rec->raw : NULL;
}

apr_size_t ctfl_entries_count(const ctfl_entries *e)
{
    return apr_hash_count(e->raw);
}

apr_size_t ctfl_entries_asset_count(const ctfl_entries *e)
{
    return apr_hash_count(e->assets);
}

apr_array_header_t *ctfl_entries_ids(const ctfl_entries *e, apr_pool_t *p)
{
    apr_array_header_t *ids = apr_array_make(p, (int)apr_hash_count(e->raw) + 1, sizeof(const char *));
    for (apr_hash_index_t *hi = apr_hash_first(p, e->raw); hi; hi = apr_hash_next(hi)) {
        const void *key;
        apr_hash_this(hi, &key, NULL, NULL);
        APR_ARRAY_PUSH(ids, const char *) = key;
    }
    return ids;
}

typedef struct {
    const ctfl_entries *e;
    apr_hash_t *seen;              /* every entry id met, present or not */
    apr_array_header_t *next;      /* present entries to walk at the next hop */
    apr_array_header_t *missing;
} missing_walk;

static void collect_links(missing_walk *w, const ctfl_value *v, int depth)
{
    const char *link_type, *id = link_target(v, &link_type);
    if (id) {
        if (strcmp(link_type, "Entry") != 0 || !*id || apr_hash_get(w->seen, id, APR_HASH_KEY_STRING)) return;
        apr_hash_set(w->seen, id, APR_HASH_KEY_STRING, id);
        if (ctfl_entries_raw(w->e, id)) APR_ARRAY_PUSH(w->next, const char *) = id;
        else APR_ARRAY_PUSH(w->missing, const char *) = id;
        return;
    }
    if (!v || depth >= CTFL_VALUE_MAX_DEPTH) return;
    if (v->type == CTFL_V_ARRAY)
        for (apr_size_t i = 0; i < v->u.arr.n; i++) collect_links(w, v->u.arr.items[i], depth + 1);
    else if (v->type == CTFL_V_OBJECT)
        for (apr_size_t i = 0; i < v->u.obj.n; i++) collect_links(w, v->u.obj.vals[i], depth + 1);
}

apr_array_header_t *ctfl_entries_missing(const ctfl_entries *e, apr_pool_t *p,
                                         const char *id, int max_hops)
{
    missing_walk w = { e, apr_hash_make(p), NULL, apr_array_make(p, 4, sizeof(const char *)) };
    apr_array_header_t *level = apr_array_make(p, 1, sizeof(const char *));

    if (!id || !*id) return w.missing;
    apr_hash_set(w.seen, id, APR_HASH_KEY_STRING, id);
    if (!ctfl_entries_raw(e, id)) {
        APR_ARRAY_PUSH(w.missing, const char *) = id;
        return w.missing;
    }
    APR_ARRAY_PUSH(level, const char *) = id;
    for (int hop = 0; hop < max_hops && level->nelts; hop++) {
        w.next = apr_array_make(p, 8, sizeof(const char *));
        for (int i = 0; i < level->nelts; i++) {
            const ctfl_value *raw = ctfl_entries_raw(e, APR_ARRAY_IDX(level, i, const char *));
            collect_links(&w, ctfl_value_get(raw, "fields"), 0);
        }
        level = w.next;
    }
    return w.missing;
}
