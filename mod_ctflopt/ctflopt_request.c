/* The request hook: consent, profile continuity and the Experience API call.
 *
 * Runs in fixups (after access control, so REMOTE_USER is known; before the
 * handler, so a proxied origin sees the results) once per initial request.
 * Every failure falls open: the page is served, the reason logged and counted. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "ctflopt_private.h"
#include "ctfl_cookie.h"
#include "ctfl_event.h"
#include "ctfl_experience.h"
#include "ctfl_locale.h"

/* Rate-limiter slots for the failure lines. */
enum { LOG_TIMEOUT = 0, LOG_ERROR, LOG_BAD_PROFILE_ID, LOG_BREAKER };

#define MAX_USER_ID_LEN 256

ctflopt_req *ctflopt_req_get(request_rec *r)
{
    /* Internal redirects (mod_rewrite front controllers, DirectoryIndex) are
     * new requests: they inherit the decision of the request they came from. */
    for (; r; r = r->prev) {
        ctflopt_req *q = ap_get_module_config(r->request_config, &ctflopt_module);
        if (q) return q;
    }
    return NULL;
}

/* Percent-encode bytes that may not appear raw in a URL (controls, space, non-ASCII,
 * quotes), so that the page context is valid UTF-8 JSON whatever the client sent. */
static const char *url_safe(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    apr_size_t n = 0, i;
    char *out, *o;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        n += (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\') ? 3 : 1;
    }
    if (n == i) return s;
    o = out = apr_palloc(p, n + 1);
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\') {
            *o++ = '%'; *o++ = hex[c >> 4]; *o++ = hex[c & 15];
        }
        else *o++ = (char)c;
    }
    *o = '\0';
    return out;
}

/* A Host value we are willing to put into the page URL. */
static int host_ok(const char *h)
{
    apr_size_t n = 0;
    if (!h || !*h) return 0;
    for (; *h; h++, n++) {
        if (n > 255 || !(apr_isalnum(*h) || *h == '.' || *h == '-' || *h == ':'
                         || *h == '[' || *h == ']' || *h == '_')) return 0;
    }
    return 1;
}

/* First element of a comma-separated forwarded header, trimmed. */
static const char *first_forwarded(apr_pool_t *p, const char *v)
{
    const char *end;
    if (!v) return NULL;
    while (*v == ' ' || *v == '\t') v++;
    end = v;
    while (*end && *end != ',' && *end != ' ' && *end != '\t') end++;
    return end > v ? apr_pstrmemdup(p, v, (apr_size_t)(end - v)) : NULL;
}

/* Public URL of the page (spec §10.2) split into its parts. */
static void page_context(request_rec *r, const ctflopt_srv_conf *sc, ctfl_event_ctx *ev)
{
    const char *scheme = ap_http_scheme(r);
    const char *host = apr_table_get(r->headers_in, "Host");
    const char *uri = r->unparsed_uri ? r->unparsed_uri : "/";
    const char *q;
    char *path;

    if (sc->trusted_proxy == 1) {
        const char *fp = first_forwarded(r->pool, apr_table_get(r->headers_in, "X-Forwarded-Proto"));
        const char *fh = first_forwarded(r->pool, apr_table_get(r->headers_in, "X-Forwarded-Host"));
        if (fp && (!strcasecmp(fp, "http") || !strcasecmp(fp, "https")))
            scheme = apr_pstrdup(r->pool, fp), ap_str_tolower((char *)scheme);
        if (host_ok(fh)) host = fh;
    }
    if (!host_ok(host)) {
        apr_port_t port = ap_get_server_port(r);
        host = ap_get_server_name_for_url(r);
        if (!ap_is_default_port(port, r)) host = apr_psprintf(r->pool, "%s:%u", host, port);
    }
    if (uri[0] != '/') uri = r->parsed_uri.path ? r->parsed_uri.path : "/";
    path = apr_pstrdup(r->pool, uri);
    path[strcspn(path, "#")] = '\0';
    q = strchr(path, '?');
    if (q) path[q - path] = '\0', q++;

    ev->path = url_safe(r->pool, path);
    ev->query = q && *q ? url_safe(r->pool, q) : NULL;
    ev->url = apr_pstrcat(r->pool, scheme, "://", host, ev->path,
                          ev->query ? "?" : "", ev->query ? ev->query : "", NULL);
}

static ctflopt_consent read_consent(request_rec *r, const ctflopt_dir_conf *d, const char *cookies)
{
    const char *name = d->consent_cookie ? d->consent_cookie : "app-personalization-consent";
    const char *v = ctfl_cookie_get(r->pool, cookies, name);
    if (v) {
        if (!strcmp(v, d->consent_cookie ? d->consent_granted : "granted")) return CONSENT_GRANTED;
        if (!strcmp(v, d->consent_cookie ? d->consent_denied : "denied")) return CONSENT_DENIED;
    }
    return ctflopt_dir_consent_default(d);
}

