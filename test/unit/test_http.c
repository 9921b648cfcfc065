/* Unit tests for ctfl_http against the in-process scripted server on 127.0.0.1. */
#include "unit.h"
#include "http_fixture.h"
#include "ctfl_http.h"

#include <sys/wait.h>

#define BUDGET_MS 10000L        /* generous: only the hang tests are meant to hit a budget */

static const ss_step OK_STEP = { .kind = SS_RESPOND, .status = 200, .body = "{\"ok\":true}" };

typedef http_fixture fixture;



static void start(fixture *f, const ss_step *steps, int n, int max_idle)
{
    http_fixture_start(f, steps, n, max_idle);
}

static ctfl_http_request request_to(fixture *f, const char *path)
{
    ctfl_http_request r = { 0 };
    r.url = apr_psprintf(f->p, "http://127.0.0.1:%d%s", f->srv->port, path);
    r.timeout_ms = BUDGET_MS;
    r.max_response = 64 * 1024;
    r.allow_insecure = 1;
    return r;
}

static ctfl_http_response perform(fixture *f, const ctfl_http_request *r)
{
    ctfl_http_response res;
    ctfl_http_perform(f->hp, f->p, r, &res);
    return res;
}

static void test_get_ok(void **state)
{
    fixture *f = *state;
    ctfl_http_request r;
    ctfl_http_response res;
    ss_request *seen;
    char v[256];

    start(f, &OK_STEP, 1, 4);
    r = request_to(f, "/health?x=1");
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_OK);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"ok\":true}");
    assert_int_equal(res.body_len, 11);
    assert_null(res.error);
    assert_null(res.traceparent);
    assert_int_equal(res.new_connections, 1);
    assert_true(res.elapsed >= 0);

    seen = ss_request_copy(f->srv, 0);
    assert_non_null(seen);
    assert_string_equal(seen->method, "GET");
    assert_string_equal(seen->target, "/health?x=1");
    assert_null(ss_header(seen, "Content-Type", v, sizeof(v)));
    assert_non_null(ss_header(seen, "User-Agent", v, sizeof(v)));
    assert_int_equal(strncmp(v, "mod_ctflopt/", 12), 0);
    free(seen);
}

static void test_post_body_and_headers(void **state)
{
    fixture *f = *state;
    apr_size_t n = 1536 * 1024; /* above curl's "Expect: 100-continue" threshold (1 MiB) */
    char *body = apr_palloc(f->p, n + 1);
    apr_array_header_t *hdrs = apr_array_make(f->p, 2, sizeof(const char *));
    ctfl_http_request r;
    ctfl_http_response res;
    ss_request *seen;
    char v[256];

    memset(body, 'b', n);
    body[n] = '\0';
    APR_ARRAY_PUSH(hdrs, const char *) = "X-Extra: yes";
    APR_ARRAY_PUSH(hdrs, const char *) = "Accept: application/json";
    start(f, &OK_STEP, 1, 4);
    r = request_to(f, "/p");
    r.content_type = "text/plain";
    r.body = body;
    r.body_len = n;
    r.headers = hdrs;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_OK);

    seen = ss_request_copy(f->srv, 0);
    assert_string_equal(seen->method, "POST");
    assert_string_equal(seen->target, "/p");
    assert_string_equal(ss_header(seen, "Content-Type", v, sizeof(v)), "text/plain");
    assert_string_equal(ss_header(seen, "X-Extra", v, sizeof(v)), "yes");
    assert_string_equal(ss_header(seen, "Accept", v, sizeof(v)), "application/json");
    assert_string_equal(ss_header(seen, "Content-Length", v, sizeof(v)), "1572864");
    assert_null(ss_header(seen, "Expect", v, sizeof(v)));
    assert_int_equal(seen->body_len, n);
    assert_memory_equal(seen->body, body, SS_BUF);
    free(seen);
}

static void test_non_2xx_is_a_complete_response(void **state)
{
    fixture *f = *state;
    const ss_step step = { .kind = SS_RESPOND, .status = 503, .body = "{\"message\":\"busy\"}" };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &step, 1, 4);
    r = request_to(f, "/");
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_OK);
    assert_int_equal(res.status, 503);
    assert_string_equal(res.body, "{\"message\":\"busy\"}");
}

