/* Unit tests for ctfl_resolve: the SDK's type predicates (spec §4.2, ported
 * from OptimizationConfig.test.ts), resolve() (§4.3, OptimizedEntryResolver
 * .test.ts), the §9.6 table on the real fixtures for both visitors, the §9.7
 * synthetic cases (a)-(k) in test/unit/data, merge tags (§4.5,
 * MergeTagValueResolver.test.ts) and the tracking attributes (§4.6). */
#include "unit.h"
#include "value_helpers.h"
#include "ctfl_resolve.h"
#include "ctfl_entries.h"
#include "ctfl_json.h"
#include "ctfl_json_value.h"

/* ---- helpers ------------------------------------------------------------- */

static ctfl_value *fixture_response(apr_pool_t *p, const char *id)
{
    return parse_file(p, apr_psprintf(p, "%s/fixtures/contentful/entries/%s.json", unit_shared_dir(), id));
}

static ctfl_value *experience_fixture(apr_pool_t *p, const char *name)
{
    return parse_file(p, apr_psprintf(p, "%s/fixtures/experience/%s", unit_shared_dir(), name));
}

static ctfl_entries *index_of(apr_pool_t *p, const ctfl_value *response)
{
    ctfl_entries *e = ctfl_entries_make(p);
    const char *err = NULL;
    if (ctfl_entries_add_response(e, response, &err) != 0) fail_msg("response: %s", err);
    return e;
}

static ctfl_entries *fixture_index(apr_pool_t *p, const char *id)
{
    return index_of(p, fixture_response(p, id));
}

static apr_array_header_t *selections(apr_pool_t *p, const ctfl_value *experiences)
{
    apr_array_header_t *s = NULL;
    if (ctfl_selections_from_value(p, experiences, &s) != 0) fail_msg("bad selections");
    return s;
}

static apr_array_header_t *selections_json(apr_pool_t *p, const char *json)
{
    return selections(p, parse(p, json));
}

static apr_array_header_t *visitor(apr_pool_t *p, const char *name)
{
    return selections(p, ctfl_value_path(experience_fixture(p, name), "data.experiences"));
}

/* The element of items or includes.Entry with this sys.id, writable: tests
 * edit parsed fixtures before indexing them (the SDK tests mutate theirs). */
static ctfl_value *find_entry(ctfl_value *response, const char *id)
{
    const ctfl_value *lists[2] = { ctfl_value_get(response, "items"), ctfl_value_path(response, "includes.Entry") };
    for (int l = 0; l < 2; l++)
        for (apr_size_t i = 0; i < ctfl_value_len(lists[l]); i++)
            if (strcmp(ctfl_entry_id(ctfl_value_at(lists[l], i)), id) == 0) return lists[l]->u.arr.items[i];
    fail_msg("no entry %s in response", id);
    return NULL;
}

/* Set obj.dotted to v (adding the key if needed), or delete the key when v
 * is NULL. Every segment before the last must exist. */
static void set_path_value(apr_pool_t *p, ctfl_value *obj, const char *dotted, ctfl_value *v)
{
    char *path = apr_pstrdup(p, dotted), *key = strrchr(path, '.');
    ctfl_value *parent = obj;
    if (key) {
        *key++ = '\0';
        parent = (ctfl_value *)ctfl_value_path(obj, path);
    } else {
        key = path;
    }
    if (!ctfl_value_is(parent, CTFL_V_OBJECT)) fail_msg("set_path: no object at %s", dotted);
    for (apr_size_t i = 0; i < parent->u.obj.n; i++) {
        if (strcmp(parent->u.obj.keys[i], key) != 0) continue;
        if (v) {
            parent->u.obj.vals[i] = v;
        } else {
            for (apr_size_t j = i + 1; j < parent->u.obj.n; j++) {
                parent->u.obj.keys[j - 1] = parent->u.obj.keys[j];
                parent->u.obj.vals[j - 1] = parent->u.obj.vals[j];
            }
            parent->u.obj.n--;
        }
        return;
    }
    if (!v) fail_msg("set_path: nothing to delete at %s", dotted);
    {
        apr_size_t n = parent->u.obj.n;
        const char **keys = apr_palloc(p, (n + 1) * sizeof(*keys));
        ctfl_value **vals = apr_palloc(p, (n + 1) * sizeof(*vals));
        if (n) {
            memcpy(keys, parent->u.obj.keys, n * sizeof(*keys));
            memcpy(vals, parent->u.obj.vals, n * sizeof(*vals));
        }
        keys[n] = apr_pstrdup(p, key);
        vals[n] = v;
        parent->u.obj.keys = keys;
        parent->u.obj.vals = vals;
        parent->u.obj.n = n + 1;
    }
}

/* The same with a JSON text (NULL deletes). */
static void set_path(apr_pool_t *p, ctfl_value *obj, const char *dotted, const char *json)
{
    set_path_value(p, obj, dotted, json ? parse(p, json) : NULL);
}

/* An entry value in the CDA shape. */
static ctfl_value *entry(apr_pool_t *p, const char *id, const char *content_type, const char *fields_json)
{
    return parse(p, apr_psprintf(p,
        "{\"metadata\":{\"tags\":[],\"concepts\":[]},\"sys\":{\"space\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Space\",\"id\":\"s\"}},"
        "\"id\":\"%s\",\"type\":\"Entry\",\"createdAt\":\"2026-01-01T00:00:00.000Z\",\"updatedAt\":\"2026-01-01T00:00:00.000Z\","
        "\"environment\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Environment\",\"id\":\"master\"}},\"publishedVersion\":1,"
        "\"revision\":1,\"contentType\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"ContentType\",\"id\":\"%s\"}}},"
        "\"fields\":%s}", id, content_type, fields_json));
}

#define LINK(id) "{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"" id "\"}}"
/* OptimizationConfig.test.ts optimizationEntryBase.fields */
#define EXP_FIELDS "\"nt_name\":\"Example personalization\",\"nt_description\":null,\"nt_type\":\"nt_personalization\"," \
                   "\"nt_audience\":null,\"nt_experience_id\":\"experience-id\""

static ctfl_value *optimization(apr_pool_t *p, const char *extra_fields)
{
    return entry(p, "experience-id", "nt_experience",
                 apr_psprintf(p, "{" EXP_FIELDS "%s%s}", *extra_fields ? "," : "", extra_fields));
}

static const char *attrs_string(apr_pool_t *p, const apr_array_header_t *a)
{
    const char *s = "";
    for (int i = 0; i < a->nelts; i++) {
        const ctfl_attr *at = &APR_ARRAY_IDX(a, i, ctfl_attr);
        s = apr_pstrcat(p, s, i ? " " : "", at->name, "=", at->value, NULL);
    }
    return s;
}

static void expect_resolution(const ctfl_resolution *r, const char *entry_id, ctfl_resolve_outcome outcome,
                              int selection_index, int empty)
{
    if (r->outcome != outcome)
        fail_msg("outcome \"%s\", expected \"%s\"", ctfl_resolve_outcome_name(r->outcome), ctfl_resolve_outcome_name(outcome));
    if (entry_id) assert_string_equal(ctfl_entry_id(r->entry), entry_id);
    else assert_null(r->entry);
    assert_int_equal(r->selection_index, selection_index);
    if (selection_index < 0) assert_null(r->selection);
    else assert_non_null(r->selection);
    assert_int_equal(r->is_empty_variant, empty);
}

/* ---- §4.2 predicates ----------------------------------------------------- */

static void test_predicate_resolved_entry(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *e = entry(p, "entry-id", "article", "{}");
    assert_true(ctfl_is_resolved_entry(e));
    assert_string_equal(ctfl_entry_id(e), "entry-id");
    assert_string_equal(ctfl_entry_content_type(e), "article");

    set_path(p, e, "metadata", NULL);                       /* missing metadata: not an entry */
    assert_false(ctfl_is_resolved_entry(e));
    set_path(p, e, "metadata", "[]");                       /* arrays are not records */
    assert_false(ctfl_is_resolved_entry(e));
    set_path(p, e, "metadata", "{}");
    assert_true(ctfl_is_resolved_entry(e));
    set_path(p, e, "fields", "null");
    assert_false(ctfl_is_resolved_entry(e));
    set_path(p, e, "fields", "{}");
    set_path(p, e, "sys.contentType.sys.id", "1");
    assert_false(ctfl_is_resolved_entry(e));
    set_path(p, e, "sys.contentType.sys.id", "\"article\"");
    set_path(p, e, "sys.id", NULL);
    assert_false(ctfl_is_resolved_entry(e));
    set_path(p, e, "sys.id", "\"entry-id\"");
    assert_true(ctfl_is_resolved_entry(e));
    /* unresolved links are not resolved entries */
    assert_false(ctfl_is_resolved_entry(parse(p, LINK("entry-id"))));
    assert_false(ctfl_is_resolved_entry(NULL));
    assert_false(ctfl_is_resolved_entry(parse(p, "[]")));
}

