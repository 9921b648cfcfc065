/* Private declarations shared by the Apache glue files of mod_ctflopt.
 * Only glue (mod_ctflopt.c, ctflopt_*.c) includes httpd headers; the pure
 * logic lives in ctfl_*.c. */
#ifndef CTFLOPT_PRIVATE_H
#define CTFLOPT_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "ctfl_http.h"
#include "ctfl_json.h"
#include "ctfl_breaker.h"
#include "ctflopt_version.h"

/* mod_ctflopt.c declares the module itself (AP_DECLARE_MODULE). */
#ifndef CTFLOPT_MAIN_FILE
APLOG_USE_MODULE(ctflopt);
#endif
extern module AP_MODULE_DECLARE_DATA ctflopt_module;

/* Stable message ids: every warning and error carries one (README, Troubleshooting). */
#define CTFLOPTNO(n) "CTFLOPT" #n ": "

#define CTFLOPT_UNSET (-1)

typedef enum { CONSENT_UNKNOWN = -1, CONSENT_DENIED = 0, CONSENT_GRANTED = 1 } ctflopt_consent;

typedef enum {
    USERID_UNSET = 0, USERID_NONE, USERID_REMOTE_USER, USERID_HEADER, USERID_ENV
} ctflopt_userid_kind;

#define AUTOTRACK_VIEWS  1
#define AUTOTRACK_CLICKS 2
#define AUTOTRACK_HOVERS 4

/* The Contentful CDA of a server (CtflOptContentful*, see ctflopt_cache.c). */
typedef struct {
    const char *space;
    const char *environment;
    const char *token;             /* never logged */
    const char *url;               /* normalized to end with '/' */
} ctflopt_cda_conf;

/* Per server (vhost): how to reach the services. Merged vhost <- main. */
typedef struct {
    const char *client_id;
    const char *environment;
    const char *experience_url;      /* normalized to end with '/' */
    const char *insights_url;
    int allow_insecure;              /* CTFLOPT_UNSET, 0, 1 */
    long timeout_ms;
    long max_response;
    int trusted_proxy;
    long breaker_count;              /* CtflOptBreaker: failures that open it (0: off) */
    long breaker_seconds;            /* ... within this window, then skip this long */
    ctflopt_cda_conf cda;
    int engine_used;                 /* CtflOptEngine On appeared in this server's config */
    ctfl_breaker *breaker;           /* Experience API, per process, made in child_init */
    ctfl_breaker *cda_breaker;       /* CDA, same settings */
} ctflopt_srv_conf;

/* Per directory: what to do for a request. Merged child <- parent. */
typedef struct {
    int engine;
    const char *consent_cookie, *consent_granted, *consent_denied;
    int consent_default;             /* CTFLOPT_UNSET-1 when unset, else ctflopt_consent */
    apr_array_header_t *locales;     /* normalized const char *, first is the default */
    const char *cookie_domain;
    int cookie_domain_set;
    long cookie_max_age;
    const char *cookie_samesite;
    ctflopt_userid_kind userid_kind;
    const char *userid_name;
    const char *websdk_url;
    int bootstrap;
    int autotrack;                   /* AUTOTRACK_* mask, CTFLOPT_UNSET */
    const char *nonce_env;
    int nonce_set;
    int forward_headers;
    int consent_sync;
    int debug;                       /* CtflOptDebug */
    long max_element_bytes;          /* CtflOptMaxElementBytes */
    long max_elements;               /* CtflOptMaxElements */
} ctflopt_dir_conf;

#define CONSENT_DEFAULT_UNSET (-2)

/* Defaults, applied by the getters below. */
#define DEFAULT_EXPERIENCE_URL "https://experience.ninetailed.co/"
#define DEFAULT_INSIGHTS_URL   "https://ingest.insights.ninetailed.co/"
#define DEFAULT_WEBSDK_URL \
    "https://cdn.jsdelivr.net/npm/@contentful/optimization-web@1.3.0/dist/contentful-optimization-web.umd.js"
