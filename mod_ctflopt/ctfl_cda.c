/* ctfl_cda — CDA entries by id; link graphs rebuilt from cached raw objects.
 *
 * One breadth-first walk serves three purposes: assembling an index from a
 * cache (text source), and, on a fresh response (value source), finding the
 * requested ids the CDA did not return and the links it left unresolved
 * within the include depth. Using the same walk for both is what makes a
 * cache-assembled graph equal to the graph of a direct response. */
#include "ctfl_cda.h"
#include "ctfl_json_value.h"
#include "ctfl_locale.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <string.h>

/* ---- validation and URL -------------------------------------------------- */

static int id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == '-';
}

int ctfl_cda_id_valid(const char *id)
{
    apr_size_t n = 0;
    if (!id || !*id) return 0;
    for (; *id; id++, n++)
        if (n >= CTFL_CDA_ID_MAX || !id_char((unsigned char)*id)) return 0;
    return 1;
}

int ctfl_cda_token_valid(const char *token)
{
    apr_size_t n = 0;
    if (!token || !*token) return 0;
    for (; *token; token++, n++)
        if (n >= CTFL_CDA_TOKEN_MAX || (unsigned char)*token <= 0x20 || (unsigned char)*token >= 0x7f)
            return 0;
    return 1;
}

/* Percent-encode outside the RFC 3986 unreserved set; a path segment made only
 * of dots is encoded too, so it can never act as "." or "..". */
