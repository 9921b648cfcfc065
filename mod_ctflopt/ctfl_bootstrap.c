/* ctfl_bootstrap — the two <script> elements injected into the page (spec §7.7).
 *
 * Output is pure ASCII. The inline script contains no '<', '>' or '&' at all (JSON and strings
 * go through ctfl_escape, the fixed code avoids those characters), so it can neither be closed
 * early nor break an XHTML page parsed as XML. The code is ES5. */
#include "ctfl_bootstrap.h"
#include "ctfl_escape.h"

#include <apr_strings.h>
#include <string.h>

/* A JS string literal; NULL becomes "". */
static const char *js(apr_pool_t *p, const char *s)
{
    return ctfl_js_string(p, s ? s : "");
}

/* A URL for an attribute: bytes that are not printable ASCII percent-encoded (what a browser
 * does to them anyway), then HTML-escaped. */
static const char *url_attr(apr_pool_t *p, const char *u)
{
    apr_size_t n = 0;
    const unsigned char *c;
    char *out, *o;

    for (c = (const unsigned char *)u; *c; c++) n += (*c <= 0x20 || *c >= 0x7F) ? 3 : 1;
    o = out = apr_palloc(p, n + 1);
    for (c = (const unsigned char *)u; *c; c++) {
        if (*c <= 0x20 || *c >= 0x7F) o += apr_snprintf(o, 4, "%%%02X", *c);
        else *o++ = (char)*c;
    }
    *o = '\0';
    return ctfl_html_escape(p, out);
}

/* A CSP nonce is base64 (ASCII); one with other bytes could never match a policy. */
static int nonce_ok(const char *n)
{
    if (!n || !*n) return 0;
    for (; *n; n++)
        if ((unsigned char)*n <= 0x20 || (unsigned char)*n >= 0x7F) return 0;
    return 1;
}

static const char *tf(int b) { return b ? "true" : "false"; }

/* clientId, environment, locale, api, app: shared by __OPTIMIZATION_CONFIG__ and the
 * constructor options (without the braces). */
static const char *config_members(apr_pool_t *p, const ctfl_bootstrap *b)
{
    const char *m = apr_pstrcat(p, "\"clientId\":", js(p, b->client_id),
                                ",\"environment\":", js(p, b->environment ? b->environment : "main"),
                                NULL);
    if (b->locale) m = apr_pstrcat(p, m, ",\"locale\":", js(p, b->locale), NULL);
    m = apr_pstrcat(p, m, ",\"api\":{",
                    b->experience_base ? "\"experienceBaseUrl\":" : "",
                    b->experience_base ? js(p, b->experience_base) : "",
                    (b->experience_base && b->insights_base) ? "," : "",
                    b->insights_base ? "\"insightsBaseUrl\":" : "",
                    b->insights_base ? js(p, b->insights_base) : "", "}", NULL);
    if (b->app_name)
        m = apr_pstrcat(p, m, ",\"app\":{\"name\":", js(p, b->app_name), ",\"version\":",
                        js(p, b->app_version ? b->app_version : "0.0.0"), "}", NULL);
    return m;
}

/* The consent round trip (issue 2, CtflOptConsentSync): follow the SDK's consent state,
 * mirror it into the app's consent cookie, and on a grant the server could not act on fetch a
 * profile in the browser with one page() call. */
