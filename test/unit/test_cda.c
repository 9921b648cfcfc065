/* Unit tests for ctfl_cda: the CDA entries request (URL, batches of 100,
 * headers, locale, include), failure mapping, splitting a response into raw
 * entries/assets with missing and unresolved ids, the token never in a reason
 * (spec §4.1, §9.4, §10.1, §10.5), and the assembly of link graphs from
 * individually cached raw objects, compared with direct responses on every
 * fixture. The HTTP side runs against the scripted 127.0.0.1 server. */
#include "unit.h"
#include "http_fixture.h"
#include "ctfl_cda.h"
#include "ctfl_json_value.h"

#include <apr_hash.h>
#include <dirent.h>

#define BUDGET_MS 10000L     /* generous: only the timeout test is meant to use it up */
#define TOKEN "s3cr3t-CDA-token_0123456789abcdefXYZ"
#define BASELINE "4ib0hsHWoSOnCVdDkizE8d"
#define EMPTY_COLLECTION "{\"sys\":{\"type\":\"Array\"},\"total\":0,\"skip\":0,\"limit\":100,\"items\":[]}"

typedef http_fixture fixture;



static void start(fixture *f, const ss_step *steps, int n)
{
    http_fixture_start(f, steps, n, 4);
}

static ctfl_cda_request cda_request(fixture *f)
{
    ctfl_cda_request r = { 0 };
    r.base_url = apr_psprintf(f->p, "http://127.0.0.1:%d/contentful/", f->srv ? f->srv->port : 9);
    r.space = "uelxcuo7v97l";
    r.environment = "master";
    r.token = TOKEN;
    r.locale = "en-US";
    r.timeout_ms = BUDGET_MS;
    r.max_response = 1024 * 1024;
    r.allow_insecure = 1;
    return r;
}

static apr_array_header_t *id_list(apr_pool_t *p, const char *const *ids, int n)
{
    apr_array_header_t *a = apr_array_make(p, n + 1, sizeof(const char *));
    for (int i = 0; i < n; i++) APR_ARRAY_PUSH(a, const char *) = ids[i];
    return a;
}

static ctfl_cda_result fetch(fixture *f, const ctfl_cda_request *r, const char *const *ids, int n)
{
    ctfl_cda_result res;
    ctfl_cda_fetch(f->hp, f->p, r, id_list(f->p, ids, n), &res);
    return res;
}

static char *read_fixture(apr_pool_t *p, const char *id)
{
    char *text = unit_read_file(p, apr_psprintf(p, "%s/fixtures/contentful/entries/%s.json",
                                                unit_shared_dir(), id), NULL);
    if (!text) fail_msg("missing fixture %s", id);
    return text;
}

static ctfl_value *parse(apr_pool_t *p, const char *json)
{
    ctfl_value *v = NULL;
    const char *err = NULL;
    if (ctfl_json_parse_value(p, json, strlen(json), &v, &err) != 0) fail_msg("%s: %s", err, json);
    return v;
}

static const ctfl_cda_raw *find_raw(const ctfl_cda_result *res, ctfl_cda_kind kind, const char *id)
{
    for (int i = 0; i < res->raws->nelts; i++) {
        const ctfl_cda_raw *r = &APR_ARRAY_IDX(res->raws, i, ctfl_cda_raw);
        if (r->kind == kind && strcmp(r->id, id) == 0) return r;
    }
    return NULL;
}

static int has_str(const apr_array_header_t *a, const char *s)
{
    for (int i = 0; a && i < a->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(a, i, const char *), s) == 0) return 1;
    return 0;
}

static int has_ref(const apr_array_header_t *a, ctfl_cda_kind kind, const char *id)
{
    for (int i = 0; a && i < a->nelts; i++) {
        const ctfl_cda_ref *r = &APR_ARRAY_IDX(a, i, ctfl_cda_ref);
        if (r->kind == kind && strcmp(r->id, id) == 0) return 1;
    }
    return 0;
}

/* ---- synthetic CDA objects ---------------------------------------------- */

static const char *link_json(apr_pool_t *p, const char *type, const char *id)
{
    return apr_psprintf(p, "{\"sys\":{\"type\":\"Link\",\"linkType\":\"%s\",\"id\":\"%s\"}}", type, id);
}

static const char *entry_json(apr_pool_t *p, const char *id, const char *fields)
{
    return apr_psprintf(p, "{\"metadata\":{\"tags\":[]},\"sys\":{\"space\":{\"sys\":{\"type\":\"Link\","
                        "\"linkType\":\"Space\",\"id\":\"sp\"}},\"id\":\"%s\",\"type\":\"Entry\","
                        "\"contentType\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"ContentType\","
                        "\"id\":\"content\"}},\"locale\":\"en-US\"},\"fields\":%s}", id, fields);
}

static const char *asset_json(apr_pool_t *p, const char *id)
{
    return apr_psprintf(p, "{\"metadata\":{\"tags\":[]},\"sys\":{\"id\":\"%s\",\"type\":\"Asset\","
                        "\"locale\":\"en-US\"},\"fields\":{\"title\":\"%s\",\"file\":{\"url\":"
                        "\"//images.ctfassets.net/sp/%s/img.png\",\"contentType\":\"image/png\"}}}",
                        id, id, id);
}

static const char *collection(apr_pool_t *p, const char *items, const char *inc_entries,
                              const char *inc_assets)
{
    return apr_psprintf(p, "{\"sys\":{\"type\":\"Array\"},\"total\":1,\"skip\":0,\"limit\":100,"
                        "\"items\":[%s],\"includes\":{\"Entry\":[%s],\"Asset\":[%s]}}",
                        items, inc_entries ? inc_entries : "", inc_assets ? inc_assets : "");
}

/* c0 -> c1 -> ... -> c<n-1>, each chain entry also linking asset a<i> */
static const char *chain_entry(apr_pool_t *p, int i, int n)
{
    const char *next = i + 1 < n ? link_json(p, "Entry", apr_psprintf(p, "c%d", i + 1)) : "null";
    return entry_json(p, apr_psprintf(p, "c%d", i),
                      apr_psprintf(p, "{\"next\":%s,\"image\":%s}", next,
                                   link_json(p, "Asset", apr_psprintf(p, "a%d", i))));
}