static void test_predicate_cyclic_entry_graph(void **state)
{
    apr_pool_t *p = *state;
    /* parent.fields.relatedEntry = child; child's rich text embeds parent */
    ctfl_value *resp = parse(p, "{\"items\":[],\"includes\":{\"Entry\":[]}}");
    ctfl_value *parent = entry(p, "entry-id", "article", "{\"relatedEntry\":" LINK("child-entry-id") "}");
    ctfl_value *child = entry(p, "child-entry-id", "article",
        "{\"richText\":{\"nodeType\":\"document\",\"data\":{},\"content\":[{\"nodeType\":\"embedded-entry-block\","
        "\"data\":{\"target\":" LINK("entry-id") "},\"content\":[]}]}}");
    ctfl_entries *e = index_of(p, resp);
    const ctfl_value *rp;
    assert_int_equal(ctfl_entries_add_entry(e, parent), 0);
    assert_int_equal(ctfl_entries_add_entry(e, child), 0);
    rp = ctfl_entries_entry(e, "entry-id");
    assert_ptr_equal(ctfl_value_path(ctfl_value_at(ctfl_value_path(rp, "fields.relatedEntry.fields.richText.content"), 0),
                                     "data.target"), rp);
    assert_true(ctfl_is_resolved_entry(rp));
    assert_false(ctfl_is_optimized_entry(rp));              /* no nt_experiences */
    assert_false(ctfl_is_merge_tag_entry(rp));
}

static void test_predicate_unresolved_entry_link(void **state)
{
    apr_pool_t *p = *state;
    assert_true(ctfl_is_unresolved_entry_link(parse(p, LINK("entry-link-id"))));
    assert_false(ctfl_is_unresolved_entry_link(parse(p, "{\"sys\":{\"type\":\"Link\",\"linkType\":\"Asset\",\"id\":\"asset-id\"}}")));
    assert_false(ctfl_is_unresolved_entry_link(parse(p, "{\"sys\":{\"type\":\"Entry\",\"id\":\"entry-id\"}}")));
    assert_false(ctfl_is_unresolved_entry_link(parse(p, "{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":7}}")));
    assert_false(ctfl_is_unresolved_entry_link(parse(p, "{\"sys\":{\"id\":\"missing-link-shape\"}}")));
    assert_false(ctfl_is_unresolved_entry_link(NULL));
}

static void test_predicate_merge_tag_entry(void **state)
{
    apr_pool_t *p = *state;
    const char *fields = "{\"nt_name\":\"Location\",\"nt_fallback\":\"Nowhere\",\"nt_mergetag_id\":\"traits_location\"}";
    ctfl_value *mt = entry(p, "merge-tag-entry-id", "nt_mergetag", fields);
    assert_true(ctfl_is_merge_tag_entry(mt));
    assert_false(ctfl_is_merge_tag_entry(entry(p, "merge-tag-entry-id", "nt_mergetag",
                                               "{\"nt_name\":\"Location\",\"nt_fallback\":\"Nowhere\"}")));
    assert_false(ctfl_is_merge_tag_entry(entry(p, "entry-id", "article", "{}")));
    assert_false(ctfl_is_merge_tag_entry(parse(p, "{}")));
    assert_false(ctfl_is_merge_tag_entry(entry(p, "x", "article", fields)));      /* content type decides */
    set_path(p, mt, "fields.nt_fallback", NULL);                                  /* optional */
    assert_true(ctfl_is_merge_tag_entry(mt));
    set_path(p, mt, "fields.nt_fallback", "null");                                /* but not nullable */
    assert_false(ctfl_is_merge_tag_entry(mt));
    set_path(p, mt, "fields.nt_fallback", "\"x\"");
    set_path(p, mt, "fields.nt_name", "1");
    assert_false(ctfl_is_merge_tag_entry(mt));
}

static void test_predicate_audience_entry(void **state)
{
    apr_pool_t *p = *state;
    assert_true(ctfl_is_audience_entry(entry(p, "a", "nt_audience", "{\"nt_audience_id\":\"a\"}")));
    assert_true(ctfl_is_audience_entry(entry(p, "a", "nt_audience",
        "{\"nt_audience_id\":\"a\",\"nt_name\":\"n\",\"nt_description\":\"d\",\"nt_rules\":{}}")));
    assert_false(ctfl_is_audience_entry(entry(p, "a", "nt_audience", "{\"nt_name\":\"n\"}")));
    assert_false(ctfl_is_audience_entry(entry(p, "a", "nt_audience", "{\"nt_audience_id\":\"a\",\"nt_description\":null}")));
    assert_false(ctfl_is_audience_entry(entry(p, "a", "content", "{\"nt_audience_id\":\"a\"}")));
}

static void test_predicate_optimization_entry(void **state)
{
    apr_pool_t *p = *state;
    static const struct { const char *extra; int valid; } cases[] = {
        { "", 1 },                                                           /* nt_config absent */
        { "\"nt_config\":null", 1 },
        { "\"nt_config\":{}", 1 },
        { "\"nt_config\":{\"components\":[{\"type\":\"EntryReplacement\",\"baseline\":{\"id\":123},\"variants\":[]}]}", 0 },
        { "\"nt_config\":{\"components\":[{\"baseline\":{\"id\":\"b\"},\"variants\":[{\"id\":\"v\"}]}]}", 1 },
        { "\"nt_config\":{\"components\":[{\"type\":\"EntryReplacement\",\"baseline\":{\"id\":\"b\",\"hidden\":true},"
          "\"variants\":[{\"id\":\"\",\"hidden\":true}]}],\"primaryMetric\":\"\",\"traffic\":1,\"distribution\":[0.5,0.5],\"sticky\":false}", 1 },
        { "\"nt_config\":{\"components\":[{\"type\":\"Other\",\"baseline\":{\"id\":\"b\"},\"variants\":[]}]}", 0 },
        { "\"nt_config\":{\"components\":[{\"type\":null,\"baseline\":{\"id\":\"b\"},\"variants\":[]}]}", 0 },
        { "\"nt_config\":{\"components\":[{\"baseline\":{\"id\":\"b\"}}]}", 0 },                  /* variants required */
        { "\"nt_config\":{\"components\":[{\"baseline\":{\"id\":\"b\",\"hidden\":null},\"variants\":[]}]}", 0 },
        { "\"nt_config\":{\"components\":[{\"baseline\":{\"id\":\"b\"},\"variants\":[{\"id\":\"v\",\"hidden\":\"no\"}]}]}", 0 },
        { "\"nt_config\":{\"components\":[{\"baseline\":{\"id\":\"b\"},\"variants\":[\"v\"]}]}", 0 },
        { "\"nt_config\":{\"components\":null}", 0 },                        /* optional, not nullable */
        { "\"nt_config\":{\"components\":{}}", 0 },
        { "\"nt_config\":{\"distribution\":[0.5,\"x\"]}", 0 },
        { "\"nt_config\":{\"traffic\":\"1\"}", 0 },
        { "\"nt_config\":{\"sticky\":\"true\"}", 0 },
        { "\"nt_config\":[]", 0 },
        { "\"nt_config\":\"{}\"", 0 },
        /* InlineVariable (Custom Flags) */
        { "\"nt_config\":{\"components\":[{\"type\":\"InlineVariable\",\"key\":\"k\",\"valueType\":\"String\","
          "\"baseline\":{\"value\":\"a\"},\"variants\":[{\"value\":\"b\"},{\"value\":null},{\"value\":{\"flag\":[1]}},{\"value\":2},{\"value\":false}]}]}", 1 },
        { "\"nt_config\":{\"components\":[{\"type\":\"InlineVariable\",\"key\":\"k\",\"valueType\":\"Object\","
          "\"baseline\":{\"value\":[1]},\"variants\":[]}]}", 0 },                                  /* arrays are not values */
        { "\"nt_config\":{\"components\":[{\"type\":\"InlineVariable\",\"key\":\"k\",\"valueType\":\"String\","
          "\"baseline\":{},\"variants\":[]}]}", 0 },                                               /* value required */
        { "\"nt_config\":{\"components\":[{\"type\":\"InlineVariable\",\"key\":\"k\",\"valueType\":\"Date\","
          "\"baseline\":{\"value\":\"a\"},\"variants\":[]}]}", 0 },
        { "\"nt_config\":{\"components\":[{\"type\":\"InlineVariable\",\"valueType\":\"String\","
          "\"baseline\":{\"value\":\"a\"},\"variants\":[]}]}", 0 },                                /* key required */
        /* references */
        { "\"nt_audience\":" LINK("aud"), 1 },
        { "\"nt_variants\":[" LINK("v1") "]", 1 },
        { "\"nt_variants\":[]", 1 },
        { "\"nt_variants\":null", 0 },
        { "\"nt_variants\":[{\"sys\":{\"type\":\"Link\",\"linkType\":\"Asset\",\"id\":\"a\"}}]", 0 },
        { "\"nt_variants\":[{\"sys\":{\"id\":\"v\"}}]", 0 },
        { "\"nt_variants\":{}", 0 },
        { "\"extra_field\":[1,2,3]", 1 },                                    /* unknown fields are ignored */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        /* nt_audience is also in the base fields: later duplicate keys win in JSON.parse */
        if (ctfl_is_optimization_entry(optimization(p, cases[i].extra)) != cases[i].valid)
            fail_msg("case %zu (%s) should be %s", i, cases[i].extra, cases[i].valid ? "valid" : "invalid");
    }
    {
        ctfl_value *x = optimization(p, "");
        assert_true(ctfl_is_optimization_entry(x));
        set_path(p, x, "fields.nt_type", "\"nt_experiment\"");
        assert_true(ctfl_is_optimization_entry(x));
        set_path(p, x, "fields.nt_type", "\"nt_other\"");
        assert_false(ctfl_is_optimization_entry(x));
        set_path(p, x, "fields.nt_type", "\"nt_personalization\"");
        set_path(p, x, "fields.nt_description", "3");
        assert_false(ctfl_is_optimization_entry(x));
        set_path(p, x, "fields.nt_description", NULL);
        assert_true(ctfl_is_optimization_entry(x));
        set_path(p, x, "fields.nt_experience_id", "1");
        assert_false(ctfl_is_optimization_entry(x));
        set_path(p, x, "fields.nt_experience_id", "\"e\"");
        set_path(p, x, "fields.nt_name", NULL);
        assert_false(ctfl_is_optimization_entry(x));
        set_path(p, x, "fields.nt_name", "\"n\"");
        set_path(p, x, "fields.nt_audience", "\"aud\"");
        assert_false(ctfl_is_optimization_entry(x));
        set_path(p, x, "fields.nt_audience", NULL);
        assert_true(ctfl_is_optimization_entry(x));
        set_path(p, x, "sys.contentType.sys.id", "\"content\"");
        assert_false(ctfl_is_optimization_entry(x));
    }
    /* audiences: a valid audience entry, or an invalid one */
    {
        ctfl_value *x = optimization(p, "");
        ctfl_value *aud = entry(p, "aud", "nt_audience", "{\"nt_audience_id\":\"aud\"}");
        set_path_value(p, x, "fields.nt_audience", aud);
        assert_true(ctfl_is_optimization_entry(x));
        set_path(p, aud, "fields.nt_audience_id", NULL);
        assert_false(ctfl_is_optimization_entry(x));
    }
}

static void test_predicate_fixture_experiences(void **state)
{
    apr_pool_t *p = *state;
    /* every nt_experience in the fixtures is valid, flags (InlineVariable) included */
    static const char *const ids[] = {
        "2qVK4T5lnScbswoyBuGipd", "6KfLDCdA75BGwr5HfSeXac", "1hTtSf1ChvTtBgY6BwBZk1", "4HpmjxbSGU4KuQNUeGacY1",
        "gk5FTARYgB6PEjNMP1jTU", "1TF5UuJZc6sO88byrYZ6f2", "5kuc9KgA9q9RXnlbDxDlY", "BBvRD6Uv03k69wPwB9Ou6",
        "1FHhEY0xkcCC9R5WCmnjRr", "7DyidZaPB7Jr1gWKjoogg0", "6IueRX1pS3iMJncbhUQTba",
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
        ctfl_entries *e = fixture_index(p, ids[i]);
        if (!ctfl_is_optimization_entry(ctfl_entries_entry(e, ids[i]))) fail_msg("%s not valid", ids[i]);
        /* raw: nt_audience / nt_variants as links are valid too */
        if (!ctfl_is_optimization_entry(ctfl_entries_raw(e, ids[i]))) fail_msg("raw %s not valid", ids[i]);
        assert_false(ctfl_is_optimized_entry(ctfl_entries_entry(e, ids[i])));
    }
}

static void test_predicate_optimized_entry(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *b = entry(p, "entry-id", "article", "{\"nt_experiences\":[{\"sys\":{\"id\":\"missing-link-shape\"}}]}");
    assert_false(ctfl_is_optimized_entry(b));
    set_path(p, b, "fields.nt_experiences", "[" LINK("x") "]");
    assert_true(ctfl_is_optimized_entry(b));
    set_path(p, b, "fields.nt_experiences", "[]");
    assert_true(ctfl_is_optimized_entry(b));
    set_path(p, b, "fields.nt_experiences", "{\"en-US\":[" LINK("x") "]}");   /* all-locale payload */
    assert_false(ctfl_is_optimized_entry(b));
    set_path(p, b, "fields.nt_experiences", "null");
    assert_false(ctfl_is_optimized_entry(b));
    set_path(p, b, "fields.nt_experiences", NULL);
    assert_false(ctfl_is_optimized_entry(b));
    /* one valid resolved experience and a link: valid; plus one malformed: not */
    {
        ctfl_entries *e = fixture_index(p, "4ib0hsHWoSOnCVdDkizE8d");
        ctfl_value *resp = fixture_response(p, "4ib0hsHWoSOnCVdDkizE8d");
        assert_true(ctfl_is_optimized_entry(ctfl_entries_entry(e, "4ib0hsHWoSOnCVdDkizE8d")));
        assert_true(ctfl_is_optimized_entry(ctfl_entries_raw(e, "4ib0hsHWoSOnCVdDkizE8d")));
        set_path(p, find_entry(resp, "6KfLDCdA75BGwr5HfSeXac"), "fields.nt_type", "\"nt_unknown\"");
        e = index_of(p, resp);
        assert_false(ctfl_is_optimized_entry(ctfl_entries_entry(e, "4ib0hsHWoSOnCVdDkizE8d")));
    }
}

static void test_predicate_profile(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *prof = experience_fixture(p, "merge-tag-profile.json");
    assert_true(ctfl_is_profile(prof));
    assert_true(ctfl_is_profile(ctfl_value_path(experience_fixture(p, "new-visitor.json"), "data.profile")));
    assert_true(ctfl_is_profile(ctfl_value_path(experience_fixture(p, "identified-visitor.json"), "data.profile")));
    assert_false(ctfl_is_profile(parse(p, "{}")));
    assert_false(ctfl_is_profile(NULL));

    set_path(p, prof, "location.countryCode", "\"DE\"");
    assert_true(ctfl_is_profile(prof));
    set_path(p, prof, "location.countryCode", "\"DEU\"");
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "location.countryCode", "\"\\ud83d\\ude00\"");            /* 2 UTF-16 units */
    assert_true(ctfl_is_profile(prof));
    set_path(p, prof, "location.countryCode", "\"\\u00e9\"");
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "location.countryCode", NULL);
    set_path(p, prof, "location.coordinates", "{\"latitude\":1}");
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "location.coordinates", "{\"latitude\":1,\"longitude\":2}");
    assert_true(ctfl_is_profile(prof));
    set_path(p, prof, "location.city", "null");
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "location.city", "\"Berlin\"");
    set_path(p, prof, "session.landingPage.anything", "[1,{\"x\":null}]");      /* Page allows extra keys */
    assert_true(ctfl_is_profile(prof));
    set_path(p, prof, "session.landingPage.query", "{\"a\":1}");
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "session.landingPage.query", "{\"a\":\"1\"}");
    set_path(p, prof, "session.landingPage.title", "\"t\"");
    assert_true(ctfl_is_profile(prof));
    set_path(p, prof, "traits", "[]");
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "traits", "{}");
    set_path(p, prof, "audiences", "[\"a\",1]");
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "audiences", "[]");
    set_path(p, prof, "session.count", "\"2\"");
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "session.count", "2");
    set_path(p, prof, "random", NULL);
    assert_false(ctfl_is_profile(prof));
    set_path(p, prof, "random", "0.5");
    set_path(p, prof, "unknown", "1");                                         /* stripped, not refused */
    assert_true(ctfl_is_profile(prof));
}