static void test_traceparent_captured(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 500, .body = "{}",
          .headers = "TraceParent:   00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01  \r\n" },
        OK_STEP,
        { .kind = SS_RESPOND, .status = 200, .body = "{}",
          .prefix = "HTTP/1.1 103 Early Hints\r\ntraceparent: 00-early-hint-01\r\n\r\n" },
        { .kind = SS_RESPOND, .status = 500, .body = "{}", .headers = "traceparent: 00-\x1b[31m-01\r\n" },
    };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, steps, 4, 4);
    r = request_to(f, "/");
    res = perform(f, &r);
    assert_string_equal(res.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    res = perform(f, &r);       /* not carried over to the next response */
    assert_null(res.traceparent);
    res = perform(f, &r);       /* only the final response's header counts */
    assert_int_equal(res.status, 200);
    assert_null(res.traceparent);
    res = perform(f, &r);       /* control bytes: not kept (it ends up in the error log) */
    assert_int_equal(res.status, 500);
    assert_null(res.traceparent);
}

static void test_keepalive_reuse(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = { OK_STEP, OK_STEP, OK_STEP };
    ctfl_http_request r;
    ctfl_http_response a, b, c;
    ss_request *last;

    start(f, steps, 3, 4);
    r = request_to(f, "/");
    a = perform(f, &r);
    b = perform(f, &r);
    c = perform(f, &r);
    assert_int_equal(a.outcome, CTFL_HTTP_OK);
    assert_int_equal(b.outcome, CTFL_HTTP_OK);
    assert_int_equal(c.outcome, CTFL_HTTP_OK);
    assert_int_equal(a.new_connections, 1);
    assert_int_equal(b.new_connections, 0);
    assert_int_equal(c.new_connections, 0);
    assert_int_equal(ss_accepted(f->srv), 1);
    last = ss_request_copy(f->srv, 2);
    assert_int_equal(last->conn, 1);
    free(last);
}

static void test_no_reuse_without_idle_slots(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = { OK_STEP, OK_STEP };
    ctfl_http_request r;
    ctfl_http_response a, b;

    start(f, steps, 2, 0);
    r = request_to(f, "/");
    a = perform(f, &r);
    b = perform(f, &r);
    assert_int_equal(a.new_connections, 1);
    assert_int_equal(b.new_connections, 1);
    assert_int_equal(ss_accepted(f->srv), 2);
}

static void test_hang_times_out(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = { { .kind = SS_HANG }, OK_STEP };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, steps, 2, 4);
    r = request_to(f, "/");
    r.timeout_ms = 300;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_TIMEOUT);
    assert_non_null(res.error);
    assert_int_equal(res.status, 0);
    assert_string_equal(res.body, "");
    assert_int_equal(ss_request_count(f->srv), 1);

    /* the timed-out handle was discarded: the next call opens a fresh connection */
    r.timeout_ms = BUDGET_MS;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_OK);
    assert_int_equal(res.new_connections, 1);
    assert_int_equal(ss_accepted(f->srv), 2);
}

static void test_slow_headers_time_out(void **state)
{
    fixture *f = *state;
    const ss_step step = { .kind = SS_RESPOND, .status = 200, .body = "{}", .delay_ms = 1500 };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &step, 1, 4);
    r = request_to(f, "/");
    r.timeout_ms = 200;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_TIMEOUT);
}

static void test_connect_refused(void **state)
{
    fixture *f = *state;
    ctfl_http_request r;
    ctfl_http_response res;
    int port = ss_dead_port();

    start(f, &OK_STEP, 1, 4);
    assert_true(port > 0);
    r = request_to(f, "/");
    r.url = apr_psprintf(f->p, "http://127.0.0.1:%d/", port);
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_CONNECT);
    assert_non_null(res.error);
    assert_int_equal(res.status, 0);
}

static void test_oversize_content_length_rejected_early(void **state)
{
    fixture *f = *state;
    const ss_step step = { .kind = SS_RESPOND, .status = 200, .body = "{\"x\":1}", .content_length = "10485760" };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &step, 1, 4);
    r = request_to(f, "/");
    r.max_response = 1024;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_TOO_LARGE);
    assert_string_equal(res.body, "");
    assert_int_equal(res.body_len, 0);
    assert_non_null(strstr(res.error, "1024"));
}

