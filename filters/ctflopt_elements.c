/* Marked elements in the CTFLOPT filter: the rewriter's on_element callback.
 *
 * For each complete marked element: parse it (ctfl_region), fetch the entries it
 * needs in one batch (entry cache, then the CDA), resolve and splice. Anything
 * that goes wrong keeps the origin's bytes; the reason is logged and counted. */
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "ctflopt_private.h"
#include "ctflopt_cache.h"
#include "ctflopt_elements.h"
#include "ctfl_region.h"
#include "ctfl_resolve.h"

enum { LOG_ELEMENT_KEPT = 4, LOG_ELEMENT_CAP = 5 };

struct ctflopt_elements {
    request_rec *r;
    const char *charset;            /* page charset, set once the first bytes are seen */
    int personalize;                /* consent granted and an evaluation to apply */
    int values_ready;
    apr_array_header_t *selections; /* ctfl_selected_optimization */
    const ctfl_value *profile;
    const ctfl_value *flags;
    ctfl_entries *entries;          /* everything fetched for this page so far */
    apr_table_t *fetched;           /* ids already asked for (found or not) */
    apr_pool_t *scratch;            /* per element; cleared before the next one */
    ctfl_region_parser *parser;     /* one libxml2 context for the page's elements */
    const ctfl_rewriter *rw;        /* the page's rewriter (its scan of each element) */
    unsigned rewritten, kept;
    apr_array_header_t *debug;      /* CtflOptDebug: "baseline>resolved(...)" per element */
};

/* The evaluation as values the resolver walks (decoded with the response). */
static void prepare_values(ctflopt_elements *el, const ctflopt_req *q)
{
    el->values_ready = 1;
    if (!el->personalize) return;
    el->profile = q->data->profile;
    el->flags = q->data->flags;
    if (ctfl_selections_from_value(el->r->pool, q->data->experiences, &el->selections) != 0)
        el->personalize = 0;   /* ctfl_json validated these: cannot happen */
}

ctflopt_elements *ctflopt_elements_create(request_rec *r, const ctflopt_req *q, int debug)
{
    ctflopt_elements *el = apr_pcalloc(r->pool, sizeof(*el));
    if (debug) el->debug = apr_array_make(r->pool, 8, sizeof(const char *));
    el->r = r;
    el->personalize = q->consent == CONSENT_GRANTED && q->data != NULL;
    el->fetched = apr_table_make(r->pool, 16);
    apr_pool_create(&el->scratch, r->pool);
    return el;
}

void ctflopt_elements_set_rewriter(ctflopt_elements *el, const ctfl_rewriter *rw)
{
    el->rw = rw;
}

void ctflopt_elements_set_charset(ctflopt_elements *el, const char *charset)
{
    el->charset = charset;
}

/* Ask the cache (and the CDA) only for ids this page has not asked for yet. */
static void fetch_entries(ctflopt_elements *el, const ctflopt_req *q, apr_array_header_t *ids)
{
    apr_array_header_t *todo = apr_array_make(el->scratch, ids->nelts, sizeof(const char *));
    ctflopt_entries_stats st;
    ctflopt_entry_set *set;
    int i;

    for (i = 0; i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (apr_table_get(el->fetched, id)) continue;
        apr_table_setn(el->fetched, apr_pstrdup(el->r->pool, id), "1");
        APR_ARRAY_PUSH(todo, const char *) = apr_pstrdup(el->r->pool, id);
    }
    if (!todo->nelts) return;
    set = ctflopt_entries_fetch(el->r, q->locale, todo, &st);
    ctflopt_count(CNT_ENTRY_CACHE_HITS, st.hits);
    ctflopt_count(CNT_ENTRY_MEMORY_HITS, st.memory_hits);
    ctflopt_count(CNT_ENTRY_CACHE_MISSES, st.misses);
    ctflopt_count(CNT_ENTRY_NEGATIVE_HITS, st.negative_hits);
    ctflopt_count(CNT_ENTRY_STALE_SERVED, st.stale_served);
    ctflopt_count(CNT_CDA_CALLS, st.cda_calls);
    ctflopt_count(CNT_CDA_ERRORS, st.cda_errors);
    ctflopt_count(CNT_CDA_TIMEOUTS, st.cda_timeouts);
    ctflopt_count(CNT_ENTRY_CACHE_STORE_ERRORS, st.store_errors);
    ctflopt_count(CNT_CDA_SKIPPED, st.cda_skipped);
    if (!set) return;
    if (!el->entries) el->entries = ctflopt_entry_set_index(set);
    else ctfl_entries_merge(el->entries, ctflopt_entry_set_index(set));
}

static const ctfl_value *lookup_entry(void *ctx, const char *id)
{
    ctflopt_elements *el = ctx;
    return el->entries ? ctfl_entries_entry(el->entries, id) : NULL;
}

static const ctfl_value *lookup_asset(void *ctx, const char *id)
{
    ctflopt_elements *el = ctx;
    return el->entries ? ctfl_entries_asset(el->entries, id) : NULL;
}

static const char *content_name(ctfl_region_content c)
{
    switch (c) {
    case CTFL_REGION_TEMPLATE: return "template";
    case CTFL_REGION_EMPTY: return "empty";
    case CTFL_REGION_REMOVED: return "removed";
    case CTFL_REGION_DEPTH_CAP: return "too-deep";
    default: return "origin";
    }
}

