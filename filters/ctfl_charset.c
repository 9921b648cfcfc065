/* ctfl_charset — which charset a page is in; see ctfl_charset.h.
 *
 * Order as in the WHATWG "encoding sniffing algorithm": a byte order mark wins
 * (browsers ignore the HTTP charset when a BOM is present), then the Content-Type
 * charset, then the "prescan a byte stream to determine its encoding" algorithm
 * over the first 1024 bytes. Labels are mapped with the WHATWG label table. */
#include "ctfl_charset.h"
#include <apr_strings.h>
#include <string.h>

#define PRESCAN_BYTES 1024

/* WHATWG Encoding Standard: canonical name (lowercased), then its labels. */
static const char *const encodings[][24] = {
    { "utf-8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf8",
      "x-unicode20utf8" },
    { "ibm866", "866", "cp866", "csibm866" },
    { "iso-8859-2", "csisolatin2", "iso-ir-101", "iso8859-2", "iso88592", "iso_8859-2",
      "iso_8859-2:1987", "l2", "latin2" },
    { "iso-8859-3", "csisolatin3", "iso-ir-109", "iso8859-3", "iso88593", "iso_8859-3",
      "iso_8859-3:1988", "l3", "latin3" },
    { "iso-8859-4", "csisolatin4", "iso-ir-110", "iso8859-4", "iso88594", "iso_8859-4",
      "iso_8859-4:1988", "l4", "latin4" },
    { "iso-8859-5", "csisolatincyrillic", "cyrillic", "iso-ir-144", "iso8859-5",
      "iso88595", "iso_8859-5", "iso_8859-5:1988" },
    { "iso-8859-6", "arabic", "asmo-708", "csiso88596e", "csiso88596i",
      "csisolatinarabic", "ecma-114", "iso-8859-6-e", "iso-8859-6-i", "iso-ir-127",
      "iso8859-6", "iso88596", "iso_8859-6", "iso_8859-6:1987" },
    { "iso-8859-7", "csisolatingreek", "ecma-118", "elot_928", "greek", "greek8",
      "iso-ir-126", "iso8859-7", "iso88597", "iso_8859-7", "iso_8859-7:1987",
      "sun_eu_greek" },
    { "iso-8859-8", "csiso88598e", "csisolatinhebrew", "hebrew", "iso-8859-8-e",
      "iso-ir-138", "iso8859-8", "iso88598", "iso_8859-8", "iso_8859-8:1988", "visual" },
    { "iso-8859-8-i", "csiso88598i", "logical" },
    { "iso-8859-10", "csisolatin6", "iso-ir-157", "iso8859-10", "iso885910", "l6",
      "latin6" },
    { "iso-8859-13", "iso8859-13", "iso885913" },
    { "iso-8859-14", "iso8859-14", "iso885914" },
    { "iso-8859-15", "csisolatin9", "iso8859-15", "iso885915", "iso_8859-15", "l9" },
    { "iso-8859-16" },
    { "koi8-r", "cskoi8r", "koi", "koi8", "koi8_r" },
    { "koi8-u", "koi8-ru" },
    { "macintosh", "csmacintosh", "mac", "x-mac-roman" },
    { "windows-874", "dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620" },
    { "windows-1250", "cp1250", "x-cp1250" },
    { "windows-1251", "cp1251", "x-cp1251" },
    { "windows-1252", "ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1",
      "ibm819", "iso-8859-1", "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1",
      "iso_8859-1:1987", "l1", "latin1", "us-ascii", "x-cp1252" },
    { "windows-1253", "cp1253", "x-cp1253" },
    { "windows-1254", "cp1254", "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9",
      "iso88599", "iso_8859-9", "iso_8859-9:1989", "l5", "latin5", "x-cp1254" },
    { "windows-1255", "cp1255", "x-cp1255" },
    { "windows-1256", "cp1256", "x-cp1256" },
    { "windows-1257", "cp1257", "x-cp1257" },
    { "windows-1258", "cp1258", "x-cp1258" },
    { "x-mac-cyrillic", "x-mac-ukrainian" },
    { "gbk", "chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80",
      "iso-ir-58", "x-gbk" },
    { "gb18030" },
    { "big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5" },
    { "euc-jp", "cseucpkdfmtjapanese", "x-euc-jp" },
    { "iso-2022-jp", "csiso2022jp" },
    { "shift_jis", "csshiftjis", "ms932", "ms_kanji", "shift-jis", "sjis", "windows-31j",
      "x-sjis" },
    { "euc-kr", "cseuckr", "csksc56011987", "iso-ir-149", "korean", "ks_c_5601-1987",
      "ks_c_5601-1989", "ksc5601", "ksc_5601", "windows-949" },
    { "replacement", "csiso2022kr", "hz-gb-2312", "iso-2022-cn", "iso-2022-cn-ext",
      "iso-2022-kr" },
    { "utf-16be", "unicodefffe" },
    { "utf-16le", "csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff",
      "utf-16" },
    { "x-user-defined" },
};

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}
static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; }
static int is_letter(unsigned char c) { return lower(c) >= 'a' && lower(c) <= 'z'; }

