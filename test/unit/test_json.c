/* Unit tests for ctfl_json: Experience response decoding (spec §1.6) and flags (§4.4). */
#include "unit.h"
#include "ctfl_json.h"

#include <jansson.h>

/* ---- helpers ------------------------------------------------------------- */

static char *fixture(apr_pool_t *p, const char *name, apr_size_t *len)
{
    char *path = apr_psprintf(p, "%s/fixtures/experience/%s", unit_shared_dir(), name);
    char *body = unit_read_file(p, path, len);
    if (!body) fail_msg("fixture missing: %s (set CTFL_SHARED)", path);
    return body;
}

/* jansson in the tests only builds variants; the code under test never sees json_t. */
static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
    if (!j) fail_msg("test JSON invalid: %s: %s", je.text, s);
    return j;
}

static char *dump_to_pool(apr_pool_t *p, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    char *copy = apr_pstrdup(p, s);
    free(s);
    return copy;
}

/* Set (value non-NULL, reference stolen) or delete the value at a dotted
 * path such as "data.experiences.0.sticky". */
static void set_at(apr_pool_t *p, json_t *root, const char *path, json_t *value)
{
    char *segs = apr_pstrdup(p, path), *last, *seg, *next;
    json_t *parent = root;

    seg = apr_strtok(segs, ".", &last);
    while ((next = apr_strtok(NULL, ".", &last)) != NULL) {
        parent = json_is_array(parent) ? json_array_get(parent, (size_t)atoi(seg)) : json_object_get(parent, seg);
        if (!parent) fail_msg("bad test path %s", path);
        seg = next;
    }
    if (json_is_array(parent)) {
        if (value) json_array_set_new(parent, (size_t)atoi(seg), value);
        else json_array_remove(parent, (size_t)atoi(seg));
    } else if (value) {
        json_object_set_new(parent, seg, value);
    } else if (json_object_del(parent, seg) != 0) {
        fail_msg("nothing to delete at %s", path);
    }
}

/* A fixture with one value replaced by value_json, or deleted when NULL. */
static char *variant(apr_pool_t *p, const char *name, const char *path, const char *value_json)
{
    json_t *root = parse(fixture(p, name, NULL));
    char *result;
    set_at(p, root, path, value_json ? parse(value_json) : NULL);
    result = dump_to_pool(p, root);
    json_decref(root);
    return result;
}

static ctfl_experience_data *decode_ok(apr_pool_t *p, const char *body)
{
    ctfl_experience_data *d = NULL;
    const char *err = NULL;
    if (ctfl_json_decode_experience(p, body, strlen(body), &d, &err) != 0)
        fail_msg("unexpected failure: %s", err);
    assert_non_null(d);
    assert_null(err);
    return d;
}

static const char *decode_err(apr_pool_t *p, const char *body, apr_size_t len)
{
    ctfl_experience_data *d = (ctfl_experience_data *)1;
    const char *err = NULL;
    assert_int_equal(ctfl_json_decode_experience(p, body, len, &d, &err), -1);
    assert_null(d);
    assert_non_null(err);
    return err;
}

static void assert_json_equal(const char *got, const char *want)
{
    json_t *g = parse(got), *w = parse(want);
    int same = json_equal(g, w);
    json_decref(g);
    json_decref(w);
    if (!same) fail_msg("JSON differs:\n got  %s\n want %s", got, want);
}

static void assert_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) fail_msg("non-printable byte 0x%02x", (unsigned char)*s);
}

/* The sub-document of a fixture at a path, compact. */
static char *fixture_part(apr_pool_t *p, const char *name, const char *key1, const char *key2)
{
    json_t *root = parse(fixture(p, name, NULL));
    char *s = dump_to_pool(p, json_object_get(json_object_get(root, key1), key2));
    json_decref(root);
    return s;
}

/* ---- fixtures ------------------------------------------------------------ */