/* ---- selections ---------------------------------------------------------- */

static void test_selections_from_value_and_model(void **state)
{
    apr_pool_t *p = *state;
    apr_array_header_t *v, *m, *bad;
    apr_size_t len = 0;
    char *body = unit_read_file(p, apr_psprintf(p, "%s/fixtures/experience/new-visitor.json", unit_shared_dir()), &len);
    ctfl_experience_data *d = NULL;
    const char *err = NULL;

    v = visitor(p, "new-visitor.json");
    assert_int_equal(v->nelts, 11);
    assert_non_null(body);
    assert_int_equal(ctfl_json_decode_experience(p, body, len, &d, &err), 0);
    m = ctfl_selections_from_model(p, d->selections);
    assert_int_equal(m->nelts, v->nelts);
    for (int i = 0; i < v->nelts; i++) {
        const ctfl_selected_optimization *a = &APR_ARRAY_IDX(v, i, ctfl_selected_optimization);
        const ctfl_selected_optimization *b = &APR_ARRAY_IDX(m, i, ctfl_selected_optimization);
        assert_string_equal(a->experience_id, b->experience_id);
        assert_true(a->variant_index == b->variant_index);
        assert_int_equal(a->sticky, b->sticky);
    }
    /* 6df0DI1BG9GTb9qIcjfkmh is the sticky one */
    assert_string_equal(APR_ARRAY_IDX(v, 8, ctfl_selected_optimization).experience_id, "6df0DI1BG9GTb9qIcjfkmh");
    assert_int_equal(APR_ARRAY_IDX(v, 8, ctfl_selected_optimization).sticky, 1);
    assert_int_equal(APR_ARRAY_IDX(v, 0, ctfl_selected_optimization).sticky, -1);
    assert_int_equal(ctfl_selections_from_model(p, NULL)->nelts, 0);

    /* the raw number survives (0.5 is not 0) */
    v = selections_json(p, "[{\"experienceId\":\"x\",\"variantIndex\":0.5,\"variants\":{},\"sticky\":false}]");
    assert_true(APR_ARRAY_IDX(v, 0, ctfl_selected_optimization).variant_index == 0.5);
    assert_int_equal(APR_ARRAY_IDX(v, 0, ctfl_selected_optimization).sticky, 0);

    assert_int_equal(ctfl_selections_from_value(p, parse(p, "{}"), &bad), -1);
    assert_null(bad);
    assert_int_equal(ctfl_selections_from_value(p, parse(p, "[{\"experienceId\":1,\"variantIndex\":1}]"), &bad), -1);
    assert_int_equal(ctfl_selections_from_value(p, parse(p, "[{\"experienceId\":\"x\",\"variantIndex\":\"1\"}]"), &bad), -1);
    assert_int_equal(ctfl_selections_from_value(p, parse(p, "[{\"experienceId\":\"x\",\"variantIndex\":1,\"sticky\":null}]"), &bad), -1);
    assert_int_equal(ctfl_selections_from_value(p, parse(p, "[3]"), &bad), -1);
    assert_int_equal(ctfl_selections_from_value(p, parse(p, "[]"), &bad), 0);
    assert_int_equal(bad->nelts, 0);
}

