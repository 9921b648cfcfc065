/* The CTFLOPT output filter: Apache plumbing around ctfl_rewriter.
 *
 * Decides once, on the first brigade, whether the response is ours to touch;
 * then streams every bucket through the rewriter, which hands back pass-through
 * ranges of the original buckets (forwarded zero-copy) and spliced bytes. */
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <util_filter.h>

#include "ctflopt_private.h"
#include "ctfl_bootstrap.h"
#include "ctfl_charset.h"
#include "ctfl_rewrite.h"
#include "ctflopt_elements.h"

#define FILTER_NAME "CTFLOPT"
/* Browsers look for <meta charset> in the first 1024 bytes; so do we, before the
 * first byte is rewritten (a FLUSH or the end of the body decides earlier). */
#define SNIFF_BYTES 1024

typedef struct {
    ctfl_rewriter *rw;
    ctflopt_elements *elements;
    apr_bucket_brigade *out;
    apr_bucket *cur;            /* bucket being fed: pass-through ranges point into it */
    const char *cur_data;
    apr_size_t cur_len;
    char sniff[SNIFF_BYTES];    /* the first bytes, until the charset is known */
    apr_size_t sniff_len;
    int charset_decided;
    int passthrough;            /* decided not to touch the rest */
    apr_size_t out_bytes;       /* data in out since it was last passed on */
    int debug;                  /* CtflOptDebug: hold the page until the header is known */
} filter_ctx;

/* CtflOptDebug: what was decided for this request, and why. */
static void debug_header(request_rec *r, const char *filter)
{
    ctflopt_dir_conf *d = ap_get_module_config(r->per_dir_config, &ctflopt_module);
    const ctflopt_req *q = ctflopt_req_get(r);
    const char *api_ms = apr_table_get(r->subprocess_env, "CTFLOPT_API_MS");
    if (d->debug != 1 || !q) return;
    apr_table_setn(r->headers_out, "X-CtflOpt-Debug", apr_psprintf(r->pool,
        "consent=%s; status=%s; locale=%s; api-ms=%s; profile=%s; experiences=%s; %s",
        q->consent == CONSENT_GRANTED ? "granted" : q->consent == CONSENT_DENIED ? "denied" : "unknown",
        q->status ? q->status : "-", q->locale ? q->locale : "-", api_ms ? api_ms : "-",
        q->data ? q->data->profile_id : "-", q->data ? q->data->experiences_list : "-", filter));
}

static void skip(ap_filter_t *f, const char *why)
{
    debug_header(f->r, apr_psprintf(f->r->pool, "filter=skipped (%s)", why));
    ctflopt_count(CNT_FILTER_SKIPPED, 1);
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, f->r, "ctflopt: filter skipped: %s", why);
}

/* Why this response must pass untouched, or NULL when we take it. */
static const char *ineligible(request_rec *r, const ctflopt_req *q)
{
    const char *ce = apr_table_get(r->headers_out, "Content-Encoding");
    if (!ce) ce = apr_table_get(r->err_headers_out, "Content-Encoding");
    if (r->main) return "sub-request";
    if (!q) return "no decision for this request";
    if (apr_table_get(r->subprocess_env, "no-ctflopt")) return "no-ctflopt";
    if (r->header_only) return "HEAD";
    if (r->status != HTTP_OK) return apr_psprintf(r->pool, "status %d", r->status);
    if (apr_table_get(r->headers_out, "Content-Range")) return "Content-Range";
    if (!ctflopt_is_html(r->content_type)) return apr_psprintf(r->pool, "content type %s",
                                                      r->content_type ? r->content_type : "none");
    if (ce && strcasecmp(ce, "identity")) return apr_psprintf(r->pool, "Content-Encoding %s", ce);
    if (r->content_encoding && strcasecmp(r->content_encoding, "identity"))
        return apr_psprintf(r->pool, "content encoding %s", r->content_encoding);
    return NULL;
}

