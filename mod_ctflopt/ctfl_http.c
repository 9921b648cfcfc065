/* ctfl_http — bounded HTTP requests over a per-process pool of curl handles.
 *
 * Why a pool of easy handles: each easy handle owns a connection cache, so
 * handing a finished handle to the next request reuses its keep-alive
 * connection. The mutex only guards the idle stack; transfers run unlocked.
 *
 * Fork: handles are never created before the MPM forks (post_config only
 * creates the empty pool). Should a parent ever have used the pool, a child
 * drops the inherited handles instead of cleaning them up, since cleanup
 * could write (TLS close_notify) on connections the parent still owns; the
 * dropped handles (at most max_idle, a few KB each) stay allocated in that
 * child. */
#include "ctfl_http.h"
#include "ctflopt_version.h"

#include <curl/curl.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <threads.h>
#include <unistd.h>

#if !APR_HAS_THREADS
#error "mod_ctflopt needs APR with thread support"
#endif

#define TRACEPARENT_MAX 256       /* W3C traceparent is 55 chars; keep headroom */
#define BODY_INITIAL    (16 * 1024)

struct ctfl_http_pool {
    apr_thread_mutex_t *lock;
    CURL **idle;                  /* stack of handles with warm connections */
    int n_idle;
    CURL **inherited;             /* a parent's handles after fork: kept, never used */
    int n_inherited;
    int max_idle;
    pid_t owner;                  /* process the idle handles belong to */
};

/* ---- process-wide init ---------------------------------------------------- */

static once_flag curl_once = ONCE_FLAG_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;   /* written once under call_once */

static char curl_version_text[64];                  /* written once under call_once */

static void curl_init_once(void)
{
    const curl_version_info_data *v;
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    v = curl_version_info(CURLVERSION_NOW);
    snprintf(curl_version_text, sizeof(curl_version_text), "libcurl/%s",
             v && v->version ? v->version : "?");
}

int ctfl_http_global_init(void)
{
    call_once(&curl_once, curl_init_once);
    return curl_init_rc == CURLE_OK ? 0 : -1;
}

/* "libcurl/7.88.1" — from curl_version_info(): curl_version() would also query
 * (and keep allocated) the versions of every library libcurl links. */
const char *ctfl_http_version(void)
{
    call_once(&curl_once, curl_init_once);
    return curl_version_text;
}

/* ---- the handle pool ------------------------------------------------------ */

static apr_status_t pool_cleanup(void *data)
{
    ctfl_http_pool *hp = data;
    /* A child inherits the memory but not the right to close the handles. */
    if (hp->owner == getpid())
        for (int i = 0; i < hp->n_idle; i++) curl_easy_cleanup(hp->idle[i]);
    hp->n_idle = 0;
    return APR_SUCCESS;
}

