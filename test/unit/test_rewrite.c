/* ctfl_rewrite: byte identity, bootstrap placement and chunk invariance.
 *
 * The expected injection point and the expected tag stream come from ref_scan()
 * below, an independent whole-buffer tokenizer written in a different style
 * (substring searches instead of a resumable state machine). */
#include "unit.h"
#include <dirent.h>
#include <strings.h>
#include <apr_tables.h>
#include "ctfl_rewrite.h"
#include "ctfl_scan.h"

#define INJ "<script id=ctfl-boot></script>"

/* Under valgrind (CTFL_UNDER_VALGRIND set) the exhaustive loops are thinned:
 * every split_step-th 2-way split, and only the first corpus page. */
static size_t split_step = 1;
static size_t corpus_pages = 3;

/* ------------------------------------------------------------------ */
/* Reference tokenizer (whole document in memory, no chunking)          */

typedef struct {
    int kind;                 /* CTFL_TAG_START / CTFL_TAG_END */
    char name[CTFL_TAG_NAME_MAX + 1];
    int overflow, self_closing;
    size_t lt, end;
} rtag;

typedef struct {
    rtag *v;
    size_t n, cap;
} rtags;

static int r_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\f' || c == '\r'; }
static int r_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static char r_low(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }
static int r_delim(char c) { return r_ws(c) || c == '/' || c == '>'; }

static int r_starts(const char *s, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    return i + l <= n && memcmp(s + i, lit, l) == 0;
}
static int r_istarts(const char *s, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    if (i + l > n)
        return 0;
    for (size_t k = 0; k < l; k++)
        if (r_low(s[i + k]) != lit[k])
            return 0;
    return 1;
}
/* "<NAME" + delimiter at i (case-insensitive) */
static int r_named_at(const char *s, size_t n, size_t i, const char *name)
{
    size_t l = strlen(name);
    return r_istarts(s, n, i, name) && i + l < n && r_delim(s[i + l]);
}
static int r_end_tag_at(const char *s, size_t n, size_t i, const char *name)
{
    return s[i] == '<' && i + 1 < n && s[i + 1] == '/' && r_named_at(s, n, i + 2, name);
}
static size_t r_after(const char *s, size_t n, size_t from, const char *lit)
{
    for (size_t k = from; k < n; k++)
        if (r_starts(s, n, k, lit))
            return k + strlen(lit);
    return n;
}

static size_t r_comment_end(const char *s, size_t n, size_t j)
{
    if (j < n && s[j] == '>')
        return j + 1;                              /* <!--> */
    if (j + 1 < n && s[j] == '-' && s[j + 1] == '>')
        return j + 2;                              /* <!---> */
    for (size_t k = j; k < n; k++) {
        if (r_starts(s, n, k, "-->"))
            return k + 3;
        if (r_starts(s, n, k, "--!>"))
            return k + 4;
    }
    return n;
}

/* The '<' of the end tag that closes raw text / RCDATA `name`, or n. */
static size_t r_raw_end(const char *s, size_t n, size_t i, const char *name)
{
    for (; i < n; i++)
        if (r_end_tag_at(s, n, i, name))
            return i;
    return n;
}

/* Script data with the escaped / double-escaped modes. */
static size_t r_script_end(const char *s, size_t n, size_t i)
{
    enum { NORMAL, ESC, DBL } m = NORMAL;
    for (; i < n; i++) {
        if (m != NORMAL && s[i] == '>' && s[i - 1] == '-' && s[i - 2] == '-') {
            m = NORMAL;
            continue;
        }
        if (s[i] != '<')
            continue;
        if (m == NORMAL && r_starts(s, n, i, "<!--")) {
            m = ESC;
            i += 3;
        } else if (m != DBL && r_end_tag_at(s, n, i, "script")) {
            return i;
        } else if (m == ESC && r_named_at(s, n, i + 1, "script")) {
            m = DBL;
            i += 7;                                /* and the delimiter */
        } else if (m == DBL && r_end_tag_at(s, n, i, "script")) {
            m = ESC;
            i += 8;
        }
    }
    return n;
}

/* One tag whose '<' is at i; 0 when the input ends inside it. */
static int r_tag(const char *s, size_t n, size_t i, rtag *t, int *font_attr)
{
    size_t j = i + 1, nl = 0;
    memset(t, 0, sizeof(*t));
    *font_attr = 0;
    t->kind = CTFL_TAG_START;
    t->lt = i;
    if (s[j] == '/') {
        t->kind = CTFL_TAG_END;
        j++;
    }
    for (; j < n && !r_delim(s[j]); j++, nl++)
        if (nl < CTFL_TAG_NAME_MAX)
            t->name[nl] = r_low(s[j]);
    t->overflow = nl > CTFL_TAG_NAME_MAX;
    for (;;) {
        size_t a0, k;
        while (j < n && r_ws(s[j]))
            j++;
        if (j >= n)
            return 0;
        if (s[j] == '>') {
            t->end = j + 1;
            return 1;
        }
        if (s[j] == '/') {
            if (j + 1 < n && s[j + 1] == '>') {
                t->self_closing = 1;
                t->end = j + 2;
                return 1;
            }
            j++;
            continue;
        }
        a0 = j;
        if (s[j] == '=')
            j++;
        while (j < n && !r_delim(s[j]) && s[j] != '=')
            j++;
        if ((j - a0 == 5 && r_istarts(s, n, a0, "color")) || (j - a0 == 4 && r_istarts(s, n, a0, "face"))
            || (j - a0 == 4 && r_istarts(s, n, a0, "size")))
            *font_attr = 1;
        for (k = j; k < n && r_ws(s[k]); k++)
            ;
        if (k >= n)
            return 0;
        if (s[k] != '=') {
            j = k;
            continue;
        }
        for (j = k + 1; j < n && r_ws(s[j]); j++)
            ;
        if (j >= n)
            return 0;
        if (s[j] == '"' || s[j] == '\'') {
            const char *q = memchr(s + j + 1, s[j], n - j - 1);
            if (!q)
                return 0;
            j = (size_t)(q - s) + 1;
        } else {
            while (j < n && !r_ws(s[j]) && s[j] != '>')
                j++;
        }
    }
}

static int r_in(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return 1;
    return 0;
}

static void r_push(rtags *out, const rtag *t)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 64;
        out->v = realloc(out->v, out->cap * sizeof(rtag));
        assert_non_null(out->v);
    }
    out->v[out->n++] = *t;
}

static void ref_scan(const char *s, size_t n, rtags *out)
{
    static const char *const breakout[] = {
        "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt",
        "em", "embed", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li",
        "listing", "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span",
        "strong", "strike", "sub", "sup", "table", "tt", "u", "ul", "var", NULL
    };
    static const char *const raw[] = {
        "style", "xmp", "iframe", "noembed", "noframes", "noscript", "title", "textarea", NULL
    };
    size_t i = 0;
    int foreign = 0;
    out->n = 0;
    while (i < n) {
        const char *lt = memchr(s + i, '<', n - i);
        rtag t;
        int font, mathsvg;
        if (!lt)
            break;
        i = (size_t)(lt - s);
        if (i + 1 >= n)
            break;
        if (s[i + 1] == '!') {
            if (r_starts(s, n, i, "<!--"))
                i = r_comment_end(s, n, i + 4);
            else if (foreign && r_starts(s, n, i, "<![CDATA["))
                i = r_after(s, n, i + 9, "]]>");
            else
                i = r_after(s, n, i + 2, ">");
            continue;
        }
        if (s[i + 1] == '?') {
            i = r_after(s, n, i + 2, ">");
            continue;
        }
        if (s[i + 1] == '/') {
            if (i + 2 >= n)
                break;
            if (s[i + 2] == '>') {
                i += 3;
                continue;
            }
            if (!r_alpha(s[i + 2])) {
                i = r_after(s, n, i + 2, ">");
                continue;
            }
        } else if (!r_alpha(s[i + 1])) {
            i++;
            continue;
        }
        if (!r_tag(s, n, i, &t, &font))
            break;
        r_push(out, &t);
        i = t.end;
        mathsvg = !t.overflow && (!strcmp(t.name, "svg") || !strcmp(t.name, "math"));
        if (t.kind == CTFL_TAG_END) {
            if (foreign && mathsvg)
                foreign--;
            else if (foreign && !t.overflow && (!strcmp(t.name, "br") || !strcmp(t.name, "p")))
                foreign = 0;
            continue;
        }
        if (foreign) {
            if (!t.overflow && (r_in(t.name, breakout) || (!strcmp(t.name, "font") && font))) {
                foreign = 0;
            } else {
                if (mathsvg && !t.self_closing)
                    foreign++;
                continue;
            }
        }
        if (mathsvg) {
            if (!t.self_closing)
                foreign = 1;
            continue;
        }
        if (t.overflow)
            continue;
        if (!strcmp(t.name, "script"))
            i = r_script_end(s, n, i);
        else if (r_in(t.name, raw))
            i = r_raw_end(s, n, i, t.name);
        else if (!strcmp(t.name, "plaintext"))
            break;
    }
}

