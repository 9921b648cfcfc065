/* Unit tests for ctfl_event: Experience API bodies exactly as spec §2.1-2.7. */
#include "unit.h"
#include "ctfl_event.h"
#include "ctflopt_version.h"

#include <apr_hash.h>
#include <apr_tables.h>
#include <ctype.h>
#include <jansson.h>

/* 2026-09-01T10:00:00.123Z */
#define NOW (apr_time_from_sec(1788256800) + 123456)

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j;
    assert_non_null(text);
    j = json_loads(text, JSON_ALLOW_NUL, &e);
    if (!j) fail_msg("invalid JSON (%s): %s", e.text, text);
    return j;
}

static void assert_uuid_v4(const char *u)
{
    int i;
    assert_non_null(u);
    assert_int_equal(strlen(u), 36);
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) assert_int_equal(u[i], '-');
        else assert_true(isxdigit((unsigned char)u[i]) && !isupper((unsigned char)u[i]));
    }
    assert_int_equal(u[14], '4');
    assert_non_null(strchr("89ab", u[19]));
}

/* The object's keys are exactly the given ones (NULL-terminated), in any order. */
static void assert_keys(json_t *obj, const char *const *keys)
{
    size_t n = 0;
    assert_true(json_is_object(obj));
    for (; keys[n]; n++)
        if (!json_object_get(obj, keys[n])) fail_msg("missing key %s", keys[n]);
    assert_int_equal(json_object_size(obj), n);
}

static const char *str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) fail_msg("%s is not a string", key);
    return json_string_value(v);
}

static ctfl_event_ctx base_ctx(void)
{
    ctfl_event_ctx c;
    memset(&c, 0, sizeof c);
    c.url = "https://shop.example/products?utm_source=mail";
    c.path = "/products";
    c.query = "utm_source=mail";
    c.user_agent = "Mozilla/5.0 test";
    c.locale = "de-DE";
    c.library_name = CTFLOPT_NAME;
    c.library_version = CTFLOPT_VERSION;
    c.consent_given = 1;
    return c;
}

static void test_uuid_v4(void **state)
{
    apr_pool_t *p = *state;
    apr_hash_t *seen = apr_hash_make(p);
    int i;
    for (i = 0; i < 200; i++) {
        char *u = ctfl_uuid_v4(p);
        assert_uuid_v4(u);
        assert_null(apr_hash_get(seen, u, APR_HASH_KEY_STRING));
        apr_hash_set(seen, u, APR_HASH_KEY_STRING, u);
    }
}

static void test_iso_timestamp(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(ctfl_iso_timestamp(p, NOW), "2026-09-01T10:00:00.123Z");
    assert_string_equal(ctfl_iso_timestamp(p, 0), "1970-01-01T00:00:00.000Z");
    assert_string_equal(ctfl_iso_timestamp(p, apr_time_from_sec(1709251199) + 999999),
                        "2024-02-29T23:59:59.999Z");
}

static void test_query_to_json(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(ctfl_query_to_json(p, NULL), "{}");
    assert_string_equal(ctfl_query_to_json(p, ""), "{}");
    assert_string_equal(ctfl_query_to_json(p, "a=1&b=2"), "{\"a\":\"1\",\"b\":\"2\"}");
    /* last value wins, keeping the first position */
    assert_string_equal(ctfl_query_to_json(p, "a=1&b=2&a=3"), "{\"a\":\"3\",\"b\":\"2\"}");
    /* '+' is a space, %-escapes decoded, also in names */
    assert_string_equal(ctfl_query_to_json(p, "q=a+b%20c&x%2By=%3D%26"),
                        "{\"q\":\"a b c\",\"x+y\":\"=&\"}");
    /* no '=', empty name, empty sequences */
    assert_string_equal(ctfl_query_to_json(p, "flag&&=v&e="),
                        "{\"flag\":\"\",\"\":\"v\",\"e\":\"\"}");
    /* only the first '=' splits */
    assert_string_equal(ctfl_query_to_json(p, "a=b=c"), "{\"a\":\"b=c\"}");
    /* invalid escapes stay literal */
    assert_string_equal(ctfl_query_to_json(p, "a=%&b=%4&c=%zz&d=100%"),
                        "{\"a\":\"%\",\"b\":\"%4\",\"c\":\"%zz\",\"d\":\"100%\"}");
    /* UTF-8 from escapes and raw bytes */
    assert_string_equal(ctfl_query_to_json(p, "n=%C3%A9t%C3%A9"), "{\"n\":\"\xc3\xa9t\xc3\xa9\"}");
}

