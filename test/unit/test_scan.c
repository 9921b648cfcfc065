/* ctfl_scan: tokenizer states, tag tokens and chunk invariance. */
#include "unit.h"
#include "ctfl_scan.h"

/* The tag's name fields agree with the input: lowercased, NUL-padded, and
 * hashed over the whole name however long. */
static void check_name(const char *in, const ctfl_tag *t)
{
    const char *n = in + t->lt + (t->kind == CTFL_TAG_END ? 2 : 1);
    char lower[256];
    size_t len = 0;
    while (len < sizeof(lower) && !strchr(" \t\n\f\r/>", n[len])) {
        lower[len] = (char)(n[len] >= 'A' && n[len] <= 'Z' ? n[len] + 32 : n[len]);
        len++;
    }
    assert_int_equal(t->name_hash, ctfl_scan_name_hash(lower, len));
    assert_int_equal(t->name_overflow, len > CTFL_TAG_NAME_MAX);
    if (!t->name_overflow) {
        assert_int_equal(t->name_len, len);
        assert_memory_equal(t->name, lower, len);
    }
    for (size_t i = t->name_len; i <= CTFL_TAG_NAME_MAX; i++)
        assert_int_equal(t->name[i], 0);
}

/* Tags of `in` as text: "<a>0-3 </b>5-9 <br/>..." (offsets '<' to after '>'),
 * with "!" after a foreign element and "*" after a marked one. Fed in chunks
 * of `chunk` bytes (0: all at once). */
static char *tags_of(apr_pool_t *p, const char *in, size_t n, size_t chunk, ctfl_scan *sc_out)
{
    ctfl_scan sc;
    char *out = apr_pstrdup(p, "");
    size_t done = 0;
    ctfl_scan_init(&sc);
    while (done < n || n == 0) {
        size_t len = chunk && n - done > chunk ? chunk : n - done, off = 0;
        const ctfl_tag *t;
        while ((t = ctfl_scan_next(&sc, in + done, len, &off)) != NULL) {
            check_name(in, t);
            out = apr_psprintf(p, "%s%s<%s%s%s>%" APR_UINT64_T_FMT "-%" APR_UINT64_T_FMT "%s%s", out, *out ? " " : "",
                               t->kind == CTFL_TAG_END ? "/" : "",
                               t->name_overflow ? "LONG" : t->name, t->self_closing ? "/" : "",
                               (apr_uint64_t)t->lt, (apr_uint64_t)t->end,
                               t->foreign ? "!" : "",
                               t->attrs & (CTFL_ATTR_BASELINE_ID | CTFL_ATTR_ENTRY_ID) ? "*" : "");
        }
        assert_int_equal(off, len);
        done += len;
        if (n == 0)
            break;
    }
    if (sc_out)
        *sc_out = sc;
    return out;
}

static const char *state_after(const char *in)
{
    static ctfl_scan sc;              /* the name is static text; sc just outlives the call */
    size_t off = 0, n = strlen(in);
    ctfl_scan_init(&sc);
    while (ctfl_scan_next(&sc, in, n, &off))
        ;
    return ctfl_scan_state_name(&sc);
}

