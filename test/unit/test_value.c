/* Unit tests for ctfl_value (accessors, JS number and truthiness, JSON.stringify)
 * and ctfl_json_parse_value (bounds, order, duplicates). */
#include "unit.h"
#include "ctfl_value.h"
#include "ctfl_json_value.h"

#include <math.h>

static ctfl_value *parse(apr_pool_t *p, const char *json)
{
    ctfl_value *v = NULL;
    const char *err = NULL;
    if (ctfl_json_parse_value(p, json, strlen(json), &v, &err) != 0)
        fail_msg("parse failed: %s: %s", err, json);
    return v;
}

static const char *parse_error(apr_pool_t *p, const char *json, apr_size_t len)
{
    ctfl_value *v = (ctfl_value *)1;
    const char *err = NULL;
    assert_int_equal(ctfl_json_parse_value(p, json, len, &v, &err), -1);
    assert_null(v);
    assert_non_null(err);
    return err;
}

/* ---- accessors ----------------------------------------------------------- */

static void test_accessors(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *v = parse(p, "{\"sys\":{\"id\":\"x\",\"contentType\":{\"sys\":{\"id\":\"content\"}}},"
                             "\"list\":[1,\"two\",null],\"n\":3}");
    assert_string_equal(ctfl_value_str(ctfl_value_path(v, "sys.id")), "x");
    assert_string_equal(ctfl_value_str(ctfl_value_path(v, "sys.contentType.sys.id")), "content");
    assert_null(ctfl_value_path(v, "sys.missing.id"));
    assert_null(ctfl_value_path(v, "n.x"));
    assert_null(ctfl_value_path(v, "sys."));
    assert_int_equal(ctfl_value_len(ctfl_value_get(v, "list")), 3);
    assert_int_equal(ctfl_value_len(v), 0);                           /* not an array */
    assert_string_equal(ctfl_value_str(ctfl_value_at(ctfl_value_get(v, "list"), 1)), "two");
    assert_true(ctfl_value_is(ctfl_value_at(ctfl_value_get(v, "list"), 2), CTFL_V_NULL));
    assert_null(ctfl_value_at(ctfl_value_get(v, "list"), 3));
    assert_null(ctfl_value_str(ctfl_value_get(v, "n")));
    assert_true(ctfl_value_is(ctfl_value_get(v, "n"), CTFL_V_NUMBER));
    assert_false(ctfl_value_is(ctfl_value_get(v, "n"), CTFL_V_STRING));
    /* NULL-safe everywhere */
    assert_null(ctfl_value_get(NULL, "a"));
    assert_null(ctfl_value_get(v, NULL));
    assert_null(ctfl_value_path(NULL, "a.b"));
    assert_null(ctfl_value_str(NULL));
    assert_false(ctfl_value_is(NULL, CTFL_V_NULL));
    assert_int_equal(ctfl_value_len(NULL), 0);
    assert_null(ctfl_value_at(NULL, 0));
    assert_false(ctfl_value_truthy(NULL));
}

/* Lookups compare whole keys: prefixes, shared prefixes, the empty key and
 * duplicate keys (first match) in objects built by hand. */
