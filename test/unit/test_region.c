/* Unit tests for ctfl_region: one marked element in, its replacement out.
 * Synthetic entries: test/unit/data/region/entries.json (baseline regBase with
 * experience regExp: variant 1 = regVarA with fields of every type, 2 = the
 * empty variant, 3 = regVarB, 4 = a variant missing from nt_variants), plus the
 * §9.6 nested fixtures for the three-level case. */
#include "unit.h"
#include "value_helpers.h"
#include <apr_hash.h>
#include "ctfl_region.h"
#include "ctfl_entries.h"
#include "ctfl_json.h"
#include "ctfl_json_value.h"
#include "ctfl_scan.h"
#include "ctfl_rewrite.h"

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
    apr_pool_t *p;
    ctfl_entries *entries;
    apr_hash_t *assets;
    int lookups;
    ctfl_region_env env;
} fx;

static const ctfl_value *lookup_entry(void *ctx, const char *id)
{
    fx *f = ctx;
    f->lookups++;
    return ctfl_entries_entry(f->entries, id);
}

static const ctfl_value *lookup_asset(void *ctx, const char *id)
{
    return apr_hash_get(((fx *)ctx)->assets, id, APR_HASH_KEY_STRING);
}

static void add_response(fx *f, const char *path)
{
    const char *err = NULL;
    if (ctfl_entries_add_response(f->entries, parse_file(f->p, path), &err) != 0) fail_msg("%s: %s", path, err);
}

static ctfl_value *experience_fixture(apr_pool_t *p, const char *name)
{
    return parse_file(p, apr_psprintf(p, "%s/fixtures/experience/%s", unit_shared_dir(), name));
}

/* The §4.4 flags of an Experience fixture, through the real decoder. */
static const ctfl_value *fixture_flags(apr_pool_t *p, const char *name)
{
    const char *path = apr_psprintf(p, "%s/fixtures/experience/%s", unit_shared_dir(), name);
    apr_size_t len = 0;
    char *body = unit_read_file(p, path, &len);
    ctfl_experience_data *d = NULL;
    const char *err = NULL;
    if (!body || ctfl_json_decode_experience(p, body, len, &d, &err) != 0) fail_msg("%s: %s", path, err);
    return parse(p, d->flags_json);
}

static apr_array_header_t *selections_of(apr_pool_t *p, const ctfl_value *experiences)
{
    apr_array_header_t *s = NULL;
    if (ctfl_selections_from_value(p, experiences, &s) != 0) fail_msg("bad selections");
    return s;
}

/* A personalized environment over the synthetic entries. */
static fx *fixture(apr_pool_t *p, const char *selections_json)
{
    fx *f = apr_pcalloc(p, sizeof(*f));
    f->p = p;
    f->entries = ctfl_entries_make(p);
    f->assets = apr_hash_make(p);
    add_response(f, apr_psprintf(p, "%s/region/entries.json", data_dir()));
    apr_hash_set(f->assets, "regAssetFar", APR_HASH_KEY_STRING,
                 parse_file(p, apr_psprintf(p, "%s/region/asset-far.json", data_dir())));
    f->env.personalize = 1;
    f->env.selections = selections_json ? selections_of(p, parse(p, selections_json)) : NULL;
    f->env.profile = ctfl_value_path(experience_fixture(p, "identified-visitor.json"), "data.profile");
    f->env.entry = lookup_entry;
    f->env.asset = lookup_asset;
    f->env.lookup_ctx = f;
    return f;
}

#define SEL(i) "[{\"experienceId\":\"regExp\",\"variantIndex\":" #i ",\"variants\":{}}]"

static apr_size_t start_tag_len(const char *html, apr_size_t len)
{
    ctfl_scan sc;
    apr_size_t off = 0;
    const ctfl_tag *t;
    ctfl_scan_init(&sc);
    t = ctfl_scan_next(&sc, html, len, &off);
    assert_non_null(t);
    return (apr_size_t)t->end;
}

/* The element's tags as the page's rewriter hands them over (they equal a scan
 * of the element alone: test_rewrite checks that). */
static const ctfl_tag *scanned_tags(apr_pool_t *p, const char *html, apr_size_t len, int *n)
{
    apr_array_header_t *a = apr_array_make(p, 16, sizeof(ctfl_tag));
    ctfl_scan sc;
    apr_size_t off = 0;
    const ctfl_tag *t;
    ctfl_scan_init(&sc);
    while ((t = ctfl_scan_next(&sc, html, len, &off)) != NULL)
        APR_ARRAY_PUSH(a, ctfl_tag) = *t;
    *n = a->nelts;
    return (const ctfl_tag *)a->elts;
}

/* One libxml2 context kept across every element of every test, as the filter
 * keeps one per page: each element must come out as with a context of its own. */
static ctfl_region_parser *kept_parser;

static void same_with_kept_parser(fx *f, const char *html, apr_size_t len, const char *charset)
{
    apr_size_t tag_len = start_tag_len(html, len), a_len = 0, b_len = 0;
    const char *ra = NULL, *rb = NULL, *a = NULL, *b = NULL;
    int lookups = f->lookups, ntags = 0;    /* the tests count the caller's lookups */
    const ctfl_tag *tags = scanned_tags(f->p, html, len, &ntags);
    ctfl_region *fresh = ctfl_region_parse(f->p, html, len, tag_len, charset, &ra);
    ctfl_region *kept = ctfl_region_parse_with(kept_parser, f->p, html, len, tag_len, charset,
                                               tags, ntags, &rb);
    assert_true((fresh == NULL) == (kept == NULL));
    if (!fresh) {
        assert_string_equal(ra, rb);
        return;
    }
    assert_int_equal(ctfl_region_rewrite(fresh, &f->env, &a, &a_len, NULL),
                     ctfl_region_rewrite(kept, &f->env, &b, &b_len, NULL));
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    f->lookups = lookups;
}

/* Rewrite one element (len bytes); the output as a NUL-terminated string. */
static const char *rewrite_n(fx *f, const char *html, apr_size_t len, const char *charset,
                             ctfl_region_status *status, ctfl_region_report *rep)
{
    const char *out = NULL;
    apr_size_t out_len = 0;
    ctfl_region_report local;
    ctfl_region_status st = ctfl_region_rewrite_element(f->p, html, len, start_tag_len(html, len),
                                                        charset, &f->env, &out, &out_len,
                                                        rep ? rep : &local);
    same_with_kept_parser(f, html, len, charset);
    if (status) *status = st;
    return apr_pstrmemdup(f->p, out, out_len);
}

static const char *rewrite(fx *f, const char *html, ctfl_region_report *rep)
{
    ctfl_region_status st;
    const char *out = rewrite_n(f, html, strlen(html), "utf-8", &st, rep);
    if (st != CTFL_REGION_REWRITTEN)
        fail_msg("kept (%s): %s", rep ? rep->reason : "?", html);
    return out;
}

static const ctfl_region_element *item(const ctfl_region_report *rep, int i)
{
    assert_true(i < rep->elements->nelts);
    return &APR_ARRAY_IDX(rep->elements, i, ctfl_region_element);
}

/* ---- attributes ------------------------------------------------------------ */

static void test_attributes_without_personalization(void **state)
{
    fx *f = fixture(*state, SEL(1));
    ctfl_region_report rep;
    f->env.personalize = 0;
    assert_string_equal(
        rewrite(f, "<div class=\"x\" data-ctfl-baseline-id=\"regBase\">Origin <b>content</b></div>", &rep),
        "<div class=\"x\" data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regBase\""
        " data-ctfl-variant-index=\"0\">Origin <b>content</b></div>");
    assert_int_equal(f->lookups, 0);
    assert_int_equal(rep.elements->nelts, 1);
    assert_false(item(&rep, 0)->resolved);
    assert_string_equal(item(&rep, 0)->entry_id, "regBase");
}

static void test_attribute_splice_keeps_case_and_quoting(void **state)
{
    fx *f = fixture(*state, "[{\"experienceId\":\"regExp\",\"variantIndex\":1,\"sticky\":true,\"variants\":{}}]");
    ctfl_region_report rep;
    /* only data-ctfl-entry-id: a baseline with that id; names' case, the other
     * attributes' quoting and order stay; the replaced value is re-quoted */
    assert_string_equal(
        rewrite(f, "<DIV Class=x DATA-CTFL-ENTRY-ID='regBase' data-ctfl-variant-index=7 ID=\"a\">t</DIV>", &rep),
        "<DIV Class=x DATA-CTFL-ENTRY-ID=\"regVarA\" data-ctfl-variant-index=\"1\" ID=\"a\""
        " data-ctfl-baseline-id=\"regBase\" data-ctfl-optimization-id=\"regExp\""
        " data-ctfl-sticky=\"true\">t</DIV>");
    assert_true(item(&rep, 0)->resolved);
    assert_int_equal(item(&rep, 0)->outcome, CTFL_RES_VARIANT);
    assert_string_equal(item(&rep, 0)->entry_id, "regVarA");
    assert_string_equal(item(&rep, 0)->experience_id, "regExp");

    /* "/>" : inserted before the slash; an unquoted value ending in '/' keeps it */
    f->env.personalize = 0;
    assert_string_equal(rewrite(f, "<img data-ctfl-entry-id=\"regBase\" />", NULL),
                        "<img data-ctfl-entry-id=\"regBase\"  data-ctfl-baseline-id=\"regBase\""
                        " data-ctfl-variant-index=\"0\"/>");
    assert_string_equal(rewrite(f, "<img data-ctfl-entry-id=regBase src=a/>", NULL),
                        "<img data-ctfl-entry-id=regBase src=a/ data-ctfl-baseline-id=\"regBase\""
                        " data-ctfl-variant-index=\"0\">");
    /* valueless and '=' with spaces */
    assert_string_equal(rewrite(f, "<p data-ctfl-entry-id = \"regBase\" data-ctfl-variant-index>x</p>", NULL),
                        "<p data-ctfl-entry-id = \"regBase\" data-ctfl-variant-index=\"0\""
                        " data-ctfl-baseline-id=\"regBase\">x</p>");
    /* a duplicate: the first occurrence is the attribute (as in browsers) */
    assert_string_equal(rewrite(f, "<p data-ctfl-baseline-id=regBase data-ctfl-entry-id=a data-ctfl-entry-id=b>x</p>", NULL),
                        "<p data-ctfl-baseline-id=regBase data-ctfl-entry-id=\"regBase\" data-ctfl-entry-id=b"
                        " data-ctfl-variant-index=\"0\">x</p>");
    /* entity in the id: decoded by libxml2, same value: bytes untouched */
    assert_string_equal(rewrite(f, "<p data-ctfl-baseline-id=\"reg&#66;ase\">x</p>", NULL),
                        "<p data-ctfl-baseline-id=\"reg&#66;ase\" data-ctfl-entry-id=\"regBase\""
                        " data-ctfl-variant-index=\"0\">x</p>");
}

static void test_stale_attributes_dropped(void **state)
{
    fx *f = fixture(*state, NULL);
    assert_string_equal(
        rewrite(f, "<div data-ctfl-optimization-id=\"old\" data-ctfl-baseline-id=\"regBase\"\n"
                   "  data-ctfl-sticky=true data-ctfl-empty-variant data-x=1>c</div>", NULL),
        "<div data-ctfl-baseline-id=\"regBase\" data-x=1 data-ctfl-entry-id=\"regBase\""
        " data-ctfl-variant-index=\"0\">c</div>");
}

static void test_invalid_id_not_stamped(void **state)
{
    fx *f = fixture(*state, SEL(1));
    ctfl_region_report rep;
    const char *in = "<div data-ctfl-baseline-id=\"bad id!\">x<template data-ctfl-variant-id=regVarA>A</template></div>";
    assert_string_equal(rewrite(f, in, &rep), "<div data-ctfl-baseline-id=\"bad id!\">x</div>");
    assert_null(item(&rep, 0)->baseline_id);
    assert_null(item(&rep, 0)->entry_id);
    assert_int_equal(f->lookups, 0);
}

/* ---- templates and empty variants ---------------------------------------------- */