/* ---- validation and URL ---------------------------------------------------- */

static void test_id_and_token_validation(void **state)
{
    char long_id[CTFL_CDA_ID_MAX + 2];
    (void)state;
    assert_true(ctfl_cda_id_valid("4ib0hsHWoSOnCVdDkizE8d"));
    assert_true(ctfl_cda_id_valid("a.b_c-D9"));
    assert_false(ctfl_cda_id_valid(""));
    assert_false(ctfl_cda_id_valid(NULL));
    assert_false(ctfl_cda_id_valid("a,b"));
    assert_false(ctfl_cda_id_valid("a b"));
    assert_false(ctfl_cda_id_valid("a/b"));
    assert_false(ctfl_cda_id_valid("a%2C"));
    assert_false(ctfl_cda_id_valid("\xc3\xa9"));
    memset(long_id, 'x', sizeof(long_id));
    long_id[CTFL_CDA_ID_MAX] = '\0';
    assert_true(ctfl_cda_id_valid(long_id));
    long_id[CTFL_CDA_ID_MAX] = 'x';
    long_id[CTFL_CDA_ID_MAX + 1] = '\0';
    assert_false(ctfl_cda_id_valid(long_id));

    assert_true(ctfl_cda_token_valid(TOKEN));
    assert_false(ctfl_cda_token_valid(""));
    assert_false(ctfl_cda_token_valid(NULL));
    assert_false(ctfl_cda_token_valid("a b"));
    assert_false(ctfl_cda_token_valid("abc\r\nX-Evil: 1"));
    assert_false(ctfl_cda_token_valid("abc\x7f"));
}

static void test_url(void **state)
{
    fixture *f = *state;
    ctfl_cda_request r = { 0 };
    const char *two[] = { "4ib0hsHWoSOnCVdDkizE8d", "xFwgG3oNaOcjzWiGe4vXo" };
    const char *bad[] = { "ok", "a,b" };

    r.base_url = "https://cdn.contentful.com/";
    r.space = "uelxcuo7v97l";
    r.locale = "en-US";
    /* environment defaults to master; brackets percent-encoded; commas kept; include=10 */
    assert_string_equal(ctfl_cda_entries_url(f->p, &r, two, 2),
                        "https://cdn.contentful.com/spaces/uelxcuo7v97l/environments/master/entries"
                        "?sys.id%5Bin%5D=4ib0hsHWoSOnCVdDkizE8d,xFwgG3oNaOcjzWiGe4vXo&include=10"
                        "&locale=en-US&limit=2");
    r.base_url = "http://127.0.0.1:8000/contentful";          /* normalized to end with '/' */
    r.environment = "staging";
    r.locale = "de-CH";
    assert_string_equal(ctfl_cda_entries_url(f->p, &r, two, 1),
                        "http://127.0.0.1:8000/contentful/spaces/uelxcuo7v97l/environments/staging/entries"
                        "?sys.id%5Bin%5D=4ib0hsHWoSOnCVdDkizE8d&include=10&locale=de-CH&limit=1");
    r.locale = NULL;                                            /* the space's default locale */
    assert_string_equal(ctfl_cda_entries_url(f->p, &r, two, 1),
                        "http://127.0.0.1:8000/contentful/spaces/uelxcuo7v97l/environments/staging/entries"
                        "?sys.id%5Bin%5D=4ib0hsHWoSOnCVdDkizE8d&include=10&limit=1");
    /* a dot-only segment can never walk up the path */
    r.environment = "..";
    assert_string_equal(ctfl_cda_entries_url(f->p, &r, two, 1),
                        "http://127.0.0.1:8000/contentful/spaces/uelxcuo7v97l/environments/%2E%2E/entries"
                        "?sys.id%5Bin%5D=4ib0hsHWoSOnCVdDkizE8d&include=10&limit=1");
    r.environment = NULL;

    /* never all locales, never a locale that is not normalized, never a bad id */
    r.locale = "*";
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 1));
    r.locale = "";
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 1));
    r.locale = "de_DE";
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 1));
    r.locale = "en-US&include=0";
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 1));
    r.locale = "en-US";
    assert_null(ctfl_cda_entries_url(f->p, &r, bad, 2));
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 0));
    assert_null(ctfl_cda_entries_url(f->p, &r, two, CTFL_CDA_BATCH + 1));
    r.environment = "a/b";
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 1));
    r.environment = NULL;
    r.space = "sp ace";
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 1));
    r.space = NULL;
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 1));
    r.space = "uelxcuo7v97l";
    r.base_url = "";
    assert_null(ctfl_cda_entries_url(f->p, &r, two, 1));
}

/* ---- request shape and decoding -------------------------------------------- */

static void test_request_shape_and_fixture_split(void **state)
{
    fixture *f = *state;
    const char *body = read_fixture(f->p, BASELINE);
    ss_step step = { .kind = SS_RESPOND, .status = 200, .body = body };
    const char *ids[] = { BASELINE };
    ctfl_value *resp = parse(f->p, body);
    const ctfl_value *inc = ctfl_value_path(resp, "includes.Entry");
    ctfl_cda_request r;
    ctfl_cda_result res;
    ss_request *seen;
    char v[512];

    start(f, &step, 1);
    r = cda_request(f);
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_OK);
    assert_null(res.reason);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.requests, 1);

    seen = ss_request_copy(f->srv, 0);
    assert_string_equal(seen->method, "GET");
    assert_string_equal(seen->target, "/contentful/spaces/uelxcuo7v97l/environments/master/entries"
                                      "?sys.id%5Bin%5D=" BASELINE "&include=10&locale=en-US&limit=1");
    assert_string_equal(ss_header(seen, "Authorization", v, sizeof(v)), "Bearer " TOKEN);
    assert_string_equal(ss_header(seen, "Accept", v, sizeof(v)), "application/json");
    assert_int_equal(seen->body_len, 0);
    free(seen);

    /* the item and every include, each as the compact JSON of the raw object */
    assert_int_equal(res.raws->nelts, 1 + (int)ctfl_value_len(inc));
    assert_string_equal(APR_ARRAY_IDX(res.raws, 0, ctfl_cda_raw).id, BASELINE);
    assert_string_equal(APR_ARRAY_IDX(res.raws, 0, ctfl_cda_raw).json,
                        ctfl_value_to_json(f->p, ctfl_value_at(ctfl_value_get(resp, "items"), 0)));
    for (apr_size_t i = 0; i < ctfl_value_len(inc); i++) {
        const ctfl_value *e = ctfl_value_at(inc, i);
        const ctfl_cda_raw *raw = find_raw(&res, CTFL_CDA_ENTRY, ctfl_value_str(ctfl_value_path(e, "sys.id")));
        assert_non_null(raw);
        assert_string_equal(raw->json, ctfl_value_to_json(f->p, e));
        assert_int_equal(raw->len, strlen(raw->json));
    }
    /* links stay links in what is kept for the cache */
    assert_non_null(strstr(APR_ARRAY_IDX(res.raws, 0, ctfl_cda_raw).json,
                           "\"nt_experiences\":[{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\""));
    assert_int_equal(res.missing->nelts, 0);
    assert_int_equal(res.unresolved->nelts, 0);
    assert_int_equal(res.invalid->nelts, 0);
}

