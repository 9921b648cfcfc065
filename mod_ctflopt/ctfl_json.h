/* ctfl_json — the only place that decodes API payloads with jansson.
 *
 * Validates Experience API responses as strictly as the official SDK's schema
 * (protocol spec §1.6) and turns them into the plain model below. */
#ifndef CTFL_JSON_H
#define CTFL_JSON_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "ctfl_value.h"

typedef struct {
    const char *experience_id;
    long variant_index;            /* as sent; JS Array.at semantics are applied by the resolver */
    int sticky;                    /* -1 absent, 0 false, 1 true */
} ctfl_selection;

typedef struct {
    const char *profile_id;        /* data.profile.id */
    const char *profile_json;      /* data.profile, schema keys only, compact JSON */
    const char *selections_json;   /* data.experiences (= selectedOptimizations), schema keys only */
    const char *changes_json;      /* data.changes, schema keys only */
    const char *flags_json;        /* spec §4.4 flags object {"key":value,...} */
    apr_array_header_t *selections;/* of ctfl_selection, array order kept */
    const char *experiences_list;  /* "experienceId:variantIndex,..." for CTFLOPT_EXPERIENCES */
    /* The same, as value trees for the resolver (no second parse of the texts above). */
    const ctfl_value *profile;
    const ctfl_value *experiences;
    const ctfl_value *flags;
} ctfl_experience_data;

/* Decode and validate one response body. Returns 0 and sets *out on success;
 * otherwise returns -1 and sets *err to a short reason ("bad json: ...",
 * "schema: data.profile.id not a string", ...). All memory comes from p. */
int ctfl_json_decode_experience(apr_pool_t *p, const char *body, apr_size_t len,
                                ctfl_experience_data **out, const char **err);

/* For Experience error envelopes ({"message","data":{},"error":{"code":"ERR_…"}}):
 * error.code (or data.error.code) when it is a plain token of at most 64
 * characters [A-Za-z0-9_.-], else NULL. */
const char *ctfl_json_error_code(apr_pool_t *p, const char *body, apr_size_t len);

const char *ctfl_json_version(void);   /* "jansson 2.14" */

#endif
