/* Unit tests for ctfl_locale: §10.1 normalization and Accept-Language negotiation. */
#include "unit.h"
#include "ctfl_locale.h"

static void test_normalize_valid(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(ctfl_locale_normalize(p, "en-US"), "en-US");
    assert_string_equal(ctfl_locale_normalize(p, " de_DE "), "de-DE");       /* spec example */
    assert_string_equal(ctfl_locale_normalize(p, "\t\nfr\r\n"), "fr");
    assert_string_equal(ctfl_locale_normalize(p, "EN-us"), "EN-us");         /* case kept */
    assert_string_equal(ctfl_locale_normalize(p, "zh_Hant_TW"), "zh-Hant-TW");
    assert_string_equal(ctfl_locale_normalize(p, "es-419"), "es-419");
    assert_string_equal(ctfl_locale_normalize(p, "abcdefgh-12345678"), "abcdefgh-12345678");
    assert_string_equal(ctfl_locale_normalize(p, "de-CH-1996"), "de-CH-1996");
    assert_string_equal(ctfl_locale_normalize(p, "und-US"), "und-US");       /* only "und" itself */
}

static void test_normalize_invalid(void **state)
{
    apr_pool_t *p = *state;
    const char *bad[] = {
        "", "   ", "*", " * ", "und", "UND", " Und ", "e", "abcdefghi", "1en", "en-",
        "en--US", "-en", "en-123456789", "en US", "en.US", "en-US;q=1", "en-\xc3\xa9",
        "en_", "_en", "en-US-", "en\x01",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (ctfl_locale_normalize(p, bad[i]) != NULL) fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_null(ctfl_locale_normalize(p, NULL));
}

static apr_array_header_t *list(apr_pool_t *p, const char *const *items)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    for (; *items; items++) APR_ARRAY_PUSH(a, const char *) = *items;
    return a;
}

#define NEG(h) ctfl_locale_negotiate(p, (h), sup)

static void test_negotiate_default(void **state)
{
    apr_pool_t *p = *state;
    const char *const items[] = { "en-US", "de-DE", "fr", NULL };
    apr_array_header_t *sup = list(p, items);
    assert_string_equal(NEG(NULL), "en-US");
    assert_string_equal(NEG(""), "en-US");
    assert_string_equal(NEG("*"), "en-US");
    assert_string_equal(NEG("ja, ko;q=0.5"), "en-US");
    assert_string_equal(NEG(";;;,,,==;q=;"), "en-US");
    assert_string_equal(NEG("\xff\xfe garbage \x01"), "en-US");
    assert_null(ctfl_locale_negotiate(p, "de", NULL));
    assert_null(ctfl_locale_negotiate(p, "de", apr_array_make(p, 1, sizeof(const char *))));
}

static void test_negotiate_exact_case_insensitive(void **state)
{
    apr_pool_t *p = *state;
    const char *const items[] = { "en-US", "de-DE", "fr", NULL };
    apr_array_header_t *sup = list(p, items);
    assert_string_equal(NEG("de-DE"), "de-DE");
    assert_string_equal(NEG("DE-de"), "de-DE");
    assert_string_equal(NEG("de_de"), "de-DE");
    assert_string_equal(NEG("FR"), "fr");
    assert_string_equal(NEG("  fr  ;  q=0.8  "), "fr");
}

static void test_negotiate_q_order(void **state)
{
    apr_pool_t *p = *state;
    const char *const items[] = { "en-US", "de-DE", "fr", NULL };
    apr_array_header_t *sup = list(p, items);
    assert_string_equal(NEG("de-DE;q=0.5, fr;q=0.9"), "fr");
    assert_string_equal(NEG("fr;q=0.5, de-DE"), "de-DE");                  /* default q=1 */
    assert_string_equal(NEG("fr;q=0.500, de-DE;q=0.5"), "fr");             /* ties: header order */
    assert_string_equal(NEG("fr;q=1.000, en-US;Q=1"), "fr");
    assert_string_equal(NEG("fr;q=0.001, ja"), "fr");
}