static void test_new_visitor(void **state)
{
    apr_pool_t *p = *state;
    ctfl_experience_data *d = decode_ok(p, fixture(p, "new-visitor.json", NULL));
    const ctfl_selection *sel;
    int sticky_seen = 0;

    assert_string_equal(d->profile_id, "f0837a67eed5f1c93978f6d53fa948df93897137bcd048366f30ba590420754b");
    assert_int_equal(d->selections->nelts, 11);
    assert_string_equal(d->changes_json, "[]");
    assert_string_equal(d->flags_json, "{}");
    assert_json_equal(d->profile_json, fixture_part(p, "new-visitor.json", "data", "profile"));
    assert_json_equal(d->selections_json, fixture_part(p, "new-visitor.json", "data", "experiences"));

    sel = &APR_ARRAY_IDX(d->selections, 0, ctfl_selection);
    assert_string_equal(sel->experience_id, "1lNQ9YUJfDBQLMR6O0jjP8");
    assert_int_equal(sel->variant_index, 1);
    for (int i = 0; i < d->selections->nelts; i++) {
        sel = &APR_ARRAY_IDX(d->selections, i, ctfl_selection);
        if (strcmp(sel->experience_id, "6df0DI1BG9GTb9qIcjfkmh") == 0) {
            assert_int_equal(sel->sticky, 1);
            sticky_seen = 1;
        } else {
            assert_int_equal(sel->sticky, -1);
        }
    }
    assert_true(sticky_seen);
    /* numbers come out in JavaScript's shortest form, as the API sent them */
    assert_non_null(strstr(d->profile_json, "\"random\":0.9275021184998337,"));
    assert_non_null(strstr(d->profile_json, "\"latitude\":52.52437,"));
    assert_non_null(strstr(d->profile_json, "\"count\":1,"));
    assert_non_null(strstr(d->experiences_list, "1lNQ9YUJfDBQLMR6O0jjP8:1,2cSY1TX0nDfYe4fuIrGQ1K:1,"));
    assert_non_null(strstr(d->experiences_list, "2qVK4T5lnScbswoyBuGipd:1"));
    assert_ascii(d->profile_json);
}

static void test_identified_visitor_flags(void **state)
{
    apr_pool_t *p = *state;
    ctfl_experience_data *d = decode_ok(p, fixture(p, "identified-visitor.json", NULL));

    assert_int_equal(d->selections->nelts, 20);
    assert_json_equal(d->flags_json, "{\"plain-text\":\"Plain Text\",\"number\":12345,"
                                     "\"json\":{\"flag\":true},\"boolean\":true}");
    assert_json_equal(d->changes_json, fixture_part(p, "identified-visitor.json", "data", "changes"));
    assert_json_equal(d->profile_json, fixture_part(p, "identified-visitor.json", "data", "profile"));
    /* array order kept, variant index 0 kept */
    assert_non_null(strstr(d->experiences_list, "2O4ZmYjJFSn0E8ti8tonut:0"));
    assert_int_equal(strncmp(d->experiences_list, "1FHhEY0xkcCC9R5WCmnjRr:1,1hTtSf1ChvTtBgY6BwBZk1:1,", 50), 0);
    /* compact output */
    assert_null(strchr(d->profile_json, '\n'));
    assert_null(strstr(d->flags_json, ": "));
    /* the value trees carry the same data as the texts */
    assert_string_equal(ctfl_value_to_json(p, d->flags), d->flags_json);
    assert_string_equal(ctfl_value_str(ctfl_value_get(d->profile, "id")), d->profile_id);
    assert_int_equal(ctfl_value_len(d->experiences), 20);
    assert_string_equal(ctfl_value_str(ctfl_value_get(ctfl_value_at(d->experiences, 0), "experienceId")),
                        "1FHhEY0xkcCC9R5WCmnjRr");
}

