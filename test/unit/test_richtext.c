/* Unit tests for ctfl_richtext: the C renderer against the output of the npm package
 * @contentful/rich-text-html-renderer (test/unit/data/richtext, made by
 * test/richtext-oracle/generate.mjs), the merge tag fixture through the entry index, cyclic
 * graphs, the depth bound and the output cap. */
#include "unit.h"
#include "ctfl_richtext.h"
#include "ctfl_json_value.h"
#include "ctfl_entries.h"

#include <apr_file_info.h>
#include <apr_tables.h>

#define DATA_DIR "test/unit/data/richtext"
#define MIN_CASES 130   /* the committed cases: an empty or unreadable directory must fail */

/* ---- helpers ------------------------------------------------------------- */

static ctfl_value *parse(apr_pool_t *p, const char *text, apr_size_t len)
{
    ctfl_value *v = NULL;
    const char *err = NULL;
    if (ctfl_json_parse_value(p, text, len, &v, &err) != 0) fail_msg("test JSON invalid: %s", err);
    return v;
}

static ctfl_value *parse_str(apr_pool_t *p, const char *text)
{
    return parse(p, text, strlen(text));
}

/* Mutable member of a parsed object (tests build cycles by patching pointers). */
static ctfl_value **slot(ctfl_value *obj, const char *key)
{
    for (apr_size_t i = 0; obj && obj->type == CTFL_V_OBJECT && i < obj->u.obj.n; i++)
        if (strcmp(obj->u.obj.keys[i], key) == 0) return &obj->u.obj.vals[i];
    fail_msg("no member %s", key);
    return NULL;
}

static ctfl_value *object1(apr_pool_t *p, const char *k1, ctfl_value *v1, const char *k2, ctfl_value *v2)
{
    ctfl_value *o = ctfl_value_new(p, CTFL_V_OBJECT);
    o->u.obj.n = k2 ? 2 : 1;
    o->u.obj.keys = apr_pcalloc(p, 2 * sizeof(char *));
    o->u.obj.vals = apr_pcalloc(p, 2 * sizeof(ctfl_value *));
    o->u.obj.keys[0] = k1;
    o->u.obj.vals[0] = v1;
    o->u.obj.keys[1] = k2;
    o->u.obj.vals[1] = v2;
    return o;
}

static ctfl_value *array1(apr_pool_t *p, ctfl_value *item)
{
    ctfl_value *a = ctfl_value_new(p, CTFL_V_ARRAY);
    a->u.arr.n = 1;
    a->u.arr.items = apr_pcalloc(p, sizeof(ctfl_value *));
    a->u.arr.items[0] = item;
    return a;
}

/* A document whose single text node sits `depth` levels below it (blockquotes around it). */
static ctfl_value *deep_document(apr_pool_t *p, int depth)
{
    ctfl_value *text = ctfl_value_new(p, CTFL_V_OBJECT), *node = text;
    text->u.obj.n = 3;
    text->u.obj.keys = apr_pcalloc(p, 3 * sizeof(char *));
    text->u.obj.vals = apr_pcalloc(p, 3 * sizeof(ctfl_value *));
    text->u.obj.keys[0] = "nodeType";
    text->u.obj.vals[0] = ctfl_value_string(p, "text");
    text->u.obj.keys[1] = "value";
    text->u.obj.vals[1] = ctfl_value_string(p, "deep");
    text->u.obj.keys[2] = "marks";
    text->u.obj.vals[2] = ctfl_value_new(p, CTFL_V_ARRAY);
    for (int i = 1; i < depth; i++)
        node = object1(p, "nodeType", ctfl_value_string(p, "blockquote"), "content", array1(p, node));
    return object1(p, "nodeType", ctfl_value_string(p, "document"), "content", array1(p, node));
}

/* The callback the oracle's "inline" option mirrors: text for targets whose sys.id is mapped. */
static const char *inline_from_map(void *ctx, const ctfl_value *target)
{
    const ctfl_value *map = ctx;
    const char *id = ctfl_value_str(ctfl_value_path(target, "sys.id"));
    return id ? ctfl_value_str(ctfl_value_get(map, id)) : NULL;
}