#define DEFAULT_TIMEOUT_MS     500
#define DEFAULT_MAX_RESPONSE   (512 * 1024)
#define DEFAULT_COOKIE_MAX_AGE 31536000L
#define DEFAULT_MAX_ELEMENT_BYTES (1024L * 1024)
#define DEFAULT_MAX_ELEMENTS   1000
#define DEFAULT_BREAKER_COUNT  5
#define DEFAULT_BREAKER_SECONDS 30
#define AID_COOKIE             "ctfl-opt-aid"
#define CTFLOPT_NOTE_ACCEPT_ENCODING "ctflopt-client-accept-encoding"
#define CTFLOPT_NOTE_FILTERED        "ctflopt-filter-ran"
#define CTFLOPT_NOTE_CDA_DEADLINE    "ctflopt-cda-deadline"
#define LEGACY_AID_COOKIE      "ntaid"

/* What the request hook decided, handed to the output filter. */
typedef struct {
    ctflopt_consent consent;
    const char *status;              /* CTFLOPT_STATUS value */
    const char *locale;              /* negotiated, NULL when none configured */
    ctfl_experience_data *data;      /* evaluation result, NULL unless status "ok" */
    int private_response;            /* Cache-Control: private is in err_headers_out */
} ctflopt_req;

/* Counters (per process), see ctflopt_status.c. */
typedef enum {
    CNT_REQUESTS_SEEN, CNT_EVALUATED, CNT_EVAL_OK, CNT_EVAL_TIMEOUT, CNT_EVAL_ERROR,
    CNT_NO_CONSENT, CNT_SKIPPED, CNT_INVALID_PROFILE_ID, CNT_API_CONNECTIONS,
    CNT_BREAKER_SKIPPED, CNT_BREAKER_OPENED,
    CNT_FILTERED, CNT_INJECTED, CNT_FILTER_SKIPPED, CNT_BYTES_SCANNED, CNT_CAPS_HIT,
    CNT_ELEMENTS_REWRITTEN, CNT_ELEMENTS_KEPT,
    CNT_ENTRY_CACHE_HITS, CNT_ENTRY_MEMORY_HITS, CNT_ENTRY_CACHE_MISSES, CNT_ENTRY_NEGATIVE_HITS, CNT_ENTRY_STALE_SERVED,
    CNT_CDA_CALLS, CNT_CDA_ERRORS, CNT_CDA_TIMEOUTS, CNT_ENTRY_CACHE_STORE_ERRORS, CNT_CDA_SKIPPED,
    CNT__COUNT
} ctflopt_counter;

/* ctflopt_config.c */
extern const command_rec ctflopt_cmds[];
void *ctflopt_create_dir_conf(apr_pool_t *p, char *dir);
void *ctflopt_merge_dir_conf(apr_pool_t *p, void *base, void *add);
void *ctflopt_create_srv_conf(apr_pool_t *p, server_rec *s);
void *ctflopt_merge_srv_conf(apr_pool_t *p, void *base, void *add);
int ctflopt_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
ctflopt_consent ctflopt_dir_consent_default(const ctflopt_dir_conf *d);
long ctflopt_dir_cookie_max_age(const ctflopt_dir_conf *d);
int ctflopt_dir_autotrack(const ctflopt_dir_conf *d);
const char *ctflopt_srv_experience_url(const ctflopt_srv_conf *s);
const char *ctflopt_srv_insights_url(const ctflopt_srv_conf *s);
const char *ctflopt_srv_environment(const ctflopt_srv_conf *s);
void ctflopt_breakers_child_init(apr_pool_t *pchild, server_rec *s);

/* ctflopt_request.c */
int ctflopt_fixups(request_rec *r);
int ctflopt_proxy_identity(request_rec *r);
ctflopt_req *ctflopt_req_get(request_rec *r);

/* ctflopt_status.c */
void ctflopt_count(ctflopt_counter c, apr_uint32_t n);
int ctflopt_log_allowed(int reason_slot);   /* rate limiter: 1 when this reason may log now */
apr_uint32_t ctflopt_log_suppressed(int reason_slot);
void ctflopt_status_register_hooks(void);

/* Per-process curl pool (mod_ctflopt.c). */
ctfl_http_pool *ctflopt_http_pool(void);

/* filters/ctflopt_filter.c */
void ctflopt_filter_register(void);
void ctflopt_insert_filter(request_rec *r);
int ctflopt_is_html(const char *content_type);

#endif