static void test_merge_tag_profile(void **state)
{
    apr_pool_t *p = *state;
    const char *profile = fixture(p, "merge-tag-profile.json", NULL);
    const char *body = apr_pstrcat(p, "{\"data\":{\"profile\":", profile,
                                   ",\"experiences\":[],\"changes\":[]},\"message\":\"ok\",\"error\":null}", NULL);
    ctfl_experience_data *d = decode_ok(p, body);
    assert_string_equal(d->profile_id, "");
    assert_json_equal(d->profile_json, profile);
    assert_string_equal(d->experiences_list, "");
    assert_int_equal(d->selections->nelts, 0);
    assert_string_equal(d->selections_json, "[]");
}

/* ---- stripping ----------------------------------------------------------- */

static void test_unknown_keys_stripped(void **state)
{
    apr_pool_t *p = *state;
    static const char *const paths[] = {
        "x_root", "data.x_data", "data.profile.x_prof", "data.profile.location.x_loc",
        "data.profile.location.coordinates.x_coord", "data.profile.session.x_sess",
        "data.experiences.0.x_sel", "data.changes.0.x_change", "data.changes.0.meta.x_meta",
    };
    json_t *root = parse(fixture(p, "identified-visitor.json", NULL));
    ctfl_experience_data *d;
    const char *body;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        set_at(p, root, paths[i], json_string("</script>"));
    /* kept: Page extra keys and traits, both "any JSON" in the schema */
    set_at(p, root, "data.profile.session.landingPage.hash", json_string("#top"));
    set_at(p, root, "data.profile.traits.nested", parse("{\"deep\":[1,{\"x\":null}]}"));
    body = dump_to_pool(p, root);
    json_decref(root);
    d = decode_ok(p, body);
    assert_null(strstr(d->profile_json, "x_"));
    assert_null(strstr(d->selections_json, "x_"));
    assert_null(strstr(d->changes_json, "x_"));
    assert_null(strstr(d->flags_json, "x_"));
    assert_non_null(strstr(d->profile_json, "\"hash\":\"#top\""));
    assert_non_null(strstr(d->profile_json, "\"nested\":{\"deep\":[1,{\"x\":null}]}"));
}

static void test_page_title_and_extra_keys(void **state)
{
    apr_pool_t *p = *state;
    ctfl_experience_data *d = decode_ok(p, variant(p, "new-visitor.json",
                                                   "data.profile.session.landingPage.title", "\"Home\""));
    assert_non_null(strstr(d->profile_json, "\"title\":\"Home\""));
    d = decode_ok(p, variant(p, "new-visitor.json", "data.profile.session.landingPage.width", "1280"));
    assert_non_null(strstr(d->profile_json, "\"width\":1280"));
}

static void test_output_is_ascii(void **state)
{
    apr_pool_t *p = *state;
    ctfl_experience_data *d = decode_ok(p, variant(p, "new-visitor.json", "data.profile.traits",
                                                   "{\"name\":\"J\\u00e9r\\u00f4me \\u2028\\u2029 \\n\\t\\ud83d\\ude00\"}"));
    assert_ascii(d->profile_json);
    assert_non_null(strstr(d->profile_json, "\\u00E9"));
    assert_non_null(strstr(d->profile_json, "\\u2028"));
    assert_non_null(strstr(d->profile_json, "\\n"));
    /* DEL is legal raw JSON but not a header character */
    d = decode_ok(p, variant(p, "new-visitor.json", "data.changes",
                             "[{\"key\":\"k\\u007f\",\"type\":\"Variable\",\"value\":\"\\u007f!\","
                             "\"meta\":{\"experienceId\":\"e\",\"variantIndex\":1}}]"));
    assert_string_equal(d->flags_json, "{\"k\\u007F\":\"\\u007F!\"}");
    assert_ascii(d->changes_json);
}

/* ---- valid edge values --------------------------------------------------- */

