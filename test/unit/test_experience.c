/* Unit tests for ctfl_experience: URL building, request shape, retries within
 * the budget, failure mapping (spec §1), against the scripted 127.0.0.1 server. */
#include "unit.h"
#include "http_fixture.h"
#include "ctfl_experience.h"

#define BUDGET_MS 10000L        /* generous: only the timeout tests are meant to hit a budget */
#define EVENT_BODY "{\"events\":[{\"type\":\"page\"}],\"options\":{\"features\":[\"ip-enrichment\",\"location\"]}}"
#define PROFILE_ID "f0837a67eed5f1c93978f6d53fa948df93897137bcd048366f30ba590420754b"
#define CREATE_TARGET "/experience/v2/organizations/cid/environments/main/profiles?locale=de-CH"
#define UPDATE_TARGET "/experience/v2/organizations/cid/environments/main/profiles/old-id?locale=de-CH"

typedef http_fixture fixture;



static void start(fixture *f, const ss_step *steps, int n)
{
    http_fixture_start(f, steps, n, 4);
}

static ss_step ok_step(fixture *f)
{
    return (ss_step){ .kind = SS_RESPOND, .status = 200, .body = f->new_visitor };
}

static ctfl_eval_request eval_request(fixture *f, const char *profile_id)
{
    ctfl_eval_request r = { 0 };
    r.base_url = apr_psprintf(f->p, "http://127.0.0.1:%d/experience/", f->srv ? f->srv->port : 9);
    r.client_id = "cid";
    r.environment = "main";
    r.locale = "de-CH";
    r.profile_id = profile_id;
    r.force_ip = "203.0.113.7";
    r.body = EVENT_BODY;
    r.timeout_ms = BUDGET_MS;
    r.max_response = 1024 * 1024;
    r.allow_insecure = 1;
    return r;
}

static ctfl_eval_result evaluate(fixture *f, const ctfl_eval_request *r)
{
    ctfl_eval_result res;
    ctfl_experience_evaluate(f->hp, f->p, r, &res);
    return res;
}

static char *target_of(fixture *f, int i)
{
    ss_request *r = ss_request_copy(f->srv, i);
    char *t;
    assert_non_null(r);
    t = apr_pstrdup(f->p, r->target);
    free(r);
    return t;
}

#define ERROR_BODY(code) "{\"message\":\"x\",\"data\":{},\"error\":{\"code\":\"" code "\"}}"

/* ---- URL ----------------------------------------------------------------- */

static void test_url(void **state)
{
    fixture *f = *state;
    ctfl_eval_request r = { 0 };

    r.base_url = "https://experience.ninetailed.co/";
    r.client_id = "cid";
    r.environment = "main";
    assert_string_equal(ctfl_experience_url(f->p, &r),
                        "https://experience.ninetailed.co/v2/organizations/cid/environments/main/profiles");
    r.profile_id = "";
    assert_string_equal(ctfl_experience_url(f->p, &r),
                        "https://experience.ninetailed.co/v2/organizations/cid/environments/main/profiles");
    r.profile_id = "abc-123_x.~";
    r.locale = "de-CH";
    assert_string_equal(ctfl_experience_url(f->p, &r),
                        "https://experience.ninetailed.co/v2/organizations/cid/environments/main/profiles/abc-123_x.~?locale=de-CH");
    r.locale = "";
    r.base_url = "http://127.0.0.1:8000/experience";      /* normalized to end with '/' */
    assert_string_equal(ctfl_experience_url(f->p, &r),
                        "http://127.0.0.1:8000/experience/v2/organizations/cid/environments/main/profiles/abc-123_x.~");

    /* anything outside the unreserved set is percent-encoded; dot-only segments too */
    r.base_url = "https://h/";
    r.client_id = "a b/c";
    r.environment = "..";
    r.profile_id = "x?y#z%\xc3\xa9";
    r.locale = "de CH&x=1/";
    assert_string_equal(ctfl_experience_url(f->p, &r),
                        "https://h/v2/organizations/a%20b%2Fc/environments/%2E%2E/profiles/x%3Fy%23z%25%C3%A9"
                        "?locale=de%20CH%26x%3D1%2F");
    r.environment = ".";
    r.profile_id = "a.b";
    r.locale = NULL;
    assert_string_equal(ctfl_experience_url(f->p, &r), "https://h/v2/organizations/a%20b%2Fc/environments/%2E/profiles/a.b");

    r.client_id = NULL;
    assert_null(ctfl_experience_url(f->p, &r));
    r.client_id = "cid";
    r.environment = "";
    assert_null(ctfl_experience_url(f->p, &r));
    r.environment = "main";
    r.base_url = NULL;
    assert_null(ctfl_experience_url(f->p, &r));
}

