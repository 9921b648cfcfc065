/* Unit tests for ctfl_bootstrap: markup structure, script safety, and (with node) behaviour. */
#include "unit.h"
#include "ctfl_bootstrap.h"

#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODE "/usr/bin/node"

/* A trait value meant to break out of the script, plus characters that must be escaped. */
#define HOSTILE "</script><script>alert(1)</script><!-- \xe2\x80\xa8\xe2\x80\xa9 & > \xc3\xa9 \xf0\x9f\x98\x80 \" \\ '"
#define PROFILE "{\"id\":\"prof-1\",\"traits\":{\"x\":\"</script><script>alert(1)</script><!-- \xe2\x80\xa8\xe2\x80\xa9 & > \xc3\xa9 \xf0\x9f\x98\x80 \\\" \\\\ '\"}}"
#define SELECTIONS "[{\"experienceId\":\"e1\",\"variantIndex\":1,\"variants\":{\"a\":\"b\"}}]"
#define CHANGES "[{\"key\":\"k\",\"type\":\"Variable\",\"value\":\"</script>\",\"meta\":{\"experienceId\":\"e1\",\"variantIndex\":1}}]"

static ctfl_bootstrap base(void)
{
    ctfl_bootstrap b;
    memset(&b, 0, sizeof b);
    b.sdk_url = "/ctflopt/contentful-optimization-web.umd.js";
    b.client_id = "client-1";
    b.environment = "main";
    b.locale = "en-US";
    b.experience_base = "https://experience.ninetailed.co/";
    b.insights_base = "https://ingest.insights.ninetailed.co/";
    b.consent = -1;
    b.track_views = 1;
    b.track_clicks = 1;
    b.consent_cookie = "app-personalization-consent";
    b.consent_granted = "granted";
    b.consent_denied = "denied";
    b.cookie_max_age = 31536000;
    return b;
}

static char *render(apr_pool_t *p, const ctfl_bootstrap *b)
{
    apr_size_t len = 0;
    char *out = ctfl_bootstrap_render(p, b, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    return out;
}

/* The inline script's text: between the last "<script...>" and the final "</script>". */
static char *inline_js(apr_pool_t *p, const char *html)
{
    const char *open = NULL, *s = html, *body, *end;
    while ((s = strstr(s, "<script")) != NULL) open = s++;
    assert_non_null(open);
    body = strchr(open, '>') + 1;
    end = strstr(body, "</script>");
    assert_non_null(end);
    assert_string_equal(end, "</script>");
    return apr_pstrndup(p, body, (apr_size_t)(end - body));
}

static void assert_prefix(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0) fail_msg("%s\ndoes not start with\n%s", s, prefix);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    while ((hay = strstr(hay, needle)) != NULL) { n++; hay++; }
    return n;
}

/* Pure ASCII, and the script body has nothing an HTML or XML parser could act on. */
static void assert_safe(apr_pool_t *p, const char *html)
{
    const unsigned char *c;
    const char *js = inline_js(p, html);
    for (c = (const unsigned char *)html; *c; c++)
        if (*c >= 0x80) fail_msg("non-ASCII byte 0x%02x in output", *c);
    for (c = (const unsigned char *)js; *c; c++)
        if (*c == '<' || *c == '>' || *c == '&') fail_msg("'%c' inside the inline script", *c);
    assert_null(strstr(html, "<!--"));
    assert_int_equal(count(html, "</script"), count(html, "<script"));
}