/* Expected bootstrap position: '<' of the first </head> or </body> end tag. */
static int ref_inject_at(const rtags *tags, size_t *at)
{
    for (size_t k = 0; k < tags->n; k++) {
        const rtag *t = &tags->v[k];
        if (t->kind == CTFL_TAG_END && !t->overflow
            && (!strcmp(t->name, "head") || !strcmp(t->name, "body"))) {
            *at = t->lt;
            return !strcmp(t->name, "head") ? CTFL_INJECT_HEAD : CTFL_INJECT_BODY;
        }
    }
    return CTFL_INJECT_NONE;
}

/* ------------------------------------------------------------------ */
/* Running the rewriter                                                 */

typedef struct {
    char *buf;
    size_t len, cap;
    const char *lo, *hi;      /* the buffer of the feed in progress */
    size_t from_input;        /* bytes emitted straight from that buffer */
    apr_pool_t *pool;         /* for element replacements */
    int wrap;                 /* on_element: 0 keep the element, 1 wrap it in \x01..\x02 */
    unsigned elements;        /* on_element calls */
    unsigned tags_handed;     /* ... that had the page's tags handed over */
    const ctfl_rewriter *rw;
} sink;

/* Totals over every run (the tests print them and check that hand-over happens). */
static unsigned total_elements, total_tags_handed;

/* The tags handed over with an element are exactly those a scan of the
 * element alone finds. */
static void check_handed_tags(sink *k, const char *elem, apr_size_t len)
{
    int n = 0, i = 0;
    const ctfl_tag *tags = ctfl_rewriter_element_tags(k->rw, &n), *t;
    ctfl_scan sc;
    apr_size_t off = 0;
    total_elements++;
    if (!tags)
        return;
    k->tags_handed++;
    total_tags_handed++;
    ctfl_scan_init(&sc);
    while ((t = ctfl_scan_next(&sc, elem, len, &off)) != NULL) {
        const ctfl_tag *h = &tags[i++];
        if (i > n || h->kind != t->kind || h->lt != t->lt || h->end != t->end
            || h->name_hash != t->name_hash || h->name_len != t->name_len
            || h->name_overflow != t->name_overflow || memcmp(h->name, t->name, sizeof(t->name))
            || h->self_closing != t->self_closing || h->foreign != t->foreign
            || h->attrs != t->attrs)
            fail_msg("handed-over tag %d differs from the scan of the element alone: %.*s",
                     i - 1, (int)len, elem);
    }
    assert_int_equal(i, n);
}

static apr_status_t sink_emit(void *ctx, const char *d, apr_size_t n)
{
    sink *k = ctx;
    assert_true(n > 0);
    if (d >= k->lo && d + n <= k->hi)
        k->from_input += n;
    if (k->len + n > k->cap) {
        while (k->len + n > k->cap)
            k->cap = k->cap ? k->cap * 2 : 4096;
        k->buf = realloc(k->buf, k->cap);
        assert_non_null(k->buf);
    }
    memcpy(k->buf + k->len, d, n);
    k->len += n;
    return APR_SUCCESS;
}

/* Dummy marked-element callback: checks what it is given, then keeps the
 * element or wraps it in \x01 ... \x02 so that tests can see its bounds. */
static apr_status_t sink_element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                                 const char **repl, apr_size_t *repl_len)
{
    sink *k = ctx;
    assert_true(len >= tag_len && tag_len >= 3);
    assert_int_equal(elem[0], '<');
    assert_int_equal(elem[tag_len - 1], '>');
    assert_null(*repl);
    k->elements++;
    check_handed_tags(k, elem, len);
    if (k->wrap) {
        char *r = apr_palloc(k->pool, len + 2);
        r[0] = '\x01';
        memcpy(r + 1, elem, len);
        r[len + 1] = '\x02';
        *repl = r;
        *repl_len = len + 2;
    }
    return APR_SUCCESS;
}

typedef struct {
    const char *inject;
    size_t max_tag;
    int elements;             /* 0: no on_element; 1: keep; 2: wrap */
    size_t max_element_bytes;
    unsigned max_elements;
} run_opts;

enum { CH_WHOLE, CH_FIXED, CH_SPLIT, CH_RANDOM };
typedef struct {
    int kind;
    size_t arg;               /* fixed size, split offset or random max */
    uint32_t seed;
} chunking;

static size_t next_chunk(chunking *c, size_t left)
{
    size_t n;
    switch (c->kind) {
    case CH_FIXED: n = c->arg; break;
    case CH_SPLIT: n = c->arg ? c->arg : left; c->arg = 0; break;
    case CH_RANDOM:
        c->seed = c->seed * 1103515245u + 12345u;
        n = 1 + (c->seed >> 8) % c->arg;
        break;
    default: n = left; break;
    }
    return n < left ? n : left;
}

/* Feeds doc in the given chunking; each chunk is a fresh heap copy that is
 * scribbled over after the call, so a pointer kept across calls shows up. */
static void run_ex(const char *doc, size_t n, chunking ch, const run_opts *ro, sink *out,
                   ctfl_rewriter_stats *st)
{
    apr_pool_t *p;
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    size_t off = 0;

    memset(out, 0, sizeof(*out));
    memset(&o, 0, sizeof(o));
    o.emit = sink_emit;
    o.emit_ctx = out;
    o.inject = ro->inject;
    o.inject_len = ro->inject ? strlen(ro->inject) : 0;
    o.max_tag_bytes = ro->max_tag;
    if (ro->elements) {
        o.on_element = sink_element;
        o.element_ctx = out;
        o.max_element_bytes = ro->max_element_bytes;
        o.max_elements = ro->max_elements;
        out->wrap = ro->elements == 2;
    }
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    out->pool = p;
    rw = ctfl_rewriter_create(p, &o);
    out->rw = rw;
    while (off < n) {
        size_t len = next_chunk(&ch, n - off);
        char *copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, doc + off, len);
        out->lo = copy;
        out->hi = copy + len;
        assert_int_equal(ctfl_rewriter_feed(rw, copy, len), APR_SUCCESS);
        memset(copy, 0xA5, len);
        free(copy);
        out->lo = out->hi = NULL;
        off += len;
    }
    assert_int_equal(ctfl_rewriter_finish(rw), APR_SUCCESS);
    if (st)
        *st = *ctfl_rewriter_get_stats(rw);
    apr_pool_destroy(p);
    out->pool = NULL;
}

static void run(const char *doc, size_t n, chunking ch, const char *inject, size_t max_tag,
                sink *out, ctfl_rewriter_stats *st)
{
    run_opts ro = { inject, max_tag, 0, 0, 0 };
    run_ex(doc, n, ch, &ro, out, st);
}

static void expect_bytes(const sink *got, const char *want, size_t wn, const char *what)
{
    if (got->len != wn || (wn && memcmp(got->buf, want, wn) != 0)) {
        size_t i = 0;
        while (i < wn && i < got->len && got->buf[i] == want[i])
            i++;
        print_error("%s: output differs at byte %zu (got %zu bytes, want %zu)\n", what, i,
                    got->len, wn);
        fail();
    }
}

/* Input with `inject` at `at` (or unchanged when where is NONE). */
static char *with_inject(const char *doc, size_t n, int where, size_t at, size_t *wn)
{
    size_t il = strlen(INJ);
    char *w = malloc(n + il + 1);
    assert_non_null(w);
    if (where == CTFL_INJECT_NONE) {
        memcpy(w, doc, n);
        *wn = n;
    } else {
        memcpy(w, doc, at);
        memcpy(w + at, INJ, il);
        memcpy(w + at + il, doc + at, n - at);
        *wn = n + il;
    }
    return w;
}

/* The full check of one document: identity, injection at the reference point,
 * and the same output under every chunking asked for. */