static void test_key_lookup(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *v = parse(p, "{\"nt_a\":1,\"nt_ab\":2,\"nt_\":3,\"\":{\"\":{\"x\":4}},\"a.b\":5,"
                             "\"nt\":{\"nt_experience_id\":\"e\",\"nt_experience\":\"f\"}}");
    static const char *const dup_keys[] = { "k", "k" };
    ctfl_value *one = ctfl_value_number(p, 1), *two = ctfl_value_number(p, 2);
    ctfl_value *dup_vals[] = { one, two };
    ctfl_value *dup = ctfl_value_new(p, CTFL_V_OBJECT);
    char *long_key = apr_palloc(p, 301), *long_path;

    assert_true(ctfl_value_get(v, "nt_a")->u.n == 1);
    assert_true(ctfl_value_get(v, "nt_ab")->u.n == 2);
    assert_true(ctfl_value_get(v, "nt_")->u.n == 3);
    assert_null(ctfl_value_get(v, "nt_abc"));
    assert_null(ctfl_value_get(v, "n"));
    assert_true(ctfl_value_is(ctfl_value_get(v, ""), CTFL_V_OBJECT));
    assert_true(ctfl_value_get(v, "a.b")->u.n == 5);              /* get: no path splitting */
    assert_null(ctfl_value_get(ctfl_value_get(v, "nt_a"), "x"));   /* not an object */

    assert_string_equal(ctfl_value_str(ctfl_value_path(v, "nt.nt_experience_id")), "e");
    assert_string_equal(ctfl_value_str(ctfl_value_path(v, "nt.nt_experience")), "f");
    assert_null(ctfl_value_path(v, "nt.nt_experience_i"));
    assert_null(ctfl_value_path(v, "nt.nt_experience_idx"));
    assert_true(ctfl_value_path(v, "nt_ab")->u.n == 2);
    assert_null(ctfl_value_path(v, "nt_a.b"));                     /* a number has no members */
    assert_null(ctfl_value_path(v, "a.b"));                        /* path: split on every '.' */
    assert_true(ctfl_value_path(v, "..x")->u.n == 4);              /* empty segments are keys "" */
    assert_true(ctfl_value_is(ctfl_value_path(v, "."), CTFL_V_OBJECT));
    assert_null(ctfl_value_path(v, "..y"));
    assert_null(ctfl_value_path(v, "nt.."));

    dup->u.obj.keys = (const char **)dup_keys;
    dup->u.obj.vals = dup_vals;
    dup->u.obj.n = 2;
    assert_ptr_equal(ctfl_value_get(dup, "k"), one);               /* first match */
    assert_ptr_equal(ctfl_value_path(dup, "k"), one);

    memset(long_key, 'k', 300);                                    /* no segment length limit */
    long_key[300] = '\0';
    {
        const char **keys = apr_palloc(p, sizeof(*keys));
        ctfl_value **vals = apr_palloc(p, sizeof(*vals));
        ctfl_value *o = ctfl_value_new(p, CTFL_V_OBJECT);
        keys[0] = long_key;
        vals[0] = two;
        o->u.obj.keys = keys;
        o->u.obj.vals = vals;
        o->u.obj.n = 1;
        long_path = apr_pstrcat(p, long_key, ".x", NULL);
        assert_ptr_equal(ctfl_value_path(o, long_key), two);
        assert_ptr_equal(ctfl_value_get(o, long_key), two);
        assert_null(ctfl_value_path(o, long_path));                 /* a number has no members */
        assert_null(ctfl_value_path(o, apr_pstrndup(p, long_key, 299)));
        assert_null(ctfl_value_path(o, apr_pstrcat(p, long_key, "k", NULL)));
    }
}

