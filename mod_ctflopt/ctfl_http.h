/* ctfl_http — the only user of libcurl.
 *
 * A per-process pool of curl easy handles (each keeps its own keep-alive
 * connection cache), guarded by a mutex so request threads of the event/worker
 * MPMs can borrow one at a time. No httpd headers: plain C11 + APR. */
#ifndef CTFL_HTTP_H
#define CTFL_HTTP_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef struct ctfl_http_pool ctfl_http_pool;

typedef enum {
    CTFL_HTTP_OK = 0,        /* a complete HTTP response arrived (any status) */
    CTFL_HTTP_TIMEOUT,       /* the budget ran out (connect, send or receive) */
    CTFL_HTTP_CONNECT,       /* refused / unreachable / DNS */
    CTFL_HTTP_TOO_LARGE,     /* body exceeded max_response */
    CTFL_HTTP_ERROR          /* anything else (reset, TLS, protocol) */
} ctfl_http_outcome;

typedef struct {
    const char *url;
    const char *content_type;          /* NULL: no body header */
    const char *body;                  /* POST when non-NULL, else GET */
    apr_size_t body_len;
    apr_array_header_t *headers;       /* extra "Name: value" (const char *), may be NULL */
    long timeout_ms;                   /* whole budget, connect included (>0) */
    apr_size_t max_response;           /* body cap in bytes */
    int allow_insecure;                /* 0: only https:// may be used */
} ctfl_http_request;

typedef struct {
    ctfl_http_outcome outcome;
    long status;                       /* HTTP status, 0 if none */
    char *body;                        /* NUL-terminated, allocated from the request pool */
    apr_size_t body_len;
    const char *traceparent;           /* response header, NULL if absent */
    const char *error;                 /* human readable reason when outcome != OK */
    int new_connections;               /* connections curl opened for this transfer */
    apr_interval_time_t elapsed;
} ctfl_http_response;

/* curl_global_init exactly once per process (call from post_config, before threads).
 * Returns 0 on success, -1 on failure. Thread-safe (call_once). */
int ctfl_http_global_init(void);

/* Pool of at most max_idle idle handles (size it like ThreadsPerChild); freed by a
 * cleanup on p. Creates no curl handle. NULL on failure. */
ctfl_http_pool *ctfl_http_pool_create(apr_pool_t *p, int max_idle);

/* Forget handles inherited over fork without closing the parent's sockets. */
void ctfl_http_pool_child_init(ctfl_http_pool *hp);

/* Perform one request; never blocks longer than req->timeout_ms. */
void ctfl_http_perform(ctfl_http_pool *hp, apr_pool_t *rp,
                       const ctfl_http_request *req, ctfl_http_response *res);

/* Why a transfer failed, for logs: "timeout", "oversize", "connect: <curl>" or
 * "transport: <curl>"; NULL when a response arrived (outcome OK). */
const char *ctfl_http_failure(apr_pool_t *p, const ctfl_http_response *res);

/* "libcurl/7.88.1 ..." for the startup banner. */
const char *ctfl_http_version(void);

#endif
