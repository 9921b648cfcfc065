/* Unit tests for ctfl_entries: CDA collection responses -> linked entry graph
 * (spec §4.1, §9.5): link resolution from includes, unknown links kept,
 * assets, cycles, merging responses, missing-link discovery. */
#include "unit.h"
#include "ctfl_entries.h"
#include "ctfl_json_value.h"

#include <dirent.h>

static const char *data_dir(void)
{
    const char *d = getenv("CTFL_UNIT_DATA");
    return d && *d ? d : "test/unit/data";
}

static char *read_or_fail(apr_pool_t *p, const char *path, apr_size_t *len)
{
    char *text = unit_read_file(p, path, len);
    if (!text) fail_msg("missing file: %s", path);
    return text;
}

static void add_file(ctfl_entries *e, apr_pool_t *p, const char *path)
{
    apr_size_t len = 0;
    char *text = read_or_fail(p, path, &len);
    const char *err = NULL;
    if (ctfl_entries_add_json(e, text, len, &err) != 0) fail_msg("%s: %s", path, err);
}

static ctfl_entries *fixture_index(apr_pool_t *p, const char *id)
{
    ctfl_entries *e = ctfl_entries_make(p);
    add_file(e, p, apr_psprintf(p, "%s/fixtures/contentful/entries/%s.json", unit_shared_dir(), id));
    return e;
}

static ctfl_entries *graph_index(apr_pool_t *p)
{
    ctfl_entries *e = ctfl_entries_make(p);
    add_file(e, p, apr_psprintf(p, "%s/entries-graph.json", data_dir()));
    return e;
}

static ctfl_value *parse(apr_pool_t *p, const char *json)
{
    ctfl_value *v = NULL;
    const char *err = NULL;
    if (ctfl_json_parse_value(p, json, strlen(json), &v, &err) != 0) fail_msg("%s: %s", err, json);
    return v;
}

static const char *id_of(const ctfl_value *v)
{
    return ctfl_value_str(ctfl_value_path(v, "sys.id"));
}

static const char *type_of(const ctfl_value *v)
{
    return ctfl_value_str(ctfl_value_path(v, "sys.type"));
}

/* ---- real fixtures ------------------------------------------------------- */

static void test_fixture_links_resolved(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, "4ib0hsHWoSOnCVdDkizE8d");
    const ctfl_value *base = ctfl_entries_entry(e, "4ib0hsHWoSOnCVdDkizE8d");
    const ctfl_value *exps = ctfl_value_path(base, "fields.nt_experiences");
    const ctfl_value *europe = ctfl_value_at(exps, 0);

    assert_non_null(base);
    assert_int_equal(ctfl_entries_count(e), 7);     /* the item and 6 includes */
    assert_int_equal(ctfl_value_len(exps), 2);
    assert_string_equal(type_of(europe), "Entry");
    assert_string_equal(ctfl_value_str(ctfl_value_path(europe, "fields.nt_experience_id")), "2qVK4T5lnScbswoyBuGipd");
    assert_string_equal(type_of(ctfl_value_at(exps, 1)), "Entry");
    /* two levels down: the experience's audience and variants are entries too */
    assert_string_equal(ctfl_value_str(ctfl_value_path(europe, "fields.nt_audience.fields.nt_audience_id")),
                        "2WzXDaWtDmstHl9p8Wufpp");
    assert_string_equal(ctfl_value_str(ctfl_value_path(ctfl_value_at(ctfl_value_path(europe, "fields.nt_variants"), 0),
                                                       "fields.text")),
                        "This is a variant content entry for visitors from Europe.");
    /* the same target is the same object (a graph, not copies) */
    assert_ptr_equal(europe, ctfl_entries_entry(e, "2qVK4T5lnScbswoyBuGipd"));
    assert_ptr_equal(ctfl_value_at(ctfl_value_path(europe, "fields.nt_variants"), 0),
                     ctfl_entries_entry(e, "4k6ZyFQnR2POY5IJLLlJRb"));
    /* sys links are not fields: they stay links */
    assert_string_equal(ctfl_value_str(ctfl_value_path(base, "sys.contentType.sys.type")), "Link");
    assert_string_equal(ctfl_value_str(ctfl_value_path(base, "sys.space.sys.type")), "Link");
    /* the raw entry is untouched */
    assert_string_equal(type_of(ctfl_value_at(ctfl_value_path(ctfl_entries_raw(e, "4ib0hsHWoSOnCVdDkizE8d"),
                                                              "fields.nt_experiences"), 0)), "Link");
    /* non-link fields are shared, not copied */
    assert_ptr_equal(ctfl_value_path(base, "fields.text"),
                     ctfl_value_path(ctfl_entries_raw(e, "4ib0hsHWoSOnCVdDkizE8d"), "fields.text"));
    /* containers without links are shared too (copy on write) */
    assert_ptr_equal(ctfl_value_path(europe, "fields.nt_config"),
                     ctfl_value_path(ctfl_entries_raw(e, "2qVK4T5lnScbswoyBuGipd"), "fields.nt_config"));
    assert_null(ctfl_entries_entry(e, "nope"));
    assert_null(ctfl_entries_entry(e, NULL));
}

