/* CtflOpt* directives: parsing, validation (with the directive name in every
 * error) and merging. Server-scoped settings say how to reach the services;
 * directory-scoped settings say what to do for a request. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <http_core.h>

#include "ctflopt_private.h"
#include "ctfl_locale.h"
#include "ctflopt_cache.h"

/* ---- helpers ---------------------------------------------------------- */

static const char *parse_on_off(cmd_parms *cmd, const char *arg, int *out)
{
    if (!strcasecmp(arg, "on")) *out = 1;
    else if (!strcasecmp(arg, "off")) *out = 0;
    else return apr_psprintf(cmd->pool, "%s must be On or Off, not '%s'", cmd->cmd->name, arg);
    return NULL;
}

static const char *parse_long(cmd_parms *cmd, const char *arg, long min, long max, long *out)
{
    char *end;
    apr_int64_t v;
    if (!*arg || !apr_isdigit(*arg))
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number", cmd->cmd->name, arg);
    v = apr_strtoi64(arg, &end, 10);
    if (*end || v < min || v > max)
        return apr_psprintf(cmd->pool, "%s: '%s' is out of range %ld..%ld",
                            cmd->cmd->name, arg, min, max);
    *out = (long)v;
    return NULL;
}

/* A byte size with an optional k/m suffix (binary multiples). */
static const char *parse_size(cmd_parms *cmd, const char *arg, long min, long max, long *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (end == arg || v < 0)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size", cmd->cmd->name, arg);
    if (!strcasecmp(end, "k")) v *= 1024;
    else if (!strcasecmp(end, "m")) v *= 1024 * 1024;
    else if (*end)
        return apr_psprintf(cmd->pool, "%s: '%s' has an unknown unit", cmd->cmd->name, arg);
    if (v < min || v > max)
        return apr_psprintf(cmd->pool, "%s: '%s' is out of range %ld..%ld bytes",
                            cmd->cmd->name, arg, min, max);
    *out = (long)v;
    return NULL;
}

/* Plain token for names and ids that end up in URLs, cookies and headers. */
static int is_token(const char *s, apr_size_t max)
{
    apr_size_t n = 0;
    if (!s || !*s) return 0;
    for (; *s; s++, n++) {
        if (n >= max || !(apr_isalnum(*s) || *s == '-' || *s == '_' || *s == '.')) return 0;
    }
    return 1;
}

/* Cookie values may not contain separators or controls (RFC 6265 cookie-octet). */
static int is_cookie_octets(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\') return 0;
    }
    return 1;
}

/* Absolute http(s) URL without whitespace, quotes or angle brackets. */
static int is_safe_url(const char *u, int allow_relative)
{
    const char *s;
    if (!u || !*u) return 0;
    for (s = u; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\')
            return 0;
    }
    if (!strncasecmp(u, "https://", 8) || !strncasecmp(u, "http://", 7)) return 1;
    return allow_relative && u[0] == '/' && u[1] != '/';
}

/* ---- server scope ------------------------------------------------------ */

void *ctflopt_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    ctflopt_srv_conf *c = apr_pcalloc(p, sizeof(*c));
    c->allow_insecure = CTFLOPT_UNSET;
    c->timeout_ms = CTFLOPT_UNSET;
    c->max_response = CTFLOPT_UNSET;
    c->trusted_proxy = CTFLOPT_UNSET;
    c->breaker_count = CTFLOPT_UNSET;
    c->breaker_seconds = CTFLOPT_UNSET;
    return c;
}

#define MERGE_PTR(f)  c->f = add->f ? add->f : base->f
#define MERGE_INT(f)  c->f = add->f != CTFLOPT_UNSET ? add->f : base->f

void *ctflopt_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    ctflopt_srv_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    MERGE_PTR(client_id);
    MERGE_PTR(environment);
    MERGE_PTR(experience_url);
    MERGE_PTR(insights_url);
    MERGE_INT(allow_insecure);
    MERGE_INT(timeout_ms);
    MERGE_INT(max_response);
    MERGE_INT(trusted_proxy);
    MERGE_INT(breaker_count);
    MERGE_INT(breaker_seconds);
    MERGE_PTR(cda.space);
    MERGE_PTR(cda.environment);
    MERGE_PTR(cda.token);
    MERGE_PTR(cda.url);
    c->engine_used = base->engine_used || add->engine_used;
    return c;
}