static void test_negotiate_q_zero_and_malformed(void **state)
{
    apr_pool_t *p = *state;
    const char *const items[] = { "en-US", "de-DE", "fr", NULL };
    apr_array_header_t *sup = list(p, items);
    assert_string_equal(NEG("fr;q=0, de-DE;q=0.1"), "de-DE");
    assert_string_equal(NEG("fr;q=0.000"), "en-US");
    /* malformed weights: the part is ignored */
    assert_string_equal(NEG("fr;q=2, de-DE;q=0.1"), "de-DE");
    assert_string_equal(NEG("fr;q=1.5, de-DE;q=0.1"), "de-DE");
    assert_string_equal(NEG("fr;q=0.1234, de-DE;q=0.1"), "de-DE");
    assert_string_equal(NEG("fr;q=abc, de-DE;q=0.1"), "de-DE");
    assert_string_equal(NEG("fr;q=, de-DE;q=0.1"), "de-DE");
    assert_string_equal(NEG("fr;q=-1, de-DE;q=0.1"), "de-DE");
    /* unknown parameters are ignored, the range still counts */
    assert_string_equal(NEG("fr;level=1, de-DE;q=0.1"), "fr");
    /* malformed ranges are skipped */
    assert_string_equal(NEG("f r, de--DE, de-DE;q=0.2"), "de-DE");
}

static void test_negotiate_primary_language(void **state)
{
    apr_pool_t *p = *state;
    const char *const items[] = { "en-US", "de-DE", "de", "fr-FR", "zh-Hant", NULL };
    apr_array_header_t *sup = list(p, items);
    assert_string_equal(NEG("de-CH"), "de");            /* the plain language before de-DE */
    assert_string_equal(NEG("fr-CA"), "fr-FR");         /* same primary language */
    assert_string_equal(NEG("fr"), "fr-FR");
    assert_string_equal(NEG("en-GB"), "en-US");
    assert_string_equal(NEG("zh-Hant-TW"), "zh-Hant");  /* longest prefix */
    assert_string_equal(NEG("zh-Hans"), "zh-Hant");     /* still Chinese */
    /* the preferred language wins over an exact match of a less preferred one */
    assert_string_equal(NEG("fr-CH, de-DE;q=0.5"), "fr-FR");
    /* a prefix must end at a subtag boundary */
    const char *const items2[] = { "en", "frx", NULL };
    sup = list(p, items2);
    assert_string_equal(NEG("fr"), "en");
    assert_string_equal(NEG("fr-FR"), "en");
}

static void test_negotiate_huge_header(void **state)
{
    apr_pool_t *p = *state;
    const char *const items[] = { "en-US", "de-DE", NULL };
    apr_array_header_t *sup = list(p, items);
    const char *part = "xx-YY;q=0.9,";
    size_t plen = strlen(part);
    char *h = apr_palloc(p, 10000 * plen + 1);
    int i;
    /* 10000 unmatched ranges: only the first parts are looked at, and the answer is the default */
    for (i = 0; i < 10000; i++) memcpy(h + (size_t)i * plen, part, plen);
    h[10000 * plen] = '\0';
    assert_string_equal(NEG(apr_pstrcat(p, h, "de-DE", NULL)), "en-US");
    /* a match among the first parts is found */
    assert_string_equal(NEG(apr_pstrcat(p, "ja;q=0.1,de-DE;q=0.2,", h, NULL)), "de-DE");
    /* one enormous range */
    char *big = apr_palloc(p, 100001);
    memset(big, 'a', 100000);
    big[100000] = '\0';
    assert_string_equal(NEG(big), "en-US");
}

#define T(f) cmocka_unit_test_setup_teardown(f, unit_pool_setup, unit_pool_teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_normalize_valid), T(test_normalize_invalid), T(test_negotiate_default),
        T(test_negotiate_exact_case_insensitive), T(test_negotiate_q_order),
        T(test_negotiate_q_zero_and_malformed), T(test_negotiate_primary_language),
        T(test_negotiate_huge_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