static apr_size_t first_difference(const char *a, apr_size_t na, const char *b, apr_size_t nb)
{
    apr_size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* ---- the oracle cases ---------------------------------------------------- */

enum { MISMATCH, RENDERED, BOTH_FAIL, REFUSED };

/* How the case went: MISMATCH (with a message) unless the C renderer agrees with the oracle. */
static int run_case(apr_pool_t *p, const char *name)
{
    const char *base = apr_pstrcat(p, DATA_DIR "/", name, NULL);
    apr_size_t in_len = 0, want_len = 0, got_len = 0;
    char *in = unit_read_file(p, apr_pstrcat(p, base, ".json", NULL), &in_len);
    char *want = unit_read_file(p, apr_pstrcat(p, base, ".html", NULL), &want_len);
    char *throws = unit_read_file(p, apr_pstrcat(p, base, ".throws", NULL), NULL);
    ctfl_value *c = in ? parse(p, in, in_len) : NULL;
    const ctfl_value *inline_map = ctfl_value_get(c, "inline");
    const char *refuses = ctfl_value_str(ctfl_value_get(c, "c_refuses"));
    ctfl_rt_options opts = { inline_map ? inline_from_map : NULL, (void *)inline_map, 0 };
    const char *got = NULL, *err = NULL;
    int rc = ctfl_rt_render(p, ctfl_value_get(c, "doc"), &opts, &got, &got_len, &err);

    if (!in) {
        fprintf(stderr, "%s: unreadable\n", name);
        return MISMATCH;
    }
    if (!want == !throws) {
        fprintf(stderr, "%s: needs exactly one of .html and .throws (run generate.mjs)\n", name);
        return MISMATCH;
    }
    if (throws || refuses) {
        if (rc == 0) {
            fprintf(stderr, "%s: the oracle %s, the C renderer gave: %s\n", name,
                    throws ? "throws" : "is refused on purpose", got);
            return MISMATCH;
        }
        if (!err || strncmp(err, "rich text: ", 11) != 0) {
            fprintf(stderr, "%s: failure without a reason\n", name);
            return MISMATCH;
        }
        return throws ? BOTH_FAIL : REFUSED;
    }
    if (rc != 0) {
        fprintf(stderr, "%s: failed (%s), oracle: %s\n", name, err, want);
        return MISMATCH;
    }
    if (got_len != want_len || memcmp(got, want, want_len) != 0 || got[got_len] != '\0') {
        apr_size_t at = first_difference(got, got_len, want, want_len);
        fprintf(stderr, "%s: differs at byte %lu\n  want: %s\n  got:  %s\n", name,
                (unsigned long)at, want + (at > 40 ? at - 40 : 0), got + (at > 40 ? at - 40 : 0));
        return MISMATCH;
    }
    return RENDERED;
}

static void test_matches_oracle(void **state)
{
    apr_pool_t *p = *state;
    apr_dir_t *dir;
    apr_finfo_t fi;
    int count[4] = { 0 }, cases = 0;

    if (apr_dir_open(&dir, DATA_DIR, p) != APR_SUCCESS) fail_msg("cannot open %s (run from the repo root)", DATA_DIR);
    while (apr_dir_read(&fi, APR_FINFO_NAME, dir) == APR_SUCCESS) {
        apr_size_t n = strlen(fi.name);
        apr_pool_t *sub;
        if (n <= 5 || strcmp(fi.name + n - 5, ".json") != 0) continue;
        apr_pool_create(&sub, p);
        cases++;
        count[run_case(sub, apr_pstrndup(sub, fi.name, n - 5))]++;
        apr_pool_destroy(sub);
    }
    apr_dir_close(dir);
    print_message("rich text cases: %d: %d rendered identically, %d throw in both, %d refused by design, "
                  "%d mismatches\n", cases, count[RENDERED], count[BOTH_FAIL], count[REFUSED], count[MISMATCH]);
    assert_true(cases >= MIN_CASES);
    assert_int_equal(count[MISMATCH], 0);
}

/* ---- merge tags through the real entry index ----------------------------- */

typedef struct {
    const ctfl_value *profile;
    int calls;
} merge_ctx;

/* Test stand-in for the merge tag resolver (spec §4.5 with a dotted id): profile value or
 * nt_fallback; other inline entries keep the default rendering. */
static const char *merge_tag(void *ctx, const ctfl_value *target)
{
    merge_ctx *m = ctx;
    const char *id = ctfl_value_str(ctfl_value_path(target, "fields.nt_mergetag_id"));
    const char *ct = ctfl_value_str(ctfl_value_path(target, "sys.contentType.sys.id"));
    const char *v;
    m->calls++;
    if (!id || !ct || strcmp(ct, "nt_mergetag") != 0) return NULL;
    v = ctfl_value_str(ctfl_value_path(m->profile, id));
    if (v && *v) return v;
    v = ctfl_value_str(ctfl_value_path(target, "fields.nt_fallback"));
    return v ? v : "";
}

static const ctfl_value *fixture_text(apr_pool_t *p, const char *entry_id)
{
    apr_size_t len = 0;
    const char *err = NULL;
    char *path = apr_psprintf(p, "%s/fixtures/contentful/entries/%s.json", unit_shared_dir(), entry_id);
    char *body = unit_read_file(p, path, &len);
    ctfl_entries *e = ctfl_entries_make(p);
    if (!body) fail_msg("fixture missing: %s (set CTFL_SHARED)", path);
    if (ctfl_entries_add_json(e, body, len, &err) != 0) fail_msg("fixture %s: %s", path, err);
    return ctfl_value_path(ctfl_entries_entry(e, entry_id), "fields.text");
}

static const ctfl_value *visitor_profile(apr_pool_t *p, const char *name)
{
    apr_size_t len = 0;
    char *path = apr_psprintf(p, "%s/fixtures/experience/%s.json", unit_shared_dir(), name);
    char *body = unit_read_file(p, path, &len);
    if (!body) fail_msg("fixture missing: %s", path);
    return ctfl_value_path(parse(p, body, len), "data.profile");
}

static void test_merge_tag_fixture(void **state)
{
    apr_pool_t *p = *state;
    const ctfl_value *doc = fixture_text(p, "1MwiFl4z7gkwqGYdvCmr8c");
    merge_ctx m = { visitor_profile(p, "new-visitor"), 0 };
    ctfl_rt_options opts = { merge_tag, &m, 0 };
    const char *html, *want;
    apr_size_t len;

    assert_non_null(doc);
    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, &len, NULL), 0);
    assert_string_equal(html, "<p>This is a merge tag content entry that displays the visitor&#39;s continent "
                              "&quot;EU&quot; embedded within the text.</p>");
    assert_int_equal(m.calls, 1);
    want = unit_read_file(p, DATA_DIR "/fixture-1MwiFl4z7gkwqGYdvCmr8c-text-new-visitor.html", NULL);
    assert_non_null(want);
    assert_string_equal(html, want);
    assert_int_equal(len, strlen(want));

    /* No continent in the profile: the merge tag's fallback. */
    m.profile = parse_str(p, "{\"location\":{}}");
    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, NULL, NULL), 0);
    assert_non_null(strstr(html, "continent &quot;Nowhere&quot; embedded"));

    /* No callback: the package's default for an inline entry. */
    assert_int_equal(ctfl_rt_render(p, doc, NULL, &html, NULL, NULL), 0);
    assert_non_null(strstr(html, "&quot;<span>type: embedded-entry-inline id: nM127uVevlpDWytfZRyum</span>&quot;"));
}