static void test_fixture_nested_three_levels(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, "1JAU028vQ7v6nB2swl3NBo");
    const ctfl_value *l0 = ctfl_entries_entry(e, "1JAU028vQ7v6nB2swl3NBo");
    const ctfl_value *l1 = ctfl_value_at(ctfl_value_path(l0, "fields.nested"), 0);
    const ctfl_value *l2 = ctfl_value_at(ctfl_value_path(l1, "fields.nested"), 0);
    assert_string_equal(id_of(l1), "5i4SdJXw9oDEY0vgO7CwF4");
    assert_string_equal(id_of(l2), "uaNY4YJ0HFPAX3gKXiRdX");
    assert_string_equal(ctfl_value_str(ctfl_value_path(l2, "fields.text")), "This is a level 2 nested baseline entry.");
    /* the L2 experience is resolved inside L2 */
    assert_string_equal(type_of(ctfl_value_at(ctfl_value_path(l2, "fields.nt_experiences"), 0)), "Entry");
}

static void test_fixture_merge_tag_target(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, "1MwiFl4z7gkwqGYdvCmr8c");
    const ctfl_value *entry = ctfl_entries_entry(e, "1MwiFl4z7gkwqGYdvCmr8c");
    const ctfl_value *para = ctfl_value_at(ctfl_value_path(entry, "fields.text.content"), 0);
    const ctfl_value *inline_node = ctfl_value_at(ctfl_value_get(para, "content"), 1);
    const ctfl_value *target = ctfl_value_path(inline_node, "data.target");
    assert_string_equal(ctfl_value_str(ctfl_value_get(inline_node, "nodeType")), "embedded-entry-inline");
    assert_string_equal(type_of(target), "Entry");
    assert_string_equal(ctfl_value_str(ctfl_value_path(target, "fields.nt_mergetag_id")), "location.continent");
    /* untouched siblings are shared with the raw tree */
    assert_ptr_equal(ctfl_value_at(ctfl_value_get(para, "content"), 0),
                     ctfl_value_at(ctfl_value_path(ctfl_value_at(ctfl_value_path(ctfl_entries_raw(e, "1MwiFl4z7gkwqGYdvCmr8c"),
                                                                                 "fields.text.content"), 0), "content"), 0));
}

/* Every fixture file: every item and include is indexed, and resolving every
 * entry leaves no Entry link to an entry that the same response includes. */
static int dangling_links(const ctfl_entries *e, const ctfl_value *v, int depth)
{
    int n = 0;
    if (!v || depth > 64) return 0;
    if (ctfl_value_is(v, CTFL_V_OBJECT)) {
        const char *t = type_of(v);
        if (t && strcmp(t, "Link") == 0) {
            const char *lt = ctfl_value_str(ctfl_value_path(v, "sys.linkType"));
            return lt && strcmp(lt, "Entry") == 0 && ctfl_entries_raw(e, id_of(v)) ? 1 : 0;
        }
        if (t && strcmp(t, "Entry") == 0 && depth > 0) return 0;    /* a resolved target */
        for (apr_size_t i = 0; i < v->u.obj.n; i++) n += dangling_links(e, v->u.obj.vals[i], depth + 1);
    } else if (ctfl_value_is(v, CTFL_V_ARRAY)) {
        for (apr_size_t i = 0; i < v->u.arr.n; i++) n += dangling_links(e, v->u.arr.items[i], depth + 1);
    }
    return n;
}