/* ---- request shape --------------------------------------------------------- */

static void test_create_request(void **state)
{
    fixture *f = *state;
    ss_step step = ok_step(f);
    ctfl_eval_request r;
    ctfl_eval_result res;
    ss_request *seen;
    char v[256];

    start(f, &step, 1);
    r = eval_request(f, NULL);
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_OK);
    assert_non_null(res.data);
    assert_string_equal(res.data->profile_id, PROFILE_ID);
    assert_int_equal(res.data->selections->nelts, 11);
    assert_null(res.reason);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.attempts, 1);
    assert_int_equal(res.new_connections, 1);

    seen = ss_request_copy(f->srv, 0);
    assert_string_equal(seen->method, "POST");
    assert_string_equal(seen->target, CREATE_TARGET);
    assert_string_equal(ss_header(seen, "Content-Type", v, sizeof(v)), "text/plain");
    assert_string_equal(ss_header(seen, "Accept", v, sizeof(v)), "application/json");
    assert_string_equal(ss_header(seen, "X-Force-IP", v, sizeof(v)), "203.0.113.7");
    assert_int_equal(seen->body_len, strlen(EVENT_BODY));
    assert_memory_equal(seen->body, EVENT_BODY, strlen(EVENT_BODY));
    free(seen);
}

static void test_update_request(void **state)
{
    fixture *f = *state;
    ss_step steps[] = { ok_step(f), ok_step(f) };
    ctfl_eval_request r;
    ctfl_eval_result res;
    ss_request *seen;
    char v[256];

    start(f, steps, 2);
    r = eval_request(f, "old-id");
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_OK);
    assert_string_equal(target_of(f, 0), UPDATE_TARGET);

    /* no locale, no X-Force-IP */
    r.locale = NULL;
    r.force_ip = NULL;
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_OK);
    seen = ss_request_copy(f->srv, 1);
    assert_string_equal(seen->target, "/experience/v2/organizations/cid/environments/main/profiles/old-id");
    assert_null(ss_header(seen, "X-Force-IP", v, sizeof(v)));
    free(seen);
}

static void test_invalid_force_ip_not_sent(void **state)
{
    fixture *f = *state;
    ss_step steps[] = { ok_step(f), ok_step(f) };
    ctfl_eval_request r;
    ctfl_eval_result res;
    ss_request *seen;
    char v[256];

    start(f, steps, 2);
    r = eval_request(f, NULL);
    r.force_ip = "1.2.3.4\r\nX-Evil: 1";
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_OK);
    seen = ss_request_copy(f->srv, 0);
    assert_null(ss_header(seen, "X-Force-IP", v, sizeof(v)));
    assert_null(ss_header(seen, "X-Evil", v, sizeof(v)));
    free(seen);
    r.force_ip = "fe80::1%eth0";
    res = evaluate(f, &r);
    seen = ss_request_copy(f->srv, 1);
    assert_string_equal(ss_header(seen, "X-Force-IP", v, sizeof(v)), "fe80::1%eth0");
    free(seen);
}

/* ---- retries ----------------------------------------------------------------- */

static void test_503_then_200(void **state)
{
    fixture *f = *state;
    ss_step steps[] = { { .kind = SS_RESPOND, .status = 503, .body = "{}" }, ok_step(f) };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 2);
    r = eval_request(f, "old-id");
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_OK);
    assert_int_equal(res.attempts, 2);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.new_connections, 1);      /* the retry reused the connection */
    assert_string_equal(target_of(f, 0), UPDATE_TARGET);
    assert_string_equal(target_of(f, 1), UPDATE_TARGET);
}

static void test_503_twice(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 503, .body = "{}" },
        { .kind = SS_RESPOND, .status = 503, .body = "{}", .headers = "traceparent: 00-second-01\r\n" },
        { .kind = SS_RESPOND, .status = 200, .body = "{}" },
    };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 3);
    r = eval_request(f, NULL);
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_string_equal(res.reason, "http 503");
    assert_int_equal(res.http_status, 503);
    assert_int_equal(res.attempts, 2);
    assert_string_equal(res.traceparent, "00-second-01");
    assert_null(res.data);
    assert_int_equal(ss_request_count(f->srv), 2);
}

