/* ctfl_value — accessors, JS-compatible scalars and JSON.stringify output.
 *
 * Values are read-only once built; graphs may be cyclic (resolved links), so
 * the only recursive function here (serialization) is depth-bounded. */
#include "ctfl_value.h"

#include <apr_strings.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_OUT_MAX (64u * 1024u * 1024u)

/* The resolver's predicates look keys up constantly, and many keys share a
 * prefix ("nt_"): compare inline, which exits on the first differing byte
 * without a library call. */
static int key_eq(const char *a, const char *b)
{
    for (; *a == *b; a++, b++)
        if (!*a) return 1;
    return 0;
}

/* Key equal to the n bytes at seg (which hold no NUL): key[0..n) matches and
 * key[n] ends it. Reads of key stop at its first mismatch, so never past its NUL. */
static int key_eq_n(const char *key, const char *seg, apr_size_t n)
{
    for (apr_size_t i = 0; i < n; i++)
        if (key[i] != seg[i]) return 0;
    return key[n] == '\0';
}

const ctfl_value *ctfl_value_get(const ctfl_value *obj, const char *key)
{
    if (!obj || !key || obj->type != CTFL_V_OBJECT) return NULL;
    for (apr_size_t i = 0; i < obj->u.obj.n; i++)
        if (key_eq(obj->u.obj.keys[i], key))
            return obj->u.obj.vals[i];
    return NULL;
}

/* Walks the segments in place (no copy): a segment is the bytes up to the
 * next '.' or the end, so "a..b" and "a." look up an empty key. */
const ctfl_value *ctfl_value_path(const ctfl_value *v, const char *dotted)
{
    const char *s = dotted;
    if (!v || !dotted) return NULL;
    for (;;) {
        apr_size_t n = 0;
        const ctfl_value *next = NULL;
        while (s[n] && s[n] != '.') n++;
        if (v->type != CTFL_V_OBJECT) return NULL;
        for (apr_size_t i = 0; i < v->u.obj.n; i++)
            if (key_eq_n(v->u.obj.keys[i], s, n)) { next = v->u.obj.vals[i]; break; }
        if (!next || !s[n]) return next;
        v = next;
        s += n + 1;
    }
}

const char *ctfl_value_str(const ctfl_value *v)
{
    return v && v->type == CTFL_V_STRING ? v->u.str.s : NULL;
}

int ctfl_value_is(const ctfl_value *v, ctfl_vtype t)
{
    return v && v->type == t;
}

apr_size_t ctfl_value_len(const ctfl_value *v)
{
    return v && v->type == CTFL_V_ARRAY ? v->u.arr.n : 0;
}

const ctfl_value *ctfl_value_at(const ctfl_value *v, apr_size_t i)
{
    return v && v->type == CTFL_V_ARRAY && i < v->u.arr.n ? v->u.arr.items[i] : NULL;
}

int ctfl_value_truthy(const ctfl_value *v)
{
    if (!v) return 0;
    switch (v->type) {
    case CTFL_V_BOOL: return v->u.b != 0;
    case CTFL_V_NUMBER: return v->u.n != 0 && !isnan(v->u.n);
    case CTFL_V_STRING: return v->u.str.len > 0;
    case CTFL_V_ARRAY: case CTFL_V_OBJECT: return 1;
    default: return 0;
    }
}

/* Shortest decimal digits that read back as n (n finite, > 0): the digits
 * (no dot) go to digits, the return value is the decimal exponent of the
 * first digit. printf rounds correctly, so the first precision that round-
 * trips gives ECMAScript's choice (closest candidate among the shortest). */
static int shortest_digits(double n, char *digits, size_t cap)
{
    char buf[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, n);
        if (strtod(buf, NULL) == n) break;
    }
    {
        char *e = strchr(buf, 'e');
        size_t k = 0;
        for (char *c = buf; c < e && k + 1 < cap; c++)
            if (*c >= '0' && *c <= '9') digits[k++] = *c;
        while (k > 1 && digits[k - 1] == '0') k--;
        digits[k] = '\0';
        return atoi(e + 1);
    }
}