static void test_all_fixture_files(void **state)
{
    apr_pool_t *p = *state;
    const char *dir = apr_psprintf(p, "%s/fixtures/contentful/entries", unit_shared_dir());
    DIR *d = opendir(dir);
    struct dirent *de;
    int files = 0;
    if (!d) fail_msg("missing %s", dir);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        apr_size_t len = 0;
        char *text, *id;
        ctfl_value *resp;
        const char *err;
        ctfl_entries *e;
        const ctfl_value *inc;
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        files++;
        id = apr_pstrndup(p, de->d_name, n - 5);
        text = read_or_fail(p, apr_pstrcat(p, dir, "/", de->d_name, NULL), &len);
        assert_int_equal(ctfl_json_parse_value(p, text, len, &resp, &err), 0);
        e = ctfl_entries_make(p);
        assert_int_equal(ctfl_entries_add_response(e, resp, &err), 0);
        assert_non_null(ctfl_entries_entry(e, id));
        inc = ctfl_value_path(resp, "includes.Entry");
        for (apr_size_t i = 0; i < ctfl_value_len(inc); i++) {
            const ctfl_value *r = ctfl_entries_entry(e, id_of(ctfl_value_at(inc, i)));
            assert_non_null(r);
            if (dangling_links(e, r, 0)) fail_msg("%s: %s keeps a resolvable link", id, id_of(r));
        }
        if (dangling_links(e, ctfl_entries_entry(e, id), 0)) fail_msg("%s keeps a resolvable link", id);
    }
    closedir(d);
    assert_int_equal(files, 45);
}

/* ---- synthetic graph ----------------------------------------------------- */

static void test_rich_text_cycle_through_baseline(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = graph_index(p);
    const ctfl_value *base = ctfl_entries_entry(e, "cycleBaseline");
    const ctfl_value *body = ctfl_value_path(base, "fields.body.content");
    const ctfl_value *self = ctfl_value_path(ctfl_value_at(ctfl_value_get(ctfl_value_at(body, 0), "content"), 1), "data.target");
    const ctfl_value *variant = ctfl_value_path(ctfl_value_at(body, 1), "data.target");
    const ctfl_value *asset = ctfl_value_path(ctfl_value_at(body, 2), "data.target");
    const ctfl_value *vbody = ctfl_value_path(variant, "fields.body.content");

    assert_ptr_equal(self, base);                                           /* base -> base */
    assert_ptr_equal(variant, ctfl_entries_entry(e, "cycleVariant"));
    assert_ptr_equal(ctfl_value_path(ctfl_value_at(vbody, 0), "data.target"), base);    /* variant -> base */
    assert_ptr_equal(ctfl_value_path(ctfl_value_at(vbody, 1), "data.target"), variant); /* variant -> variant */
    assert_string_equal(type_of(asset), "Asset");
    /* the experience's nt_variants reaches the same variant object */
    assert_ptr_equal(ctfl_value_at(ctfl_value_path(ctfl_value_at(ctfl_value_path(base, "fields.nt_experiences"), 0),
                                                   "fields.nt_variants"), 0), variant);
    /* a bounded walk refuses the cycle instead of looping */
    assert_null(ctfl_value_to_json(p, base));
    assert_non_null(ctfl_value_to_json(p, ctfl_entries_raw(e, "cycleBaseline")));
}

