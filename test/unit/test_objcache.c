/* ctfl_objcache: freshness, replacement, pins outliving eviction, LRU budget,
 * and concurrent use from several threads. */
#include "unit.h"
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include "ctfl_objcache.h"
#include "ctfl_json_value.h"

static int decodes;             /* calls of decode (single-threaded tests only) */

/* The text is JSON; the object must be {"k": <its key>}. */
static const ctfl_value *decode(apr_pool_t *p, const char *text, apr_size_t len, void *ctx)
{
    ctfl_value *v;
    const char *err;
    decodes++;
    if (ctfl_json_parse_value(p, text, len, &v, &err) != 0) return NULL;
    if (ctx && !ctfl_value_str(ctfl_value_get(v, "k"))) return NULL;
    return v;
}

static const ctfl_value *put(ctfl_objcache *c, const char *key, apr_time_t at, apr_pool_t *pin)
{
    const char *json = apr_psprintf(pin, "{\"k\":\"%s\",\"at\":%" APR_TIME_T_FMT "}", key, at);
    return ctfl_objcache_put(c, key, at, json, strlen(json), decode, (void *)1, pin);
}

static const char *key_of(const ctfl_value *v)
{
    return ctfl_value_str(ctfl_value_get(v, "k"));
}

static void test_fresh_replaced_removed(void **state)
{
    apr_pool_t *p = *state, *req;
    ctfl_objcache *c = ctfl_objcache_create(p, 1 << 20, 100);
    apr_time_t at = 0;
    const ctfl_value *v;
    ctfl_objcache_stats st;

    assert_non_null(c);
    apr_pool_create(&req, p);
    assert_null(ctfl_objcache_get(c, "E:a", 0, req, NULL));
    v = put(c, "E:a", 1000, req);
    assert_string_equal(key_of(v), "E:a");
    decodes = 0;
    v = ctfl_objcache_get(c, "E:a", 1000, req, &at);          /* stored at 1000: fresh */
    assert_non_null(v);
    assert_int_equal(at, 1000);
    assert_int_equal(decodes, 0);                               /* no decoding on a hit */
    assert_null(ctfl_objcache_get(c, "E:a", 1001, req, NULL));  /* too old: dropped */
    assert_null(ctfl_objcache_get(c, "E:a", 0, req, NULL));     /* ... for good */
    put(c, "E:a", 2000, req);
    put(c, "E:a", 3000, req);                                   /* replaces */
    assert_non_null(ctfl_objcache_get(c, "E:a", 0, req, &at));
    assert_int_equal(at, 3000);
    ctfl_objcache_remove(c, "E:a");
    assert_null(ctfl_objcache_get(c, "E:a", 0, req, NULL));
    ctfl_objcache_remove(c, "E:nothing");
    /* a text that does not decode is not cached */
    assert_null(ctfl_objcache_put(c, "E:bad", 1, "{", 1, decode, NULL, req));
    assert_null(ctfl_objcache_put(c, "E:nok", 1, "{}", 2, decode, (void *)1, req));
    assert_null(ctfl_objcache_get(c, "E:bad", 0, req, NULL));
    ctfl_objcache_get_stats(c, &st);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.inserts, 3);
    apr_pool_destroy(req);
}

/* Values handed out stay valid while their pool lives, whatever the cache does. */
static void test_pins_outlive_eviction(void **state)
{
    apr_pool_t *p = *state, *req1, *req2;
    ctfl_objcache *c = ctfl_objcache_create(p, 1 << 20, 2);
    const ctfl_value *a, *a2;
    apr_pool_create(&req1, p);
    apr_pool_create(&req2, p);
    a = put(c, "E:a", 1, req1);
    a2 = ctfl_objcache_get(c, "E:a", 0, req2, NULL);
    assert_ptr_equal(a, a2);
    put(c, "E:b", 1, req1);
    put(c, "E:c", 1, req1);                                     /* evicts a (two objects max) */
    assert_null(ctfl_objcache_get(c, "E:a", 0, req1, NULL));
    ctfl_objcache_remove(c, "E:b");
    put(c, "E:c", 2, req1);                                     /* replaces c */
    apr_pool_destroy(req1);
    assert_string_equal(key_of(a2), "E:a");                     /* still pinned by req2 */
    apr_pool_destroy(req2);                                     /* now freed (ASan/valgrind) */
}

