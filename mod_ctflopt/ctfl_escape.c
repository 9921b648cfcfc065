/* ctfl_escape — escaping for the places the module writes into a page.
 *
 * Everything written into a <script> is made pure ASCII and free of '<', '>' and '&', so it
 * cannot close the element ("</script"), open a comment ("<!--"), break a JS string (U+2028,
 * U+2029) or trip an XHTML (XML) parser, whatever charset the page declares. */
#include "ctfl_escape.h"

#include <apr_strings.h>
#include <string.h>

/* Output that is measured in a first pass (buf NULL) and written in a second. */
typedef struct {
    char *buf;
    apr_size_t len;
} writer;

static void put(writer *w, const char *s, apr_size_t n)
{
    if (w->buf) memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_u(writer *w, unsigned long cp)
{
    char tmp[8];
    apr_snprintf(tmp, sizeof tmp, "\\u%04lx", cp);
    put(w, tmp, 6);
}

/* One strict UTF-8 sequence at s (no overlongs, surrogates or > U+10FFFF): its length and
 * code point, or 0 when s does not start a valid sequence. */
static apr_size_t utf8_decode(const unsigned char *s, apr_size_t n, unsigned long *cp)
{
    apr_size_t len, i;
    unsigned long c;

    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if (s[0] >= 0xC2 && s[0] <= 0xDF)      { len = 2; c = s[0] & 0x1F; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { len = 3; c = s[0] & 0x0F; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { len = 4; c = s[0] & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF))
        || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Writes in as script-safe ASCII. in_string: in is raw text to become the inside of a JSON
 * string (so '"', '\' and control characters are escaped too); otherwise in is JSON text
 * whose only non-ASCII characters are inside strings, where \uXXXX means the same thing. */
static void escape(writer *w, const char *in, apr_size_t n, int in_string)
{
    const unsigned char *s = (const unsigned char *)in;
    apr_size_t i = 0;

    while (i < n) {
        unsigned char b = s[i];
        unsigned long cp;
        apr_size_t k;

        if (b == '<' || b == '>' || b == '&') {
            put_u(w, b);
            i++;
            continue;
        }
        if (b < 0x80) {
            if (in_string && (b == '"' || b == '\\')) {
                put(w, "\\", 1);
                put(w, (const char *)&s[i], 1);
            } else if (in_string && (b < 0x20 || b == 0x7F)) {
                switch (b) {
                case '\n': put(w, "\\n", 2); break;
                case '\r': put(w, "\\r", 2); break;
                case '\t': put(w, "\\t", 2); break;
                default: put_u(w, b); break;
                }
            } else {
                put(w, (const char *)&s[i], 1);
            }
            i++;
            continue;
        }
        k = utf8_decode(s + i, n - i, &cp);
        if (k == 0) {                      /* invalid byte: one replacement character */
            put_u(w, 0xFFFD);
            i++;
        } else if (cp > 0xFFFF) {          /* outside the BMP: a surrogate pair */
            put_u(w, 0xD800 + ((cp - 0x10000) >> 10));
            put_u(w, 0xDC00 + ((cp - 0x10000) & 0x3FF));
            i += k;
        } else {                           /* includes U+2028 and U+2029 */
            put_u(w, cp);
            i += k;
        }
    }
}

static char *escape_to_pool(apr_pool_t *p, const char *in, int in_string)
{
    apr_size_t n = strlen(in);
    writer w = { NULL, 0 };

    if (in_string) put(&w, "\"", 1);
    escape(&w, in, n, in_string);
    if (in_string) put(&w, "\"", 1);
    w.buf = apr_palloc(p, w.len + 1);
    w.len = 0;
    if (in_string) put(&w, "\"", 1);
    escape(&w, in, n, in_string);
    if (in_string) put(&w, "\"", 1);
    w.buf[w.len] = '\0';
    return w.buf;
}

/* Stricter than the header promises: every non-ASCII character becomes \uXXXX as well, so
 * the result is pure ASCII (the bootstrap must be, ctfl_bootstrap.h). Same JSON value. */
char *ctfl_json_for_script(apr_pool_t *p, const char *json)
{
    return json ? escape_to_pool(p, json, 0) : NULL;
}

/* Invalid UTF-8 bytes become U+FFFD; the literal is also a valid JSON string. */
char *ctfl_js_string(apr_pool_t *p, const char *s)
{
    return s ? escape_to_pool(p, s, 1) : NULL;
}

const char *ctfl_html_entity(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    default: return NULL;
    }
}

char *ctfl_html_escape(apr_pool_t *p, const char *s)
{
    apr_size_t extra = 0;
    const char *c, *rep;
    char *out, *o;

    if (!s) return NULL;
    for (c = s; *c; c++)
        if ((rep = ctfl_html_entity(*c)) != NULL)
            extra += strlen(rep) - 1;
    o = out = apr_palloc(p, (apr_size_t)(c - s) + extra + 1);
    for (c = s; *c; c++) {
        if ((rep = ctfl_html_entity(*c)) != NULL)
            o = stpcpy(o, rep);
        else
            *o++ = *c;
    }
    *o = '\0';
    return out;
}