ctfl_http_pool *ctfl_http_pool_create(apr_pool_t *p, int max_idle)
{
    ctfl_http_pool *hp = apr_pcalloc(p, sizeof(*hp));
    if (ctfl_http_global_init() != 0) return NULL;
    if (apr_thread_mutex_create(&hp->lock, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) return NULL;
    hp->max_idle = max_idle > 0 ? max_idle : 0;
    hp->idle = apr_pcalloc(p, sizeof(CURL *) * (apr_size_t)(hp->max_idle + 1));
    hp->inherited = apr_pcalloc(p, sizeof(CURL *) * (apr_size_t)(hp->max_idle + 1));
    hp->owner = getpid();
    /* Registered after the mutex, so it runs before the mutex is destroyed. */
    apr_pool_cleanup_register(p, hp, pool_cleanup, apr_pool_cleanup_null);
    return hp;
}

/* Caller holds the lock. */
static void forget_inherited(ctfl_http_pool *hp)
{
    pid_t me = getpid();
    if (hp->owner != me) {
        /* Deliberately not curl_easy_cleanup (see top); still referenced, so the
         * few KB are accounted for rather than lost. */
        memcpy(hp->inherited, hp->idle, sizeof(CURL *) * (apr_size_t)hp->n_idle);
        hp->n_inherited = hp->n_idle;
        hp->n_idle = 0;
        hp->owner = me;
    }
}

void ctfl_http_pool_child_init(ctfl_http_pool *hp)
{
    if (!hp) return;
    apr_thread_mutex_lock(hp->lock);
    forget_inherited(hp);
    apr_thread_mutex_unlock(hp->lock);
}

static CURL *borrow(ctfl_http_pool *hp)
{
    CURL *h = NULL;
    apr_thread_mutex_lock(hp->lock);
    forget_inherited(hp);         /* also covers a child_init the glue forgot */
    if (hp->n_idle > 0) h = hp->idle[--hp->n_idle];
    apr_thread_mutex_unlock(hp->lock);
    return h ? h : curl_easy_init();
}

/* Only a handle whose last transfer ended cleanly goes back to the pool. */
static void give_back(ctfl_http_pool *hp, CURL *h, int clean)
{
    curl_easy_reset(h);           /* drop pointers into this request; keeps connections */
    if (clean) {
        apr_thread_mutex_lock(hp->lock);
        if (hp->owner == getpid() && hp->n_idle < hp->max_idle) {
            hp->idle[hp->n_idle++] = h;
            h = NULL;
        }
        apr_thread_mutex_unlock(hp->lock);
    }
    if (h) curl_easy_cleanup(h);
}

/* ---- one transfer --------------------------------------------------------- */

typedef struct {
    apr_pool_t *p;
    apr_size_t cap;
    char *buf;
    apr_size_t len, size;
    int too_large;
    const char *traceparent;
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    if (n > s->cap - s->len) {
        s->too_large = 1;
        return 0;                 /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->size) {
        apr_size_t want = s->size ? s->size * 2 : BODY_INITIAL;
        char *grown;
        if (want < s->len + n + 1) want = s->len + n + 1;
        if (s->cap < APR_SIZE_MAX && want > s->cap + 1) want = s->cap + 1;
        grown = apr_palloc(s->p, want);
        if (s->len) memcpy(grown, s->buf, s->len);
        s->buf = grown;
        s->size = want;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return n;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    static const char name[] = "traceparent:";
    sink *s = userdata;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        s->traceparent = NULL;    /* a new (final or 1xx) response starts */
    } else if (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        const char *v = line + sizeof(name) - 1, *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
        int printable = end > v && (size_t)(end - v) <= TRACEPARENT_MAX;
        for (const char *c = v; printable && c < end; c++)
            printable = (unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f;
        if (printable) s->traceparent = apr_pstrndup(s->p, v, (apr_size_t)(end - v));   /* it gets logged */
    }
    return n;
}

static int header_ok(const char *h)
{
    return h && strchr(h, ':') && !strpbrk(h, "\r\n");
}

static void set_error(ctfl_http_response *res, ctfl_http_outcome o, const char *msg)
{
    res->outcome = o;
    res->error = msg;
}

static ctfl_http_outcome map_error(CURLcode rc, const sink *s)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return CTFL_HTTP_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return CTFL_HTTP_CONNECT;
    case CURLE_FILESIZE_EXCEEDED: return CTFL_HTTP_TOO_LARGE;
    case CURLE_WRITE_ERROR: return s->too_large ? CTFL_HTTP_TOO_LARGE : CTFL_HTTP_ERROR;
    default: return CTFL_HTTP_ERROR;
    }
}

