/* mod_ctflopt — Contentful Personalization & Analytics for any site Apache serves.
 *
 * Module declaration and process lifecycle. The request hook lives in
 * ctflopt_request.c, the output filter in filters/ctflopt_filter.c, the
 * directives in ctflopt_config.c. */
#define CTFLOPT_MAIN_FILE
#include <httpd.h>
#include <http_core.h>
#include <http_config.h>
#include <http_log.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <libxml/parser.h>
#include <libxml/xmlversion.h>

#include "ctflopt_private.h"
#include "ctflopt_cache.h"
#include "ctfl_region.h"

/* Set once in child_init, before the MPM starts request threads; read-only after. */
static ctfl_http_pool *http_pool;

ctfl_http_pool *ctflopt_http_pool(void)
{
    return http_pool;
}

static int ctflopt_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    /* httpd runs post_config twice at startup; the first pass is a dry run. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;

    /* Global library state, once, in the parent before any thread exists.
     * Never xmlCleanupParser(): other modules in the process use libxml2. */
    ctfl_region_global_init();
    if (ctfl_http_global_init() != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, CTFLOPTNO(0004) "libcurl initialization failed");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CTFLOPTNO(0001)
                 "%s/%s initialized (%s, libxml2 %s, %s, %s)", CTFLOPT_NAME, CTFLOPT_VERSION,
                 ap_get_server_description(), LIBXML_DOTTED_VERSION, ctfl_http_version(),
                 ctfl_json_version());
    return OK;
}

static void ctflopt_child_init(apr_pool_t *pchild, server_rec *s)
{
    int threads = 1;
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    /* One idle handle (one keep-alive connection) per worker thread at most. */
    http_pool = ctfl_http_pool_create(pchild, threads > 0 ? threads : 1);
    ctflopt_breakers_child_init(pchild, s);
}

static void ctflopt_register_hooks(apr_pool_t *p)
{
    static const char *const after_cache[] = { "mod_cache.c", NULL };
    static const char *const before_proxy[] = { "mod_proxy.c", NULL };
    ap_hook_check_config(ctflopt_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(ctflopt_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ctflopt_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* After mod_rewrite's per-directory fixup, before mod_dir's index redirect. */
    ap_hook_fixups(ctflopt_fixups, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_filter(ctflopt_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ctflopt_proxy_identity, after_cache, before_proxy, APR_HOOK_FIRST);
    ctflopt_filter_register();
    ctflopt_status_register_hooks();
    ctflopt_cache_register_hooks();
}

AP_DECLARE_MODULE(ctflopt) = {
    STANDARD20_MODULE_STUFF,
    ctflopt_create_dir_conf,
    ctflopt_merge_dir_conf,
    ctflopt_create_srv_conf,
    ctflopt_merge_srv_conf,
    ctflopt_cmds,
    ctflopt_register_hooks,
    AP_MODULE_FLAG_ALWAYS_MERGE
};
