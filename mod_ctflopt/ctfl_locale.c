/* ctfl_locale — locale normalization (spec §10.1) and Accept-Language matching. */
#include "ctfl_locale.h"

#include <apr_strings.h>
#include <string.h>
#include <strings.h>

/* Bounds on the work one Accept-Language header can cause. */
#define MAX_PARTS       64   /* comma-separated parts looked at; the rest is ignored */
#define MAX_CANDIDATES  32   /* valid language ranges kept from those */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* ^[a-z]{2,8}(-[a-z0-9]{1,8})*$, case-insensitive. */
static int locale_pattern_ok(const char *s)
{
    apr_size_t n = 0;
    while (is_alpha(s[n])) n++;
    if (n < 2 || n > 8) return 0;
    s += n;
    while (*s == '-') {
        s++;
        for (n = 0; is_alpha(s[n]) || is_digit(s[n]); n++) ;
        if (n < 1 || n > 8) return 0;
        s += n;
    }
    return *s == '\0';
}

static const char *normalize_n(apr_pool_t *p, const char *in, apr_size_t len)
{
    const char *end = in + len;
    char *out, *c;

    while (in < end && is_space(*in)) in++;
    while (end > in && is_space(end[-1])) end--;
    out = apr_pstrmemdup(p, in, (apr_size_t)(end - in));
    for (c = out; *c; c++)
        if (*c == '_') *c = '-';
    if (!*out || strcmp(out, "*") == 0 || strcasecmp(out, "und") == 0 || !locale_pattern_ok(out))
        return NULL;
    return out;
}

const char *ctfl_locale_normalize(apr_pool_t *p, const char *in)
{
    return in ? normalize_n(p, in, strlen(in)) : NULL;
}

/* RFC 7231 qvalue, in thousandths: "0[.ddd]" or "1[.000]"; -1 when malformed. */
static int parse_qvalue(const char *s, apr_size_t n)
{
    int q, scale = 100;
    apr_size_t i;

    if (n == 0 || (s[0] != '0' && s[0] != '1')) return -1;
    q = (s[0] - '0') * 1000;
    if (n == 1) return q;
    if (s[1] != '.' || n > 5) return -1;
    for (i = 2; i < n; i++, scale /= 10) {
        if (!is_digit(s[i])) return -1;
        q += (s[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/* Weight of one part's parameters (";q=0.5;..."): 1000 without q, -1 when malformed. */
static int part_weight(const char *s, const char *end)
{
    int q = 1000;
    while (s < end) {                              /* s is at a ';' */
        const char *p0 = s + 1, *p1 = p0;
        while (p1 < end && *p1 != ';') p1++;
        s = p1;
        while (p0 < p1 && is_space(*p0)) p0++;
        if (p0 < p1 && (*p0 == 'q' || *p0 == 'Q')) {
            const char *v = p0 + 1, *ve = p1;
            while (v < ve && is_space(*v)) v++;
            if (v == ve || *v != '=') continue;    /* not a q parameter: ignored */
            v++;
            while (v < ve && is_space(*v)) v++;
            while (ve > v && is_space(ve[-1])) ve--;
            q = parse_qvalue(v, (apr_size_t)(ve - v));
            if (q < 0) return -1;
        }
    }
    return q;
}

typedef struct {
    const char *tag;   /* normalized range */
    int q;             /* thousandths */
} candidate;

/* The configured locale whose lowercased text equals t[0..n), or that starts with t[0..n)
 * followed by '-' (prefix), else NULL. */
static const char *find_supported(const apr_array_header_t *sup, const char *t, apr_size_t n,
                                  int prefix)
{
    int i;
    for (i = 0; i < sup->nelts; i++) {
        const char *s = APR_ARRAY_IDX(sup, i, const char *);
        if (!s || strncasecmp(s, t, n) != 0) continue;
        if (prefix ? s[n] == '-' : s[n] == '\0') return s;
    }
    return NULL;
}

/* One candidate: exact, then each shorter prefix of its subtags (equal, then as the start of a
 * longer configured tag), so "de-CH" finds "de" before "de-DE", and "de" finds "de-DE". */
static const char *match_candidate(const apr_array_header_t *sup, const char *tag)
{
    apr_size_t n = strlen(tag);
    const char *hit = find_supported(sup, tag, n, 0);

    while (!hit && n > 0) {
        if (n < strlen(tag)) hit = find_supported(sup, tag, n, 0);
        if (!hit) hit = find_supported(sup, tag, n, 1);
        while (n > 0 && tag[n - 1] != '-') n--;    /* drop the last subtag */
        if (n > 0) n--;                            /* and its '-' */
    }
    return hit;
}

const char *ctfl_locale_negotiate(apr_pool_t *p, const char *accept_language,
                                  const apr_array_header_t *supported)
{
    candidate cand[MAX_CANDIDATES];
    int ncand = 0, parts = 0, i, j;
    const char *s = accept_language;

    if (!supported || supported->nelts < 1) return NULL;
    if (!s) return APR_ARRAY_IDX(supported, 0, const char *);

    while (*s && parts < MAX_PARTS && ncand < MAX_CANDIDATES) {
        const char *end = s, *semi;
        const char *tag;
        int q;

        while (*end && *end != ',') end++;
        parts++;
        for (semi = s; semi < end && *semi != ';'; semi++) ;
        q = part_weight(semi, end);
        tag = normalize_n(p, s, (apr_size_t)(semi - s));
        if (q > 0 && tag) {                        /* q=0 means "not acceptable" */
            /* stable insertion by descending q */
            for (j = ncand; j > 0 && cand[j - 1].q < q; j--) cand[j] = cand[j - 1];
            cand[j].tag = tag;
            cand[j].q = q;
            ncand++;
        }
        s = *end ? end + 1 : end;
    }

    for (i = 0; i < ncand; i++) {
        const char *hit = match_candidate(supported, cand[i].tag);
        if (hit) return hit;
    }
    return APR_ARRAY_IDX(supported, 0, const char *);
}