static const char *bootstrap_markup(request_rec *r, const ctflopt_req *q, apr_size_t *len)
{
    ctflopt_dir_conf *d = ap_get_module_config(r->per_dir_config, &ctflopt_module);
    ctflopt_srv_conf *sc = ap_get_module_config(r->server->module_config, &ctflopt_module);
    ctfl_bootstrap b = { 0 };
    int track = ctflopt_dir_autotrack(d);

    if (d->bootstrap == 0) return NULL;
    b.sdk_url = d->websdk_url ? d->websdk_url : DEFAULT_WEBSDK_URL;
    if (d->nonce_env) {
        const char *n = apr_table_get(r->subprocess_env, d->nonce_env);
        if (n && *n && strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789+/=_-") == strlen(n))
            b.nonce = n;
    }
    b.client_id = sc->client_id;
    b.environment = ctflopt_srv_environment(sc);
    b.locale = q->locale;
    b.experience_base = ctflopt_srv_experience_url(sc);
    b.insights_base = ctflopt_srv_insights_url(sc);
    b.consent = q->consent;
    if (q->consent == CONSENT_GRANTED && q->data) {
        b.profile_json = q->data->profile_json;
        b.selections_json = q->data->selections_json;
        b.changes_json = q->data->changes_json;
    }
    b.track_views = !!(track & AUTOTRACK_VIEWS);
    b.track_clicks = !!(track & AUTOTRACK_CLICKS);
    b.track_hovers = !!(track & AUTOTRACK_HOVERS);
    b.consent_sync = d->consent_sync != 0;
    b.consent_cookie = d->consent_cookie ? d->consent_cookie : "app-personalization-consent";
    b.consent_granted = d->consent_cookie ? d->consent_granted : "granted";
    b.consent_denied = d->consent_cookie ? d->consent_denied : "denied";
    b.cookie_domain = d->cookie_domain;
    b.cookie_max_age = ctflopt_dir_cookie_max_age(d);
    return ctfl_bootstrap_render(r->pool, &b, len);
}

/* The representation changes: its length, and for personalized pages who may cache it. */
static void fix_headers(request_rec *r, const ctflopt_req *q, int with_bootstrap)
{
    ctflopt_dir_conf *d = ap_get_module_config(r->per_dir_config, &ctflopt_module);
    apr_table_unset(r->headers_out, "Content-Length");
    apr_table_unset(r->headers_out, "Content-MD5");
    /* The bootstrap carries the consent read from a cookie and the negotiated locale. */
    if (with_bootstrap) apr_table_mergen(r->headers_out, "Vary", "Cookie");
    if (with_bootstrap && d->locales && d->locales->nelts > 1)
        apr_table_mergen(r->headers_out, "Vary", "Accept-Language");
    if (with_bootstrap || q->data) {
        /* The origin's validators describe the origin's bytes, not this page. */
        apr_table_unset(r->headers_out, "ETag");
        apr_table_unset(r->headers_out, "Last-Modified");
        apr_table_unset(r->headers_out, "Accept-Ranges");
    }
    if (q->data && !with_bootstrap) apr_table_mergen(r->headers_out, "Vary", "Cookie");

}

/* ctfl_rewriter output: ranges of the current bucket go out as copies of it
 * (shared data, no memcpy); anything else is the rewriter's own bytes. */
static apr_status_t emit(void *vctx, const char *data, apr_size_t len)
{
    ap_filter_t *f = vctx;
    filter_ctx *ctx = f->ctx;
    apr_bucket *b;
    if (!len) return APR_SUCCESS;
    if (ctx->cur && data >= ctx->cur_data && data + len <= ctx->cur_data + ctx->cur_len) {
        apr_status_t rv = apr_bucket_copy(ctx->cur, &b);
        if (rv != APR_SUCCESS) return rv;
        b->start += (apr_off_t)(data - ctx->cur_data);
        b->length = len;
    }
    else {
        b = apr_bucket_heap_create(data, len, NULL, f->c->bucket_alloc);
    }
    APR_BRIGADE_INSERT_TAIL(ctx->out, b);
    ctx->out_bytes += len;
    return APR_SUCCESS;
}

/* Undo the request hook's "Accept-Encoding: identity" for the proxied origin:
 * compression after us (mod_deflate) must see what the client accepts. */
static void restore_accept_encoding(request_rec *r)
{
    const char *ae = apr_table_get(r->notes, CTFLOPT_NOTE_ACCEPT_ENCODING);
    if (!ae) return;
    if (*ae) apr_table_setn(r->headers_in, "Accept-Encoding", ae);
    else apr_table_unset(r->headers_in, "Accept-Encoding");
    apr_table_unset(r->notes, CTFLOPT_NOTE_ACCEPT_ENCODING);
}

static int init_ctx(ap_filter_t *f)
{
    request_rec *r = f->r;
    ctflopt_req *q = ctflopt_req_get(r);
    const char *why = ineligible(r, q);
    ctflopt_dir_conf *d = ap_get_module_config(r->per_dir_config, &ctflopt_module);
    ctfl_rewriter_opts opts = { 0 };
    ctfl_charset cs;
    filter_ctx *ctx;

    restore_accept_encoding(r);
    /* The request hook put "private" in err_headers_out for this visitor; the
     * origin's own (perhaps public) Cache-Control must not contradict it, whether
     * or not the body is ours to rewrite. */
    if (q && q->private_response) apr_table_unset(r->headers_out, "Cache-Control");
    if (!why && apr_table_get(r->notes, CTFLOPT_NOTE_FILTERED))
        why = "CTFLOPT is already in the filter chain";   /* SetOutputFilter named it too */
    apr_table_setn(r->notes, CTFLOPT_NOTE_FILTERED, "1");
    if (!why) {
        ctfl_charset_detect(r->pool, r->content_type, NULL, 0, &cs);
        if (!cs.ascii_compatible) why = apr_psprintf(r->pool, "charset %s", cs.name);
    }
    if (why) {
        skip(f, why);
        return 0;
    }
    ctx = f->ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    ctx->out = apr_brigade_create(r->pool, f->c->bucket_alloc);
    opts.emit = emit;
    opts.emit_ctx = f;
    opts.inject = bootstrap_markup(r, q, &opts.inject_len);
    ctx->debug = d->debug == 1;
    ctx->elements = ctflopt_elements_create(r, q, ctx->debug);
    opts.on_element = ctflopt_elements_on_element;
    opts.element_ctx = ctx->elements;
    opts.max_element_bytes = (apr_size_t)(d->max_element_bytes > 0 ? d->max_element_bytes
                                                                    : DEFAULT_MAX_ELEMENT_BYTES);
    opts.max_elements = (unsigned)(d->max_elements > 0 ? d->max_elements : DEFAULT_MAX_ELEMENTS);
    ctx->rw = ctfl_rewriter_create(r->pool, &opts);
    ctflopt_elements_set_rewriter(ctx->elements, ctx->rw);
    fix_headers(r, q, opts.inject != NULL);
    ctflopt_count(CNT_FILTERED, 1);
    return 1;
}

static void finish_stats(ap_filter_t *f)
{
    filter_ctx *ctx = f->ctx;
    const ctfl_rewriter_stats *st = ctfl_rewriter_get_stats(ctx->rw);
    ctflopt_count(CNT_BYTES_SCANNED, (apr_uint32_t)st->bytes_in);
    if (st->injected != CTFL_INJECT_NONE) ctflopt_count(CNT_INJECTED, 1);
    if (st->caps_hit) ctflopt_count(CNT_CAPS_HIT, st->caps_hit);
    ctflopt_elements_finish(ctx->elements, st);
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, f->r,
                  "ctflopt: scanned %" APR_SIZE_T_FMT " bytes, bootstrap %s, max held %"
                  APR_SIZE_T_FMT, st->bytes_in,
                  st->injected == CTFL_INJECT_HEAD ? "before </head>"
                  : st->injected == CTFL_INJECT_BODY ? "before </body>" : "not inserted",
                  st->max_held);
}