static void test_states(void **state)
{
    static const struct { const char *in, *state; } cases[] = {
        { "", "data" },
        { "text", "data" },
        { "<", "tag-open" },
        { "</", "end-tag-open" },
        { "<a", "tag-name" },
        { "</a", "tag-name" },
        { "<a ", "before-attribute-name" },
        { "<a b", "attribute-name" },
        { "<a b ", "after-attribute-name" },
        { "<a b=", "before-attribute-value" },
        { "<a b=\"x>", "attribute-value-double-quoted" },
        { "<a b='x>", "attribute-value-single-quoted" },
        { "<a b=x", "attribute-value-unquoted" },
        { "<a b=\"x\"", "after-attribute-value-quoted" },
        { "<a /", "self-closing-start-tag" },
        { "<a>", "data" },
        { "< a", "data" },
        { "</>", "data" },
        { "</ x", "bogus-comment" },
        { "<!", "markup-declaration-open" },
        { "<!-", "markup-declaration-open" },
        { "<!--", "comment-start" },
        { "<!---", "comment-start-dash" },
        { "<!-->", "data" },
        { "<!--->", "data" },
        { "<!-- x", "comment" },
        { "<!-- x -", "comment-end-dash" },
        { "<!-- x --", "comment-end" },
        { "<!-- x ---", "comment-end" },
        { "<!-- x --!", "comment-end-bang" },
        { "<!-- x --!>", "data" },
        { "<!-- x --!-", "comment-end-dash" },
        { "<!-- x -- >", "comment" },
        { "<!DOCTYPE html", "bogus-comment" },
        { "<!DOCTYPE html>", "data" },
        { "<?php", "bogus-comment" },
        { "<![CDATA[x", "bogus-comment" },
        { "<svg><![CDATA[x", "cdata-section" },
        { "<svg><![CDATA[x]", "cdata-section-bracket" },
        { "<svg><![CDATA[x]]", "cdata-section-end" },
        { "<svg><![CDATA[x]]]", "cdata-section-end" },
        { "<svg><![CDATA[x]]>", "data" },
        { "<script>", "script-data" },
        { "<SCRIPT type=x>a", "script-data" },
        { "<script>a<", "text-less-than-sign" },
        { "<script>a</", "text-end-tag-open" },
        { "<script>a</scr", "text-end-tag-name" },
        { "<script>a</scrx", "script-data" },
        { "<script>a</script", "text-end-tag-name" },
        { "<script>a</script ", "before-attribute-name" },
        { "<script>a</script>", "data" },
        { "<script>a<!", "script-data-escape-start" },
        { "<script>a<!-", "script-data-escape-start-dash" },
        { "<script>a<!-x", "script-data" },
        { "<script><!--", "script-data-escaped-dash-dash" },
        { "<script><!-- x", "script-data-escaped" },
        { "<script><!-- x-", "script-data-escaped-dash" },
        { "<script><!-- x<", "script-data-escaped-less-than-sign" },
        { "<script><!-- <scr", "script-data-double-escape-start" },
        { "<script><!-- <script>", "script-data-double-escaped" },
        { "<script><!-- <scripts>", "script-data-escaped" },
        { "<script><!-- <script> -", "script-data-double-escaped-dash" },
        { "<script><!-- <script> --", "script-data-double-escaped-dash-dash" },
        { "<script><!-- <script> <", "script-data-double-escaped-less-than-sign" },
        { "<script><!-- <script> </scr", "script-data-double-escape-end" },
        { "<script><!-- <script> </script>", "script-data-escaped" },
        { "<script><!-- <script> </script> --", "script-data-escaped-dash-dash" },
        { "<script><!-- <script> -->", "script-data" },
        { "<script><!-- </script>", "data" },
        { "<script><!-- </", "text-end-tag-open" },
        { "<script><!-- </x", "script-data-escaped" },
        { "<script><!-- -->", "script-data" },
        { "<style>", "rawtext" },
        { "<style><!--", "rawtext" },
        { "<xmp>", "rawtext" },
        { "<iframe>", "rawtext" },
        { "<noembed>", "rawtext" },
        { "<noframes>", "rawtext" },
        { "<noscript>", "rawtext" },
        { "<title>", "rcdata" },
        { "<textarea>", "rcdata" },
        { "<textarea></textare", "text-end-tag-name" },
        { "<textarea></textarea>", "data" },
        { "<title></titlex>", "rcdata" },
        { "<plaintext>", "plaintext" },
        { "<plaintext></plaintext>", "plaintext" },
        { "<svg><title>", "data" },
        { "<svg><style>", "data" },
        { "<svg><p><style>", "rawtext" },
        { "<svg><font color=red><title>", "rcdata" },
        { "<svg><font><title>", "data" },
        { "<math><mi><svg></svg><textarea>", "data" },
        { "<math></math><textarea>", "rcdata" },
        { "<svg/><title>", "rcdata" },
        { "<svg></p><title>", "rcdata" },
        { "<script/>", "script-data" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = state_after(cases[i].in);
        if (strcmp(got, cases[i].state)) {
            print_error("after \"%s\": state %s, want %s\n", cases[i].in, got, cases[i].state);
            fail();
        }
    }
}

static void test_tags(void **state)
{
    static const struct { const char *in, *tags; } cases[] = {
        { "<a href=x>t</a>", "<a>0-10 </a>11-15" },
        { "<A HREF='>'>", "<a>0-12" },
        { "<br/><br / ><img a=b/>", "<br/>0-5 <br>5-12 <img>12-22" },
        { "<div a=\"1\"b='2'c=3 d>", "<div>0-21" },
        { "<p =x>", "<p>0-6" },
        { "</p a=\">\">", "</p>0-10" },
        { "<!-- <a> --><b>", "<b>12-15" },
        { "<!--><a><!---><b>", "<a>5-8 <b>14-17" },
        { "<!-- --!><a>", "<a>9-12" },
        { "<!DOCTYPE a \"b>\"><c>", "<c>17-20" },
        { "<?x <a> ?><b>", "<b>10-13" },
        { "<script>if(a<b)</script ><p>", "<script>0-8 </script>15-25 <p>25-28" },
        { "<style>a</style x=\"</style>\">", "<style>0-7 </style>8-29" },
        { "<title><b></title>", "<title>0-7 </title>10-18" },
        { "<textarea></TEXTAREA/>", "<textarea>0-10 </textarea/>10-22" },
        { "<svg viewBox='0'><circle/><foreignObject></svg><p>",
          "<svg>0-17! <circle/>17-26! <foreignobject>26-41! </svg>41-47! <p>47-50" },
        { "<svg><b>x</b></svg>", "<svg>0-5! <b>5-8 </b>9-13 </svg>13-19" },
        { "<math><svg><rect/></svg><mi></math><p>",
          "<math>0-6! <svg>6-11! <rect/>11-18! </svg>18-24! <mi>24-28! </math>28-35! <p>35-38" },
        { "<div DATA-CTFL-BASELINE-ID=x><span data-ctfl-entry-id='y'><i data-ctfl-entry>",
          "<div>0-29* <span>29-58* <i>58-77" },
        { "<averyveryverylongelementname>", "<LONG>0-30" },
        { "<a", "" },
        { "<a b='>", "" },
        { "<plaintext><a>", "<plaintext>0-11" },
        { "<script><!--<script></script>x</script>--></script><a>",
          "<script>0-8 </script>30-39 </script>42-51 <a>51-54" },
    };
    apr_pool_t *p = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].in);
        const char *whole = tags_of(p, cases[i].in, n, 0, NULL);
        if (strcmp(whole, cases[i].tags)) {
            print_error("\"%s\":\n got  %s\n want %s\n", cases[i].in, whole, cases[i].tags);
            fail();
        }
        for (size_t c = 1; c <= 3; c++)
            assert_string_equal(tags_of(p, cases[i].in, n, c, NULL), whole);
    }
}

