/* Per-process counters and the log rate limiter.
 * Both are arrays of 32-bit words touched only through apr_atomic_*, so request
 * threads of the event/worker MPMs can update them without a lock. */
#include <unistd.h>
#include <apr_atomic.h>
#include <apr_time.h>
#include <http_protocol.h>
#include <mod_status.h>

#include "ctflopt_private.h"
#include "ctflopt_cache.h"

static apr_uint32_t counters[CNT__COUNT];

#define LOG_SLOTS 16
#define LOG_INTERVAL_SEC 10
static apr_uint32_t log_last[LOG_SLOTS];       /* apr_time_sec of the last line per reason */
static apr_uint32_t log_suppressed[LOG_SLOTS]; /* lines dropped since then */

void ctflopt_count(ctflopt_counter c, apr_uint32_t n)
{
    if (c < CNT__COUNT) apr_atomic_add32(&counters[c], n);
}

/* At most one line per reason slot every LOG_INTERVAL_SEC seconds per process:
 * an outage must not flood the error log with one line per request. */
int ctflopt_log_allowed(int slot)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t last;
    if (slot < 0 || slot >= LOG_SLOTS) return 1;
    last = apr_atomic_read32(&log_last[slot]);
    if (last && now - last < LOG_INTERVAL_SEC) {
        apr_atomic_inc32(&log_suppressed[slot]);
        return 0;
    }
    return apr_atomic_cas32(&log_last[slot], now, last) == last;
}

/* Lines suppressed for this slot since its last logged line (resets the count). */
apr_uint32_t ctflopt_log_suppressed(int slot)
{
    if (slot < 0 || slot >= LOG_SLOTS) return 0;
    return apr_atomic_xchg32(&log_suppressed[slot], 0);
}

/* ---- operator's view: mod_status section and the ctflopt-status JSON handler ---- */

static const struct { const char *json, *auto_key, *label; } counter_info[CNT__COUNT] = {
    [CNT_REQUESTS_SEEN]      = { "requests_seen", "RequestsSeen", "requests seen" },
    [CNT_EVALUATED]          = { "evaluated", "Evaluated", "Experience calls" },
    [CNT_EVAL_OK]            = { "evaluated_ok", "EvaluatedOk", "Experience calls ok" },
    [CNT_EVAL_TIMEOUT]       = { "evaluated_timeout", "EvaluatedTimeout", "Experience timeouts" },
    [CNT_EVAL_ERROR]         = { "evaluated_error", "EvaluatedError", "Experience errors" },
    [CNT_NO_CONSENT]         = { "no_consent", "NoConsent", "requests without consent" },
    [CNT_SKIPPED]            = { "skipped", "Skipped", "requests skipped (HEAD, non-GET, opt-out, static)" },
    [CNT_INVALID_PROFILE_ID] = { "invalid_profile_id", "InvalidProfileId", "invalid profile id cookies" },
    [CNT_API_CONNECTIONS]    = { "api_connections", "ApiConnections", "API connections opened" },
    [CNT_BREAKER_SKIPPED]    = { "breaker_skipped", "BreakerSkipped", "calls skipped by the open breaker" },
    [CNT_BREAKER_OPENED]     = { "breaker_opened", "BreakerOpened", "times the breaker opened" },
    [CNT_FILTERED]           = { "filtered", "Filtered", "responses filtered" },
    [CNT_INJECTED]           = { "bootstrap_injected", "BootstrapInjected", "bootstraps injected" },
    [CNT_FILTER_SKIPPED]     = { "filter_skipped", "FilterSkipped", "responses passed untouched" },
    [CNT_BYTES_SCANNED]      = { "bytes_scanned", "BytesScanned", "bytes scanned" },
    [CNT_CAPS_HIT]           = { "caps_hit", "CapsHit", "caps hit" },
    [CNT_ELEMENTS_REWRITTEN] = { "elements_rewritten", "ElementsRewritten", "marked elements rewritten" },
    [CNT_ELEMENTS_KEPT]      = { "elements_kept", "ElementsKept", "marked elements kept unchanged (doubt)" },
    [CNT_ENTRY_CACHE_HITS]   = { "entry_cache_hits", "EntryCacheHits", "entry cache hits" },
    [CNT_ENTRY_MEMORY_HITS]  = { "entry_memory_hits", "EntryMemoryHits",
                                 "entry cache hits answered decoded from process memory" },
    [CNT_ENTRY_CACHE_MISSES] = { "entry_cache_misses", "EntryCacheMisses", "entry cache misses" },
    [CNT_ENTRY_NEGATIVE_HITS] = { "entry_negative_hits", "EntryNegativeHits",
                                  "unknown entry ids answered from the cache" },
    [CNT_ENTRY_STALE_SERVED] = { "entry_stale_served", "EntryStaleServed",
                                 "stale entries served (CDA failed)" },
    [CNT_CDA_CALLS]          = { "cda_calls", "CdaCalls", "CDA requests" },
    [CNT_CDA_ERRORS]         = { "cda_errors", "CdaErrors", "CDA failures" },
    [CNT_CDA_TIMEOUTS]       = { "cda_timeouts", "CdaTimeouts", "CDA timeouts" },
    [CNT_CDA_SKIPPED]        = { "cda_skipped", "CdaSkipped", "CDA fetches skipped by the open breaker" },
    [CNT_ENTRY_CACHE_STORE_ERRORS] = { "entry_cache_store_errors", "EntryCacheStoreErrors",
                                       "entries the cache did not store" },
};