static void test_exact_minimal(void **state)
{
    apr_pool_t *p = *state;
    ctfl_bootstrap b = base();
    b.consent_sync = 0;
    assert_string_equal(render(p, &b),
        "<script src=\"/ctflopt/contentful-optimization-web.umd.js\"></script>"
        "<script>(function(w){\n"
        "w.__OPTIMIZATION_CONFIG__={\"clientId\":\"client-1\",\"environment\":\"main\",\"locale\":\"en-US\","
        "\"api\":{\"experienceBaseUrl\":\"https://experience.ninetailed.co/\","
        "\"insightsBaseUrl\":\"https://ingest.insights.ninetailed.co/\"}};\n"
        "w.__OPTIMIZATION_CONSENT__=undefined;\n"
        "if(w.contentfulOptimization||typeof w.ContentfulOptimization!=='function')return;\n"
        "var o={\"clientId\":\"client-1\",\"environment\":\"main\",\"locale\":\"en-US\","
        "\"api\":{\"experienceBaseUrl\":\"https://experience.ninetailed.co/\","
        "\"insightsBaseUrl\":\"https://ingest.insights.ninetailed.co/\"},\"defaults\":{},"
        "\"autoTrackEntryInteraction\":{\"views\":true,\"clicks\":true,\"hovers\":false}};\n"
        "var sdk;\n"
        "try{sdk=new w.ContentfulOptimization(o);}catch(e){return;}\n"
        "})(window);</script>");
}

static void test_with_data(void **state)
{
    apr_pool_t *p = *state;
    ctfl_bootstrap b = base();
    b.consent = 1;
    b.profile_json = PROFILE;
    b.selections_json = SELECTIONS;
    b.changes_json = CHANGES;
    b.app_name = "Shop";
    b.app_version = "2.1";
    char *html = render(p, &b);
    assert_safe(p, html);
    assert_non_null(strstr(html, "w.__OPTIMIZATION_CONSENT__=true;\n"));
    assert_non_null(strstr(html, "\nvar d={\"profile\":{\"id\":\"prof-1\",\"traits\":{\"x\":"
                                 "\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"));
    assert_non_null(strstr(html, "\"selectedOptimizations\":[{\"experienceId\":\"e1\""));
    assert_non_null(strstr(html, "\"changes\":[{\"key\":\"k\",\"type\":\"Variable\",\"value\":"
                                 "\"\\u003c/script\\u003e\""));
    assert_non_null(strstr(html, "\nw.__OPTIMIZATION_DATA__=d;\n"));
    assert_non_null(strstr(html, "\"defaults\":{\"consent\":true}"));
    assert_non_null(strstr(html, "\no.defaults.profile=d.profile;\n"));
    assert_non_null(strstr(html, ",\"app\":{\"name\":\"Shop\",\"version\":\"2.1\"}"));
    assert_int_equal(count(html, "\"app\":"), 2);        /* config and constructor */
    /* personalization stays server-owned: the constructor never gets selections/changes */
    assert_null(strstr(html, "o.defaults.selectedOptimizations"));
    assert_null(strstr(html, "o.defaults.changes"));
    assert_int_equal(count(html, "selectedOptimizations"), 1);
    /* U+2028/2029 escaped, non-ASCII escaped */
    assert_non_null(strstr(html, "\\u2028\\u2029"));
    assert_non_null(strstr(html, "\\u00e9 \\ud83d\\ude00"));
}

static void test_missing_selections_default_to_empty(void **state)
{
    apr_pool_t *p = *state;
    ctfl_bootstrap b = base();
    b.consent = 1;
    b.profile_json = "{\"id\":\"x\"}";
    char *html = render(p, &b);
    assert_non_null(strstr(html, "var d={\"profile\":{\"id\":\"x\"},\"selectedOptimizations\":[],\"changes\":[]};"));
}