static void test_query_hostile(void **state)
{
    apr_pool_t *p = *state;
    /* quotes, backslashes, control characters, NUL from %00 */
    json_t *j = parse(ctfl_query_to_json(p, "k=%22%5C%0A%01%00x&%22=1"));
    json_t *v = json_object_get(j, "k");
    assert_int_equal(json_string_length(v), 6);
    assert_memory_equal(json_string_value(v), "\"\\\n\x01\0x", 6);
    assert_string_equal(str(j, "\""), "1");
    json_decref(j);

    /* invalid UTF-8 (escaped and raw) becomes U+FFFD, as a browser's URLSearchParams does:
     * one per maximal invalid subpart */
    assert_string_equal(ctfl_query_to_json(p, "a=%FF&b=%C3&c=%E2%82&d=\xff\xfe&e=%ED%A0%80&f=%C0%AF"),
                        "{\"a\":\"\xef\xbf\xbd\",\"b\":\"\xef\xbf\xbd\",\"c\":\"\xef\xbf\xbd\","
                        "\"d\":\"\xef\xbf\xbd\xef\xbf\xbd\",\"e\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\","
                        "\"f\":\"\xef\xbf\xbd\xef\xbf\xbd\"}");
    /* bounds after E0/F0/ED/F4 lead bytes */
    assert_string_equal(ctfl_query_to_json(p, "a=%E0%80%80&b=%F0%80%80%80&c=%E0%A0%80&d=%F4%8F%BF%BF&e=%F4%90%80%80"),
                        "{\"a\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\","
                        "\"b\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\","
                        "\"c\":\"\xe0\xa0\x80\",\"d\":\"\xf4\x8f\xbf\xbf\","
                        "\"e\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");
    /* bad key bytes too */
    assert_string_equal(ctfl_query_to_json(p, "%80k=1"), "{\"\xef\xbf\xbdk\":\"1\"}");
}

static void test_query_key_cap(void **state)
{
    apr_pool_t *p = *state;
    apr_array_header_t *parts = apr_array_make(p, 1002, sizeof(const char *));
    int i;
    for (i = 0; i < 1000; i++) APR_ARRAY_PUSH(parts, const char *) = apr_psprintf(p, "k%d=v&", i);
    APR_ARRAY_PUSH(parts, const char *) = "k0=last&k99=late";
    json_t *j = parse(ctfl_query_to_json(p, apr_array_pstrcat(p, parts, 0)));
    assert_int_equal(json_object_size(j), 100);
    assert_string_equal(str(j, "k0"), "last");          /* kept keys still take later values */
    assert_string_equal(str(j, "k99"), "late");
    assert_null(json_object_get(j, "k100"));
    assert_null(json_object_get(j, "k999"));
    json_decref(j);
}