static const char *encode(apr_pool_t *p, const char *s, int path_segment)
{
    static const char hex[] = "0123456789ABCDEF";
    int only_dots = path_segment && s[strspn(s, ".")] == '\0';
    char *out = apr_palloc(p, 3 * strlen(s) + 1), *o = out;
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if ((id_char(*u) || *u == '~') && !(only_dots && *u == '.')) {
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

static const char *environment_of(const ctfl_cda_request *req)
{
    return req->environment ? req->environment : "master";
}

char *ctfl_cda_entries_url(apr_pool_t *p, const ctfl_cda_request *req,
                           const char *const *ids, int n)
{
    const char *base = req->base_url, *env = environment_of(req);
    char *url;
    if (!base || !*base || !ctfl_cda_id_valid(req->space) || !ctfl_cda_id_valid(env)
        || n < 1 || n > CTFL_CDA_BATCH)
        return NULL;
    /* One concrete locale (spec §10.1): never "*", never an all-locale fetch. */
    if (req->locale) {
        const char *norm = ctfl_locale_normalize(p, req->locale);
        if (!norm || strcmp(norm, req->locale) != 0) return NULL;
    }
    url = apr_pstrcat(p, base, base[strlen(base) - 1] == '/' ? "" : "/",
                      "spaces/", encode(p, req->space, 1), "/environments/", encode(p, env, 1),
                      "/entries?sys.id%5Bin%5D=", NULL);
    for (int i = 0; i < n; i++) {
        if (!ctfl_cda_id_valid(ids[i])) return NULL;
        url = apr_pstrcat(p, url, i ? "," : "", ids[i], NULL);    /* ids need no encoding */
    }
    url = apr_psprintf(p, "%s&include=%d%s%s&limit=%d", url, CTFL_CDA_INCLUDE,
                       req->locale ? "&locale=" : "", req->locale ? encode(p, req->locale, 0) : "", n);
    return url;
}

/* ---- the walk ------------------------------------------------------------ */

/* A value for (kind, id), or NULL; *corrupt set when something unusable was there. */

typedef struct {
    apr_pool_t *p;
    apr_hash_t *seen;              /* ref_key -> itself */
    ctfl_cda_walk *w;
} walker;

static const char *ref_key(apr_pool_t *p, ctfl_cda_kind kind, const char *id)
{
    return apr_pstrcat(p, kind == CTFL_CDA_ASSET ? "A:" : "E:", id, NULL);
}

static void enqueue(walker *k, ctfl_cda_kind kind, const char *id, const char *via, int hop)
{
    const char *key;
    ctfl_cda_node *node;
    if (!ctfl_cda_id_valid(id)) return;
    key = ref_key(k->p, kind, id);
    if (apr_hash_get(k->seen, key, APR_HASH_KEY_STRING)) return;
    if (k->w->nodes->nelts >= CTFL_CDA_MAX_GRAPH) {
        k->w->truncated = 1;
        return;
    }
    apr_hash_set(k->seen, key, APR_HASH_KEY_STRING, key);
    node = apr_array_push(k->w->nodes);
    node->kind = kind;
    node->id = id;
    node->via = via;
    node->hop = hop;
    node->state = CTFL_CDA_NODE_ABSENT;
}

/* Links {sys: {type: "Link", linkType: "Entry"|"Asset", id}} at any depth of
 * a fields value, in document order: exactly what ctfl_entries resolves. */
static void enqueue_links(walker *k, const ctfl_value *v, const char *via, int hop, int depth)
{
    const ctfl_value *sys;
    const char *type, *link_type;
    if (!v || depth > CTFL_VALUE_MAX_DEPTH) return;
    if (v->type == CTFL_V_ARRAY) {
        for (apr_size_t i = 0; i < v->u.arr.n; i++) enqueue_links(k, v->u.arr.items[i], via, hop, depth + 1);
        return;
    }
    if (v->type != CTFL_V_OBJECT) return;
    sys = ctfl_value_get(v, "sys");
    type = ctfl_value_str(ctfl_value_get(sys, "type"));
    link_type = ctfl_value_str(ctfl_value_get(sys, "linkType"));
    if (type && link_type && strcmp(type, "Link") == 0) {
        const char *id = ctfl_value_str(ctfl_value_get(sys, "id"));
        if (strcmp(link_type, "Entry") == 0) enqueue(k, CTFL_CDA_ENTRY, id, via, hop);
        else if (strcmp(link_type, "Asset") == 0) enqueue(k, CTFL_CDA_ASSET, id, via, hop);
        return;
    }
    for (apr_size_t i = 0; i < v->u.obj.n; i++) enqueue_links(k, v->u.obj.vals[i], via, hop, depth + 1);
}

static void run_walk(apr_pool_t *p, const char *const *roots, int n_roots, ctfl_cda_get_object get, void *ctx,
                     ctfl_entries *into, ctfl_cda_walk *w)
{
    walker k = { p, apr_hash_make(p), w };
    memset(w, 0, sizeof(*w));
    w->nodes = apr_array_make(p, 16, sizeof(ctfl_cda_node));
    for (int i = 0; i < n_roots; i++) enqueue(&k, CTFL_CDA_ENTRY, roots[i], NULL, 0);
    /* The node array is the queue; it holds at most CTFL_CDA_MAX_GRAPH nodes. */
    for (int i = 0; i < w->nodes->nelts; i++) {
        ctfl_cda_node node = APR_ARRAY_IDX(w->nodes, i, ctfl_cda_node);   /* by value: it grows */
        int corrupt = 0;
        const ctfl_value *v = get(ctx, node.kind, node.id, &corrupt);
        if (!v) {
            APR_ARRAY_IDX(w->nodes, i, ctfl_cda_node).state = corrupt ? CTFL_CDA_NODE_CORRUPT : CTFL_CDA_NODE_ABSENT;
            if (corrupt) w->corrupt++;
            else w->absent++;
            continue;
        }
        APR_ARRAY_IDX(w->nodes, i, ctfl_cda_node).state = CTFL_CDA_NODE_PRESENT;
        w->present++;
        if (into) {
            if (node.kind == CTFL_CDA_ENTRY) ctfl_entries_add_entry(into, v);
            else ctfl_entries_add_asset(into, v);
        }
        /* Links of an entry at hop 10 are beyond include=10: left as links. */
        if (node.kind == CTFL_CDA_ENTRY && node.hop < CTFL_CDA_INCLUDE)
            enqueue_links(&k, ctfl_value_get(v, "fields"), node.id, node.hop + 1, 0);
    }
}

/* The object is the entry/asset asked for: sys.type and sys.id match. */
static int is_object_for(const ctfl_value *v, ctfl_cda_kind kind, const char *id)
{
    const ctfl_value *sys = ctfl_value_get(v, "sys");
    const char *type = ctfl_value_str(ctfl_value_get(sys, "type"));
    const char *vid = ctfl_value_str(ctfl_value_get(sys, "id"));
    return ctfl_value_is(v, CTFL_V_OBJECT) && ctfl_value_is(sys, CTFL_V_OBJECT) && type && vid
        && strcmp(type, kind == CTFL_CDA_ASSET ? "Asset" : "Entry") == 0 && strcmp(vid, id) == 0;
}

/* ---- assembly from cached objects ------------------------------------------ */

const ctfl_value *ctfl_cda_decode_object(apr_pool_t *p, const char *text, apr_size_t len,
                                         ctfl_cda_kind kind, const char *id)
{
    ctfl_value *v;
    const char *err;
    if (ctfl_json_parse_value(p, text, len, &v, &err) != 0 || !is_object_for(v, kind, id)) return NULL;
    return v;
}

void ctfl_cda_assemble(apr_pool_t *p, const char *const *roots, int n_roots,
                       ctfl_cda_get_object get, void *ctx,
                       ctfl_entries *into, ctfl_cda_walk *walk)
{
    ctfl_cda_walk local;
    run_walk(p, roots, n_roots, get, ctx, into, walk ? walk : &local);
}

/* ---- decoding a response ------------------------------------------------- */

typedef struct {
    apr_hash_t *objs;              /* ref_key -> const ctfl_value * */
    apr_array_header_t *order;     /* ctfl_cda_ref, first occurrence order */
} response_map;

static const ctfl_value *map_get(void *c, ctfl_cda_kind kind, const char *id, int *corrupt)
{
    response_map *m = c;
    return apr_hash_get(m->objs, ref_key(m->order->pool, kind, id), APR_HASH_KEY_STRING);
}

/* Every element of list must be a `type` object with a valid sys.id. */
static const char *map_list(apr_pool_t *p, response_map *m, const ctfl_value *list,
                            const char *name, ctfl_cda_kind kind)
{
    const char *type = kind == CTFL_CDA_ASSET ? "Asset" : "Entry";
    if (!list || list->type == CTFL_V_NULL) return NULL;
    if (list->type != CTFL_V_ARRAY) return apr_psprintf(p, "schema: %s is not an array", name);
    for (apr_size_t i = 0; i < list->u.arr.n; i++) {
        const ctfl_value *v = list->u.arr.items[i];
        const char *id = ctfl_value_str(ctfl_value_path(v, "sys.id")), *key;
        if (!ctfl_cda_id_valid(id) || !is_object_for(v, kind, id))
            return apr_psprintf(p, "schema: %s[%" APR_SIZE_T_FMT "] is not an %s with a valid sys.id",
                                name, i, type);
        key = ref_key(p, kind, id);
        if (apr_hash_get(m->objs, key, APR_HASH_KEY_STRING)) continue;   /* first wins */
        apr_hash_set(m->objs, key, APR_HASH_KEY_STRING, v);
        APR_ARRAY_PUSH(m->order, ctfl_cda_ref) = (ctfl_cda_ref){ kind, id };
    }
    return NULL;
}

static void ensure_arrays(apr_pool_t *p, ctfl_cda_result *res)
{
    if (!res->raws) res->raws = apr_array_make(p, 16, sizeof(ctfl_cda_raw));
    if (!res->missing) res->missing = apr_array_make(p, 2, sizeof(const char *));
    if (!res->unresolved) res->unresolved = apr_array_make(p, 2, sizeof(ctfl_cda_ref));
    if (!res->invalid) res->invalid = apr_array_make(p, 1, sizeof(const char *));
}

int ctfl_cda_decode(apr_pool_t *p, const char *body, apr_size_t len,
                    const char *const *ids, int n, ctfl_cda_result *res, const char **reason)
{
    ctfl_value *root;
    const ctfl_value *includes;
    const char *type, *err;
    response_map m;
    ctfl_cda_walk w;
    apr_array_header_t *texts;

    if (ctfl_json_parse_value(p, body, len, &root, &err) != 0) {
        *reason = err;
        return -1;
    }
    type = ctfl_value_str(ctfl_value_path(root, "sys.type"));
    if (!ctfl_value_is(root, CTFL_V_OBJECT)) { *reason = "schema: response is not an object"; return -1; }
    if (!type || strcmp(type, "Array") != 0) { *reason = "schema: sys.type is not Array"; return -1; }
    if (!ctfl_value_is(ctfl_value_get(root, "items"), CTFL_V_ARRAY)) { *reason = "schema: no items array"; return -1; }
    includes = ctfl_value_get(root, "includes");
    if (includes && includes->type != CTFL_V_NULL && includes->type != CTFL_V_OBJECT) {
        *reason = "schema: includes is not an object";
        return -1;
    }
    m.objs = apr_hash_make(p);
    m.order = apr_array_make(p, 16, sizeof(ctfl_cda_ref));
    if ((err = map_list(p, &m, ctfl_value_get(root, "items"), "items", CTFL_CDA_ENTRY))
        || (err = map_list(p, &m, ctfl_value_get(includes, "Entry"), "includes.Entry", CTFL_CDA_ENTRY))
        || (err = map_list(p, &m, ctfl_value_get(includes, "Asset"), "includes.Asset", CTFL_CDA_ASSET))) {
        *reason = err;
        return -1;
    }
    /* Serialize first: nothing is appended to res unless all of it worked. */
    texts = apr_array_make(p, m.order->nelts + 1, sizeof(char *));
    for (int i = 0; i < m.order->nelts; i++) {
        ctfl_cda_ref r = APR_ARRAY_IDX(m.order, i, ctfl_cda_ref);
        char *json = ctfl_value_to_json(p, map_get(&m, r.kind, r.id, NULL));
        if (!json) { *reason = "schema: an entry cannot be serialized"; return -1; }
        APR_ARRAY_PUSH(texts, char *) = json;
    }
    ensure_arrays(p, res);
    for (int i = 0; i < m.order->nelts; i++) {
        ctfl_cda_ref r = APR_ARRAY_IDX(m.order, i, ctfl_cda_ref);
        char *json = APR_ARRAY_IDX(texts, i, char *);
        APR_ARRAY_PUSH(res->raws, ctfl_cda_raw) = (ctfl_cda_raw){ r.kind, r.id, json, strlen(json) };
    }
    /* What include=10 would have brought but did not: gone or unpublished. */
    run_walk(p, ids, n, map_get, &m, NULL, &w);
    for (int i = 0; i < w.nodes->nelts; i++) {
        const ctfl_cda_node *node = &APR_ARRAY_IDX(w.nodes, i, ctfl_cda_node);
        if (node->state == CTFL_CDA_NODE_PRESENT) continue;
        if (node->hop == 0) APR_ARRAY_PUSH(res->missing, const char *) = node->id;
        else APR_ARRAY_PUSH(res->unresolved, ctfl_cda_ref) = (ctfl_cda_ref){ node->kind, node->id };
    }
    return 0;
}

/* ---- fetching -------------------------------------------------------------- */

/* The token never leaves in a reason: replaced wherever it occurs. */
static const char *redact(apr_pool_t *p, const char *s, const char *token)
{
    apr_size_t tl = token ? strlen(token) : 0;
    const char *hit;
    char *out;
    if (!s || !tl || !(hit = strstr(s, token))) return s;
    out = apr_pstrndup(p, s, (apr_size_t)(hit - s));
    for (;;) {
        const char *rest = hit + tl, *next = strstr(rest, token);
        out = apr_pstrcat(p, out, "[token]", next ? apr_pstrndup(p, rest, (apr_size_t)(next - rest)) : rest, NULL);
        if (!next) return out;
        hit = next;
    }
}

/* "AccessTokenInvalid" from a CDA error body, or NULL. */
static const char *cda_error_id(apr_pool_t *p, const char *body, apr_size_t len)
{
    ctfl_value *v;
    const char *err, *type, *id;
    if (!body || !len || ctfl_json_parse_value(p, body, len, &v, &err) != 0) return NULL;
    type = ctfl_value_str(ctfl_value_path(v, "sys.type"));
    id = ctfl_value_str(ctfl_value_path(v, "sys.id"));
    if (!type || strcmp(type, "Error") != 0 || !id || !*id || strlen(id) > 64) return NULL;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z'))) return NULL;
    return id;
}

/* Append a batch's findings, each object / id once over all batches. */
static void merge_batch(apr_hash_t *seen, ctfl_cda_result *res, const ctfl_cda_result *b)
{
    apr_pool_t *p = res->raws->pool;
    for (int i = 0; i < b->raws->nelts; i++) {
        const ctfl_cda_raw *r = &APR_ARRAY_IDX(b->raws, i, ctfl_cda_raw);
        const char *key = ref_key(p, r->kind, r->id);
        if (apr_hash_get(seen, key, APR_HASH_KEY_STRING)) continue;
        apr_hash_set(seen, key, APR_HASH_KEY_STRING, key);
        APR_ARRAY_PUSH(res->raws, ctfl_cda_raw) = *r;
    }
    for (int i = 0; i < b->missing->nelts; i++)
        APR_ARRAY_PUSH(res->missing, const char *) = APR_ARRAY_IDX(b->missing, i, const char *);
    for (int i = 0; i < b->unresolved->nelts; i++) {
        const ctfl_cda_ref *r = &APR_ARRAY_IDX(b->unresolved, i, ctfl_cda_ref);
        const char *key = apr_pstrcat(p, "u", ref_key(p, r->kind, r->id), NULL);
        if (apr_hash_get(seen, key, APR_HASH_KEY_STRING)) continue;
        apr_hash_set(seen, key, APR_HASH_KEY_STRING, key);
        APR_ARRAY_PUSH(res->unresolved, ctfl_cda_ref) = *r;
    }
}

static void fail(ctfl_cda_result *res, ctfl_cda_status st, const char *reason)
{
    res->status = st;
    res->reason = reason;
}

/* One batch; 0 when it was answered and decoded. */
static int fetch_batch(ctfl_http_pool *hp, apr_pool_t *p, const ctfl_cda_request *req,
                       apr_array_header_t *headers, const char *const *ids, int n, long budget_ms,
                       apr_hash_t *seen, ctfl_cda_result *res)
{
    ctfl_http_request hreq = { 0 };
    ctfl_http_response hr;
    ctfl_cda_result batch = { 0 };
    const char *reason = NULL;

    hreq.url = ctfl_cda_entries_url(p, req, ids, n);
    if (!hreq.url) {
        fail(res, CTFL_CDA_ERROR, "bad request: invalid base url, space, environment or locale");
        return -1;
    }
    hreq.headers = headers;
    hreq.timeout_ms = budget_ms;
    hreq.max_response = req->max_response;
    hreq.allow_insecure = req->allow_insecure;
    ctfl_http_perform(hp, p, &hreq, &hr);
    res->requests++;
    res->new_connections += hr.new_connections;
    res->http_status = hr.status;

    if ((reason = ctfl_http_failure(p, &hr)) != NULL) {
        fail(res, hr.outcome == CTFL_HTTP_TIMEOUT ? CTFL_CDA_TIMEOUT : CTFL_CDA_ERROR, reason);
        return -1;
    }
    if (hr.status < 200 || hr.status >= 300) {
        const char *code = cda_error_id(p, hr.body, hr.body_len);
        fail(res, CTFL_CDA_ERROR, code ? apr_psprintf(p, "http %ld %s", hr.status, code)
                                       : apr_psprintf(p, "http %ld", hr.status));
        res->traceparent = hr.traceparent;
        return -1;
    }
    if (ctfl_cda_decode(p, hr.body, hr.body_len, ids, n, &batch, &reason) != 0) {
        /* The parser quotes a few bytes near the error: if the body holds the
         * token (an echoing proxy), even a cut-off piece of it must not leak. */
        if (strncmp(reason, "bad json", 8) == 0 && req->token
            && memmem(hr.body, hr.body_len, req->token, strlen(req->token)))
            reason = "bad json: (details withheld: the body contains the token)";
        fail(res, CTFL_CDA_ERROR, reason);
        res->traceparent = hr.traceparent;
        return -1;
    }
    merge_batch(seen, res, &batch);
    return 0;
}

void ctfl_cda_fetch(ctfl_http_pool *hp, apr_pool_t *p, const ctfl_cda_request *req,
                    const apr_array_header_t *ids, ctfl_cda_result *res)
{
    const apr_time_t start = apr_time_now();
    const apr_time_t deadline = start + apr_time_from_msec(req->timeout_ms > 0 ? req->timeout_ms : 0);
    apr_array_header_t *valid = apr_array_make(p, ids ? ids->nelts + 1 : 1, sizeof(const char *));
    apr_array_header_t *headers = apr_array_make(p, 2, sizeof(const char *));
    apr_hash_t *dedupe = apr_hash_make(p), *seen = apr_hash_make(p);

    memset(res, 0, sizeof(*res));
    ensure_arrays(p, res);
    for (int i = 0; ids && i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (!id || apr_hash_get(dedupe, id, APR_HASH_KEY_STRING)) continue;
        apr_hash_set(dedupe, id, APR_HASH_KEY_STRING, id);
        if (ctfl_cda_id_valid(id)) APR_ARRAY_PUSH(valid, const char *) = id;
        else APR_ARRAY_PUSH(res->invalid, const char *) = id;
    }
    if (!ctfl_cda_token_valid(req->token)) {
        fail(res, CTFL_CDA_ERROR, "bad request: missing or malformed token");
        return;
    }
    APR_ARRAY_PUSH(headers, const char *) = "Accept: application/json";
    APR_ARRAY_PUSH(headers, const char *) = apr_pstrcat(p, "Authorization: Bearer ", req->token, NULL);

    for (int off = 0; off < valid->nelts; off += CTFL_CDA_BATCH) {
        int n = valid->nelts - off < CTFL_CDA_BATCH ? valid->nelts - off : CTFL_CDA_BATCH;
        long remaining_ms = (long)apr_time_as_msec(deadline - apr_time_now());
        if (remaining_ms <= 0) {
            fail(res, CTFL_CDA_TIMEOUT, "timeout");
            break;
        }
        if (fetch_batch(hp, p, req, headers, (const char *const *)valid->elts + off, n,
                        remaining_ms, seen, res) != 0)
            break;
    }
    res->reason = redact(p, res->reason, req->token);
    res->elapsed = apr_time_now() - start;
}