/* ---- §4.3: OptimizedEntryResolver.test.ts on the 4ib0 fixture ------------ */

#define EUROPE_BASELINE "4ib0hsHWoSOnCVdDkizE8d"
#define EUROPE_EXP "2qVK4T5lnScbswoyBuGipd"
#define EUROPE_VARIANT "4k6ZyFQnR2POY5IJLLlJRb"

/* The SDK test's selectedOptimizations fixture is the identified visitor's list. */
static apr_array_header_t *sdk_selections(apr_pool_t *p)
{
    return visitor(p, "identified-visitor.json");
}

static int index_of_experience(const apr_array_header_t *s, const char *id)
{
    for (int i = 0; i < s->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(s, i, ctfl_selected_optimization).experience_id, id) == 0) return i;
    return -1;
}

/* The Europe baseline of a (modified) fixture response, resolved for the SDK's selections. */
static void resolve_europe(apr_pool_t *p, ctfl_value *resp, ctfl_resolution *r)
{
    ctfl_resolve(ctfl_entries_entry(index_of(p, resp), EUROPE_BASELINE), sdk_selections(p), r);
}

/* Where the Europe experience is in the SDK's selections. */
static int europe_selection(apr_pool_t *p)
{
    return index_of_experience(sdk_selections(p), EUROPE_EXP);
}

static void test_resolve_matching_experience(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, EUROPE_BASELINE);
    apr_array_header_t *s = sdk_selections(p);
    ctfl_resolution r;
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), s, &r);
    expect_resolution(&r, EUROPE_VARIANT, CTFL_RES_VARIANT, index_of_experience(s, EUROPE_EXP), 0);
    assert_string_equal(r.selection->experience_id, EUROPE_EXP);
    assert_true(r.selection->variant_index == 1);
    assert_string_equal(ctfl_value_str(ctfl_value_path(r.optimization_entry, "fields.nt_experience_id")), EUROPE_EXP);
    assert_ptr_equal(r.entry, ctfl_entries_entry(e, EUROPE_VARIANT));
    assert_string_equal(ctfl_value_str(ctfl_value_path(r.entry, "fields.text")),
                        "This is a variant content entry for visitors from Europe.");
}

static void test_resolve_no_selections(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, EUROPE_BASELINE);
    const ctfl_value *base = ctfl_entries_entry(e, EUROPE_BASELINE);
    ctfl_resolution r;
    ctfl_resolve(base, NULL, &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NO_SELECTIONS, -1, 0);
    assert_ptr_equal(r.entry, base);
    ctfl_resolve(base, apr_array_make(p, 1, sizeof(ctfl_selected_optimization)), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NO_SELECTIONS, -1, 0);
    assert_null(r.optimization_entry);
}

static void test_resolve_not_optimized(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_value *base = find_entry(resp, EUROPE_BASELINE);
    ctfl_resolution r;
    set_path(p, base, "fields", "{\"internalTitle\":\"Non-optimized entry\",\"text\":\"No nt_experiences field on this entry\"}");
    resolve_europe(p, resp, &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NOT_OPTIMIZED, -1, 0);
    /* NULL or non-entry baselines are returned as they are */
    ctfl_resolve(NULL, sdk_selections(p), &r);
    expect_resolution(&r, NULL, CTFL_RES_NOT_OPTIMIZED, -1, 0);
    ctfl_resolve(parse(p, LINK(EUROPE_BASELINE)), sdk_selections(p), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NOT_OPTIMIZED, -1, 0);
}

static void test_resolve_no_matching_experience(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, EUROPE_BASELINE);
    apr_array_header_t *all = sdk_selections(p), *s = apr_array_make(p, 20, sizeof(ctfl_selected_optimization));
    ctfl_resolution r;
    for (int i = 0; i < all->nelts; i++) {
        const ctfl_selected_optimization *o = &APR_ARRAY_IDX(all, i, ctfl_selected_optimization);
        if (strcmp(o->experience_id, EUROPE_EXP) && strcmp(o->experience_id, "6KfLDCdA75BGwr5HfSeXac"))
            APR_ARRAY_PUSH(s, ctfl_selected_optimization) = *o;
    }
    assert_int_equal(s->nelts, all->nelts - 1);
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), s, &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NO_OPTIMIZATION, -1, 0);
    assert_null(r.optimization_entry);
}

static void test_resolve_variant_index_zero(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, EUROPE_BASELINE);
    ctfl_resolution r;
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), selections_json(p,
        "[{\"experienceId\":\"" EUROPE_EXP "\",\"variantIndex\":0,\"variants\":{\"" EUROPE_BASELINE "\":\"" EUROPE_BASELINE "\"},\"sticky\":false}]"), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_BASELINE_SELECTED, 0, 0);
    assert_int_equal(r.selection->sticky, 0);
    /* -0 is 0 too */
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), selections_json(p,
        "[{\"experienceId\":\"" EUROPE_EXP "\",\"variantIndex\":-0,\"variants\":{}}]"), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_BASELINE_SELECTED, 0, 0);
}

static void test_resolve_index_out_of_range(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, EUROPE_BASELINE);
    ctfl_resolution r;
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), selections_json(p,
        "[{\"experienceId\":\"" EUROPE_EXP "\",\"variantIndex\":2,\"variants\":{\"" EUROPE_BASELINE "\":\"non-existing\"},\"sticky\":false}]"), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NO_VARIANT, 0, 0);
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), selections_json(p,
        "[{\"experienceId\":\"" EUROPE_EXP "\",\"variantIndex\":999,\"variants\":{}}]"), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NO_VARIANT, 0, 0);
}

static void test_resolve_empty_components(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_resolution r;
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_config.components", "[]");
    resolve_europe(p, resp, &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NO_VARIANT, europe_selection(p), 0);
    /* config absent or null: no components either */
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_config", NULL);
    resolve_europe(p, resp, &r);
    assert_int_equal(r.outcome, CTFL_RES_NO_VARIANT);
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_config", "null");
    resolve_europe(p, resp, &r);
    assert_int_equal(r.outcome, CTFL_RES_NO_VARIANT);
    /* a component for another baseline only */
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_config",
             "{\"components\":[{\"baseline\":{\"id\":\"other\"},\"variants\":[{\"id\":\"" EUROPE_VARIANT "\"}]}]}");
    resolve_europe(p, resp, &r);
    assert_int_equal(r.outcome, CTFL_RES_NO_VARIANT);
    /* a component with no variants */
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_config",
             "{\"components\":[{\"baseline\":{\"id\":\"" EUROPE_BASELINE "\"},\"variants\":[]}]}");
    resolve_europe(p, resp, &r);
    assert_int_equal(r.outcome, CTFL_RES_NO_VARIANT);
}

static void test_resolve_nt_variants_emptied(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_resolution r;
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_variants", "[]");
    resolve_europe(p, resp, &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_VARIANT_UNRESOLVED, europe_selection(p), 0);
    /* nt_variants absent: same */
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_variants", NULL);
    resolve_europe(p, resp, &r);
    assert_int_equal(r.outcome, CTFL_RES_VARIANT_UNRESOLVED);
}

static void test_resolve_variant_id_not_found(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_resolution r;
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_config.components",
             "[{\"baseline\":{\"id\":\"" EUROPE_BASELINE "\"},\"variants\":[{\"id\":\"non-existing-variant-id\",\"hidden\":false}]}]");
    resolve_europe(p, resp, &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_VARIANT_UNRESOLVED, europe_selection(p), 0);
}