static void test_items_includes_assets_missing_unresolved(void **state)
{
    fixture *f = *state;
    apr_pool_t *p = f->p;
    const char *a = entry_json(p, "entA", apr_psprintf(p, "{\"title\":\"A\",\"next\":%s,\"image\":%s,"
                                                        "\"gone\":%s,\"goneAsset\":%s}",
                                                        link_json(p, "Entry", "entB"), link_json(p, "Asset", "img1"),
                                                        link_json(p, "Entry", "draftC"), link_json(p, "Asset", "draftImg")));
    const char *b = entry_json(p, "entB", apr_psprintf(p, "{\"back\":%s,\"rich\":{\"nodeType\":\"document\","
                                                        "\"content\":[{\"nodeType\":\"embedded-entry-block\","
                                                        "\"data\":{\"target\":%s}}]}}",
                                                        link_json(p, "Entry", "entA"), link_json(p, "Entry", "draftD")));
    const char *body = collection(p, a, b, asset_json(p, "img1"));
    ss_step step = { .kind = SS_RESPOND, .status = 200, .body = body };
    const char *ids[] = { "entA", "unknownZ", "entA", "bad id", "entB" };
    ctfl_cda_request r;
    ctfl_cda_result res;
    ss_request *seen;
    const ctfl_cda_raw *raw;

    start(f, &step, 1);
    r = cda_request(f);
    res = fetch(f, &r, ids, 5);
    assert_int_equal(res.status, CTFL_CDA_OK);

    /* duplicates sent once, invalid ids never sent */
    seen = ss_request_copy(f->srv, 0);
    assert_non_null(strstr(seen->target, "?sys.id%5Bin%5D=entA,unknownZ,entB&include=10&locale=en-US&limit=3"));
    free(seen);
    assert_int_equal(res.invalid->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(res.invalid, 0, const char *), "bad id");

    assert_int_equal(res.raws->nelts, 3);
    raw = find_raw(&res, CTFL_CDA_ENTRY, "entA");
    assert_non_null(raw);
    assert_string_equal(raw->json, ctfl_value_to_json(p, parse(p, a)));
    assert_non_null(find_raw(&res, CTFL_CDA_ENTRY, "entB"));
    raw = find_raw(&res, CTFL_CDA_ASSET, "img1");
    assert_non_null(raw);
    assert_string_equal(raw->json, ctfl_value_to_json(p, parse(p, asset_json(p, "img1"))));
    assert_null(find_raw(&res, CTFL_CDA_ENTRY, "img1"));

    /* requested but not returned (entB came back as an include: not missing) */
    assert_int_equal(res.missing->nelts, 1);
    assert_true(has_str(res.missing, "unknownZ"));
    /* linked within the include depth, absent: unpublished or deleted */
    assert_int_equal(res.unresolved->nelts, 3);
    assert_true(has_ref(res.unresolved, CTFL_CDA_ENTRY, "draftC"));
    assert_true(has_ref(res.unresolved, CTFL_CDA_ASSET, "draftImg"));
    assert_true(has_ref(res.unresolved, CTFL_CDA_ENTRY, "draftD"));    /* from rich text */
}

static void test_decode_include_depth_bound(void **state)
{
    fixture *f = *state;
    apr_pool_t *p = f->p;
    const char *incs = "", *assets = "", *reason = NULL;
    const char *root[] = { "c0" };
    ctfl_cda_result res = { 0 };
    const char *body;

    /* What the CDA answers for c0 with include=10 on a 13-long chain: c1..c10
     * and a0..a9 (an asset linked from c9 is 10 hops away; a10 is 11). */
    for (int i = 1; i <= 10; i++) incs = apr_pstrcat(p, incs, i > 1 ? "," : "", chain_entry(p, i, 13), NULL);
    for (int i = 0; i <= 9; i++) assets = apr_pstrcat(p, assets, i ? "," : "", asset_json(p, apr_psprintf(p, "a%d", i)), NULL);
    body = collection(p, chain_entry(p, 0, 13), incs, assets);
    assert_int_equal(ctfl_cda_decode(p, body, strlen(body), root, 1, &res, &reason), 0);
    assert_int_equal(res.raws->nelts, 21);
    /* c10's links (c11, a10) are beyond the depth: not reported as unresolved */
    assert_int_equal(res.unresolved->nelts, 0);
    assert_int_equal(res.missing->nelts, 0);

    /* drop c5 from the includes: reported, and nothing behind it is */
    incs = "";
    for (int i = 1; i <= 10; i++)
        if (i != 5) incs = apr_pstrcat(p, incs, *incs ? "," : "", chain_entry(p, i, 13), NULL);
    body = collection(p, chain_entry(p, 0, 13), incs, assets);
    memset(&res, 0, sizeof(res));
    assert_int_equal(ctfl_cda_decode(p, body, strlen(body), root, 1, &res, &reason), 0);
    assert_int_equal(res.unresolved->nelts, 1);
    assert_true(has_ref(res.unresolved, CTFL_CDA_ENTRY, "c5"));
}

