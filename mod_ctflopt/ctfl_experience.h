/* ctfl_experience — one visitor evaluation against the Experience API (spec §1):
 * create or update the profile, one retry on 503 within the budget, strict decode. */
#ifndef CTFL_EXPERIENCE_H
#define CTFL_EXPERIENCE_H

#include "ctfl_http.h"
#include "ctfl_json.h"

typedef enum {
    CTFL_EVAL_OK = 0,
    CTFL_EVAL_TIMEOUT,
    CTFL_EVAL_ERROR      /* refused, reset, non-2xx, bad JSON, schema, oversize */
} ctfl_eval_status;

typedef struct {
    const char *base_url;         /* ends with '/' */
    const char *client_id;
    const char *environment;
    const char *locale;           /* ?locale= ; NULL: none */
    const char *profile_id;       /* validated; NULL: create */
    const char *force_ip;         /* X-Force-IP; NULL: none */
    const char *body;             /* from ctfl_event_build_body */
    long timeout_ms;              /* whole budget, all attempts */
    apr_size_t max_response;
    int allow_insecure;
} ctfl_eval_request;

typedef struct {
    ctfl_eval_status status;
    ctfl_experience_data *data;   /* on OK */
    const char *reason;           /* short stable reason on failure ("http 500", "schema: ...") */
    const char *traceparent;      /* of the failing response, if any */
    long http_status;
    int attempts;
    int new_connections;          /* over all attempts */
    apr_interval_time_t elapsed;
} ctfl_eval_result;

/* "<base>v2/organizations/<client>/environments/<env>/profiles[/<id>][?locale=<l>]" */
char *ctfl_experience_url(apr_pool_t *p, const ctfl_eval_request *req);

void ctfl_experience_evaluate(ctfl_http_pool *hp, apr_pool_t *p,
                              const ctfl_eval_request *req, ctfl_eval_result *res);

#endif
