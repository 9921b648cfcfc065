/* ctfl_event — builds Experience API request bodies (spec §2) for one request.
 *
 * jansson is used here only to encode. Every string put into the body is first made valid
 * UTF-8 (jansson refuses anything else): invalid bytes become U+FFFD the way a browser's
 * URLSearchParams / TextDecoder would, so the server sends what the Web SDK would. */
#include "ctfl_event.h"
#include "ctflopt_version.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>
#include <string.h>

/* page.query keeps at most this many distinct keys (first seen); a later value of a kept key
 * still replaces the earlier one. Bounds the body a hostile query string can produce. */
#define CTFL_QUERY_MAX_KEYS 100

/* ---- UTF-8 repair (WHATWG Encoding "UTF-8 decode", one U+FFFD per maximal bad subpart) ---- */

static char *utf8_repair(apr_pool_t *p, const char *in, apr_size_t n, apr_size_t *out_len)
{
    static const char fffd[3] = { (char)0xEF, (char)0xBF, (char)0xBD };
    const unsigned char *s = (const unsigned char *)in;
    char *out = apr_palloc(p, 3 * n + 1), *o = out;
    apr_size_t i = 0, start = 0, needed = 0, seen = 0;
    unsigned char lower = 0x80, upper = 0xBF;

    while (i < n) {
        unsigned char b = s[i];
        if (needed == 0) {
            start = i++;
            if (b < 0x80) { *o++ = (char)b; continue; }
            if (b >= 0xC2 && b <= 0xDF) needed = 1;
            else if (b >= 0xE0 && b <= 0xEF) {
                needed = 2;
                if (b == 0xE0) lower = 0xA0;
                if (b == 0xED) upper = 0x9F;
            } else if (b >= 0xF0 && b <= 0xF4) {
                needed = 3;
                if (b == 0xF0) lower = 0x90;
                if (b == 0xF4) upper = 0x8F;
            } else { memcpy(o, fffd, 3); o += 3; }
            continue;
        }
        if (b < lower || b > upper) {              /* bad continuation: reprocess b */
            lower = 0x80;
            upper = 0xBF;
            needed = seen = 0;
            memcpy(o, fffd, 3); o += 3;
            continue;
        }
        lower = 0x80;
        upper = 0xBF;
        i++;
        if (++seen == needed) {                    /* complete: copy the sequence as is */
            memcpy(o, in + start, i - start);
            o += i - start;
            needed = seen = 0;
        }
    }
    if (needed) { memcpy(o, fffd, 3); o += 3; }
    *o = '\0';
    if (out_len) *out_len = (apr_size_t)(o - out);
    return out;
}

static json_t *jstr(apr_pool_t *p, const char *s)
{
    apr_size_t n;
    const char *v = utf8_repair(p, s ? s : "", s ? strlen(s) : 0, &n);
    return json_stringn(v, n);
}

/* ---- application/x-www-form-urlencoded (WHATWG URL "urlencoded parser") ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* '+' is a space, %XY a byte, a '%' not followed by two hex digits stays literal; then
 * repaired to UTF-8. May contain NUL bytes (from %00), hence the length. */
static char *form_decode(apr_pool_t *p, const char *s, apr_size_t n, apr_size_t *out_len)
{
    char *raw = apr_palloc(p, n + 1), *o = raw;
    apr_size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == '+') *o++ = ' ';
        else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else *o++ = s[i];
    }
    return utf8_repair(p, raw, (apr_size_t)(o - raw), out_len);
}

typedef void (*pair_fn)(void *baton, const char *k, apr_size_t kn, const char *v, apr_size_t vn);

/* Calls fn for each decoded name/value pair of q[0..n), in order; empty sequences skipped. */
static void each_pair(apr_pool_t *p, const char *q, apr_size_t n, pair_fn fn, void *baton)
{
    const char *end = q + n;
    while (q < end) {
        const char *amp = memchr(q, '&', (apr_size_t)(end - q));
        const char *seq_end = amp ? amp : end;
        if (seq_end > q) {
            const char *eq = memchr(q, '=', (apr_size_t)(seq_end - q));
            const char *name_end = eq ? eq : seq_end;
            const char *val = eq ? eq + 1 : seq_end;
            apr_size_t kn, vn;
            const char *k = form_decode(p, q, (apr_size_t)(name_end - q), &kn);
            const char *v = form_decode(p, val, (apr_size_t)(seq_end - val), &vn);
            fn(baton, k, kn, v, vn);
        }
        q = amp ? amp + 1 : end;
    }
}

static void add_query_pair(void *baton, const char *k, apr_size_t kn, const char *v,
                           apr_size_t vn)
{
    json_t *obj = baton;
    if (json_object_size(obj) >= CTFL_QUERY_MAX_KEYS && !json_object_getn(obj, k, kn)) return;
    json_object_setn_new(obj, k, kn, json_stringn(v, vn));   /* last value wins */
}

static json_t *query_object(apr_pool_t *p, const char *raw_query)
{
    json_t *obj = json_object();
    if (obj && raw_query) each_pair(p, raw_query, strlen(raw_query), add_query_pair, obj);
    return obj;
}

char *ctfl_query_to_json(apr_pool_t *p, const char *raw_query)
{
    json_t *obj = query_object(p, raw_query);
    char *text, *out = NULL;
    if (!obj) return NULL;
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text) {
        out = apr_pstrdup(p, text);
        free(text);
    }
    return out;
}

/* ---- UTM campaign inference (spec §2.6) ---- */