static void check_doc(const char *doc, size_t n, int all_splits, int random_runs,
                      const char *what)
{
    rtags ref = { 0 };
    size_t at = 0, wn;
    int where;
    char *want;
    sink s;
    ctfl_rewriter_stats st;
    chunking whole = { CH_WHOLE, 0, 0 };

    ref_scan(doc, n, &ref);
    where = ref_inject_at(&ref, &at);
    free(ref.v);

    run(doc, n, whole, NULL, 0, &s, &st);
    expect_bytes(&s, doc, n, what);
    /* zero-copy pass-through: only an unfinished tag at EOF comes from the hold */
    assert_true(s.from_input + st.max_held == n);
    assert_int_equal(st.injected, CTFL_INJECT_NONE);
    assert_int_equal(st.bytes_in, n);
    assert_int_equal(st.bytes_out, n);
    free(s.buf);

    want = with_inject(doc, n, where, at, &wn);
    run(doc, n, whole, INJ, 0, &s, &st);
    expect_bytes(&s, want, wn, what);
    assert_int_equal(st.injected, where);
    free(s.buf);

    for (size_t k = 1; all_splits && k < n; k += split_step) {
        chunking c = { CH_SPLIT, k, 0 };
        run(doc, n, c, INJ, 0, &s, &st);
        expect_bytes(&s, want, wn, what);
        assert_int_equal(st.injected, where);
        free(s.buf);
    }
    {
        chunking one = { CH_FIXED, 1, 0 };
        run(doc, n, one, INJ, 0, &s, &st);
        expect_bytes(&s, want, wn, what);
        assert_int_equal(st.injected, where);
        free(s.buf);
    }
    for (int r = 0; r < random_runs; r++) {
        chunking c = { CH_RANDOM, r % 2 ? 13 : 97, 0x5eed0000u + (uint32_t)r };
        run(doc, n, c, INJ, 0, &s, &st);
        expect_bytes(&s, want, wn, what);
        free(s.buf);
    }
    free(want);
}

/* Scanner tag stream == reference tag stream. */
static void check_tags(const char *doc, size_t n, const char *what)
{
    rtags ref = { 0 };
    ctfl_scan sc;
    const ctfl_tag *t;
    size_t off = 0, k = 0;

    ref_scan(doc, n, &ref);
    ctfl_scan_init(&sc);
    while ((t = ctfl_scan_next(&sc, doc, n, &off)) != NULL) {
        if (k >= ref.n) {
            print_error("%s: extra tag <%s> at %llu\n", what, t->name, (unsigned long long)t->lt);
            fail();
        }
        if (t->kind != ref.v[k].kind || t->lt != ref.v[k].lt || t->end != ref.v[k].end
            || t->self_closing != ref.v[k].self_closing || t->name_overflow != ref.v[k].overflow
            || (!t->name_overflow && strcmp(t->name, ref.v[k].name))) {
            print_error("%s: tag %zu: scanner <%s%s>@%llu-%llu, reference <%s%s>@%zu-%zu\n",
                        what, k, t->kind == CTFL_TAG_END ? "/" : "", t->name,
                        (unsigned long long)t->lt, (unsigned long long)t->end,
                        ref.v[k].kind == CTFL_TAG_END ? "/" : "", ref.v[k].name,
                        ref.v[k].lt, ref.v[k].end);
            fail();
        }
        k++;
    }
    if (k != ref.n) {
        print_error("%s: scanner found %zu tags, reference %zu\n", what, k, ref.n);
        fail();
    }
    free(ref.v);
}

/* ------------------------------------------------------------------ */
/* html5lib tree-construction #data sections                            */

typedef void (*doc_fn)(const char *doc, size_t n, const char *what, void *arg);

static size_t for_each_html5lib_doc(apr_pool_t *p, doc_fn fn, void *arg)
{
    const char *dir = apr_pstrcat(p, unit_shared_dir(), "/fixtures/html5lib-tests/tree-construction", NULL);
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t docs = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t flen = 0, nl = strlen(e->d_name);
        char *f, *s;
        int idx = 0;
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".dat"))
            continue;
        f = unit_read_file(p, apr_pstrcat(p, dir, "/", e->d_name, NULL), &flen);
        assert_non_null(f);
        /* memmem, not strstr: some documents contain NUL bytes */
        for (s = f; (s = memmem(s, flen - (size_t)(s - f), "#data\n", 6)) != NULL; idx++) {
            const char *data = s + 6, *stop = data, *fend = f + flen;
            for (;;) {
                stop = memmem(stop, (size_t)(fend - stop), "\n#", 2);
                if (!stop || (size_t)(fend - stop) < 12 || !strncmp(stop, "\n#errors", 8)
                    || !strncmp(stop, "\n#new-errors", 12) || !strncmp(stop, "\n#document", 10)
                    || !strncmp(stop, "\n#script-o", 10))
                    break;
                stop += 2;
            }
            if (!stop)
                stop = fend;
            fn(data, (size_t)(stop - data), apr_psprintf(p, "%s#%d", e->d_name, idx), arg);
            docs++;
            s = (char *)stop;
        }
    }
    closedir(d);
    return docs;
}

static void html5lib_doc(const char *doc, size_t n, const char *what, void *arg)
{
    size_t *bytes = arg;
    *bytes += n;
    check_tags(doc, n, what);
    check_doc(doc, n, 1, 2, what);
}

static void test_html5lib_documents(void **state)
{
    size_t bytes = 0;
    size_t docs = for_each_html5lib_doc(*state, html5lib_doc, &bytes);
    print_message("html5lib: %zu documents, %zu bytes\n", docs, bytes);
    assert_true(docs >= 1776);
}

/* Tags over max_tag_bytes pass through: identical under every chunking, one
 * caps_hit each, never more than max_tag_bytes held. */
static void capped_doc(const char *doc, size_t n, const char *what, void *arg)
{
    const size_t cap = 6;
    sink base, s;
    ctfl_rewriter_stats bst, st;
    chunking whole = { CH_WHOLE, 0, 0 };
    (void)arg;
    run(doc, n, whole, INJ, cap, &base, &bst);
    for (size_t k = 1; k < n; k += (1 + k / 16) * split_step) {
        chunking c = { CH_SPLIT, k, 0 };
        run(doc, n, c, INJ, cap, &s, &st);
        expect_bytes(&s, base.buf, base.len, what);
        assert_int_equal(st.caps_hit, bst.caps_hit);
        assert_int_equal(st.injected, bst.injected);
        assert_true(st.max_held <= cap);
        free(s.buf);
    }
    {
        chunking one = { CH_FIXED, 1, 0 };
        run(doc, n, one, INJ, cap, &s, &st);
        expect_bytes(&s, base.buf, base.len, what);
        assert_int_equal(st.caps_hit, bst.caps_hit);
        assert_true(st.max_held <= cap);
        free(s.buf);
    }
    free(base.buf);
}

static void test_html5lib_with_small_cap(void **state)
{
    assert_true(for_each_html5lib_doc(*state, capped_doc, NULL) > 1500);
}

/* ------------------------------------------------------------------ */
/* Corpus pages                                                        */

static void test_corpus_pages(void **state)
{
    static const char *const pages[] = { "page-20k.html", "page-150k.html", "page-1m.html" };
    apr_pool_t *p = *state;
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]) && i < corpus_pages; i++) {
        size_t n = 0, at = 0, wn;
        const char *path = apr_pstrcat(p, unit_shared_dir(), "/bench/corpus/", pages[i], NULL);
        char *doc = unit_read_file(p, path, &n), *want;
        rtags ref = { 0 };
        int where;
        sink s;
        ctfl_rewriter_stats st;
        static const size_t sizes[] = { 1, 7, 64, 8192 };

        assert_non_null(doc);
        /* identity + injection + 1-byte + random chunkings, every split for the 20k page */
        check_doc(doc, n, i == 0, 10, pages[i]);
        check_tags(doc, n, pages[i]);

        ref_scan(doc, n, &ref);
        where = ref_inject_at(&ref, &at);
        assert_int_equal(where, CTFL_INJECT_HEAD);     /* the corpus pages have a head */
        print_message("%s: %zu bytes, %zu tags, </head> at %zu\n", pages[i], n, ref.n, at);
        free(ref.v);
        want = with_inject(doc, n, where, at, &wn);
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            chunking c = { CH_FIXED, sizes[k], 0 };
            run(doc, n, c, INJ, 0, &s, &st);
            expect_bytes(&s, want, wn, pages[i]);
            /* everything but held tags and the bootstrap is passed zero-copy */
            assert_true(s.from_input + st.max_held * (n / sizes[k] + 1) + strlen(INJ) >= wn);
            assert_true(st.max_held < 4096);
            free(s.buf);
        }
        free(want);
    }
}