static void test_oversize_chunked_aborted(void **state)
{
    fixture *f = *state;
    const ss_step step = { .kind = SS_RESPOND, .status = 200, .chunked_total = 256 * 1024 };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &step, 1, 4);
    r = request_to(f, "/");
    r.max_response = 16 * 1024;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_TOO_LARGE);
    assert_int_equal(res.body_len, 0);
}

static void test_body_cap_boundary(void **state)
{
    fixture *f = *state;
    char *exact = apr_palloc(f->p, 1025), *over = apr_palloc(f->p, 1026);
    ss_step steps[4];
    ctfl_http_request r;
    ctfl_http_response res;

    memset(exact, 'e', 1024);
    exact[1024] = '\0';
    memset(over, 'o', 1025);
    over[1025] = '\0';
    steps[0] = (ss_step){ .kind = SS_RESPOND, .status = 200, .body = exact };
    steps[1] = (ss_step){ .kind = SS_RESPOND, .status = 200, .body = over };
    steps[2] = (ss_step){ .kind = SS_RESPOND, .status = 200, .chunked_total = 1024 };
    steps[3] = (ss_step){ .kind = SS_RESPOND, .status = 200, .chunked_total = 1025 };
    start(f, steps, 4, 4);
    r = request_to(f, "/");
    r.max_response = 1024;

    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_OK);
    assert_int_equal(res.body_len, 1024);
    assert_int_equal(strlen(res.body), 1024);
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_TOO_LARGE);
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_OK);
    assert_int_equal(res.body_len, 1024);
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_TOO_LARGE);
}

static void test_large_body_assembled(void **state)
{
    fixture *f = *state;
    const ss_step step = { .kind = SS_RESPOND, .status = 200, .chunked_total = 300 * 1024 };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &step, 1, 4);
    r = request_to(f, "/");
    r.max_response = 1024 * 1024;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_OK);
    assert_int_equal(res.body_len, 300 * 1024);
    assert_int_equal(strspn(res.body, "x"), 300 * 1024);
    assert_int_equal(res.body[res.body_len], '\0');
}

static void test_connection_reset(void **state)
{
    fixture *f = *state;
    const ss_step step = { .kind = SS_RESET };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &step, 1, 4);
    r = request_to(f, "/");
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_ERROR);
    assert_non_null(res.error);
}

static void test_garbage_is_not_http(void **state)
{
    fixture *f = *state;
    const ss_step step = { .kind = SS_RAW_CLOSE, .body = "garbage\r\n\r\nmore garbage" };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &step, 1, 4);
    r = request_to(f, "/");
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_ERROR);
    assert_non_null(res.error);
}

static void test_plain_http_refused_unless_allowed(void **state)
{
    fixture *f = *state;
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &OK_STEP, 1, 4);
    r = request_to(f, "/");
    r.allow_insecure = 0;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_ERROR);
    assert_string_equal(res.error, "plain http refused (https only)");
    assert_int_equal(ss_accepted(f->srv), 0);
    /* other schemes are refused even when http is allowed */
    r.allow_insecure = 1;
    r.url = "file:///etc/passwd";
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_ERROR);
    assert_string_equal(res.body, "");
}

static void test_environment_proxy_ignored(void **state)
{
    fixture *f = *state;
    char *proxy;
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &OK_STEP, 1, 4);
    proxy = apr_psprintf(f->p, "http://127.0.0.1:%d", ss_dead_port());
    setenv("http_proxy", proxy, 1);
    setenv("HTTPS_PROXY", proxy, 1);
    setenv("ALL_PROXY", proxy, 1);
    setenv("NO_PROXY", "", 1);
    r = request_to(f, "/");
    res = perform(f, &r);
    unsetenv("http_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("NO_PROXY");
    assert_int_equal(res.outcome, CTFL_HTTP_OK);
    assert_int_equal(ss_request_count(f->srv), 1);
}

static void test_invalid_headers_rejected(void **state)
{
    fixture *f = *state;
    apr_array_header_t *hdrs = apr_array_make(f->p, 1, sizeof(const char *));
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &OK_STEP, 1, 4);
    r = request_to(f, "/");
    r.headers = hdrs;
    APR_ARRAY_PUSH(hdrs, const char *) = "X-Force-IP: 1.2.3.4\r\nX-Injected: 1";
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_ERROR);
    apr_array_clear(hdrs);
    APR_ARRAY_PUSH(hdrs, const char *) = "no colon";
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_ERROR);
    apr_array_clear(hdrs);
    r.content_type = "text/plain\r\nX-Injected: 1";
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_ERROR);
    assert_int_equal(ss_accepted(f->srv), 0);
}

