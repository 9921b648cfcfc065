/* Circuit breaker: opening, cool-down, the single half-open probe, windows, threads. */
#include "unit.h"
#include <apr_atomic.h>
#include <apr_thread_proc.h>
#include "ctfl_breaker.h"

#define SEC(n) apr_time_from_sec(n)

static int allow(ctfl_breaker *b, apr_time_t now)
{
    int probe;
    return ctfl_breaker_allow(b, now, &probe);
}

static void fail_n(ctfl_breaker *b, apr_time_t now, int n)
{
    for (int i = 0; i < n; i++) {
        assert_true(allow(b, now));
        ctfl_breaker_report(b, now, 0);
    }
}

static void test_opens_after_threshold_and_probes_after_cooldown(void **state)
{
    ctfl_breaker *b = ctfl_breaker_create(*state, 3, SEC(30), SEC(10));
    apr_time_t t = SEC(1000);
    int probe;

    fail_n(b, t, 2);
    assert_int_equal(ctfl_breaker_get_state(b, t), CTFL_BREAKER_CLOSED);
    fail_n(b, t, 1);
    assert_int_equal(ctfl_breaker_get_state(b, t), CTFL_BREAKER_OPEN);
    assert_false(allow(b, t + SEC(9)));
    assert_int_equal(ctfl_breaker_opened_count(b), 1);

    /* after the cool-down exactly one caller probes */
    assert_true(ctfl_breaker_allow(b, t + SEC(10), &probe));
    assert_true(probe);
    assert_false(ctfl_breaker_allow(b, t + SEC(10), &probe));
    assert_int_equal(ctfl_breaker_get_state(b, t + SEC(10)), CTFL_BREAKER_HALF_OPEN);

    /* the probe succeeds: closed again, everything flows */
    ctfl_breaker_report(b, t + SEC(11), 1);
    assert_int_equal(ctfl_breaker_get_state(b, t + SEC(11)), CTFL_BREAKER_CLOSED);
    assert_true(ctfl_breaker_allow(b, t + SEC(11), &probe));
    assert_false(probe);
}

static void test_failed_probe_reopens(void **state)
{
    ctfl_breaker *b = ctfl_breaker_create(*state, 2, SEC(30), SEC(5));
    apr_time_t t = SEC(1000);
    int probe;

    fail_n(b, t, 2);
    assert_true(ctfl_breaker_allow(b, t + SEC(5), &probe));
    assert_true(probe);
    ctfl_breaker_report(b, t + SEC(6), 0);
    assert_int_equal(ctfl_breaker_get_state(b, t + SEC(6)), CTFL_BREAKER_OPEN);
    assert_false(allow(b, t + SEC(10)));
    assert_true(allow(b, t + SEC(11)));        /* next probe after a new cool-down */
    assert_int_equal(ctfl_breaker_opened_count(b), 2);
}

static void test_success_resets_the_count(void **state)
{
    ctfl_breaker *b = ctfl_breaker_create(*state, 3, SEC(30), SEC(10));
    apr_time_t t = SEC(1000);
    fail_n(b, t, 2);
    ctfl_breaker_report(b, t, 1);
    fail_n(b, t, 2);
    assert_int_equal(ctfl_breaker_get_state(b, t), CTFL_BREAKER_CLOSED);
}

static void test_failures_outside_the_window_do_not_add_up(void **state)
{
    ctfl_breaker *b = ctfl_breaker_create(*state, 3, SEC(30), SEC(10));
    apr_time_t t = SEC(1000);
    fail_n(b, t, 2);
    fail_n(b, t + SEC(31), 2);                 /* a new run of failures starts here */
    assert_int_equal(ctfl_breaker_get_state(b, t + SEC(31)), CTFL_BREAKER_CLOSED);
    fail_n(b, t + SEC(40), 1);
    assert_int_equal(ctfl_breaker_get_state(b, t + SEC(40)), CTFL_BREAKER_OPEN);
}

static void test_late_report_of_an_earlier_call_keeps_it_open(void **state)
{
    ctfl_breaker *b = ctfl_breaker_create(*state, 1, SEC(30), SEC(10));
    apr_time_t t = SEC(1000);
    assert_true(allow(b, t));                  /* a slow call still in flight */
    fail_n(b, t, 1);                           /* opens */
    ctfl_breaker_report(b, t + SEC(2), 0);     /* the slow one fails later */
    assert_true(allow(b, t + SEC(10)));        /* cool-down not extended */
}

static void test_disabled_breaker_always_allows(void **state)
{
    ctfl_breaker *b = ctfl_breaker_create(*state, 0, SEC(30), SEC(10));
    fail_n(b, SEC(1), 100);
    assert_int_equal(ctfl_breaker_get_state(b, SEC(1)), CTFL_BREAKER_CLOSED);
    assert_string_equal(ctfl_breaker_state_name(CTFL_BREAKER_HALF_OPEN), "half-open");
}

/* Many threads failing at once open it exactly once and agree on one probe. */
typedef struct { ctfl_breaker *b; apr_uint32_t probes; } shared;

static void *APR_THREAD_FUNC hammer(apr_thread_t *th, void *data)
{
    shared *s = data;
    int probe;
    for (int i = 0; i < 2000; i++) {
        if (ctfl_breaker_allow(s->b, SEC(1000), &probe)) ctfl_breaker_report(s->b, SEC(1000), 0);
        if (ctfl_breaker_allow(s->b, SEC(2000), &probe) && probe) apr_atomic_inc32(&s->probes);
    }
    return NULL;   /* not apr_thread_exit: pthread_exit trips ASan's thread teardown */
}

static void test_threads(void **state)
{
    shared s = { ctfl_breaker_create(*state, 5, SEC(30), SEC(10)), 0 };
    apr_thread_t *t[8];
    apr_status_t rv;
    for (int i = 0; i < 8; i++) assert_int_equal(apr_thread_create(&t[i], NULL, hammer, &s, *state), 0);
    for (int i = 0; i < 8; i++) apr_thread_join(&rv, t[i]);
    assert_int_equal(ctfl_breaker_opened_count(s.b), 1);
    assert_int_equal(s.probes, 1);             /* the probe never reported: nobody else got one */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_opens_after_threshold_and_probes_after_cooldown,
                                        unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_failed_probe_reopens, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_success_resets_the_count, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_failures_outside_the_window_do_not_add_up,
                                        unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_late_report_of_an_earlier_call_keeps_it_open,
                                        unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_disabled_breaker_always_allows, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_threads, unit_pool_setup, unit_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