/* ------------------------------------------------------------------ */
/* Hand-written tricky pages                                            */

typedef struct {
    const char *in;
    const char *out;          /* "@" marks where INJ goes; NULL: no injection */
} tricky;

static const tricky tricky_pages[] = {
    { "<html><head><title>t</title></head><body></body></html>",
      "<html><head><title>t</title>@</head><body></body></html>" },
    { "<head><!-- </head> --></head>", "<head><!-- </head> -->@</head>" },
    { "<head><!--></head>", "<head><!-->@</head>" },
    { "<head><!---></head>", "<head><!--->@</head>" },
    { "<head><!-- a --!></head>", "<head><!-- a --!>@</head>" },
    { "<head><!-- a --!> </head> -->", "<head><!-- a --!> @</head> -->" },
    { "<head><!-- a -- > </head> --></head>", "<head><!-- a -- > </head> -->@</head>" },
    { "<head><script>var s='</head>';</script></head>",
      "<head><script>var s='</head>';</script>@</head>" },
    { "<head><script>a</scriptx></head></script></head>",
      "<head><script>a</scriptx></head></script>@</head>" },
    { "<head><script>x</SCRIPT \n>y</head>", "<head><script>x</SCRIPT \n>y@</head>" },
    { "<head><script><!-- <script></head></script> --></script></head>",
      "<head><script><!-- <script></head></script> --></script>@</head>" },
    { "<head><script><!-- </script></head>", "<head><script><!-- </script>@</head>" },
    { "<head><script><!--></script></head>", "<head><script><!--></script>@</head>" },
    { "<script><!-- --> <script></script></head>", "<script><!-- --> <script></script>@</head>" },
    { "<script><!-- <script> --> <script></script></head>",
      "<script><!-- <script> --> <script></script>@</head>" },
    { "<head><style>/* </head> */</style></head>", "<head><style>/* </head> */</style>@</head>" },
    { "<head><noscript></head></noscript></head>", "<head><noscript></head></noscript>@</head>" },
    { "<xmp></head></xmp><iframe></head></iframe><noembed></head></noembed></head>",
      "<xmp></head></xmp><iframe></head></iframe><noembed></head></noembed>@</head>" },
    { "<noframes></head></noframes></body>", "<noframes></head></noframes>@</body>" },
    { "<head><title></head></title></head>", "<head><title></head></title>@</head>" },
    { "<body><textarea></head></body></textarea></body>",
      "<body><textarea></head></body></textarea>@</body>" },
    { "<head><meta content=\"a>b</head>\"></head>", "<head><meta content=\"a>b</head>\">@</head>" },
    { "<head><link title='x</head>'></head>", "<head><link title='x</head>'>@</head>" },
    { "<head><a href=x></head>", "<head><a href=x>@</head>" },
    { "<head><title>a</title x=\"</head>\"></head>", "<head><title>a</title x=\"</head>\">@</head>" },
    { "<HEAD></HEAD>", "<HEAD>@</HEAD>" },
    { "<head></head >", "<head>@</head >" },
    { "<head></Head\n>", "<head>@</Head\n>" },
    { "<head></head/>", "<head>@</head/>" },
    { "<head></head x='>'>", "<head>@</head x='>'>" },
    { "<header></header></head>", "<header></header>@</head>" },
    { "<head></head", NULL },
    { "<head></head x='>", NULL },
    { "<div>fragment</div><span>x</span>", NULL },
    { "", NULL },
    { "<p>x</p></body></html>", "<p>x</p>@</body></html>" },
    { "<p>x</p></BODY>", "<p>x</p>@</BODY>" },
    { "</body></head>", "@</body></head>" },
    { "<head></head></head></body>", "<head>@</head></head></body>" },
    { "<plaintext></head></body>", NULL },
    { "<![CDATA[ </head> ]]></head>", "<![CDATA[ </head> ]]>@</head>" },
    { "<svg><![CDATA[ a > </head> ]]></svg></head>", "<svg><![CDATA[ a > </head> ]]></svg>@</head>" },
    { "<![CDATA[ a > </head> ]]></head>", "<![CDATA[ a > @</head> ]]></head>" },
    { "<svg><title></title><style></head>", "<svg><title></title><style>@</head>" },
    { "<svg><p><style></head></style></head>", "<svg><p><style></head></style>@</head>" },
    { "<!DOCTYPE html PUBLIC \"a>b\"></head>", "<!DOCTYPE html PUBLIC \"a>b\">@</head>" },
    { "<?php echo \"</head>\"; ?></head>", "<?php echo \"</head>\"; ?>@</head>" },
    { "< /head></ head></head>", "< /head></ head>@</head>" },
    { "</></head>", "</>@</head>" },
    { "<a title=\"x\" / ></head>", "<a title=\"x\" / >@</head>" },
};

static void test_tricky_pages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tricky_pages) / sizeof(tricky_pages[0]); i++) {
        const tricky *t = &tricky_pages[i];
        size_t n = strlen(t->in), wn;
        char *want;
        sink s;
        ctfl_rewriter_stats st;
        chunking whole = { CH_WHOLE, 0, 0 };
        const char *at = t->out ? strchr(t->out, '@') : NULL;

        want = with_inject(t->in, n, at ? 1 : CTFL_INJECT_NONE, at ? (size_t)(at - t->out) : 0, &wn);
        run(t->in, n, whole, INJ, 0, &s, &st);
        expect_bytes(&s, want, wn, t->in);
        assert_int_equal(st.injected != CTFL_INJECT_NONE, at != NULL);
        if (at)
            assert_int_equal(st.injected, strncasecmp(at + 1, "</head", 6) == 0
                                          ? CTFL_INJECT_HEAD : CTFL_INJECT_BODY);
        free(s.buf);
        free(want);
        check_doc(t->in, n, 1, 4, t->in);          /* the reference agrees too */
    }
    {   /* NUL and invalid UTF-8 bytes pass through */
        static const char doc[] = "<head>\xEF\xBB\xBF\x00\xFF<a\x00" "b c=\x00>\x00</head>";
        size_t n = sizeof(doc) - 1;
        static const char want_prefix[] = "<head>\xEF\xBB\xBF\x00\xFF<a\x00" "b c=\x00>\x00";
        sink s;
        chunking whole = { CH_WHOLE, 0, 0 };
        run(doc, n, whole, INJ, 0, &s, NULL);
        assert_int_equal(s.len, n + strlen(INJ));
        assert_memory_equal(s.buf, want_prefix, sizeof(want_prefix) - 1);
        assert_memory_equal(s.buf + sizeof(want_prefix) - 1, INJ, strlen(INJ));
        free(s.buf);
        check_doc(doc, n, 1, 4, "nul");
    }
}

/* Only an unfinished tag is held: text and finished tags go out at once. */
static void test_holds_only_unfinished_tags(void **state)
{
    apr_pool_t *p = *state;
    sink s;
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    const ctfl_rewriter_stats *st;

    memset(&s, 0, sizeof(s));
    memset(&o, 0, sizeof(o));
    o.emit = sink_emit;
    o.emit_ctx = &s;
    o.inject = INJ;
    o.inject_len = strlen(INJ);
    rw = ctfl_rewriter_create(p, &o);

    assert_int_equal(ctfl_rewriter_feed(rw, "<p>hello</p> wor", 16), APR_SUCCESS);
    assert_int_equal(s.len, 16);
    assert_int_equal(ctfl_rewriter_feed(rw, "ld <a href=\"x>", 14), APR_SUCCESS);
    assert_int_equal(s.len, 19);                   /* "<a href=\"x>" held */
    assert_int_equal(ctfl_rewriter_feed(rw, "y\">", 3), APR_SUCCESS);
    assert_int_equal(s.len, 33);
    assert_int_equal(ctfl_rewriter_feed(rw, "<script>a<", 10), APR_SUCCESS);
    assert_int_equal(s.len, 42);                   /* "<" in script may start </script> */
    assert_int_equal(ctfl_rewriter_feed(rw, "b</script></", 12), APR_SUCCESS);
    assert_int_equal(s.len, 53);
    assert_int_equal(ctfl_rewriter_feed(rw, "head>", 5), APR_SUCCESS);
    assert_int_equal(s.len, 60 + strlen(INJ));
    assert_memory_equal(s.buf + 53, INJ, strlen(INJ));
    assert_int_equal(ctfl_rewriter_feed(rw, "<!-- </bo", 9), APR_SUCCESS);
    assert_int_equal(s.len, 69 + strlen(INJ));     /* comments are never held */
    assert_int_equal(ctfl_rewriter_feed(rw, "dy> -->", 7), APR_SUCCESS);
    assert_int_equal(s.len, 76 + strlen(INJ));
    assert_int_equal(ctfl_rewriter_feed(rw, "<b", 2), APR_SUCCESS);
    assert_int_equal(s.len, 76 + strlen(INJ));
    assert_int_equal(ctfl_rewriter_finish(rw), APR_SUCCESS);
    assert_int_equal(s.len, 78 + strlen(INJ));
    st = ctfl_rewriter_get_stats(rw);
    assert_int_equal(st->bytes_in, 78);
    assert_int_equal(st->bytes_out, 78 + strlen(INJ));
    assert_int_equal(st->max_held, 11);
    assert_int_equal(st->injected, CTFL_INJECT_HEAD);
    free(s.buf);
}