#define TPL_PAGE "<section data-ctfl-baseline-id=\"regBase\"><h2>Baseline</h2>\n" \
    "<template data-ctfl-variant-id=\"regVarA\"><h2>A</h2></template>" \
    "<template data-ctfl-variant-id=\"regVarB\"><h2>B <template>inner</template></h2></template>\n</section>"

static void test_template_variant_chosen(void **state)
{
    fx *f = fixture(*state, SEL(3));
    ctfl_region_report rep;
    assert_string_equal(rewrite(f, TPL_PAGE, &rep),
                        "<section data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regVarB\""
                        " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"3\">"
                        "<h2>B <template>inner</template></h2></section>");
    assert_int_equal(item(&rep, 0)->content, CTFL_REGION_TEMPLATE);
    assert_int_equal(rep.templates_removed, 2);
}

static void test_templates_removed_in_every_branch(void **state)
{
    apr_pool_t *p = *state;
    const char *base = "<h2>Baseline</h2>\n\n</section>";
    const char *cases[][2] = {
        { NULL, "" },                                  /* no selection */
        { SEL(0), " data-ctfl-optimization-id=\"regExp\"" },   /* variantIndex 0 */
        { SEL(4), " data-ctfl-optimization-id=\"regExp\"" },   /* variant not in nt_variants */
        { SEL(9), " data-ctfl-optimization-id=\"regExp\"" },   /* out of range */
    };
    const char *idx[] = { "0", "0", "4", "9" };
    for (unsigned i = 0; i < 4; i++) {
        fx *f = fixture(p, cases[i][0]);
        ctfl_region_report rep;
        const char *want = apr_pstrcat(p, "<section data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regBase\"",
                                       cases[i][1], " data-ctfl-variant-index=\"", idx[i], "\">", base, NULL);
        assert_string_equal(rewrite(f, TPL_PAGE, &rep), want);
        assert_int_equal(item(&rep, 0)->content, CTFL_REGION_ORIGIN);
        assert_int_equal(rep.templates_removed, 2);
    }
    /* variant A chosen but no template for it: baseline content, templates gone */
    {
        fx *f = fixture(p, SEL(1));
        const char *in = "<div data-ctfl-baseline-id=\"regBase\">base<template data-ctfl-variant-id=\"regVarB\">B</template></div>";
        assert_string_equal(rewrite(f, in, NULL),
                            "<div data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regVarA\""
                            " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"1\">base</div>");
    }
    /* no consent, entry unavailable: templates still removed */
    {
        fx *f = fixture(p, SEL(3));
        f->env.personalize = 0;
        assert_string_equal(rewrite(f, TPL_PAGE, NULL),
                            apr_pstrcat(p, "<section data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regBase\""
                                        " data-ctfl-variant-index=\"0\">", base, NULL));
        f = fixture(p, SEL(3));
        f->env.entry = NULL;
        assert_string_equal(rewrite(f, TPL_PAGE, NULL),
                            apr_pstrcat(p, "<section data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regBase\""
                                        " data-ctfl-variant-index=\"0\">", base, NULL));
    }
    /* a template that is not a direct child is not a variant: it stays */
    {
        fx *f = fixture(p, NULL);
        const char *in = "<div data-ctfl-baseline-id=\"regBase\"><p>x<template data-ctfl-variant-id=\"regVarA\">A</template></p></div>";
        assert_string_equal(rewrite(f, in, NULL),
                            "<div data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regBase\" data-ctfl-variant-index=\"0\">"
                            "<p>x<template data-ctfl-variant-id=\"regVarA\">A</template></p></div>");
    }
}

static void test_empty_variant(void **state)
{
    fx *f = fixture(*state, SEL(2));
    ctfl_region_report rep;
    assert_string_equal(rewrite(f, TPL_PAGE, &rep),
                        "<section data-ctfl-baseline-id=\"regBase\" data-ctfl-empty-variant=\"true\""
                        " data-ctfl-entry-id=\"regBase\" data-ctfl-optimization-id=\"regExp\""
                        " data-ctfl-variant-index=\"2\"></section>");
    assert_int_equal(item(&rep, 0)->content, CTFL_REGION_EMPTY);
    assert_int_equal(item(&rep, 0)->outcome, CTFL_RES_EMPTY_VARIANT);
    /* an element ended implicitly has no end tag: only the start tag is left */
    assert_string_equal(rewrite(f, "<li data-ctfl-baseline-id=regBase>baseline <b>x</b>", NULL),
                        "<li data-ctfl-baseline-id=regBase data-ctfl-empty-variant=\"true\""
                        " data-ctfl-entry-id=\"regBase\" data-ctfl-optimization-id=\"regExp\""
                        " data-ctfl-variant-index=\"2\">");
}

/* ---- field binding --------------------------------------------------------- */

static void test_field_binding_variant(void **state)
{
    fx *f = fixture(*state, SEL(1));
    ctfl_region_report rep;
    const char *in =
        "<article data-ctfl-baseline-id=\"regBase\">"
        "<h2 data-ctfl-field=\"title\">Baseline title</h2>"
        "<div data-ctfl-field=\"body\"><p>Baseline body</p></div>"
        "<span data-ctfl-field=\"count\">0</span><span data-ctfl-field=\"ratio\">0</span>"
        "<span data-ctfl-field=\"big\">0</span><span data-ctfl-field=\"active\">x</span>"
        "<span data-ctfl-field=\"off\">x</span><span data-ctfl-field=\"nothing\">x</span>"
        "<span data-ctfl-field=\"missing\">gone</span><pre data-ctfl-field=\"data\">x</pre>"
        "<ul data-ctfl-field=\"nested\"><li>kept</li></ul>"
        "<img data-ctfl-field=\"image\" data-ctfl-field-attr=\"src\" SRC='/old.jpg' alt=\"x\">"
        "<img data-ctfl-field=\"far\" data-ctfl-field-attr=\"src\">"
        "<a data-ctfl-field=\"url\" data-ctfl-field-attr=\"HREF\">link <b>text</b></a>"
        "<a data-ctfl-field=\"bad\" data-ctfl-field-attr=\"href\" href=\"/safe\">x</a>"
        "<a data-ctfl-field=\"title\" data-ctfl-field-attr=\"onclick\">x</a>"
        "</article>";
    assert_string_equal(rewrite(f, in, &rep),
        "<article data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regVarA\""
        " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"1\">"
        "<h2 data-ctfl-field=\"title\">Caf\xc3\xa9 &lt;b&gt;&quot;quoted&quot;&lt;/b&gt; &amp; &#39;x&#39; \xe2\x82\xac \xe2\x9c\x93</h2>"
        "<div data-ctfl-field=\"body\"><p>Hello EU<b>!</b></p><p>a&lt;b<span>type: embedded-entry-inline id: regVarB</span></p></div>"
        "<span data-ctfl-field=\"count\">42</span><span data-ctfl-field=\"ratio\">0.30000000000000004</span>"
        "<span data-ctfl-field=\"big\">1e+21</span><span data-ctfl-field=\"active\">true</span>"
        "<span data-ctfl-field=\"off\">false</span><span data-ctfl-field=\"nothing\"></span>"
        "<span data-ctfl-field=\"missing\"></span>"
        "<pre data-ctfl-field=\"data\">{&quot;k&quot;:[1,&quot;two&quot;,null],&quot;q&quot;:&quot;&lt;\\&quot;&amp;&gt;&quot;}</pre>"
        "<ul data-ctfl-field=\"nested\"><li>kept</li></ul>"
        "<img data-ctfl-field=\"image\" data-ctfl-field-attr=\"src\" SRC=\"https://images.ctfassets.net/space/regAsset/abc/photo.jpg\" alt=\"x\">"
        "<img data-ctfl-field=\"far\" data-ctfl-field-attr=\"src\" src=\"https://assets.example.com/far.png\">"
        "<a data-ctfl-field=\"url\" data-ctfl-field-attr=\"HREF\" href=\"https://cdn.example.com/a.png\">link <b>text</b></a>"
        "<a data-ctfl-field=\"bad\" data-ctfl-field-attr=\"href\" href=\"/safe\">x</a>"
        "<a data-ctfl-field=\"title\" data-ctfl-field-attr=\"onclick\">x</a>"
        "</article>");
    assert_int_equal(item(&rep, 0)->content, CTFL_REGION_ORIGIN);
    assert_int_equal(item(&rep, 0)->fields_bound, 13);     /* 10 contents, 3 attributes */
    assert_int_equal(rep.fields_bound, 13);
}

static void test_field_binding_baseline_keeps_origin(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, NULL);
    const char *in = "<div data-ctfl-baseline-id=\"regBase\"><h2 data-ctfl-field=\"title\">Origin title</h2>"
                     "<div data-ctfl-field=\"body\"><p>Origin body</p></div></div>";
    assert_string_equal(rewrite(f, in, NULL),
                        "<div data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regBase\""
                        " data-ctfl-variant-index=\"0\"><h2 data-ctfl-field=\"title\">Origin title</h2>"
                        "<div data-ctfl-field=\"body\"><p>Origin body</p></div></div>");
    /* ... except Rich Text with merge tags: the origin cannot know the profile */
    assert_string_equal(rewrite(f, "<div data-ctfl-entry-id=\"regMergeBase\"><div data-ctfl-field=\"body\">"
                                   "<p>Continent: ?</p></div></div>", NULL),
                        "<div data-ctfl-entry-id=\"regMergeBase\" data-ctfl-baseline-id=\"regMergeBase\""
                        " data-ctfl-variant-index=\"0\"><div data-ctfl-field=\"body\"><p>Continent: EU.</p></div></div>");
    f->env.profile = parse(p, "{}");                  /* not a valid profile: the fallback */
    assert_string_equal(rewrite(f, "<div data-ctfl-entry-id=\"regMergeBase\" data-ctfl-field=\"body\">?</div>", NULL),
                        "<div data-ctfl-entry-id=\"regMergeBase\" data-ctfl-field=\"body\" data-ctfl-baseline-id=\"regMergeBase\""
                        " data-ctfl-variant-index=\"0\"><p>Continent: Nowhere.</p></div>");
    /* Rich Text without merge tags on the baseline: origin */
    assert_string_equal(rewrite(f, "<div data-ctfl-entry-id=\"regPlain\"><div data-ctfl-field=\"body\">origin</div></div>", NULL),
                        "<div data-ctfl-entry-id=\"regPlain\" data-ctfl-baseline-id=\"regPlain\""
                        " data-ctfl-variant-index=\"0\"><div data-ctfl-field=\"body\">origin</div></div>");
}

/* The probe's marker must not change how the rest of a tag reads: after a bare
 * attribute, a following "=..." attribute (whitespace, then '=') would become
 * its value, and here a quote in it would swallow the next tags. Found by
 * fuzz_region (the replayed tags and the probe's bytes disagreed). */
static void test_probe_marker_keeps_tokenization(void **state)
{
    fx *f = fixture(*state, NULL);
    assert_string_equal(rewrite(f, "<div data-ctfl-entry-id=\"regMergeBase\"><div =\"x data-ctfl-field=body>"
                                   "?</div><i>\"</i></div>", NULL),
                        "<div data-ctfl-entry-id=\"regMergeBase\" data-ctfl-baseline-id=\"regMergeBase\""
                        " data-ctfl-variant-index=\"0\"><div =\"x data-ctfl-field=body>"
                        "<p>Continent: EU.</p></div><i>\"</i></div>");
}

/* A field belongs to the nearest marked element: inside a nested one it is
 * that one's field; the marked element itself may bind an attribute. */
