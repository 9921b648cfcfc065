/* ctfl_bootstrap — the two <script> elements injected into the page (spec §7.7). */
#ifndef CTFL_BOOTSTRAP_H
#define CTFL_BOOTSTRAP_H

#include <apr_pools.h>

typedef struct {
    const char *sdk_url;            /* src of the Web SDK UMD bundle; NULL: no src script */
    const char *nonce;              /* CSP nonce for both scripts, NULL: none */
    const char *client_id;
    const char *environment;
    const char *locale;
    const char *experience_base;    /* API base URLs, ending in '/' */
    const char *insights_base;
    const char *app_name;           /* context.app; NULL: omitted */
    const char *app_version;
    int consent;                    /* -1 unknown, 0 denied, 1 granted */
    /* Only when consent is granted and evaluation succeeded, else NULL: */
    const char *profile_json;
    const char *selections_json;
    const char *changes_json;
    int track_views, track_clicks, track_hovers;
    int consent_sync;               /* write the consent cookie on sdk.consent() changes */
    const char *consent_cookie;     /* its name, and the granted/denied values */
    const char *consent_granted;
    const char *consent_denied;
    const char *cookie_domain;      /* for the SDK's own ctfl-opt-aid cookie, NULL: host */
    long cookie_max_age;            /* seconds, for the consent cookie the bootstrap writes */
} ctfl_bootstrap;

/* Pure ASCII markup (safe in any ASCII-compatible page charset). */
char *ctfl_bootstrap_render(apr_pool_t *p, const ctfl_bootstrap *b, apr_size_t *len);

#endif