/* ---- graphs, callback contract, bounds ----------------------------------- */

typedef struct {
    const ctfl_value *seen[4];
    int calls;
    const char *answer;
} record_ctx;

static const char *record_target(void *ctx, const ctfl_value *target)
{
    record_ctx *r = ctx;
    if (r->calls < 4) r->seen[r->calls] = target;
    r->calls++;
    return r->answer;
}

static void test_cyclic_graph(void **state)
{
    apr_pool_t *p = *state;
    /* The inline entry's own rich text field is this very document: a pointer cycle. */
    ctfl_value *doc = parse_str(p,
        "{\"nodeType\":\"document\",\"content\":[{\"nodeType\":\"paragraph\",\"content\":["
        "{\"nodeType\":\"embedded-entry-inline\",\"content\":[],\"data\":{\"target\":"
        "{\"sys\":{\"id\":\"self\",\"type\":\"Entry\"},\"fields\":{\"text\":null}}}},"
        "{\"nodeType\":\"embedded-entry-block\",\"content\":[],\"data\":{\"target\":null}}]}]}");
    ctfl_value *para = doc->u.obj.vals[1]->u.arr.items[0];
    ctfl_value *inl = (*slot(para, "content"))->u.arr.items[0];
    ctfl_value *target = *slot(*slot(inl, "data"), "target");
    record_ctx r = { { NULL }, 0, NULL };
    ctfl_rt_options opts = { record_target, &r, 0 };
    const char *html;

    *slot(*slot(target, "fields"), "text") = doc;
    /* The embedded block's target points back at the document too. */
    *slot(*slot(para->u.obj.vals[1]->u.arr.items[1], "data"), "target") = doc;

    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, NULL, NULL), 0);
    assert_string_equal(html, "<p><span>type: embedded-entry-inline id: self</span><div></div></p>");
    assert_int_equal(r.calls, 1);
    assert_ptr_equal(r.seen[0], target);          /* the callback gets data.target itself */

    r.answer = "me & you";
    r.calls = 0;
    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, NULL, NULL), 0);
    assert_string_equal(html, "<p>me &amp; you<div></div></p>");
}