static void test_decode_schema_errors(void **state)
{
    fixture *f = *state;
    apr_pool_t *p = f->p;
    const char *ids[] = { "x" };
    static const struct { const char *body, *reason; } cases[] = {
        { "[]", "schema: response is not an object" },
        { "{\"items\":[]}", "schema: sys.type is not Array" },
        { "{\"sys\":{\"type\":\"Error\",\"id\":\"NotFound\"}}", "schema: sys.type is not Array" },
        { "{\"sys\":{\"type\":\"Array\"},\"total\":\"one\",\"items\":{\"not\":\"an array\"}}", "schema: no items array" },
        { "{\"sys\":{\"type\":\"Array\"},\"items\":[],\"includes\":[]}", "schema: includes is not an object" },
        { "{\"sys\":{\"type\":\"Array\"},\"items\":[],\"includes\":{\"Entry\":{}}}", "schema: includes.Entry is not an array" },
        { "{\"sys\":{\"type\":\"Array\"},\"items\":[{\"sys\":{\"type\":\"Entry\"}}]}",
          "schema: items[0] is not an Entry with a valid sys.id" },
        { "{\"sys\":{\"type\":\"Array\"},\"items\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"a,b\"}}]}",
          "schema: items[0] is not an Entry with a valid sys.id" },
        { "{\"sys\":{\"type\":\"Array\"},\"items\":[{\"sys\":{\"type\":\"Asset\",\"id\":\"x\"}}]}",
          "schema: items[0] is not an Entry with a valid sys.id" },
        { "{\"sys\":{\"type\":\"Array\"},\"items\":[],\"includes\":{\"Asset\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"x\"}}]}}",
          "schema: includes.Asset[0] is not an Asset with a valid sys.id" },
        { "{\"sys\":{\"type\":\"Array\"},\"items\":[7]}", "schema: items[0] is not an Entry with a valid sys.id" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ctfl_cda_result res = { 0 };
        const char *reason = NULL;
        if (ctfl_cda_decode(p, cases[i].body, strlen(cases[i].body), ids, 1, &res, &reason) != -1)
            fail_msg("accepted: %s", cases[i].body);
        assert_string_equal(reason, cases[i].reason);
        assert_null(res.raws);                  /* nothing appended on failure */
    }
    /* includes may be absent or null; an empty collection means all missing */
    {
        ctfl_cda_result res = { 0 };
        const char *reason = NULL;
        const char *body = "{\"sys\":{\"type\":\"Array\"},\"items\":[],\"includes\":null}";
        assert_int_equal(ctfl_cda_decode(p, body, strlen(body), ids, 1, &res, &reason), 0);
        assert_int_equal(res.raws->nelts, 0);
        assert_true(has_str(res.missing, "x"));
    }
}

/* ---- batching --------------------------------------------------------------- */

static void test_batches_of_100(void **state)
{
    fixture *f = *state;
    ss_step steps[3];
    const char *ids[260];
    int n = 0;
    ctfl_cda_request r;
    ctfl_cda_result res;

    for (int i = 0; i < 250; i++) ids[n++] = apr_psprintf(f->p, "e%03d", i);
    for (int i = 0; i < 10; i++) ids[n++] = apr_psprintf(f->p, "e%03d", i);   /* duplicates */
    for (int i = 0; i < 3; i++)
        steps[i] = (ss_step){ .kind = SS_RESPOND, .status = 200,
                              .body = collection(f->p, entry_json(f->p, apr_psprintf(f->p, "e%03d", i * 100),
                                                                  "{}"), NULL, NULL) };
    start(f, steps, 3);
    r = cda_request(f);
    res = fetch(f, &r, ids, n);
    assert_int_equal(res.status, CTFL_CDA_OK);
    assert_int_equal(res.requests, 3);
    assert_int_equal(ss_request_count(f->srv), 3);
    for (int b = 0; b < 3; b++) {
        ss_request *seen = ss_request_copy(f->srv, b);
        int count = b < 2 ? 100 : 50;
        char *expect = apr_psprintf(f->p, "/contentful/spaces/uelxcuo7v97l/environments/master/entries"
                                          "?sys.id%%5Bin%%5D=e%03d", b * 100);
        for (int i = 1; i < count; i++) expect = apr_psprintf(f->p, "%s,e%03d", expect, b * 100 + i);
        expect = apr_psprintf(f->p, "%s&include=10&locale=en-US&limit=%d", expect, count);
        assert_string_equal(seen->target, expect);
        free(seen);
    }
    /* one keep-alive connection for all batches */
    assert_int_equal(ss_accepted(f->srv), 1);
    assert_int_equal(res.raws->nelts, 3);
    assert_int_equal(res.missing->nelts, 247);
    assert_false(has_str(res.missing, "e100"));
    assert_true(has_str(res.missing, "e101"));
    assert_true(has_str(res.missing, "e249"));
}

static void test_failed_batch_keeps_earlier_ones(void **state)
{
    fixture *f = *state;
    const char *ids[150];
    ss_step steps[2];
    ctfl_cda_request r;
    ctfl_cda_result res;

    for (int i = 0; i < 150; i++) ids[i] = apr_psprintf(f->p, "e%03d", i);
    steps[0] = (ss_step){ .kind = SS_RESPOND, .status = 200,
                          .body = collection(f->p, entry_json(f->p, "e007", "{}"), NULL, NULL) };
    steps[1] = (ss_step){ .kind = SS_RESPOND, .status = 500,
                          .body = "{\"sys\":{\"type\":\"Error\",\"id\":\"ServerError\"},\"message\":\"x\"}" };
    start(f, steps, 2);
    r = cda_request(f);
    res = fetch(f, &r, ids, 150);
    assert_int_equal(res.status, CTFL_CDA_ERROR);
    assert_string_equal(res.reason, "http 500 ServerError");
    assert_int_equal(res.requests, 2);
    assert_int_equal(res.raws->nelts, 1);
    assert_non_null(find_raw(&res, CTFL_CDA_ENTRY, "e007"));
    assert_int_equal(res.missing->nelts, 99);          /* only the answered batch says so */
    assert_false(has_str(res.missing, "e120"));
}

static void test_nothing_to_fetch(void **state)
{
    fixture *f = *state;
    const char *ids[] = { "not valid", "" };
    ctfl_cda_request r;
    ctfl_cda_result res;

    start(f, NULL, 0);
    r = cda_request(f);
    res = fetch(f, &r, ids, 2);
    assert_int_equal(res.status, CTFL_CDA_OK);
    assert_int_equal(res.requests, 0);
    assert_int_equal(res.invalid->nelts, 2);
    assert_int_equal(ss_request_count(f->srv), 0);
}

/* ---- failures ------------------------------------------------------------------ */

static void test_http_errors(void **state)
{
    fixture *f = *state;
    ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 401,
          .body = "{\"sys\":{\"type\":\"Error\",\"id\":\"AccessTokenInvalid\"},\"message\":\"The access token you "
                  "sent could not be found or is invalid.\"}" },
        { .kind = SS_RESPOND, .status = 404, .body = "{\"sys\":{\"type\":\"Error\",\"id\":\"NotFound\"}}" },
        { .kind = SS_RESPOND, .status = 500, .body = "<html>oops</html>" },
        { .kind = SS_RESPOND, .status = 429, .body = "{\"sys\":{\"type\":\"Error\",\"id\":\"Rate Limit\"}}" },
        { .kind = SS_RESPOND, .status = 200, .body = "<html><body>upstream error</body></html>" },
        { .kind = SS_RESPOND, .status = 200,
          .body = "{\"sys\":{\"type\":\"Array\"},\"total\":\"one\",\"items\":{\"not\":\"an array\"}}" },
        { .kind = SS_RESPOND, .status = 200, .chunked_total = 64 * 1024 },
        { .kind = SS_RESET },
    };
    static const char *const expect[] = {
        "http 401 AccessTokenInvalid", "http 404 NotFound", "http 500", "http 429",
        NULL /* bad json */, "schema: no items array", "oversize", NULL /* transport */,
    };
    const char *ids[] = { BASELINE };
    ctfl_cda_request r;

    start(f, steps, 8);
    r = cda_request(f);
    r.max_response = 16 * 1024;
    for (int i = 0; i < 8; i++) {
        ctfl_cda_result res = fetch(f, &r, ids, 1);
        assert_int_equal(res.status, CTFL_CDA_ERROR);
        assert_non_null(res.reason);
        if (expect[i]) assert_string_equal(res.reason, expect[i]);
        assert_int_equal(res.raws->nelts, 0);
        assert_int_equal(res.missing->nelts, 0);       /* a failure says nothing about ids */
    }
}