static apr_status_t pass_out(ap_filter_t *f)
{
    filter_ctx *ctx = f->ctx;
    apr_status_t rv;
    if (APR_BRIGADE_EMPTY(ctx->out)) return APR_SUCCESS;
    if (ctx->debug && !APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(ctx->out))) {
        /* Held until the end: the data must outlive the caller's buffers. */
        apr_bucket *b;
        for (b = APR_BRIGADE_FIRST(ctx->out); b != APR_BRIGADE_SENTINEL(ctx->out);
             b = APR_BUCKET_NEXT(b)) {
            rv = apr_bucket_setaside(b, f->r->pool);
            if (rv != APR_SUCCESS && rv != APR_ENOTIMPL) return rv;
        }
        return APR_SUCCESS;
    }
    rv = ap_pass_brigade(f->next, ctx->out);
    apr_brigade_cleanup(ctx->out);
    ctx->out_bytes = 0;
    return rv;
}

/* Charset known: feed what was sniffed, or give up on a non-ASCII-compatible page. */
static apr_status_t decide_charset(ap_filter_t *f)
{
    filter_ctx *ctx = f->ctx;
    ctfl_charset cs;
    ctx->charset_decided = 1;
    ctfl_charset_detect(f->r->pool, f->r->content_type, ctx->sniff, ctx->sniff_len, &cs);
    if (!cs.ascii_compatible) {
        /* UTF-16 and friends: leave every byte alone. */
        skip(f, apr_psprintf(f->r->pool, "charset %s", cs.name ? cs.name : "unknown"));
        ctx->passthrough = 1;
        APR_BRIGADE_INSERT_TAIL(ctx->out, apr_bucket_heap_create(ctx->sniff, ctx->sniff_len, NULL,
                                                                f->c->bucket_alloc));
        return APR_SUCCESS;
    }
    ctflopt_elements_set_charset(ctx->elements, cs.name);
    return ctfl_rewriter_feed(ctx->rw, ctx->sniff, ctx->sniff_len);
}

