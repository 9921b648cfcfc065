/* Unit tests for ctfl_cookie: Cookie header parsing, id validation, Set-Cookie values. */
#include "unit.h"
#include "ctfl_cookie.h"

#include <apr_tables.h>

#define GET(h, n) ctfl_cookie_get(p, (h), (n))

static void test_get_basic(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(GET("a=1; b=2; c=3", "a"), "1");
    assert_string_equal(GET("a=1; b=2; c=3", "b"), "2");
    assert_string_equal(GET("a=1; b=2; c=3", "c"), "3");
    assert_null(GET("a=1; b=2; c=3", "d"));
    assert_null(GET(NULL, "a"));
    assert_null(GET("a=1", NULL));
    assert_null(GET("a=1", ""));
    assert_null(GET("", "a"));
}

static void test_get_first_wins(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(GET("ctfl-opt-aid=one; x=y; ctfl-opt-aid=two", "ctfl-opt-aid"), "one");
}

static void test_get_whitespace_and_separators(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(GET("a=1;b=2", "b"), "2");
    assert_string_equal(GET("  a = 1 ;\tb\t=\t2\t", "a"), "1");
    assert_string_equal(GET("  a = 1 ;\tb\t=\t2\t", "b"), "2");
    assert_string_equal(GET(";;; a=1 ;;", "a"), "1");
    assert_string_equal(GET("a=x y", "a"), "x y");          /* inner space kept */
}

static void test_get_names_are_exact(void **state)
{
    apr_pool_t *p = *state;
    assert_null(GET("xa=1; ab=2; A=3", "a"));               /* no prefix/suffix/case match */
    assert_string_equal(GET("xa=1; a=2", "a"), "2");
    assert_string_equal(GET("ntaid=old; ctfl-opt-aid=new", "ntaid"), "old");
}

static void test_get_no_equals_and_empty(void **state)
{
    apr_pool_t *p = *state;
    assert_null(GET("a; b=2", "a"));                         /* nameless pair, never "a" */
    assert_string_equal(GET("a; b=2", "b"), "2");
    assert_string_equal(GET("a=; b=2", "a"), "");
    assert_string_equal(GET("b=2; a=", "a"), "");
    assert_string_equal(GET("a==x=; b", "a"), "=x=");         /* first '=' splits */
    assert_null(GET("=1; =2", "a"));
}

static void test_get_quoted_raw(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(GET("a=\"quoted\"; b=2", "a"), "\"quoted\"");
    assert_string_equal(GET("a=\"x, b=y\"; b=2", "a"), "\"x, b=y\"");
    assert_string_equal(GET("a=\"x, b=y\"; b=2", "b"), "2");
    assert_string_equal(GET("a=\"unterminated; b=2", "b"), "2");
    assert_string_equal(GET("a=%41%20b", "a"), "%41%20b");    /* no percent-decoding */
}

static void test_get_merged_headers(void **state)
{
    apr_pool_t *p = *state;
    /* Apache joins repeated Cookie headers with ", " */
    const char *h = "a=1; b=2, ctfl-opt-aid=abc; app-personalization-consent=granted";
    assert_string_equal(GET(h, "b"), "2");
    assert_string_equal(GET(h, "ctfl-opt-aid"), "abc");
    assert_string_equal(GET(h, "app-personalization-consent"), "granted");
    assert_string_equal(GET("a=1, a=2", "a"), "1");
    /* Not a join: the comma is part of the value. */
    assert_string_equal(GET("a=1, 2; b=3", "a"), "1, 2");
    assert_string_equal(GET("a=1,b=2", "a"), "1,b=2");
    assert_null(GET("a=1,b=2", "b"));
}

static void test_get_long_header(void **state)
{
    apr_pool_t *p = *state;
    /* 2000 junk pairs, commas and spaces, then the wanted cookie: found, linear scan. */
    apr_array_header_t *parts = apr_array_make(p, 2001, sizeof(const char *));
    int i;
    for (i = 0; i < 2000; i++) APR_ARRAY_PUSH(parts, const char *) = apr_psprintf(p, "k%d=v , ,; ", i);
    APR_ARRAY_PUSH(parts, const char *) = "want=yes";
    char *h = apr_array_pstrcat(p, parts, 0);
    assert_string_equal(GET(h, "want"), "yes");
    assert_string_equal(GET(h, "k1999"), "v , ,");
}

static void test_profile_id_valid(void **state)
{
    (void)state;
    char max[130];
    assert_true(ctfl_profile_id_valid("a"));
    assert_true(ctfl_profile_id_valid("AbC-123_xyz"));
    assert_true(ctfl_profile_id_valid("0b7c4c1e-5d0e-4c53-9a51-3f7e2b7f9d10"));
    assert_false(ctfl_profile_id_valid(""));
    assert_false(ctfl_profile_id_valid(NULL));
    assert_false(ctfl_profile_id_valid("a b"));
    assert_false(ctfl_profile_id_valid("a.b"));
    assert_false(ctfl_profile_id_valid("a/b"));
    assert_false(ctfl_profile_id_valid("\"abc\""));
    assert_false(ctfl_profile_id_valid("abc%20"));
    assert_false(ctfl_profile_id_valid("ab\xc3\xa9"));
    assert_false(ctfl_profile_id_valid("ab\n"));
    memset(max, 'x', 128);
    max[128] = '\0';
    assert_true(ctfl_profile_id_valid(max));
    max[128] = 'x';
    max[129] = '\0';
    assert_false(ctfl_profile_id_valid(max));
}