static void test_valid_edge_values(void **state)
{
    apr_pool_t *p = *state;
    static const struct { const char *path, *value; } ok[] = {
        { "error", "false" },
        { "error", "true" },
        { "data.profile.location.countryCode", "\"\\u00e9\\u20ac\"" },   /* 2 code points */
        { "data.profile.location.countryCode", "\"\\ud83d\\ude00\"" },   /* 1 emoji = 2 UTF-16 units */
        { "data.profile.location", "{}" },
        { "data.profile.location.timezone", "\"Europe/Berlin\"" },
        { "data.profile.location.regionCode", "\"BE\"" },
        { "data.profile.audiences", "[]" },
        { "data.profile.random", "1" },
        { "data.profile.session.count", "1.5" },
        { "data.experiences.0.sticky", "false" },
        { "data.experiences.0.variants", "{}" },
        { "data.changes.0.value", "null" },
        { "data.changes.0.value", "false" },
        { "data.changes.0.value", "-2.5e3" },
        { "data.changes.0.value", "{\"a\":[1,2]}" },
        { "data.changes", "[]" },
        { "data.experiences", "[]" },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *body = variant(p, "identified-visitor.json", ok[i].path, ok[i].value);
        ctfl_experience_data *d = NULL;
        const char *err = NULL;
        if (ctfl_json_decode_experience(p, body, strlen(body), &d, &err) != 0)
            fail_msg("%s = %s rejected: %s", ok[i].path, ok[i].value, err);
    }
}

static void test_variant_index_conversion(void **state)
{
    apr_pool_t *p = *state;
    static const struct { const char *value; long want; } cases[] = {
        { "0", 0 }, { "2", 2 }, { "-1", -1 }, { "1.9", 1 }, { "-1.9", -1 },
        { "1e300", 9007199254740992L }, { "-1e300", -9007199254740992L },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ctfl_experience_data *d = decode_ok(p, variant(p, "new-visitor.json", "data.experiences.0.variantIndex", cases[i].value));
        assert_int_equal(APR_ARRAY_IDX(d->selections, 0, ctfl_selection).variant_index, cases[i].want);
    }
}

static void test_experiences_list_escapes_ids(void **state)
{
    apr_pool_t *p = *state;
    ctfl_experience_data *d = decode_ok(p, variant(p, "new-visitor.json", "data.experiences",
                                                   "[{\"experienceId\":\"a,b:c\\r\\nX: y\",\"variantIndex\":2,\"variants\":{}},"
                                                   "{\"experienceId\":\"plain-id_1.~\",\"variantIndex\":0,\"variants\":{},\"sticky\":true}]"));
    assert_string_equal(d->experiences_list, "a%2Cb%3Ac%0D%0AX%3A%20y:2,plain-id_1.~:0");
    assert_string_equal(APR_ARRAY_IDX(d->selections, 0, ctfl_selection).experience_id, "a,b:c\r\nX: y");
    assert_int_equal(APR_ARRAY_IDX(d->selections, 1, ctfl_selection).sticky, 1);
}

static void test_duplicate_keys_last_wins(void **state)
{
    apr_pool_t *p = *state;
    const char *body = "{\"message\":\"ok\",\"error\":null,\"data\":{\"profile\":{\"id\":\"first\","
        "\"stableId\":\"s\",\"random\":0,\"audiences\":[],\"traits\":{},\"location\":{},"
        "\"session\":{\"id\":\"x\",\"isReturningVisitor\":false,\"landingPage\":{\"path\":\"\",\"query\":{},"
        "\"referrer\":\"\",\"search\":\"\",\"url\":\"\"},\"count\":1,\"activeSessionLength\":0,"
        "\"averageSessionLength\":0},\"id\":\"second\"},\"experiences\":[],\"changes\":[]}}";
    assert_string_equal(decode_ok(p, body)->profile_id, "second");
}

/* ---- flags (spec §4.4) ----------------------------------------------------- */

static const char *flags_of(apr_pool_t *p, const char *changes)
{
    return decode_ok(p, variant(p, "new-visitor.json", "data.changes", changes))->flags_json;
}

