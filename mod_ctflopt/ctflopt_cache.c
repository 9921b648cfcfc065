/* ctflopt_cache — CDA directives, the shared entry cache (ap_socache) and the
 * per-page fetch (see ctflopt_cache.h for the cache layout).
 *
 * Lifecycle follows mod_authn_socache: the mutex is registered in pre_config
 * (so `Mutex ... ctflopt-cache` can tune it), the cache is created and
 * initialized in the real post_config pass (never in the dry run), the global
 * mutex is re-attached in child_init, and a pconf cleanup destroys the cache.
 * The mutex only exists for providers that are not multi-process safe
 * (AP_SOCACHE_FLAG_NOTMPSAFE, e.g. shmcb).
 *
 * Per-server CDA settings live in a table keyed by server_rec (config time
 * only writes it; requests only read it) and are merged vhost <- main on
 * read, so the module's own srv-conf struct needs no new member. */
#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_sha1.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <ap_mpm.h>
#include <ap_provider.h>
#include <ap_socache.h>
#include <http_core.h>
#include <http_main.h>
#include <util_mutex.h>
#include "ctfl_objcache.h"

#include "ctflopt_cache.h"
#include "ctfl_locale.h"

/* ---- per-server CDA settings ------------------------------------------------ */

/* They live in ctflopt_srv_conf (merged vhost <- main at startup). */
typedef ctflopt_cda_conf cda_conf;

static cda_conf *conf_for(cmd_parms *cmd)
{
    ctflopt_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &ctflopt_module);
    return &sc->cda;
}

/* The server's settings with the defaults applied. */
static cda_conf effective(server_rec *s)
{
    const ctflopt_srv_conf *sc = ap_get_module_config(s->module_config, &ctflopt_module);
    cda_conf c = sc->cda;
    if (!c.environment) c.environment = "master";
    if (!c.url) c.url = CTFLOPT_CDA_DEFAULT_URL;
    return c;
}

int ctflopt_cda_enabled(server_rec *s)
{
    const ctflopt_srv_conf *sc = ap_get_module_config(s->module_config, &ctflopt_module);
    return sc->cda.space && sc->cda.token;
}

/* ---- the cache (process-wide; written at config time only) --------------- */

static const ap_socache_provider_t *cache_provider;
static ap_socache_instance_t *cache_instance;
static const char *cache_type;                 /* provider name, for messages */
static const char *cache_args;                 /* as configured, for the banner */
static int cache_ttl = CTFLOPT_CACHE_DEFAULT_TTL;
static int cache_ready;                        /* initialized in this generation */
static int cache_needed;                       /* some server has a CDA space */
static apr_global_mutex_t *cache_mutex;        /* NOTMPSAFE providers only */
/* This process's decoded copies of fresh objects (created in child_init): a
 * page whose objects are all here reads neither the shared cache nor JSON. */
static ctfl_objcache *decoded;
#define DECODED_MAX_BYTES ((apr_size_t)32 * 1024 * 1024)   /* per process; prefork: / 8 */
#define DECODED_MAX_OBJECTS 16384

static void reset_cache_settings(void)
{
    cache_provider = NULL;
    cache_instance = NULL;
    cache_type = cache_args = NULL;
    cache_ttl = CTFLOPT_CACHE_DEFAULT_TTL;
    cache_ready = cache_needed = 0;
    cache_mutex = NULL;
}

static apr_status_t cache_cleanup(void *data)
{
    if (cache_ready && cache_provider && cache_instance)
        cache_provider->destroy(cache_instance, (server_rec *)data);
    reset_cache_settings();          /* the global mutex has its own pool cleanup */
    return APR_SUCCESS;
}

static int negative_ttl(void)
{
    return cache_ttl < CTFLOPT_CACHE_NEGATIVE_SEC ? cache_ttl : CTFLOPT_CACHE_NEGATIVE_SEC;
}

/* ---- directives ----------------------------------------------------------- */

const char *ctflopt_cache_set_space(cmd_parms *cmd, void *dconf, const char *arg)
{
    if (!ctfl_cda_id_valid(arg))
        return apr_psprintf(cmd->pool, "%s: '%s' is not a Contentful space id", cmd->cmd->name, arg);
    conf_for(cmd)->space = arg;
    return NULL;
}

const char *ctflopt_cache_set_environment(cmd_parms *cmd, void *dconf, const char *arg)
{
    if (!ctfl_cda_id_valid(arg))
        return apr_psprintf(cmd->pool, "%s: '%s' is not a Contentful environment id", cmd->cmd->name, arg);
    conf_for(cmd)->environment = arg;
    return NULL;
}