static ctflopt_srv_conf *srv_conf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &ctflopt_module);
}

static const char *set_client_id(cmd_parms *cmd, void *d, const char *arg)
{
    if (!is_token(arg, 128))
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid client id", cmd->cmd->name, arg);
    srv_conf(cmd)->client_id = arg;
    return NULL;
}

static const char *set_environment(cmd_parms *cmd, void *d, const char *arg)
{
    if (!is_token(arg, 128))
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid environment name",
                            cmd->cmd->name, arg);
    srv_conf(cmd)->environment = arg;
    return NULL;
}

/* Base URLs are resolved like the SDK does (relative paths against the base), so
 * a base with a path must end in '/': normalize it here. */
static const char *set_api_url(cmd_parms *cmd, void *d, const char *arg)
{
    apr_uri_t uri;
    const char *url;
    if (!is_safe_url(arg, 0) || apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS
        || !uri.hostname || !*uri.hostname || uri.query || uri.fragment)
        return apr_psprintf(cmd->pool, "%s: '%s' is not an absolute http(s) URL without query",
                            cmd->cmd->name, arg);
    url = arg[strlen(arg) - 1] == '/' ? arg : apr_pstrcat(cmd->pool, arg, "/", NULL);
    if (cmd->info) srv_conf(cmd)->insights_url = url;
    else srv_conf(cmd)->experience_url = url;
    return NULL;
}

static const char *set_allow_insecure(cmd_parms *cmd, void *d, const char *arg)
{
    return parse_on_off(cmd, arg, &srv_conf(cmd)->allow_insecure);
}

static const char *set_trusted_proxy(cmd_parms *cmd, void *d, const char *arg)
{
    return parse_on_off(cmd, arg, &srv_conf(cmd)->trusted_proxy);
}

static const char *set_timeout(cmd_parms *cmd, void *d, const char *arg)
{
    return parse_long(cmd, arg, 1, 60000, &srv_conf(cmd)->timeout_ms);
}

static const char *set_max_response(cmd_parms *cmd, void *d, const char *arg)
{
    return parse_size(cmd, arg, 1024, 64L * 1024 * 1024, &srv_conf(cmd)->max_response);
}

static const char *set_breaker(cmd_parms *cmd, void *d, const char *count, const char *secs)
{
    ctflopt_srv_conf *c = srv_conf(cmd);
    const char *err;
    if (!strcasecmp(count, "off") && !secs) {
        c->breaker_count = 0;
        c->breaker_seconds = DEFAULT_BREAKER_SECONDS;
        return NULL;
    }
    if ((err = parse_long(cmd, count, 1, 1000, &c->breaker_count))) return err;
    c->breaker_seconds = DEFAULT_BREAKER_SECONDS;
    return secs ? parse_long(cmd, secs, 1, 3600, &c->breaker_seconds) : NULL;
}

/* One breaker per virtual host and process, shared by its request threads. */
void ctflopt_breakers_child_init(apr_pool_t *pchild, server_rec *s)
{
    for (; s; s = s->next) {
        ctflopt_srv_conf *c = ap_get_module_config(s->module_config, &ctflopt_module);
        long n = c->breaker_count == CTFLOPT_UNSET ? DEFAULT_BREAKER_COUNT : c->breaker_count;
        long sec = c->breaker_seconds == CTFLOPT_UNSET ? DEFAULT_BREAKER_SECONDS : c->breaker_seconds;
        c->breaker = ctfl_breaker_create(pchild, (unsigned)n, apr_time_from_sec(sec),
                                         apr_time_from_sec(sec));
        c->cda_breaker = ctfl_breaker_create(pchild, (unsigned)n, apr_time_from_sec(sec),
                                             apr_time_from_sec(sec));
    }
}

const char *ctflopt_srv_experience_url(const ctflopt_srv_conf *s)
{
    return s->experience_url ? s->experience_url : DEFAULT_EXPERIENCE_URL;
}

const char *ctflopt_srv_insights_url(const ctflopt_srv_conf *s)
{
    return s->insights_url ? s->insights_url : DEFAULT_INSIGHTS_URL;
}