static void test_consent_variants(void **state)
{
    apr_pool_t *p = *state;
    ctfl_bootstrap b = base();
    char *html;

    b.consent = 0;
    html = render(p, &b);
    assert_non_null(strstr(html, "w.__OPTIMIZATION_CONSENT__=false;\n"));
    assert_non_null(strstr(html, "\"defaults\":{\"consent\":false}"));
    assert_null(strstr(html, "__OPTIMIZATION_DATA__"));
    assert_null(strstr(html, "profile"));

    b.consent = -1;
    html = render(p, &b);
    assert_non_null(strstr(html, "w.__OPTIMIZATION_CONSENT__=undefined;\n"));
    assert_non_null(strstr(html, "\"defaults\":{}"));
    assert_null(strstr(html, "\"consent\":"));

    b.consent = 1;                                         /* granted, evaluation failed */
    b.consent_sync = 1;
    html = render(p, &b);
    assert_non_null(strstr(html, "w.__OPTIMIZATION_CONSENT__=true;\n"));
    assert_non_null(strstr(html, "\"defaults\":{\"consent\":true}"));
    assert_null(strstr(html, "__OPTIMIZATION_DATA__"));
    assert_null(strstr(html, "profile"));
    assert_non_null(strstr(html, "var last=true,serverSent=false,pageSent=false;"));
}

static void test_consent_sync_block(void **state)
{
    apr_pool_t *p = *state;
    ctfl_bootstrap b = base();
    b.consent_sync = 1;
    b.cookie_max_age = 600;
    b.consent_cookie = "my-consent";
    b.consent_granted = "yes";
    b.consent_denied = "no";
    char *html = render(p, &b);
    assert_safe(p, html);
    assert_non_null(strstr(html, "var last=undefined,serverSent=false,pageSent=false;"));
    assert_non_null(strstr(html, "(v?\"my-consent=yes; Path=/; Max-Age=600; SameSite=Lax\":"
                                 "\"my-consent=no; Path=/; Max-Age=600; SameSite=Lax\")+secure"));
    assert_non_null(strstr(html, "sdk.page()"));
    assert_non_null(strstr(html, "st.subscribe(onConsent)"));
    assert_non_null(strstr(html, "orig.apply(sdk,arguments);onConsent(v)"));

    b.consent_sync = 0;
    html = render(p, &b);
    assert_null(strstr(html, "onConsent"));
    assert_null(strstr(html, "document.cookie"));
    assert_null(strstr(html, "page()"));

    b.consent_sync = 1;                                    /* no cookie name: nothing to write */
    b.consent_cookie = NULL;
    html = render(p, &b);
    assert_null(strstr(html, "onConsent"));
}

static void test_nonce_src_and_flags(void **state)
{
    apr_pool_t *p = *state;
    ctfl_bootstrap b = base();
    char *html;

    b.nonce = "r4nd0m+/==";
    html = render(p, &b);
    assert_int_equal(count(html, " nonce=\"r4nd0m+/==\""), 2);
    assert_prefix(html, "<script src=\"/ctflopt/contentful-optimization-web.umd.js\" "
                        "nonce=\"r4nd0m+/==\"></script><script nonce=\"r4nd0m+/==\">(function(w){");

    b.nonce = "a\"b<c>&'";                                 /* escaped into the attribute */
    html = render(p, &b);
    assert_int_equal(count(html, " nonce=\"a&quot;b&lt;c&gt;&amp;&#39;\""), 2);

    b.nonce = "bad nonce\xc3\xa9";                         /* could never match a CSP: left out */
    html = render(p, &b);
    assert_null(strstr(html, "nonce"));
    b.nonce = "";
    assert_null(strstr(render(p, &b), "nonce"));

    b.nonce = NULL;
    b.sdk_url = "https://cdn.example/sdk.js?a=1&b=\"2\"&c=\xc3\xa9 x";
    html = render(p, &b);
    assert_safe(p, html);
    assert_prefix(html, "<script src=\"https://cdn.example/sdk.js?a=1&amp;b=&quot;2&quot;"
                        "&amp;c=%C3%A9%20x\"></script><script>");

    b.sdk_url = NULL;                                      /* no src element at all */
    html = render(p, &b);
    assert_int_equal(count(html, "<script"), 1);
    assert_prefix(html, "<script>(function(w){\n");

    b.track_views = 0;
    b.track_clicks = 0;
    b.track_hovers = 1;
    html = render(p, &b);
    assert_non_null(strstr(html, "\"autoTrackEntryInteraction\":{\"views\":false,\"clicks\":false,\"hovers\":true}"));
    b.cookie_domain = "example.com";
    html = render(p, &b);
    assert_non_null(strstr(html, ",\"cookie\":{\"domain\":\"example.com\"},\"defaults\":"));
    assert_int_equal(count(html, "\"cookie\""), 1);        /* constructor only */
}