/* Breakers of the virtual host that serves the status request. */
static const char *breaker_state(request_rec *r)
{
    ctflopt_srv_conf *sc = ap_get_module_config(r->server->module_config, &ctflopt_module);
    return ctfl_breaker_state_name(ctfl_breaker_get_state(sc->breaker, apr_time_now()));
}

static const char *cda_breaker_state(request_rec *r)
{
    ctflopt_srv_conf *sc = ap_get_module_config(r->server->module_config, &ctflopt_module);
    return ctfl_breaker_state_name(ctfl_breaker_get_state(sc->cda_breaker, apr_time_now()));
}

/* This process's decoded entries (ctflopt_cache.c); zeros when there is no entry cache. */
static ctfl_objcache_stats memory_stats(void)
{
    ctfl_objcache_stats st;
    memset(&st, 0, sizeof(st));
    ctflopt_cache_memory_stats(&st);
    return st;
}

static int status_hook(request_rec *r, int flags)
{
    int i;
    ctfl_objcache_stats mem = memory_stats();
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "CtflOptBreaker: %s\n", breaker_state(r));
        ap_rprintf(r, "CtflOptCdaBreaker: %s\n", cda_breaker_state(r));
        ap_rprintf(r, "CtflOptDecodedEntries: %" APR_SIZE_T_FMT "\nCtflOptDecodedBytes: %"
                   APR_SIZE_T_FMT "\n", mem.objects, mem.bytes);
        for (i = 0; i < CNT__COUNT; i++)
            ap_rprintf(r, "CtflOpt%s: %u\n", counter_info[i].auto_key,
                       apr_atomic_read32(&counters[i]));
        return OK;
    }
    ap_rputs("<hr />\n<h2>mod_ctflopt " CTFLOPT_VERSION " (this process)</h2>\n", r);
    ap_rprintf(r, "<p>Experience API circuit breaker: %s; CDA circuit breaker: %s; decoded "
               "entries in memory: %" APR_SIZE_T_FMT " (about %" APR_SIZE_T_FMT " KB)</p>\n",
               breaker_state(r), cda_breaker_state(r), mem.objects, mem.bytes / 1024);
    ap_rputs(flags & AP_STATUS_NOTABLE ? "<dl>\n" : "<table border=\"0\">\n", r);
    for (i = 0; i < CNT__COUNT; i++) {
        if (flags & AP_STATUS_NOTABLE)
            ap_rprintf(r, "<dt>%s: %u</dt>\n", counter_info[i].label,
                       apr_atomic_read32(&counters[i]));
        else
            ap_rprintf(r, "<tr><td>%s</td><td>%u</td></tr>\n", counter_info[i].label,
                       apr_atomic_read32(&counters[i]));
    }
    ap_rputs(flags & AP_STATUS_NOTABLE ? "</dl>\n" : "</table>\n", r);
    return OK;
}

/* SetHandler ctflopt-status: the same counters as JSON. */
static int status_handler(request_rec *r)
{
    int i;
    ctfl_objcache_stats mem;
    if (!r->handler || strcmp(r->handler, "ctflopt-status")) return DECLINED;
    if (r->method_number != M_GET) return HTTP_METHOD_NOT_ALLOWED;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) return OK;
    ap_rprintf(r, "{\"module\":\"%s\",\"version\":\"%s\",\"pid\":%ld,\"breaker\":\"%s\","
               "\"cda_breaker\":\"%s\",\"counters\":{", CTFLOPT_NAME, CTFLOPT_VERSION,
               (long)getpid(), breaker_state(r), cda_breaker_state(r));
    for (i = 0; i < CNT__COUNT; i++)
        ap_rprintf(r, "%s\"%s\":%u", i ? "," : "", counter_info[i].json,
                   apr_atomic_read32(&counters[i]));
    mem = memory_stats();
    ap_rprintf(r, "},\"decoded_entries\":{\"objects\":%" APR_SIZE_T_FMT ",\"bytes\":%"
               APR_SIZE_T_FMT ",\"evictions\":%" APR_UINT64_T_FMT "}}\n", mem.objects, mem.bytes,
               mem.evictions);
    return OK;
}

void ctflopt_status_register_hooks(void)
{
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(status_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