static void test_resolve_variant_only_a_link(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_resolution r;
    /* drop the variant entry from includes: nt_variants keeps the link */
    set_path(p, find_entry(resp, EUROPE_VARIANT), "sys.type", "\"Deleted\"");
    {
        ctfl_entries *e = index_of(p, resp);
        ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), sdk_selections(p), &r);
        assert_null(ctfl_entries_entry(e, EUROPE_VARIANT));
    }
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_VARIANT_UNRESOLVED, europe_selection(p), 0);
}

/* nt_variants.find(): the first element with the id decides, even a link */
static void test_resolve_first_nt_variants_match_decides(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_entries *e = index_of(p, resp);
    ctfl_value *base = (ctfl_value *)ctfl_entries_raw(e, EUROPE_BASELINE);
    ctfl_value *exp = (ctfl_value *)ctfl_entries_raw(e, EUROPE_EXP);
    ctfl_value *variants = ctfl_value_new(p, CTFL_V_ARRAY);
    ctfl_resolution r;
    variants->u.arr.items = apr_palloc(p, 2 * sizeof(ctfl_value *));
    variants->u.arr.items[0] = parse(p, LINK(EUROPE_VARIANT));
    variants->u.arr.items[1] = (ctfl_value *)ctfl_entries_entry(e, EUROPE_VARIANT);
    variants->u.arr.n = 2;
    /* hand-built graph: baseline -> [experience], experience.nt_variants = [link V, entry V] */
    set_path_value(p, exp, "fields.nt_variants", variants);
    set_path(p, base, "fields.nt_experiences", "[null]");
    ((ctfl_value *)ctfl_value_path(base, "fields.nt_experiences"))->u.arr.items[0] = exp;
    ctfl_resolve(base, sdk_selections(p), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_VARIANT_UNRESOLVED, europe_selection(p), 0);
    /* swapped: the entry comes first */
    variants->u.arr.items[0] = variants->u.arr.items[1];
    ctfl_resolve(base, sdk_selections(p), &r);
    expect_resolution(&r, EUROPE_VARIANT, CTFL_RES_VARIANT, europe_selection(p), 0);
}

static void test_resolve_variant_other_content_type(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_resolution r;
    set_path(p, find_entry(resp, EUROPE_VARIANT), "sys.contentType.sys.id", "\"heroBanner\"");
    resolve_europe(p, resp, &r);
    expect_resolution(&r, EUROPE_VARIANT, CTFL_RES_VARIANT, europe_selection(p), 0);
    assert_string_equal(ctfl_entry_content_type(r.entry), "heroBanner");
}

static void test_resolve_empty_variant_on_fixture(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_resolution r;
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_config.components",
             "[{\"baseline\":{\"id\":\"" EUROPE_BASELINE "\"},\"variants\":[{\"id\":\"\",\"hidden\":true}]}]");
    resolve_europe(p, resp, &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_EMPTY_VARIANT, europe_selection(p), 1);
}

static void test_resolve_cyclic_graphs(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = ctfl_entries_make(p);
    const char *err;
    ctfl_resolution r;
    apr_array_header_t *s = selections_json(p, "[{\"experienceId\":\"cycleExp\",\"variantIndex\":1,\"variants\":{}}]");
    ctfl_value *resp = parse_file(p, apr_psprintf(p, "%s/entries-graph.json", data_dir()));
    assert_int_equal(ctfl_entries_add_response(e, resp, &err), 0);
    /* baseline side: the baseline embeds itself and the variant */
    ctfl_resolve(ctfl_entries_entry(e, "cycleBaseline"), s, &r);
    expect_resolution(&r, "cycleVariant", CTFL_RES_VARIANT, 0, 0);
    /* variant side: the chosen variant embeds the baseline and itself; it is not optimized */
    ctfl_resolve(r.entry, s, &r);
    expect_resolution(&r, "cycleVariant", CTFL_RES_NOT_OPTIMIZED, -1, 0);
    /* resolving the baseline embedded in the variant again gives the same answer */
    ctfl_resolve(ctfl_value_path(ctfl_value_at(ctfl_value_path(ctfl_entries_entry(e, "cycleVariant"), "fields.body.content"), 0),
                                 "data.target"), s, &r);
    expect_resolution(&r, "cycleVariant", CTFL_RES_VARIANT, 0, 0);
}

static void test_resolve_js_at_semantics(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = index_of(p, ctfl_value_get(parse_file(p, apr_psprintf(p, "%s/resolve-j-variants-map-ignored.json",
                                                                            data_dir())), "response"));
    const ctfl_value *base = ctfl_entries_entry(e, "synthMapBaseline");
    static const struct { const char *index; const char *entry; ctfl_resolve_outcome o; } cases[] = {
        { "1", "synthMapVariant1", CTFL_RES_VARIANT },
        { "2", "synthMapVariant2", CTFL_RES_VARIANT },
        { "3", "synthMapBaseline", CTFL_RES_NO_VARIANT },
        { "0.5", "synthMapVariant1", CTFL_RES_VARIANT },     /* at(-0.5) -> at(0): not "0" */
        { "1.5", "synthMapVariant1", CTFL_RES_VARIANT },     /* at(0.5) -> at(0) */
        { "2.9", "synthMapVariant2", CTFL_RES_VARIANT },     /* at(1.9) -> at(1) */
        { "-1", "synthMapVariant1", CTFL_RES_VARIANT },      /* at(-2) -> first of two */
        { "-2", "synthMapBaseline", CTFL_RES_NO_VARIANT },   /* at(-3) */
        { "-0.5", "synthMapVariant2", CTFL_RES_VARIANT },    /* at(-1.5) -> at(-1) -> last */
        { "1e300", "synthMapBaseline", CTFL_RES_NO_VARIANT },
        { "-1e300", "synthMapBaseline", CTFL_RES_NO_VARIANT },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        ctfl_resolution r;
        ctfl_resolve(base, selections_json(p, apr_psprintf(p,
            "[{\"experienceId\":\"synthMapExp\",\"variantIndex\":%s,\"variants\":{}}]", cases[i].index)), &r);
        if (r.outcome != cases[i].o || strcmp(ctfl_entry_id(r.entry), cases[i].entry) != 0)
            fail_msg("variantIndex %s: %s (%s)", cases[i].index, ctfl_entry_id(r.entry), ctfl_resolve_outcome_name(r.outcome));
    }
}

static void test_resolve_first_selection_and_field_order(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, "2Z2WLOx07InSewC3LUB3eX");
    const ctfl_value *base = ctfl_entries_entry(e, "2Z2WLOx07InSewC3LUB3eX");
    ctfl_resolution r;
    /* both experiences selected, listed in the opposite order: nt_experiences order wins */
    ctfl_resolve(base, selections_json(p,
        "[{\"experienceId\":\"2cSY1TX0nDfYe4fuIrGQ1K\",\"variantIndex\":1,\"variants\":{}},"
        " {\"experienceId\":\"603SW4mLeYB4AkPhdU2Jvj\",\"variantIndex\":1,\"variants\":{}}]"), &r);
    expect_resolution(&r, "3VBvwg9ysjjmnJRTQtIYK4", CTFL_RES_VARIANT, 1, 0);
    /* the same experience twice: the first selection in array order is used */
    ctfl_resolve(base, selections_json(p,
        "[{\"experienceId\":\"603SW4mLeYB4AkPhdU2Jvj\",\"variantIndex\":0,\"variants\":{}},"
        " {\"experienceId\":\"603SW4mLeYB4AkPhdU2Jvj\",\"variantIndex\":1,\"variants\":{}}]"), &r);
    expect_resolution(&r, "2Z2WLOx07InSewC3LUB3eX", CTFL_RES_BASELINE_SELECTED, 0, 0);
}

static void test_resolve_skips_unresolved_experience_links(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_entries *e;
    ctfl_resolution r;
    set_path(p, find_entry(resp, EUROPE_EXP), "sys.type", "\"Deleted\"");    /* not included: stays a link */
    e = index_of(p, resp);
    assert_true(ctfl_is_unresolved_entry_link(ctfl_value_at(ctfl_value_path(ctfl_entries_entry(e, EUROPE_BASELINE),
                                                                              "fields.nt_experiences"), 0)));
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), selections_json(p,
        "[{\"experienceId\":\"" EUROPE_EXP "\",\"variantIndex\":1,\"variants\":{}}]"), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NO_OPTIMIZATION, -1, 0);
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), selections_json(p,
        "[{\"experienceId\":\"" EUROPE_EXP "\",\"variantIndex\":1,\"variants\":{}},"
        " {\"experienceId\":\"6KfLDCdA75BGwr5HfSeXac\",\"variantIndex\":1,\"variants\":{}}]"), &r);
    expect_resolution(&r, "7Ae0ke0e3YqRLutG35d4Ve", CTFL_RES_VARIANT, 1, 0);
}

/* Hand-built nt_experiences: links are skipped even when they carry fields
 * that look like an experience, field order decides, and experience ids match
 * exactly (no prefix match, NULL selection ids never match). */