/* The client went away (or a later filter failed): not ours to log, as with any
 * other filter; just stop. */
static apr_status_t downstream_failed(apr_bucket_brigade *bb, apr_status_t rv)
{
    apr_brigade_cleanup(bb);
    return rv;
}

static apr_status_t ctflopt_output_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    filter_ctx *ctx = f->ctx;
    apr_status_t rv = APR_SUCCESS;

    if (!ctx) {
        if (APR_BRIGADE_EMPTY(bb)) return APR_SUCCESS;
        if (!init_ctx(f)) {
            ap_remove_output_filter(f);
            return ap_pass_brigade(f->next, bb);
        }
        ctx = f->ctx;
    }

    while (rv == APR_SUCCESS && !APR_BRIGADE_EMPTY(bb)) {
        apr_bucket *b = APR_BRIGADE_FIRST(bb);
        apr_size_t used = 0;
        if (ctx->passthrough) {
            APR_BUCKET_REMOVE(b);
            APR_BRIGADE_INSERT_TAIL(ctx->out, b);
            continue;
        }
        if (APR_BUCKET_IS_METADATA(b)) {
            if (!ctx->charset_decided && (APR_BUCKET_IS_EOS(b) || APR_BUCKET_IS_FLUSH(b))) {
                rv = decide_charset(f);
                continue;
            }
            if (APR_BUCKET_IS_EOS(b) && !ctx->passthrough) {
                const ctfl_rewriter_stats *st;
                rv = ctfl_rewriter_finish(ctx->rw);
                finish_stats(f);
                st = ctfl_rewriter_get_stats(ctx->rw);
                debug_header(f->r, apr_psprintf(f->r->pool, "bootstrap=%s; elements=%s",
                    st->injected == CTFL_INJECT_HEAD ? "head" : st->injected == CTFL_INJECT_BODY
                    ? "body" : "none", ctflopt_elements_debug(ctx->elements)));
            }
            /* FLUSH and friends keep their place in the output; held bytes (an
             * unfinished tag or marked element) simply stay held. */
            APR_BUCKET_REMOVE(b);
            APR_BRIGADE_INSERT_TAIL(ctx->out, b);
            if (APR_BUCKET_IS_FLUSH(b) && rv == APR_SUCCESS && (rv = pass_out(f)) != APR_SUCCESS)
                return downstream_failed(bb, rv);
            continue;
        }
        rv = apr_bucket_read(b, &ctx->cur_data, &ctx->cur_len, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, f->r, CTFLOPTNO(0201)
                          "reading the response body failed");
            return rv;
        }
        if (!ctx->charset_decided) {
            used = ctx->cur_len < SNIFF_BYTES - ctx->sniff_len ? ctx->cur_len
                                                                : SNIFF_BYTES - ctx->sniff_len;
            memcpy(ctx->sniff + ctx->sniff_len, ctx->cur_data, used);
            ctx->sniff_len += used;
            if (ctx->sniff_len == SNIFF_BYTES) rv = decide_charset(f);
            if (rv == APR_SUCCESS && ctx->passthrough && used < ctx->cur_len) {
                apr_bucket_split(b, used);          /* the rest goes out untouched */
                apr_bucket_delete(b);
                continue;
            }
        }
        if (rv == APR_SUCCESS && ctx->charset_decided && !ctx->passthrough && used < ctx->cur_len) {
            ctx->cur = b;
            rv = ctfl_rewriter_feed(ctx->rw, ctx->cur_data + used, ctx->cur_len - used);
            ctx->cur = NULL;
        }
        apr_bucket_delete(b);
        /* A local file arrives as one brigade: send it on in pieces, so that a
         * big page never sits in memory whole. */
        if (rv == APR_SUCCESS && ctx->out_bytes >= AP_MIN_BYTES_TO_WRITE * 8
            && (rv = pass_out(f)) != APR_SUCCESS)
            return downstream_failed(bb, rv);
    }
    apr_brigade_cleanup(bb);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, f->r, CTFLOPTNO(0202) "rewriting failed");
        return rv;
    }
    return pass_out(f);
}