static void test_field_owner(void **state)
{
    fx *f = fixture(*state, SEL(1));
    ctfl_region_report rep;
    assert_string_equal(
        rewrite(f, "<div data-ctfl-baseline-id=regBase><b data-ctfl-field=count>0</b>"
                   "<div data-ctfl-entry-id=regInner><span data-ctfl-field=title>inner origin</span></div>"
                   "<img data-ctfl-baseline-id=regBase data-ctfl-field=image data-ctfl-field-attr=src src=old.png></div>", &rep),
        "<div data-ctfl-baseline-id=regBase data-ctfl-entry-id=\"regVarA\" data-ctfl-optimization-id=\"regExp\""
        " data-ctfl-variant-index=\"1\"><b data-ctfl-field=count>42</b>"
        "<div data-ctfl-entry-id=regInner data-ctfl-baseline-id=\"regInner\" data-ctfl-variant-index=\"0\">"
        "<span data-ctfl-field=title>inner origin</span></div>"
        "<img data-ctfl-baseline-id=regBase data-ctfl-field=image data-ctfl-field-attr=src"
        " src=\"https://images.ctfassets.net/space/regAsset/abc/photo.jpg\" data-ctfl-entry-id=\"regVarA\""
        " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"1\"></div>");
    assert_int_equal(rep.elements->nelts, 3);
    assert_int_equal(item(&rep, 0)->fields_bound, 1);
    assert_int_equal(item(&rep, 1)->fields_bound, 0);
    assert_int_equal(item(&rep, 1)->outcome, CTFL_RES_NO_OPTIMIZATION);
    assert_int_equal(item(&rep, 2)->fields_bound, 1);
}

/* Field elements whose content (or whose own end) relies on implied end tags. */
static void test_field_implied_ends(void **state)
{
    fx *f = fixture(*state, SEL(3));
    const char *stamp = "<div data-ctfl-baseline-id=regBase data-ctfl-entry-id=\"regVarB\""
                        " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"3\">";
    assert_string_equal(rewrite(f, "<div data-ctfl-baseline-id=regBase><div data-ctfl-field=title><p>old<br><img src=x></div>"
                                   "<ul><li data-ctfl-field=title>a<li>b</ul><table><tr><td data-ctfl-field=title>a<td>b</table>"
                                   "<p><span data-ctfl-field=title>x</p>after</div>", NULL),
                        apr_pstrcat(*state, stamp, "<div data-ctfl-field=title>Variant B title</div>"
                                    "<ul><li data-ctfl-field=title>Variant B title<li>b</ul>"
                                    "<table><tr><td data-ctfl-field=title>Variant B title<td>b</table>"
                                    "<p><span data-ctfl-field=title>Variant B title</p>after</div>", NULL));
}

static void test_entry_unavailable_keeps_origin(void **state)
{
    fx *f = fixture(*state, SEL(1));
    ctfl_region_report rep;
    const char *in = "<div data-ctfl-baseline-id=\"unknownEntry\"><h2 data-ctfl-field=\"title\">Origin</h2>"
                     "<template data-ctfl-variant-id=\"x\">X</template></div>";
    assert_string_equal(rewrite(f, in, &rep),
                        "<div data-ctfl-baseline-id=\"unknownEntry\" data-ctfl-entry-id=\"unknownEntry\""
                        " data-ctfl-variant-index=\"0\"><h2 data-ctfl-field=\"title\">Origin</h2></div>");
    assert_int_equal(f->lookups, 1);
    assert_false(item(&rep, 0)->resolved);
    assert_int_equal(rep.fields_bound, 0);
}

/* ---- flags ------------------------------------------------------------------- */

#define FLAG_PAGE "<div data-ctfl-entry-id=\"regBase\">" \
    "<span data-ctfl-flag=\"plain-text\">old</span><span data-ctfl-flag=\"number\">0</span>" \
    "<span data-ctfl-flag=\"json\">x</span><span data-ctfl-flag=\"boolean\">x</span>" \
    "<span data-ctfl-flag=\"absent\">x</span>" \
    "<p data-ctfl-flag-if=\"boolean\">shown</p><p data-ctfl-flag-if=\"absent\">hidden <b>x</b></p></div>"

static void test_flags(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, NULL);
    ctfl_region_report rep;
    const char *stamped = "<div data-ctfl-entry-id=\"regBase\" data-ctfl-baseline-id=\"regBase\" data-ctfl-variant-index=\"0\">";

    f->env.flags = fixture_flags(p, "identified-visitor.json");
    assert_string_equal(rewrite(f, FLAG_PAGE, &rep),
        apr_pstrcat(p, stamped,
        "<span data-ctfl-flag=\"plain-text\">Plain Text</span><span data-ctfl-flag=\"number\">12345</span>"
        "<span data-ctfl-flag=\"json\">{&quot;flag&quot;:true}</span><span data-ctfl-flag=\"boolean\">true</span>"
        "<span data-ctfl-flag=\"absent\"></span>"
        "<p data-ctfl-flag-if=\"boolean\">shown</p></div>", NULL));
    assert_int_equal(rep.flags_applied, 5);
    assert_int_equal(rep.removed, 1);

    /* the new visitor has no changes: {} */
    f->env.flags = fixture_flags(p, "new-visitor.json");
    assert_string_equal(rewrite(f, FLAG_PAGE, NULL),
        apr_pstrcat(p, stamped,
        "<span data-ctfl-flag=\"plain-text\"></span><span data-ctfl-flag=\"number\"></span>"
        "<span data-ctfl-flag=\"json\"></span><span data-ctfl-flag=\"boolean\"></span>"
        "<span data-ctfl-flag=\"absent\"></span></div>", NULL));

    /* no flags (no consent, failure): the origin's content, nothing removed */
    f->env.flags = NULL;
    assert_string_equal(rewrite(f, FLAG_PAGE, NULL),
                        apr_pstrcat(p, stamped, strchr(FLAG_PAGE, '>') + 1, NULL));
    f->env.flags = fixture_flags(p, "identified-visitor.json");
    f->env.personalize = 0;
    assert_string_equal(rewrite(f, FLAG_PAGE, NULL),
                        apr_pstrcat(p, stamped, strchr(FLAG_PAGE, '>') + 1, NULL));
}

static void test_flag_truthiness_and_hostile_values(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, NULL);
    const char *keys[] = { "zero", "empty", "nul", "f", "one", "str", "obj", "arr", "neg" };
    int shown[] = { 0, 0, 0, 0, 1, 1, 1, 1, 1 };
    f->env.flags = parse(p, "{\"zero\":0,\"empty\":\"\",\"nul\":null,\"f\":false,\"one\":1,\"str\":\"0\","
                            "\"obj\":{},\"arr\":[],\"neg\":-0.5,\"evil\":\"</span><script>alert('x')</script>&\\\"\","
                            "\"evilobj\":{\"a\":\"<\\\"'>\"},\"n\":null,\"e\":1e-7}");
    for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *in = apr_psprintf(p, "<div data-ctfl-entry-id=\"regBase\">a<i data-ctfl-flag-if=\"%s\">b</i>c</div>", keys[i]);
        const char *out = rewrite(f, in, NULL);
        assert_int_equal(strstr(out, ">b</i>") != NULL, shown[i]);
        assert_non_null(strstr(out, "\">a"));
        assert_non_null(strstr(out, "c</div>"));
    }
    assert_string_equal(rewrite(f, "<p data-ctfl-entry-id=regBase><b data-ctfl-flag=evil>x</b><b data-ctfl-flag=evilobj>x</b>"
                                   "<b data-ctfl-flag=n>x</b><b data-ctfl-flag=e>x</b></p>", NULL),
        "<p data-ctfl-entry-id=regBase data-ctfl-baseline-id=\"regBase\" data-ctfl-variant-index=\"0\">"
        "<b data-ctfl-flag=evil>&lt;/span&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;</b>"
        "<b data-ctfl-flag=evilobj>{&quot;a&quot;:&quot;&lt;\\&quot;&#39;&gt;&quot;}</b>"
        "<b data-ctfl-flag=n>null</b><b data-ctfl-flag=e>1e-7</b></p>");
    /* flag-if on the marked element itself: the whole element goes */
    {
        ctfl_region_report rep;
        ctfl_region_status st;
        const char *in = "<div data-ctfl-entry-id=regBase data-ctfl-flag-if=zero>x</div>";
        const char *out = rewrite_n(f, in, strlen(in), "utf-8", &st, &rep);
        assert_int_equal(st, CTFL_REGION_REWRITTEN);
        assert_string_equal(out, "");
        assert_int_equal(item(&rep, 0)->content, CTFL_REGION_REMOVED);
    }
    /* a hostile field value in an attribute */
    {
        fx *g = fixture(p, SEL(1));
        assert_string_equal(rewrite(g, "<div data-ctfl-entry-id=regBase data-ctfl-flag=evil>x</div>", NULL),
                            "<div data-ctfl-entry-id=\"regVarA\" data-ctfl-flag=evil data-ctfl-baseline-id=\"regBase\""
                            " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"1\">x</div>");
    }
}

/* Custom flags apply anywhere on the page: the outer element may carry only
 * flag attributes. It has no entry: nothing is stamped, nothing is fetched. */
static void test_flags_outside_marked_elements(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, SEL(3));
    ctfl_region_report rep;
    ctfl_region_status st;
    const char *in, *out, *reason = NULL;
    ctfl_region *r;

    f->env.flags = fixture_flags(p, "identified-visitor.json");
    /* content = the flag's value, escaped; objects as JSON; the tag untouched */
    assert_string_equal(rewrite(f, "<p id=a class='x' data-ctfl-flag=\"plain-text\">plain <b>default</b></p>", &rep),
                        "<p id=a class='x' data-ctfl-flag=\"plain-text\">Plain Text</p>");
    assert_int_equal(rep.flags_applied, 1);
    assert_int_equal(rep.elements->nelts, 0);
    assert_int_equal(f->lookups, 0);
    assert_string_equal(rewrite(f, "<span data-ctfl-flag=json>x</span>", NULL),
                        "<span data-ctfl-flag=json>{&quot;flag&quot;:true}</span>");
    /* flag-if outside: removed when falsy or absent, kept when truthy */
    in = "<p id=\"if-missing\" data-ctfl-flag-if=\"no-such-flag\">shown when <b>on</b></p>";
    out = rewrite_n(f, in, strlen(in), "utf-8", &st, &rep);
    assert_int_equal(st, CTFL_REGION_REWRITTEN);
    assert_string_equal(out, "");
    assert_int_equal(rep.removed, 1);
    assert_int_equal(rep.elements->nelts, 0);
    in = "<div data-ctfl-flag-if=boolean>kept <i>as is</i></div>";
    assert_string_equal(rewrite(f, in, NULL), in);
    /* both on one element: flag-if first, then the content */
    assert_string_equal(rewrite(f, "<b data-ctfl-flag-if=boolean data-ctfl-flag=number>0</b>", NULL),
                        "<b data-ctfl-flag-if=boolean data-ctfl-flag=number>12345</b>");
    assert_string_equal(rewrite(f, "<b data-ctfl-flag-if=absent data-ctfl-flag=number>0</b>", NULL), "");
    /* nested flags inside a flag-if: applied; a falsy one inside goes alone */
    assert_string_equal(rewrite(f, "<section data-ctfl-flag-if=boolean>a<span data-ctfl-flag=plain-text>x</span>"
                                   "<p data-ctfl-flag-if=absent>gone</p>b</section>", &rep),
                        "<section data-ctfl-flag-if=boolean>a<span data-ctfl-flag=plain-text>Plain Text</span>b</section>");
    assert_int_equal(rep.flags_applied, 1);
    assert_int_equal(rep.removed, 1);
    /* a removed outer element takes what is inside it along */
    assert_string_equal(rewrite(f, "<section data-ctfl-flag-if=absent><span data-ctfl-flag=plain-text>x</span>"
                                   "<div data-ctfl-baseline-id=regBase>y</div></section>", NULL), "");
    /* an implicitly ended outer flag element, the rewriter's way */
    assert_string_equal(rewrite(f, "<li data-ctfl-flag=plain-text>x<b>y</b>", NULL),
                        "<li data-ctfl-flag=plain-text>Plain Text");
    /* a void one keeps its start tag */
    in = "<img data-ctfl-flag=plain-text src=x>";
    assert_string_equal(rewrite(f, in, NULL), in);
    /* no entry id: no ids to fetch */
    in = "<div data-ctfl-flag=plain-text><i data-ctfl-flag-if=boolean>x</i></div>";
    r = ctfl_region_parse(p, in, strlen(in), start_tag_len(in, strlen(in)), "utf-8", &reason);
    assert_non_null(r);
    assert_int_equal(ctfl_region_ids(r, p)->nelts, 0);
    /* a repeated attribute: the first one counts, as in the browser */
    in = "<div data-ctfl-flag-if=boolean data-ctfl-flag-if=absent>x</div>";
    assert_string_equal(rewrite(f, in, NULL), in);
    in = "<div data-ctfl-flag-if=absent data-ctfl-flag-if=boolean>x</div>";
    assert_string_equal(rewrite(f, in, NULL), "");
}

