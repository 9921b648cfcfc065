/* ctfl_cookie — Cookie header parsing, profile id validation, Set-Cookie values.
 *
 * The parser follows what browsers send (RFC 6265 §4.2 / 6265bis §5.4): pairs separated by ';',
 * optional whitespace, a pair without '=' has no name (never matches), values are returned raw
 * (quotes included, no percent-decoding: the Web SDK writes ids unencoded). Apache joins
 * repeated Cookie headers with ", ", so ", " followed by "token=" also ends a pair; a quoted
 * value is never split, and a plain value is only split where what follows looks like a new
 * pair (a legal cookie value contains neither ',' nor ' ', so this is unambiguous). */
#include "ctfl_cookie.h"

#include <apr_strings.h>
#include <string.h>
#include <strings.h>

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* RFC 7230 tchar: the characters of a cookie name. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* At s, just after a ',': is this the ", name=" join of two merged headers? */
static int starts_merged_pair(const char *s)
{
    const char *t;
    if (!is_ows(*s)) return 0;
    while (is_ows(*s)) s++;
    for (t = s; is_tchar((unsigned char)*t); t++) ;
    if (t == s) return 0;
    while (is_ows(*t)) t++;
    return *t == '=';
}

const char *ctfl_cookie_get(apr_pool_t *p, const char *header, const char *name)
{
    apr_size_t name_len;
    const char *s = header;

    if (!header || !name || !*name) return NULL;
    name_len = strlen(name);

    while (*s) {                        /* one pair per iteration; s only moves forward */
        const char *n0, *n1, *v0, *v1;
        int has_eq;

        while (is_ows(*s) || *s == ';' || *s == ',') s++;
        if (!*s) break;
        n0 = s;
        while (*s && *s != '=' && *s != ';') s++;
        has_eq = (*s == '=');
        n1 = s;
        while (n1 > n0 && is_ows(n1[-1])) n1--;
        if (!has_eq) continue;          /* "foo" alone: nameless, skip */
        s++;
        while (is_ows(*s)) s++;
        v0 = s;
        if (*s == '"') {                /* quoted: up to the closing quote, kept raw */
            const char *q = strchr(s + 1, '"');
            if (q) s = q + 1;
        }
        while (*s && *s != ';' && !(*s == ',' && starts_merged_pair(s + 1))) s++;
        v1 = s;
        while (v1 > v0 && is_ows(v1[-1])) v1--;
        if ((apr_size_t)(n1 - n0) == name_len && memcmp(n0, name, name_len) == 0)
            return apr_pstrmemdup(p, v0, (apr_size_t)(v1 - v0));
    }
    return NULL;
}

int ctfl_profile_id_valid(const char *id)
{
    apr_size_t n = 0;
    if (!id) return 0;
    for (; id[n]; n++) {
        unsigned char c = (unsigned char)id[n];
        if (n >= 128) return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_'))
            return 0;
    }
    return n > 0;
}

/* RFC 6265 cookie-octet: no CTLs, whitespace, DQUOTE, ',', ';' or '\'. */
static int value_ok(const char *v)
{
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c <= 0x20 || c >= 0x7F || c == '"' || c == ',' || c == ';' || c == '\\') return 0;
    }
    return 1;
}

static int name_ok(const char *n)
{
    if (!n || !*n) return 0;
    for (; *n; n++)
        if (!is_tchar((unsigned char)*n)) return 0;
    return 1;
}

/* Domain: letters, digits, '-', '.' (a leading '.' is allowed and ignored by browsers). */
static int domain_ok(const char *d)
{
    if (!*d) return 0;
    for (; *d; d++) {
        unsigned char c = (unsigned char)*d;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* "[; Domain=D][; SameSite=S][; Secure]", or NULL when an attribute is unsafe. Browsers drop
 * SameSite=None without Secure (deletions included), so None always gets Secure. */
static const char *tail(apr_pool_t *p, const ctfl_cookie_attrs *a)
{
    int none;
    if (a->domain && !domain_ok(a->domain)) return NULL;
    if (a->same_site && !name_ok(a->same_site)) return NULL;
    none = a->same_site && strcasecmp(a->same_site, "None") == 0;
    return apr_pstrcat(p, a->domain ? "; Domain=" : "", a->domain ? a->domain : "",
                       a->same_site ? "; SameSite=" : "", a->same_site ? a->same_site : "",
                       (a->secure || none) ? "; Secure" : "", NULL);
}

char *ctfl_cookie_set_value(apr_pool_t *p, const char *name, const char *value,
                            const ctfl_cookie_attrs *a)
{
    const char *t;
    if (!name_ok(name) || !value || !value_ok(value) || !a || !(t = tail(p, a))) return NULL;
    return apr_psprintf(p, "%s=%s; Path=/; Max-Age=%ld%s", name, value,
                        a->max_age > 0 ? a->max_age : 0L, t);
}

char *ctfl_cookie_delete_value(apr_pool_t *p, const char *name, const ctfl_cookie_attrs *a)
{
    const char *t;
    if (!name_ok(name) || !a || !(t = tail(p, a))) return NULL;
    return apr_pstrcat(p, name, "=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                       t, NULL);
}