static void test_cap(void **state)
{
    apr_pool_t *p = *state;
    char *doc = apr_palloc(p, 200);
    sink s;
    ctfl_rewriter_stats st;
    chunking c3 = { CH_FIXED, 3, 0 }, whole = { CH_WHOLE, 0, 0 };
    size_t n;

    /* a 60-byte </head ...> over a 32-byte cap is not acted on; </body> takes over */
    n = (size_t)sprintf(doc, "<head></head title='%s'><body></body>",
                        "0123456789012345678901234567890123456789");
    run(doc, n, c3, INJ, 32, &s, &st);
    assert_int_equal(st.caps_hit, 1);
    assert_int_equal(st.injected, CTFL_INJECT_BODY);
    assert_true(st.max_held <= 32);
    assert_int_equal(s.len, n + strlen(INJ));
    free(s.buf);
    run(doc, n, whole, INJ, 32, &s, &st);
    assert_int_equal(st.caps_hit, 1);
    assert_int_equal(st.injected, CTFL_INJECT_BODY);
    free(s.buf);
    /* the same tag under the default cap is the injection point */
    run(doc, n, c3, INJ, 0, &s, &st);
    assert_int_equal(st.caps_hit, 0);
    assert_int_equal(st.injected, CTFL_INJECT_HEAD);
    assert_memory_equal(s.buf + 6, INJ, strlen(INJ));
    free(s.buf);
    /* an unfinished long tag at EOF is counted once and passed through */
    n = (size_t)sprintf(doc, "<a title='%s", "0123456789012345678901234567890123456789");
    run(doc, n, c3, INJ, 16, &s, &st);
    assert_int_equal(st.caps_hit, 1);
    expect_bytes(&s, doc, n, "cap eof");
    free(s.buf);
}

static apr_status_t failing_emit(void *ctx, const char *d, apr_size_t n)
{
    int *calls = ctx;
    (void)d;
    (void)n;
    return ++*calls >= 2 ? APR_EGENERAL : APR_SUCCESS;
}

static void test_emit_error_and_misuse(void **state)
{
    apr_pool_t *p = *state;
    int calls = 0;
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    sink s;

    memset(&o, 0, sizeof(o));
    o.emit = failing_emit;
    o.emit_ctx = &calls;
    o.inject = INJ;
    o.inject_len = strlen(INJ);
    rw = ctfl_rewriter_create(p, &o);
    assert_int_equal(ctfl_rewriter_feed(rw, "<head>x", 7), APR_SUCCESS);
    assert_int_equal(ctfl_rewriter_feed(rw, "</head>", 7), APR_EGENERAL);
    assert_int_equal(ctfl_rewriter_feed(rw, "more", 4), APR_EGENERAL);
    assert_int_equal(ctfl_rewriter_finish(rw), APR_EGENERAL);

    memset(&s, 0, sizeof(s));
    o.emit = sink_emit;
    o.emit_ctx = &s;
    rw = ctfl_rewriter_create(p, &o);
    assert_int_equal(ctfl_rewriter_feed(rw, "", 0), APR_SUCCESS);
    assert_int_equal(ctfl_rewriter_feed(rw, "<a", 2), APR_SUCCESS);
    assert_int_equal(ctfl_rewriter_finish(rw), APR_SUCCESS);
    assert_int_equal(ctfl_rewriter_finish(rw), APR_SUCCESS);
    assert_int_not_equal(ctfl_rewriter_feed(rw, "x", 1), APR_SUCCESS);
    assert_int_equal(s.len, 2);
    free(s.buf);
}

/* ------------------------------------------------------------------ */
/* Marked elements (on_element)                                         */

typedef struct {
    unsigned elements, over_bytes, unclosed, malformed, over_count;
} elem_counts;

static elem_counts counts_of(const ctfl_rewriter_stats *st)
{
    elem_counts c = { st->elements, st->elements_over_bytes, st->elements_unclosed,
                      st->elements_malformed, st->elements_over_count };
    return c;
}

static void expect_counts(elem_counts got, elem_counts want, const char *what)
{
    if (memcmp(&got, &want, sizeof(got))) {
        print_error("%s: elements %u/%u over_bytes %u/%u unclosed %u/%u malformed %u/%u "
                    "over_count %u/%u (got/want)\n", what, got.elements, want.elements,
                    got.over_bytes, want.over_bytes, got.unclosed, want.unclosed,
                    got.malformed, want.malformed, got.over_count, want.over_count);
        fail();
    }
}

/* Output of run_ex under the whole-document feed, every 2-way split (or every
 * `step`-th), 1-byte and a few random chunkings: all must be `want`. */
static void check_elements(const char *doc, size_t n, const run_opts *ro, const char *want,
                           size_t wn, elem_counts counts, size_t step, const char *what)
{
    sink s;
    ctfl_rewriter_stats st;
    chunking whole = { CH_WHOLE, 0, 0 }, one = { CH_FIXED, 1, 0 };

    run_ex(doc, n, whole, ro, &s, &st);
    expect_bytes(&s, want, wn, what);
    expect_counts(counts_of(&st), counts, what);
    assert_int_equal(s.elements, counts.elements);
    free(s.buf);
    run_ex(doc, n, one, ro, &s, &st);
    expect_bytes(&s, want, wn, what);
    expect_counts(counts_of(&st), counts, what);
    free(s.buf);
    for (size_t k = 1; k < n; k += step * split_step) {
        chunking c = { CH_SPLIT, k, 0 };
        run_ex(doc, n, c, ro, &s, &st);
        expect_bytes(&s, want, wn, what);
        expect_counts(counts_of(&st), counts, what);
        free(s.buf);
    }
    for (uint32_t r = 0; r < 3; r++) {
        chunking c = { CH_RANDOM, 5 + 20 * r, 77 + r };
        run_ex(doc, n, c, ro, &s, &st);
        expect_bytes(&s, want, wn, what);
        expect_counts(counts_of(&st), counts, what);
        free(s.buf);
    }
}

typedef struct {
    const char *in;
    const char *out;          /* '{' '}' mark the element handed to on_element */
    elem_counts counts;
} elem_case;