/* text/html or application/xhtml+xml, with or without parameters. */
int ctflopt_is_html(const char *ct)
{
    apr_size_t n;
    if (!ct) return 0;
    n = strcspn(ct, "; \t");
    return (n == 9 && !strncasecmp(ct, "text/html", 9))
           || (n == 21 && !strncasecmp(ct, "application/xhtml+xml", 21));
}

void ctflopt_insert_filter(request_rec *r)
{
    ctflopt_dir_conf *d = ap_get_module_config(r->per_dir_config, &ctflopt_module);
    if (d->engine != 1) return;
    if (r->main) {
        /* A sub-request's output (SSI include) flows through the main request's
         * filter, which rewrites it there; it gets no filter of its own. */
        ctflopt_count(CNT_FILTER_SKIPPED, 1);
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "ctflopt: filter skipped: sub-request");
        return;
    }
    if (ctflopt_req_get(r)) ap_add_output_filter(FILTER_NAME, NULL, r, r->connection);
}

void ctflopt_filter_register(void)
{
    /* After SSI (INCLUDES, RESOURCE) and before DEFLATE (CONTENT_SET). */
    ap_register_output_filter_protocol(FILTER_NAME, ctflopt_output_filter, NULL,
                                       AP_FTYPE_RESOURCE + 1,
                                       AP_FILTER_PROTO_CHANGE | AP_FILTER_PROTO_CHANGE_LENGTH);
}