static void test_bad_json_and_transport_reasons(void **state)
{
    fixture *f = *state;
    ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 200, .body = "{\"sys\":", .close_after = 1 },
        { .kind = SS_RESET },       /* on a fresh connection: curl does not retry it */
    };
    const char *ids[] = { BASELINE };
    ctfl_cda_request r;
    ctfl_cda_result res;

    start(f, steps, 2);
    r = cda_request(f);
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_ERROR);
    if (strncmp(res.reason, "bad json: ", 10) != 0) fail_msg("%s", res.reason);
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_ERROR);
    if (strncmp(res.reason, "transport: ", 11) != 0) fail_msg("%s", res.reason);
}

static void test_timeout_and_connect(void **state)
{
    fixture *f = *state;
    ss_step step = { .kind = SS_HANG };
    const char *ids[] = { BASELINE };
    ctfl_cda_request r;
    ctfl_cda_result res;

    start(f, &step, 1);
    r = cda_request(f);
    r.timeout_ms = 300;
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_TIMEOUT);
    assert_string_equal(res.reason, "timeout");
    assert_int_equal(res.requests, 1);

    r.base_url = apr_psprintf(f->p, "http://127.0.0.1:%d/contentful/", ss_dead_port());
    r.timeout_ms = BUDGET_MS;
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_ERROR);
    assert_true(strncmp(res.reason, "connect: ", 9) == 0);

    /* https only unless allowed */
    r = cda_request(f);
    r.allow_insecure = 0;
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_ERROR);
    assert_int_equal(ss_request_count(f->srv), 1);     /* only the hung one ever arrived */
}

static void test_bad_requests(void **state)
{
    fixture *f = *state;
    const char *ids[] = { BASELINE };
    ctfl_cda_request r;
    ctfl_cda_result res;

    start(f, NULL, 0);
    r = cda_request(f);
    r.token = NULL;
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_ERROR);
    assert_string_equal(res.reason, "bad request: missing or malformed token");
    r.token = "abc\r\nX-Injected: 1";
    res = fetch(f, &r, ids, 1);
    assert_string_equal(res.reason, "bad request: missing or malformed token");
    assert_null(strstr(res.reason, "Injected"));
    r = cda_request(f);
    r.locale = "*";
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_ERROR);
    assert_string_equal(res.reason, "bad request: invalid base url, space, environment or locale");
    r = cda_request(f);
    r.space = NULL;
    res = fetch(f, &r, ids, 1);
    assert_int_equal(res.status, CTFL_CDA_ERROR);
    assert_int_equal(ss_request_count(f->srv), 0);
}