#define CH(key, value) "{\"key\":\"" key "\",\"type\":\"Variable\",\"value\":" value \
                       ",\"meta\":{\"experienceId\":\"e\",\"variantIndex\":1}}"

static void test_flags_fold_and_unwrap(void **state)
{
    apr_pool_t *p = *state;
    /* later overwrites, position of the first occurrence kept */
    assert_string_equal(flags_of(p, "[" CH("a", "1") "," CH("b", "\"x\"") "," CH("a", "2") "]"),
                        "{\"a\":2,\"b\":\"x\"}");
    /* {value: object|array|null} unwraps; {value: scalar} stays wrapped */
    assert_string_equal(flags_of(p, "[" CH("o", "{\"value\":{\"k\":1}}") "]"), "{\"o\":{\"k\":1}}");
    assert_string_equal(flags_of(p, "[" CH("arr", "{\"value\":[1,2]}") "]"), "{\"arr\":[1,2]}");
    assert_string_equal(flags_of(p, "[" CH("n", "{\"value\":null}") "]"), "{\"n\":null}");
    assert_string_equal(flags_of(p, "[" CH("s", "{\"value\":\"str\"}") "]"), "{\"s\":{\"value\":\"str\"}}");
    assert_string_equal(flags_of(p, "[" CH("num", "{\"value\":3,\"other\":1}") "]"), "{\"num\":{\"value\":3,\"other\":1}}");
    assert_string_equal(flags_of(p, "[" CH("plain", "{\"other\":1}") "]"), "{\"plain\":{\"other\":1}}");
    assert_string_equal(flags_of(p, "[" CH("z", "null") "," CH("t", "true") "]"), "{\"z\":null,\"t\":true}");
    /* output is header-safe: no raw control characters */
    assert_string_equal(flags_of(p, "[" CH("k\\r\\n", "\"v\\r\\nX: 1\"") "]"), "{\"k\\r\\n\":\"v\\r\\nX: 1\"}");
}

/* ---- invalid documents ----------------------------------------------------- */

typedef struct { const char *path, *value, *want; } bad_case;