/* A flag element around marked elements: those are resolved as usual; its own
 * direct <template data-ctfl-variant-id> children are not variants of anything. */
static void test_flag_element_containing_entries(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, SEL(3));
    ctfl_region_report rep;
    const char *in = "<main data-ctfl-flag-if=boolean>\n" TPL_PAGE
                     "<template data-ctfl-variant-id=\"regVarA\">t</template>"
                     "<b data-ctfl-flag=plain-text>x</b></main>";
    apr_array_header_t *ids;
    const char *reason = NULL;
    ctfl_region *r;

    f->env.flags = fixture_flags(p, "identified-visitor.json");
    assert_string_equal(rewrite(f, in, &rep),
                        "<main data-ctfl-flag-if=boolean>\n"
                        "<section data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regVarB\""
                        " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"3\">"
                        "<h2>B <template>inner</template></h2></section>"
                        "<template data-ctfl-variant-id=\"regVarA\">t</template>"
                        "<b data-ctfl-flag=plain-text>Plain Text</b></main>");
    assert_int_equal(rep.elements->nelts, 1);
    assert_string_equal(item(&rep, 0)->baseline_id, "regBase");
    assert_int_equal(item(&rep, 0)->depth, 1);
    assert_int_equal(item(&rep, 0)->content, CTFL_REGION_TEMPLATE);
    assert_int_equal(rep.templates_removed, 2);
    assert_int_equal(rep.flags_applied, 1);
    r = ctfl_region_parse(p, in, strlen(in), start_tag_len(in, strlen(in)), "utf-8", &reason);
    assert_non_null(r);
    ids = ctfl_region_ids(r, p);
    assert_int_equal(ids->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(ids, 0, const char *), "regBase");

    /* no consent: flags are not applied, the entry is stamped, templates go */
    f->env.personalize = 0;
    assert_string_equal(rewrite(f, in, NULL),
                        "<main data-ctfl-flag-if=boolean>\n"
                        "<section data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regBase\""
                        " data-ctfl-variant-index=\"0\"><h2>Baseline</h2>\n\n</section>"
                        "<template data-ctfl-variant-id=\"regVarA\">t</template>"
                        "<b data-ctfl-flag=plain-text>x</b></main>");
}

/* No flags (no consent, failure): a flag element outside keeps its content. */
static void test_flags_outside_without_flags(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, NULL);
    const char *ins[] = {
        "<p data-ctfl-flag=plain-text>plain default</p>",
        "<p data-ctfl-flag-if=absent>shown <b data-ctfl-flag=x>y</b></p>",
        "<div data-ctfl-flag-if=absent><p data-ctfl-flag=plain-text>z</p></div>",
    };
    for (unsigned i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        ctfl_region_status st;
        ctfl_region_report rep;
        f->env.flags = NULL;
        assert_string_equal(rewrite_n(f, ins[i], strlen(ins[i]), "utf-8", &st, &rep), ins[i]);
        assert_int_equal(st, CTFL_REGION_REWRITTEN);
        assert_int_equal(rep.flags_applied + rep.removed, 0);
        f->env.flags = fixture_flags(p, "identified-visitor.json");
        f->env.personalize = 0;
        assert_string_equal(rewrite(f, ins[i], NULL), ins[i]);
        f->env.personalize = 1;
    }
}

/* ---- charsets ------------------------------------------------------------------ */

static void test_windows_1252_page(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, SEL(1));
    ctfl_region_status st;
    /* origin bytes (0xE9, 0x80) are kept as they are; inserted text is written in
     * ISO-8859-1 terms: é is 0xE9, € and ✓ are character references */
    const char *in = "<div data-ctfl-baseline-id=\"regBase\" title=\"caf\xe9\">\x80 <h2 data-ctfl-field=\"title\">x</h2></div>";
    const char *out = rewrite_n(f, in, strlen(in), "windows-1252", &st, NULL);
    assert_int_equal(st, CTFL_REGION_REWRITTEN);
    assert_string_equal(out,
        "<div data-ctfl-baseline-id=\"regBase\" title=\"caf\xe9\" data-ctfl-entry-id=\"regVarA\""
        " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"1\">\x80 <h2 data-ctfl-field=\"title\">"
        "Caf\xe9 &lt;b&gt;&quot;quoted&quot;&lt;/b&gt; &amp; &#39;x&#39; &#8364; &#10003;</h2></div>");
    /* ISO-8859-15 has the euro sign at 0xA4 */
    out = rewrite_n(f, in, strlen(in), "iso-8859-15", &st, NULL);
    assert_int_equal(st, CTFL_REGION_REWRITTEN);
    assert_non_null(strstr(out, "Caf\xe9 &lt;b&gt;&quot;quoted&quot;&lt;/b&gt; &amp; &#39;x&#39; \xa4 &#10003;</h2>"));
    /* unknown charset: ASCII with references */
    out = rewrite_n(f, in, strlen(in), NULL, &st, NULL);
    assert_int_equal(st, CTFL_REGION_REWRITTEN);
    assert_non_null(strstr(out, "Caf&#233; &lt;b&gt;&quot;quoted&quot;&lt;/b&gt; &amp; &#39;x&#39; &#8364; &#10003;</h2>"));
    /* a charset glibc cannot write: still references, never raw UTF-8 */
    out = rewrite_n(f, in, strlen(in), "iso-8859-8-i", &st, NULL);
    if (st == CTFL_REGION_REWRITTEN)
        assert_non_null(strstr(out, "&#8364; &#10003;</h2>"));
    /* an ASCII-incompatible charset is refused */
    rewrite_n(f, in, strlen(in), "utf-16le", &st, NULL);
    assert_int_equal(st, CTFL_REGION_KEPT);
}

static void test_windows_1252_attribute_values(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, NULL);
    ctfl_region_status st;
    ctfl_region_report rep;
    /* a C1 byte inside a data-ctfl value means something else in windows-1252: keep */
    const char *in = "<div data-ctfl-baseline-id=\"regBase\"><b data-ctfl-flag=\"k\x80\">x</b></div>";
    rewrite_n(f, in, strlen(in), "windows-1252", &st, &rep);
    assert_int_equal(st, CTFL_REGION_KEPT);
    assert_non_null(strstr(rep.reason, "C1"));
    /* Latin-1 letters in a flag key are decoded with the page charset */
    f->env.flags = parse(p, "{\"cl\xc3\xa9\":\"\xe2\x82\xac\"}");
    in = "<div data-ctfl-baseline-id=\"regBase\"><b data-ctfl-flag=\"cl\xe9\">x</b><i data-ctfl-flag=\"cl&eacute;\">y</i></div>";
    assert_non_null(strstr(rewrite_n(f, in, strlen(in), "windows-1252", &st, NULL),
                           "<b data-ctfl-flag=\"cl\xe9\">&#8364;</b><i data-ctfl-flag=\"cl&eacute;\">&#8364;</i>"));
    assert_non_null(strstr(rewrite_n(f, in, strlen(in), "iso-8859-15", &st, NULL), ">\xa4</b>"));
}

static void test_invalid_utf8_kept(void **state)
{
    fx *f = fixture(*state, SEL(1));
    ctfl_region_status st;
    ctfl_region_report rep;
    const char *in = "<div data-ctfl-baseline-id=\"regBase\">caf\xe9 <span data-ctfl-field=\"title\">x</span></div>";
    assert_string_equal(rewrite_n(f, in, strlen(in), "utf-8", &st, &rep), in);
    assert_int_equal(st, CTFL_REGION_KEPT);
    assert_string_equal(rep.reason, "invalid UTF-8");
    assert_int_equal(rep.elements->nelts, 0);
}

/* ---- nested: the §9.6 three-level fixtures -------------------------------------- */

static fx *nested_fixture(apr_pool_t *p, const char *visitor)
{
    fx *f = apr_pcalloc(p, sizeof(*f));
    const char *ids[] = { "1JAU028vQ7v6nB2swl3NBo", "5i4SdJXw9oDEY0vgO7CwF4", "uaNY4YJ0HFPAX3gKXiRdX" };
    ctfl_value *exp = experience_fixture(p, visitor);
    f->p = p;
    f->entries = ctfl_entries_make(p);
    f->assets = apr_hash_make(p);
    for (unsigned i = 0; i < 3; i++)
        add_response(f, apr_psprintf(p, "%s/fixtures/contentful/entries/%s.json", unit_shared_dir(), ids[i]));
    f->env.personalize = 1;
    f->env.selections = selections_of(p, ctfl_value_path(exp, "data.experiences"));
    f->env.profile = ctfl_value_path(exp, "data.profile");
    f->env.entry = lookup_entry;
    f->env.lookup_ctx = f;
    return f;
}

/* Field binding: each level's text comes from its resolved entry. */
#define NESTED_FIELDS \
    "<div data-ctfl-baseline-id=\"1JAU028vQ7v6nB2swl3NBo\" class=\"l0\">\n" \
    "  <p data-ctfl-field=\"text\">This is a level 0 nested baseline entry.</p>\n" \
    "  <div class=\"nested\"><div data-ctfl-baseline-id=\"5i4SdJXw9oDEY0vgO7CwF4\">\n" \
    "    <p data-ctfl-field=\"text\">This is a level 1 nested baseline entry.</p>\n" \
    "    <div data-ctfl-baseline-id=\"uaNY4YJ0HFPAX3gKXiRdX\"><p data-ctfl-field=\"text\">This is a level 2 nested baseline entry.</p></div>\n" \
    "  </div></div>\n" \
    "</div>"

static void test_nested_fields_identified(void **state)
{
    fx *f = nested_fixture(*state, "identified-visitor.json");
    ctfl_region_report rep;
    const char *out = rewrite(f, NESTED_FIELDS, &rep);
    assert_string_equal(out,
        "<div data-ctfl-baseline-id=\"1JAU028vQ7v6nB2swl3NBo\" class=\"l0\" data-ctfl-entry-id=\"2KIWllNZJT205BwOSkMINg\""
        " data-ctfl-optimization-id=\"1FHhEY0xkcCC9R5WCmnjRr\" data-ctfl-variant-index=\"1\">\n"
        "  <p data-ctfl-field=\"text\">This is a level 0 nested variant entry.</p>\n"
        "  <div class=\"nested\"><div data-ctfl-baseline-id=\"5i4SdJXw9oDEY0vgO7CwF4\" data-ctfl-entry-id=\"5a8ONfBdanJtlJ39WWnH1w\""
        " data-ctfl-optimization-id=\"7DyidZaPB7Jr1gWKjoogg0\" data-ctfl-variant-index=\"1\">\n"
        "    <p data-ctfl-field=\"text\">This is a level 1 nested variant entry.</p>\n"
        "    <div data-ctfl-baseline-id=\"uaNY4YJ0HFPAX3gKXiRdX\" data-ctfl-entry-id=\"4hDiXxYEFrXHXcQgmdL9Uv\""
        " data-ctfl-optimization-id=\"6IueRX1pS3iMJncbhUQTba\" data-ctfl-variant-index=\"1\">"
        "<p data-ctfl-field=\"text\">This is a level 2 nested variant entry.</p></div>\n"
        "  </div></div>\n"
        "</div>");
    assert_int_equal(rep.elements->nelts, 3);
    assert_string_equal(item(&rep, 0)->entry_id, "2KIWllNZJT205BwOSkMINg");
    assert_string_equal(item(&rep, 1)->entry_id, "5a8ONfBdanJtlJ39WWnH1w");
    assert_string_equal(item(&rep, 2)->entry_id, "4hDiXxYEFrXHXcQgmdL9Uv");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(item(&rep, i)->depth, (unsigned)i);
        assert_int_equal(item(&rep, i)->outcome, CTFL_RES_VARIANT);
        assert_int_equal(item(&rep, i)->fields_bound, 1);
    }
}