/* A user id is only used when it is short printable text. */
static const char *user_id(request_rec *r, const ctflopt_dir_conf *d)
{
    const char *u = NULL, *s;
    switch (d->userid_kind) {
    case USERID_REMOTE_USER: u = r->user; break;
    case USERID_HEADER: u = apr_table_get(r->headers_in, d->userid_name); break;
    case USERID_ENV: u = apr_table_get(r->subprocess_env, d->userid_name); break;
    default: return NULL;
    }
    if (!u || !*u || strlen(u) > MAX_USER_ID_LEN) return NULL;
    for (s = u; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return NULL;
    return u;
}

static void cookie_attrs(request_rec *r, const ctflopt_dir_conf *d, ctfl_cookie_attrs *a)
{
    a->domain = d->cookie_domain;
    a->max_age = ctflopt_dir_cookie_max_age(d);
    a->same_site = d->cookie_samesite ? d->cookie_samesite : "Lax";
    a->secure = !strcmp(ap_http_scheme(r), "https") || !strcmp(a->same_site, "None");
}

/* A response for one visitor (their profile, their cookie, or a fallback served
 * because their evaluation failed) must never be stored for others: not by
 * mod_cache (r->no_cache), not by a shared cache downstream (private, in
 * err_headers_out so that it holds for any response; the filter drops the
 * origin's own Cache-Control). */
static void mark_private(request_rec *r, ctflopt_req *q)
{
    r->no_cache = 1;
    if (!q->private_response) apr_table_setn(r->err_headers_out, "Cache-Control", "private");
    q->private_response = 1;
}

/* err_headers_out: the cookie must survive an error response from the handler too.
 * The builders refuse (NULL) anything that would not be a safe header value. */
static void set_cookie(request_rec *r, ctflopt_req *q, const char *value)
{
    if (!value) return;
    apr_table_addn(r->err_headers_out, "Set-Cookie", value);
    mark_private(r, q);
}

static void log_failure(request_rec *r, const ctfl_eval_result *res)
{
    int slot = res->status == CTFL_EVAL_TIMEOUT ? LOG_TIMEOUT : LOG_ERROR;
    apr_uint32_t dropped;
    if (!ctflopt_log_allowed(slot)) return;
    dropped = ctflopt_log_suppressed(slot);
    if (res->status == CTFL_EVAL_TIMEOUT)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CTFLOPTNO(0101)
                      "Experience API timed out after %" APR_TIME_T_FMT " ms (%d attempt%s); "
                      "serving the baseline [%u similar lines suppressed]",
                      apr_time_as_msec(res->elapsed), res->attempts,
                      res->attempts == 1 ? "" : "s", dropped);
    else
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CTFLOPTNO(0102)
                      "Experience API call failed: %s%s%s (%d attempt%s); serving the baseline "
                      "[%u similar lines suppressed]",
                      res->reason ? res->reason : "unknown error",
                      res->traceparent ? ", traceparent " : "",
                      res->traceparent ? res->traceparent : "",
                      res->attempts, res->attempts == 1 ? "" : "s", dropped);
}

/* Only failures that say the service is unwell count: a timeout, no connection,
 * a 5xx, an unusable 2xx. A 4xx is about this one request. */
static void report_to_breaker(request_rec *r, ctflopt_srv_conf *sc, const ctfl_eval_result *res,
                              int probe)
{
    int healthy = res->status == CTFL_EVAL_OK
                  || (res->http_status >= 400 && res->http_status < 500);
    unsigned opened = ctfl_breaker_opened_count(sc->breaker);
    ctfl_breaker_report(sc->breaker, apr_time_now(), healthy);
    if (ctfl_breaker_opened_count(sc->breaker) != opened) {
        ctflopt_count(CNT_BREAKER_OPENED, 1);
        if (ctflopt_log_allowed(LOG_BREAKER))
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CTFLOPTNO(0104)
                          "Experience API circuit breaker %s: skipping calls for %ld s",
                          probe ? "stays open after a failed probe" : "opened after repeated failures",
                          sc->breaker_seconds == CTFLOPT_UNSET ? (long)DEFAULT_BREAKER_SECONDS
                                                               : sc->breaker_seconds);
    }
}

