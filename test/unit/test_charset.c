/* ctfl_charset: Content-Type parameter, BOM, <meta> prescan, label mapping. */
#include "unit.h"
#include <dirent.h>
#include <strings.h>
#include "ctfl_charset.h"

static void test_content_type_param(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(ctfl_charset_from_content_type(p, "text/html; charset=UTF-8"), "utf-8");
    assert_string_equal(ctfl_charset_from_content_type(p, "text/html;charset=\"ISO-8859-1\""),
                        "iso-8859-1");
    assert_string_equal(ctfl_charset_from_content_type(p, "text/html; q=1; Charset = Shift_JIS ;x"),
                        "shift_jis");
    assert_string_equal(ctfl_charset_from_content_type(p, "text/html;a=\"b\";charset=latin1"), "latin1");
    assert_null(ctfl_charset_from_content_type(p, NULL));
    assert_null(ctfl_charset_from_content_type(p, "text/html"));
    assert_null(ctfl_charset_from_content_type(p, "text/html; charset="));
    assert_null(ctfl_charset_from_content_type(p, "text/html; charset=\"\""));
    assert_null(ctfl_charset_from_content_type(p, "text/html; charset=\"utf-8"));
    assert_null(ctfl_charset_from_content_type(p, "text/html; xcharset=utf-8"));
    assert_null(ctfl_charset_from_content_type(p, "text/html; charset"));
}

static void detect(apr_pool_t *p, const char *ct, const char *body, size_t n, ctfl_charset *cs)
{
    memset(cs, 0x5A, sizeof(*cs));
    ctfl_charset_detect(p, ct, body, n, cs);
}

static void test_detect_order_and_labels(void **state)
{
    apr_pool_t *p = *state;
    ctfl_charset cs;
    static const char meta8859[] = "<meta charset=iso-8859-2>";

    /* BOM wins over the header, as in browsers */
    detect(p, "text/html; charset=windows-1252", "\xEF\xBB\xBFx", 4, &cs);
    assert_string_equal(cs.name, "utf-8");
    assert_int_equal(cs.from, 2);
    assert_int_equal(cs.ascii_compatible, 1);
    detect(p, "text/html; charset=utf-8", "\xFF\xFE<\0h\0", 6, &cs);
    assert_string_equal(cs.name, "utf-16le");
    assert_int_equal(cs.ascii_compatible, 0);
    assert_int_equal(cs.from, 2);
    detect(p, NULL, "\xFE\xFF\0<", 4, &cs);
    assert_string_equal(cs.name, "utf-16be");
    assert_int_equal(cs.ascii_compatible, 0);

    /* Content-Type, canonicalised; beats <meta> */
    detect(p, "text/html; charset=Latin1", meta8859, sizeof(meta8859) - 1, &cs);
    assert_string_equal(cs.name, "windows-1252");
    assert_int_equal(cs.from, 1);
    detect(p, "text/html; charset=utf8", NULL, 0, &cs);
    assert_string_equal(cs.name, "utf-8");
    detect(p, "text/html; charset=\" ISO-8859-1 \"", NULL, 0, &cs);
    assert_string_equal(cs.name, "windows-1252");
    detect(p, "text/html; charset=utf-16", NULL, 0, &cs);
    assert_string_equal(cs.name, "utf-16le");         /* the header is believed */
    assert_int_equal(cs.ascii_compatible, 0);
    detect(p, "text/html; charset=csISO2022JP", NULL, 0, &cs);
    assert_string_equal(cs.name, "iso-2022-jp");
    assert_int_equal(cs.ascii_compatible, 0);
    detect(p, "text/html; charset=sjis", NULL, 0, &cs);
    assert_string_equal(cs.name, "shift_jis");
    assert_int_equal(cs.ascii_compatible, 1);
    detect(p, "text/html; charset=gb2312", NULL, 0, &cs);
    assert_string_equal(cs.name, "gbk");
    detect(p, "text/html; charset=ks_c_5601-1987", NULL, 0, &cs);
    assert_string_equal(cs.name, "euc-kr");
    detect(p, "text/html; charset=iso-2022-kr", NULL, 0, &cs);
    assert_string_equal(cs.name, "replacement");
    assert_int_equal(cs.ascii_compatible, 0);

    /* unknown header label: fall through to <meta> */
    detect(p, "text/html; charset=bogus", meta8859, sizeof(meta8859) - 1, &cs);
    assert_string_equal(cs.name, "iso-8859-2");
    assert_int_equal(cs.from, 3);

    /* <meta> declaring UTF-16 means UTF-8; x-user-defined means windows-1252 */
    detect(p, NULL, "<meta charset=utf-16be>", 23, &cs);
    assert_string_equal(cs.name, "utf-8");
    assert_int_equal(cs.ascii_compatible, 1);
    detect(p, NULL, "<meta charset=x-user-defined>", 29, &cs);
    assert_string_equal(cs.name, "windows-1252");

    /* nothing declared */
    detect(p, "text/html", "<p>hello", 8, &cs);
    assert_null(cs.name);
    assert_int_equal(cs.from, 0);
    assert_int_equal(cs.ascii_compatible, 1);
    detect(p, NULL, NULL, 0, &cs);
    assert_null(cs.name);
}