static void test_resolve_item_kinds_and_exact_ids(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *b = entry(p, "B", "article", "{\"nt_experiences\":[]}");
    ctfl_value *exps = ctfl_value_new(p, CTFL_V_ARRAY);
    ctfl_value *items[3];
    ctfl_value *a = optimization(p, ""), *c = optimization(p, "");
    ctfl_selected_optimization sel[4] = {
        { NULL, 1, -1 }, { "exp-i", 1, -1 }, { "exp-idx", 1, -1 }, { "exp-id", 0, 1 }
    };
    apr_array_header_t *sels = apr_array_make(p, 4, sizeof(ctfl_selected_optimization));
    ctfl_resolution r;

    items[0] = parse(p, "{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"L\"},"
                        "\"metadata\":{},\"fields\":{\"nt_experience_id\":\"exp-link\"}}");
    set_path(p, a, "fields.nt_experience_id", "\"exp-id\"");
    set_path(p, c, "fields.nt_experience_id", "\"exp-link\"");
    items[1] = c;
    items[2] = a;
    exps->u.arr.items = items;
    exps->u.arr.n = 3;
    set_path_value(p, b, "fields.nt_experiences", exps);
    assert_true(ctfl_is_optimized_entry(b));

    for (int i = 0; i < 4; i++) APR_ARRAY_PUSH(sels, ctfl_selected_optimization) = sel[i];
    ctfl_resolve(b, sels, &r);                      /* only "exp-id" is selected: the third item */
    expect_resolution(&r, "B", CTFL_RES_BASELINE_SELECTED, 3, 0);
    assert_ptr_equal(r.optimization_entry, a);

    sel[1].experience_id = "exp-link";              /* the link's lookalike id: the second item wins */
    APR_ARRAY_IDX(sels, 1, ctfl_selected_optimization) = sel[1];
    ctfl_resolve(b, sels, &r);
    expect_resolution(&r, "B", CTFL_RES_NO_VARIANT, 1, 0);
    assert_ptr_equal(r.optimization_entry, c);

    items[1] = items[0];                            /* only the link has "exp-link" now */
    ctfl_resolve(b, sels, &r);
    expect_resolution(&r, "B", CTFL_RES_BASELINE_SELECTED, 3, 0);

    /* an entry of another content type among them: not optimized at all */
    items[1] = entry(p, "X", "article", "{\"nt_experience_id\":\"exp-link\"}");
    assert_false(ctfl_is_optimized_entry(b));
    ctfl_resolve(b, sels, &r);
    expect_resolution(&r, "B", CTFL_RES_NOT_OPTIMIZED, -1, 0);
}

static void test_resolve_matches_nt_experience_id_not_sys_id(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *resp = fixture_response(p, EUROPE_BASELINE);
    ctfl_entries *e;
    ctfl_resolution r;
    set_path(p, find_entry(resp, EUROPE_EXP), "fields.nt_experience_id", "\"renamed\"");
    e = index_of(p, resp);
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), selections_json(p,
        "[{\"experienceId\":\"" EUROPE_EXP "\",\"variantIndex\":1,\"variants\":{}}]"), &r);
    expect_resolution(&r, EUROPE_BASELINE, CTFL_RES_NO_OPTIMIZATION, -1, 0);
    ctfl_resolve(ctfl_entries_entry(e, EUROPE_BASELINE), selections_json(p,
        "[{\"experienceId\":\"renamed\",\"variantIndex\":1,\"variants\":{}}]"), &r);
    expect_resolution(&r, EUROPE_VARIANT, CTFL_RES_VARIANT, 0, 0);
}

/* ---- §9.6 expected resolution table -------------------------------------- */

/* "resolved[nested,...]" resolving every fields.nested entry independently with
 * the same selections, to any depth (bounded against cycles). */
static char *describe(apr_pool_t *p, const ctfl_value *baseline, const apr_array_header_t *s, int depth)
{
    ctfl_resolution r;
    const ctfl_value *nested;
    char *out;
    ctfl_resolve(baseline, s, &r);
    out = apr_pstrdup(p, ctfl_entry_id(r.entry));
    nested = ctfl_value_path(r.entry, "fields.nested");
    if (ctfl_value_len(nested) && depth < 16) {
        out = apr_pstrcat(p, out, "[", NULL);
        for (apr_size_t i = 0; i < ctfl_value_len(nested); i++)
            out = apr_pstrcat(p, out, i ? "," : "", describe(p, ctfl_value_at(nested, i), s, depth + 1), NULL);
        out = apr_pstrcat(p, out, "]", NULL);
    }
    return out;
}

static const struct table_row {
    const char *baseline;
    const char *expect[2];         /* new visitor, identified visitor */
    const char *experience[2];     /* data-ctfl-optimization-id, NULL = none */
    const char *text[2];           /* fields.text of the resolved entry, NULL = not checked */
} table[] = {
    { "4ib0hsHWoSOnCVdDkizE8d", { "4k6ZyFQnR2POY5IJLLlJRb", "4k6ZyFQnR2POY5IJLLlJRb" },
      { "2qVK4T5lnScbswoyBuGipd", "2qVK4T5lnScbswoyBuGipd" },
      { "This is a variant content entry for visitors from Europe.", "This is a variant content entry for visitors from Europe." } },
    { "xFwgG3oNaOcjzWiGe4vXo", { "6iyPl6vfDH5AoClf3MtYlh", "6iyPl6vfDH5AoClf3MtYlh" },
      { "BBvRD6Uv03k69wPwB9Ou6", "BBvRD6Uv03k69wPwB9Ou6" },
      { "This is a variant content entry for visitors using a desktop browser.",
        "This is a variant content entry for visitors using a desktop browser." } },
    { "2Z2WLOx07InSewC3LUB3eX", { "1UFf7qr4mHET3HYuYmcpEj", "3VBvwg9ysjjmnJRTQtIYK4" },
      { "2cSY1TX0nDfYe4fuIrGQ1K", "603SW4mLeYB4AkPhdU2Jvj" },
      { "This is a variant content entry for new visitors.", "This is a variant content entry for return visitors." } },
    { "5XHssysWUDECHzKLzoIsg1", { "4bmHsNUaEibELHwWCon3dt", "4bmHsNUaEibELHwWCon3dt" },
      { "5kuc9KgA9q9RXnlbDxDlY", "5kuc9KgA9q9RXnlbDxDlY" },
      { "This is a variant content entry for an A/B/C experiment: B",
        "This is a variant content entry for an A/B/C experiment: B" } },
    { "6zqoWXyiSrf0ja7I2WGtYj", { "6zqoWXyiSrf0ja7I2WGtYj", "7upHpduBBaKCWUqB27oTmX" },
      { NULL, "5us1xFZCsHyIYuzINJMeSV" },
      { "This is a baseline content entry for all visitors with or without a custom event.",
        "This is a variant content entry for visitors with a custom event." } },
    { "7pa5bOx8Z9NmNcr7mISvD", { "7pa5bOx8Z9NmNcr7mISvD", "5daRHDDD7sj0Jm9kutAGou" },
      { NULL, "53yERfkqYXkg2B18EcdtK5" },
      { "This is a baseline content entry for all identified or unidentified users.",
        "This is a variant content entry for identified users." } },
    { "1JAU028vQ7v6nB2swl3NBo",
      { "1JAU028vQ7v6nB2swl3NBo[5i4SdJXw9oDEY0vgO7CwF4[uaNY4YJ0HFPAX3gKXiRdX]]",
        "2KIWllNZJT205BwOSkMINg[5a8ONfBdanJtlJ39WWnH1w[4hDiXxYEFrXHXcQgmdL9Uv]]" },
      { NULL, "1FHhEY0xkcCC9R5WCmnjRr" },
      { "This is a level 0 nested baseline entry.", "This is a level 0 nested variant entry." } },
    /* the nested baselines looked up directly from their own files */
    { "5i4SdJXw9oDEY0vgO7CwF4",
      { "5i4SdJXw9oDEY0vgO7CwF4[uaNY4YJ0HFPAX3gKXiRdX]", "5a8ONfBdanJtlJ39WWnH1w[4hDiXxYEFrXHXcQgmdL9Uv]" },
      { NULL, "7DyidZaPB7Jr1gWKjoogg0" }, { NULL, NULL } },
    { "uaNY4YJ0HFPAX3gKXiRdX", { "uaNY4YJ0HFPAX3gKXiRdX", "4hDiXxYEFrXHXcQgmdL9Uv" },
      { NULL, "6IueRX1pS3iMJncbhUQTba" }, { NULL, "This is a level 2 nested variant entry." } },
    { "1MwiFl4z7gkwqGYdvCmr8c", { "1MwiFl4z7gkwqGYdvCmr8c", "1MwiFl4z7gkwqGYdvCmr8c" }, { NULL, NULL }, { NULL, NULL } },
};