static void test_callback_without_target(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *doc = parse_str(p, "{\"content\":[{\"nodeType\":\"embedded-entry-inline\",\"content\":[]},"
                                   "{\"nodeType\":\"embedded-entry-inline\",\"data\":\"x\"}]}");
    record_ctx r = { { NULL }, 0, "" };
    ctfl_rt_options opts = { record_target, &r, 0 };
    const char *html = "unset", *err = NULL;

    /* No data.target: the callback gets NULL and may still answer. */
    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, NULL, NULL), 0);
    assert_string_equal(html, "");
    assert_int_equal(r.calls, 2);
    assert_null(r.seen[0]);
    assert_null(r.seen[1]);
    /* ... and when it declines, the default throws like the package does. */
    r.answer = NULL;
    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, NULL, &err), -1);
    assert_null(html);
    assert_non_null(err);
}

static void test_depth_bound(void **state)
{
    apr_pool_t *p = *state;
    const char *html, *err = NULL;
    apr_size_t len;

    assert_int_equal(ctfl_rt_render(p, deep_document(p, CTFL_RT_MAX_DEPTH), NULL, &html, &len, NULL), 0);
    assert_int_equal(len, (CTFL_RT_MAX_DEPTH - 1) * strlen("<blockquote></blockquote>") + 4);
    assert_int_equal(ctfl_rt_render(p, deep_document(p, CTFL_RT_MAX_DEPTH + 1), NULL, &html, &len, &err), -1);
    assert_string_equal(err, "rich text: nested too deeply");
    assert_int_equal(len, 0);
    /* Far deeper than any stack would take if the bound were missing. */
    assert_int_equal(ctfl_rt_render(p, deep_document(p, 200000), NULL, &html, NULL, &err), -1);

    /* Node types are property keys: nested arrays are bounded too. */
    {
        ctfl_value *type = ctfl_value_string(p, "paragraph");
        for (int i = 0; i < 100000; i++) type = array1(p, type);
        ctfl_value *node = object1(p, "nodeType", type, "content", ctfl_value_new(p, CTFL_V_ARRAY));
        ctfl_value *doc = object1(p, "content", array1(p, node), NULL, NULL);
        assert_int_equal(ctfl_rt_render(p, doc, NULL, &html, NULL, &err), -1);
        assert_string_equal(err, "rich text: nested too deeply");
    }
}

static void test_output_cap(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *doc = parse_str(p, "{\"content\":[{\"nodeType\":\"paragraph\",\"content\":["
                                   "{\"nodeType\":\"text\",\"value\":\"a<b\",\"marks\":[{\"type\":\"bold\"}]}]}]}");
    ctfl_rt_options opts = { NULL, NULL, 0 };
    const char *html, *err = NULL;
    apr_size_t len;

    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, &len, NULL), 0);
    assert_string_equal(html, "<p><b>a&lt;b</b></p>");
    opts.max_bytes = len;
    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, NULL, NULL), 0);
    opts.max_bytes = len - 1;
    assert_int_equal(ctfl_rt_render(p, doc, &opts, &html, NULL, &err), -1);
    assert_string_equal(err, "rich text: output exceeds the size limit");
}

static void test_large_document(void **state)
{
    apr_pool_t *p = *state;
    /* 20000 paragraphs: the output buffer grows well past its first allocation. */
    apr_array_header_t *parts = apr_array_make(p, 20002, sizeof(char *));
    const char *html;
    apr_size_t len;

    APR_ARRAY_PUSH(parts, const char *) = "{\"content\":[";
    for (int i = 0; i < 20000; i++)
        APR_ARRAY_PUSH(parts, const char *) = apr_psprintf(p, "%s{\"nodeType\":\"paragraph\",\"content\":"
            "[{\"nodeType\":\"text\",\"value\":\"%d & 'x'\",\"marks\":[]}]}", i ? "," : "", i);
    APR_ARRAY_PUSH(parts, const char *) = "]}";
    assert_int_equal(ctfl_rt_render(p, parse_str(p, apr_array_pstrcat(p, parts, 0)), NULL, &html, &len, NULL), 0);
    assert_int_equal(len, strlen(html));
    assert_memory_equal(html, "<p>0 &amp; &#39;x&#39;</p><p>1 &amp; ", 36);
    assert_non_null(strstr(html, "<p>19999 &amp; &#39;x&#39;</p>"));
    assert_int_equal(strcmp(html + len - 30, "<p>19999 &amp; &#39;x&#39;</p>"), 0);
}

static void test_null_arguments(void **state)
{
    apr_pool_t *p = *state;
    const char *html = NULL;
    apr_size_t len = 99;

    assert_int_equal(ctfl_rt_render(p, NULL, NULL, &html, &len, NULL), 0);
    assert_string_equal(html, "");
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_matches_oracle, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_merge_tag_fixture, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_cyclic_graph, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_callback_without_target, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_depth_bound, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_output_cap, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_large_document, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_null_arguments, unit_pool_setup, unit_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