static void evaluate(request_rec *r, const ctflopt_dir_conf *d, ctflopt_srv_conf *sc,
                     ctflopt_req *q, const char *cookies)
{
    ctfl_event_ctx ev = { 0 };
    ctfl_eval_request er = { 0 };
    ctfl_eval_result res;
    ctfl_cookie_attrs attrs;
    int probe;
    const char *aid = ctfl_cookie_get(r->pool, cookies, AID_COOKIE);

    if (!aid) aid = ctfl_cookie_get(r->pool, cookies, LEGACY_AID_COOKIE);
    if (aid && !ctfl_profile_id_valid(aid)) {
        ctflopt_count(CNT_INVALID_PROFILE_ID, 1);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CTFLOPTNO(0103)
                      "ignoring a profile id cookie that is not a plain token (%" APR_SIZE_T_FMT
                      " bytes)", strlen(aid));
        aid = NULL;
    }

    page_context(r, sc, &ev);
    ev.referrer = apr_table_get(r->headers_in, "Referer");
    ev.user_agent = apr_table_get(r->headers_in, "User-Agent");
    ev.locale = q->locale;
    ev.library_name = CTFLOPT_NAME;
    ev.library_version = CTFLOPT_VERSION;
    ev.consent_given = 1;
    ev.user_id = user_id(r, d);

    er.base_url = ctflopt_srv_experience_url(sc);
    er.client_id = sc->client_id;
    er.environment = ctflopt_srv_environment(sc);
    er.locale = q->locale;
    er.profile_id = aid;
    er.force_ip = r->useragent_ip;
    er.body = ctfl_event_build_body(r->pool, &ev, apr_time_now());
    if (!er.body) {
        q->status = "error";
        ctflopt_count(CNT_EVAL_ERROR, 1);
        return;
    }
    er.timeout_ms = sc->timeout_ms > 0 ? sc->timeout_ms : DEFAULT_TIMEOUT_MS;
    er.max_response = (apr_size_t)(sc->max_response > 0 ? sc->max_response : DEFAULT_MAX_RESPONSE);
    er.allow_insecure = sc->allow_insecure == 1;

    if (!ctfl_breaker_allow(sc->breaker, apr_time_now(), &probe)) {
        q->status = "breaker-open";     /* the API keeps failing: baseline at no-API cost */
        ctflopt_count(CNT_BREAKER_SKIPPED, 1);
        return;
    }
    ctflopt_count(CNT_EVALUATED, 1);
    ctfl_experience_evaluate(ctflopt_http_pool(), r->pool, &er, &res);
    report_to_breaker(r, sc, &res, probe);
    ctflopt_count(CNT_API_CONNECTIONS, (apr_uint32_t)res.new_connections);
    apr_table_setn(r->subprocess_env, "CTFLOPT_API_MS",
                   apr_psprintf(r->pool, "%" APR_TIME_T_FMT, apr_time_as_msec(res.elapsed)));

    if (res.status == CTFL_EVAL_OK && !ctfl_profile_id_valid(res.data->profile_id)) {
        res.status = CTFL_EVAL_ERROR;
        res.reason = "response profile.id is not a plain token";
    }
    if (res.status != CTFL_EVAL_OK) {
        ctflopt_count(res.status == CTFL_EVAL_TIMEOUT ? CNT_EVAL_TIMEOUT : CNT_EVAL_ERROR, 1);
        q->status = res.status == CTFL_EVAL_TIMEOUT ? "timeout" : "error";
        log_failure(r, &res);
        return;
    }

    ctflopt_count(CNT_EVAL_OK, 1);
    q->status = "ok";
    q->data = res.data;
    cookie_attrs(r, d, &attrs);
    set_cookie(r, q, ctfl_cookie_set_value(r->pool, AID_COOKIE, res.data->profile_id, &attrs));
    apr_table_setn(r->subprocess_env, "CTFLOPT_PROFILE_ID", res.data->profile_id);
    apr_table_setn(r->subprocess_env, "CTFLOPT_EXPERIENCES", res.data->experiences_list);
    if (d->forward_headers == 1) {
        apr_table_setn(r->headers_in, "X-Ctfl-Opt-Profile-Id", res.data->profile_id);
        apr_table_setn(r->headers_in, "X-Ctfl-Opt-Experiences", res.data->experiences_list);
        apr_table_setn(r->headers_in, "X-Ctfl-Opt-Flags", res.data->flags_json);
    }
}

/* A local file whose type is known and is not HTML (images, stylesheets, scripts):
 * nothing to evaluate or filter. Proxied and generated content has no type yet. */
static int is_static_non_html(request_rec *r)
{
    return !r->handler && r->content_type && strcmp(r->content_type, DIR_MAGIC_TYPE)
           && !ctflopt_is_html(r->content_type);
}