static void test_page_event(void **state)
{
    apr_pool_t *p = *state;
    ctfl_event_ctx c = base_ctx();
    json_t *body = parse(ctfl_event_build_body(p, &c, NOW));
    static const char *const body_keys[] = { "events", "options", NULL };
    static const char *const ev_keys[] = { "type", "channel", "messageId", "originalTimestamp",
                                           "sentAt", "timestamp", "properties", "context", NULL };
    static const char *const ctx_keys[] = { "campaign", "gdpr", "library", "locale", "page",
                                            "userAgent", NULL };
    static const char *const page_keys[] = { "path", "query", "referrer", "search", "url", NULL };

    assert_keys(body, body_keys);
    json_t *events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_keys(ev, ev_keys);
    assert_string_equal(str(ev, "type"), "page");
    assert_string_equal(str(ev, "channel"), "server");
    assert_uuid_v4(str(ev, "messageId"));
    assert_string_equal(str(ev, "originalTimestamp"), "2026-09-01T10:00:00.123Z");
    assert_string_equal(str(ev, "sentAt"), "2026-09-01T10:00:00.123Z");
    assert_string_equal(str(ev, "timestamp"), "2026-09-01T10:00:00.123Z");

    json_t *props = json_object_get(ev, "properties");
    assert_keys(props, page_keys);
    assert_string_equal(str(props, "path"), "/products");
    assert_string_equal(str(props, "url"), "https://shop.example/products?utm_source=mail");
    assert_string_equal(str(props, "referrer"), "");
    assert_string_equal(str(props, "search"), "?utm_source=mail");
    json_t *q = json_object_get(props, "query");
    assert_int_equal(json_object_size(q), 1);
    assert_string_equal(str(q, "utm_source"), "mail");

    json_t *ctx = json_object_get(ev, "context");
    assert_keys(ctx, ctx_keys);
    assert_true(json_equal(json_object_get(ctx, "page"), props));
    json_t *campaign = json_object_get(ctx, "campaign");
    assert_int_equal(json_object_size(campaign), 1);
    assert_string_equal(str(campaign, "source"), "mail");
    assert_true(json_is_true(json_object_get(json_object_get(ctx, "gdpr"), "isConsentGiven")));
    assert_int_equal(json_object_size(json_object_get(ctx, "gdpr")), 1);
    json_t *lib = json_object_get(ctx, "library");
    assert_int_equal(json_object_size(lib), 2);
    assert_string_equal(str(lib, "name"), "mod_ctflopt");
    assert_string_equal(str(lib, "version"), CTFLOPT_VERSION);
    assert_string_equal(str(ctx, "locale"), "de-DE");
    assert_string_equal(str(ctx, "userAgent"), "Mozilla/5.0 test");

    json_t *opts = json_object_get(body, "options");
    assert_int_equal(json_object_size(opts), 1);
    json_t *features = json_object_get(opts, "features");
    assert_int_equal(json_array_size(features), 2);
    assert_string_equal(json_string_value(json_array_get(features, 0)), "ip-enrichment");
    assert_string_equal(json_string_value(json_array_get(features, 1)), "location");
    json_decref(body);
}

static void test_compact_and_order(void **state)
{
    apr_pool_t *p = *state;
    ctfl_event_ctx c = base_ctx();
    char *text = ctfl_event_build_body(p, &c, NOW);
    /* compact, key order of spec §2.7 */
    assert_null(strstr(text, ": "));
    assert_null(strstr(text, ", "));
    static const char head[] = "{\"events\":[{\"type\":\"page\",\"channel\":\"server\",\"messageId\":\"";
    assert_memory_equal(text, head, sizeof head - 1);
    assert_non_null(strstr(text, "\",\"originalTimestamp\":\"2026-09-01T10:00:00.123Z\",\"sentAt\":"
                                 "\"2026-09-01T10:00:00.123Z\",\"timestamp\":\"2026-09-01T10:00:00.123Z\","
                                 "\"properties\":{\"path\":\"/products\",\"query\":{\"utm_source\":\"mail\"},"
                                 "\"referrer\":\"\",\"search\":\"?utm_source=mail\",\"url\":"
                                 "\"https://shop.example/products?utm_source=mail\"},\"context\":{\"campaign\":"
                                 "{\"source\":\"mail\"},\"gdpr\":{\"isConsentGiven\":true},\"library\":"
                                 "{\"name\":\"mod_ctflopt\",\"version\":\"" CTFLOPT_VERSION "\"},\"locale\":"
                                 "\"de-DE\",\"page\":{\"path\":\"/products\""));
    assert_non_null(strstr(text, "\"userAgent\":\"Mozilla/5.0 test\"}}],\"options\":{\"features\":"
                                 "[\"ip-enrichment\",\"location\"]}}"));
}

static void test_defaults(void **state)
{
    apr_pool_t *p = *state;
    ctfl_event_ctx c;
    memset(&c, 0, sizeof c);
    c.url = "http://h/";
    c.path = "/";
    json_t *body = parse(ctfl_event_build_body(p, &c, NOW));
    json_t *ev = json_array_get(json_object_get(body, "events"), 0);
    json_t *ctx = json_object_get(ev, "context");
    static const char *const ctx_keys[] = { "campaign", "gdpr", "library", "locale", "page", NULL };
    assert_keys(ctx, ctx_keys);                      /* no userAgent, no app */
    assert_string_equal(str(ctx, "locale"), "en-US");
    assert_int_equal(json_object_size(json_object_get(ctx, "campaign")), 0);
    assert_true(json_is_false(json_object_get(json_object_get(ctx, "gdpr"), "isConsentGiven")));
    assert_string_equal(str(json_object_get(ctx, "library"), "name"), CTFLOPT_NAME);
    assert_string_equal(str(json_object_get(ctx, "library"), "version"), CTFLOPT_VERSION);
    json_t *page = json_object_get(ev, "properties");
    assert_string_equal(str(page, "referrer"), "");
    assert_string_equal(str(page, "search"), "");
    assert_int_equal(json_object_size(json_object_get(page, "query")), 0);
    json_decref(body);

    c.query = "";                                    /* empty query: same as none */
    body = parse(ctfl_event_build_body(p, &c, NOW));
    page = json_object_get(json_array_get(json_object_get(body, "events"), 0), "properties");
    assert_string_equal(str(page, "search"), "");
    json_decref(body);
    assert_null(ctfl_event_build_body(p, NULL, NOW));
}