static int ieq(const char *a, apr_size_t alen, const char *b)
{
    apr_size_t i;
    for (i = 0; i < alen; i++)
        if (!b[i] || lower((unsigned char)a[i]) != (unsigned char)b[i])
            return 0;
    return b[i] == '\0';
}

/* WHATWG "get an encoding": the canonical name for a label, or NULL. */
static const char *canonical(const char *label, apr_size_t len)
{
    while (len && is_ws((unsigned char)*label)) {
        label++;
        len--;
    }
    while (len && is_ws((unsigned char)label[len - 1]))
        len--;
    if (!len || len > 32)
        return NULL;
    for (apr_size_t e = 0; e < sizeof(encodings) / sizeof(encodings[0]); e++)
        for (int l = 0; l < 24 && encodings[e][l]; l++)
            if (ieq(label, len, encodings[e][l]))
                return encodings[e][0];
    return NULL;
}

static int ascii_compatible(const char *name)
{
    return strcmp(name, "utf-16be") && strcmp(name, "utf-16le")
        && strcmp(name, "iso-2022-jp") && strcmp(name, "replacement");
}

const char *ctfl_charset_from_content_type(apr_pool_t *p, const char *ct)
{
    const char *s = ct ? strchr(ct, ';') : NULL;
    while (s && *s) {
        const char *name, *val, *vend;
        s++;                                   /* past ';' */
        while (is_ws((unsigned char)*s))
            s++;
        name = s;
        while (*s && *s != '=' && *s != ';' && !is_ws((unsigned char)*s))
            s++;
        if (ieq(name, (apr_size_t)(s - name), "charset")) {
            while (is_ws((unsigned char)*s))
                s++;
            if (*s != '=')
                return NULL;
            s++;
            while (is_ws((unsigned char)*s))
                s++;
            if (*s == '"') {
                val = ++s;
                vend = strchr(s, '"');
                if (!vend)
                    return NULL;
            } else {
                val = s;
                while (*s && *s != ';' && !is_ws((unsigned char)*s))
                    s++;
                vend = s;
            }
            if (vend == val)
                return NULL;
            {
                char *out = apr_pstrmemdup(p, val, (apr_size_t)(vend - val));
                for (char *c = out; *c; c++)
                    *c = (char)lower((unsigned char)*c);
                return out;
            }
        }
        s = strchr(s, ';');
    }
    return NULL;
}

/* ---- WHATWG "prescan a byte stream to determine its encoding" ---- */

typedef struct {
    const unsigned char *b;
    apr_size_t len, pos;
} prescan;

typedef struct {
    char name[16], value[128];
    apr_size_t name_len, value_len;
} attr;

static void put(char *buf, apr_size_t *n, apr_size_t cap, unsigned char c)
{
    if (*n < cap)
        buf[*n] = (char)lower(c);
    (*n)++;                                    /* over-long: kept only as a length */
}