const char *ctflopt_srv_environment(const ctflopt_srv_conf *s)
{
    return s->environment ? s->environment : "main";
}

/* Cross-directive checks, run before `apache2 -t` reports "Syntax OK". */
int ctflopt_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *v;
    for (v = s; v; v = v->next) {
        ctflopt_srv_conf *c = ap_get_module_config(v->module_config, &ctflopt_module);
        const char *urls[2] = { ctflopt_srv_experience_url(c), ctflopt_srv_insights_url(c) };
        const char *names[2] = { "CtflOptExperienceURL", "CtflOptInsightsURL" };
        int i;
        for (i = 0; i < 2; i++) {
            if (!strncasecmp(urls[i], "http://", 7) && c->allow_insecure != 1) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, v,
                             CTFLOPTNO(0002) "%s %s: plain http:// is refused unless "
                             "CtflOptAllowInsecureAPI On (server %s)",
                             names[i], urls[i], v->server_hostname ? v->server_hostname : "");
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        if (c->engine_used && !c->client_id) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, v,
                         CTFLOPTNO(0003) "CtflOptEngine On needs CtflOptClientId "
                         "(server %s)", v->server_hostname ? v->server_hostname : "");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* ---- directory scope --------------------------------------------------- */

void *ctflopt_create_dir_conf(apr_pool_t *p, char *dir)
{
    ctflopt_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    c->engine = CTFLOPT_UNSET;
    c->consent_default = CONSENT_DEFAULT_UNSET;
    c->cookie_max_age = CTFLOPT_UNSET;
    c->userid_kind = USERID_UNSET;
    c->bootstrap = CTFLOPT_UNSET;
    c->autotrack = CTFLOPT_UNSET;
    c->forward_headers = CTFLOPT_UNSET;
    c->consent_sync = CTFLOPT_UNSET;
    c->max_element_bytes = CTFLOPT_UNSET;
    c->max_elements = CTFLOPT_UNSET;
    c->debug = CTFLOPT_UNSET;
    return c;
}

void *ctflopt_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    ctflopt_dir_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    MERGE_INT(engine);
    if (add->consent_cookie) {
        c->consent_cookie = add->consent_cookie;
        c->consent_granted = add->consent_granted;
        c->consent_denied = add->consent_denied;
    }
    else {
        c->consent_cookie = base->consent_cookie;
        c->consent_granted = base->consent_granted;
        c->consent_denied = base->consent_denied;
    }
    c->consent_default = add->consent_default != CONSENT_DEFAULT_UNSET
                         ? add->consent_default : base->consent_default;
    MERGE_PTR(locales);
    if (add->cookie_domain_set) c->cookie_domain = add->cookie_domain, c->cookie_domain_set = 1;
    else c->cookie_domain = base->cookie_domain, c->cookie_domain_set = base->cookie_domain_set;
    MERGE_INT(cookie_max_age);
    MERGE_PTR(cookie_samesite);
    if (add->userid_kind != USERID_UNSET) c->userid_kind = add->userid_kind, c->userid_name = add->userid_name;
    else c->userid_kind = base->userid_kind, c->userid_name = base->userid_name;
    MERGE_PTR(websdk_url);
    MERGE_INT(bootstrap);
    MERGE_INT(autotrack);
    if (add->nonce_set) c->nonce_env = add->nonce_env, c->nonce_set = 1;
    else c->nonce_env = base->nonce_env, c->nonce_set = base->nonce_set;
    MERGE_INT(forward_headers);
    MERGE_INT(consent_sync);
    MERGE_INT(max_element_bytes);
    MERGE_INT(max_elements);
    MERGE_INT(debug);
    return c;
}

ctflopt_consent ctflopt_dir_consent_default(const ctflopt_dir_conf *d)
{
    return d->consent_default == CONSENT_DEFAULT_UNSET ? CONSENT_UNKNOWN
                                                       : (ctflopt_consent)d->consent_default;
}

long ctflopt_dir_cookie_max_age(const ctflopt_dir_conf *d)
{
    return d->cookie_max_age == CTFLOPT_UNSET ? DEFAULT_COOKIE_MAX_AGE : d->cookie_max_age;
}