/* Messages never quote a token, not even a rejected one. */
const char *ctflopt_cache_set_token(cmd_parms *cmd, void *dconf, const char *arg)
{
    if (!ctfl_cda_token_valid(arg))
        return apr_psprintf(cmd->pool, "%s: the value is not an access token (1..%d printable "
                            "characters, no spaces)", cmd->cmd->name, CTFL_CDA_TOKEN_MAX);
    conf_for(cmd)->token = arg;
    return NULL;
}

/* Read once at startup (as root, so the file can be private to root), trimmed. */
const char *ctflopt_cache_set_token_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->temp_pool, arg);
    char buf[CTFL_CDA_TOKEN_MAX + 64];
    apr_size_t n = sizeof(buf) - 1, start = 0;
    apr_file_t *f;
    apr_status_t rv;

    if (!path) return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, cmd->temp_pool);
    if (rv != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "%s: cannot open '%s': %pm", cmd->cmd->name, path, &rv);
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv))
        return apr_psprintf(cmd->pool, "%s: cannot read '%s': %pm", cmd->cmd->name, path, &rv);
    if (n == sizeof(buf) - 1)
        return apr_psprintf(cmd->pool, "%s: '%s' is too large for an access token", cmd->cmd->name, path);
    while (n > 0 && apr_isspace(buf[n - 1])) n--;
    while (start < n && apr_isspace(buf[start])) start++;
    buf[n] = '\0';
    if (!ctfl_cda_token_valid(buf + start)) {
        memset(buf, 0, sizeof(buf));
        return apr_psprintf(cmd->pool, "%s: '%s' does not hold an access token (1..%d printable "
                            "characters, no spaces)", cmd->cmd->name, path, CTFL_CDA_TOKEN_MAX);
    }
    conf_for(cmd)->token = apr_pstrdup(cmd->pool, buf + start);
    memset(buf, 0, sizeof(buf));
    return NULL;
}

const char *ctflopt_cache_set_url(cmd_parms *cmd, void *dconf, const char *arg)
{
    apr_uri_t uri;
    const char *s;
    int ok = (!strncasecmp(arg, "https://", 8) || !strncasecmp(arg, "http://", 7))
             && apr_uri_parse(cmd->temp_pool, arg, &uri) == APR_SUCCESS
             && uri.hostname && *uri.hostname && !uri.query && !uri.fragment;
    for (s = arg; ok && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\') ok = 0;
    }
    if (!ok)
        return apr_psprintf(cmd->pool, "%s: '%s' is not an absolute http(s) URL without query",
                            cmd->cmd->name, arg);
    conf_for(cmd)->url = arg[strlen(arg) - 1] == '/' ? arg : apr_pstrcat(cmd->pool, arg, "/", NULL);
    return NULL;
}

const char *ctflopt_cache_set_entry_cache(cmd_parms *cmd, void *dconf, const char *spec, const char *ttl)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY), *sep, *name, *args = NULL;
    const ap_socache_provider_t *provider;

    if (err) return err;
    sep = strchr(spec, ':');
    name = sep ? apr_pstrmemdup(cmd->pool, spec, (apr_size_t)(sep - spec)) : spec;
    if (sep && sep[1]) args = sep + 1;
    provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!provider)
        return apr_psprintf(cmd->pool, "%s: unknown socache provider '%s' (load mod_socache_%s first)",
                            cmd->cmd->name, name, name);
    if (ttl) {
        char *end;
        apr_int64_t v = apr_strtoi64(ttl, &end, 10);
        if (!apr_isdigit(*ttl) || *end || v < 1 || v > 7 * 86400)
            return apr_psprintf(cmd->pool, "%s: TTL '%s' is not a number of seconds in 1..604800",
                                cmd->cmd->name, ttl);
        cache_ttl = (int)v;
    }
    cache_instance = NULL;
    /* shmcb without arguments gets our size in post_config; everything else
     * is created now so its own argument errors stop the configuration. */
    if (args || strcmp(name, "shmcb") != 0) {
        err = provider->create(&cache_instance, args, cmd->temp_pool, cmd->pool);
        if (err) return apr_psprintf(cmd->pool, "%s %s: %s", cmd->cmd->name, spec, err);
    }
    cache_provider = provider;
    cache_type = name;
    cache_args = args;
    return NULL;
}