static void test_truthy(void **state)
{
    apr_pool_t *p = *state;
    static const struct { const char *json; int truthy; } cases[] = {
        { "false", 0 }, { "true", 1 }, { "0", 0 }, { "-0", 0 }, { "0.0", 0 }, { "1", 1 },
        { "-1", 1 }, { "0.5", 1 }, { "\"\"", 0 }, { "\"0\"", 1 }, { "\"false\"", 1 },
        { "null", 0 }, { "[]", 1 }, { "{}", 1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        if (ctfl_value_truthy(parse(p, cases[i].json)) != cases[i].truthy)
            fail_msg("truthiness of %s", cases[i].json);
    }
    assert_false(ctfl_value_truthy(ctfl_value_number(p, NAN)));
}

static void test_js_number(void **state)
{
    apr_pool_t *p = *state;
    static const struct { double n; const char *js; } cases[] = {
        { 0, "0" }, { -0.0, "0" }, { 1, "1" }, { -1, "-1" }, { 123, "123" }, { 1.5, "1.5" },
        { 0.1, "0.1" }, { 0.1 + 0.2, "0.30000000000000004" }, { 100, "100" }, { 1e21, "1e+21" },
        { 1e20, "100000000000000000000" }, { 123456789012345680000.0, "123456789012345680000" },
        { 1.23e22, "1.23e+22" }, { 1e-6, "0.000001" }, { 1.234e-6, "0.000001234" },
        { 1e-7, "1e-7" }, { 1.5e-7, "1.5e-7" }, { 9007199254740992.0, "9007199254740992" },
        { 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { -2.5e-10, "-2.5e-10" }, { 12345, "12345" }, { 0.000123, "0.000123" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        assert_string_equal(ctfl_js_number(p, cases[i].n), cases[i].js);
    /* the integer fast path ends below 2^53; larger integers take the general
     * path (shortest round-trip digits, zero padded) */
    assert_string_equal(ctfl_js_number(p, 9007199254740991.0), "9007199254740991");
    assert_string_equal(ctfl_js_number(p, -9007199254740991.0), "-9007199254740991");
    assert_string_equal(ctfl_js_number(p, 1152921504606846976.0), "1152921504606847000");   /* 2^60 */
    assert_string_equal(ctfl_js_number(p, -4503599627370497.0), "-4503599627370497");
    assert_string_equal(ctfl_js_number(p, 1000000), "1000000");
    assert_string_equal(ctfl_js_number(p, -0.5), "-0.5");
    assert_string_equal(ctfl_js_number(p, 4503599627370495.5), "4503599627370495.5");
    assert_string_equal(ctfl_js_number(p, NAN), "NaN");
    assert_string_equal(ctfl_js_number(p, INFINITY), "Infinity");
    assert_string_equal(ctfl_js_number(p, -INFINITY), "-Infinity");
}

/* ---- parsing ------------------------------------------------------------- */

static void test_parse_order_and_duplicates(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *v = parse(p, "{\"b\":1,\"a\":2,\"c\":{\"z\":1,\"y\":2},\"b\":3}");
    assert_int_equal(v->u.obj.n, 3);
    assert_string_equal(v->u.obj.keys[0], "b");         /* first position ... */
    assert_true(v->u.obj.vals[0]->u.n == 3);            /* ... last value (JSON.parse) */
    assert_string_equal(v->u.obj.keys[1], "a");
    assert_string_equal(v->u.obj.keys[2], "c");
    assert_string_equal(ctfl_value_to_json(p, v), "{\"b\":3,\"a\":2,\"c\":{\"z\":1,\"y\":2}}");
}

static void test_parse_scalars(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *v = parse(p, "[99999999999999999999, -0, 1.5e3, \"\\u00e9\\u20ac\\ud83d\\ude00\", true, false, null]");
    assert_int_equal(ctfl_value_len(v), 7);
    assert_true(ctfl_value_at(v, 0)->u.n == 1e20);      /* integers as doubles, no overflow */
    assert_true(ctfl_value_at(v, 2)->u.n == 1500);
    assert_string_equal(ctfl_value_str(ctfl_value_at(v, 3)), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_int_equal(ctfl_value_at(v, 3)->u.str.len, 9);
    assert_true(ctfl_value_at(v, 4)->u.b);
    assert_false(ctfl_value_at(v, 5)->u.b);
    assert_true(ctfl_value_is(ctfl_value_at(v, 6), CTFL_V_NULL));
    assert_string_equal(ctfl_value_to_json(p, v),
                        "[100000000000000000000,0,1500,\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",true,false,null]");
    /* a bare scalar is a valid top level */
    assert_string_equal(ctfl_value_str(parse(p, "\"x\"")), "x");
}

static void test_parse_errors(void **state)
{
    apr_pool_t *p = *state;
    const char *err;
    err = parse_error(p, "{\"a\":", 5);
    assert_non_null(strstr(err, "bad json: "));
    parse_error(p, "", 0);
    parse_error(p, NULL, 0);
    parse_error(p, "{} x", 4);                            /* trailing garbage */
    parse_error(p, "\"a\\u0000b\"", 10);                  /* NUL inside a string */
    parse_error(p, "\"\xff\"", 3);                        /* invalid UTF-8 */
    parse_error(p, "1e400", 5);                           /* overflows a double */
    parse_error(p, "\"\\ud800\"", 8);                     /* lone surrogate */
    err = parse_error(p, "{\"a\":\"\x01\x02\x03\x04\"}", 12);  /* error text stays printable */
    for (const char *c = err; *c; c++) assert_true(*c >= 0x20 && *c <= 0x7e);
}

static char *nested(apr_pool_t *p, int depth)
{
    char *s = apr_palloc(p, (apr_size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) { s[i] = '['; s[depth * 2 - 1 - i] = ']'; }
    s[depth * 2] = '\0';
    return s;
}

static void test_parse_depth_bound(void **state)
{
    apr_pool_t *p = *state;
    char *ok = nested(p, CTFL_VALUE_MAX_DEPTH), *deep = nested(p, CTFL_VALUE_MAX_DEPTH + 1);
    ctfl_value *v = parse(p, ok);
    /* whatever parses also serializes */
    assert_string_equal(ctfl_value_to_json(p, v), ok);
    assert_non_null(strstr(parse_error(p, deep, strlen(deep)), "too deep"));
    /* brackets inside strings do not count */
    {
        char *s = apr_psprintf(p, "[\"%s\"]", nested(p, 300));
        assert_non_null(parse(p, s));
    }
}

static void test_parse_size_bound(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t n = CTFL_JSON_VALUE_MAX_INPUT + 1;
    char *big = apr_palloc(p, n);
    memset(big, ' ', n);
    big[0] = '1';
    assert_non_null(strstr(parse_error(p, big, n), "too large"));
}

/* ---- JSON.stringify ------------------------------------------------------ */

static void test_to_json_escapes(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *v = parse(p, "{\"k\\\"ey\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\fc\\u0001\\u001f\\u007f<>&\\u2028\"}");
    assert_string_equal(ctfl_value_to_json(p, v),
                        "{\"k\\\"ey\":\"q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\fc\\u0001\\u001f\x7f<>&\xe2\x80\xa8\"}");
    assert_string_equal(ctfl_value_to_json(p, parse(p, "[]")), "[]");
    assert_string_equal(ctfl_value_to_json(p, parse(p, "{}")), "{}");
    assert_string_equal(ctfl_value_to_json(p, parse(p, "[0.1,-1e-7,1e21]")), "[0.1,-1e-7,1e+21]");
    assert_string_equal(ctfl_value_to_json(p, ctfl_value_number(p, NAN)), "null");
    assert_string_equal(ctfl_value_to_json(p, NULL), "null");
}

static void test_to_json_round_trip_fixture(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len = 0;
    char *path = apr_psprintf(p, "%s/fixtures/contentful/entries/1MwiFl4z7gkwqGYdvCmr8c.json", unit_shared_dir());
    char *text = unit_read_file(p, path, &len);
    ctfl_value *v, *again;
    const char *err;
    char *json;
    if (!text) fail_msg("fixture missing: %s", path);
    assert_int_equal(ctfl_json_parse_value(p, text, len, &v, &err), 0);
    json = ctfl_value_to_json(p, v);
    assert_non_null(json);
    assert_int_equal(ctfl_json_parse_value(p, json, strlen(json), &again, &err), 0);
    assert_string_equal(ctfl_value_to_json(p, again), json);
    assert_non_null(strstr(json, "\"nodeType\":\"embedded-entry-inline\",\"data\":{\"target\":"
                                 "{\"sys\":{\"id\":\"nM127uVevlpDWytfZRyum\",\"type\":\"Link\",\"linkType\":\"Entry\"}}}"));
    assert_non_null(strstr(json, "continent \\\"\""));
}

static void test_to_json_cycle_is_refused(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *obj = parse(p, "{\"name\":\"a\",\"self\":null}");
    obj->u.obj.vals[1] = obj;                             /* obj.self = obj */
    assert_null(ctfl_value_to_json(p, obj));
}

static void test_to_json_depth_bound(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *v = ctfl_value_new(p, CTFL_V_ARRAY);
    /* one level deeper than the parser allows: built by hand */
    for (int i = 0; i < CTFL_VALUE_MAX_DEPTH + 1; i++) {
        ctfl_value *outer = ctfl_value_new(p, CTFL_V_ARRAY);
        outer->u.arr.items = apr_palloc(p, sizeof(ctfl_value *));
        outer->u.arr.items[0] = v;
        outer->u.arr.n = 1;
        v = outer;
    }
    assert_null(ctfl_value_to_json(p, v));
    assert_non_null(ctfl_value_to_json(p, v->u.arr.items[0]));
}

static void test_constructors(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *s = ctfl_value_string(p, "h\xc3\xa9");
    ctfl_value *arr = ctfl_value_new(p, CTFL_V_ARRAY), *obj = ctfl_value_new(p, CTFL_V_OBJECT);
    assert_int_equal(s->u.str.len, 3);
    assert_string_equal(ctfl_value_to_json(p, s), "\"h\xc3\xa9\"");
    assert_string_equal(ctfl_value_str(ctfl_value_new(p, CTFL_V_STRING)), "");
    assert_string_equal(ctfl_value_to_json(p, arr), "[]");
    assert_string_equal(ctfl_value_to_json(p, obj), "{}");
    assert_string_equal(ctfl_value_to_json(p, ctfl_value_bool(p, 7)), "true");
    assert_string_equal(ctfl_value_to_json(p, ctfl_value_number(p, -12.25)), "-12.25");
    assert_true(ctfl_value_is(ctfl_value_new(p, CTFL_V_NULL), CTFL_V_NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accessors, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_key_lookup, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_truthy, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_js_number, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_parse_order_and_duplicates, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_parse_scalars, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_parse_depth_bound, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_parse_size_bound, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_to_json_escapes, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_to_json_round_trip_fixture, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_to_json_cycle_is_refused, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_to_json_depth_bound, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_constructors, unit_pool_setup, unit_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