static void test_identify_first(void **state)
{
    apr_pool_t *p = *state;
    ctfl_event_ctx c = base_ctx();
    c.user_id = "user-42";
    c.referrer = "https://ref.example/?utm_source=ignored";
    json_t *body = parse(ctfl_event_build_body(p, &c, NOW));
    json_t *events = json_object_get(body, "events");
    static const char *const id_keys[] = { "type", "channel", "messageId", "originalTimestamp",
                                           "sentAt", "timestamp", "userId", "traits", "context", NULL };
    assert_int_equal(json_array_size(events), 2);
    json_t *id = json_array_get(events, 0), *pg = json_array_get(events, 1);
    assert_keys(id, id_keys);
    assert_string_equal(str(id, "type"), "identify");
    assert_string_equal(str(id, "channel"), "server");
    assert_string_equal(str(id, "userId"), "user-42");
    assert_true(json_is_object(json_object_get(id, "traits")));
    assert_int_equal(json_object_size(json_object_get(id, "traits")), 0);
    assert_null(json_object_get(id, "properties"));
    assert_uuid_v4(str(id, "messageId"));
    assert_string_not_equal(str(id, "messageId"), str(pg, "messageId"));
    assert_string_equal(str(id, "timestamp"), str(pg, "timestamp"));
    assert_string_equal(str(id, "sentAt"), str(pg, "sentAt"));
    assert_string_equal(str(id, "originalTimestamp"), str(pg, "originalTimestamp"));
    json_t *idctx = json_object_get(id, "context");
    assert_true(json_equal(idctx, json_object_get(pg, "context")));
    assert_true(json_equal(json_object_get(idctx, "page"), json_object_get(pg, "properties")));
    assert_string_equal(str(pg, "type"), "page");
    assert_null(json_object_get(pg, "userId"));
    /* the referrer is reported but never used for the campaign */
    assert_string_equal(str(json_object_get(pg, "properties"), "referrer"),
                        "https://ref.example/?utm_source=ignored");
    assert_string_equal(str(json_object_get(idctx, "campaign"), "source"), "mail");
    json_decref(body);
}

static json_t *campaign_for(apr_pool_t *p, const char *url, json_t **body_out)
{
    ctfl_event_ctx c = base_ctx();
    c.url = url;
    json_t *body = parse(ctfl_event_build_body(p, &c, NOW));
    *body_out = body;
    return json_object_get(json_object_get(json_array_get(json_object_get(body, "events"), 0),
                                           "context"), "campaign");
}

static void test_utm_campaign(void **state)
{
    apr_pool_t *p = *state;
    json_t *body, *c;

    /* spec §2.6 example */
    c = campaign_for(p, "https://shop.example/?utm_campaign=Spring%20Sale&utm_source=newsletter"
                        "&utm_medium=email&utm_term=shoes&utm_content=hero", &body);
    assert_int_equal(json_object_size(c), 5);
    assert_string_equal(str(c, "name"), "Spring Sale");
    assert_string_equal(str(c, "source"), "newsletter");
    assert_string_equal(str(c, "medium"), "email");
    assert_string_equal(str(c, "term"), "shoes");
    assert_string_equal(str(c, "content"), "hero");
    json_decref(body);

    /* present even if empty; '+' decoded; others absent */
    c = campaign_for(p, "https://h/p?utm_term=&utm_medium&utm_campaign=a+b&x=1", &body);
    assert_int_equal(json_object_size(c), 3);
    assert_string_equal(str(c, "term"), "");
    assert_string_equal(str(c, "medium"), "");
    assert_string_equal(str(c, "name"), "a b");
    json_decref(body);

    /* the first occurrence, like URLSearchParams.get(); encoded names count */
    c = campaign_for(p, "https://h/?utm_source=one&utm_source=two&utm%5Fmedium=m", &body);
    assert_string_equal(str(c, "source"), "one");
    assert_string_equal(str(c, "medium"), "m");
    json_decref(body);

    /* no UTM parameter, a fragment, relative and empty URLs: {} */
    const char *none[] = { "https://h/?utm=1&UTM_SOURCE=x", "https://h/#?utm_source=x",
                           "/products?utm_source=mail", "", "https://?utm_source=x",
                           "https://h/" };
    size_t i;
    for (i = 0; i < sizeof none / sizeof *none; i++) {
        c = campaign_for(p, none[i], &body);
        if (json_object_size(c) != 0) fail_msg("campaign inferred from \"%s\"", none[i]);
        json_decref(body);
    }

    /* query before the fragment counts */
    c = campaign_for(p, "https://h/?utm_source=x#frag&utm_medium=y", &body);
    assert_int_equal(json_object_size(c), 1);
    assert_string_equal(str(c, "source"), "x");
    json_decref(body);
}