/* Number::toString(10) of ECMA-262 (7.1.12.1). */
char *ctfl_js_number(apr_pool_t *p, double n)
{
    char digits[24], out[64];
    int k, e, pos = 0;
    const char *sign = "";

    if (isnan(n)) return apr_pstrdup(p, "NaN");
    if (n == 0) return apr_pstrdup(p, "0");          /* also -0 */
    /* Fast path (variant indexes, counts): below 2^53 every integer is a
     * double and no shorter digit string reads back as it, so its exact
     * decimal digits are the spec's answer. */
    if (fabs(n) < 9007199254740992.0 && n == trunc(n)) {
        unsigned long long u = (unsigned long long)fabs(n);
        char *c = out + sizeof(out);
        *--c = '\0';
        do { *--c = (char)('0' + u % 10); u /= 10; } while (u);
        if (n < 0) *--c = '-';
        return apr_pstrmemdup(p, c, (apr_size_t)(out + sizeof(out) - 1 - c));
    }
    if (n < 0) { sign = "-"; n = -n; }
    if (isinf(n)) return apr_pstrcat(p, sign, "Infinity", NULL);

    e = shortest_digits(n, digits, sizeof(digits));
    k = (int)strlen(digits);
    {
        int point = e + 1;                             /* the spec's n */
        if (k <= point && point <= 21) {
            pos = snprintf(out, sizeof(out), "%s", digits);
            while (pos < point && pos < (int)sizeof(out) - 1) out[pos++] = '0';
            out[pos] = '\0';
        } else if (0 < point && point <= 21) {
            snprintf(out, sizeof(out), "%.*s.%s", point, digits, digits + point);
        } else if (-6 < point && point <= 0) {
            snprintf(out, sizeof(out), "0.%.*s%s", -point, "000000", digits);
        } else if (k == 1) {
            snprintf(out, sizeof(out), "%se%c%d", digits, e > 0 ? '+' : '-', abs(e));
        } else {
            snprintf(out, sizeof(out), "%c.%se%c%d", digits[0], digits + 1, e > 0 ? '+' : '-', abs(e));
        }
    }
    return apr_pstrcat(p, sign, out, NULL);
}

ctfl_value *ctfl_value_new(apr_pool_t *p, ctfl_vtype t)
{
    ctfl_value *v = apr_pcalloc(p, sizeof(*v));
    v->type = t;
    if (t == CTFL_V_STRING) v->u.str.s = "";
    return v;
}

ctfl_value *ctfl_value_string(apr_pool_t *p, const char *s)
{
    ctfl_value *v = ctfl_value_new(p, CTFL_V_STRING);
    v->u.str.len = strlen(s);
    v->u.str.s = apr_pstrmemdup(p, s, v->u.str.len);
    return v;
}

ctfl_value *ctfl_value_number(apr_pool_t *p, double n)
{
    ctfl_value *v = ctfl_value_new(p, CTFL_V_NUMBER);
    v->u.n = n;
    return v;
}

ctfl_value *ctfl_value_bool(apr_pool_t *p, int b)
{
    ctfl_value *v = ctfl_value_new(p, CTFL_V_BOOL);
    v->u.b = b != 0;
    return v;
}

/* ---- JSON.stringify ------------------------------------------------------ */

typedef struct {
    apr_pool_t *scratch;           /* the doubling buffers; destroyed at the end */
    char *d;
    apr_size_t len, cap;
    int failed;
} outbuf;

static void put(outbuf *b, const char *s, apr_size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        apr_size_t cap = b->cap ? b->cap : 256;
        char *d;
        while (cap < b->len + n + 1) cap *= 2;
        if (cap > JSON_OUT_MAX + 1) { b->failed = 1; return; }
        d = apr_palloc(b->scratch, cap);
        if (b->len) memcpy(d, b->d, b->len);
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, s, n);
    b->len += n;
}

static void put_string(outbuf *b, const char *s, apr_size_t n)
{
    static const char hex[] = "0123456789abcdef";
    apr_size_t run = 0;
    put(b, "\"", 1);
    for (apr_size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            esc = u;
        }
        put(b, esc, strlen(esc));
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static void put_value(outbuf *b, const ctfl_value *v, int depth)
{
    if (b->failed) return;
    if (depth > CTFL_VALUE_MAX_DEPTH) { b->failed = 1; return; }
    switch (v ? v->type : CTFL_V_NULL) {
    case CTFL_V_NULL: put(b, "null", 4); break;
    case CTFL_V_BOOL: v->u.b ? put(b, "true", 4) : put(b, "false", 5); break;
    case CTFL_V_NUMBER:
        if (isfinite(v->u.n)) {
            char *s = ctfl_js_number(b->scratch, v->u.n);
            put(b, s, strlen(s));
        } else {
            put(b, "null", 4);
        }
        break;
    case CTFL_V_STRING: put_string(b, v->u.str.s, v->u.str.len); break;
    case CTFL_V_ARRAY:
        put(b, "[", 1);
        for (apr_size_t i = 0; i < v->u.arr.n && !b->failed; i++) {
            if (i) put(b, ",", 1);
            put_value(b, v->u.arr.items[i], depth + 1);
        }
        put(b, "]", 1);
        break;
    case CTFL_V_OBJECT:
        put(b, "{", 1);
        for (apr_size_t i = 0; i < v->u.obj.n && !b->failed; i++) {
            if (i) put(b, ",", 1);
            put_string(b, v->u.obj.keys[i], strlen(v->u.obj.keys[i]));
            put(b, ":", 1);
            put_value(b, v->u.obj.vals[i], depth + 1);
        }
        put(b, "}", 1);
        break;
    }
}

char *ctfl_value_to_json(apr_pool_t *p, const ctfl_value *v)
{
    outbuf b = { NULL, NULL, 0, 0, 0 };
    char *out = NULL;
    if (apr_pool_create(&b.scratch, p) != APR_SUCCESS) return NULL;
    put_value(&b, v, 0);
    if (!b.failed && b.len <= JSON_OUT_MAX) out = apr_pstrmemdup(p, b.d ? b.d : "", b.len);
    apr_pool_destroy(b.scratch);
    return out;
}
