/* ctfl_experience — one visitor evaluation against the Experience API (spec §1).
 *
 * Budget rule: req->timeout_ms covers every attempt together. Each attempt gets
 * what is left of it. At most one follow-up attempt is made, and only when at
 * least a third of the budget remains (less would most likely time out and
 * only add latency):
 *   - HTTP 503 → the same request again (SDK: 503 is the only retryable status);
 *   - HTTP 404 ERR_PROFILE_NOT_FOUND / ERR_NAMESPACE_MISMATCH on an update →
 *     the same body as a create (spec §1.7 recommendation).
 * Never after a timeout, a transport error or any other status. */
#include "ctfl_experience.h"

#include <apr_strings.h>
#include <string.h>

#define FORCE_IP_MAX 64

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '-' || c == '_' || c == '.' || c == '~';
}

/* Percent-encode outside the RFC 3986 unreserved set. A path segment made only
 * of dots is encoded too, so it can never act as "." or ".." in the path. */
static const char *encode(apr_pool_t *p, const char *s, int path_segment)
{
    static const char hex[] = "0123456789ABCDEF";
    int only_dots = path_segment && s[strspn(s, ".")] == '\0';
    char *out = apr_palloc(p, 3 * strlen(s) + 1), *o = out;
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if (unreserved(*u) && !(only_dots && *u == '.')) {
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

static char *build_url(apr_pool_t *p, const ctfl_eval_request *req, const char *profile_id)
{
    const char *base = req->base_url;
    char *url;
    if (!base || !*base || !req->client_id || !*req->client_id || !req->environment || !*req->environment)
        return NULL;
    /* WHATWG resolution of a relative path drops a base's last segment
     * unless it ends with '/' (spec §1.1): normalize instead of surprising. */
    url = apr_pstrcat(p, base, base[strlen(base) - 1] == '/' ? "" : "/",
                      "v2/organizations/", encode(p, req->client_id, 1),
                      "/environments/", encode(p, req->environment, 1), "/profiles", NULL);
    if (profile_id && *profile_id)
        url = apr_pstrcat(p, url, "/", encode(p, profile_id, 1), NULL);
    if (req->locale && *req->locale)
        url = apr_pstrcat(p, url, "?locale=", encode(p, req->locale, 0), NULL);
    return url;
}

char *ctfl_experience_url(apr_pool_t *p, const ctfl_eval_request *req)
{
    return build_url(p, req, req->profile_id);
}

/* An address as APR prints it (IPv4, IPv6, maybe a %zone); anything else is
 * not sent rather than risking a malformed header. */
static int force_ip_ok(const char *ip)
{
    size_t n = strlen(ip);
    if (n == 0 || n > FORCE_IP_MAX) return 0;
    for (; *ip; ip++) {
        unsigned char c = (unsigned char)*ip;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || c == '.' || c == ':' || c == '%' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static int is_missing_profile(const char *code)
{
    return code && (strcmp(code, "ERR_PROFILE_NOT_FOUND") == 0 || strcmp(code, "ERR_NAMESPACE_MISMATCH") == 0);
}

static void finish_http_error(apr_pool_t *p, ctfl_eval_result *res, const ctfl_http_response *hr, const char *code)
{
    res->status = CTFL_EVAL_ERROR;
    res->reason = code ? apr_psprintf(p, "http %ld %s", hr->status, code) : apr_psprintf(p, "http %ld", hr->status);
    res->traceparent = hr->traceparent;
}

void ctfl_experience_evaluate(ctfl_http_pool *hp, apr_pool_t *p,
                              const ctfl_eval_request *req, ctfl_eval_result *res)
{
    const apr_time_t start = apr_time_now();
    const apr_time_t deadline = start + apr_time_from_msec(req->timeout_ms > 0 ? req->timeout_ms : 0);
    const char *profile_id = req->profile_id;
    apr_array_header_t *headers = apr_array_make(p, 2, sizeof(const char *));
    int follow_ups_left = 1;

    memset(res, 0, sizeof(*res));
    APR_ARRAY_PUSH(headers, const char *) = "Accept: application/json";
    if (req->force_ip && force_ip_ok(req->force_ip))
        APR_ARRAY_PUSH(headers, const char *) = apr_pstrcat(p, "X-Force-IP: ", req->force_ip, NULL);

    for (;;) {                    /* at most 2 iterations: follow_ups_left */
        long remaining_ms = (long)apr_time_as_msec(deadline - apr_time_now());
        ctfl_http_request hreq = { 0 };
        ctfl_http_response hr;
        const char *code = NULL;

        if (remaining_ms <= 0) {
            res->status = CTFL_EVAL_TIMEOUT;
            res->reason = "timeout";
            break;
        }
        hreq.url = build_url(p, req, profile_id);
        if (!hreq.url || !req->body) {
            res->status = CTFL_EVAL_ERROR;
            res->reason = "bad request: missing base url, client id, environment or body";
            break;
        }
        hreq.content_type = "text/plain";
        hreq.body = req->body;
        hreq.body_len = strlen(req->body);
        hreq.headers = headers;
        hreq.timeout_ms = remaining_ms;
        hreq.max_response = req->max_response;
        hreq.allow_insecure = req->allow_insecure;

        ctfl_http_perform(hp, p, &hreq, &hr);
        res->attempts++;
        res->new_connections += hr.new_connections;
        res->http_status = hr.status;

        if ((res->reason = ctfl_http_failure(p, &hr)) != NULL) {
            res->status = hr.outcome == CTFL_HTTP_TIMEOUT ? CTFL_EVAL_TIMEOUT : CTFL_EVAL_ERROR;
            if (hr.outcome != CTFL_HTTP_TIMEOUT) res->traceparent = hr.traceparent;
            break;
        }
        if (hr.status >= 200 && hr.status < 300) {
            const char *err = NULL;
            if (ctfl_json_decode_experience(p, hr.body, hr.body_len, &res->data, &err) == 0) {
                res->status = CTFL_EVAL_OK;
            } else {
                res->status = CTFL_EVAL_ERROR;
                res->reason = err;
                res->traceparent = hr.traceparent;
            }
            break;
        }

        if (hr.status >= 400)
            code = ctfl_json_error_code(p, hr.body, hr.body_len);
        if (follow_ups_left > 0 && 3 * (long)apr_time_as_msec(deadline - apr_time_now()) >= req->timeout_ms) {
            if (hr.status == 503) {
                follow_ups_left--;
                continue;
            }
            if (hr.status == 404 && profile_id && *profile_id && is_missing_profile(code)) {
                follow_ups_left--;
                profile_id = NULL;    /* the API forgot this visitor: start a new profile */
                continue;
            }
        }
        finish_http_error(p, res, &hr, code);
        break;
    }
    res->elapsed = apr_time_now() - start;
}