static void test_nested_fields_new_visitor(void **state)
{
    fx *f = nested_fixture(*state, "new-visitor.json");
    ctfl_region_report rep;
    const char *out = rewrite(f, NESTED_FIELDS, &rep);
    assert_string_equal(out,
        "<div data-ctfl-baseline-id=\"1JAU028vQ7v6nB2swl3NBo\" class=\"l0\" data-ctfl-entry-id=\"1JAU028vQ7v6nB2swl3NBo\""
        " data-ctfl-variant-index=\"0\">\n"
        "  <p data-ctfl-field=\"text\">This is a level 0 nested baseline entry.</p>\n"
        "  <div class=\"nested\"><div data-ctfl-baseline-id=\"5i4SdJXw9oDEY0vgO7CwF4\" data-ctfl-entry-id=\"5i4SdJXw9oDEY0vgO7CwF4\""
        " data-ctfl-variant-index=\"0\">\n"
        "    <p data-ctfl-field=\"text\">This is a level 1 nested baseline entry.</p>\n"
        "    <div data-ctfl-baseline-id=\"uaNY4YJ0HFPAX3gKXiRdX\" data-ctfl-entry-id=\"uaNY4YJ0HFPAX3gKXiRdX\""
        " data-ctfl-variant-index=\"0\"><p data-ctfl-field=\"text\">This is a level 2 nested baseline entry.</p></div>\n"
        "  </div></div>\n"
        "</div>");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(item(&rep, i)->outcome, CTFL_RES_NO_OPTIMIZATION);
        assert_int_equal(item(&rep, i)->fields_bound, 0);
    }
}

/* Templates: the origin renders the L0 variant with the nested L1 baseline (and
 * its L2) inside the template; they are resolved after the template is chosen. */
#define L2_EL "<div data-ctfl-baseline-id=\"uaNY4YJ0HFPAX3gKXiRdX\">L2 baseline" \
    "<template data-ctfl-variant-id=\"4hDiXxYEFrXHXcQgmdL9Uv\">L2 variant</template></div>"
#define L1_EL "<div data-ctfl-baseline-id=\"5i4SdJXw9oDEY0vgO7CwF4\">L1 baseline " L2_EL \
    "<template data-ctfl-variant-id=\"5a8ONfBdanJtlJ39WWnH1w\">L1 variant " L2_EL "</template></div>"
#define NESTED_TEMPLATES "<section data-ctfl-baseline-id=\"1JAU028vQ7v6nB2swl3NBo\">L0 baseline " L1_EL \
    "<template data-ctfl-variant-id=\"2KIWllNZJT205BwOSkMINg\">L0 variant " L1_EL "</template></section>"

static void test_nested_templates(void **state)
{
    apr_pool_t *p = *state;
    fx *f = nested_fixture(p, "identified-visitor.json");
    ctfl_region_report rep;
    const char *out = rewrite(f, NESTED_TEMPLATES, &rep);
    const char *l2 = "<div data-ctfl-baseline-id=\"uaNY4YJ0HFPAX3gKXiRdX\" data-ctfl-entry-id=\"4hDiXxYEFrXHXcQgmdL9Uv\""
                     " data-ctfl-optimization-id=\"6IueRX1pS3iMJncbhUQTba\" data-ctfl-variant-index=\"1\">L2 variant</div>";
    assert_string_equal(out, apr_pstrcat(p,
        "<section data-ctfl-baseline-id=\"1JAU028vQ7v6nB2swl3NBo\" data-ctfl-entry-id=\"2KIWllNZJT205BwOSkMINg\""
        " data-ctfl-optimization-id=\"1FHhEY0xkcCC9R5WCmnjRr\" data-ctfl-variant-index=\"1\">L0 variant "
        "<div data-ctfl-baseline-id=\"5i4SdJXw9oDEY0vgO7CwF4\" data-ctfl-entry-id=\"5a8ONfBdanJtlJ39WWnH1w\""
        " data-ctfl-optimization-id=\"7DyidZaPB7Jr1gWKjoogg0\" data-ctfl-variant-index=\"1\">L1 variant ", l2,
        "</div></section>", NULL));
    assert_int_equal(rep.elements->nelts, 3);
    assert_int_equal(item(&rep, 2)->depth, 2);
    assert_int_equal(item(&rep, 2)->content, CTFL_REGION_TEMPLATE);

    f = nested_fixture(p, "new-visitor.json");
    out = rewrite(f, NESTED_TEMPLATES, &rep);
    assert_string_equal(out,
        "<section data-ctfl-baseline-id=\"1JAU028vQ7v6nB2swl3NBo\" data-ctfl-entry-id=\"1JAU028vQ7v6nB2swl3NBo\""
        " data-ctfl-variant-index=\"0\">L0 baseline "
        "<div data-ctfl-baseline-id=\"5i4SdJXw9oDEY0vgO7CwF4\" data-ctfl-entry-id=\"5i4SdJXw9oDEY0vgO7CwF4\""
        " data-ctfl-variant-index=\"0\">L1 baseline "
        "<div data-ctfl-baseline-id=\"uaNY4YJ0HFPAX3gKXiRdX\" data-ctfl-entry-id=\"uaNY4YJ0HFPAX3gKXiRdX\""
        " data-ctfl-variant-index=\"0\">L2 baseline</div></div></section>");
    assert_int_equal(rep.templates_removed, 3);
}

/* The ids of one parsed element. */
static apr_array_header_t *ids_of(apr_pool_t *p, const char *html)
{
    const char *reason = NULL;
    ctfl_region *r = ctfl_region_parse(p, html, strlen(html), start_tag_len(html, strlen(html)),
                                       "utf-8", &reason);
    assert_non_null(r);
    return ctfl_region_ids(r, p);
}

static void test_ids(void **state)
{
    apr_pool_t *p = *state;
    apr_array_header_t *ids = ids_of(p, NESTED_TEMPLATES);
    assert_int_equal(ids->nelts, 3);
    assert_string_equal(APR_ARRAY_IDX(ids, 0, const char *), "1JAU028vQ7v6nB2swl3NBo");
    assert_string_equal(APR_ARRAY_IDX(ids, 1, const char *), "5i4SdJXw9oDEY0vgO7CwF4");
    assert_string_equal(APR_ARRAY_IDX(ids, 2, const char *), "uaNY4YJ0HFPAX3gKXiRdX");

    ids = ids_of(p, "<ul data-ctfl-entry-id=\"a1\" data-ctfl-baseline-id=\"\"><li data-ctfl-baseline-id=\"b2\" data-ctfl-entry-id=\"zz\">x"
                    "<li data-ctfl-entry-id=\"bad id\">y<li data-ctfl-entry-id=\"a1\">z</ul>");
    assert_int_equal(ids->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(ids, 0, const char *), "a1");
    assert_string_equal(APR_ARRAY_IDX(ids, 1, const char *), "b2");

    /* many: duplicates before and after the first few are still dropped */
    ids = ids_of(p, "<ul data-ctfl-baseline-id=\"u\"><li data-ctfl-baseline-id=\"l0\">"
           "<li data-ctfl-baseline-id=\"l1\"><li data-ctfl-baseline-id=\"u\"><li data-ctfl-baseline-id=\"l2\">"
           "<li data-ctfl-baseline-id=\"l3\"><li data-ctfl-baseline-id=\"l4\"><li data-ctfl-baseline-id=\"l5\">"
           "<li data-ctfl-baseline-id=\"l6\"><li data-ctfl-baseline-id=\"l1\"><li data-ctfl-baseline-id=\"l7\">"
           "<li data-ctfl-baseline-id=\"l8\"><li data-ctfl-baseline-id=\"l0\"><li data-ctfl-baseline-id=\"u\">"
           "<li data-ctfl-baseline-id=\"l9\"><li data-ctfl-baseline-id=\"l8\"></ul>");
    assert_int_equal(ids->nelts, 11);
    assert_string_equal(APR_ARRAY_IDX(ids, 0, const char *), "u");
    for (int i = 0; i < 10; i++)
        assert_string_equal(APR_ARRAY_IDX(ids, i + 1, const char *), apr_psprintf(p, "l%d", i));
}

/* Implicitly closed nested elements, found with the rewriter's own rules. */
static void test_nested_implied_ends(void **state)
{
    fx *f = fixture(*state, NULL);
    f->env.personalize = 0;
    assert_string_equal(
        rewrite(f, "<ul data-ctfl-baseline-id=regBase><li data-ctfl-entry-id=regInner>a<li data-ctfl-entry-id=regVarB>b"
                   "<template data-ctfl-variant-id=x>t</template></ul>", NULL),
        "<ul data-ctfl-baseline-id=regBase data-ctfl-entry-id=\"regBase\" data-ctfl-variant-index=\"0\">"
        "<li data-ctfl-entry-id=regInner data-ctfl-baseline-id=\"regInner\" data-ctfl-variant-index=\"0\">a"
        "<li data-ctfl-entry-id=regVarB data-ctfl-baseline-id=\"regVarB\" data-ctfl-variant-index=\"0\">b</ul>");
}

static void test_depth_cap(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, NULL);
    ctfl_region_report rep;
    char *in = "", *tail = "";
    const char *out;
    f->env.personalize = 0;
    for (int i = 0; i < CTFL_REGION_MAX_DEPTH + 2; i++) {
        in = apr_pstrcat(p, in, "<div data-ctfl-entry-id=regBase>", NULL);
        tail = apr_pstrcat(p, tail, "</div>", NULL);
    }
    out = rewrite(f, apr_pstrcat(p, in, "x", tail, NULL), &rep);
    assert_int_equal(rep.elements->nelts, CTFL_REGION_MAX_DEPTH + 1);
    assert_int_equal(item(&rep, CTFL_REGION_MAX_DEPTH)->content, CTFL_REGION_DEPTH_CAP);
    /* the capped level and below are the original bytes */
    assert_non_null(strstr(out, "data-ctfl-variant-index=\"0\"><div data-ctfl-entry-id=regBase><div data-ctfl-entry-id=regBase>x</div></div></div>"));
}

/* ---- fail open ----------------------------------------------------------------------- */

static void test_disagreement_kept(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, SEL(1));
    const char *why[] = {
        "libxml2: element name differs", "libxml2: element name differs",
        "nested element not followed", "element differs from libxml2", "element differs from libxml2",
        "nested element not followed", "content outside the element"
    };
    const char *cases[] = {
        /* libxml2 drops a stray <html> start tag: the k-th elements differ */
        "<div data-ctfl-baseline-id=\"regBase\"><p>a<html>b</p><span data-ctfl-field=\"title\">x</span></div>",
        /* libxml2 cuts a tag name at a NUL byte */
        "<div data-ctfl-baseline-id=\"regBase\"><sp\0an data-ctfl-field=\"title\">x</span></div>",
        /* a template never closed */
        "<div data-ctfl-baseline-id=\"regBase\">x<template data-ctfl-variant-id=\"regVarA\">a</div>",
        /* HTML closes the nested <p> at <section>, libxml2 2.9 does not */
        "<div data-ctfl-baseline-id=regBase><p data-ctfl-entry-id=regInner>a<section>b</section></div>",
        /* the same for a field element */
        "<div data-ctfl-baseline-id=regBase><p data-ctfl-field=title>a<section>b</section></p></div>",
        /* a table cell left open in a template: the rewriter's rules cannot follow it */
        "<div data-ctfl-baseline-id=regBase><template data-ctfl-variant-id=v><table><tr><td>x</template></div>",
        /* libxml2 2.9 closes <b> at <p>: the rest is outside its element */
        "<b data-ctfl-entry-id=regBase>x<p>y</p><i data-ctfl-flag=k>z</i></b>",
    };
    apr_size_t lens[] = { 0, 77, 0, 0, 0, 0, 0 };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ctfl_region_status st;
        ctfl_region_report rep;
        apr_size_t n = lens[i] ? lens[i] : strlen(cases[i]);
        const char *out = rewrite_n(f, cases[i], n, "utf-8", &st, &rep);
        if (st != CTFL_REGION_KEPT)
            fail_msg("case %u rewritten: %s", i, out);
        assert_memory_equal(out, cases[i], n);
        if (!rep.reason || !strstr(rep.reason, why[i]))
            fail_msg("case %u: reason %s, want %s", i, rep.reason, why[i]);
    }
}

/* Markup inside raw-text elements is text for the tokenizer (and browsers);
 * libxml2 2.9 parses it: those elements are left out of the comparison. */