static void test_schema_violations(void **state)
{
    apr_pool_t *p = *state;
    static const bad_case cases[] = {
        /* every required key missing */
        { "data", NULL, "schema: data missing" },
        { "message", NULL, "schema: message missing" },
        { "error", NULL, "schema: error missing" },
        { "data.profile", NULL, "schema: data.profile missing" },
        { "data.experiences", NULL, "schema: data.experiences missing" },
        { "data.changes", NULL, "schema: data.changes missing" },
        { "data.profile.id", NULL, "schema: data.profile.id missing" },
        { "data.profile.stableId", NULL, "schema: data.profile.stableId missing" },
        { "data.profile.random", NULL, "schema: data.profile.random missing" },
        { "data.profile.audiences", NULL, "schema: data.profile.audiences missing" },
        { "data.profile.traits", NULL, "schema: data.profile.traits missing" },
        { "data.profile.location", NULL, "schema: data.profile.location missing" },
        { "data.profile.session", NULL, "schema: data.profile.session missing" },
        { "data.profile.session.id", NULL, "schema: data.profile.session.id missing" },
        { "data.profile.session.isReturningVisitor", NULL, "schema: data.profile.session.isReturningVisitor missing" },
        { "data.profile.session.landingPage", NULL, "schema: data.profile.session.landingPage missing" },
        { "data.profile.session.count", NULL, "schema: data.profile.session.count missing" },
        { "data.profile.session.activeSessionLength", NULL, "schema: data.profile.session.activeSessionLength missing" },
        { "data.profile.session.averageSessionLength", NULL, "schema: data.profile.session.averageSessionLength missing" },
        { "data.profile.session.landingPage.path", NULL, "schema: data.profile.session.landingPage.path missing" },
        { "data.profile.session.landingPage.query", NULL, "schema: data.profile.session.landingPage.query missing" },
        { "data.profile.session.landingPage.referrer", NULL, "schema: data.profile.session.landingPage.referrer missing" },
        { "data.profile.session.landingPage.search", NULL, "schema: data.profile.session.landingPage.search missing" },
        { "data.profile.session.landingPage.url", NULL, "schema: data.profile.session.landingPage.url missing" },
        { "data.profile.location.coordinates.latitude", NULL, "schema: data.profile.location.coordinates.latitude missing" },
        { "data.profile.location.coordinates.longitude", NULL, "schema: data.profile.location.coordinates.longitude missing" },
        { "data.experiences.3.experienceId", NULL, "schema: data.experiences[3].experienceId missing" },
        { "data.experiences.0.variantIndex", NULL, "schema: data.experiences[0].variantIndex missing" },
        { "data.experiences.0.variants", NULL, "schema: data.experiences[0].variants missing" },
        { "data.changes.2.key", NULL, "schema: data.changes[2].key missing" },
        { "data.changes.0.type", NULL, "schema: data.changes[0].type missing" },
        { "data.changes.0.value", NULL, "schema: data.changes[0].value missing" },
        { "data.changes.0.meta", NULL, "schema: data.changes[0].meta missing" },
        { "data.changes.0.meta.experienceId", NULL, "schema: data.changes[0].meta.experienceId missing" },
        { "data.changes.0.meta.variantIndex", NULL, "schema: data.changes[0].meta.variantIndex missing" },
        /* wrong types */
        { "data", "[]", "schema: data not an object" },
        { "data", "\"x\"", "schema: data not an object" },
        { "data", "null", "schema: data not an object" },
        { "message", "1", "schema: message not a string" },
        { "error", "\"x\"", "schema: error not a boolean or null" },
        { "error", "{\"code\":\"ERR_X\"}", "schema: error not a boolean or null" },
        { "data.profile", "[]", "schema: data.profile not an object" },
        { "data.profile.id", "1", "schema: data.profile.id not a string" },
        { "data.profile.stableId", "null", "schema: data.profile.stableId not a string" },
        { "data.profile.random", "\"0.5\"", "schema: data.profile.random not a number" },
        { "data.profile.audiences", "\"a\"", "schema: data.profile.audiences not an array" },
        { "data.profile.audiences", "[\"a\",1]", "schema: data.profile.audiences[1] not a string" },
        { "data.profile.traits", "[]", "schema: data.profile.traits not an object" },
        { "data.profile.traits", "null", "schema: data.profile.traits not an object" },
        { "data.profile.location", "\"Berlin\"", "schema: data.profile.location not an object" },
        { "data.profile.location.countryCode", "\"DEU\"", "schema: data.profile.location.countryCode not 2 characters" },
        { "data.profile.location.countryCode", "\"D\"", "schema: data.profile.location.countryCode not 2 characters" },
        { "data.profile.location.countryCode", "\"\"", "schema: data.profile.location.countryCode not 2 characters" },
        { "data.profile.location.countryCode", "49", "schema: data.profile.location.countryCode not a string" },
        { "data.profile.location.city", "null", "schema: data.profile.location.city not a string" },
        { "data.profile.location.postalCode", "10119", "schema: data.profile.location.postalCode not a string" },
        { "data.profile.location.timezone", "1", "schema: data.profile.location.timezone not a string" },
        { "data.profile.location.coordinates", "[1,2]", "schema: data.profile.location.coordinates not an object" },
        { "data.profile.location.coordinates.latitude", "\"52\"", "schema: data.profile.location.coordinates.latitude not a number" },
        { "data.profile.session", "[]", "schema: data.profile.session not an object" },
        { "data.profile.session.id", "5", "schema: data.profile.session.id not a string" },
        { "data.profile.session.isReturningVisitor", "\"true\"", "schema: data.profile.session.isReturningVisitor not a boolean" },
        { "data.profile.session.isReturningVisitor", "1", "schema: data.profile.session.isReturningVisitor not a boolean" },
        { "data.profile.session.landingPage", "\"/\"", "schema: data.profile.session.landingPage not an object" },
        { "data.profile.session.landingPage.query", "{\"a\":1}", "schema: data.profile.session.landingPage.query has a value that is not a string" },
        { "data.profile.session.landingPage.query", "[]", "schema: data.profile.session.landingPage.query not an object" },
        { "data.profile.session.landingPage.title", "5", "schema: data.profile.session.landingPage.title not a string" },
        { "data.profile.session.landingPage.url", "null", "schema: data.profile.session.landingPage.url not a string" },
        { "data.profile.session.count", "\"10\"", "schema: data.profile.session.count not a number" },
        { "data.profile.session.activeSessionLength", "null", "schema: data.profile.session.activeSessionLength not a number" },
        { "data.profile.session.averageSessionLength", "true", "schema: data.profile.session.averageSessionLength not a number" },
        { "data.experiences", "{}", "schema: data.experiences not an array" },
        { "data.experiences.0", "\"x\"", "schema: data.experiences[0] not an object" },
        { "data.experiences.0.experienceId", "1", "schema: data.experiences[0].experienceId not a string" },
        { "data.experiences.0.variantIndex", "\"1\"", "schema: data.experiences[0].variantIndex not a number" },
        { "data.experiences.0.variants", "[]", "schema: data.experiences[0].variants not an object" },
        { "data.experiences.0.variants", "{\"a\":1}", "schema: data.experiences[0].variants has a value that is not a string" },
        { "data.experiences.0.sticky", "\"yes\"", "schema: data.experiences[0].sticky not a boolean" },
        { "data.experiences.0.sticky", "null", "schema: data.experiences[0].sticky not a boolean" },
        { "data.changes", "{}", "schema: data.changes not an array" },
        { "data.changes.0", "1", "schema: data.changes[0] not an object" },
        { "data.changes.0.key", "1", "schema: data.changes[0].key not a string" },
        { "data.changes.0.type", "\"Other\"", "schema: data.changes[0].type not \"Variable\"" },
        { "data.changes.0.type", "\"variable\"", "schema: data.changes[0].type not \"Variable\"" },
        { "data.changes.3.value", "[1,2]", "schema: data.changes[3].value not a string, boolean, null, number or object" },
        { "data.changes.0.meta", "null", "schema: data.changes[0].meta not an object" },
        { "data.changes.0.meta.experienceId", "1", "schema: data.changes[0].meta.experienceId not a string" },
        { "data.changes.0.meta.variantIndex", "\"1\"", "schema: data.changes[0].meta.variantIndex not a number" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *body = variant(p, "identified-visitor.json", cases[i].path, cases[i].value);
        const char *err = decode_err(p, body, strlen(body));
        if (strcmp(err, cases[i].want) != 0)
            fail_msg("%s = %s:\n got  %s\n want %s", cases[i].path, cases[i].value ? cases[i].value : "(deleted)",
                     err, cases[i].want);
    }
}

static void test_not_json(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    const char *full = fixture(p, "identified-visitor.json", &len);
    static const char *const garbage[] = {
        "garbage", "{", "{\"data\":", "<html>502 Bad Gateway</html>", "{\"a\":1} trailing",
        "{\"message\":\"\xff\xfe\"}", "\x01\x02\x03\x1b[31m",
    };
    const char *err;

    assert_string_equal(decode_err(p, "", 0), "bad json: empty body");
    assert_string_equal(decode_err(p, NULL, 0), "bad json: empty body");
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        err = decode_err(p, garbage[i], strlen(garbage[i]));
        assert_int_equal(strncmp(err, "bad json: ", 10), 0);
        assert_ascii(err);
    }
    /* truncated at several points */
    for (apr_size_t cut = 1; cut < len; cut += len / 7) {
        err = decode_err(p, full, cut);
        assert_int_equal(strncmp(err, "bad json: ", 10), 0);
    }
    /* an embedded NUL byte inside the length */
    err = decode_err(p, "{\"message\":\"ok\"\0}", 17);
    assert_int_equal(strncmp(err, "bad json: ", 10), 0);
    assert_string_equal(decode_err(p, "[]", 2), "schema: response not an object");
    assert_string_equal(decode_err(p, "null", 4), "schema: response not an object");
    assert_string_equal(decode_err(p, "\"ok\"", 4), "schema: response not an object");
}