static const char *consent_sync_js(apr_pool_t *p, const ctfl_bootstrap *b, const char *consent,
                                   int server_data)
{
    const char *attrs = apr_psprintf(p, "; Path=/; Max-Age=%ld; SameSite=Lax",
                                     b->cookie_max_age > 0 ? b->cookie_max_age : 0L);
    const char *name = b->consent_cookie;
    const char *granted = apr_pstrcat(p, name, "=",
                                      b->consent_granted ? b->consent_granted : "granted", attrs,
                                      NULL);
    const char *denied = apr_pstrcat(p, name, "=",
                                     b->consent_denied ? b->consent_denied : "denied", attrs,
                                     NULL);
    return apr_pstrcat(p,
        "var last=", consent, ",serverSent=", tf(server_data), ",pageSent=false;\n"
        "function onConsent(v){\n"
        "if(typeof v==='object')v=v?v.events:undefined;\n"
        "if(typeof v!=='boolean'||v===last)return;\n"
        "last=v;\n"
        "var secure='';\n"
        "try{if(w.location.protocol==='https:')secure='; Secure';}catch(e){}\n"
        "try{w.document.cookie=(v?", js(p, granted), ":", js(p, denied), ")+secure;}catch(e){}\n"
        "if(!v||serverSent||pageSent)return;\n"
        "pageSent=true;\n"
        "try{sdk.page();}catch(e){}\n"
        "}\n"
        "var orig=sdk.consent;\n"
        "if(typeof orig==='function'){\n"
        "try{sdk.consent=function(v){var r=orig.apply(sdk,arguments);onConsent(v);return r;};}"
        "catch(e){}\n"
        "}\n"
        "try{\n"
        "var st=sdk.states?sdk.states.consent:null;\n"
        "if(st?typeof st.subscribe==='function':false)st.subscribe(onConsent);\n"
        "}catch(e){}\n", NULL);
}

char *ctfl_bootstrap_render(apr_pool_t *p, const ctfl_bootstrap *b, apr_size_t *len)
{
    const char *nonce_attr = "", *src = "", *consent, *members, *data = NULL, *defaults, *opts;
    char *out;

    if (nonce_ok(b->nonce))
        nonce_attr = apr_pstrcat(p, " nonce=\"", ctfl_html_escape(p, b->nonce), "\"", NULL);
    if (b->sdk_url)
        src = apr_pstrcat(p, "<script src=\"", url_attr(p, b->sdk_url), "\"", nonce_attr,
                          "></script>", NULL);

    consent = b->consent == 1 ? "true" : b->consent == 0 ? "false" : "undefined";
    members = config_members(p, b);
    if (b->profile_json && *b->profile_json)
        data = apr_pstrcat(p, "{\"profile\":", ctfl_json_for_script(p, b->profile_json),
                           ",\"selectedOptimizations\":",
                           (b->selections_json && *b->selections_json)
                               ? ctfl_json_for_script(p, b->selections_json) : "[]",
                           ",\"changes\":",
                           (b->changes_json && *b->changes_json)
                               ? ctfl_json_for_script(p, b->changes_json) : "[]",
                           "}", NULL);

    /* defaults: consent only when known; no selectedOptimizations/changes, personalization
     * stays server-owned; the profile is added from d below. */
    defaults = (b->consent == 0 || b->consent == 1)
                   ? apr_pstrcat(p, "{\"consent\":", consent, "}", NULL) : "{}";
    opts = apr_pstrcat(p, "{", members,
                       b->cookie_domain ? ",\"cookie\":{\"domain\":" : "",
                       b->cookie_domain ? js(p, b->cookie_domain) : "",
                       b->cookie_domain ? "}" : "",
                       ",\"defaults\":", defaults,
                       ",\"autoTrackEntryInteraction\":{\"views\":", tf(b->track_views),
                       ",\"clicks\":", tf(b->track_clicks),
                       ",\"hovers\":", tf(b->track_hovers), "}}", NULL);

    out = apr_pstrcat(p, src, "<script", nonce_attr, ">(function(w){\n",
        "w.__OPTIMIZATION_CONFIG__={", members, "};\n",
        "w.__OPTIMIZATION_CONSENT__=", consent, ";\n",
        data ? "var d=" : "", data ? data : "", data ? ";\n" : "",
        data ? "w.__OPTIMIZATION_DATA__=d;\n" : "",
        "if(w.contentfulOptimization||typeof w.ContentfulOptimization!=='function')return;\n",
        "var o=", opts, ";\n",
        data ? "o.defaults.profile=d.profile;\n" : "",
        "var sdk;\n"
        "try{sdk=new w.ContentfulOptimization(o);}catch(e){return;}\n",
        (b->consent_sync && b->consent_cookie && *b->consent_cookie)
            ? consent_sync_js(p, b, consent, data != NULL) : "",
        "})(window);</script>", NULL);
    if (len) *len = strlen(out);
    return out;
}