#define M "data-ctfl-entry-id=x"
static const elem_case elem_cases[] = {
    { "<div data-ctfl-baseline-id=\"b1\" class=x>old <b>bold</b></div>z",
      "{<div data-ctfl-baseline-id=\"b1\" class=x>old <b>bold</b></div>}z", { 1, 0, 0, 0, 0 } },
    { "<DIV DATA-CTFL-ENTRY-ID='a'>x</DIV >z", "{<DIV DATA-CTFL-ENTRY-ID='a'>x</DIV >}z", { 1, 0, 0, 0, 0 } },
    { "<div data-ctfl-baseline-id=a><div " M ">in</div>out</div><p " M ">2</p>",
      "{<div data-ctfl-baseline-id=a><div " M ">in</div>out</div>}{<p " M ">2</p>}", { 2, 0, 0, 0, 0 } },
    { "<div " M " title=\"</div>\"><script>'</div>'</script><!-- </div> --><textarea></div></textarea></div>.",
      "{<div " M " title=\"</div>\"><script>'</div>'</script><!-- </div> --><textarea></div></textarea></div>}.",
      { 1, 0, 0, 0, 0 } },
    { "<div " M "><template data-ctfl-variant-id=v><p>x</template></div>",
      "{<div " M "><template data-ctfl-variant-id=v><p>x</template></div>}", { 1, 0, 0, 0, 0 } },
    /* implied end tags */
    { "<ul><li " M ">one<li>two</ul>", "<ul>{<li " M ">one}<li>two</ul>", { 1, 0, 0, 0, 0 } },
    { "<ul><li " M ">one</ul>", "<ul>{<li " M ">one}</ul>", { 1, 0, 0, 0, 0 } },
    { "<li " M ">x<div><li>y", "{<li " M ">x<div>}<li>y", { 1, 0, 0, 0, 0 } },
    { "<li " M ">x<ul><li>y</ul>z</li>", "{<li " M ">x<ul><li>y</ul>z</li>}", { 1, 0, 0, 0, 0 } },
    { "<p " M ">x<div>y</div>", "{<p " M ">x}<div>y</div>", { 1, 0, 0, 0, 0 } },
    { "<p " M ">x<p>y", "{<p " M ">x}<p>y", { 1, 0, 0, 0, 0 } },
    { "<p " M ">x</p>y", "{<p " M ">x</p>}y", { 1, 0, 0, 0, 0 } },
    { "<p " M ">x<span>y</p>z", "{<p " M ">x<span>y</p>}z", { 1, 0, 0, 0, 0 } },
    { "<dl><dt " M ">t<dd>d</dl>", "<dl>{<dt " M ">t}<dd>d</dl>", { 1, 0, 0, 0, 0 } },
    { "<dl><dd " M ">t<dt>d</dl>", "<dl>{<dd " M ">t}<dt>d</dl>", { 1, 0, 0, 0, 0 } },
    { "<table><tr><td " M ">1<td>2</table>", "<table><tr>{<td " M ">1}<td>2</table>", { 1, 0, 0, 0, 0 } },
    { "<table><tr><td " M ">1</table>", "<table><tr>{<td " M ">1}</table>", { 1, 0, 0, 0, 0 } },
    { "<table><tr " M "><td>1<tr><td>2</table>", "<table>{<tr " M "><td>1}<tr><td>2</table>", { 1, 0, 0, 0, 0 } },
    { "<table><tbody " M "><tr><td>1<tbody><tr><td>2</table>",
      "<table>{<tbody " M "><tr><td>1}<tbody><tr><td>2</table>", { 1, 0, 0, 0, 0 } },
    { "<table><tr><td><div " M ">a</td><td>b</table>",
      "<table><tr><td>{<div " M ">a}</td><td>b</table>", { 1, 0, 0, 0, 0 } },
    { "<div><table><tr><td " M ">a</div>b</td></table>",
      "<div><table><tr>{<td " M ">a</div>b</td>}</table>", { 1, 0, 0, 0, 0 } },
    { "<select><option " M ">1<option>2</select>", "<select>{<option " M ">1}<option>2</select>", { 1, 0, 0, 0, 0 } },
    { "<select><option " M ">1<optgroup>2</select>", "<select>{<option " M ">1}<optgroup>2</select>", { 1, 0, 0, 0, 0 } },
    { "<h1 " M ">t<h2>u</h2>", "{<h1 " M ">t}<h2>u</h2>", { 1, 0, 0, 0, 0 } },
    { "<h1 " M ">t</h2>u", "{<h1 " M ">t</h2>}u", { 1, 0, 0, 0, 0 } },
    { "<button " M ">x<button>y", "{<button " M ">x}<button>y", { 1, 0, 0, 0, 0 } },
    { "<a " M " href=1>x<a href=2>y</a>", "{<a " M " href=1>x}<a href=2>y</a>", { 1, 0, 0, 0, 0 } },
    /* ancestor end tags, stray end tags */
    { "<div><span " M ">b</div>c", "<div>{<span " M ">b}</div>c", { 1, 0, 0, 0, 0 } },
    { "<span>a<div " M ">b</span>c</div>d", "<span>a{<div " M ">b</span>c</div>}d", { 1, 0, 0, 0, 0 } },
    { "<div " M ">a</p>b</li>c</div>", "{<div " M ">a</p>b</li>c</div>}", { 1, 0, 0, 0, 0 } },
    { "<b><span " M ">y</b>z", "<b>{<span " M ">y}</b>z", { 1, 0, 0, 0, 0 } },
    { "<div " M "><b>y</div>z", "{<div " M "><b>y</div>}z", { 1, 0, 0, 0, 0 } },
    /* void, self-closing, foreign */
    { "<img " M " src=x>after", "{<img " M " src=x>}after", { 1, 0, 0, 0, 0 } },
    { "<p>a<br " M "/>b", "<p>a{<br " M "/>}b", { 1, 0, 0, 0, 0 } },
    { "<div " M "/>after</div>z", "{<div " M "/>after</div>}z", { 1, 0, 0, 0, 0 } },
    { "<svg><rect " M " /><g " M "><c/></g></svg>", "<svg>{<rect " M " />}{<g " M "><c/></g>}</svg>",
      { 2, 0, 0, 0, 0 } },
    { "<svg><g " M "><p>x", "<svg>{<g " M ">}<p>x", { 1, 0, 0, 0, 0 } },
    { "<svg " M " viewBox='0 0 1 1'><path d=x /></svg>!", "{<svg " M " viewBox='0 0 1 1'><path d=x /></svg>}!",
      { 1, 0, 0, 0, 0 } },
    { "<math " M "><mi>x</mi></math>", "{<math " M "><mi>x</mi></math>}", { 1, 0, 0, 0, 0 } },
    { "<svg><foreignObject><div " M ">a</div></foreignObject></svg>",
      "<svg><foreignObject>{<div " M ">a</div>}</foreignObject></svg>", { 1, 0, 0, 0, 0 } },
    /* passed through unchanged, and counted */
    { "<div " M ">x", "<div " M ">x", { 0, 0, 1, 0, 0 } },
    { "<div " M ">x</body>y</div>", "<div " M ">x</body>y</div>", { 0, 0, 0, 1, 0 } },
    { "<b><div " M ">y</b>z</div>", "<b><div " M ">y</b>z</div>", { 0, 0, 0, 1, 0 } },
    { "<a " M "><div>y</a>z</div>", "<a " M "><div>y</a>z</div>", { 0, 0, 0, 1, 0 } },
    { "<p " M ">x<table><tr><td>1</table>", "<p " M ">x<table><tr><td>1</table>", { 0, 0, 0, 1, 0 } },
    { "<div " M ">a<div " M ">b</div></div><p " M ">c</p>",
      "{<div " M ">a<div " M ">b</div></div>}{<p " M ">c</p>}", { 2, 0, 0, 0, 0 } },
    { "<html " M "><body " M ">", "<html " M "><body " M ">", { 0, 0, 1, 0, 0 } },
    { "<body><body " M ">x", "<body><body " M ">x", { 0, 0, 0, 1, 0 } },
    /* custom flags apply anywhere: flag elements are collected like marked ones */
    { "<p data-ctfl-flag=k>x</p><div DATA-CTFL-FLAG-IF='k'><b>y</b></div>z",
      "{<p data-ctfl-flag=k>x</p>}{<div DATA-CTFL-FLAG-IF='k'><b>y</b></div>}z", { 2, 0, 0, 0, 0 } },
    { "<div data-ctfl-flag-if=a><span data-ctfl-flag=b>x</span><p " M ">y</p></div><i data-ctfl-flag>z</i>",
      "{<div data-ctfl-flag-if=a><span data-ctfl-flag=b>x</span><p " M ">y</p></div>}{<i data-ctfl-flag>z</i>}",
      { 2, 0, 0, 0, 0 } },
    { "<div " M "><i data-ctfl-flag=k>x</i></div><ul><li data-ctfl-flag-if=k>one<li>two</ul>",
      "{<div " M "><i data-ctfl-flag=k>x</i></div>}<ul>{<li data-ctfl-flag-if=k>one}<li>two</ul>",
      { 2, 0, 0, 0, 0 } },
    { "<head><title data-ctfl-flag=t>a</title></head><img data-ctfl-flag-if=k src=x>",
      "<head>{<title data-ctfl-flag=t>a</title>}</head>{<img data-ctfl-flag-if=k src=x>}", { 2, 0, 0, 0, 0 } },
    { "<p data-ctfl-flags=k>x</p><p data-ctfl-flag-i=k>y</p><p data-ctfl-field=f>z</p>"
      "<!-- <p data-ctfl-flag=k> --><script>'<p data-ctfl-flag=k>'</script>",
      "<p data-ctfl-flags=k>x</p><p data-ctfl-flag-i=k>y</p><p data-ctfl-field=f>z</p>"
      "<!-- <p data-ctfl-flag=k> --><script>'<p data-ctfl-flag=k>'</script>", { 0, 0, 0, 0, 0 } },
    { "<div data-ctfl-flag=k>x", "<div data-ctfl-flag=k>x", { 0, 0, 1, 0, 0 } },
};
#undef M

