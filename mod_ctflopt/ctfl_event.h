/* ctfl_event — builds Experience API request bodies (spec §2) for one request. */
#ifndef CTFL_EVENT_H
#define CTFL_EVENT_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct {
    const char *url;          /* absolute public URL scheme://host[:port]/path?query */
    const char *path;         /* raw (percent-encoded) path as requested */
    const char *query;        /* raw query string without '?', NULL or "" when none */
    const char *referrer;     /* Referer header, NULL -> "" */
    const char *user_agent;   /* NULL -> key omitted */
    const char *locale;       /* context.locale; NULL -> "en-US" */
    const char *library_name; /* "mod_ctflopt" */
    const char *library_version;
    int consent_given;        /* context.gdpr.isConsentGiven */
    const char *user_id;      /* non-NULL: an identify event precedes the page event */
} ctfl_event_ctx;

/* Full body {"events":[(identify,)page],"options":{"features":["ip-enrichment","location"]}}
 * with fresh UUIDv4 messageIds and one shared millisecond UTC timestamp. */
char *ctfl_event_build_body(apr_pool_t *p, const ctfl_event_ctx *ctx, apr_time_t now);

/* Helpers exposed for tests and reuse. */
char *ctfl_uuid_v4(apr_pool_t *p);                         /* lowercase 8-4-4-4-12 */
char *ctfl_iso_timestamp(apr_pool_t *p, apr_time_t t);     /* YYYY-MM-DDTHH:MM:SS.mmmZ */
/* Decode a raw query into a JSON object text, last value wins, '+' is a space. */
char *ctfl_query_to_json(apr_pool_t *p, const char *raw_query);

#endif