static void test_mutual_links_assets_and_unknown_links(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = graph_index(p);
    const ctfl_value *a = ctfl_entries_entry(e, "mutualA");
    const ctfl_value *b = ctfl_value_path(a, "fields.related");
    const ctfl_value *missing = ctfl_value_path(a, "fields.missing");
    const ctfl_value *raw_missing = ctfl_value_path(ctfl_entries_raw(e, "mutualA"), "fields.missing");

    assert_string_equal(id_of(b), "mutualB");
    assert_ptr_equal(ctfl_value_path(b, "fields.related"), a);
    assert_ptr_equal(ctfl_entries_entry(e, "mutualB"), b);
    /* Asset links become the asset */
    assert_ptr_equal(ctfl_value_path(a, "fields.image"), ctfl_entries_asset(e, "asset1"));
    assert_string_equal(ctfl_value_str(ctfl_value_path(a, "fields.image.fields.file.url")),
                        "//images.ctfassets.net/synthspace/asset1/abc/logo.png");
    assert_int_equal(ctfl_entries_asset_count(e), 1);
    assert_null(ctfl_entries_entry(e, "asset1"));          /* separate namespaces */
    assert_null(ctfl_entries_asset(e, "mutualA"));
    /* unknown entry, unknown asset, other link types, resource links: left as they are */
    assert_int_equal(ctfl_value_len(missing), 4);
    for (apr_size_t i = 0; i < 4; i++)
        assert_ptr_equal(ctfl_value_at(missing, i), ctfl_value_at(raw_missing, i));
}

static void test_missing_links(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = graph_index(p);
    apr_array_header_t *m = ctfl_entries_missing(e, p, "mutualA", 10);
    assert_int_equal(m->nelts, 1);                          /* assets, Space and resource links are not entries */
    assert_string_equal(APR_ARRAY_IDX(m, 0, const char *), "notIncluded");
    /* reachable through B as well, but reported once */
    m = ctfl_entries_missing(e, p, "mutualB", 10);
    assert_int_equal(m->nelts, 1);
    /* hop bound: B -> A is hop 1, A -> notIncluded hop 2 */
    assert_int_equal(ctfl_entries_missing(e, p, "mutualB", 1)->nelts, 0);
    assert_int_equal(ctfl_entries_missing(e, p, "mutualB", 2)->nelts, 1);
    assert_int_equal(ctfl_entries_missing(e, p, "cycleBaseline", 10)->nelts, 0);
    m = ctfl_entries_missing(e, p, "absent", 10);
    assert_int_equal(m->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(m, 0, const char *), "absent");

    /* a fixture whose raw L0 only: L1 is missing until the rest is merged */
    {
        ctfl_entries *full = fixture_index(p, "1JAU028vQ7v6nB2swl3NBo"), *part = ctfl_entries_make(p);
        assert_int_equal(ctfl_entries_add_entry(part, ctfl_entries_raw(full, "1JAU028vQ7v6nB2swl3NBo")), 0);
        m = ctfl_entries_missing(part, p, "1JAU028vQ7v6nB2swl3NBo", 10);
        assert_int_equal(m->nelts, 2);                      /* nested L1 and the L0 experience */
        assert_int_equal(ctfl_entries_missing(full, p, "1JAU028vQ7v6nB2swl3NBo", 10)->nelts, 0);
    }
}

/* ---- responses, merging -------------------------------------------------- */