/* The page we send depends on consent and profile, not only on the origin's
 * representation: a 304 or a byte range judged by the origin's validators would
 * hand back a copy made for another state. */
static void forget_validators(request_rec *r)
{
    apr_table_unset(r->headers_in, "If-None-Match");
    apr_table_unset(r->headers_in, "If-Modified-Since");
    apr_table_unset(r->headers_in, "If-Range");
    apr_table_unset(r->headers_in, "Range");
}

/* A handler hook that only prepares the proxied request: the origin must send a
 * body we can read, so it is asked for identity encoding. This runs after
 * mod_cache's handler (its lookup must use the client's Accept-Encoding) and
 * before mod_proxy's; the filter puts the client's value back before DEFLATE,
 * which runs after us, looks at it. */
int ctflopt_proxy_identity(request_rec *r)
{
    ctflopt_dir_conf *d = ap_get_module_config(r->per_dir_config, &ctflopt_module);
    const char *ae;
    if (d->engine != 1 || !r->handler || strcmp(r->handler, "proxy-server") || !ctflopt_req_get(r)
        || apr_table_get(r->notes, CTFLOPT_NOTE_ACCEPT_ENCODING))
        return DECLINED;
    ae = apr_table_get(r->headers_in, "Accept-Encoding");
    apr_table_setn(r->notes, CTFLOPT_NOTE_ACCEPT_ENCODING, ae ? ae : "");
    apr_table_setn(r->headers_in, "Accept-Encoding", "identity");
    return DECLINED;
}

static const char *consent_name(ctflopt_consent c)
{
    return c == CONSENT_GRANTED ? "granted" : c == CONSENT_DENIED ? "denied" : "unknown";
}

int ctflopt_fixups(request_rec *r)
{
    ctflopt_dir_conf *d = ap_get_module_config(r->per_dir_config, &ctflopt_module);
    ctflopt_srv_conf *sc = ap_get_module_config(r->server->module_config, &ctflopt_module);
    ctflopt_req *q;
    const char *cookies;

    if (d->engine != 1 || r->main || !ap_is_initial_req(r)) return DECLINED;
    ctflopt_count(CNT_REQUESTS_SEEN, 1);

    /* Whatever happens next, the client does not get to speak for us. */
    apr_table_unset(r->headers_in, "X-Ctfl-Opt-Profile-Id");
    apr_table_unset(r->headers_in, "X-Ctfl-Opt-Experiences");
    apr_table_unset(r->headers_in, "X-Ctfl-Opt-Flags");

    q = apr_pcalloc(r->pool, sizeof(*q));
    ap_set_module_config(r->request_config, &ctflopt_module, q);
    cookies = apr_table_get(r->headers_in, "Cookie");
    q->locale = d->locales ? ctfl_locale_negotiate(r->pool,
                                 apr_table_get(r->headers_in, "Accept-Language"), d->locales)
                           : NULL;
    q->consent = read_consent(r, d, cookies);
    apr_table_setn(r->subprocess_env, "CTFLOPT_CONSENT", consent_name(q->consent));

    if (!is_static_non_html(r)) forget_validators(r);

    if (apr_table_get(r->subprocess_env, "no-ctflopt")) {
        q->status = "skipped";
        ctflopt_count(CNT_SKIPPED, 1);
    }
    else if (q->consent != CONSENT_GRANTED) {
        q->status = "no-consent";
        ctflopt_count(CNT_NO_CONSENT, 1);
        /* Without consent nothing may persist: drop a profile id the browser still
         * holds, but send no Set-Cookie at all otherwise (keeps pages cacheable). */
        if (ctfl_cookie_get(r->pool, cookies, AID_COOKIE)) {
            ctfl_cookie_attrs attrs;
            cookie_attrs(r, d, &attrs);
            set_cookie(r, q, ctfl_cookie_delete_value(r->pool, AID_COOKIE, &attrs));
        }
    }
    else if (r->method_number != M_GET || r->header_only) {
        q->status = "skipped";   /* HEAD and non-GET: baseline, no API call */
        ctflopt_count(CNT_SKIPPED, 1);
    }
    else if (is_static_non_html(r)) {
        q->status = "skipped";   /* a static image, stylesheet, script...: nothing to personalize */
        ctflopt_count(CNT_SKIPPED, 1);
    }
    else {
        mark_private(r, q);   /* whatever the outcome: ok, timeout, error, breaker-open */
        evaluate(r, d, sc, q, cookies);
    }
    apr_table_setn(r->subprocess_env, "CTFLOPT_STATUS", q->status);
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "ctflopt: consent %s, status %s, locale %s",
                  consent_name(q->consent), q->status, q->locale ? q->locale : "-");
    return DECLINED;
}