static const char *const utm_params[5][2] = {
    { "utm_campaign", "name" }, { "utm_source", "source" }, { "utm_medium", "medium" },
    { "utm_term", "term" }, { "utm_content", "content" },
};

typedef struct {
    const char *val[5];
    apr_size_t len[5];
} utm_found;

static void find_utm(void *baton, const char *k, apr_size_t kn, const char *v, apr_size_t vn)
{
    utm_found *f = baton;
    int i;
    for (i = 0; i < 5; i++) {
        /* URLSearchParams.get(): the first occurrence */
        if (!f->val[i] && kn == strlen(utm_params[i][0]) && memcmp(k, utm_params[i][0], kn) == 0) {
            f->val[i] = v;
            f->len[i] = vn;
        }
    }
}

/* "scheme://authority...": what a WHATWG parser accepts for our absolute page URLs.
 * Anything else (relative, empty) infers nothing, as in the SDK. */
static int is_absolute_url(const char *u)
{
    const char *s = u;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return 0;
    while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
           || *s == '+' || *s == '-' || *s == '.')
        s++;
    return strncmp(s, "://", 3) == 0 && s[3] && !strchr("/?#", s[3]);
}

/* The campaign object: UTM values from the URL's query, {} when there are none. */
static json_t *campaign_object(apr_pool_t *p, const char *url)
{
    json_t *c = json_object();
    utm_found f;
    int i;

    if (!c || !url || !is_absolute_url(url)) return c;
    memset(&f, 0, sizeof f);
    {
        const char *q = strchr(url, '?'), *hash = strchr(url, '#');
        if (q && (!hash || q < hash))
            each_pair(p, q + 1, hash ? (apr_size_t)(hash - q - 1) : strlen(q + 1), find_utm, &f);
    }
    for (i = 0; i < 5; i++)
        if (f.val[i]) json_object_set_new(c, utm_params[i][1], json_stringn(f.val[i], f.len[i]));
    return c;
}

/* ---- ids and times ---- */

char *ctfl_uuid_v4(apr_pool_t *p)
{
    unsigned char b[16];
    if (apr_generate_random_bytes(b, sizeof b) != APR_SUCCESS) return NULL;
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);   /* RFC 4122 variant */
    return apr_psprintf(p, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                        "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
                        b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

char *ctfl_iso_timestamp(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t x;
    if (apr_time_exp_gmt(&x, t) != APR_SUCCESS) return NULL;
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", x.tm_year + 1900,
                        x.tm_mon + 1, x.tm_mday, x.tm_hour, x.tm_min, x.tm_sec,
                        x.tm_usec / 1000);
}

/* ---- the body ---- */

/* Universal fields (spec §2.1) in the order of the spec's example. */
static json_t *event_base(apr_pool_t *p, const char *type, const char *ts)
{
    const char *id = ctfl_uuid_v4(p);
    if (!id) return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type, "channel", "server",
                     "messageId", id, "originalTimestamp", ts, "sentAt", ts, "timestamp", ts);
}

char *ctfl_event_build_body(apr_pool_t *p, const ctfl_event_ctx *ctx, apr_time_t now)
{
    const char *ts = ctfl_iso_timestamp(p, now);
    json_t *page = NULL, *context = NULL, *events = NULL, *ev, *body = NULL;
    char *text, *out = NULL;

    if (!ctx || !ts) return NULL;

    /* One Page object, shared by properties and context.page (spec §2.5, §10.2). */
    page = json_pack("{s:o, s:o, s:o, s:o, s:o}",
                     "path", jstr(p, ctx->path),
                     "query", query_object(p, ctx->query),
                     "referrer", jstr(p, ctx->referrer),
                     "search", jstr(p, (ctx->query && *ctx->query)
                                       ? apr_pstrcat(p, "?", ctx->query, NULL) : ""),
                     "url", jstr(p, ctx->url));
    if (!page) goto done;

    context = json_pack("{s:o, s:{s:b}, s:{s:o, s:o}, s:o, s:O}",
                        "campaign", campaign_object(p, ctx->url),
                        "gdpr", "isConsentGiven", ctx->consent_given ? 1 : 0,
                        "library",
                        "name", jstr(p, ctx->library_name ? ctx->library_name : CTFLOPT_NAME),
                        "version", jstr(p, ctx->library_version ? ctx->library_version
                                                                : CTFLOPT_VERSION),
                        "locale", jstr(p, ctx->locale ? ctx->locale : "en-US"),
                        "page", page);
    if (!context) goto done;
    if (ctx->user_agent && json_object_set_new(context, "userAgent", jstr(p, ctx->user_agent)))
        goto done;

    if (!(events = json_array())) goto done;
    if (ctx->user_id) {                            /* identify first, then page (spec §2.7) */
        if (!(ev = event_base(p, "identify", ts))
            || json_array_append_new(events, ev)
            || json_object_set_new(ev, "userId", jstr(p, ctx->user_id))
            || json_object_set_new(ev, "traits", json_object())
            || json_object_set(ev, "context", context))
            goto done;
    }
    if (!(ev = event_base(p, "page", ts))
        || json_array_append_new(events, ev)
        || json_object_set(ev, "properties", page)
        || json_object_set(ev, "context", context))
        goto done;

    body = json_pack("{s:O, s:{s:[s, s]}}", "events", events,
                     "options", "features", "ip-enrichment", "location");
    if (body && (text = json_dumps(body, JSON_COMPACT)) != NULL) {
        out = apr_pstrdup(p, text);
        free(text);
    }
done:
    json_decref(body);
    json_decref(events);
    json_decref(context);
    json_decref(page);
    return out;
}