/* '{' and '}' to the \x01 / \x02 the wrapping callback writes */
static char *marks_to_bytes(const char *s, size_t *n)
{
    char *o = strdup(s);
    assert_non_null(o);
    for (char *c = o; *c; c++)
        *c = *c == '{' ? '\x01' : *c == '}' ? '\x02' : *c;
    *n = strlen(o);
    return o;
}

static void test_element_bounds(void **state)
{
    (void)state;
    assert_true(ctfl_rewrite_elem_table_ok());
    for (size_t i = 0; i < sizeof(elem_cases) / sizeof(elem_cases[0]); i++) {
        const elem_case *c = &elem_cases[i];
        size_t n = strlen(c->in), wn;
        char *want = marks_to_bytes(c->out, &wn);
        run_opts wrap = { NULL, 0, 2, 0, 0 }, keep = { NULL, 0, 1, 0, 0 };
        check_elements(c->in, n, &wrap, want, wn, c->counts, 1, c->in);
        check_elements(c->in, n, &keep, c->in, n, c->counts, 1, c->in);
        free(want);
    }
}

/* Caps: element bytes, element count, and a start tag over max_tag_bytes. */
static void test_element_caps(void **state)
{
    char doc[400];
    size_t n, wn;
    char *want;
    run_opts ro = { NULL, 0, 2, 40, 0 };
    elem_counts c1 = { 1, 1, 0, 0, 0 }, c2 = { 2, 0, 0, 0, 1 }, c3 = { 0, 1, 0, 0, 0 };
    (void)state;

    n = (size_t)sprintf(doc, "<div data-ctfl-entry-id=a>0123456789012345678901234567890123456789</div>"
                             "<p data-ctfl-entry-id=b>ok</p>");
    want = marks_to_bytes("<div data-ctfl-entry-id=a>0123456789012345678901234567890123456789</div>"
                          "{<p data-ctfl-entry-id=b>ok</p>}", &wn);
    check_elements(doc, n, &ro, want, wn, c1, 1, "max_element_bytes");
    free(want);

    ro.max_element_bytes = 0;
    ro.max_elements = 2;
    n = (size_t)sprintf(doc, "<i data-ctfl-entry-id=1>a</i><i data-ctfl-entry-id=2>b</i><i data-ctfl-entry-id=3>c</i>");
    want = marks_to_bytes("{<i data-ctfl-entry-id=1>a</i>}{<i data-ctfl-entry-id=2>b</i>}<i data-ctfl-entry-id=3>c</i>", &wn);
    check_elements(doc, n, &ro, want, wn, c2, 1, "max_elements");
    free(want);

    /* the element ends where a long unfinished tag starts: its own length counts */
    ro.max_elements = 0;
    ro.max_element_bytes = 40;
    n = (size_t)sprintf(doc, "<ul><li data-ctfl-entry-id=a>short<li title=\"%s\">x</ul>",
                        "0123456789012345678901234567890123456789012345678901234567890123456789");
    want = malloc(sizeof(doc) + 2);
    assert_non_null(want);
    wn = (size_t)sprintf(want, "<ul>\x01<li data-ctfl-entry-id=a>short\x02%s", doc + 34);
    {
        elem_counts c4 = { 1, 0, 0, 0, 0 };
        check_elements(doc, n, &ro, want, wn, c4, 1, "element ended by a long tag");
    }
    free(want);
    /* a tag over max_tag_bytes inside the element: it passes through */
    ro.max_element_bytes = 0;
    ro.max_tag = 20;
    n = (size_t)sprintf(doc, "<div data-ctfl-entry-id=a><span title=\"long long long\">x</span></div>");
    check_elements(doc, n, &ro, doc, n, c3, 1, "long tag inside the element");

    ro.max_tag = 20;
    n = (size_t)sprintf(doc, "<div data-ctfl-entry-id=long-enough>x</div>");
    check_elements(doc, n, &ro, doc, n, c3, 1, "start tag over max_tag_bytes");
}

/* The bootstrap still goes in when a marked element is open at </body>. */
static void test_elements_and_inject(void **state)
{
    static const char doc[] = "<head></head><body><div data-ctfl-entry-id=x><p>a</div>"
                              "<div data-ctfl-entry-id=y>b</body></html>";
    run_opts ro = { INJ, 0, 2, 0, 0 };
    elem_counts c = { 1, 0, 0, 1, 0 };
    size_t wn;
    char *want = marks_to_bytes("<head>@</head><body>{<div data-ctfl-entry-id=x><p>a</div>}"
                                "<div data-ctfl-entry-id=y>b</body></html>", &wn);
    char *at = strchr(want, '@');
    char *full = malloc(wn + strlen(INJ));
    (void)state;
    assert_non_null(full);
    memcpy(full, want, (size_t)(at - want));
    memcpy(full + (at - want), INJ, strlen(INJ));
    memcpy(full + (at - want) + strlen(INJ), at + 1, wn - (size_t)(at - want) - 1);
    check_elements(doc, sizeof(doc) - 1, &ro, full, wn - 1 + strlen(INJ), c, 1, "inject+elements");
    free(full);
    free(want);
    {   /* "</head\0b>" is not </head> (a NUL is part of the name): neither the tree nor
         * the bootstrap takes it for one, whatever the chunking (found by fuzz_rewrite) */
        static const char nul_doc[] = "<head><p data-ctfl-entry-id=x>a</head\0b>c</p></head>";
        static const char nul_want[] = "<head>\x01<p data-ctfl-entry-id=x>a</head\0b>c</p>\x02"
                                       INJ "</head>";
        elem_counts one = { 1, 0, 0, 0, 0 };
        check_elements(nul_doc, sizeof(nul_doc) - 1, &ro, nul_want, sizeof(nul_want) - 1, one, 1,
                       "NUL in an end tag name");
    }
}

static apr_status_t failing_element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                                    const char **repl, apr_size_t *repl_len)
{
    (void)ctx; (void)elem; (void)len; (void)tag_len; (void)repl; (void)repl_len;
    return APR_EINVAL;
}

static void test_element_callback_error(void **state)
{
    apr_pool_t *p = *state;
    sink s;
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    memset(&s, 0, sizeof(s));
    memset(&o, 0, sizeof(o));
    o.emit = sink_emit;
    o.emit_ctx = &s;
    o.on_element = failing_element;
    rw = ctfl_rewriter_create(p, &o);
    assert_int_equal(ctfl_rewriter_feed(rw, "<p data-ctfl-entry-id=", 22), APR_SUCCESS);
    assert_int_equal(ctfl_rewriter_feed(rw, "a>x</p>", 7), APR_EINVAL);
    assert_int_equal(ctfl_rewriter_finish(rw), APR_EINVAL);
    free(s.buf);
}

/* ---- ctfl_rewriter_replay: the tags of a scan, without the bytes ---- */

static unsigned total_replayed;   /* elements handed over by check_replay's runs */

typedef struct {
    const ctfl_rewriter *rw;
    const char *base;           /* the bytes fed, NULL when replayed */
    apr_array_header_t *spans;  /* of uint64_t pairs: offset, length */
} span_sink;

static apr_status_t span_emit(void *ctx, const char *d, apr_size_t n)
{
    (void)ctx;
    (void)d;
    (void)n;
    return APR_SUCCESS;
}

static apr_status_t span_element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                                 const char **repl, apr_size_t *repl_len)
{
    span_sink *k = ctx;
    uint64_t at = ctfl_rewriter_element_offset(k->rw);
    (void)tag_len;
    (void)repl;
    (void)repl_len;
    if (k->base)
        assert_true(elem == k->base + at);
    else
        assert_null(elem);
    APR_ARRAY_PUSH(k->spans, uint64_t) = at;
    APR_ARRAY_PUSH(k->spans, uint64_t) = len;
    return APR_SUCCESS;
}