void ctfl_http_perform(ctfl_http_pool *hp, apr_pool_t *rp,
                       const ctfl_http_request *req, ctfl_http_response *res)
{
    apr_time_t start = apr_time_now();
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    sink s = { rp, req->max_response, NULL, 0, 0, 0, NULL };
    CURLcode rc = CURLE_OK;
    long status = 0, connects = 0;
    int bad = 0;
    CURL *h;

    memset(res, 0, sizeof(*res));
    res->body = "";
    if (!req->url || req->timeout_ms <= 0) {
        /* CURLOPT_TIMEOUT_MS 0 would mean "forever": never let that happen. */
        set_error(res, req->url ? CTFL_HTTP_TIMEOUT : CTFL_HTTP_ERROR, req->url ? "no time budget left" : "no url");
        return;
    }
    if (!hp || !(h = borrow(hp))) {
        set_error(res, CTFL_HTTP_ERROR, "no curl handle");
        return;
    }

    /* Our own headers: no "Expect: 100-continue" round trip; no implicit form type. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    hdrs = curl_slist_append(hdrs, req->content_type
                             ? apr_pstrcat(rp, "Content-Type: ", req->content_type, NULL) : "Content-Type:");
    if (req->content_type && strpbrk(req->content_type, "\r\n")) bad = 1;
    for (int i = 0; req->headers && i < req->headers->nelts; i++) {
        const char *line = APR_ARRAY_IDX(req->headers, i, const char *);
        if (!header_ok(line)) bad = 1;
        else hdrs = curl_slist_append(hdrs, line);
    }
    if (bad || !hdrs) {
        curl_slist_free_all(hdrs);
        give_back(hp, h, 0);
        set_error(res, CTFL_HTTP_ERROR, "invalid request header");
        return;
    }

    rc |= curl_easy_setopt(h, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    rc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, req->allow_insecure ? "http,https" : "https");
#else
    rc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS,
                           req->allow_insecure ? (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS) : (long)CURLPROTO_HTTPS);
#endif
    rc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    rc |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->timeout_ms);
    rc |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    rc |= curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 15L);
    rc |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(h, CURLOPT_PROXY, "");        /* ignore http_proxy & co. */
    rc |= curl_easy_setopt(h, CURLOPT_USERAGENT, CTFLOPT_NAME "/" CTFLOPT_VERSION);
    rc |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    rc |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    rc |= curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                           (curl_off_t)(req->max_response < (apr_size_t)0x7fffffff ? req->max_response : 0x7fffffff));
    rc |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    rc |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    rc |= curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    if (req->body) {
        rc |= curl_easy_setopt(h, CURLOPT_POST, 1L);
        rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    } else {
        rc |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }

    if (rc != CURLE_OK) {
        set_error(res, CTFL_HTTP_ERROR, "curl option rejected");
    } else {
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
        res->status = status;
        res->new_connections = (int)connects;
        res->traceparent = s.traceparent;
        if (rc == CURLE_OK) {
            res->outcome = CTFL_HTTP_OK;
            if (s.buf) {
                s.buf[s.len] = '\0';
                res->body = s.buf;
                res->body_len = s.len;
            }
        } else {
            ctfl_http_outcome o = map_error(rc, &s);
            if (o == CTFL_HTTP_TOO_LARGE)
                set_error(res, o, apr_psprintf(rp, "response body over %" APR_SIZE_T_FMT " bytes", req->max_response));
            else if (rc == CURLE_UNSUPPORTED_PROTOCOL && !req->allow_insecure && strncasecmp(req->url, "https:", 6) != 0)
                set_error(res, o, "plain http refused (https only)");
            else
                set_error(res, o, apr_pstrdup(rp, errbuf[0] ? errbuf : curl_easy_strerror(rc)));
        }
    }
    curl_slist_free_all(hdrs);
    give_back(hp, h, rc == CURLE_OK);
    res->elapsed = apr_time_now() - start;
}

const char *ctfl_http_failure(apr_pool_t *p, const ctfl_http_response *res)
{
    switch (res->outcome) {
    case CTFL_HTTP_OK: return NULL;
    case CTFL_HTTP_TIMEOUT: return "timeout";
    case CTFL_HTTP_TOO_LARGE: return "oversize";
    case CTFL_HTTP_CONNECT: return apr_pstrcat(p, "connect: ", res->error, NULL);
    default: return apr_pstrcat(p, "transport: ", res->error, NULL);
    }
}