/* "get an attribute": 1 attribute read, 0 none left, -1 end of input (abort). */
static int get_attr(prescan *ps, attr *a)
{
    const unsigned char *b = ps->b;
    a->name_len = a->value_len = 0;
    for (;; ps->pos++) {
        if (ps->pos >= ps->len)
            return -1;
        if (!is_ws(b[ps->pos]) && b[ps->pos] != '/')
            break;
    }
    if (b[ps->pos] == '>')
        return 0;
    for (;; ps->pos++) {                       /* name */
        unsigned char c;
        if (ps->pos >= ps->len)
            return -1;
        c = b[ps->pos];
        if (c == '=' && a->name_len) {
            ps->pos++;
            goto value;
        }
        if (is_ws(c))
            break;
        if (c == '/' || c == '>')
            return 1;
        put(a->name, &a->name_len, sizeof(a->name), c);
    }
    for (;; ps->pos++) {                       /* spaces */
        if (ps->pos >= ps->len)
            return -1;
        if (!is_ws(b[ps->pos]))
            break;
    }
    if (b[ps->pos] != '=')
        return 1;
    ps->pos++;
value:
    for (;; ps->pos++) {
        if (ps->pos >= ps->len)
            return -1;
        if (!is_ws(b[ps->pos]))
            break;
    }
    if (b[ps->pos] == '"' || b[ps->pos] == '\'') {
        unsigned char q = b[ps->pos];
        for (ps->pos++;; ps->pos++) {
            if (ps->pos >= ps->len)
                return -1;
            if (b[ps->pos] == q) {
                ps->pos++;
                return 1;
            }
            put(a->value, &a->value_len, sizeof(a->value), b[ps->pos]);
        }
    }
    if (b[ps->pos] == '>')
        return 1;
    for (;; ps->pos++) {
        if (ps->pos >= ps->len)
            return -1;
        if (is_ws(b[ps->pos]) || b[ps->pos] == '>')
            return 1;
        put(a->value, &a->value_len, sizeof(a->value), b[ps->pos]);
    }
}

static int attr_is(const attr *a, const char *name)
{
    return a->name_len == strlen(name) && memcmp(a->name, name, a->name_len) == 0;
}

/* "extract a character encoding from a meta element" (the content attribute). */
static const char *from_meta_content(const char *s, apr_size_t n)
{
    apr_size_t i = 0;
    for (;;) {
        apr_size_t j;
        for (; i + 7 <= n; i++)
            if (ieq(s + i, 7, "charset"))
                break;
        if (i + 7 > n)
            return NULL;
        i += 7;
        for (j = i; j < n && is_ws((unsigned char)s[j]); j++)
            ;
        if (j >= n || s[j] != '=') {
            i = j;
            continue;
        }
        for (j++; j < n && is_ws((unsigned char)s[j]); j++)
            ;
        if (j >= n)
            return NULL;
        if (s[j] == '"' || s[j] == '\'') {
            const char *close = memchr(s + j + 1, s[j], n - j - 1);
            return close ? canonical(s + j + 1, (apr_size_t)(close - (s + j + 1))) : NULL;
        }
        {
            apr_size_t k = j;
            while (k < n && !is_ws((unsigned char)s[k]) && s[k] != ';')
                k++;
            return canonical(s + j, k - j);
        }
    }
}

/* Attributes of one <meta>: the charset it declares, or NULL. */
static const char *meta_charset(prescan *ps, int *abort)
{
    attr a;
    unsigned seen = 0;                         /* bit per attribute name already seen */
    int got_pragma = 0, need_pragma = -1, r;
    const char *charset = NULL;
    *abort = 0;
    while ((r = get_attr(ps, &a)) == 1) {
        unsigned bit = attr_is(&a, "http-equiv") ? 1 : attr_is(&a, "content") ? 2
                     : attr_is(&a, "charset") ? 4 : 0;
        if (!bit || (seen & bit))
            continue;
        seen |= bit;
        if (bit == 1) {
            if (a.value_len == 12 && memcmp(a.value, "content-type", 12) == 0)
                got_pragma = 1;
        } else if (bit == 2) {
            if (!charset && a.value_len <= sizeof(a.value)) {
                const char *c = from_meta_content(a.value, a.value_len);
                if (c) {
                    charset = c;
                    need_pragma = 1;
                }
            }
        } else {
            charset = a.value_len <= sizeof(a.value) ? canonical(a.value, a.value_len) : NULL;
            need_pragma = 0;
        }
    }
    if (r < 0) {
        *abort = 1;
        return NULL;
    }
    if (need_pragma < 0 || (need_pragma == 1 && !got_pragma) || !charset)
        return NULL;
    if (!strcmp(charset, "utf-16be") || !strcmp(charset, "utf-16le"))
        return "utf-8";
    if (!strcmp(charset, "x-user-defined"))
        return "windows-1252";
    return charset;
}