static void test_lru_budget(void **state)
{
    apr_pool_t *p = *state, *req;
    /* room for 3 small objects by count, and by bytes for about 3 */
    ctfl_objcache *c = ctfl_objcache_create(p, 3 * 8192 + 3 * 4 * 64, 100);
    ctfl_objcache_stats st;
    apr_pool_create(&req, p);
    put(c, "E:1", 1, req);
    put(c, "E:2", 1, req);
    put(c, "E:3", 1, req);
    assert_non_null(ctfl_objcache_get(c, "E:1", 0, req, NULL));  /* 1 is now the most recent */
    put(c, "E:4", 1, req);                                        /* evicts 2, the least recent */
    assert_null(ctfl_objcache_get(c, "E:2", 0, req, NULL));
    assert_non_null(ctfl_objcache_get(c, "E:1", 0, req, NULL));
    assert_non_null(ctfl_objcache_get(c, "E:3", 0, req, NULL));
    assert_non_null(ctfl_objcache_get(c, "E:4", 0, req, NULL));
    ctfl_objcache_get_stats(c, &st);
    assert_int_equal(st.objects, 3);
    assert_true(st.bytes <= 3 * 8192 + 3 * 4 * 64);
    assert_int_equal(st.evictions, 1);
    /* an object larger than the whole budget is handed out, not kept */
    {
        char *big = apr_pcalloc(req, 100001);
        const ctfl_value *v;
        memset(big, ' ', 100000);
        memcpy(big, "{\"k\":\"E:big\"}", 13);
        v = ctfl_objcache_put(c, "E:big", 1, big, 100000, decode, (void *)1, req);
        assert_string_equal(key_of(v), "E:big");
        assert_null(ctfl_objcache_get(c, "E:big", 0, req, NULL));
    }
    apr_pool_destroy(req);
}

/* ---- threads ------------------------------------------------------------- */

typedef struct {
    ctfl_objcache *c;
    unsigned seed;
    unsigned ok, hits;
} worker;

static void *APR_THREAD_FUNC work(apr_thread_t *t, void *data)
{
    worker *w = data;
    apr_pool_t *req;
    apr_pool_create_unmanaged_ex(&req, NULL, NULL);
    for (int i = 0; i < 3000; i++) {
        char key[16];
        const ctfl_value *v;
        w->seed = w->seed * 1103515245u + 12345u;
        apr_snprintf(key, sizeof(key), "E:%u", (w->seed >> 8) % 64);
        switch ((w->seed >> 20) % 8) {
        case 0:
            ctfl_objcache_remove(w->c, key);
            w->ok++;
            break;
        case 1: case 2:
            v = put(w->c, key, (apr_time_t)(w->seed >> 24), req);
            w->ok += v && !strcmp(key_of(v), key);
            break;
        default:
            v = ctfl_objcache_get(w->c, key, (apr_time_t)((w->seed >> 26) % 8), req, NULL);
            w->ok += !v || !strcmp(key_of(v), key);
            w->hits += v != NULL;
        }
        if (i % 50 == 49) apr_pool_clear(req);                /* a request ends: unpins */
    }
    apr_pool_destroy(req);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads(void **state)
{
    apr_pool_t *p = *state;
    ctfl_objcache *c = ctfl_objcache_create(p, 40 * 8192, 32);   /* small: constant eviction */
    enum { N = 4 };
    apr_thread_t *th[N];
    worker w[N];
    unsigned hits = 0;
    for (int i = 0; i < N; i++) {
        w[i].c = c;
        w[i].seed = 7u + (unsigned)i;
        w[i].ok = w[i].hits = 0;
        assert_int_equal(apr_thread_create(&th[i], NULL, work, &w[i], p), APR_SUCCESS);
    }
    for (int i = 0; i < N; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        assert_int_equal(w[i].ok, 3000);
        hits += w[i].hits;
    }
    print_message("objcache threads: %u hits\n", hits);
    assert_true(hits > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_replaced_removed, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_pins_outlive_eviction, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_lru_budget, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_threads, unit_pool_setup, unit_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