static void test_error_and_malformed_responses(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = ctfl_entries_make(p);
    const char *err = NULL;
    const char *nf = "{\"sys\":{\"type\":\"Error\",\"id\":\"NotFound\"},\"message\":\"The resource could not be found.\"}";

    assert_int_equal(ctfl_entries_add_json(e, nf, strlen(nf), &err), -1);
    assert_string_equal(err, "cda error: NotFound");
    assert_int_equal(ctfl_entries_add_response(e, parse(p, "{\"sys\":{\"type\":\"Array\"}}"), &err), -1);
    assert_string_equal(err, "cda: no items array");
    assert_int_equal(ctfl_entries_add_response(e, parse(p, "[1]"), &err), -1);
    assert_int_equal(ctfl_entries_add_response(e, NULL, &err), -1);
    assert_int_equal(ctfl_entries_add_json(e, "{", 1, &err), -1);
    assert_non_null(strstr(err, "bad json"));
    assert_int_equal(ctfl_entries_count(e), 0);

    /* elements without a usable sys.id or of other types are skipped */
    assert_int_equal(ctfl_entries_add_response(e, parse(p,
        "{\"items\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"\"}},{\"sys\":{\"type\":\"Entry\",\"id\":7}},"
        "{\"sys\":{\"type\":\"Entry\"}},{\"sys\":\"x\"},5,{\"sys\":{\"type\":\"Link\",\"id\":\"l\"}},"
        "{\"sys\":{\"type\":\"Entry\",\"id\":\"ok\"},\"fields\":{}}],"
        "\"includes\":{\"Entry\":{\"not\":\"an array\"},\"Asset\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"notAsset\"}}]}}"), &err), 0);
    assert_int_equal(ctfl_entries_count(e), 1);
    assert_int_equal(ctfl_entries_asset_count(e), 0);
    assert_non_null(ctfl_entries_entry(e, "ok"));
    assert_int_equal(ctfl_entries_add_entry(e, parse(p, "{\"fields\":{}}")), -1);
    assert_int_equal(ctfl_entries_add_asset(e, parse(p, "{\"sys\":{\"id\":\"\"}}")), -1);
    /* an empty collection is fine */
    assert_int_equal(ctfl_entries_add_response(e, parse(p, "{\"sys\":{\"type\":\"Array\"},\"items\":[]}"), &err), 0);
}

static void test_merge_batches(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *one = ctfl_entries_make(p), *two = ctfl_entries_make(p), *all = ctfl_entries_make(p);
    const char *err;
    const ctfl_value *a;
    apr_array_header_t *ids;

    /* batch 1 has A linking B; B only arrives in batch 2 */
    assert_int_equal(ctfl_entries_add_response(one, parse(p,
        "{\"items\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"A\"},\"fields\":{\"b\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"B\"}}}}]}"), &err), 0);
    assert_int_equal(ctfl_entries_add_response(two, parse(p,
        "{\"items\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"B\"},\"fields\":{\"v\":1}}]}"), &err), 0);
    a = ctfl_entries_entry(one, "A");
    assert_string_equal(type_of(ctfl_value_path(a, "fields.b")), "Link");

    ctfl_entries_merge(all, one);
    ctfl_entries_merge(all, two);
    assert_int_equal(ctfl_entries_count(all), 2);
    a = ctfl_entries_entry(all, "A");
    assert_string_equal(type_of(ctfl_value_path(a, "fields.b")), "Entry");
    assert_true(ctfl_value_path(a, "fields.b.fields.v")->u.n == 1);

    /* merging a newer B replaces the old one, and the memo does not serve stale links */
    ctfl_entries_merge(one, two);
    assert_string_equal(type_of(ctfl_value_path(ctfl_entries_entry(one, "A"), "fields.b")), "Entry");
    {
        ctfl_entries *newer = ctfl_entries_make(p);
        assert_int_equal(ctfl_entries_add_response(newer, parse(p,
            "{\"items\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"B\"},\"fields\":{\"v\":2}}]}"), &err), 0);
        ctfl_entries_merge(all, newer);
        assert_true(ctfl_value_path(ctfl_entries_entry(all, "A"), "fields.b.fields.v")->u.n == 2);
        ctfl_entries_merge(all, all);                       /* no-op */
        ctfl_entries_merge(all, NULL);
        assert_int_equal(ctfl_entries_count(all), 2);
    }
    ids = ctfl_entries_ids(all, p);
    assert_int_equal(ids->nelts, 2);
    assert_true((strcmp(APR_ARRAY_IDX(ids, 0, const char *), "A") == 0) != (strcmp(APR_ARRAY_IDX(ids, 1, const char *), "A") == 0));
}