static void run_table(apr_pool_t *p, int who, const apr_array_header_t *s)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
        const struct table_row *row = &table[i];
        ctfl_entries *e = fixture_index(p, row->baseline);
        const ctfl_value *base = ctfl_entries_entry(e, row->baseline);
        ctfl_resolution r;
        const char *got = describe(p, base, s, 0), *attrs, *want;
        const char *first = row->expect[who];
        char *resolved = apr_pstrndup(p, first, strcspn(first, "["));

        if (strcmp(got, row->expect[who]) != 0)
            fail_msg("%s visitor, %s: got %s, want %s", who ? "identified" : "new", row->baseline, got, row->expect[who]);
        ctfl_resolve(base, s, &r);
        if (row->text[who]) assert_string_equal(ctfl_value_str(ctfl_value_path(r.entry, "fields.text")), row->text[who]);
        attrs = attrs_string(p, ctfl_tracking_attributes(p, row->baseline, &r, NULL));
        want = row->experience[who]
            ? apr_psprintf(p, "data-ctfl-baseline-id=%s data-ctfl-entry-id=%s data-ctfl-optimization-id=%s data-ctfl-variant-index=1",
                           row->baseline, resolved, row->experience[who])
            : apr_psprintf(p, "data-ctfl-baseline-id=%s data-ctfl-entry-id=%s data-ctfl-variant-index=0", row->baseline, resolved);
        assert_string_equal(attrs, want);
    }
}

static void test_table_new_visitor(void **state)
{
    apr_pool_t *p = *state;
    run_table(p, 0, visitor(p, "new-visitor.json"));
}

static void test_table_identified_visitor(void **state)
{
    apr_pool_t *p = *state;
    run_table(p, 1, visitor(p, "identified-visitor.json"));
}

/* The same table through ctfl_json's decoder and its ctfl_selection model. */
static void test_table_via_json_model(void **state)
{
    apr_pool_t *p = *state;
    static const char *const names[] = { "new-visitor.json", "identified-visitor.json" };
    for (int who = 0; who < 2; who++) {
        apr_size_t len = 0;
        char *body = unit_read_file(p, apr_psprintf(p, "%s/fixtures/experience/%s", unit_shared_dir(), names[who]), &len);
        ctfl_experience_data *d = NULL;
        const char *err = NULL;
        assert_non_null(body);
        assert_int_equal(ctfl_json_decode_experience(p, body, len, &d, &err), 0);
        run_table(p, who, ctfl_selections_from_model(p, d->selections));
    }
}

static void test_table_merge_tag(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, "1MwiFl4z7gkwqGYdvCmr8c");
    const ctfl_value *para = ctfl_value_at(ctfl_value_path(ctfl_entries_entry(e, "1MwiFl4z7gkwqGYdvCmr8c"), "fields.text.content"), 0);
    const ctfl_value *target = ctfl_value_path(ctfl_value_at(ctfl_value_get(para, "content"), 1), "data.target");
    static const char *const names[] = { "new-visitor.json", "identified-visitor.json" };
    for (int who = 0; who < 2; who++) {
        const ctfl_value *profile = ctfl_value_path(experience_fixture(p, names[who]), "data.profile");
        assert_string_equal(ctfl_merge_tag_resolve(p, target, profile), "EU");
    }
    /* no profile (no consent, failure): the fallback */
    assert_string_equal(ctfl_merge_tag_resolve(p, target, NULL), "Nowhere");
}

/* ---- §9.7 synthetic cases (a)-(j) ---------------------------------------- */

static void run_case_file(apr_pool_t *p, const char *name)
{
    ctfl_value *doc = parse_file(p, apr_psprintf(p, "%s/%s", data_dir(), name));
    ctfl_entries *e = index_of(p, ctfl_value_get(doc, "response"));
    const ctfl_value *checks = ctfl_value_get(doc, "checks");
    assert_true(ctfl_value_len(checks) > 0);
    for (apr_size_t i = 0; i < ctfl_value_len(checks); i++) {
        const ctfl_value *c = ctfl_value_at(checks, i), *x = ctfl_value_get(c, "expect");
        const char *baseline = ctfl_value_str(ctfl_value_get(c, "baseline"));
        const ctfl_value *sel = ctfl_value_get(x, "selection"), *want_attrs = ctfl_value_get(x, "attributes");
        apr_array_header_t *attrs;
        ctfl_resolution r;
        ctfl_resolve(ctfl_entries_entry(e, baseline), selections(p, ctfl_value_get(c, "selections")), &r);
        if (strcmp(ctfl_entry_id(r.entry), ctfl_value_str(ctfl_value_get(x, "entry"))) != 0
            || strcmp(ctfl_resolve_outcome_name(r.outcome), ctfl_value_str(ctfl_value_get(x, "outcome"))) != 0)
            fail_msg("%s check %zu: %s (%s)", name, i, ctfl_entry_id(r.entry), ctfl_resolve_outcome_name(r.outcome));
        assert_int_equal(r.selection_index, ctfl_value_is(sel, CTFL_V_NUMBER) ? (int)sel->u.n : -1);
        assert_int_equal(r.is_empty_variant, ctfl_value_truthy(ctfl_value_get(x, "emptyVariant")));
        attrs = ctfl_tracking_attributes(p, baseline, &r, NULL);
        if ((apr_size_t)attrs->nelts != ctfl_value_len(want_attrs))
            fail_msg("%s check %zu: attributes %s", name, i, attrs_string(p, attrs));
        for (int k = 0; k < attrs->nelts; k++) {
            const ctfl_attr *at = &APR_ARRAY_IDX(attrs, k, ctfl_attr);
            const ctfl_value *pair = ctfl_value_at(want_attrs, (apr_size_t)k);
            assert_string_equal(at->name, ctfl_value_str(ctfl_value_at(pair, 0)));
            assert_string_equal(at->value, ctfl_value_str(ctfl_value_at(pair, 1)));
        }
    }
}

static void test_case_a_empty_variant(void **state) { run_case_file(*state, "resolve-a-empty-variant.json"); }
static void test_case_b_variant_index_0(void **state) { run_case_file(*state, "resolve-b-variant-index-0.json"); }
static void test_case_c_out_of_range(void **state) { run_case_file(*state, "resolve-c-index-out-of-range.json"); }
static void test_case_d_not_in_nt_variants(void **state) { run_case_file(*state, "resolve-d-variant-not-in-nt-variants.json"); }
static void test_case_e_unresolved_link(void **state) { run_case_file(*state, "resolve-e-variant-unresolved-link.json"); }
static void test_case_f_hidden_baseline(void **state) { run_case_file(*state, "resolve-f-hidden-baseline.json"); }
static void test_case_g_unknown_component(void **state) { run_case_file(*state, "resolve-g-unknown-component-type.json"); }
static void test_case_h_no_sys_type(void **state) { run_case_file(*state, "resolve-h-experience-without-sys-type.json"); }
static void test_case_i_sticky(void **state) { run_case_file(*state, "resolve-i-sticky.json"); }
static void test_case_j_variants_map(void **state) { run_case_file(*state, "resolve-j-variants-map-ignored.json"); }

/* ---- §4.5 merge tags, case (k) ------------------------------------------- */

static void test_merge_tag_selectors(void **state)
{
    apr_pool_t *p = *state;
    const ctfl_value *cases = ctfl_value_get(parse_file(p, apr_psprintf(p, "%s/merge-tag-cases.json", data_dir())), "selectors");
    assert_true(ctfl_value_len(cases) >= 5);
    for (apr_size_t i = 0; i < ctfl_value_len(cases); i++) {
        const char *id = ctfl_value_str(ctfl_value_at(ctfl_value_at(cases, i), 0));
        const ctfl_value *want = ctfl_value_at(ctfl_value_at(cases, i), 1);
        apr_array_header_t *got = ctfl_merge_tag_selectors(p, id);
        if ((apr_size_t)got->nelts != ctfl_value_len(want)) fail_msg("selectors of \"%s\": %d", id, got->nelts);
        for (int k = 0; k < got->nelts; k++)
            assert_string_equal(APR_ARRAY_IDX(got, k, const char *), ctfl_value_str(ctfl_value_at(want, (apr_size_t)k)));
    }
}