/* The token must not leak into a reason, whatever the server sends back. */
static void test_token_never_in_reasons(void **state)
{
    fixture *f = *state;
    const char *letters = "OnlyLettersTokenValueABCDEFGHIJ";
    ss_step steps[] = {
        { .kind = SS_RESPOND, .status = 200, .body = TOKEN },                          /* bad json near it */
        { .kind = SS_RESPOND, .status = 200, .body = "{\"a\":1} " TOKEN },
        { .kind = SS_RESPOND, .status = 200, .body = "[\"" TOKEN "\"" },
        { .kind = SS_RESPOND, .status = 401, .body = "{\"sys\":{\"type\":\"Error\",\"id\":\"AccessTokenInvalid\"},"
                                                     "\"message\":\"bad token " TOKEN "\"}" },
        { .kind = SS_RESPOND, .status = 403,
          .body = apr_psprintf(f->p, "{\"sys\":{\"type\":\"Error\",\"id\":\"%s\"}}", letters) },
        { .kind = SS_RESPOND, .status = 200, .body = apr_psprintf(f->p, "{\"sys\":{\"type\":\"Array\"},"
                                                                   "\"items\":[{\"sys\":{\"type\":\"Entry\",\"id\":\"%s!\"}}]}", TOKEN) },
    };
    const char *ids[] = { BASELINE };
    ctfl_cda_request r;
    int n = (int)(sizeof(steps) / sizeof(steps[0]));

    start(f, steps, n);
    r = cda_request(f);
    for (int i = 0; i < n; i++) {
        ctfl_cda_result res;
        r.token = i == 4 ? letters : TOKEN;
        res = fetch(f, &r, ids, 1);
        assert_int_equal(res.status, CTFL_CDA_ERROR);
        assert_non_null(res.reason);
        if (strstr(res.reason, r.token)) fail_msg("token in reason %d: %s", i, res.reason);
        /* not even a piece of it */
        if (strstr(res.reason, "s3cr3t") || strstr(res.reason, "OnlyLetters"))
            fail_msg("token piece in reason %d: %s", i, res.reason);
    }
}

/* ---- assembly from cached raw objects ------------------------------------------ */

typedef struct {
    apr_hash_t *texts;       /* "E:id" / "A:id" -> JSON text */
    int lookups;
} raw_cache;

/* The cached text of an object, decoded as the module's cache does. */
static const ctfl_value *cache_get(void *ctx, ctfl_cda_kind kind, const char *id, int *corrupt)
{
    raw_cache *c = ctx;
    apr_pool_t *p = apr_hash_pool_get(c->texts);
    const char *text = apr_hash_get(c->texts, apr_pstrcat(p, kind == CTFL_CDA_ASSET ? "A:" : "E:", id, NULL),
                                    APR_HASH_KEY_STRING);
    const ctfl_value *v;
    c->lookups++;
    if (!text) return NULL;
    if (!(v = ctfl_cda_decode_object(p, text, strlen(text), kind, id))) *corrupt = 1;
    return v;
}

static void cache_put(raw_cache *c, ctfl_cda_kind kind, const char *id, const char *json, int overwrite)
{
    apr_pool_t *p = apr_hash_pool_get(c->texts);
    const char *key = apr_pstrcat(p, kind == CTFL_CDA_ASSET ? "A:" : "E:", id, NULL);
    if (!overwrite && apr_hash_get(c->texts, key, APR_HASH_KEY_STRING)) return;
    apr_hash_set(c->texts, key, APR_HASH_KEY_STRING, json);
}

static void cache_put_response(raw_cache *c, apr_pool_t *p, const char *body, const char *id)
{
    ctfl_cda_result res = { 0 };
    const char *reason = NULL;
    const char *ids[] = { id };
    if (ctfl_cda_decode(p, body, strlen(body), ids, 1, &res, &reason) != 0) fail_msg("%s: %s", id, reason);
    for (int i = 0; i < res.raws->nelts; i++) {
        const ctfl_cda_raw *r = &APR_ARRAY_IDX(res.raws, i, ctfl_cda_raw);
        cache_put(c, r->kind, r->id, r->json, 0);
    }
}

/* Two resolved graphs are the same: same values, same sharing, same cycles. */
static int same_graph(apr_hash_t *pairs, const ctfl_value *a, const ctfl_value *b)
{
    if (!a || !b) return a == b;
    if (a->type != b->type) return 0;
    switch (a->type) {
    case CTFL_V_NULL: return 1;
    case CTFL_V_BOOL: return a->u.b == b->u.b;
    case CTFL_V_NUMBER: return a->u.n == b->u.n;
    case CTFL_V_STRING: return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case CTFL_V_ARRAY:
        if (a->u.arr.n != b->u.arr.n) return 0;
        for (apr_size_t i = 0; i < a->u.arr.n; i++)
            if (!same_graph(pairs, a->u.arr.items[i], b->u.arr.items[i])) return 0;
        return 1;
    case CTFL_V_OBJECT: {
        const ctfl_value *seen = apr_hash_get(pairs, &a, sizeof(a));
        const ctfl_value **key;
        if (seen) return seen == b;                    /* a cycle or a shared node */
        key = apr_palloc(apr_hash_pool_get(pairs), sizeof(*key));
        *key = a;
        apr_hash_set(pairs, key, sizeof(*key), b);
        if (a->u.obj.n != b->u.obj.n) return 0;
        for (apr_size_t i = 0; i < a->u.obj.n; i++)
            if (strcmp(a->u.obj.keys[i], b->u.obj.keys[i]) != 0
                || !same_graph(pairs, a->u.obj.vals[i], b->u.obj.vals[i]))
                return 0;
        return 1;
    }
    }
    return 0;
}

/* direct (from a response) and assembled indexes hold the same objects and
 * resolve every entry to the same graph. */
static void assert_same_index(apr_pool_t *p, const char *what, ctfl_entries *direct,
                              ctfl_entries *assembled, const ctfl_value *response)
{
    apr_array_header_t *ids = ctfl_entries_ids(direct, p);
    const ctfl_value *assets = ctfl_value_path(response, "includes.Asset");
    apr_hash_t *pairs = apr_hash_make(p);

    if (ctfl_entries_count(direct) != ctfl_entries_count(assembled))
        fail_msg("%s: %d entries direct, %d assembled", what, (int)ctfl_entries_count(direct),
                 (int)ctfl_entries_count(assembled));
    assert_int_equal(ctfl_entries_asset_count(direct), ctfl_entries_asset_count(assembled));
    for (apr_size_t i = 0; i < ctfl_value_len(assets); i++) {
        const char *id = ctfl_value_str(ctfl_value_path(ctfl_value_at(assets, i), "sys.id"));
        assert_string_equal(ctfl_value_to_json(p, ctfl_entries_asset(direct, id)),
                            ctfl_value_to_json(p, ctfl_entries_asset(assembled, id)));
    }
    for (int i = 0; i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        const ctfl_value *raw = ctfl_entries_raw(assembled, id);
        if (!raw) fail_msg("%s: %s not assembled", what, id);
        assert_string_equal(ctfl_value_to_json(p, ctfl_entries_raw(direct, id)), ctfl_value_to_json(p, raw));
        if (!same_graph(pairs, ctfl_entries_entry(direct, id), ctfl_entries_entry(assembled, id)))
            fail_msg("%s: the resolved graph of %s differs", what, id);
    }
}