int ctflopt_dir_autotrack(const ctflopt_dir_conf *d)
{
    return d->autotrack == CTFLOPT_UNSET ? (AUTOTRACK_VIEWS | AUTOTRACK_CLICKS) : d->autotrack;
}

static const char *set_engine(cmd_parms *cmd, void *dv, const char *arg)
{
    ctflopt_dir_conf *d = dv;
    const char *err = parse_on_off(cmd, arg, &d->engine);
    if (!err && d->engine == 1) srv_conf(cmd)->engine_used = 1;
    return err;
}

static const char *set_dir_flag(cmd_parms *cmd, void *dv, const char *arg)
{
    /* cmd->info is the offset of the int member in ctflopt_dir_conf */
    return parse_on_off(cmd, arg, (int *)((char *)dv + (apr_size_t)cmd->info));
}

static const char *set_consent_cookie(cmd_parms *cmd, void *dv, const char *name,
                                      const char *granted, const char *denied)
{
    ctflopt_dir_conf *d = dv;
    if (!is_token(name, 256))
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid cookie name", cmd->cmd->name, name);
    if (granted && !denied)
        return apr_psprintf(cmd->pool, "%s takes NAME or NAME GRANTED DENIED", cmd->cmd->name);
    if (granted && (!*granted || !*denied || !is_cookie_octets(granted)
                    || !is_cookie_octets(denied) || !strcmp(granted, denied)))
        return apr_psprintf(cmd->pool, "%s: the granted and denied values must be distinct "
                            "cookie values", cmd->cmd->name);
    d->consent_cookie = name;
    d->consent_granted = granted ? granted : "granted";
    d->consent_denied = denied ? denied : "denied";
    return NULL;
}

static const char *set_consent_default(cmd_parms *cmd, void *dv, const char *arg)
{
    ctflopt_dir_conf *d = dv;
    if (!strcasecmp(arg, "granted")) d->consent_default = CONSENT_GRANTED;
    else if (!strcasecmp(arg, "denied")) d->consent_default = CONSENT_DENIED;
    else if (!strcasecmp(arg, "unknown")) d->consent_default = CONSENT_UNKNOWN;
    else return apr_psprintf(cmd->pool, "%s must be granted, denied or unknown, not '%s'",
                             cmd->cmd->name, arg);
    return NULL;
}

static const char *set_locales(cmd_parms *cmd, void *dv, int argc, char *const argv[])
{
    ctflopt_dir_conf *d = dv;
    int i;
    if (argc < 1) return apr_psprintf(cmd->pool, "%s needs at least one locale", cmd->cmd->name);
    d->locales = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        const char *l = ctfl_locale_normalize(cmd->pool, argv[i]);
        if (!l) return apr_psprintf(cmd->pool, "%s: '%s' is not a valid locale", cmd->cmd->name, argv[i]);
        APR_ARRAY_PUSH(d->locales, const char *) = l;
    }
    return NULL;
}

static const char *set_cookie_domain(cmd_parms *cmd, void *dv, const char *arg)
{
    ctflopt_dir_conf *d = dv;
    const char *s;
    for (s = arg; *s; s++)
        if (!(apr_isalnum(*s) || *s == '-' || *s == '.'))
            return apr_psprintf(cmd->pool, "%s: '%s' is not a domain name", cmd->cmd->name, arg);
    d->cookie_domain = *arg ? arg : NULL;
    d->cookie_domain_set = 1;
    return NULL;
}

static const char *set_cookie_max_age(cmd_parms *cmd, void *dv, const char *arg)
{
    return parse_long(cmd, arg, 0, 400L * 86400, &((ctflopt_dir_conf *)dv)->cookie_max_age);
}

static const char *set_cookie_samesite(cmd_parms *cmd, void *dv, const char *arg)
{
    static const char *const values[] = { "Lax", "Strict", "None" };
    int i;
    for (i = 0; i < 3; i++) {
        if (!strcasecmp(arg, values[i])) {
            ((ctflopt_dir_conf *)dv)->cookie_samesite = values[i];
            return NULL;
        }
    }
    return apr_psprintf(cmd->pool, "%s must be Lax, Strict or None, not '%s'", cmd->cmd->name, arg);
}