/* ---- hooks ------------------------------------------------------------------ */

static int cache_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    apr_status_t rv = ap_mutex_register(pconf, CTFLOPT_CACHE_MUTEX, NULL, APR_LOCK_DEFAULT, 0);
    if (rv != APR_SUCCESS) {
        ap_log_perror(APLOG_MARK, APLOG_CRIT, rv, plog, CTFLOPTNO(0304)
                      "failed to register the %s mutex", CTFLOPT_CACHE_MUTEX);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    reset_cache_settings();
    return OK;
}

static const char *host_of(server_rec *s)
{
    return s->server_hostname ? s->server_hostname : "";
}

static int cache_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    for (server_rec *v = s; v; v = v->next) {
        const ctflopt_srv_conf *sc = ap_get_module_config(v->module_config, &ctflopt_module);
        cda_conf c = effective(v);
        if (!c.space && !c.token) continue;
        if (!c.space || !c.token) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, v, CTFLOPTNO(0305)
                         "%s (server %s)", c.space ? "CtflOptContentfulSpace needs CtflOptContentfulToken "
                         "or CtflOptContentfulTokenFile" : "CtflOptContentfulToken needs CtflOptContentfulSpace",
                         host_of(v));
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!strncasecmp(c.url, "http://", 7) && (!sc || sc->allow_insecure != 1)) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, v, CTFLOPTNO(0306)
                         "CtflOptContentfulURL %s: plain http:// is refused unless "
                         "CtflOptAllowInsecureAPI On (server %s)", c.url, host_of(v));
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        cache_needed = 1;
    }
    return OK;
}

static int cache_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    static const struct ap_socache_hints hints = { APR_SHA1_DIGESTSIZE, 2048, apr_time_from_sec(60) };
    apr_status_t rv;
    const char *err;

    /* httpd runs post_config twice at startup; the first pass is a dry run. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG || !cache_needed) return OK;

    if (!cache_provider) {
        cache_provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb", AP_SOCACHE_PROVIDER_VERSION);
        cache_type = "shmcb";
        if (!cache_provider) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CTFLOPTNO(0307)
                         "the Contentful entry cache needs an socache provider: load mod_socache_shmcb "
                         "(a2enmod socache_shmcb) or set CtflOptEntryCache");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (!cache_instance) {
        /* Our default size: raw entries are KBs, not SSL sessions. */
        const char *args = apr_psprintf(pconf, "%s(%ld)", ap_runtime_dir_relative(pconf, "ctflopt-entries.shmcb"),
                                        CTFLOPT_CACHE_SHMCB_SIZE);
        err = cache_provider->create(&cache_instance, strcmp(cache_type, "shmcb") == 0 ? args : NULL, ptemp, pconf);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CTFLOPTNO(0307)
                         "cannot create the %s entry cache: %s", cache_type, err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (cache_provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&cache_mutex, NULL, CTFLOPT_CACHE_MUTEX, NULL, s, pconf, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CTFLOPTNO(0308)
                         "cannot create the %s mutex", CTFLOPT_CACHE_MUTEX);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    rv = cache_provider->init(cache_instance, "ctflopt-entries", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CTFLOPTNO(0307)
                     "cannot initialize the %s entry cache", cache_type);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    cache_ready = 1;
    apr_pool_cleanup_register(pconf, s, cache_cleanup, apr_pool_cleanup_null);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CTFLOPTNO(0309)
                 "Contentful entry cache: %s%s%s, fresh %d s, stale-while-error %d s, missing ids %d s",
                 cache_type, cache_args ? ":" : "", cache_args ? cache_args : "", cache_ttl,
                 CTFLOPT_CACHE_STALE_SEC, negative_ttl());
    return OK;
}

static void cache_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    int threaded = 0;
    /* prefork runs many more (single-threaded) processes, each with its own copy */
    if (ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) != APR_SUCCESS) threaded = 0;
    decoded = cache_ready ? ctfl_objcache_create(pchild, threaded ? DECODED_MAX_BYTES
                                                         : DECODED_MAX_BYTES / 8, DECODED_MAX_OBJECTS)
                          : NULL;
    if (!cache_mutex) return;
    rv = apr_global_mutex_child_init(&cache_mutex, apr_global_mutex_lockfile(cache_mutex), pchild);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CTFLOPTNO(0310)
                     "cannot attach the %s mutex in this child", CTFLOPT_CACHE_MUTEX);
}