static void test_raw_text_elements(void **state)
{
    fx *f = fixture(*state, NULL);
    f->env.flags = parse(*state, "{\"k\":\"on\"}");
    assert_string_equal(
        rewrite(f, "<div data-ctfl-entry-id=regBase><noscript><img src=a.png><i data-ctfl-flag=k>n</i></noscript>"
                   "<textarea><b>t</b></textarea><iframe><p>f</p></iframe><i data-ctfl-flag=k>z</i></div>", NULL),
        "<div data-ctfl-entry-id=regBase data-ctfl-baseline-id=\"regBase\" data-ctfl-variant-index=\"0\">"
        "<noscript><img src=a.png><i data-ctfl-flag=k>n</i></noscript>"
        "<textarea><b>t</b></textarea><iframe><p>f</p></iframe><i data-ctfl-flag=k>on</i></div>");
}

/* Nested field/flag elements are each re-read by the rewriter: the work is
 * capped (linear in the element), deep nesting is kept as it is. */
static void test_nesting_work_cap(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, NULL);
    ctfl_region_status st;
    ctfl_region_report rep;
    char *in = "<div data-ctfl-entry-id=regBase>", *tail = "</div>";
    const char *out;
    f->env.flags = parse(p, "{\"k\":true}");
    for (int i = 0; i < 300; i++) {
        in = apr_pstrcat(p, in, "<i data-ctfl-flag-if=k>", NULL);
        tail = apr_pstrcat(p, "</i>", tail, NULL);
    }
    in = apr_pstrcat(p, in, "x", tail, NULL);
    out = rewrite_n(f, in, strlen(in), "utf-8", &st, &rep);
    assert_int_equal(st, CTFL_REGION_KEPT);
    assert_string_equal(out, in);
    assert_string_equal(rep.reason, "structure: nesting too costly to follow");
    /* a few levels are fine */
    assert_non_null(strstr(rewrite(f, "<p data-ctfl-entry-id=regBase><i data-ctfl-flag-if=k><b data-ctfl-flag-if=k>"
                                      "<u data-ctfl-flag=k>x</u></b></i></p>", NULL),
                           "<i data-ctfl-flag-if=k><b data-ctfl-flag-if=k><u data-ctfl-flag=k>true</u></b></i></p>"));
}

static void test_output_cap(void **state)
{
    fx *f = fixture(*state, SEL(1));
    ctfl_region_status st;
    ctfl_region_report rep;
    const char *in = "<div data-ctfl-baseline-id=\"regBase\"><p data-ctfl-field=\"title\">x</p></div>";
    f->env.max_output = 40;
    assert_string_equal(rewrite_n(f, in, strlen(in), "utf-8", &st, &rep), in);
    assert_int_equal(st, CTFL_REGION_KEPT);
    assert_string_equal(rep.reason, "output over the cap");
}

/* Bytes outside the spliced ranges come out unchanged, however odd. */
static void test_bytes_outside_splices_identical(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, SEL(1));
    const char *pre = "<DIV\tclass=a  data-ctfl-baseline-id='regBase'\r\n onclick=\"x>1\" @click=go [prop]=v";
    const char *mid1 = ">\r\n <!-- <span data-ctfl-field=title>c</span> --><![CDATA[ x ]]>"
                       "<script>var s = \"</div><p data-ctfl-field='title'>\";</script>"
                       "<textarea><b data-ctfl-flag=x>t</b></textarea><noscript><img src=x></noscript>"
                       "&nbsp;&amp &copy;\xe2\x82\xac<br/><svg viewBox=\"0 0 1 1\"><linearGradient/></svg>"
                       "<H2 CLASS=t DATA-CTFL-FIELD=title>";
    const char *field_old = "old <I>title</I>";
    const char *mid2 = "</H2 >\n<?php echo 1 ?><p>unclosed<p>para</DIV>";
    const char *in = apr_pstrcat(p, pre, mid1, field_old, mid2, NULL);
    const char *out = rewrite(f, in, NULL);
    const char *want = apr_pstrcat(p, pre,
        " data-ctfl-entry-id=\"regVarA\" data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"1\"",
        mid1, "Caf\xc3\xa9 &lt;b&gt;&quot;quoted&quot;&lt;/b&gt; &amp; &#39;x&#39; \xe2\x82\xac \xe2\x9c\x93", mid2, NULL);
    assert_string_equal(out, want);
}

/* ---- with the streaming rewriter ---------------------------------------------------- */

typedef struct {
    fx *f;
    char *out;
    apr_size_t n, cap;
    const ctfl_rewriter *rw;
} page;

static apr_status_t page_emit(void *ctx, const char *data, apr_size_t len)
{
    page *pg = ctx;
    if (pg->n + len > pg->cap) {
        apr_size_t cap = (pg->n + len) * 2;
        char *nb = apr_palloc(pg->f->p, cap);
        if (pg->n)
            memcpy(nb, pg->out, pg->n);
        pg->out = nb;
        pg->cap = cap;
    }
    memcpy(pg->out + pg->n, data, len);
    pg->n += len;
    return APR_SUCCESS;
}

static apr_status_t page_element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                                 const char **repl, apr_size_t *repl_len)
{
    page *pg = ctx;
    ctfl_region_env env = pg->f->env;        /* with the page's scan of the element */
    env.tags = ctfl_rewriter_element_tags(pg->rw, &env.ntags);
    if (ctfl_region_rewrite_element(pg->f->p, elem, len, tag_len, "utf-8", &env, repl, repl_len, NULL)
        == CTFL_REGION_KEPT)
        *repl = NULL;
    return APR_SUCCESS;
}

static const char *run_page(fx *f, const char *html, apr_size_t len, apr_size_t chunk)
{
    page pg = { f, NULL, 0, 0, NULL };
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    memset(&o, 0, sizeof(o));
    o.emit = page_emit;
    o.emit_ctx = &pg;
    o.on_element = page_element;
    o.element_ctx = &pg;
    rw = ctfl_rewriter_create(f->p, &o);
    pg.rw = rw;
    for (apr_size_t i = 0; i < len; i += chunk)
        assert_int_equal(ctfl_rewriter_feed(rw, html + i, len - i < chunk ? len - i : chunk), APR_SUCCESS);
    assert_int_equal(ctfl_rewriter_finish(rw), APR_SUCCESS);
    return apr_pstrmemdup(f->p, pg.out ? pg.out : "", pg.n);
}

static void test_with_rewriter_any_chunking(void **state)
{
    apr_pool_t *p = *state;
    fx *f = nested_fixture(p, "identified-visitor.json");
    const char *html = apr_pstrcat(p, "<!doctype html><html><head><title>t</title></head><body><main>\n",
                                   NESTED_FIELDS, "\n<ul><li>x</li>", "<li data-ctfl-entry-id=\"uaNY4YJ0HFPAX3gKXiRdX\">y",
                                   "<li>z</ul>", NESTED_TEMPLATES, "</main></body></html>\n", NULL);
    apr_size_t len = strlen(html);
    const char *whole = run_page(f, html, len, len);
    assert_non_null(strstr(whole, "This is a level 2 nested variant entry."));
    assert_non_null(strstr(whole, "<li data-ctfl-entry-id=\"4hDiXxYEFrXHXcQgmdL9Uv\" data-ctfl-baseline-id=\"uaNY4YJ0HFPAX3gKXiRdX\""
                                  " data-ctfl-optimization-id=\"6IueRX1pS3iMJncbhUQTba\" data-ctfl-variant-index=\"1\">y<li>z</ul>"));
    assert_non_null(strstr(whole, ">L1 variant <div"));
    for (apr_size_t chunk = 1; chunk < len; chunk += chunk < 16 ? 1 : 37)
        assert_string_equal(run_page(f, html, len, chunk), whole);
}

/* A page with standalone flag elements (and one around an entry), through the
 * streaming rewriter: the same output under every chunking. */
static void test_flags_outside_any_chunking(void **state)
{
    apr_pool_t *p = *state;
    fx *f = fixture(p, SEL(1));
    const char *html = "<!doctype html><html><head><title data-ctfl-flag=plain-text>t</title></head><body>\n"
                       "<p id=flag-plain data-ctfl-flag=\"plain-text\">plain default</p>\n"
                       "<p id=if-missing data-ctfl-flag-if=\"no-such-flag\">hidden<p>after\n"
                       "<ul><li data-ctfl-flag-if=boolean>one<li data-ctfl-flag=json>two</ul>\n"
                       "<div data-ctfl-flag-if=boolean><div data-ctfl-entry-id=regBase>"
                       "<h2 data-ctfl-field=title>x</h2></div></div>\n"
                       "<!-- <p data-ctfl-flag=plain-text>c</p> --></body></html>\n";
    const char *want = "<!doctype html><html><head><title data-ctfl-flag=plain-text>Plain Text</title></head><body>\n"
                       "<p id=flag-plain data-ctfl-flag=\"plain-text\">Plain Text</p>\n"
                       "<p>after\n"
                       "<ul><li data-ctfl-flag-if=boolean>one<li data-ctfl-flag=json>{&quot;flag&quot;:true}</ul>\n"
                       "<div data-ctfl-flag-if=boolean><div data-ctfl-entry-id=\"regVarA\" data-ctfl-baseline-id=\"regBase\""
                       " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"1\">"
                       "<h2 data-ctfl-field=title>Caf\xc3\xa9 &lt;b&gt;&quot;quoted&quot;&lt;/b&gt; &amp; &#39;x&#39; "
                       "\xe2\x82\xac \xe2\x9c\x93</h2></div></div>\n"
                       "<!-- <p data-ctfl-flag=plain-text>c</p> --></body></html>\n";
    apr_size_t len = strlen(html);
    f->env.flags = fixture_flags(p, "identified-visitor.json");
    assert_string_equal(run_page(f, html, len, len), want);
    for (apr_size_t chunk = 1; chunk < len; chunk += chunk < 16 ? 1 : 13)
        assert_string_equal(run_page(f, html, len, chunk), want);
}

/* ---- without consent: the tokenizer-only fast path ------------------------------ */

/* The slow path's answer (parse + rewrite) against the fast path's for one
 * element: the same status, bytes and report. 1 when the fast path applied. */
static int fast_same_as_slow(apr_pool_t *p, const char *elem, apr_size_t len, const char *charset,
                             const ctfl_region_env *env)
{
    apr_size_t tag_len = start_tag_len(elem, len), slen = 0, flen = 0;
    const char *reason = NULL, *sout = NULL, *fout = NULL;
    ctfl_region_report srep, frep;
    ctfl_region_status sst = CTFL_REGION_KEPT;
    ctfl_region *r = ctfl_region_parse(p, elem, len, tag_len, charset, &reason);
    int fast;

    memset(&srep, 0, sizeof(srep));
    if (r) {
        sst = ctfl_region_rewrite(r, env, &sout, &slen, &srep);
    } else {
        sout = elem;
        slen = len;
        srep.reason = reason;
        srep.elements = apr_array_make(p, 1, sizeof(ctfl_region_element));
    }
    fast = ctfl_region_rewrite_unconsented(p, elem, len, tag_len, charset, env, &fout, &flen, &frep);
    {   /* the same with the tags handed over by the page's scan */
        ctfl_region_env with_tags;
        const char *tout = NULL;
        apr_size_t tlen = 0;
        memset(&with_tags, 0, sizeof(with_tags));
        if (env)
            with_tags = *env;
        with_tags.tags = scanned_tags(p, elem, len, &with_tags.ntags);
        assert_int_equal(ctfl_region_rewrite_unconsented(p, elem, len, tag_len, charset, &with_tags,
                                                         &tout, &tlen, NULL), fast);
        if (fast)
            assert_true(tlen == flen && !memcmp(tout, fout, flen));
    }
    if (!fast)
        return 0;
    if ((fast > 0 ? CTFL_REGION_REWRITTEN : CTFL_REGION_KEPT) != sst || slen != flen
        || memcmp(sout, fout, slen) != 0)
        fail_msg("fast path differs (%s, slow %s)\n in:   %.*s\n slow: %.*s\n fast: %.*s",
                 charset ? charset : "no charset", srep.reason ? srep.reason : "rewritten",
                 (int)len, elem, (int)slen, sout, (int)flen, fout);
    assert_true((srep.reason == NULL) == (frep.reason == NULL));
    if (srep.reason)
        assert_string_equal(srep.reason, frep.reason);
    assert_int_equal(srep.templates_removed, frep.templates_removed);
    assert_int_equal(srep.fields_bound, frep.fields_bound);
    assert_int_equal(srep.flags_applied, frep.flags_applied);
    assert_int_equal(srep.removed, frep.removed);
    assert_int_equal(srep.elements->nelts, frep.elements->nelts);
    for (int i = 0; i < srep.elements->nelts; i++) {
        const ctfl_region_element *a = item(&srep, i), *b = item(&frep, i);
        assert_int_equal(a->depth, b->depth);
        assert_true((a->baseline_id == NULL) == (b->baseline_id == NULL));
        if (a->baseline_id) assert_string_equal(a->baseline_id, b->baseline_id);
        assert_true((a->entry_id == NULL) == (b->entry_id == NULL));
        if (a->entry_id) assert_string_equal(a->entry_id, b->entry_id);
        assert_int_equal(a->resolved, b->resolved);
        assert_int_equal(a->content, b->content);
        assert_null(b->experience_id);
        assert_int_equal(a->fields_bound, b->fields_bound);
    }
    return 1;
}

