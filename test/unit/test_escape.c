/* Unit tests for ctfl_escape: JSON in <script>, JS string literals, HTML escaping. */
#include "unit.h"
#include "ctfl_escape.h"

#include <jansson.h>

static int all_ascii_script_safe(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80 || c == '<' || c == '>' || c == '&') return 0;
    }
    return 1;
}

/* The escaped JSON must decode to exactly the same value as the input. */
static void assert_same_json(const char *a, const char *b)
{
    json_error_t e;
    json_t *ja = json_loads(a, JSON_DECODE_ANY, &e), *jb = json_loads(b, JSON_DECODE_ANY, &e);
    assert_non_null(ja);
    assert_non_null(jb);
    assert_true(json_equal(ja, jb));
    json_decref(ja);
    json_decref(jb);
}

static void test_json_for_script_breakouts(void **state)
{
    apr_pool_t *p = *state;
    const char *in = "{\"t\":\"</script><script>alert(1)</script>\",\"c\":\"<!-- -->\",\"a\":\"x&y\"}";
    char *out = ctfl_json_for_script(p, in);

    assert_string_equal(out, "{\"t\":\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"
                             "\\u003c/script\\u003e\",\"c\":\"\\u003c!-- --\\u003e\","
                             "\"a\":\"x\\u0026y\"}");
    assert_true(all_ascii_script_safe(out));
    assert_same_json(in, out);
}

static void test_json_for_script_line_separators(void **state)
{
    apr_pool_t *p = *state;
    const char *in = "[\"a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\"]";
    char *out = ctfl_json_for_script(p, in);
    assert_string_equal(out, "[\"a\\u2028b\\u2029c\"]");
    assert_same_json(in, out);
}

static void test_json_for_script_non_ascii(void **state)
{
    apr_pool_t *p = *state;
    /* é (2 bytes), € (3 bytes), 😀 U+1F600 (4 bytes, a surrogate pair in JSON) */
    const char *in = "{\"k\xc3\xa9y\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}";
    char *out = ctfl_json_for_script(p, in);
    assert_string_equal(out, "{\"k\\u00e9y\":\"\\u20ac \\ud83d\\ude00\"}");
    assert_same_json(in, out);
}

static void test_json_for_script_keeps_structure(void **state)
{
    apr_pool_t *p = *state;
    const char *in = "{\"a\":[1,2.5,true,null,\"q\\\"\\\\\\n\"],\"b\":{}}";
    assert_string_equal(ctfl_json_for_script(p, in), in);
    assert_string_equal(ctfl_json_for_script(p, ""), "");
    assert_null(ctfl_json_for_script(p, NULL));
}

static void test_json_for_script_invalid_utf8(void **state)
{
    apr_pool_t *p = *state;
    /* a lone continuation byte, an overlong '/', a UTF-16 surrogate, a truncated sequence */
    const char *in = "[\"\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82\"]";
    char *out = ctfl_json_for_script(p, in);
    assert_true(all_ascii_script_safe(out));
    assert_non_null(strstr(out, "\\ufffd"));
    assert_null(strstr(out, "\\ud800"));
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    json_decref(j);
}

static void test_js_string_basic(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(ctfl_js_string(p, "abc"), "\"abc\"");
    assert_string_equal(ctfl_js_string(p, ""), "\"\"");
    assert_string_equal(ctfl_js_string(p, "a\"b\\c'd"), "\"a\\\"b\\\\c'd\"");
    assert_string_equal(ctfl_js_string(p, "\n\r\t\x01\x1f\x7f"),
                        "\"\\n\\r\\t\\u0001\\u001f\\u007f\"");
    assert_null(ctfl_js_string(p, NULL));
}

static void test_js_string_script_safe(void **state)
{
    apr_pool_t *p = *state;
    const char *in = "</script><!--&\xe2\x80\xa8\xe2\x80\xa9\xc3\xa9\xf0\x9f\x98\x80";
    char *out = ctfl_js_string(p, in);
    assert_string_equal(out, "\"\\u003c/script\\u003e\\u003c!--\\u0026\\u2028\\u2029"
                             "\\u00e9\\ud83d\\ude00\"");
    assert_true(all_ascii_script_safe(out));

    /* It is a JSON string with the same value. */
    json_t *j = json_loads(out, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(j), in);
    json_decref(j);
}

static void test_js_string_invalid_utf8(void **state)
{
    apr_pool_t *p = *state;
    char *out = ctfl_js_string(p, "a\xff" "b\xc3");
    assert_string_equal(out, "\"a\\ufffdb\\ufffd\"");
}

static void test_html_escape(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(ctfl_html_escape(p, "a&b<c>d\"e'f"),
                        "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    assert_string_equal(ctfl_html_escape(p, "plain \xc3\xa9"), "plain \xc3\xa9");
    assert_string_equal(ctfl_html_escape(p, ""), "");
    assert_string_equal(ctfl_html_escape(p, "&&&&"), "&amp;&amp;&amp;&amp;");
    assert_null(ctfl_html_escape(p, NULL));
}

/* Every byte value, in every position of a short string, stays ASCII and round-trips. */
static void test_js_string_all_bytes(void **state)
{
    apr_pool_t *p = *state;
    char in[3] = { 'x', 0, 0 };
    int b;
    for (b = 1; b < 256; b++) {
        in[1] = (char)b;
        char *out = ctfl_js_string(p, in);
        assert_true(all_ascii_script_safe(out));
        json_t *j = json_loads(out, JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        if (b < 0x80) assert_string_equal(json_string_value(j), in);
        else assert_string_equal(json_string_value(j), "x\xef\xbf\xbd");
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_for_script_breakouts, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_json_for_script_line_separators, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_json_for_script_non_ascii, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_json_for_script_keeps_structure, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_json_for_script_invalid_utf8, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_js_string_basic, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_js_string_script_safe, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_js_string_invalid_utf8, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_html_escape, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_js_string_all_bytes, unit_pool_setup, unit_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