static ctfl_rewriter_stats spans_of(apr_pool_t *p, const char *doc, size_t n,
                                    const ctfl_tag *tags, int ntags, apr_array_header_t **spans)
{
    span_sink k = { NULL, tags ? NULL : doc, apr_array_make(p, 16, sizeof(uint64_t)) };
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    memset(&o, 0, sizeof(o));
    o.emit = span_emit;
    o.on_element = span_element;
    o.element_ctx = &k;
    rw = ctfl_rewriter_create(p, &o);
    k.rw = rw;
    if (tags)
        assert_int_equal(ctfl_rewriter_replay(rw, tags, ntags, n), APR_SUCCESS);
    else
        assert_int_equal(ctfl_rewriter_feed(rw, doc, n), APR_SUCCESS);
    assert_int_equal(ctfl_rewriter_finish(rw), APR_SUCCESS);
    *spans = k.spans;
    return *ctfl_rewriter_get_stats(rw);
}

/* Replaying a document's tags hands over the same elements, with the same
 * stats, as feeding its bytes. Returns the elements handed over. */
static unsigned check_replay(const char *doc, size_t n, const char *what)
{
    apr_pool_t *p;
    apr_array_header_t *tags, *fed, *replayed;
    ctfl_rewriter_stats a, b;
    ctfl_scan sc;
    size_t off = 0;
    const ctfl_tag *t;

    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    tags = apr_array_make(p, 64, sizeof(ctfl_tag));
    ctfl_scan_init(&sc);
    while ((t = ctfl_scan_next(&sc, doc, n, &off)) != NULL)
        APR_ARRAY_PUSH(tags, ctfl_tag) = *t;
    a = spans_of(p, doc, n, NULL, 0, &fed);
    b = spans_of(p, doc, n, (const ctfl_tag *)tags->elts, tags->nelts, &replayed);
    if (fed->nelts != replayed->nelts
        || memcmp(fed->elts, replayed->elts, (size_t)fed->nelts * sizeof(uint64_t))
        || a.elements != b.elements || a.elements_over_bytes != b.elements_over_bytes
        || a.elements_unclosed != b.elements_unclosed
        || a.elements_malformed != b.elements_malformed
        || a.elements_over_count != b.elements_over_count || a.caps_hit != b.caps_hit
        || a.bytes_out != n || b.bytes_out != n)
        fail_msg("%s: replaying the tags differs from feeding the bytes", what);
    apr_pool_destroy(p);
    return a.elements;
}

/* Every start tag (but html, head, body) of every html5lib document marked,
 * with an entry id or a flag attribute in turn: the element stack on broken
 * markup. Output must not depend on the chunking, and apart from the wrapping
 * it must be the input. */
static void marked_html5lib_doc(const char *doc, size_t n, const char *what, void *arg)
{
    static const char attr[] = " data-ctfl-entry-id=t";          /* the longest */
    static const char *const attrs[] = { attr, " data-ctfl-flag-if=t", " data-ctfl-flag=t" };
    unsigned turn = 0;
    rtags ref = { 0 };
    char *m, *stripped;
    size_t mn = 0, last = 0, sn = 0;
    sink base;
    ctfl_rewriter_stats bst;
    run_opts wrap = { INJ, 0, 2, 0, 0 };
    chunking whole = { CH_WHOLE, 0, 0 };
    elem_counts *total = arg;

    if (memchr(doc, '\x01', n) || memchr(doc, '\x02', n))
        return;
    ref_scan(doc, n, &ref);
    m = malloc(n + ref.n * (sizeof(attr) - 1) + 1);
    assert_non_null(m);
    for (size_t k = 0; k < ref.n; k++) {
        size_t name_end = ref.v[k].lt + 1;
        if (ref.v[k].kind != CTFL_TAG_START || !strcmp(ref.v[k].name, "html")
            || !strcmp(ref.v[k].name, "head") || !strcmp(ref.v[k].name, "body"))
            continue;
        while (name_end < n && !r_delim(doc[name_end]))
            name_end++;
        memcpy(m + mn, doc + last, name_end - last);
        mn += name_end - last;
        {
            const char *a = attrs[turn++ % (sizeof(attrs) / sizeof(attrs[0]))];
            memcpy(m + mn, a, strlen(a));
            mn += strlen(a);
        }
        last = name_end;
    }
    memcpy(m + mn, doc + last, n - last);
    mn += n - last;
    free(ref.v);

    run_ex(m, mn, whole, &wrap, &base, &bst);
    total->elements += bst.elements;
    total->over_bytes += bst.elements_over_bytes;
    total->unclosed += bst.elements_unclosed;
    total->malformed += bst.elements_malformed;
    stripped = malloc(base.len + 1);
    assert_non_null(stripped);
    for (size_t k = 0; k < base.len; k++)
        if (base.buf[k] != '\x01' && base.buf[k] != '\x02')
            stripped[sn++] = base.buf[k];
    /* the bootstrap aside, the wrapped output is the marked input */
    if (bst.injected != CTFL_INJECT_NONE) {
        char *inj = memmem(stripped, sn, INJ, strlen(INJ));
        assert_non_null(inj);
        memmove(inj, inj + strlen(INJ), sn - (size_t)(inj - stripped) - strlen(INJ));
        sn -= strlen(INJ);
    }
    if (sn != mn || memcmp(stripped, m, mn)) {
        print_error("%s: marked elements changed bytes\n", what);
        fail();
    }
    free(stripped);
    total_replayed += check_replay(m, mn, what);
    check_elements(m, mn, &wrap, base.buf, base.len, counts_of(&bst), mn > 400 ? 7 : 1, what);
    free(base.buf);
    free(m);
}

static void test_marked_html5lib_documents(void **state)
{
    elem_counts c = { 0, 0, 0, 0, 0 };
    assert_true(for_each_html5lib_doc(*state, marked_html5lib_doc, &c) > 1500);
    print_message("marked html5lib documents: %u elements handed over, %u unclosed, %u malformed;"
                  " tags handed over with %u of %u on_element calls\n",
                  c.elements, c.unclosed, c.malformed, total_tags_handed, total_elements);
    assert_true(c.elements > 400);
    assert_int_equal(total_replayed, c.elements);   /* every one also found by a replay */
    assert_true(total_tags_handed > total_elements / 2);
}

/* The corpus pages: every cms-box is handed over whole, in any chunking. */
static void test_corpus_elements(void **state)
{
    static const struct { const char *page; unsigned entries; } pages[] = {
        { "page-20k.html", 5 }, { "page-150k.html", 30 }, { "page-1m.html", 200 }
    };
    apr_pool_t *p = *state;
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]) && i < corpus_pages; i++) {
        size_t n = 0;
        char *doc = unit_read_file(p, apr_pstrcat(p, unit_shared_dir(), "/bench/corpus/",
                                                  pages[i].page, NULL), &n);
        run_opts wrap = { INJ, 0, 2, 0, 0 };
        elem_counts c = { pages[i].entries, 0, 0, 0, 0 };
        sink s;
        ctfl_rewriter_stats st;
        chunking c8k = { CH_FIXED, 8192, 0 };
        const char *e;
        unsigned found = 0;

        assert_non_null(doc);
        run_ex(doc, n, c8k, &wrap, &s, &st);
        expect_counts(counts_of(&st), c, pages[i].page);
        for (e = s.buf; (e = memchr(e, '\x01', s.len - (size_t)(e - s.buf))) != NULL; e++) {
            const char *close = memchr(e, '\x02', s.len - (size_t)(e - s.buf));
            static const char tail[] = "</a>\n</div>";
            assert_non_null(close);
            assert_memory_equal(e + 1, "<div class=\"cms-box", 19);
            assert_memory_equal(close - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
            found++;
        }
        assert_int_equal(found, pages[i].entries);
        assert_int_equal(check_replay(doc, n, pages[i].page), pages[i].entries);
        check_elements(doc, n, &wrap, s.buf, s.len, c, n / 97 + 1, pages[i].page);
        free(s.buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tricky_pages, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_holds_only_unfinished_tags, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_cap, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_emit_error_and_misuse, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_html5lib_documents, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_html5lib_with_small_cap, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_corpus_pages, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_element_bounds, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_element_caps, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_elements_and_inject, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_element_callback_error, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_marked_html5lib_documents, unit_pool_setup, unit_pool_teardown),
        cmocka_unit_test_setup_teardown(test_corpus_elements, unit_pool_setup, unit_pool_teardown),
    };
    if (getenv("CTFL_UNDER_VALGRIND")) {
        split_step = 17;
        corpus_pages = 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