static void test_500_not_retried(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 500, .body = ERROR_BODY("ERR_INTERNAL_SERVER_ERROR"),
          .headers = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n" },
        { .kind = SS_RESPOND, .status = 200, .body = "{}" },
    };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 2);
    r = eval_request(f, NULL);
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_string_equal(res.reason, "http 500 ERR_INTERNAL_SERVER_ERROR");
    assert_string_equal(res.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_int_equal(res.attempts, 1);
    assert_int_equal(ss_request_count(f->srv), 1);
}

static void test_hang_times_out_without_retry(void **state)
{
    fixture *f = *state;
    ss_step steps[] = { { .kind = SS_HANG }, ok_step(f) };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 2);
    r = eval_request(f, NULL);
    r.timeout_ms = 300;
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_TIMEOUT);
    assert_string_equal(res.reason, "timeout");
    assert_int_equal(res.attempts, 1);
    assert_null(res.data);
    assert_int_equal(ss_request_count(f->srv), 1);
}

/* A 503 that arrives after more than two thirds of the budget is final. */
static void test_late_503_not_retried(void **state)
{
    fixture *f = *state;
    ss_step steps[] = { { .kind = SS_RESPOND, .status = 503, .body = "{}", .delay_ms = 2200 }, ok_step(f) };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 2);
    r = eval_request(f, NULL);
    r.timeout_ms = 3000;
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_string_equal(res.reason, "http 503");
    assert_int_equal(res.attempts, 1);
    assert_int_equal(ss_request_count(f->srv), 1);
}

static void test_profile_not_found_recreates(void **state)
{
    fixture *f = *state;
    static const char *const codes[] = { "ERR_PROFILE_NOT_FOUND", "ERR_NAMESPACE_MISMATCH" };

    for (int i = 0; i < 2; i++) {
        ss_step steps[] = {
            { .kind = SS_RESPOND, .status = 404, .body = apr_psprintf(f->p, ERROR_BODY("%s"), codes[i]) },
            ok_step(f),
        };
        ctfl_eval_request r;
        ctfl_eval_result res;
        ss_request *second;

        ss_stop(f->srv);
        start(f, steps, 2);
        r = eval_request(f, "old-id");
        res = evaluate(f, &r);
        assert_int_equal(res.status, CTFL_EVAL_OK);
        assert_int_equal(res.attempts, 2);
        assert_string_equal(res.data->profile_id, PROFILE_ID);
        assert_string_equal(target_of(f, 0), UPDATE_TARGET);
        second = ss_request_copy(f->srv, 1);
        assert_string_equal(second->target, CREATE_TARGET);
        assert_memory_equal(second->body, EVENT_BODY, strlen(EVENT_BODY));
        free(second);
    }
}

static void test_404_without_recreate(void **state)
{
    fixture *f = *state;
    ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 404, .body = ERROR_BODY("ERR_CONFIG_NOT_FOUND") },
        { .kind = SS_RESPOND, .status = 404, .body = ERROR_BODY("ERR_PROFILE_NOT_FOUND") },
        { .kind = SS_RESPOND, .status = 404, .body = "<html>not found</html>" },
        ok_step(f),
    };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 4);
    r = eval_request(f, "old-id");
    res = evaluate(f, &r);                      /* another 404 code: final */
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_string_equal(res.reason, "http 404 ERR_CONFIG_NOT_FOUND");
    assert_int_equal(res.attempts, 1);

    r = eval_request(f, NULL);                  /* a create is never turned into a create */
    res = evaluate(f, &r);
    assert_string_equal(res.reason, "http 404 ERR_PROFILE_NOT_FOUND");
    assert_int_equal(res.attempts, 1);

    r = eval_request(f, "old-id");              /* no code at all */
    res = evaluate(f, &r);
    assert_string_equal(res.reason, "http 404");
    assert_int_equal(res.attempts, 1);
    assert_int_equal(ss_request_count(f->srv), 3);
}

static void test_single_follow_up_only(void **state)
{
    fixture *f = *state;
    ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 404, .body = ERROR_BODY("ERR_PROFILE_NOT_FOUND") },
        { .kind = SS_RESPOND, .status = 503, .body = "{}" },
        ok_step(f),
    };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 3);
    r = eval_request(f, "old-id");
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_string_equal(res.reason, "http 503");
    assert_int_equal(res.attempts, 2);
    assert_int_equal(ss_request_count(f->srv), 2);
}

/* ---- failures ------------------------------------------------------------------ */

static void test_bad_bodies(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 200, .body = "garbage", .headers = "traceparent: 00-bad-json-01\r\n" },
        { .kind = SS_RESPOND, .status = 200, .body = "{\"data\":{},\"message\":\"ok\",\"error\":null}" },
        { .kind = SS_RESPOND, .status = 204, .body = "" },
    };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 3);
    r = eval_request(f, NULL);
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_int_equal(strncmp(res.reason, "bad json: ", 10), 0);
    assert_string_equal(res.traceparent, "00-bad-json-01");
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.attempts, 1);
    assert_null(res.data);

    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_string_equal(res.reason, "schema: data.profile missing");

    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_string_equal(res.reason, "bad json: empty body");
}