static void test_no_budget_no_request(void **state)
{
    fixture *f = *state;
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, &OK_STEP, 1, 4);
    r = request_to(f, "/");
    r.timeout_ms = 0;           /* curl would read 0 as "no timeout" */
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_TIMEOUT);
    r.timeout_ms = -5;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_TIMEOUT);
    r.timeout_ms = BUDGET_MS;
    r.url = NULL;
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_ERROR);
    assert_int_equal(ss_accepted(f->srv), 0);
}

/* In a forked child, one request: 0 when it used a new connection of its own. */
static int child_request(fixture *f, int call_child_init)
{
    ctfl_http_request r = request_to(f, "/");
    ctfl_http_response res;
    if (call_child_init) ctfl_http_pool_child_init(f->hp);
    ctfl_http_perform(f->hp, f->p, &r, &res);
    return res.outcome == CTFL_HTTP_OK && res.new_connections == 1 ? 0 : 1;
}

static void test_child_never_uses_inherited_connections(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = { OK_STEP, OK_STEP, OK_STEP, OK_STEP, OK_STEP };
    ctfl_http_request r;
    ctfl_http_response res;

    start(f, steps, 5, 4);
    r = request_to(f, "/");
    res = perform(f, &r);               /* the parent now holds a warm handle */
    assert_int_equal(res.new_connections, 1);

    for (int with_child_init = 1; with_child_init >= 0; with_child_init--) {
        int status = -1;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) _exit(child_request(f, with_child_init));   /* no cmocka in the child */
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* the parent's own connection is still there and reused */
    res = perform(f, &r);
    assert_int_equal(res.outcome, CTFL_HTTP_OK);
    assert_int_equal(res.new_connections, 0);
    assert_int_equal(ss_accepted(f->srv), 3);
    assert_int_equal(ss_request_count(f->srv), 4);
}

typedef struct {
    ctfl_http_pool *hp;
    ctfl_http_request req;      /* built before the thread starts: f->p is not thread-safe */
    apr_pool_t *p;              /* the thread's own request pool */
    int ok;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 5; i++) {
        ctfl_http_response res;
        ctfl_http_perform(w->hp, w->p, &w->req, &res);
        if (res.outcome == CTFL_HTTP_OK && res.status == 200) w->ok++;
    }
    return NULL;
}

static void test_threads_share_the_pool(void **state)
{
    fixture *f = *state;
    ss_step steps[20];
    pthread_t tid[4];
    worker w[4];
    int ok = 0;

    for (int i = 0; i < 20; i++) steps[i] = OK_STEP;
    start(f, steps, 20, 4);
    for (int i = 0; i < 4; i++) {
        w[i].hp = f->hp;
        w[i].req = request_to(f, "/");
        w[i].ok = 0;
        assert_int_equal(apr_pool_create(&w[i].p, NULL), APR_SUCCESS);
    }
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(tid[i], NULL);
        ok += w[i].ok;
        apr_pool_destroy(w[i].p);
    }
    assert_int_equal(ok, 20);
    /* at most one handle per thread ever exists, each keeps its connection */
    assert_true(ss_accepted(f->srv) <= 4);
}

static void test_version(void **state)
{
    assert_int_equal(strncmp(ctfl_http_version(), "libcurl/", 8), 0);
}

static int group_setup(void **state)
{
    return ctfl_http_global_init();
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, http_fixture_setup, http_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_get_ok),
        T(test_post_body_and_headers),
        T(test_non_2xx_is_a_complete_response),
        T(test_traceparent_captured),
        T(test_keepalive_reuse),
        T(test_no_reuse_without_idle_slots),
        T(test_hang_times_out),
        T(test_slow_headers_time_out),
        T(test_connect_refused),
        T(test_oversize_content_length_rejected_early),
        T(test_oversize_chunked_aborted),
        T(test_body_cap_boundary),
        T(test_large_body_assembled),
        T(test_connection_reset),
        T(test_garbage_is_not_http),
        T(test_plain_http_refused_unless_allowed),
        T(test_environment_proxy_ignored),
        T(test_invalid_headers_rejected),
        T(test_no_budget_no_request),
        T(test_child_never_uses_inherited_connections),
        T(test_threads_share_the_pool),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