/* The data-ctfl-* attributes the rewriter acts on are noticed on their exact
 * names, in any case and with any value form; near misses are not. */
static void test_ctfl_attrs(void **state)
{
    static const struct { const char *tag; unsigned attrs; } cases[] = {
        { "<p data-ctfl-flag=k>", CTFL_ATTR_FLAG },
        { "<p DATA-CTFL-FLAG-IF='k'>", CTFL_ATTR_FLAG_IF },
        { "<p data-ctfl-flag>", CTFL_ATTR_FLAG },
        { "<p x data-ctfl-flag-if = \"a b\" data-ctfl-flag=\"\">", CTFL_ATTR_FLAG | CTFL_ATTR_FLAG_IF },
        { "<div data-ctfl-baseline-id=a data-ctfl-flag-if=k>", CTFL_ATTR_BASELINE_ID | CTFL_ATTR_FLAG_IF },
        { "<i data-ctfl-entry-id=a data-ctfl-flag=k/>", CTFL_ATTR_ENTRY_ID | CTFL_ATTR_FLAG },
        { "<p data-ctfl-flags=k data-ctfl-flag-i=k data-ctfl-flag-iff=k data-ctfl-fla=k>", 0 },
        { "<p data-ctfl-field=k data-ctfl-variant-id=v title=data-ctfl-flag>",
          CTFL_ATTR_FIELD | CTFL_ATTR_VARIANT_ID },
        { "<img Data-Ctfl-Field-Attr=src data-ctfl-field>", CTFL_ATTR_FIELD | CTFL_ATTR_FIELD_ATTR },
        { "<p data-ctfl-fields=k data-ctfl-field-att=k data-ctfl-variant-ids=k>", 0 },
        { "<p data-ctfl-flag-if-and-more-than-24-bytes=k>", 0 },
        { "<font COLOR=red Face=x size>", CTFL_ATTR_FONT_BREAK },
        { "<font colors=red =face sizes>", 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].tag);
        /* whole, then split in two at every offset, then a byte at a time */
        for (size_t split = n; split >= 1; split--) {
            for (int bytewise = 0; bytewise < (split == 1 ? 2 : 1); bytewise++) {
                ctfl_scan sc;
                const ctfl_tag *t = NULL;
                size_t from = 0;
                ctfl_scan_init(&sc);
                while (!t && from < n) {
                    size_t len = bytewise ? 1 : from ? n - from : split, off = 0;
                    t = ctfl_scan_next(&sc, cases[i].tag + from, len, &off);
                    from += len;
                }
                assert_non_null(t);
                assert_int_equal(t->end, n);
                if (t->attrs != cases[i].attrs)
                    fail_msg("%s (split at %zu%s): attrs %#x, want %#x", cases[i].tag, split,
                             bytewise ? ", bytewise" : "", t->attrs, cases[i].attrs);
            }
        }
    }
}