static ctfl_entries *direct_index(apr_pool_t *p, const char *body, ctfl_value **response)
{
    ctfl_entries *e = ctfl_entries_make(p);
    const char *err = NULL;
    *response = parse(p, body);
    if (ctfl_entries_add_response(e, *response, &err) != 0) fail_msg("%s", err);
    return e;
}

static apr_array_header_t *fixture_ids(apr_pool_t *p)
{
    const char *dir = apr_psprintf(p, "%s/fixtures/contentful/entries", unit_shared_dir());
    apr_array_header_t *ids = apr_array_make(p, 64, sizeof(const char *));
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d) fail_msg("missing %s", dir);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0)
            APR_ARRAY_PUSH(ids, const char *) = apr_pstrndup(p, de->d_name, n - 5);
    }
    closedir(d);
    return ids;
}

static void test_assemble_equals_direct_every_fixture(void **state)
{
    fixture *f = *state;
    apr_array_header_t *ids = fixture_ids(f->p);
    raw_cache all = { apr_hash_make(f->p), 0 };

    assert_int_equal(ids->nelts, 45);
    /* A shared cache filled by every fixture response, as after a warm-up. */
    for (int i = 0; i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        cache_put_response(&all, f->p, read_fixture(f->p, id), id);
    }
    for (int i = 0; i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        const char *body = read_fixture(f->p, id);
        const char *roots[] = { id };
        raw_cache own = { apr_hash_make(f->p), 0 };
        ctfl_value *response;
        ctfl_entries *direct = direct_index(f->p, body, &response), *assembled;
        ctfl_cda_walk w;

        /* from this response's objects alone, each cached on its own */
        cache_put_response(&own, f->p, body, id);
        assembled = ctfl_entries_make(f->p);
        ctfl_cda_assemble(f->p, roots, 1, cache_get, &own, assembled, &w);
        assert_same_index(f->p, id, direct, assembled, response);
        assert_int_equal(w.absent + w.corrupt, 0);
        assert_int_equal(w.present, (int)(ctfl_entries_count(direct) + ctfl_entries_asset_count(direct)));
        assert_int_equal(own.lookups, w.nodes->nelts);          /* each object looked up once */

        /* from the shared cache: the other fixtures' entries do not leak in */
        assembled = ctfl_entries_make(f->p);
        ctfl_cda_assemble(f->p, roots, 1, cache_get, &all, assembled, &w);
        assert_same_index(f->p, apr_pstrcat(f->p, id, " (shared cache)", NULL), direct, assembled, response);
        assert_int_equal(w.absent + w.corrupt, 0);
    }
}

static void test_assemble_cycles_and_assets(void **state)
{
    fixture *f = *state;
    const char *dir = getenv("CTFL_UNIT_DATA");
    const char *body = unit_read_file(f->p, apr_psprintf(f->p, "%s/entries-graph.json", dir && *dir ? dir : "test/unit/data"), NULL);
    const char *roots[] = { "cycleBaseline", "mutualA" };
    raw_cache c = { apr_hash_make(f->p), 0 };
    ctfl_cda_result res = { 0 };
    const char *reason = NULL;
    ctfl_value *response;
    ctfl_entries *direct, *assembled = ctfl_entries_make(f->p);
    ctfl_cda_walk w;

    assert_non_null(body);
    direct = direct_index(f->p, body, &response);
    assert_int_equal(ctfl_cda_decode(f->p, body, strlen(body), roots, 2, &res, &reason), 0);
    for (int i = 0; i < res.raws->nelts; i++) {
        const ctfl_cda_raw *r = &APR_ARRAY_IDX(res.raws, i, ctfl_cda_raw);
        cache_put(&c, r->kind, r->id, r->json, 1);
    }
    assert_true(ctfl_entries_asset_count(direct) > 0);
    ctfl_cda_assemble(f->p, roots, 2, cache_get, &c, assembled, &w);
    assert_same_index(f->p, "entries-graph", direct, assembled, response);
    assert_int_equal(w.nodes->nelts, c.lookups);
    assert_int_equal(w.truncated, 0);
}

static void test_assemble_depth_bound(void **state)
{
    fixture *f = *state;
    apr_pool_t *p = f->p;
    const char *incs = "", *assets = "", *body;
    const char *roots[] = { "c0" };
    raw_cache c = { apr_hash_make(p), 0 };
    ctfl_value *response;
    ctfl_entries *direct, *assembled = ctfl_entries_make(p);
    ctfl_cda_walk w;

    /* the cache knows the whole 13-long chain and all its assets */
    for (int i = 0; i < 13; i++) {
        cache_put(&c, CTFL_CDA_ENTRY, apr_psprintf(p, "c%d", i), ctfl_value_to_json(p, parse(p, chain_entry(p, i, 13))), 1);
        cache_put(&c, CTFL_CDA_ASSET, apr_psprintf(p, "a%d", i), ctfl_value_to_json(p, parse(p, asset_json(p, apr_psprintf(p, "a%d", i)))), 1);
    }
    /* the CDA with include=10 returns c0..c10 and a0..a9 */
    for (int i = 1; i <= 10; i++) incs = apr_pstrcat(p, incs, i > 1 ? "," : "", chain_entry(p, i, 13), NULL);
    for (int i = 0; i <= 9; i++) assets = apr_pstrcat(p, assets, i ? "," : "", asset_json(p, apr_psprintf(p, "a%d", i)), NULL);
    body = collection(p, chain_entry(p, 0, 13), incs, assets);
    direct = direct_index(p, body, &response);

    ctfl_cda_assemble(p, roots, 1, cache_get, &c, assembled, &w);
    assert_same_index(p, "chain", direct, assembled, response);
    assert_int_equal(ctfl_entries_count(assembled), 11);
    assert_null(ctfl_entries_raw(assembled, "c11"));
    assert_null(ctfl_entries_asset(assembled, "a10"));
    assert_int_equal(w.nodes->nelts, 21);                  /* c11 and a10 never looked up */
    assert_int_equal(c.lookups, 21);
    /* the link from c10 stays a link, as in the direct response */
    assert_string_equal(ctfl_value_str(ctfl_value_path(ctfl_entries_entry(assembled, "c10"), "fields.next.sys.type")), "Link");
    assert_string_equal(ctfl_value_str(ctfl_value_path(ctfl_entries_entry(assembled, "c9"), "fields.next.sys.type")), "Entry");
}

