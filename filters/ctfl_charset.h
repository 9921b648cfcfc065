/* ctfl_charset — which charset a page is in (HTTP header, BOM, then <meta> in the
 * first 1024 bytes, as browsers prescan) and whether ASCII bytes mean ASCII in it. */
#ifndef CTFL_CHARSET_H
#define CTFL_CHARSET_H

#include <apr_pools.h>

typedef struct {
    const char *name;        /* canonical lowercase label, e.g. "utf-8", "windows-1252"; NULL: unknown */
    int ascii_compatible;    /* 0 for UTF-16LE/BE (BOM or label) and other non-ASCII-compatible */
    int from;                /* 0 unknown, 1 Content-Type, 2 BOM, 3 meta */
} ctfl_charset;

/* The charset parameter of a Content-Type value, lowercased, or NULL. */
const char *ctfl_charset_from_content_type(apr_pool_t *p, const char *content_type);

/* head/len: the first bytes of the body (up to 1024 are looked at). */
void ctfl_charset_detect(apr_pool_t *p, const char *content_type,
                         const char *head, apr_size_t len, ctfl_charset *out);

#endif