static void test_prescan_window(void **state)
{
    apr_pool_t *p = *state;
    ctfl_charset cs;
    char *doc = apr_palloc(p, 2048);
    static const char meta[] = "<meta charset=koi8-r>";

    /* a meta that ends exactly at byte 1024 is seen; one byte later is not */
    memset(doc, ' ', 2048);
    memcpy(doc + 1024 - (sizeof(meta) - 1), meta, sizeof(meta) - 1);
    detect(p, NULL, doc, 2048, &cs);
    assert_string_equal(cs.name, "koi8-r");
    memset(doc, ' ', 2048);
    memcpy(doc + 1025 - (sizeof(meta) - 1), meta, sizeof(meta) - 1);
    detect(p, NULL, doc, 2048, &cs);
    assert_null(cs.name);
    /* a short body is fine */
    detect(p, NULL, meta, sizeof(meta) - 1, &cs);
    assert_string_equal(cs.name, "koi8-r");
    /* comments and other tags are skipped, as is a meta inside a comment */
    {
        static const char page[] =
            "<!-- <meta charset=big5> --><p class='<meta charset=big5>'><META CHARSET=\"EUC-JP\">";
        detect(p, NULL, page, sizeof(page) - 1, &cs);
    }
    assert_string_equal(cs.name, "euc-jp");
}

/* html5lib-tests/encoding: every case whose answer a 1024-byte prescan can
 * give (the rest put the declaration further into the document). */
static void test_html5lib_encoding(void **state)
{
    apr_pool_t *p = *state;
    const char *dir = apr_pstrcat(p, unit_shared_dir(), "/fixtures/html5lib-tests/encoding", NULL);
    DIR *d = opendir(dir);
    struct dirent *e;
    int run = 0, skipped = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t flen = 0, nl = strlen(e->d_name);
        char *f, *s;
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".dat"))
            continue;
        f = unit_read_file(p, apr_pstrcat(p, dir, "/", e->d_name, NULL), &flen);
        assert_non_null(f);
        for (s = f; (s = memmem(s, flen - (size_t)(s - f), "#data\n", 6)) != NULL;) {
            const char *data = s + 6, *want, *eol;
            const char *enc = memmem(data, flen - (size_t)(data - f), "\n#encoding\n", 11);
            ctfl_charset cs;
            size_t n, last_decl = 0;
            char *expected;
            assert_non_null(enc);
            n = (size_t)(enc - data);
            want = enc + 11;
            eol = strchr(want, '\n');
            expected = apr_pstrmemdup(p, want, eol ? (size_t)(eol - want) : strlen(want));
            for (char *c = expected; *c; c++)
                *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
            for (size_t i = 0; i + 7 <= n; i++)       /* end of the last "charset...>" */
                if (!strncasecmp(data + i, "charset", 7)) {
                    const char *gt = memchr(data + i, '>', n - i);
                    last_decl = gt ? (size_t)(gt - data) + 1 : n;
                }
            s = (char *)want;
            if (strcmp(expected, "windows-1252") && last_decl > 1024) {
                skipped++;
                continue;
            }
            detect(p, NULL, data, n, &cs);
            if (strcmp(cs.name ? cs.name : "windows-1252", expected)) {
                print_error("%s: got %s, want %s for:\n%.*s\n", e->d_name, cs.name ? cs.name : "(none)",
                            expected, (int)(n > 200 ? 200 : n), data);
                fail();
            }
            run++;
        }
    }
    closedir(d);
    print_message("html5lib encoding: %d cases checked, %d need more than 1024 bytes\n", run, skipped);
    assert_true(run >= 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_content_type_param, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_detect_order_and_labels, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_prescan_window, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_html5lib_encoding, unit_pool_setup, unit_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