void ctflopt_cache_register_hooks(void)
{
    ap_hook_pre_config(cache_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(cache_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(cache_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(cache_child_init, NULL, NULL, APR_HOOK_MIDDLE);
}

/* ---- cache access --------------------------------------------------------- */

static apr_status_t locked_retrieve(server_rec *s, const unsigned char *id, unsigned char *buf,
                                    unsigned int *len, apr_pool_t *p)
{
    apr_status_t rv;
    if (cache_mutex && (rv = apr_global_mutex_lock(cache_mutex)) != APR_SUCCESS) return rv;
    rv = cache_provider->retrieve(cache_instance, s, id, APR_SHA1_DIGESTSIZE, buf, len, p);
    if (cache_mutex) apr_global_mutex_unlock(cache_mutex);
    return rv;
}

static apr_status_t locked_store(server_rec *s, const unsigned char *id, apr_time_t expiry,
                                 unsigned char *data, unsigned int len, apr_pool_t *p)
{
    apr_status_t rv;
    if (cache_mutex && (rv = apr_global_mutex_lock(cache_mutex)) != APR_SUCCESS) return rv;
    rv = cache_provider->store(cache_instance, s, id, APR_SHA1_DIGESTSIZE, expiry, data, len, p);
    if (cache_mutex) apr_global_mutex_unlock(cache_mutex);
    return rv;
}

typedef enum { SLOT_MISS = 0, SLOT_FRESH, SLOT_STALE, SLOT_NEGATIVE } slot_state;

typedef struct {
    const char *key;               /* in the shared cache (and this process's memory) */
    slot_state state;
    const char *json;              /* FRESH / STALE, as read or fetched (NULL: decoded only) */
    apr_size_t json_len;
    apr_time_t stored_at;
    const ctfl_value *value;       /* decoded, once asked for */
} slot;

struct ctflopt_entry_set {
    request_rec *r;
    cda_conf conf;
    const char *locale;            /* normalized, or NULL */
    apr_hash_t *slots;             /* "E:id" / "A:id" -> slot*: one cache read per object */
    unsigned char *buf;            /* retrieve buffer, allocated on first use (once a page) */
    unsigned int buf_size;
    ctfl_entries *index;
    ctflopt_entries_stats *st;
    apr_time_t now;
    int store_failed;              /* the provider refused one: spare it (and the log) the rest */
};

#define CTFLOPT_ENTRY_SET_KEY "ctflopt-entry-set"

static const char *cache_key(const ctflopt_entry_set *set, ctfl_cda_kind kind, const char *id)
{
    return apr_pstrcat(set->r->pool, "ctfl:v1:", set->conf.space, ":", set->conf.environment, ":",
                       set->locale ? set->locale : "-", ":", kind == CTFL_CDA_ASSET ? "asset:" : "entry:",
                       id, "@", set->conf.url, NULL);
}

static void cache_id(const char *key, unsigned char id[APR_SHA1_DIGESTSIZE])
{
    apr_sha1_ctx_t ctx;
    apr_sha1_init(&ctx);
    apr_sha1_update(&ctx, key, (unsigned int)strlen(key));
    apr_sha1_final(id, &ctx);
}

/* "ctfl1 <K> <stored_at>\n<key>\n<json>": 0 and the parts, or -1. */
static int parse_value(const char *v, apr_size_t len, const char *key, char *kind,
                       apr_time_t *stored_at, const char **json, apr_size_t *json_len)
{
    const char *s, *end = v + len;
    apr_size_t kl = strlen(key);
    apr_int64_t t = 0;
    int digits = 0;
    if (len < 10 || memcmp(v, "ctfl1 ", 6) != 0 || v[7] != ' ') return -1;
    *kind = v[6];
    /* at most 18 digits: no overflow (µs since 1970 have 16) */
    for (s = v + 8; s < end && apr_isdigit(*s) && digits < 18; s++, digits++) t = t * 10 + (*s - '0');
    if (!digits || s >= end || *s++ != '\n') return -1;
    if ((apr_size_t)(end - s) < kl + 1 || memcmp(s, key, kl) != 0 || s[kl] != '\n') return -1;
    s += kl + 1;
    *stored_at = (apr_time_t)t;
    *json = s;
    *json_len = (apr_size_t)(end - s);
    if (*kind == 'M') return *json_len == 0 ? 0 : -1;
    return (*kind == 'E' || *kind == 'A') && *json_len > 0 ? 0 : -1;
}

int ctflopt_cache_memory_stats(ctfl_objcache_stats *st)
{
    if (!decoded) return 0;
    ctfl_objcache_get_stats(decoded, st);
    return 1;
}

/* A new, empty view of one object for this page, replacing any earlier one. */
static slot *new_slot(ctflopt_entry_set *set, ctfl_cda_kind kind, const char *id, const char *mkey)
{
    slot *sl = apr_pcalloc(set->r->pool, sizeof(*sl));
    sl->key = cache_key(set, kind, id);
    apr_hash_set(set->slots, mkey, APR_HASH_KEY_STRING, sl);
    return sl;
}

static const char *memo_key(const ctflopt_entry_set *set, ctfl_cda_kind kind, const char *id)
{
    return apr_pstrcat(set->r->pool, kind == CTFL_CDA_ASSET ? "A:" : "E:", id, NULL);
}

/* This page's view of one object (read once): this process's decoded copy when
 * it is fresh (the shared cache is not read), else what the shared cache holds. */
static slot *read_slot(ctflopt_entry_set *set, ctfl_cda_kind kind, const char *id)
{
    const char *mkey = memo_key(set, kind, id), *json;
    slot *sl = apr_hash_get(set->slots, mkey, APR_HASH_KEY_STRING);
    unsigned char cid[APR_SHA1_DIGESTSIZE];
    unsigned int len;
    apr_size_t json_len;
    apr_time_t stored_at;
    char k;

    if (sl) return sl;
    sl = new_slot(set, kind, id, mkey);
    if (decoded && (sl->value = ctfl_objcache_get(decoded, sl->key,
                                                  set->now - apr_time_from_sec(cache_ttl),
                                                  set->r->pool, &sl->stored_at)) != NULL) {
        sl->state = SLOT_FRESH;
        set->st->hits++;
        set->st->memory_hits++;
        return sl;
    }
    if (!cache_ready) {
        set->st->misses++;
        return sl;
    }
    if (!set->buf) {
        set->buf_size = CTFLOPT_CACHE_MAX_VALUE;
        set->buf = apr_palloc(set->r->pool, set->buf_size);
    }
    cache_id(sl->key, cid);
    len = set->buf_size;
    if (locked_retrieve(set->r->server, cid, set->buf, &len, set->r->pool) == APR_SUCCESS
        && len <= set->buf_size
        && parse_value((const char *)set->buf, len, sl->key, &k, &stored_at, &json, &json_len) == 0
        && (k == 'M' || k == (kind == CTFL_CDA_ASSET ? 'A' : 'E'))) {
        if (k == 'M') {
            sl->state = SLOT_NEGATIVE;
        } else {
            sl->json = apr_pstrmemdup(set->r->pool, json, json_len);
            sl->json_len = json_len;
            sl->stored_at = stored_at;
            sl->state = set->now - stored_at > apr_time_from_sec(cache_ttl) ? SLOT_STALE : SLOT_FRESH;
        }
    }
    switch (sl->state) {
    case SLOT_FRESH: set->st->hits++; break;
    case SLOT_NEGATIVE: set->st->negative_hits++; break;
    case SLOT_STALE: break;                  /* counted when served (stale_served) */
    default: set->st->misses++; break;
    }
    return sl;
}

typedef struct {
    ctfl_cda_kind kind;
    const char *id;
} decode_what;

static const ctfl_value *decode_object(apr_pool_t *p, const char *text, apr_size_t len, void *ctx)
{
    const decode_what *w = ctx;
    return ctfl_cda_decode_object(p, text, len, w->kind, w->id);
}

/* The object, decoded once per page; a fresh one is kept decoded in this process. */
static const ctfl_value *entry_set_object(void *ctx, ctfl_cda_kind kind, const char *id,
                                          int *corrupt)
{
    ctflopt_entry_set *set = ctx;
    slot *sl = read_slot(set, kind, id);
    decode_what what = { kind, id };

    if (sl->value || (sl->state != SLOT_FRESH && sl->state != SLOT_STALE) || !sl->json)
        return sl->value;
    if (sl->state == SLOT_FRESH && decoded)
        sl->value = ctfl_objcache_put(decoded, sl->key, sl->stored_at, sl->json, sl->json_len,
                                      decode_object, &what, set->r->pool);
    else
        sl->value = ctfl_cda_decode_object(set->r->pool, sl->json, sl->json_len, kind, id);
    if (!sl->value) *corrupt = 1;
    return sl->value;
}

static void log_store_failure(ctflopt_entry_set *set, apr_status_t rv, const char *id, apr_size_t len)
{
    if (!ctflopt_log_allowed(CTFLOPT_LOG_SLOT_CACHE_STORE)) return;
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, set->r, CTFLOPTNO(0303)
                  "cannot store %s (%" APR_SIZE_T_FMT " bytes) in the %s entry cache%s; it is fetched "
                  "again until it fits [%u similar lines suppressed]", id, len, cache_type,
                  len > CTFLOPT_CACHE_MAX_VALUE ? " (over 256 KiB)" : "",
                  ctflopt_log_suppressed(CTFLOPT_LOG_SLOT_CACHE_STORE));
}

/* Store one object (or a missing marker: json NULL) and make it this page's view. */
static void put_slot(ctflopt_entry_set *set, ctfl_cda_kind kind, const char *id, const char *json,
                     apr_size_t json_len)
{
    slot *sl = new_slot(set, kind, id, memo_key(set, kind, id));
    const char *key = sl->key;
    char k = !json ? 'M' : kind == CTFL_CDA_ASSET ? 'A' : 'E';
    char *head = apr_psprintf(set->r->pool, "ctfl1 %c %" APR_TIME_T_FMT "\n%s\n", k, set->now, key);
    apr_size_t head_len = strlen(head), total = head_len + (json ? json_len : 0);
    apr_time_t keep = apr_time_from_sec(json ? cache_ttl + CTFLOPT_CACHE_STALE_SEC : negative_ttl());
    unsigned char cid[APR_SHA1_DIGESTSIZE];
    apr_status_t rv;

    sl->state = json ? SLOT_FRESH : SLOT_NEGATIVE;
    sl->json = json;
    sl->json_len = json ? json_len : 0;
    sl->stored_at = set->now;
    if (decoded) ctfl_objcache_remove(decoded, key);     /* the shared cache holds news */
    if (!cache_ready) return;
    if (set->store_failed) {
        set->st->store_errors++;
        return;
    }
    if (total > CTFLOPT_CACHE_MAX_VALUE) {
        set->st->store_errors++;
        log_store_failure(set, APR_SUCCESS, id, total);
        return;
    }
    {
        unsigned char *value = apr_palloc(set->r->pool, total);
        memcpy(value, head, head_len);
        if (json) memcpy(value + head_len, json, json_len);
        cache_id(key, cid);
        rv = locked_store(set->r->server, cid, set->now + keep, value, (unsigned int)total, set->r->pool);
    }
    if (rv != APR_SUCCESS) {
        set->st->store_errors++;
        /* shmcb and dbm refuse one object that does not fit (ENOSPC); any
         * other error (memcache/redis down) would refuse, and log, them all. */
        if (!APR_STATUS_IS_ENOSPC(rv)) set->store_failed = 1;
        log_store_failure(set, rv, id, total);
    }
}

static void log_cda_failure(ctflopt_entry_set *set, const ctfl_cda_result *res, int ids, int stale)
{
    int timeout = res->status == CTFL_CDA_TIMEOUT;
    int slot_no = timeout ? CTFLOPT_LOG_SLOT_CDA_TIMEOUT : CTFLOPT_LOG_SLOT_CDA_ERROR;
    if (!ctflopt_log_allowed(slot_no)) return;
    if (timeout)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, set->r, CTFLOPTNO(0301)
                      "Contentful CDA timed out after %" APR_TIME_T_FMT " ms (%d ids, %d requests); "
                      "%d stale objects served, the rest keeps the baseline [%u similar lines suppressed]",
                      apr_time_as_msec(res->elapsed), ids, res->requests, stale,
                      ctflopt_log_suppressed(slot_no));
    else
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, set->r, CTFLOPTNO(0302)
                      "Contentful CDA request failed: %s%s%s (%d ids); %d stale objects served, the "
                      "rest keeps the baseline [%u similar lines suppressed]",
                      res->reason ? res->reason : "unknown error", res->traceparent ? ", traceparent " : "",
                      res->traceparent ? res->traceparent : "", ids, stale, ctflopt_log_suppressed(slot_no));
}