static void test_assemble_absent_corrupt_and_vias(void **state)
{
    fixture *f = *state;
    apr_pool_t *p = f->p;
    raw_cache c = { apr_hash_make(p), 0 };
    const char *roots[] = { "root", "bad id", "root", "nowhere" };
    ctfl_entries *e = ctfl_entries_make(p);
    ctfl_cda_walk w;
    const ctfl_value *root;
    int seen_img = 0, seen_b = 0, seen_w = 0, seen_nowhere = 0;

    cache_put(&c, CTFL_CDA_ENTRY, "root", entry_json(p, "root", apr_psprintf(p, "{\"list\":[%s,%s,%s,%s]}",
              link_json(p, "Entry", "b"), link_json(p, "Asset", "img"), link_json(p, "Entry", "w"),
              link_json(p, "Entry", "root"))), 1);
    cache_put(&c, CTFL_CDA_ENTRY, "b", "{not json", 1);                       /* corrupt */
    cache_put(&c, CTFL_CDA_ENTRY, "w", entry_json(p, "other", "{}"), 1);      /* wrong object */
    /* "img" absent: an asset only comes back with the entry linking it */
    ctfl_cda_assemble(p, roots, 4, cache_get, &c, e, &w);
    assert_int_equal(w.present, 1);
    assert_int_equal(w.corrupt, 2);
    assert_int_equal(w.absent, 2);
    for (int i = 0; i < w.nodes->nelts; i++) {
        const ctfl_cda_node *n = &APR_ARRAY_IDX(w.nodes, i, ctfl_cda_node);
        if (strcmp(n->id, "img") == 0) {
            seen_img = 1;
            assert_int_equal(n->kind, CTFL_CDA_ASSET);
            assert_int_equal(n->state, CTFL_CDA_NODE_ABSENT);
            assert_string_equal(n->via, "root");
            assert_int_equal(n->hop, 1);
        } else if (strcmp(n->id, "b") == 0) {
            seen_b = 1;
            assert_int_equal(n->state, CTFL_CDA_NODE_CORRUPT);
        } else if (strcmp(n->id, "w") == 0) {
            seen_w = 1;
            assert_int_equal(n->state, CTFL_CDA_NODE_CORRUPT);
        } else if (strcmp(n->id, "nowhere") == 0) {
            seen_nowhere = 1;
            assert_null(n->via);
            assert_int_equal(n->hop, 0);
            assert_int_equal(n->state, CTFL_CDA_NODE_ABSENT);
        }
    }
    assert_true(seen_img && seen_b && seen_w && seen_nowhere);
    assert_int_equal(w.nodes->nelts, 5);                      /* root once, "bad id" skipped */
    /* what is not there stays a link; the self link resolves to itself */
    root = ctfl_entries_entry(e, "root");
    assert_string_equal(ctfl_value_str(ctfl_value_path(ctfl_value_at(ctfl_value_path(root, "fields.list"), 0), "sys.type")), "Link");
    assert_string_equal(ctfl_value_str(ctfl_value_path(ctfl_value_at(ctfl_value_path(root, "fields.list"), 1), "sys.type")), "Link");
    assert_ptr_equal(ctfl_value_at(ctfl_value_path(root, "fields.list"), 3), root);
    assert_null(ctfl_entries_raw(e, "other"));
}

static void test_assemble_bounded(void **state)
{
    fixture *f = *state;
    apr_pool_t *p = f->p;
    raw_cache c = { apr_hash_make(p), 0 };
    const char *links = "", *roots[] = { "hub" };
    ctfl_entries *e = ctfl_entries_make(p);
    ctfl_cda_walk w;

    for (int i = 0; i < 1500; i++) {
        const char *id = apr_psprintf(p, "leaf%d", i);
        links = apr_pstrcat(p, links, i ? "," : "", link_json(p, "Entry", id), NULL);
        cache_put(&c, CTFL_CDA_ENTRY, id, entry_json(p, id, "{}"), 1);
    }
    cache_put(&c, CTFL_CDA_ENTRY, "hub", entry_json(p, "hub", apr_psprintf(p, "{\"all\":[%s]}", links)), 1);
    ctfl_cda_assemble(p, roots, 1, cache_get, &c, e, &w);
    assert_int_equal(w.truncated, 1);
    assert_int_equal(w.nodes->nelts, CTFL_CDA_MAX_GRAPH);
    assert_int_equal(c.lookups, CTFL_CDA_MAX_GRAPH);
    assert_int_equal((int)ctfl_entries_count(e), CTFL_CDA_MAX_GRAPH);
}

static int group_setup(void **state)
{
    (void)state;
    return ctfl_http_global_init();
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, http_fixture_setup, http_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_id_and_token_validation),
        T(test_url),
        T(test_request_shape_and_fixture_split),
        T(test_items_includes_assets_missing_unresolved),
        T(test_decode_include_depth_bound),
        T(test_decode_schema_errors),
        T(test_batches_of_100),
        T(test_failed_batch_keeps_earlier_ones),
        T(test_nothing_to_fetch),
        T(test_http_errors),
        T(test_bad_json_and_transport_reasons),
        T(test_timeout_and_connect),
        T(test_bad_requests),
        T(test_token_never_in_reasons),
        T(test_assemble_equals_direct_every_fixture),
        T(test_assemble_cycles_and_assets),
        T(test_assemble_depth_bound),
        T(test_assemble_absent_corrupt_and_vias),
        T(test_assemble_bounded),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