static void test_merge_tag_profile_values(void **state)
{
    apr_pool_t *p = *state;
    const ctfl_value *cases = ctfl_value_get(parse_file(p, apr_psprintf(p, "%s/merge-tag-cases.json", data_dir())), "values");
    const ctfl_value *profile = experience_fixture(p, "merge-tag-profile.json");
    assert_true(ctfl_value_len(cases) >= 7);
    for (apr_size_t i = 0; i < ctfl_value_len(cases); i++) {
        const char *id = ctfl_value_str(ctfl_value_at(ctfl_value_at(cases, i), 0));
        const char *want = ctfl_value_str(ctfl_value_at(ctfl_value_at(cases, i), 1));
        const char *got = ctfl_merge_tag_profile_value(p, id, profile);
        if (want ? !got || strcmp(got, want) != 0 : got != NULL)
            fail_msg("value of \"%s\": got %s, want %s", id, got ? got : "(undefined)", want ? want : "(undefined)");
    }
    /* arrays: numeric keys and length (the new visitor has three audiences) */
    profile = ctfl_value_path(experience_fixture(p, "new-visitor.json"), "data.profile");
    assert_string_equal(ctfl_merge_tag_profile_value(p, "audiences.0", profile), "2WzXDaWtDmstHl9p8Wufpp");
    assert_string_equal(ctfl_merge_tag_profile_value(p, "audiences_2", profile), "3UTxzKhiki1xeHAdSCJBCS");
    assert_string_equal(ctfl_merge_tag_profile_value(p, "audiences_length", profile), "3");
    assert_null(ctfl_merge_tag_profile_value(p, "audiences.3", profile));
    assert_null(ctfl_merge_tag_profile_value(p, "audiences.01", profile));
    assert_null(ctfl_merge_tag_profile_value(p, "audiences.map", profile));
    assert_string_equal(ctfl_merge_tag_profile_value(p, "location.coordinates.latitude", profile), "52.52437");
    assert_null(ctfl_merge_tag_profile_value(p, "x", NULL));
    assert_null(ctfl_merge_tag_profile_value(p, NULL, profile));
    /* an inherited name stops the search with undefined (a function is truthy) */
    assert_null(ctfl_merge_tag_profile_value(p, "location_toString", parse(p, "{\"location\":{},\"location_toString\":\"\"}")));
    assert_string_equal(ctfl_merge_tag_profile_value(p, "a_toString", parse(p, "{\"a\":{\"toString\":\"own\"}}")), "own");
    /* "a.__proto__" (Object.prototype, truthy) comes before "a...proto__" and ends the search */
    assert_null(ctfl_merge_tag_profile_value(p, "a___proto__", parse(p, "{\"a\":{\"proto__\":\"x\"}}")));
    assert_string_equal(ctfl_merge_tag_profile_value(p, "a___proto", parse(p, "{\"a\":{\"proto\":\"x\"}}")), "x");
    assert_string_equal(ctfl_merge_tag_profile_value(p, "flag", parse(p, "{\"flag\":true}")), "true");
}

static void test_merge_tag_resolve(void **state)
{
    apr_pool_t *p = *state;
    ctfl_value *doc = parse_file(p, apr_psprintf(p, "%s/merge-tag-cases.json", data_dir()));
    ctfl_value *mt = (ctfl_value *)ctfl_value_get(doc, "mergeTagEntry");
    ctfl_value *profile = experience_fixture(p, "merge-tag-profile.json");

    assert_true(ctfl_is_merge_tag_entry(mt));
    assert_string_equal(ctfl_merge_tag_resolve(p, mt, profile), "EU");
    assert_string_equal(ctfl_merge_tag_resolve(p, mt, parse(p, "{}")), "Nowhere");      /* invalid profile */
    set_path(p, profile, "random", "\"0\"");                                            /* invalid, value present */
    assert_string_equal(ctfl_merge_tag_profile_value(p, "location.continent", profile), "EU");
    assert_string_equal(ctfl_merge_tag_resolve(p, mt, profile), "Nowhere");
    set_path(p, profile, "random", "0");
    assert_null(ctfl_merge_tag_resolve(p, parse(p, "{}"), profile));                    /* invalid entry */
    set_path(p, profile, "location.continent", NULL);
    assert_string_equal(ctfl_merge_tag_resolve(p, mt, profile), "Nowhere");
    set_path(p, profile, "location.continent", "\"\"");                                 /* falsy */
    assert_string_equal(ctfl_merge_tag_resolve(p, mt, profile), "Nowhere");
    set_path(p, mt, "fields.nt_fallback", NULL);
    assert_null(ctfl_merge_tag_resolve(p, mt, profile));
    assert_null(ctfl_merge_tag_resolve(p, mt, NULL));
    set_path(p, mt, "fields.nt_mergetag_id", "\"traits_nested.baz_qux\"");
    assert_string_equal(ctfl_merge_tag_resolve(p, mt, profile), "quux");
}

/* ---- §4.6 tracking attributes -------------------------------------------- */

static void test_attributes_nextjs_example(void **state)
{
    apr_pool_t *p = *state;
    ctfl_entries *e = fixture_index(p, EUROPE_BASELINE);
    ctfl_selected_optimization sel = { "6IueRX1pS3iMJncbhUQTba", 2, 1 };
    ctfl_resolution r = { ctfl_entries_entry(e, EUROPE_VARIANT), &sel, 0, 0, NULL, CTFL_RES_VARIANT };
    ctfl_attr_options opt = { 1, CTFL_TRACK_TRUE, CTFL_TRACK_FALSE, CTFL_TRACK_TRUE };
    ctfl_attr_options none = { 0, CTFL_TRACK_UNSET, CTFL_TRACK_UNSET, CTFL_TRACK_UNSET };

    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, EUROPE_BASELINE, &r, NULL)),
        "data-ctfl-baseline-id=4ib0hsHWoSOnCVdDkizE8d data-ctfl-entry-id=4k6ZyFQnR2POY5IJLLlJRb "
        "data-ctfl-optimization-id=6IueRX1pS3iMJncbhUQTba data-ctfl-sticky=true data-ctfl-variant-index=2");
    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, EUROPE_BASELINE, &r, &none)),
                        attrs_string(p, ctfl_tracking_attributes(p, EUROPE_BASELINE, &r, NULL)));
    /* with the options of the Next.js test, in the SDK's key order */
    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, EUROPE_BASELINE, &r, &opt)),
        "data-ctfl-baseline-id=4ib0hsHWoSOnCVdDkizE8d data-ctfl-clickable=true data-ctfl-entry-id=4k6ZyFQnR2POY5IJLLlJRb "
        "data-ctfl-optimization-id=6IueRX1pS3iMJncbhUQTba data-ctfl-sticky=true data-ctfl-track-clicks=true "
        "data-ctfl-track-hovers=false data-ctfl-track-views=true data-ctfl-variant-index=2");
}

static void test_attributes_nothing_empty_or_invented(void **state)
{
    apr_pool_t *p = *state;
    ctfl_selected_optimization sel = { "", 0.5, 0 };
    ctfl_resolution r = { NULL, &sel, 0, 1, NULL, CTFL_RES_EMPTY_VARIANT };
    /* unknown entry (not in CDA): the baseline id stands for the entry */
    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, "abc", NULL, NULL)),
                        "data-ctfl-baseline-id=abc data-ctfl-entry-id=abc data-ctfl-variant-index=0");
    /* empty experience id omitted, sticky false kept, JS number formatting */
    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, "abc", &r, NULL)),
                        "data-ctfl-baseline-id=abc data-ctfl-empty-variant=true data-ctfl-entry-id=abc "
                        "data-ctfl-sticky=false data-ctfl-variant-index=0.5");
    sel.sticky = -1;
    sel.variant_index = 3;
    r.is_empty_variant = 0;
    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, "abc", &r, NULL)),
                        "data-ctfl-baseline-id=abc data-ctfl-entry-id=abc data-ctfl-variant-index=3");
    /* a resolved entry without a usable id: the baseline stays, so does its id */
    r.entry = parse(p, "{\"sys\":{\"id\":\"\"}}");
    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, "abc", &r, NULL)),
                        "data-ctfl-baseline-id=abc data-ctfl-entry-id=abc data-ctfl-variant-index=3");
    /* no id at all: no empty id attributes */
    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, "", NULL, NULL)), "data-ctfl-variant-index=0");
    assert_string_equal(attrs_string(p, ctfl_tracking_attributes(p, NULL, NULL, NULL)), "data-ctfl-variant-index=0");
}

#define T(f) cmocka_unit_test_setup_teardown(f, unit_pool_setup, unit_pool_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_predicate_resolved_entry), T(test_predicate_cyclic_entry_graph),
        T(test_predicate_unresolved_entry_link), T(test_predicate_merge_tag_entry),
        T(test_predicate_audience_entry), T(test_predicate_optimization_entry),
        T(test_predicate_fixture_experiences), T(test_predicate_optimized_entry), T(test_predicate_profile),
        T(test_selections_from_value_and_model),
        T(test_resolve_matching_experience), T(test_resolve_no_selections), T(test_resolve_not_optimized),
        T(test_resolve_no_matching_experience), T(test_resolve_variant_index_zero),
        T(test_resolve_index_out_of_range), T(test_resolve_empty_components), T(test_resolve_nt_variants_emptied),
        T(test_resolve_variant_id_not_found), T(test_resolve_variant_only_a_link), T(test_resolve_first_nt_variants_match_decides),
        T(test_resolve_variant_other_content_type), T(test_resolve_empty_variant_on_fixture),
        T(test_resolve_cyclic_graphs), T(test_resolve_js_at_semantics),
        T(test_resolve_first_selection_and_field_order), T(test_resolve_skips_unresolved_experience_links),
        T(test_resolve_item_kinds_and_exact_ids),
        T(test_resolve_matches_nt_experience_id_not_sys_id),
        T(test_table_new_visitor), T(test_table_identified_visitor), T(test_table_via_json_model),
        T(test_table_merge_tag),
        T(test_case_a_empty_variant), T(test_case_b_variant_index_0), T(test_case_c_out_of_range),
        T(test_case_d_not_in_nt_variants), T(test_case_e_unresolved_link), T(test_case_f_hidden_baseline),
        T(test_case_g_unknown_component), T(test_case_h_no_sys_type), T(test_case_i_sticky),
        T(test_case_j_variants_map),
        T(test_merge_tag_selectors), T(test_merge_tag_profile_values), T(test_merge_tag_resolve),
        T(test_attributes_nextjs_example), T(test_attributes_nothing_empty_or_invented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