/* What to ask the CDA for after a walk over the cache: the baseline (root)
 * of every tree holding a missing, stale or unreadable object. Its
 * include=10 response brings the whole tree back (every node is at most 10
 * hops from its root, assets included, which cannot be asked for by id on
 * /entries), so the request is exactly the SDK's: sys.id[in]=<baselines>. */
static apr_array_header_t *ids_to_fetch(ctflopt_entry_set *set, const ctfl_cda_walk *w)
{
    apr_pool_t *p = set->r->pool;
    apr_array_header_t *ids = apr_array_make(p, 8, sizeof(const char *));
    apr_hash_t *root_of = apr_hash_make(p), *queued = apr_hash_make(p);
    /* Breadth-first order: a node's `via` entry was visited before it. */
    for (int i = 0; i < w->nodes->nelts; i++) {
        const ctfl_cda_node *n = &APR_ARRAY_IDX(w->nodes, i, ctfl_cda_node);
        slot *sl = read_slot(set, n->kind, n->id);           /* memoized by the walk */
        const char *root = n->via ? apr_hash_get(root_of, n->via, APR_HASH_KEY_STRING) : n->id;
        if (!root) continue;                                 /* cannot happen: via precedes */
        if (n->kind == CTFL_CDA_ENTRY) apr_hash_set(root_of, n->id, APR_HASH_KEY_STRING, root);
        if (!(n->state == CTFL_CDA_NODE_CORRUPT || sl->state == SLOT_MISS || sl->state == SLOT_STALE)) continue;
        if (apr_hash_get(queued, root, APR_HASH_KEY_STRING)) continue;
        apr_hash_set(queued, root, APR_HASH_KEY_STRING, root);
        APR_ARRAY_PUSH(ids, const char *) = root;
    }
    return ids;
}