static void test_add_after_resolution_and_fields_only(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = ctfl_entries_make(p);
    /* links outside fields (sys, metadata) are never resolved, as in contentful.js */
    assert_int_equal(ctfl_entries_add_entry(e, parse(p,
        "{\"sys\":{\"type\":\"Entry\",\"id\":\"A\",\"x\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"A\"}}},"
        "\"metadata\":{\"m\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"A\"}}},"
        "\"fields\":{\"b\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"B\"}}}}")), 0);
    assert_string_equal(type_of(ctfl_value_path(ctfl_entries_entry(e, "A"), "fields.b")), "Link");
    assert_string_equal(type_of(ctfl_value_path(ctfl_entries_entry(e, "A"), "sys.x")), "Link");
    assert_string_equal(type_of(ctfl_value_path(ctfl_entries_entry(e, "A"), "metadata.m")), "Link");
    /* B arrives after A was resolved: A is resolved again */
    assert_int_equal(ctfl_entries_add_entry(e, parse(p, "{\"sys\":{\"type\":\"Entry\",\"id\":\"B\"},\"fields\":{}}")), 0);
    assert_string_equal(type_of(ctfl_value_path(ctfl_entries_entry(e, "A"), "fields.b")), "Entry");
}

static void test_later_duplicate_wins_within_response(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = ctfl_entries_make(p);
    const char *err;
    /* contentful.js builds its lookup from items then includes: the include wins */
    assert_int_equal(ctfl_entries_add_response(e, parse(p,
        "{\"items\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"X\"},\"fields\":{\"v\":\"item\"}}],"
        "\"includes\":{\"Entry\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"X\"},\"fields\":{\"v\":\"include\"}}]}}"), &err), 0);
    assert_int_equal(ctfl_entries_count(e), 1);
    assert_string_equal(ctfl_value_str(ctfl_value_path(ctfl_entries_entry(e, "X"), "fields.v")), "include");
}

static void test_long_link_chain_is_iterative(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = ctfl_entries_make(p);
    const int n = 5000;
    const ctfl_value *v;
    int hops = 0;
    /* e0 -> e1 -> ... -> e4999 -> e0: resolving must neither recurse per link nor loop */
    for (int i = 0; i < n; i++) {
        const char *json = apr_psprintf(p,
            "{\"sys\":{\"type\":\"Entry\",\"id\":\"e%d\"},\"fields\":{\"next\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"e%d\"}}}}",
            i, (i + 1) % n);
        assert_int_equal(ctfl_entries_add_entry(e, parse(p, json)), 0);
    }
    v = ctfl_entries_entry(e, "e0");
    for (const ctfl_value *c = v; hops <= n; hops++) {
        c = ctfl_value_path(c, "fields.next");
        assert_string_equal(type_of(c), "Entry");
        if (c == v) break;
    }
    assert_int_equal(hops, n - 1);
    assert_ptr_equal(ctfl_entries_entry(e, "e4321"), ctfl_value_path(ctfl_entries_entry(e, "e4320"), "fields.next"));
}

/* The memo must not keep the caller's id string: the filter asks with ids from a
 * per-element pool that is cleared and reused before the next element. */
static void test_memo_does_not_keep_the_callers_id(void **state)
{
    apr_pool_t *p = *state, *scratch;
    ctfl_entries *e = ctfl_entries_make(p);
    const ctfl_value *first;
    char *id;
    assert_int_equal(ctfl_entries_add_entry(e, parse(p,
        "{\"sys\":{\"type\":\"Entry\",\"id\":\"Teaser1\"},\"fields\":{\"v\":1}}")), 0);
    apr_pool_create(&scratch, p);
    id = apr_pstrdup(scratch, "Teaser1");
    first = ctfl_entries_entry(e, id);
    assert_non_null(first);
    memcpy(id, "Overrun", 7);                 /* what reuse of the scratch memory does */
    apr_pool_clear(scratch);
    assert_ptr_equal(ctfl_entries_entry(e, "Teaser1"), first);
    assert_null(ctfl_entries_entry(e, "Overrun"));
    apr_pool_destroy(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixture_links_resolved, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_fixture_nested_three_levels, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_fixture_merge_tag_target, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_all_fixture_files, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_rich_text_cycle_through_baseline, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_mutual_links_assets_and_unknown_links, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_missing_links, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_error_and_malformed_responses, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_merge_batches, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_add_after_resolution_and_fields_only, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_later_duplicate_wins_within_response, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_long_link_chain_is_iterative, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_memo_does_not_keep_the_callers_id, unit_pool_setup, unit_pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