static const char *set_user_id(cmd_parms *cmd, void *dv, const char *arg)
{
    ctflopt_dir_conf *d = dv;
    if (!strcasecmp(arg, "none")) d->userid_kind = USERID_NONE;
    else if (!strcasecmp(arg, "remote-user")) d->userid_kind = USERID_REMOTE_USER;
    else if (!strncasecmp(arg, "header:", 7) && is_token(arg + 7, 128))
        d->userid_kind = USERID_HEADER, d->userid_name = arg + 7;
    else if (!strncasecmp(arg, "env:", 4) && is_token(arg + 4, 128))
        d->userid_kind = USERID_ENV, d->userid_name = arg + 4;
    else return apr_psprintf(cmd->pool, "%s must be none, remote-user, header:NAME or env:NAME, "
                             "not '%s'", cmd->cmd->name, arg);
    return NULL;
}

static const char *set_websdk_url(cmd_parms *cmd, void *dv, const char *arg)
{
    if (!is_safe_url(arg, 1))
        return apr_psprintf(cmd->pool, "%s: '%s' must be an http(s) URL or a path starting "
                            "with '/'", cmd->cmd->name, arg);
    ((ctflopt_dir_conf *)dv)->websdk_url = arg;
    return NULL;
}

static const char *set_autotrack(cmd_parms *cmd, void *dv, int argc, char *const argv[])
{
    ctflopt_dir_conf *d = dv;
    int i, mask = 0;
    for (i = 0; i < argc; i++) {
        if (!strcasecmp(argv[i], "views")) mask |= AUTOTRACK_VIEWS;
        else if (!strcasecmp(argv[i], "clicks")) mask |= AUTOTRACK_CLICKS;
        else if (!strcasecmp(argv[i], "hovers")) mask |= AUTOTRACK_HOVERS;
        else if (!strcasecmp(argv[i], "none") && argc == 1) mask = 0;
        else return apr_psprintf(cmd->pool, "%s takes views, clicks, hovers (or none), not '%s'",
                                 cmd->cmd->name, argv[i]);
    }
    d->autotrack = mask;
    return NULL;
}

static const char *set_nonce(cmd_parms *cmd, void *dv, const char *arg)
{
    ctflopt_dir_conf *d = dv;
    if (!strcasecmp(arg, "none")) d->nonce_env = NULL;
    else if (!strncasecmp(arg, "env:", 4) && is_token(arg + 4, 128)) d->nonce_env = arg + 4;
    else return apr_psprintf(cmd->pool, "%s must be env:NAME or none, not '%s'", cmd->cmd->name, arg);
    d->nonce_set = 1;
    return NULL;
}

static const char *set_max_element_bytes(cmd_parms *cmd, void *dv, const char *arg)
{
    return parse_size(cmd, arg, 1024, 64L * 1024 * 1024, &((ctflopt_dir_conf *)dv)->max_element_bytes);
}

static const char *set_max_elements(cmd_parms *cmd, void *dv, const char *arg)
{
    return parse_long(cmd, arg, 1, 100000, &((ctflopt_dir_conf *)dv)->max_elements);
}

#define DIR_FLAG(name, member, help) \
    AP_INIT_TAKE1(name, set_dir_flag, (void *)APR_OFFSETOF(ctflopt_dir_conf, member), \
                  RSRC_CONF | ACCESS_CONF, help)

