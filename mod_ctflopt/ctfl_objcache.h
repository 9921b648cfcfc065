/* ctfl_objcache — a per-process cache of decoded objects (no httpd headers).
 *
 * The shared entry cache (ap_socache) holds CDA objects as JSON text; every
 * marked element of every page would otherwise read and decode its entries
 * again. This keeps decoded values (ctfl_value trees) in process memory, each
 * with the time its text was stored in the shared cache, so that a page whose
 * objects are fresh needs neither the shared cache (nor its lock) nor JSON.
 *
 * Each object lives in a pool of its own. A caller gets it "pinned" to one of
 * its pools (the request's): it stays valid until that pool is cleared or
 * destroyed, even if the cache drops or replaces it meanwhile. Least recently
 * used objects go first when the cache is over its byte or object budget.
 * Thread-safe (one mutex, held only for lookups and list updates; decoding
 * happens outside it). Values are read-only once cached. */
#ifndef CTFL_OBJCACHE_H
#define CTFL_OBJCACHE_H

#include <apr_pools.h>
#include <apr_time.h>
#include "ctfl_value.h"

typedef struct ctfl_objcache ctfl_objcache;

typedef struct {
    apr_uint64_t hits, misses, inserts, evictions;
    apr_size_t objects, bytes;          /* now (bytes: the budget's estimate) */
} ctfl_objcache_stats;

/* Lives as long as p (which must not be used by other threads meanwhile);
 * NULL when the mutex cannot be created. */
ctfl_objcache *ctfl_objcache_create(apr_pool_t *p, apr_size_t max_bytes, unsigned max_objects);

/* The object stored under key with a stored_at >= fresh_from, pinned to pin;
 * NULL when there is none (absent, or older: the older one is dropped). */
const ctfl_value *ctfl_objcache_get(ctfl_objcache *c, const char *key, apr_time_t fresh_from,
                                    apr_pool_t *pin, apr_time_t *stored_at);

/* Decodes text into a pool of its own (decode returns NULL when the text is
 * not a valid object: nothing is cached then) and caches it under key,
 * replacing any other version; the value pinned to pin, or NULL. */
typedef const ctfl_value *(*ctfl_objcache_decode_fn)(apr_pool_t *p, const char *text,
                                                     apr_size_t len, void *ctx);
const ctfl_value *ctfl_objcache_put(ctfl_objcache *c, const char *key, apr_time_t stored_at,
                                    const char *text, apr_size_t len,
                                    ctfl_objcache_decode_fn decode, void *ctx, apr_pool_t *pin);

/* Forget key (the shared cache now holds something else for it). */
void ctfl_objcache_remove(ctfl_objcache *c, const char *key);

void ctfl_objcache_get_stats(ctfl_objcache *c, ctfl_objcache_stats *st);

#endif
