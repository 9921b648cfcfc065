/* ctfl_objcache — per-process cache of decoded objects; see ctfl_objcache.h. */
#include "ctfl_objcache.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <string.h>

/* What an object costs the budget: its pool's first block plus the decoded
 * tree, which takes a few times the text. */
#define POOL_OVERHEAD 8192
#define DECODED_PER_TEXT_BYTE 4

typedef struct node node;
struct node {
    node *prev, *next;          /* LRU list, most recent first (while cached) */
    apr_pool_t *pool;           /* the key, the value: freed when dropped and unpinned */
    const char *key;
    const ctfl_value *value;
    apr_time_t stored_at;
    apr_size_t cost;
    unsigned pins;
    int cached;                 /* 0: dropped from the cache, waiting for its pins */
    ctfl_objcache *cache;
};

struct ctfl_objcache {
    apr_thread_mutex_t *lock;
    apr_hash_t *index;          /* key -> node (cached ones) */
    node *head, *tail;
    apr_size_t bytes, max_bytes;
    unsigned objects, max_objects;
    ctfl_objcache_stats st;
};

static void unlink_node(ctfl_objcache *c, node *n)
{
    if (n->prev) n->prev->next = n->next; else c->head = n->next;
    if (n->next) n->next->prev = n->prev; else c->tail = n->prev;
    n->prev = n->next = NULL;
}

static void push_front(ctfl_objcache *c, node *n)
{
    n->prev = NULL;
    n->next = c->head;
    if (c->head) c->head->prev = n; else c->tail = n;
    c->head = n;
}

/* Out of the cache (lock held); freed now unless a caller still pins it. */
static void drop(ctfl_objcache *c, node *n)
{
    apr_hash_set(c->index, n->key, APR_HASH_KEY_STRING, NULL);
    unlink_node(c, n);
    n->cached = 0;
    c->bytes -= n->cost;
    c->objects--;
    if (!n->pins) apr_pool_destroy(n->pool);
}

static apr_status_t unpin(void *data)
{
    node *n = data;
    ctfl_objcache *c = n->cache;
    apr_thread_mutex_lock(c->lock);
    if (--n->pins == 0 && !n->cached) apr_pool_destroy(n->pool);
    apr_thread_mutex_unlock(c->lock);
    return APR_SUCCESS;
}

/* Lock held. */
static const ctfl_value *pin_to(node *n, apr_pool_t *pin)
{
    n->pins++;
    apr_pool_cleanup_register(pin, n, unpin, apr_pool_cleanup_null);
    return n->value;
}

static apr_status_t destroy_all(void *data)
{
    ctfl_objcache *c = data;
    /* The process is going away: nothing pins any more. */
    while (c->head) {
        node *n = c->head;
        unlink_node(c, n);
        apr_pool_destroy(n->pool);
    }
    return APR_SUCCESS;
}

ctfl_objcache *ctfl_objcache_create(apr_pool_t *p, apr_size_t max_bytes, unsigned max_objects)
{
    ctfl_objcache *c = apr_pcalloc(p, sizeof(*c));
    if (apr_thread_mutex_create(&c->lock, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) return NULL;
    c->index = apr_hash_make(p);
    c->max_bytes = max_bytes;
    c->max_objects = max_objects ? max_objects : 1;
    apr_pool_cleanup_register(p, c, destroy_all, apr_pool_cleanup_null);
    return c;
}

const ctfl_value *ctfl_objcache_get(ctfl_objcache *c, const char *key, apr_time_t fresh_from,
                                    apr_pool_t *pin, apr_time_t *stored_at)
{
    const ctfl_value *v = NULL;
    node *n;
    apr_thread_mutex_lock(c->lock);
    n = apr_hash_get(c->index, key, APR_HASH_KEY_STRING);
    if (n && n->stored_at < fresh_from) {
        drop(c, n);                      /* expired: the shared cache decides now */
        n = NULL;
    }
    if (n) {
        unlink_node(c, n);
        push_front(c, n);
        v = pin_to(n, pin);
        if (stored_at) *stored_at = n->stored_at;
        c->st.hits++;
    } else {
        c->st.misses++;
    }
    apr_thread_mutex_unlock(c->lock);
    return v;
}

const ctfl_value *ctfl_objcache_put(ctfl_objcache *c, const char *key, apr_time_t stored_at,
                                    const char *text, apr_size_t len,
                                    ctfl_objcache_decode_fn decode, void *ctx, apr_pool_t *pin)
{
    apr_pool_t *np;
    node *n, *old;
    const ctfl_value *v;

    /* A pool with an allocator of its own: created, filled and freed by any
     * thread without touching anybody else's allocator. */
    if (apr_pool_create_unmanaged_ex(&np, NULL, NULL) != APR_SUCCESS) return NULL;
    if (!(v = decode(np, text, len, ctx))) {
        apr_pool_destroy(np);
        return NULL;
    }
    n = apr_pcalloc(np, sizeof(*n));
    n->pool = np;
    n->key = apr_pstrdup(np, key);
    n->value = v;
    n->stored_at = stored_at;
    n->cost = POOL_OVERHEAD + DECODED_PER_TEXT_BYTE * len;
    n->cache = c;

    apr_thread_mutex_lock(c->lock);
    if ((old = apr_hash_get(c->index, key, APR_HASH_KEY_STRING)) != NULL) drop(c, old);
    n->cached = 1;
    apr_hash_set(c->index, n->key, APR_HASH_KEY_STRING, n);
    push_front(c, n);
    c->bytes += n->cost;
    c->objects++;
    c->st.inserts++;
    v = pin_to(n, pin);                  /* pinned before any eviction can free it */
    while ((c->bytes > c->max_bytes || c->objects > c->max_objects) && c->tail) {
        drop(c, c->tail);
        c->st.evictions++;
    }
    apr_thread_mutex_unlock(c->lock);
    return v;
}

void ctfl_objcache_remove(ctfl_objcache *c, const char *key)
{
    node *n;
    apr_thread_mutex_lock(c->lock);
    if ((n = apr_hash_get(c->index, key, APR_HASH_KEY_STRING)) != NULL) drop(c, n);
    apr_thread_mutex_unlock(c->lock);
}

void ctfl_objcache_get_stats(ctfl_objcache *c, ctfl_objcache_stats *st)
{
    apr_thread_mutex_lock(c->lock);
    *st = c->st;
    st->objects = c->objects;
    st->bytes = c->bytes;
    apr_thread_mutex_unlock(c->lock);
}