static void test_set_value(void **state)
{
    apr_pool_t *p = *state;
    ctfl_cookie_attrs a = { NULL, 31536000, "Lax", 0 };
    assert_string_equal(ctfl_cookie_set_value(p, "ctfl-opt-aid", "abc", &a),
                        "ctfl-opt-aid=abc; Path=/; Max-Age=31536000; SameSite=Lax");
    a.secure = 1;
    assert_string_equal(ctfl_cookie_set_value(p, "ctfl-opt-aid", "abc", &a),
                        "ctfl-opt-aid=abc; Path=/; Max-Age=31536000; SameSite=Lax; Secure");
    a.domain = ".example.com";
    a.same_site = "Strict";
    a.max_age = 60;
    assert_string_equal(ctfl_cookie_set_value(p, "n", "v", &a),
                        "n=v; Path=/; Max-Age=60; Domain=.example.com; SameSite=Strict; Secure");
}

static void test_set_value_none_needs_secure(void **state)
{
    apr_pool_t *p = *state;
    ctfl_cookie_attrs a = { NULL, 10, "None", 0 };
    assert_string_equal(ctfl_cookie_set_value(p, "n", "v", &a),
                        "n=v; Path=/; Max-Age=10; SameSite=None; Secure");
    assert_string_equal(ctfl_cookie_delete_value(p, "n", &a),
                        "n=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                        "SameSite=None; Secure");
}

static void test_set_value_never_httponly(void **state)
{
    apr_pool_t *p = *state;
    ctfl_cookie_attrs a = { "example.com", 5, "Lax", 1 };
    char *s = ctfl_cookie_set_value(p, "n", "v", &a), *d = ctfl_cookie_delete_value(p, "n", &a);
    assert_null(strcasestr(s, "httponly"));
    assert_null(strcasestr(d, "httponly"));
}

static void test_set_value_rejects_unsafe(void **state)
{
    apr_pool_t *p = *state;
    ctfl_cookie_attrs a = { NULL, 5, "Lax", 0 };
    assert_null(ctfl_cookie_set_value(p, "n", "a;b", &a));
    assert_null(ctfl_cookie_set_value(p, "n", "a\r\nSet-Cookie: x=y", &a));
    assert_null(ctfl_cookie_set_value(p, "n", "a b", &a));
    assert_null(ctfl_cookie_set_value(p, "n", "\xc3\xa9", &a));
    assert_null(ctfl_cookie_set_value(p, "n=x", "v", &a));
    assert_null(ctfl_cookie_set_value(p, "", "v", &a));
    assert_null(ctfl_cookie_set_value(p, "n", NULL, &a));
    a.domain = "evil.com; Secure";
    assert_null(ctfl_cookie_set_value(p, "n", "v", &a));
    assert_null(ctfl_cookie_delete_value(p, "n", &a));
    a.domain = NULL;
    a.same_site = "Lax\r\nX: y";
    assert_null(ctfl_cookie_set_value(p, "n", "v", &a));
    a.same_site = "Lax";
    assert_string_equal(ctfl_cookie_set_value(p, "n", "", &a), "n=; Path=/; Max-Age=5; SameSite=Lax");
    a.max_age = -7;                                        /* never a negative Max-Age */
    assert_string_equal(ctfl_cookie_set_value(p, "n", "v", &a), "n=v; Path=/; Max-Age=0; SameSite=Lax");
}

static void test_delete_value(void **state)
{
    apr_pool_t *p = *state;
    ctfl_cookie_attrs a = { NULL, 31536000, "Lax", 0 };
    assert_string_equal(ctfl_cookie_delete_value(p, "ctfl-opt-aid", &a),
                        "ctfl-opt-aid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                        "SameSite=Lax");
    a.domain = "example.com";
    a.secure = 1;
    assert_string_equal(ctfl_cookie_delete_value(p, "ntaid", &a),
                        "ntaid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                        "Domain=example.com; SameSite=Lax; Secure");
    a.same_site = NULL;
    assert_string_equal(ctfl_cookie_delete_value(p, "x", &a),
                        "x=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                        "Domain=example.com; Secure");
}

/* What the builder writes, the parser reads back unchanged. */
static void test_round_trip(void **state)
{
    apr_pool_t *p = *state;
    ctfl_cookie_attrs a = { NULL, 100, "Lax", 1 };
    char *sc = ctfl_cookie_set_value(p, "ctfl-opt-aid", "Zx_9-abc", &a);
    char *pair = apr_pstrndup(p, sc, (apr_size_t)(strchr(sc, ';') - sc));
    assert_string_equal(GET(apr_pstrcat(p, "other=1; ", pair, NULL), "ctfl-opt-aid"), "Zx_9-abc");
}

#define T(f) cmocka_unit_test_setup_teardown(f, unit_pool_setup, unit_pool_teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_get_basic), T(test_get_first_wins), T(test_get_whitespace_and_separators),
        T(test_get_names_are_exact), T(test_get_no_equals_and_empty), T(test_get_quoted_raw),
        T(test_get_merged_headers), T(test_get_long_header), T(test_profile_id_valid),
        T(test_set_value), T(test_set_value_none_needs_secure), T(test_set_value_never_httponly),
        T(test_set_value_rejects_unsafe), T(test_delete_value), T(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
