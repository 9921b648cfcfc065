/* ctfl_cookie — Cookie header parsing, profile id validation, Set-Cookie values. */
#ifndef CTFL_COOKIE_H
#define CTFL_COOKIE_H

#include <apr_pools.h>

/* Value of the first cookie called name in a Cookie header ("a=1; b=2"), raw (no
 * decoding), or NULL. Tolerates missing spaces and the ", " joins of merged headers. */
const char *ctfl_cookie_get(apr_pool_t *p, const char *header, const char *name);

/* 1 when id is a plain token: [A-Za-z0-9_-], 1..128 bytes. */
int ctfl_profile_id_valid(const char *id);

typedef struct {
    const char *domain;     /* NULL: host-only */
    long max_age;           /* seconds */
    const char *same_site;  /* "Lax" | "Strict" | "None" */
    int secure;             /* add Secure (https request, or SameSite=None) */
} ctfl_cookie_attrs;

/* "name=value; Path=/; Max-Age=N[; Domain=D]; SameSite=S[; Secure]" — never HttpOnly. */
char *ctfl_cookie_set_value(apr_pool_t *p, const char *name, const char *value,
                            const ctfl_cookie_attrs *a);
/* Deletion: "name=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT[; Domain=D]..." */
char *ctfl_cookie_delete_value(apr_pool_t *p, const char *name, const ctfl_cookie_attrs *a);

#endif
