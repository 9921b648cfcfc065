/* ctflopt_cache — Contentful entries for the output filter (issue 3).
 *
 * The CDA directives (server scope), the shared ap_socache cache of raw
 * entries and assets (with this process's decoded copies of fresh ones in
 * front of it), and one view of them per page: each marked element asks for
 * its entries, an object is read once a page, then ONE batched CDA request
 * (within the page's budget) fetches whatever is missing or stale, results
 * are stored back and links resolved by ctfl_cda_assemble exactly as from a
 * direct CDA response.
 *
 * Cache layout (what is cached never depends on the visitor):
 *   key    "ctfl:v1:<space>:<env>:<locale|->:<entry|asset>:<id>@<CDA base URL>"
 *          (the base URL keeps preview and delivery content apart). The socache
 *          id is the key's SHA-1 (20 bytes): shmcb picks its subcache from the
 *          first id byte, and memcache/redis need ids under ~120 bytes; the full
 *          key is stored in the value and compared on every read.
 *   value  "ctfl1 <E|A|M> <stored-at, µs since epoch>\n<key>\n<raw JSON>"
 *          M = the CDA said this id does not exist (no JSON).
 *   Fresh for the TTL; kept CTFLOPT_CACHE_STALE_SEC longer (socache expiry)
 *   so that a CDA failure serves the stale copy; missing ids are remembered for
 *   CTFLOPT_CACHE_NEGATIVE_SEC (at most the TTL).
 *
 * Wiring (lead): CTFLOPT_CACHE_CMDS in ctflopt_cmds[], one call to
 * ctflopt_cache_register_hooks() in register_hooks, ctflopt_entries_stats
 * added to the status counters. */
#ifndef CTFLOPT_CACHE_H
#define CTFLOPT_CACHE_H

#include "ctflopt_private.h"
#include "ctfl_cda.h"
#include "ctfl_objcache.h"
#include "ctfl_entries.h"

#define CTFLOPT_CACHE_DEFAULT_TTL     300            /* s, the SDK's entry cache TTL */
#define CTFLOPT_CACHE_STALE_SEC       86400          /* stale-while-error window */
#define CTFLOPT_CACHE_NEGATIVE_SEC    60             /* unknown ids */
#define CTFLOPT_CACHE_MAX_VALUE       (256 * 1024)   /* larger objects are not cached */
#define CTFLOPT_CACHE_SHMCB_SIZE      (8L * 1024 * 1024)
#define CTFLOPT_CACHE_MUTEX           "ctflopt-cache"  /* Mutex directive name */
#define CTFLOPT_CDA_DEFAULT_URL       "https://cdn.contentful.com/"
#define CTFLOPT_CDA_MIN_RESPONSE      (8L * 1024 * 1024)  /* CDA body cap floor (7 MB CDA limit) */

/* Log rate-limiter slots (ctflopt_log_allowed) used here. */
#define CTFLOPT_LOG_SLOT_CDA_TIMEOUT  8
#define CTFLOPT_LOG_SLOT_CDA_ERROR    9
#define CTFLOPT_LOG_SLOT_CACHE_STORE  10

/* ---- directives ---------------------------------------------------------- */

const char *ctflopt_cache_set_space(cmd_parms *cmd, void *dconf, const char *arg);
const char *ctflopt_cache_set_environment(cmd_parms *cmd, void *dconf, const char *arg);
const char *ctflopt_cache_set_token(cmd_parms *cmd, void *dconf, const char *arg);
const char *ctflopt_cache_set_token_file(cmd_parms *cmd, void *dconf, const char *arg);
const char *ctflopt_cache_set_url(cmd_parms *cmd, void *dconf, const char *arg);
const char *ctflopt_cache_set_entry_cache(cmd_parms *cmd, void *dconf, const char *spec, const char *ttl);

/* Entries for ctflopt_cmds[] (before the { NULL } terminator). */
#define CTFLOPT_CACHE_CMDS \
    AP_INIT_TAKE1("CtflOptContentfulSpace", ctflopt_cache_set_space, NULL, RSRC_CONF, \
                  "Contentful space id whose entries the page marks"), \
    AP_INIT_TAKE1("CtflOptContentfulEnvironment", ctflopt_cache_set_environment, NULL, RSRC_CONF, \
                  "Contentful environment (default master)"), \
    AP_INIT_TAKE1("CtflOptContentfulToken", ctflopt_cache_set_token, NULL, RSRC_CONF, \
                  "Content Delivery (or Preview) API access token"), \
    AP_INIT_TAKE1("CtflOptContentfulTokenFile", ctflopt_cache_set_token_file, NULL, RSRC_CONF, \
                  "File holding the access token (read at startup)"), \
    AP_INIT_TAKE1("CtflOptContentfulURL", ctflopt_cache_set_url, NULL, RSRC_CONF, \
                  "CDA base URL (default https://cdn.contentful.com/)"), \
    AP_INIT_TAKE12("CtflOptEntryCache", ctflopt_cache_set_entry_cache, NULL, RSRC_CONF, \
                   "Shared cache of raw entries: TYPE[:ARGS] [TTL seconds] (default shmcb 300)")

/* pre_config (mutex registration), check_config, post_config (cache create +
 * init, real pass only), child_init (mutex). */
void ctflopt_cache_register_hooks(void);

/* ---- per page ----------------------------------------------------------- */

typedef struct {
    apr_uint32_t hits;            /* fresh objects read from the cache */
    apr_uint32_t memory_hits;     /* ... of which this process had decoded already */
    apr_uint32_t misses;          /* objects not in the cache (or unreadable) */
    apr_uint32_t negative_hits;   /* ids known to be missing: no CDA request */
    apr_uint32_t stale_served;    /* expired objects used because the CDA failed */
    apr_uint32_t cda_calls;       /* HTTP requests made to the CDA */
    apr_uint32_t cda_errors;      /* failed fetches, timeouts included */
    apr_uint32_t cda_timeouts;
    apr_uint32_t store_errors;    /* objects not stored (too large, provider error) */
    apr_uint32_t cda_skipped;     /* fetches skipped: the CDA circuit breaker is open */
} ctflopt_entries_stats;

typedef struct ctflopt_entry_set ctflopt_entry_set;

/* This process's decoded copies of fresh entries (for the status page): 0
 * when there is no entry cache. */
int ctflopt_cache_memory_stats(ctfl_objcache_stats *st);

/* 1 when this server has a space and a token (else the filter has no CDA). */
int ctflopt_cda_enabled(server_rec *s);

/* The entries and assets of baseline_ids (const char *; invalid ids are
 * ignored) and everything they link within include depth 10, for one locale
 * (NULL or invalid: the space's default locale). NULL when the CDA is not
 * configured for r->server. Never fails otherwise: what could not be had
 * stays out (its links stay links). *st is filled (zeroed first): what this
 * call read or fetched; an object is read once per request, however many
 * calls need it. */
ctflopt_entry_set *ctflopt_entries_fetch(request_rec *r, const char *locale,
                                         const apr_array_header_t *baseline_ids,
                                         ctflopt_entries_stats *st);

/* The assembled index: ctfl_entries_entry(index, baseline_id) for resolution,
 * ctfl_entries_asset(index, id) for asset URLs. Lives in r->pool. */
ctfl_entries *ctflopt_entry_set_index(ctflopt_entry_set *set);

#endif
