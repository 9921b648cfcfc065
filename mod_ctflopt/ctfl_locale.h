/* ctfl_locale — locale normalization (spec §10.1) and Accept-Language matching. */
#ifndef CTFL_LOCALE_H
#define CTFL_LOCALE_H

#include <apr_pools.h>
#include <apr_tables.h>

/* Trim, '_' -> '-', reject "", "*", "und" and anything not matching
 * ^[a-z]{2,8}(-[a-z0-9]{1,8})*$ (case-insensitive); keeps the original case.
 * Returns NULL when invalid. */
const char *ctfl_locale_normalize(apr_pool_t *p, const char *in);

/* Best of the configured locales (normalized const char *, first = default) for an
 * Accept-Language header: highest q first, exact match (case-insensitive), then same
 * primary language; q=0 excluded; NULL/garbage header -> the default. */
const char *ctfl_locale_negotiate(apr_pool_t *p, const char *accept_language,
                                  const apr_array_header_t *supported);

#endif