/* CtflOptDebug: one "baseline>resolved(outcome,experience,content)" per element. */
static void debug_note(ctflopt_elements *el, const ctfl_region_report *rep, const char *kept)
{
    int i;
    if (!el->debug) return;
    if (kept) {
        APR_ARRAY_PUSH(el->debug, const char *) = apr_psprintf(el->r->pool, "kept(%s)", kept);
        return;
    }
    for (i = 0; rep->elements && i < rep->elements->nelts; i++) {
        const ctfl_region_element *e = &APR_ARRAY_IDX(rep->elements, i, ctfl_region_element);
        APR_ARRAY_PUSH(el->debug, const char *) = apr_psprintf(el->r->pool, "%s>%s(%s,%s,%s)",
            e->baseline_id ? e->baseline_id : "-", e->entry_id ? e->entry_id : "-",
            e->resolved ? ctfl_resolve_outcome_name(e->outcome) : "not-resolved",
            e->experience_id ? e->experience_id : "-", content_name(e->content));
    }
}

const char *ctflopt_elements_debug(const ctflopt_elements *el)
{
    return el->debug && el->debug->nelts ? apr_array_pstrcat(el->r->pool, el->debug, ' ') : "none";
}

static void note_kept(ctflopt_elements *el, const char *reason)
{
    debug_note(el, NULL, reason ? reason : "unknown");
    el->kept++;
    ctflopt_count(CNT_ELEMENTS_KEPT, 1);
    if (ctflopt_log_allowed(LOG_ELEMENT_KEPT))
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, el->r, CTFLOPTNO(0204)
                      "a marked element was passed through unchanged: %s [%u similar lines "
                      "suppressed]", reason ? reason : "unknown reason",
                      ctflopt_log_suppressed(LOG_ELEMENT_KEPT));
}

static apr_status_t rewritten(ctflopt_elements *el, const ctfl_region_report *rep,
                              const char *out, apr_size_t out_len,
                              const char **replacement, apr_size_t *replacement_len)
{
    el->rewritten++;
    debug_note(el, rep, NULL);
    ctflopt_count(CNT_ELEMENTS_REWRITTEN, 1);
    *replacement = out;
    *replacement_len = out_len;
    return APR_SUCCESS;
}

apr_status_t ctflopt_elements_on_element(void *ctx, const char *elem, apr_size_t len,
                                         apr_size_t start_tag_len, const char **replacement,
                                         apr_size_t *replacement_len)
{
    ctflopt_elements *el = ctx;
    const ctflopt_req *q = ctflopt_req_get(el->r);
    ctfl_region_env env = { 0 };
    ctfl_region_report rep;
    const char *reason = NULL, *out;
    apr_size_t out_len;
    ctfl_region *rg;

    apr_pool_clear(el->scratch);   /* the previous replacement has been emitted */
    if (!el->values_ready) prepare_values(el, q);
    if (el->rw) env.tags = ctfl_rewriter_element_tags(el->rw, &env.ntags);
    memset(&rep, 0, sizeof(rep));
    if (!el->personalize) {
        /* Nothing to fetch or resolve: stamp the baseline attributes and drop the
         * variant templates (a tokenizer-only fast path when it gives the same bytes). */
        if (ctfl_region_rewrite_element(el->scratch, elem, len, start_tag_len, el->charset,
                                        &env, &out, &out_len, &rep) != CTFL_REGION_REWRITTEN) {
            note_kept(el, rep.reason);
            return APR_SUCCESS;
        }
        return rewritten(el, &rep, out, out_len, replacement, replacement_len);
    }
    if (!el->parser)
        el->parser = ctfl_region_parser_make(el->r->pool);
    rg = ctfl_region_parse_with(el->parser, el->scratch, elem, len, start_tag_len, el->charset,
                                env.tags, env.ntags, &reason);
    if (!rg) {
        note_kept(el, reason);
        return APR_SUCCESS;
    }
    env.personalize = 1;
    fetch_entries(el, q, ctfl_region_ids(rg, el->scratch));
    env.selections = el->selections;
    env.profile = el->profile;
    env.flags = el->flags;
    env.entry = lookup_entry;
    env.asset = lookup_asset;
    env.lookup_ctx = el;
    if (ctfl_region_rewrite(rg, &env, &out, &out_len, &rep) != CTFL_REGION_REWRITTEN) {
        note_kept(el, rep.reason);
        return APR_SUCCESS;
    }
    return rewritten(el, &rep, out, out_len, replacement, replacement_len);
}

/* End of page: one line for the marked elements that had to pass unchanged. */
void ctflopt_elements_finish(ctflopt_elements *el, const ctfl_rewriter_stats *st)
{
    unsigned capped = st->elements_over_bytes + st->elements_unclosed + st->elements_malformed
                      + st->elements_over_count;
    if (!capped) return;
    ctflopt_count(CNT_CAPS_HIT, capped);
    if (ctflopt_log_allowed(LOG_ELEMENT_CAP))
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, el->r, CTFLOPTNO(0203)
                      "marked elements passed through unchanged: %u over CtflOptMaxElementBytes, "
                      "%u still open at the end of the page, %u malformed, %u over "
                      "CtflOptMaxElements [%u similar lines suppressed]",
                      st->elements_over_bytes, st->elements_unclosed, st->elements_malformed,
                      st->elements_over_count, ctflopt_log_suppressed(LOG_ELEMENT_CAP));
}