static const char *const fast_charsets[] = { "utf-8", "windows-1252", NULL, "iso-8859-2" };

/* Every charset, with and without option attributes: identical whenever the
 * fast path applies. Returns whether it applied for utf-8 without options. */
static int fast_check_all(apr_pool_t *p, const char *elem, apr_size_t len)
{
    ctfl_attr_options opts = { 1, CTFL_TRACK_TRUE, CTFL_TRACK_FALSE, CTFL_TRACK_UNSET };
    ctfl_region_env env;
    int first = 0;
    memset(&env, 0, sizeof(env));
    for (unsigned c = 0; c < sizeof(fast_charsets) / sizeof(fast_charsets[0]); c++) {
        int applied;
        env.attr_options = NULL;
        applied = fast_same_as_slow(p, elem, len, fast_charsets[c], &env);
        if (c == 0)
            first = applied;
        env.attr_options = &opts;
        fast_same_as_slow(p, elem, len, fast_charsets[c], &env);
    }
    /* and the one-call entry point gives the same */
    env.attr_options = NULL;
    env.personalize = 1;
    assert_int_equal(ctfl_region_rewrite_unconsented(p, elem, len, start_tag_len(elem, len), "utf-8",
                                                     &env, &(const char *){ NULL }, &(apr_size_t){ 0 }, NULL), 0);
    return first;
}

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *elems;   /* of const char * (NUL-terminated copies) */
    apr_array_header_t *lens;    /* of apr_size_t */
} collected;

static apr_status_t collect_emit(void *ctx, const char *data, apr_size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return APR_SUCCESS;
}

static apr_status_t collect_element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                                    const char **repl, apr_size_t *repl_len)
{
    collected *c = ctx;
    (void)tag_len;
    (void)repl_len;
    APR_ARRAY_PUSH(c->elems, const char *) = apr_pstrmemdup(c->p, elem, len);
    APR_ARRAY_PUSH(c->lens, apr_size_t) = len;
    *repl = NULL;
    return APR_SUCCESS;
}

/* The marked elements of a bench corpus page, as the rewriter hands them over. */
static collected corpus_elements(apr_pool_t *p, const char *name)
{
    collected c = { p, apr_array_make(p, 32, sizeof(const char *)), apr_array_make(p, 32, sizeof(apr_size_t)) };
    const char *path = apr_psprintf(p, "%s/bench/corpus/%s", unit_shared_dir(), name);
    apr_size_t len = 0;
    char *html = unit_read_file(p, path, &len);
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    if (!html) fail_msg("missing %s", path);
    memset(&o, 0, sizeof(o));
    o.emit = collect_emit;
    o.on_element = collect_element;
    o.element_ctx = &c;
    rw = ctfl_rewriter_create(p, &o);
    for (apr_size_t i = 0; i < len; i += 8192)
        assert_int_equal(ctfl_rewriter_feed(rw, html + i, len - i < 8192 ? len - i : 8192), APR_SUCCESS);
    assert_int_equal(ctfl_rewriter_finish(rw), APR_SUCCESS);
    return c;
}

static void test_unconsented_fast_path_corpus(void **state)
{
    apr_pool_t *p = *state;
    const char *pages[] = { "page-20k.html", "page-150k.html", "page-1m.html" };
    const int want[] = { 5, 30, 200 };
    for (unsigned i = 0; i < 3; i++) {
        collected c = corpus_elements(p, pages[i]);
        assert_int_equal(c.elems->nelts, want[i]);
        for (int k = 0; k < c.elems->nelts; k++)
            if (!fast_check_all(p, APR_ARRAY_IDX(c.elems, k, const char *), APR_ARRAY_IDX(c.lens, k, apr_size_t)))
                fail_msg("%s: element %d not on the fast path", pages[i], k);
    }
}

static void test_unconsented_fast_path_identical(void **state)
{
    apr_pool_t *p = *state;
    static const struct { const char *html; int fast; } cases[] = {
        /* 1: the fast path applies */
        { "<div class=\"x\" data-ctfl-baseline-id=\"regBase\">Origin <b>content</b></div>", 1 },
        { "<DIV Class=x DATA-CTFL-ENTRY-ID='regBase' data-ctfl-variant-index=7 ID=\"a\">t</DIV>", 1 },
        { "<img data-ctfl-entry-id=\"regBase\" />", 1 },
        { "<img data-ctfl-entry-id=regBase src=a/>", 1 },
        { "<img DATA-CTFL-BASELINE-ID='regBase'/>", 1 },
        { "<p data-ctfl-entry-id = \"regBase\" data-ctfl-variant-index>x</p>", 1 },
        { "<p data-ctfl-baseline-id=regBase data-ctfl-entry-id=a data-ctfl-entry-id=b>x</p>", 1 },
        { "<div data-ctfl-optimization-id=\"old\" data-ctfl-baseline-id=\"regBase\"\n"
          "  data-ctfl-sticky=true data-ctfl-empty-variant data-x=1>c</div>", 1 },
        { "<div DATA-CTFL-STICKY DATA-CTFL-OPTIMIZATION-ID=x data-ctfl-baseline-id=regBase data-ctfl-empty-variant=\"true\">c</div>", 1 },
        { "<div data-ctfl-baseline-id=\"regBase\" data-ctfl-entry-id=\"regBase\" data-ctfl-variant-index=\"0\">same</div>", 1 },
        { "<div data-ctfl-baseline-id='regBase' data-ctfl-entry-id='regVarA' data-ctfl-variant-index='3'>x</div>", 1 },
        { "<div data-ctfl-baseline-id=\"bad!id\">x</div>", 1 },
        { "<div data-ctfl-baseline-id data-ctfl-entry-id=regBase>x</div>", 1 },
        { "<div data-ctfl-baseline-id=\"\" data-ctfl-entry-id=regBase>x</div>", 1 },
        { "<div data-ctfl-baseline-id=\"\">x</div>", 1 },
        { "<div\n\tdata-ctfl-baseline-id=\"regBase\"\r\n class=a\n>x</div\n>", 1 },
        { "<article DATA-CTFL-BASELINE-ID=\"regBase\"><div Data-Ctfl-Entry-Id=\"regInner\"><h3 DATA-CTFL-FIELD=\"title\">t</h3>"
          "</div></article>", 1 },
        { NESTED_FIELDS, 1 },
        { "<ul data-ctfl-baseline-id=regBase><li data-ctfl-entry-id=regInner>a</li><li data-ctfl-entry-id=regVarB>b</li></ul>", 1 },
        { "<div data-ctfl-entry-id=regBase><img data-ctfl-entry-id=regInner src=x.png><br/>t<img data-ctfl-entry-id=x/></div>", 1 },
        { "<p data-ctfl-flag=plain-text>x</p>", 1 },
        { "<div data-ctfl-flag-if=boolean><div data-ctfl-entry-id=regBase><h2 data-ctfl-field=title>x</h2></div>"
          "<i data-ctfl-flag=k>z</i></div>", 1 },
        { "<div data-ctfl-entry-id=regBase><i data-ctfl-flag-if=k><b data-ctfl-flag=k>x</b></i>"
          "<a href=/x data-ctfl-field=url data-ctfl-field-attr=href>l</a><img data-ctfl-field=image data-ctfl-field-attr=src></div>", 1 },
        { "<div data-ctfl-entry-id=regBase><svg viewBox=\"0 0 1 1\"><path d=\"M0\"/><g><circle r=1></circle></g></svg>"
          "<span data-ctfl-field=title>t</span></div>", 1 },
        { "<div data-ctfl-entry-id=regBase><picture><source srcset=a.webp><img src=a.png></picture>"
          "<p data-ctfl-field=title>t</p></div>", 1 },
        { "<div data-ctfl-entry-id=regBase><script>var a = \"<div data-ctfl-entry-id=x>\";</script>"
          "<style>p{}</style><textarea><b>t</b></textarea><i data-ctfl-flag=k>z</i></div>", 1 },
        { "<div data-ctfl-entry-id=regBase><!-- <p data-ctfl-entry-id=x> --><b data-ctfl-field=t>b</b></div>", 1 },
        { "<a data-ctfl-entry-id=regBase href=/x><span>t</span><em data-ctfl-field=title>e</em></a>", 1 },
        { "<li data-ctfl-entry-id=regBase><div><p data-ctfl-field=title>t</p></div><ul><li>a</li></ul></li>", 1 },
        { "<product-card-component data-ctfl-baseline-id=regBase><h2 data-ctfl-field=title>t</h2>"
          "</product-card-component>", 1 },
        { "<section data-ctfl-baseline-id=regBase><p>a<div>opaque content</div><li>x</section>", 1 },
        { "<div data-ctfl-entry-id=regBase>caf\xc3\xa9 \xe2\x82\xac <span data-ctfl-field=title>x</span></div>", 1 },
        { "<div data-ctfl-entry-id=a1><div data-ctfl-entry-id=a2><div data-ctfl-entry-id=a3><div data-ctfl-entry-id=a4>"
          "<div data-ctfl-entry-id=a5><div data-ctfl-entry-id=a6><div data-ctfl-entry-id=a7><div data-ctfl-entry-id=a8>"
          "<div data-ctfl-entry-id=a9><div data-ctfl-entry-id=a10>x</div></div></div></div></div></div></div></div></div>"
          "<p data-ctfl-entry-id=b>y</p></div>", 1 },
        { "<img data-ctfl-baseline-id=regBase alt=\"a>b\"/>", 1 },
        { "<div data-ctfl-entry-id=\"regBase\"data-ctfl-flag=\"k\"data-ctfl-field=\"t\"data-ctfl-flag-if=\"k\"></div>", 1 },
        /* 0: left to the slow path */
        { "<p data-ctfl-baseline-id=\"reg&#66;ase\">x</p>", 0 },
        { TPL_PAGE, 0 },
        { "<div data-ctfl-entry-id=regBase>x<TEMPLATE>y</TEMPLATE></div>", 0 },
        { "<div data-ctfl-baseline-id=regBase><p data-ctfl-entry-id=regInner>a<section>b</section></div>", 0 },
        { "<div data-ctfl-baseline-id=regBase><p data-ctfl-field=title>a<section>b</section></p></div>", 0 },
        { "<b data-ctfl-entry-id=regBase>x<p>y</p><i data-ctfl-flag=k>z</i></b>", 0 },
        { "<div data-ctfl-baseline-id=\"regBase\"><p>a<html>b</p><span data-ctfl-field=\"title\">x</span></div>", 0 },
        { "<div data-ctfl-entry-id=regBase><table><tr><td data-ctfl-field=title>x</td></tr></table></div>", 0 },
        { "<div data-ctfl-baseline-id=\"regBase\" data-ctfl-flag=\"a b\">x</div>", 0 },
        { "<ul data-ctfl-baseline-id=regBase><li data-ctfl-entry-id=regInner>a<li data-ctfl-entry-id=regVarB>b</ul>", 0 },
        { "<div data-ctfl-entry-id=regBase><span data-ctfl-field=t/>x</div>", 0 },
        { "<div data-ctfl-entry-id=regBase><a href=1><a href=2 data-ctfl-field=t>x</a></a></div>", 0 },
        { "<div data-ctfl-entry-id=regBase><h2><h3 data-ctfl-field=t>x</h3></h2></div>", 0 },
        { "<div data-ctfl-entry-id=regBase><svg><div data-ctfl-field=t>x</div></svg></div>", 0 },
        { "<div data-ctfl-entry-id=regBase><span data-ctfl-field=t>x</div>", 0 },
        { "<div data-ctfl-entry-id=regBase>x</div>trailing", 0 },
        /* -1: either; identical when it applies */
        { NESTED_TEMPLATES, -1 },
        { "<p data-ctfl-entry-id=regBase>a<div>b</div></p>", -1 },
        { "<div data-ctfl-baseline-id=\"regBase\"><sp\xc3\xa9n data-ctfl-field=\"title\">x</sp\xc3\xa9n></div>", -1 },
        { "<div data-ctfl-entry-id=regBase><noscript><img src=a.png><i data-ctfl-flag=k>n</i></noscript>"
          "<iframe><p>f</p></iframe><i data-ctfl-flag=k>z</i></div>", -1 },
        { "<DIV\tclass=a  data-ctfl-baseline-id='regBase'\r\n onclick=\"x>1\" @click=go [prop]=v>\r\n"
          " <!-- <span data-ctfl-field=title>c</span> --><![CDATA[ x ]]><br/><svg viewBox=\"0 0 1 1\"><linearGradient/></svg>"
          "<H2 CLASS=t DATA-CTFL-FIELD=title>old <I>title</I></H2 >\n<?php echo 1 ?><p>unclosed<p>para</DIV>", -1 },
        { "<div data-ctfl-entry-id=regBase><math><mi data-ctfl-field=t>x</mi></math></div>", -1 },
        { "<div data-ctfl-entry-id=regBase><p><span><div data-ctfl-field=t>x</div></span></p></div>", -1 },
    };
    char *deep = "", *tail = "";
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int applied = fast_check_all(p, cases[i].html, strlen(cases[i].html));
        if (cases[i].fast >= 0 && applied != cases[i].fast)
            fail_msg("case %u: fast path %s: %s", i, applied ? "applied" : "not applied", cases[i].html);
    }
    /* the slow path reads "a=b" before a dropped attribute and "/>" as "b", not "b/" */
    {
        fx *f = fixture(p, SEL(1));
        assert_string_equal(rewrite(f, "<img data-ctfl-baseline-id=regBase alt=\"a>b\"/>", NULL),
                            "<img data-ctfl-baseline-id=regBase alt=\"a>b\" data-ctfl-entry-id=\"regVarA\""
                            " data-ctfl-optimization-id=\"regExp\" data-ctfl-variant-index=\"1\"/>");
    }
    /* too deep for the slow path to resolve everything: left to it */
    for (int i = 0; i < CTFL_REGION_MAX_DEPTH + 2; i++) {
        deep = apr_pstrcat(p, deep, "<div data-ctfl-entry-id=regBase>", NULL);
        tail = apr_pstrcat(p, tail, "</div>", NULL);
    }
    assert_false(fast_check_all(p, apr_pstrcat(p, deep, "x", tail, NULL), strlen(deep) + 1 + strlen(tail)));
    /* a page charset byte that libxml2 would convert: left to the slow path */
    {
        const char *in = "<div data-ctfl-baseline-id=\"regBase\" data-ctfl-flag=\"caf\xe9\">x</div>";
        ctfl_region_env env;
        const char *out;
        apr_size_t n;
        memset(&env, 0, sizeof(env));
        assert_int_equal(ctfl_region_rewrite_unconsented(p, in, strlen(in), start_tag_len(in, strlen(in)),
                                                         "windows-1252", &env, &out, &n, NULL), 0);
    }
    /* the output cap: kept, as the slow path keeps it */
    {
        const char *in = "<div data-ctfl-baseline-id=\"regBase\">x</div>";
        ctfl_region_env env;
        memset(&env, 0, sizeof(env));
        env.max_output = 20;
        assert_int_equal(fast_same_as_slow(p, in, strlen(in), "utf-8", &env), 1);
    }
}