static char *nested(apr_pool_t *p, int depth)
{
    char *s = apr_palloc(p, (apr_size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = '[';
        s[2 * depth - 1 - i] = ']';
    }
    s[2 * depth] = '\0';
    return s;
}

static void test_depth_and_size_bounds(void **state)
{
    apr_pool_t *p = *state;
    const char *deep = nested(p, 200000);
    apr_size_t big_len = 17u * 1024u * 1024u;
    char *big = apr_palloc(p, big_len);

    assert_string_equal(decode_err(p, deep, strlen(deep)), "bad json: nested too deep");
    /* depth counted outside strings only */
    decode_ok(p, variant(p, "new-visitor.json", "data.profile.traits.s", apr_psprintf(p, "\"%s\"", nested(p, 500))));
    /* moderately nested traits pass, hostile nesting fails */
    decode_ok(p, variant(p, "new-visitor.json", "data.profile.traits.t", nested(p, 50)));
    deep = variant(p, "new-visitor.json", "data.profile.traits.t", nested(p, 70));
    assert_string_equal(decode_err(p, deep, strlen(deep)), "bad json: nested too deep");

    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    assert_string_equal(decode_err(p, big, big_len), "bad json: body too large");
}

/* ---- error envelopes ------------------------------------------------------- */

static const char *code_of(apr_pool_t *p, const char *body)
{
    return ctfl_json_error_code(p, body, body ? strlen(body) : 0);
}

static void test_error_code(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(code_of(p, "{\"message\":\"Profile not found\",\"data\":{},"
                                   "\"error\":{\"code\":\"ERR_PROFILE_NOT_FOUND\"}}"), "ERR_PROFILE_NOT_FOUND");
    assert_string_equal(code_of(p, "{\"data\":{\"error\":{\"code\":\"ERR_NAMESPACE_MISMATCH\"}}}"),
                        "ERR_NAMESPACE_MISMATCH");
    assert_null(code_of(p, fixture(p, "new-visitor.json", NULL)));
    assert_null(code_of(p, "{\"error\":null}"));
    assert_null(code_of(p, "{\"error\":{\"code\":42}}"));
    assert_null(code_of(p, "{\"error\":{\"code\":\"ERR\\r\\nX-Evil: 1\"}}"));
    assert_null(code_of(p, "{\"error\":{\"code\":\"\"}}"));
    assert_null(code_of(p, apr_psprintf(p, "{\"error\":{\"code\":\"%0100d\"}}", 7)));
    assert_null(code_of(p, "{\"error\":\"ERR_X\"}"));
    assert_null(code_of(p, "[]"));
    assert_null(code_of(p, "garbage"));
    assert_null(code_of(p, ""));
    assert_null(code_of(p, NULL));
    assert_null(code_of(p, nested(p, 100000)));
}

static void test_version(void **state)
{
    assert_int_equal(strncmp(ctfl_json_version(), "jansson 2.", 10), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_visitor, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_identified_visitor_flags, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_merge_tag_profile, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_stripped, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_page_title_and_extra_keys, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_output_is_ascii, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_valid_edge_values, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_variant_index_conversion, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_experiences_list_escapes_ids, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_keys_last_wins, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_flags_fold_and_unwrap, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_schema_violations, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_not_json, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_depth_and_size_bounds, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_error_code, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