static int count_stale(ctflopt_entry_set *set, const ctfl_cda_walk *w)
{
    int n = 0;
    for (int i = 0; i < w->nodes->nelts; i++) {
        const ctfl_cda_node *node = &APR_ARRAY_IDX(w->nodes, i, ctfl_cda_node);
        if (node->state == CTFL_CDA_NODE_PRESENT && read_slot(set, node->kind, node->id)->state == SLOT_STALE) n++;
    }
    return n;
}

static long cda_max_response(const ctflopt_srv_conf *sc)
{
    long configured = sc && sc->max_response != CTFLOPT_UNSET ? sc->max_response : DEFAULT_MAX_RESPONSE;
    return configured > CTFLOPT_CDA_MIN_RESPONSE ? configured : CTFLOPT_CDA_MIN_RESPONSE;
}

/* Milliseconds of CDA time this page may still spend; the clock starts at the
 * page's first fetch. A failed fetch spends the rest: the CDA is not asked again
 * for this page (what the cache holds, stale included, is still used). */
static long page_budget_left(request_rec *r, const ctflopt_srv_conf *sc)
{
    long budget = sc && sc->timeout_ms != CTFLOPT_UNSET ? sc->timeout_ms : DEFAULT_TIMEOUT_MS;
    const char *deadline = apr_table_get(r->notes, CTFLOPT_NOTE_CDA_DEADLINE);
    apr_time_t now = apr_time_now(), end;
    if (!deadline) {
        end = now + apr_time_from_msec(budget);
        apr_table_setn(r->notes, CTFLOPT_NOTE_CDA_DEADLINE,
                       apr_psprintf(r->pool, "%" APR_TIME_T_FMT, end));
    }
    else end = (apr_time_t)apr_atoi64(deadline);
    return end > now ? (long)apr_time_as_msec(end - now) : 0;
}