/* Random markup (a fixed seed), through the rewriter: every marked element it
 * hands over is identical on both paths whenever the fast path applies. */
typedef struct {
    uint32_t s;
    apr_pool_t *p;
    char *buf;
    apr_size_t n, cap;
} gen;

static unsigned gen_next(gen *g, unsigned n)
{
    g->s = g->s * 1103515245u + 12345u;
    return (g->s >> 16) % n;
}

static void gen_put(gen *g, const char *s)
{
    apr_size_t k = strlen(s);
    if (g->n + k + 1 > g->cap) {
        apr_size_t cap = (g->n + k + 1) * 2;
        char *nb = apr_palloc(g->p, cap);
        if (g->n)
            memcpy(nb, g->buf, g->n);
        g->buf = nb;
        g->cap = cap;
    }
    memcpy(g->buf + g->n, s, k + 1);
    g->n += k;
}

static void gen_element(gen *g, int depth)
{
    static const char *const names[] = {
        "div", "p", "span", "li", "ul", "a", "b", "i", "em", "h2", "h3", "section", "img", "br", "svg",
        "my-card", "strong", "blockquote", "picture", "source", "script", "ol", "u", "DIV", "Span", "hr",
        "table", "td", "template", "textarea", "small", "article", "figure", "nav", "h1", "label", "input",
        "noscript", "title", "math", "path", "foreignObject", "font", "center", "pre", "code", "tt", "big",
        "main", "li", "p", "dl", "dd", "button", "select", "wbr", "iframe", "desc", "Template", "style"
    };
    static const char *const attrs[] = {
        " data-ctfl-baseline-id=regBase", " DATA-CTFL-ENTRY-ID='regInner'", " data-ctfl-entry-id=\"x1\"",
        " data-ctfl-field=title", " data-ctfl-flag=k", " data-ctfl-flag-if=\"k\"", " data-ctfl-field-attr=src",
        " class=x", " data-ctfl-sticky=1", " data-ctfl-optimization-id", " data-ctfl-variant-index=\"0\"",
        " data-ctfl-baseline-id=\"bad id\"", " data-ctfl-entry-id=a&amp;b", " id=\"a>b\"", " /",
        " data-ctfl-baseline-id=", " data-ctfl-empty-variant=true", " Data-Ctfl-Field-Attr=HREF",
        " data-ctfl-entry-id=regVarB/", " data-ctfl-flag=\"a b\"", "\n\tdata-ctfl-baseline-id = 'x.y-z_1'",
        " color=red", " data-ctfl-baseline-id=\"caf\xc3\xa9\""
    };
    const char *name = names[gen_next(g, sizeof(names) / sizeof(names[0]))];
    unsigned kids = depth < 5 ? gen_next(g, 4) : 0, na = gen_next(g, 4);
    gen_put(g, "<");
    gen_put(g, name);
    for (unsigned i = 0; i < na; i++)
        gen_put(g, attrs[gen_next(g, sizeof(attrs) / sizeof(attrs[0]))]);
    gen_put(g, gen_next(g, 8) ? ">" : "/>");
    for (unsigned k = 0; k < kids; k++) {
        if (gen_next(g, 2))
            gen_put(g, gen_next(g, 4) ? "text " : gen_next(g, 2) ? "caf\xc3\xa9 &amp; " : "<!-- <p data-ctfl-entry-id=c> -->");
        gen_element(g, depth + 1);
    }
    if (gen_next(g, 6)) {
        gen_put(g, "</");
        gen_put(g, name);
        gen_put(g, ">");
    }
}

static void test_unconsented_fast_path_random(void **state)
{
    apr_pool_t *p = *state;
    ctfl_region_env env;
    unsigned elements = 0, fast = 0;
    memset(&env, 0, sizeof(env));
    for (uint32_t seed = 1; seed <= 2000; seed++) {
        gen g = { seed, p, NULL, 0, 0 };
        collected c = { p, apr_array_make(p, 8, sizeof(const char *)), apr_array_make(p, 8, sizeof(apr_size_t)) };
        ctfl_rewriter_opts o;
        ctfl_rewriter *rw;
        gen_put(&g, "<body>");
        for (int k = 0; k < 3; k++)
            gen_element(&g, 0);
        gen_put(&g, "</body>");
        memset(&o, 0, sizeof(o));
        o.emit = collect_emit;
        o.on_element = collect_element;
        o.element_ctx = &c;
        rw = ctfl_rewriter_create(p, &o);
        assert_int_equal(ctfl_rewriter_feed(rw, g.buf, g.n), APR_SUCCESS);
        assert_int_equal(ctfl_rewriter_finish(rw), APR_SUCCESS);
        for (int k = 0; k < c.elems->nelts; k++) {
            elements++;
            fast += (unsigned)fast_same_as_slow(p, APR_ARRAY_IDX(c.elems, k, const char *),
                                                APR_ARRAY_IDX(c.lens, k, apr_size_t), "utf-8", &env);
        }
        if (seed % 100 == 0)
            apr_pool_clear(p);
    }
    print_message("random: %u marked elements, %u on the fast path\n", elements, fast);
    assert_true(fast > 0 && fast < elements);
}

/* A kept context is replaced after many elements or many distinct names (what
 * one hostile page can make it hold stays bounded): the results do not change. */
static void test_kept_parser_many_elements(void **state)
{
    apr_pool_t *p = *state, *scratch;
    fx *f = fixture(p, SEL(1));
    ctfl_region_parser *ps = ctfl_region_parser_make(p);
    apr_pool_create(&scratch, p);
    for (int i = 0; i < 5000; i++) {
        const char *html = apr_psprintf(scratch, "<div data-ctfl-baseline-id=\"regBase\" data-ctfl-n%d=x>"
                                        "<h2 data-ctfl-field=title>t</h2></div>", i);
        apr_size_t len = strlen(html), out_len = 0;
        const char *reason = NULL, *out = NULL;
        ctfl_region *r = ctfl_region_parse_with(ps, scratch, html, len, start_tag_len(html, len),
                                                i % 3 ? "utf-8" : "windows-1252", NULL, 0,
                                                &reason);
        if (!r) fail_msg("element %d kept: %s", i, reason);
        assert_int_equal(ctfl_region_rewrite(r, &f->env, &out, &out_len, NULL), CTFL_REGION_REWRITTEN);
        if (!memmem(out, out_len, "data-ctfl-variant-index=\"1\"", strlen("data-ctfl-variant-index=\"1\"")))
            fail_msg("element %d: %.*s", i, (int)out_len, out);
        apr_pool_clear(scratch);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_attributes_without_personalization, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_attribute_splice_keeps_case_and_quoting, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_stale_attributes_dropped, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_id_not_stamped, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_template_variant_chosen, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_templates_removed_in_every_branch, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_empty_variant, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_field_binding_variant, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_probe_marker_keeps_tokenization, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_field_binding_baseline_keeps_origin, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_field_owner, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_field_implied_ends, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_entry_unavailable_keeps_origin, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_flags, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_flag_truthiness_and_hostile_values, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_flags_outside_marked_elements, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_flag_element_containing_entries, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_flags_outside_without_flags, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_flags_outside_any_chunking, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_windows_1252_page, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_windows_1252_attribute_values, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_kept, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_nested_fields_identified, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_nested_fields_new_visitor, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_nested_templates, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_ids, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_nested_implied_ends, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_depth_cap, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_disagreement_kept, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_raw_text_elements, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_nesting_work_cap, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_output_cap, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_bytes_outside_splices_identical, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_with_rewriter_any_chunking, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_unconsented_fast_path_corpus, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_unconsented_fast_path_identical, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_unconsented_fast_path_random, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_kept_parser_many_elements, unit_pool_setup, unit_pool_teardown),
    };
    apr_pool_t *global;
    ctfl_region_global_init();
    apr_initialize();
    apr_pool_create(&global, NULL);
    kept_parser = ctfl_region_parser_make(global);
    {
        int failed = cmocka_run_group_tests(tests, NULL, NULL);
        apr_pool_destroy(global);               /* frees the kept libxml2 context */
        return failed;
    }
}
