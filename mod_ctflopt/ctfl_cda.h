/* ctfl_cda — Contentful Delivery API entries by id, and their link graph
 * rebuilt from individually cached raw entries.
 *
 * Fetch (protocol spec §4.1, §9.4, §10.1, §10.5): GET
 *   {base}spaces/{space}/environments/{env}/entries
 *     ?sys.id%5Bin%5D=<ids>&include=10&locale=<locale>&limit=<n>
 * with `Authorization: Bearer <token>`, at most 100 ids per request (the SDK's
 * batch size). The response is split into raw entries and assets (links left
 * unresolved), each as compact JSON text so it can be cached on its own, plus
 * what the CDA did not return (negative caching). Nothing here depends on the
 * visitor. The token never appears in a reason string.
 *
 * Assembly: from a lookup of such raw texts, build the ctfl_entries index that
 * a direct CDA response with include=10 gives: breadth-first along the links
 * inside `fields` (as contentful.js resolves them), at most CTFL_CDA_INCLUDE
 * hops from a root, each object once (cycles), at most CTFL_CDA_MAX_GRAPH
 * objects. Pure C + APR. */
#ifndef CTFL_CDA_H
#define CTFL_CDA_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "ctfl_entries.h"
#include "ctfl_http.h"

#define CTFL_CDA_BATCH      100     /* ids per request (contentful.js chunk size) */
#define CTFL_CDA_INCLUDE    10      /* include depth: links followed from a root */
#define CTFL_CDA_ID_MAX     64      /* sys.id: [A-Za-z0-9._-]{1,64} */
#define CTFL_CDA_TOKEN_MAX  512
#define CTFL_CDA_MAX_GRAPH  1000    /* objects visited by one assembly */

typedef enum { CTFL_CDA_ENTRY = 0, CTFL_CDA_ASSET } ctfl_cda_kind;

typedef enum {
    CTFL_CDA_OK = 0,
    CTFL_CDA_TIMEOUT,
    CTFL_CDA_ERROR         /* refused, reset, non-2xx, bad JSON, schema, oversize, bad input */
} ctfl_cda_status;

typedef struct {
    const char *base_url;          /* e.g. https://cdn.contentful.com/ ('/' added if missing) */
    const char *space;
    const char *environment;       /* NULL: master */
    const char *token;             /* CDA (or CPA) access token */
    const char *locale;            /* one concrete locale; NULL: no locale= (space default) */
    long timeout_ms;               /* whole budget, every batch */
    apr_size_t max_response;       /* per response body */
    int allow_insecure;            /* 0: https only */
} ctfl_cda_request;

typedef struct {
    ctfl_cda_kind kind;
    const char *id;
    const char *json;              /* compact JSON of the raw object, links unresolved */
    apr_size_t len;
} ctfl_cda_raw;

typedef struct {
    ctfl_cda_kind kind;
    const char *id;
} ctfl_cda_ref;

typedef struct {
    ctfl_cda_status status;
    const char *reason;            /* stable, token-free: "http 401 AccessTokenInvalid", "timeout",
                                      "bad json: ...", "schema: ...", "oversize", "connect: ..." */
    const char *traceparent;       /* of the failing response, if any */
    long http_status;              /* of the last response */
    int requests;                  /* HTTP requests made */
    int new_connections;
    apr_interval_time_t elapsed;
    /* From every batch that was answered (also kept when a later batch fails): */
    apr_array_header_t *raws;      /* ctfl_cda_raw: items, includes.Entry, includes.Asset; each once */
    apr_array_header_t *missing;   /* const char *: requested ids not in the response */
    apr_array_header_t *unresolved;/* ctfl_cda_ref: linked within include depth from a requested
                                      entry but absent (unpublished or deleted) */
    apr_array_header_t *invalid;   /* const char *: requested ids that are no CDA id (never sent) */
} ctfl_cda_result;

/* [A-Za-z0-9._-]{1,64} */
int ctfl_cda_id_valid(const char *id);
/* Printable ASCII without spaces, 1..CTFL_CDA_TOKEN_MAX bytes (safe in a header). */
int ctfl_cda_token_valid(const char *token);

/* The entries URL for n valid ids (1..CTFL_CDA_BATCH); NULL when the request
 * lacks base/space or an id, the locale or environment is invalid. */
char *ctfl_cda_entries_url(apr_pool_t *p, const ctfl_cda_request *req,
                           const char *const *ids, int n);

/* Fetch ids (const char *, duplicates ignored) in batches of CTFL_CDA_BATCH,
 * one after the other within req->timeout_ms; stops at the first failed batch. */
void ctfl_cda_fetch(ctfl_http_pool *hp, apr_pool_t *p, const ctfl_cda_request *req,
                    const apr_array_header_t *ids, ctfl_cda_result *res);

/* Decode one 2xx body for the n requested ids into res (arrays created when
 * NULL). 0, or -1 with *reason ("bad json: ...", "schema: ..."); reasons quote
 * no body bytes beyond the parser's short message. */
int ctfl_cda_decode(apr_pool_t *p, const char *body, apr_size_t len,
                    const char *const *ids, int n, ctfl_cda_result *res, const char **reason);

/* ---- assembly from cached objects --------------------------------------- */

/* One entry or asset (decoded, e.g. with ctfl_cda_decode_object), or NULL when
 * unknown, with *corrupt set when what is stored is not that object. */
typedef const ctfl_value *(*ctfl_cda_get_object)(void *ctx, ctfl_cda_kind kind, const char *id,
                                                 int *corrupt);

typedef enum {
    CTFL_CDA_NODE_PRESENT = 0,     /* added to the index */
    CTFL_CDA_NODE_ABSENT,          /* get returned NULL */
    CTFL_CDA_NODE_CORRUPT          /* text that is not that entry/asset (bad JSON, other id/type) */
} ctfl_cda_node_state;

typedef struct {
    ctfl_cda_kind kind;
    const char *id;
    const char *via;               /* the entry whose link led here; NULL for a root */
    int hop;                       /* links from the nearest root */
    ctfl_cda_node_state state;
} ctfl_cda_node;

typedef struct {
    apr_array_header_t *nodes;     /* ctfl_cda_node in visiting (breadth-first) order */
    int present, absent, corrupt;
    int truncated;                 /* CTFL_CDA_MAX_GRAPH reached: some links not followed */
} ctfl_cda_walk;

/* Add to `into` every entry and asset reachable from the roots (entry ids;
 * invalid ids skipped) within CTFL_CDA_INCLUDE hops, looked up with get.
 * Links to absent objects stay links, as in a CDA response. p must live as
 * long as `into`. walk may be NULL. */
void ctfl_cda_assemble(apr_pool_t *p, const char *const *roots, int n_roots,
                       ctfl_cda_get_object get, void *ctx,
                       ctfl_entries *into, ctfl_cda_walk *walk);

/* Raw JSON text of one entry or asset decoded in p, or NULL when it is not
 * valid JSON or not the `kind` object with sys.id `id`. */
const ctfl_value *ctfl_cda_decode_object(apr_pool_t *p, const char *text, apr_size_t len,
                                         ctfl_cda_kind kind, const char *id);

#endif