const command_rec ctflopt_cmds[] = {
    /* server / virtual host */
    AP_INIT_TAKE1("CtflOptClientId", set_client_id, NULL, RSRC_CONF,
                  "Optimization client id (organization id in the Experience API path)"),
    AP_INIT_TAKE1("CtflOptEnvironment", set_environment, NULL, RSRC_CONF,
                  "Optimization environment (default main)"),
    AP_INIT_TAKE1("CtflOptExperienceURL", set_api_url, NULL, RSRC_CONF,
                  "Experience API base URL"),
    AP_INIT_TAKE1("CtflOptInsightsURL", set_api_url, (void *)1, RSRC_CONF,
                  "Insights API base URL"),
    AP_INIT_TAKE1("CtflOptAllowInsecureAPI", set_allow_insecure, NULL, RSRC_CONF,
                  "On: allow plain http:// API URLs (local emulator only)"),
    AP_INIT_TAKE1("CtflOptTimeout", set_timeout, NULL, RSRC_CONF,
                  "Whole budget of the Experience call in milliseconds (default 500)"),
    AP_INIT_TAKE1("CtflOptMaxResponseSize", set_max_response, NULL, RSRC_CONF,
                  "Largest accepted API response body, bytes with optional k/m (default 512k)"),
    AP_INIT_TAKE12("CtflOptBreaker", set_breaker, NULL, RSRC_CONF,
                   "COUNT [SECONDS]: after COUNT consecutive Experience (or CDA) failures within SECONDS, "
                   "skip calls for SECONDS, then probe once (default 5 30; Off disables)"),
    AP_INIT_TAKE1("CtflOptTrustedProxy", set_trusted_proxy, NULL, RSRC_CONF,
                  "On: build the page URL from X-Forwarded-Proto/Host"),
    /* server, virtual host, directory */
    AP_INIT_TAKE1("CtflOptEngine", set_engine, NULL, RSRC_CONF | ACCESS_CONF,
                  "On: evaluate visitors and filter HTML here"),
    AP_INIT_TAKE13("CtflOptConsentCookie", set_consent_cookie, NULL, RSRC_CONF | ACCESS_CONF,
                   "Consent cookie NAME [GRANTED DENIED]"),
    AP_INIT_TAKE1("CtflOptConsentDefault", set_consent_default, NULL, RSRC_CONF | ACCESS_CONF,
                  "Consent without the cookie: granted, denied or unknown"),
    AP_INIT_TAKE_ARGV("CtflOptLocale", set_locales, NULL, RSRC_CONF | ACCESS_CONF,
                      "Locales; the first is the default, Accept-Language picks among them"),
    AP_INIT_TAKE1("CtflOptCookieDomain", set_cookie_domain, NULL, RSRC_CONF | ACCESS_CONF,
                  "Domain attribute of the ctfl-opt-aid cookie"),
    AP_INIT_TAKE1("CtflOptCookieMaxAge", set_cookie_max_age, NULL, RSRC_CONF | ACCESS_CONF,
                  "Max-Age of the ctfl-opt-aid cookie in seconds"),
    AP_INIT_TAKE1("CtflOptCookieSameSite", set_cookie_samesite, NULL, RSRC_CONF | ACCESS_CONF,
                  "SameSite of the ctfl-opt-aid cookie: Lax, Strict or None"),
    AP_INIT_TAKE1("CtflOptUserId", set_user_id, NULL, RSRC_CONF | ACCESS_CONF,
                  "Where a known user id comes from: none, remote-user, header:NAME, env:NAME"),
    AP_INIT_TAKE1("CtflOptWebSDKURL", set_websdk_url, NULL, RSRC_CONF | ACCESS_CONF,
                  "src of the Web SDK UMD bundle"),
    DIR_FLAG("CtflOptBootstrap", bootstrap, "On: inject the Web SDK bootstrap"),
    AP_INIT_TAKE_ARGV("CtflOptAutoTrack", set_autotrack, NULL, RSRC_CONF | ACCESS_CONF,
                      "Interactions the Web SDK tracks: views clicks hovers"),
    AP_INIT_TAKE1("CtflOptNonce", set_nonce, NULL, RSRC_CONF | ACCESS_CONF,
                  "env:NAME holding the CSP nonce for the injected scripts"),
    DIR_FLAG("CtflOptForwardHeaders", forward_headers,
             "On: pass X-Ctfl-Opt-* headers to the handler / proxied origin"),
    DIR_FLAG("CtflOptConsentSync", consent_sync,
             "On: the bootstrap writes the consent cookie when the SDK consent changes"),
    DIR_FLAG("CtflOptDebug", debug,
             "On: an X-CtflOpt-Debug response header explains the decisions (buffers the page)"),
    AP_INIT_TAKE1("CtflOptMaxElementBytes", set_max_element_bytes, NULL, RSRC_CONF | ACCESS_CONF,
                  "Largest marked element held for rewriting, bytes with optional k/m (default 1m)"),
    AP_INIT_TAKE1("CtflOptMaxElements", set_max_elements, NULL, RSRC_CONF | ACCESS_CONF,
                  "Marked elements rewritten per page (default 1000)"),
    CTFLOPT_CACHE_CMDS,
    { NULL }
};