static void test_hostile_config_strings(void **state)
{
    apr_pool_t *p = *state;
    ctfl_bootstrap b = base();
    b.client_id = HOSTILE;
    b.environment = HOSTILE;
    b.locale = HOSTILE;
    b.app_name = HOSTILE;
    b.app_version = HOSTILE;
    b.cookie_domain = HOSTILE;
    b.consent_cookie = HOSTILE;
    b.consent_granted = HOSTILE;
    b.consent_sync = 1;
    b.consent = 1;
    b.profile_json = PROFILE;
    b.experience_base = "\xff\xfe</script>";
    assert_safe(p, render(p, &b));
}

/* ---- behaviour in node, with a fake window, document and SDK constructor ---- */

static const char harness_head[] =
    "var assert = require('assert');\n"
    "var opts = {}, log = { ctor: [], raw: [], page: 0, cookies: [], consent: [] }, subs = [];\n"
    "function Fake(cfg) {\n"
    "  if (opts.throwCtor) throw new Error('ctor');\n"
    "  log.ctor.push(JSON.parse(JSON.stringify(cfg)));\n"
    "  log.raw.push(cfg);\n"
    "  window.contentfulOptimization = this;\n"
    "  var self = this;\n"
    "  this.state = cfg.defaults.consent;\n"
    "  if (!opts.noStates) this.states = { consent: { subscribe: function (f) {\n"
    "    subs.push(f); f(self.state); return { unsubscribe: function () {} }; } } };\n"
    "}\n"
    "Fake.prototype.consent = function (v) {\n"
    "  log.consent.push(v);\n"
    "  this.state = (v && typeof v === 'object') ? v.events : v;\n"
    "  for (var i = 0; i < subs.length; i++) subs[i](this.state);\n"
    "};\n"
    "Fake.prototype.page = function () { log.page++; if (opts.throwPage) throw new Error('page'); };\n"
    "var window = { ContentfulOptimization: Fake, location: { protocol: 'https:' },\n"
    "  document: { set cookie(v) { log.cookies.push(v); }, get cookie() { return ''; } } };\n"
    "var G = 'app-personalization-consent=granted; Path=/; Max-Age=31536000; SameSite=Lax';\n"
    "var D = 'app-personalization-consent=denied; Path=/; Max-Age=31536000; SameSite=Lax';\n";

static int node_missing(void)
{
    return access(NODE, X_OK) != 0;
}