static void test_oversize(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 200, .body = f->new_visitor },
        { .kind = SS_RESPOND, .status = 200, .chunked_total = 64 * 1024 },
        { .kind = SS_RESPOND, .status = 200, .body = "{}", .content_length = "5242880" },
    };
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, steps, 3);
    r = eval_request(f, NULL);
    r.max_response = 2048;                      /* the fixture is ~3 KB */
    for (int i = 0; i < 3; i++) {
        res = evaluate(f, &r);
        assert_int_equal(res.status, CTFL_EVAL_ERROR);
        assert_string_equal(res.reason, "oversize");
        assert_int_equal(res.attempts, 1);
    }
}

static void test_transport_failures(void **state)
{
    fixture *f = *state;
    const ss_step steps[] = { { .kind = SS_RESET }, { .kind = SS_RAW_CLOSE, .body = "SSH-2.0-nope\r\n" } };
    ctfl_eval_request r;
    ctfl_eval_result res;
    int dead = ss_dead_port();

    start(f, steps, 2);
    r = eval_request(f, NULL);
    for (int i = 0; i < 2; i++) {
        res = evaluate(f, &r);
        assert_int_equal(res.status, CTFL_EVAL_ERROR);
        assert_int_equal(strncmp(res.reason, "transport: ", 11), 0);
        assert_int_equal(res.attempts, 1);
    }
    r.base_url = apr_psprintf(f->p, "http://127.0.0.1:%d/", dead);
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_int_equal(strncmp(res.reason, "connect: ", 9), 0);
    assert_int_equal(res.attempts, 1);
}

static void test_https_required(void **state)
{
    fixture *f = *state;
    ss_step step = ok_step(f);
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, &step, 1);
    r = eval_request(f, NULL);
    r.allow_insecure = 0;
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_string_equal(res.reason, "transport: plain http refused (https only)");
    assert_int_equal(res.attempts, 1);
    assert_int_equal(ss_accepted(f->srv), 0);
}

static void test_keepalive_across_evaluations(void **state)
{
    fixture *f = *state;
    ss_step steps[] = { ok_step(f), ok_step(f) };
    ctfl_eval_request r;
    ctfl_eval_result a, b;

    start(f, steps, 2);
    r = eval_request(f, NULL);
    a = evaluate(f, &r);
    r.profile_id = a.data->profile_id;
    b = evaluate(f, &r);
    assert_int_equal(a.status, CTFL_EVAL_OK);
    assert_int_equal(b.status, CTFL_EVAL_OK);
    assert_int_equal(a.new_connections, 1);
    assert_int_equal(b.new_connections, 0);
    assert_int_equal(ss_accepted(f->srv), 1);
    assert_string_equal(target_of(f, 1), "/experience/v2/organizations/cid/environments/main/profiles/" PROFILE_ID "?locale=de-CH");
}

static void test_invalid_requests(void **state)
{
    fixture *f = *state;
    ss_step step = ok_step(f);
    ctfl_eval_request r;
    ctfl_eval_result res;

    start(f, &step, 1);
    r = eval_request(f, NULL);
    r.client_id = "";
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_int_equal(res.attempts, 0);
    r = eval_request(f, NULL);
    r.body = NULL;
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_ERROR);
    assert_int_equal(res.attempts, 0);
    r = eval_request(f, NULL);
    r.timeout_ms = 0;
    res = evaluate(f, &r);
    assert_int_equal(res.status, CTFL_EVAL_TIMEOUT);
    assert_int_equal(res.attempts, 0);
    assert_int_equal(ss_accepted(f->srv), 0);
}

static int group_setup(void **state)
{
    return ctfl_http_global_init();
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, http_fixture_setup, http_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_url),
        T(test_create_request),
        T(test_update_request),
        T(test_invalid_force_ip_not_sent),
        T(test_503_then_200),
        T(test_503_twice),
        T(test_500_not_retried),
        T(test_hang_times_out_without_retry),
        T(test_late_503_not_retried),
        T(test_profile_not_found_recreates),
        T(test_404_without_recreate),
        T(test_single_follow_up_only),
        T(test_bad_bodies),
        T(test_oversize),
        T(test_transport_failures),
        T(test_https_required),
        T(test_keepalive_across_evaluations),
        T(test_invalid_requests),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