static int starts_with(const prescan *ps, const char *lit)
{
    apr_size_t n = strlen(lit);
    return ps->pos + n <= ps->len && ieq((const char *)ps->b + ps->pos, n, lit);
}

static const char *prescan_meta(const unsigned char *b, apr_size_t len)
{
    prescan ps = { b, len < PRESCAN_BYTES ? len : PRESCAN_BYTES, 0 };
    int abort_scan;
    attr a;
    while (ps.pos < ps.len) {
        if (starts_with(&ps, "<!--")) {
            apr_size_t i;
            for (i = ps.pos + 2; i + 3 <= ps.len; i++)
                if (b[i] == '-' && b[i + 1] == '-' && b[i + 2] == '>')
                    break;
            if (i + 3 > ps.len)
                return NULL;
            ps.pos = i + 2;                    /* at the '>' */
        } else if (starts_with(&ps, "<meta") && ps.pos + 5 < ps.len
                   && (is_ws(b[ps.pos + 5]) || b[ps.pos + 5] == '/')) {
            const char *cs;
            ps.pos += 5;
            cs = meta_charset(&ps, &abort_scan);
            if (abort_scan)
                return NULL;
            if (cs)
                return cs;
        } else if (b[ps.pos] == '<' && ps.pos + 1 < ps.len
                   && (is_letter(b[ps.pos + 1])
                       || (b[ps.pos + 1] == '/' && ps.pos + 2 < ps.len
                           && is_letter(b[ps.pos + 2])))) {
            int r;
            while (ps.pos < ps.len && !is_ws(b[ps.pos]) && b[ps.pos] != '>')
                ps.pos++;
            while ((r = get_attr(&ps, &a)) == 1)
                ;
            if (r < 0)
                return NULL;
        } else if (starts_with(&ps, "<!") || starts_with(&ps, "</") || starts_with(&ps, "<?")) {
            const unsigned char *gt = memchr(b + ps.pos, '>', ps.len - ps.pos);
            if (!gt)
                return NULL;
            ps.pos = (apr_size_t)(gt - b);
        }
        ps.pos++;
    }
    return NULL;
}

void ctfl_charset_detect(apr_pool_t *p, const char *content_type,
                         const char *head, apr_size_t len, ctfl_charset *out)
{
    const unsigned char *b = (const unsigned char *)head;
    const char *label, *name;

    out->name = NULL;
    out->ascii_compatible = 1;
    out->from = 0;
    if (b && len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) {
        out->name = "utf-8";
        out->from = 2;
        return;
    }
    if (b && len >= 2 && ((b[0] == 0xFE && b[1] == 0xFF) || (b[0] == 0xFF && b[1] == 0xFE))) {
        out->name = b[0] == 0xFE ? "utf-16be" : "utf-16le";
        out->ascii_compatible = 0;
        out->from = 2;
        return;
    }
    label = ctfl_charset_from_content_type(p, content_type);
    if (label && (name = canonical(label, strlen(label))) != NULL) {
        out->name = name;
        out->ascii_compatible = ascii_compatible(name);
        out->from = 1;
        return;
    }
    if (b && (name = prescan_meta(b, len)) != NULL) {
        out->name = name;
        out->ascii_compatible = ascii_compatible(name);
        out->from = 3;
    }
}