static void page_budget_spend(request_rec *r)
{
    apr_table_setn(r->notes, CTFLOPT_NOTE_CDA_DEADLINE, "0");
}

/* The page's view of the cache: every marked element of a page fetches, and an
 * object (a shared experience, a merge tag, an asset) is read once per page. */
static ctflopt_entry_set *page_set(request_rec *r, const char *locale)
{
    const char *norm = locale ? ctfl_locale_normalize(r->pool, locale) : NULL;
    void *data = NULL;
    ctflopt_entry_set *set;
    apr_pool_userdata_get(&data, CTFLOPT_ENTRY_SET_KEY, r->pool);
    set = data;
    if (set && (set->locale == norm || (set->locale && norm && !strcmp(set->locale, norm))))
        return set;
    set = apr_pcalloc(r->pool, sizeof(*set));
    set->r = r;
    set->conf = effective(r->server);
    set->locale = norm;
    set->slots = apr_hash_make(r->pool);
    apr_pool_userdata_setn(set, CTFLOPT_ENTRY_SET_KEY, NULL, r->pool);
    return set;
}

ctflopt_entry_set *ctflopt_entries_fetch(request_rec *r, const char *locale,
                                         const apr_array_header_t *baseline_ids,
                                         ctflopt_entries_stats *st)
{
    const ctflopt_srv_conf *sc = ap_get_module_config(r->server->module_config, &ctflopt_module);
    ctflopt_entry_set *set;
    ctfl_cda_request req = { 0 };
    ctfl_cda_result res;
    ctfl_cda_walk w;
    apr_array_header_t *need;
    int probe;
    const char *const *roots = baseline_ids ? (const char *const *)baseline_ids->elts : NULL;
    int n_roots = baseline_ids ? baseline_ids->nelts : 0;

    memset(st, 0, sizeof(*st));
    if (!ctflopt_cda_enabled(r->server)) return NULL;
    set = page_set(r, locale);
    set->st = st;
    set->now = apr_time_now();

    /* 1. Everything from the shared cache (fresh and stale alike). */
    set->index = ctfl_entries_make(r->pool);
    ctfl_cda_assemble(r->pool, roots, n_roots, entry_set_object, set, set->index, &w);
    need = ids_to_fetch(set, &w);
    if (need->nelts == 0) return set;                         /* warm: no CDA request */

    /* 2. One batched request for what is missing or stale, within what is left of
     * the page's CDA budget: the marked elements of one page share CtflOptTimeout,
     * so an unreachable CDA costs a page at most one budget, not one per element. */
    req.timeout_ms = page_budget_left(r, sc);
    if (req.timeout_ms <= 0) return set;
    if (!ctfl_breaker_allow(sc->cda_breaker, apr_time_now(), &probe)) {
        st->cda_skipped++;                /* the CDA keeps failing: cache (and stale) only */
        page_budget_spend(r);
        st->stale_served = (apr_uint32_t)count_stale(set, &w);
        return set;
    }
    req.base_url = set->conf.url;
    req.space = set->conf.space;
    req.environment = set->conf.environment;
    req.token = set->conf.token;
    req.locale = set->locale;
    req.max_response = (apr_size_t)cda_max_response(sc);
    req.allow_insecure = sc && sc->allow_insecure == 1;
    ctfl_cda_fetch(ctflopt_http_pool(), r->pool, &req, need, &res);
    st->cda_calls += (apr_uint32_t)res.requests;
    /* 4xx (a bad token, an unknown space) is configuration, not CDA health. */
    ctfl_breaker_report(sc->cda_breaker, apr_time_now(), res.status == CTFL_CDA_OK
                        || (res.http_status >= 400 && res.http_status < 500));

    /* 3. Store what came back; what the CDA says is gone is remembered briefly. */
    for (int i = 0; i < res.raws->nelts; i++) {
        const ctfl_cda_raw *raw = &APR_ARRAY_IDX(res.raws, i, ctfl_cda_raw);
        put_slot(set, raw->kind, raw->id, raw->json, raw->len);
    }
    for (int i = 0; i < res.missing->nelts; i++)
        put_slot(set, CTFL_CDA_ENTRY, APR_ARRAY_IDX(res.missing, i, const char *), NULL, 0);
    for (int i = 0; i < res.unresolved->nelts; i++) {
        const ctfl_cda_ref *ref = &APR_ARRAY_IDX(res.unresolved, i, ctfl_cda_ref);
        put_slot(set, ref->kind, ref->id, NULL, 0);
    }

    /* 4. Assemble again over the updated view (stale objects stay where the
     *    fetch failed: stale-while-error). */
    if (res.raws->nelts || res.missing->nelts || res.unresolved->nelts) {
        set->index = ctfl_entries_make(r->pool);
        ctfl_cda_assemble(r->pool, roots, n_roots, entry_set_object, set, set->index, &w);
    }
    st->stale_served = (apr_uint32_t)count_stale(set, &w);
    if (res.status != CTFL_CDA_OK) {
        page_budget_spend(r);
        st->cda_errors++;
        if (res.status == CTFL_CDA_TIMEOUT) st->cda_timeouts++;
        log_cda_failure(set, &res, need->nelts, (int)st->stale_served);
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "entries: %d requested, %u hits, %u misses, %u known "
                  "missing, %u stale served, %d fetched in %d CDA requests (%s)", n_roots, st->hits,
                  st->misses, st->negative_hits, st->stale_served, need->nelts, res.requests,
                  res.status == CTFL_CDA_OK ? "ok" : res.reason ? res.reason : "failed");
    return set;
}

ctfl_entries *ctflopt_entry_set_index(ctflopt_entry_set *set)
{
    return set ? set->index : NULL;
}