/* Runs setup JS, the bootstrap's inline script, then checks; passes when node exits 0. */
static void run_node(apr_pool_t *p, const ctfl_bootstrap *b, const char *setup, const char *checks)
{
    char path[] = "/tmp/ctfl_bootstrap_test_XXXXXX";
    int fd = mkstemp(path), status;
    FILE *f;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "%s%s\n%s\n%s\n", harness_head, setup, inline_js(p, render(p, b)), checks);
    fclose(f);
    status = system(apr_psprintf(p, "%s %s", NODE, path));
    unlink(path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_node_consent_unknown_then_granted(void **state)
{
    apr_pool_t *p = *state;
    if (node_missing()) skip();
    ctfl_bootstrap b = base();
    b.consent_sync = 1;
    run_node(p, &b, "",
        "assert.strictEqual(log.ctor.length, 1);\n"
        "var c = log.ctor[0];\n"
        "assert.deepStrictEqual(c, { clientId: 'client-1', environment: 'main', locale: 'en-US',\n"
        "  api: { experienceBaseUrl: 'https://experience.ninetailed.co/',\n"
        "         insightsBaseUrl: 'https://ingest.insights.ninetailed.co/' },\n"
        "  defaults: {}, autoTrackEntryInteraction: { views: true, clicks: true, hovers: false } });\n"
        "assert.ok('__OPTIMIZATION_CONSENT__' in window);\n"
        "assert.strictEqual(window.__OPTIMIZATION_CONSENT__, undefined);\n"
        "assert.ok(!('__OPTIMIZATION_DATA__' in window));\n"
        "assert.deepStrictEqual(window.__OPTIMIZATION_CONFIG__, { clientId: 'client-1',\n"
        "  environment: 'main', locale: 'en-US', api: c.api });\n"
        "assert.deepStrictEqual(log.cookies, []);\n"
        "var sdk = window.contentfulOptimization;\n"
        "assert.strictEqual(sdk.consent(true), undefined);\n"
        "assert.deepStrictEqual(log.consent, [true]);          // the original ran\n"
        "assert.deepStrictEqual(log.cookies, [G + '; Secure']);\n"
        "assert.strictEqual(log.page, 1);\n"
        "sdk.consent(true);                                   // a repeat: nothing new\n"
        "assert.deepStrictEqual(log.cookies, [G + '; Secure']);\n"
        "sdk.consent(false);\n"
        "assert.deepStrictEqual(log.cookies, [G + '; Secure', D + '; Secure']);\n"
        "sdk.consent({ events: true, persistence: true });     // object form\n"
        "assert.deepStrictEqual(log.cookies, [G + '; Secure', D + '; Secure', G + '; Secure']);\n"
        "assert.strictEqual(log.page, 1);                     // page() at most once\n"
        "sdk.consent('yes'); sdk.consent(null); sdk.consent(undefined);\n"
        "assert.strictEqual(log.cookies.length, 3);\n");
}

static void test_node_server_data_never_pages(void **state)
{
    apr_pool_t *p = *state;
    if (node_missing()) skip();
    ctfl_bootstrap b = base();
    b.consent_sync = 1;
    b.consent = 1;
    b.profile_json = PROFILE;
    b.selections_json = SELECTIONS;
    b.changes_json = CHANGES;
    b.app_name = "Shop";
    b.cookie_domain = "example.com";
    b.track_hovers = 1;
    run_node(p, &b, "window.location.protocol = 'http:';",
        "var hostile = '</script><script>alert(1)</script><!-- \\u2028\\u2029 & > \\u00e9 \\ud83d\\ude00 \" \\\\ \\'';\n"
        "assert.strictEqual(log.ctor.length, 1);\n"
        "var c = log.ctor[0];\n"
        "assert.deepStrictEqual(c.defaults, { consent: true, profile: { id: 'prof-1', traits: { x: hostile } } });\n"
        "assert.deepStrictEqual(c.app, { name: 'Shop', version: '0.0.0' });\n"
        "assert.deepStrictEqual(c.cookie, { domain: 'example.com' });\n"
        "assert.deepStrictEqual(c.autoTrackEntryInteraction, { views: true, clicks: true, hovers: true });\n"
        "assert.strictEqual(window.__OPTIMIZATION_CONSENT__, true);\n"
        "var d = window.__OPTIMIZATION_DATA__;\n"
        "assert.deepStrictEqual(Object.keys(d), ['profile', 'selectedOptimizations', 'changes']);\n"
        "assert.strictEqual(d.profile.traits.x, hostile);\n"
        "assert.deepStrictEqual(d.selectedOptimizations, " SELECTIONS ");\n"
        "assert.deepStrictEqual(d.changes, " CHANGES ");\n"
        "assert.strictEqual(log.raw[0].defaults.profile, d.profile);   // the same object\n"
        "var sdk = window.contentfulOptimization;\n"
        "sdk.consent(true);                                   // same as the server's\n"
        "assert.deepStrictEqual(log.cookies, []);\n"
        "sdk.consent(false);\n"
        "sdk.consent(true);\n"
        "assert.deepStrictEqual(log.cookies, [D, G]);         // no Secure on http:\n"
        "assert.strictEqual(log.page, 0);\n");
}

static void test_node_denied_then_granted(void **state)
{
    apr_pool_t *p = *state;
    if (node_missing()) skip();
    ctfl_bootstrap b = base();
    b.consent_sync = 1;
    b.consent = 0;
    run_node(p, &b, "opts.throwPage = true;",
        "assert.deepStrictEqual(log.ctor[0].defaults, { consent: false });\n"
        "assert.deepStrictEqual(log.cookies, []);             // initial false is not a change\n"
        "window.contentfulOptimization.consent(true);         // page() throws: contained\n"
        "assert.deepStrictEqual(log.cookies, [G + '; Secure']);\n"
        "assert.strictEqual(log.page, 1);\n");
}

static void test_node_guards(void **state)
{
    apr_pool_t *p = *state;
    if (node_missing()) skip();
    ctfl_bootstrap b = base();
    b.consent_sync = 1;
    /* already constructed by the page */
    run_node(p, &b, "var existing = {}; window.contentfulOptimization = existing;",
        "assert.strictEqual(log.ctor.length, 0);\n"
        "assert.strictEqual(window.contentfulOptimization, existing);\n"
        "assert.strictEqual(window.__OPTIMIZATION_CONFIG__.clientId, 'client-1');\n");
    /* no constructor loaded */
    run_node(p, &b, "window.ContentfulOptimization = undefined;",
        "assert.strictEqual(window.contentfulOptimization, undefined);\n"
        "assert.strictEqual(window.__OPTIMIZATION_CONFIG__.environment, 'main');\n");
    /* the constructor throws: nothing escapes */
    run_node(p, &b, "opts.throwCtor = true;",
        "assert.strictEqual(window.contentfulOptimization, undefined);\n");
    /* no states observable: the consent() wrapper alone keeps the cookie in sync */
    run_node(p, &b, "opts.noStates = true;",
        "window.contentfulOptimization.consent(false);\n"
        "assert.deepStrictEqual(log.cookies, [D + '; Secure']);\n"
        "assert.strictEqual(log.page, 0);\n");
    /* sync off: consent() is the SDK's own and no cookie is written */
    b.consent_sync = 0;
    run_node(p, &b, "",
        "assert.strictEqual(window.contentfulOptimization.consent, Fake.prototype.consent);\n"
        "window.contentfulOptimization.consent(true);\n"
        "assert.deepStrictEqual(log.cookies, []);\n"
        "assert.strictEqual(log.page, 0);\n");
}

/* A check that must fail, so a broken harness cannot pass silently. */
static void test_node_harness_detects_failure(void **state)
{
    apr_pool_t *p = *state;
    if (node_missing()) skip();
    ctfl_bootstrap b = base();
    char path[] = "/tmp/ctfl_bootstrap_test_XXXXXX";
    int fd = mkstemp(path), status;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%s\n%s\nassert.strictEqual(log.ctor.length, 2);\n", harness_head,
            inline_js(p, render(p, &b)));
    fclose(f);
    status = system(apr_psprintf(p, "%s %s 2>/dev/null", NODE, path));
    unlink(path);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, unit_pool_setup, unit_pool_teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_exact_minimal), T(test_with_data), T(test_missing_selections_default_to_empty),
        T(test_consent_variants), T(test_consent_sync_block), T(test_nonce_src_and_flags),
        T(test_hostile_config_strings), T(test_node_consent_unknown_then_granted),
        T(test_node_server_data_never_pages), T(test_node_denied_then_granted),
        T(test_node_guards), T(test_node_harness_detects_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