/* ctfl_scan_in_tag()/tag_start() mark exactly the bytes a caller must hold. */
static void test_in_tag(void **state)
{
    static const struct { const char *in; int in_tag; unsigned start; } cases[] = {
        { "abc", 0, 0 }, { "ab<", 1, 2 }, { "ab</", 1, 2 }, { "ab<x y='>", 1, 2 },
        { "ab<!", 0, 0 }, { "ab<!--<a", 0, 0 }, { "<a>b", 0, 0 },
        { "<script>x</scr", 1, 9 }, { "<script>x<", 1, 9 }, { "<script>x<!", 0, 0 },
        { "<script><!--x<", 1, 13 }, { "<script><!--<script>x<", 0, 0 },
        { "<title>x</ti", 1, 8 }, { "<title>x</tx", 0, 0 }, { "<plaintext><", 0, 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ctfl_scan sc;
        size_t off = 0, n = strlen(cases[i].in);
        ctfl_scan_init(&sc);
        while (ctfl_scan_next(&sc, cases[i].in, n, &off))
            ;
        if (ctfl_scan_in_tag(&sc) != cases[i].in_tag
            || (cases[i].in_tag && ctfl_scan_tag_start(&sc) != cases[i].start)) {
            print_error("\"%s\": in_tag %d start %llu\n", cases[i].in, ctfl_scan_in_tag(&sc),
                        (unsigned long long)ctfl_scan_tag_start(&sc));
            fail();
        }
        assert_int_equal(sc.pos, n);
    }
}

/* A page of every construct, scanned in every 2-way split and in 1..9-byte
 * chunks: always the same tags. */
static void test_chunk_invariance(void **state)
{
    static const char page[] =
        "<!DOCTYPE html><html><head><title>a </head> b</title>"
        "<script>var s = '</div>'; if (a<b && c>d) x--; <!-- <script> </script> --> y</script>"
        "<style>p > a { content: \"</p>\" }</style><meta content='x>y' charset=utf-8>"
        "<!-- c --!><!--><!---><!----><?pi <x> ?></head>"
        "<body><div data-ctfl-baseline-id=\"b1\" class=x>old <b>bold</b></div>"
        "<svg viewBox=\"0 0 1 1\"><![CDATA[ <a> ]]><title><p x></title><rect/></svg>"
        "<textarea></textarea ></textarea><xmp><b></xmp><noscript><i></noscript>"
        "<p title=unq>a<br/>b</p ></body></html>\xff\x00<b>";
    apr_pool_t *p = *state;
    size_t n = sizeof(page) - 1;
    const char *whole = tags_of(p, page, n, 0, NULL);

    assert_true(strlen(whole) > 200);
    for (size_t c = 1; c < 10; c++)
        assert_string_equal(tags_of(p, page, n, c, NULL), whole);
    for (size_t k = 1; k < n; k++) {
        ctfl_scan sc;
        size_t off = 0;
        const ctfl_tag *t;
        char *got = apr_pstrdup(p, "");
        ctfl_scan_init(&sc);
        for (int part = 0; part < 2; part++) {
            const char *d = part ? page + k : page;
            size_t len = part ? n - k : k;
            off = 0;
            while ((t = ctfl_scan_next(&sc, d, len, &off)) != NULL)
                got = apr_psprintf(p, "%s%s<%s%s%s>%" APR_UINT64_T_FMT "-%" APR_UINT64_T_FMT "%s%s", got, *got ? " " : "",
                                   t->kind == CTFL_TAG_END ? "/" : "",
                                   t->name_overflow ? "LONG" : t->name, t->self_closing ? "/" : "",
                                   (apr_uint64_t)t->lt, (apr_uint64_t)t->end,
                                   t->foreign ? "!" : "",
                                   t->attrs & (CTFL_ATTR_BASELINE_ID | CTFL_ATTR_ENTRY_ID) ? "*" : "");
        }
        assert_string_equal(got, whole);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states),
        cmocka_unit_test_setup_teardown(test_tags, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test(test_ctfl_attrs),
        cmocka_unit_test(test_in_tag),
        cmocka_unit_test_setup_teardown(test_chunk_invariance, unit_pool_setup, unit_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