static void test_hostile_fields(void **state)
{
    apr_pool_t *p = *state;
    ctfl_event_ctx c = base_ctx();
    c.url = "https://h/\"quoted\"?utm_source=%22%3Cx%3E\xff";
    c.path = "/\"a\\b\"/\x01\x1f/\xc3\x28";
    c.query = "utm_source=%22%3Cx%3E\xff";
    c.referrer = "\"\\\n\r\t";
    c.user_agent = "UA \xf0\x9f\x98\x80 \xf0\x9f\x98 end";
    c.user_id = "id\"\xfe";
    c.locale = "en\"US";
    char *text = ctfl_event_build_body(p, &c, NOW);
    json_t *body = parse(text);
    json_t *pg = json_array_get(json_object_get(body, "events"), 1);
    json_t *props = json_object_get(pg, "properties");
    json_t *ctx = json_object_get(pg, "context");
    assert_string_equal(str(props, "path"), "/\"a\\b\"/\x01\x1f/\xef\xbf\xbd(");
    assert_string_equal(str(props, "url"), "https://h/\"quoted\"?utm_source=%22%3Cx%3E\xef\xbf\xbd");
    assert_string_equal(str(props, "search"), "?utm_source=%22%3Cx%3E\xef\xbf\xbd");
    assert_string_equal(str(json_object_get(props, "query"), "utm_source"), "\"<x>\xef\xbf\xbd");
    assert_string_equal(str(json_object_get(ctx, "campaign"), "source"), "\"<x>\xef\xbf\xbd");
    assert_string_equal(str(props, "referrer"), "\"\\\n\r\t");
    assert_string_equal(str(ctx, "userAgent"), "UA \xf0\x9f\x98\x80 \xef\xbf\xbd end");
    assert_string_equal(str(ctx, "locale"), "en\"US");
    assert_string_equal(str(json_array_get(json_object_get(body, "events"), 0), "userId"),
                        "id\"\xef\xbf\xbd");
    json_decref(body);
}

/* A maximal request line worth of query keys stays bounded in the body. */
static void test_huge_query_body(void **state)
{
    apr_pool_t *p = *state;
    apr_array_header_t *parts = apr_array_make(p, 2000, sizeof(const char *));
    int i;
    for (i = 0; i < 2000; i++) APR_ARRAY_PUSH(parts, const char *) = apr_psprintf(p, "&%d=", i);
    ctfl_event_ctx c = base_ctx();
    c.query = apr_array_pstrcat(p, parts, 0);
    c.url = apr_pstrcat(p, "https://h/?", c.query, NULL);
    json_t *body = parse(ctfl_event_build_body(p, &c, NOW));
    json_t *props = json_object_get(json_array_get(json_object_get(body, "events"), 0), "properties");
    assert_int_equal(json_object_size(json_object_get(props, "query")), 100);
    assert_int_equal(strlen(str(props, "search")), strlen(c.query) + 1);
    json_decref(body);
}

#define T(f) cmocka_unit_test_setup_teardown(f, unit_pool_setup, unit_pool_teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_uuid_v4), T(test_iso_timestamp), T(test_query_to_json), T(test_query_hostile),
        T(test_query_key_cap), T(test_page_event), T(test_compact_and_order), T(test_defaults),
        T(test_identify_first), T(test_utm_campaign), T(test_hostile_fields),
        T(test_huge_query_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
