/* libFuzzer target for ctfl_scan + ctfl_rewrite.
 *
 * Input: 4 control bytes, then the document.
 *   byte 0: chunking (low 2 bits: 0 sizes from bytes 1-2, 1 one byte at a time,
 *           2 pseudo-random sizes seeded by bytes 1-3, 3 a single 2-way split)
 *           and options (bit 2: small max_tag_bytes, bit 3: marked elements
 *           with small caps)
 *   bytes 1-3: size / seed / split point
 * Properties checked (abort on violation):
 *   - the output is the same as feeding the document in one call;
 *   - without the bootstrap and with on_element keeping elements, the output is
 *     the input, byte for byte;
 *   - with the bootstrap, the output is the input with it inserted once, right
 *     before "</head" or "</body" (any case), or the input when not inserted;
 *   - with elements wrapped in \x01..\x02, removing the markers gives the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <apr_general.h>
#include <apr_pools.h>
#include "ctfl_rewrite.h"

#define BOOT "<script>boot()</script>"

typedef struct {
    char *buf;
    size_t len, cap;
    apr_pool_t *pool;
    int wrap;
} sink;

static apr_status_t emit(void *ctx, const char *d, apr_size_t n)
{
    sink *s = ctx;
    if (!n)
        abort();                               /* never called with nothing */
    if (s->len + n > s->cap) {
        while (s->len + n > s->cap)
            s->cap = s->cap ? s->cap * 2 : 1024;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            abort();
    }
    memcpy(s->buf + s->len, d, n);
    s->len += n;
    return APR_SUCCESS;
}

static apr_status_t element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                            const char **repl, apr_size_t *repl_len)
{
    sink *s = ctx;
    if (tag_len < 3 || tag_len > len || elem[0] != '<' || elem[tag_len - 1] != '>')
        abort();
    if (s->wrap) {
        char *r = apr_palloc(s->pool, len + 2);
        r[0] = '\x01';
        memcpy(r + 1, elem, len);
        r[len + 1] = '\x02';
        *repl = r;
        *repl_len = len + 2;
    }
    return APR_SUCCESS;
}

typedef struct {
    int inject, elements, wrap;
    apr_size_t max_tag, max_element;
} config;

/* chunk sizes: 0 means "the rest" */
static size_t next_size(const uint8_t *ctl, uint32_t *seed, size_t fed, size_t left)
{
    size_t n;
    switch (ctl[0] & 3) {
    case 0: n = 1 + (((size_t)ctl[1] << 8 | ctl[2]) % 4096); break;
    case 1: n = 1; break;
    case 2:
        *seed = *seed * 1103515245u + 12345u;
        n = 1 + (*seed >> 16) % 64;
        break;
    default: {
        size_t k = ((size_t)ctl[1] << 16 | (size_t)ctl[2] << 8 | ctl[3]);
        n = fed == 0 && left > 1 ? 1 + k % (left - 1) : left;
        break;
    }
    }
    return n < left ? n : left;
}

static void run(const char *doc, size_t n, const uint8_t *ctl, int chunked, const config *c, sink *out)
{
    apr_pool_t *p;
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    uint32_t seed = (uint32_t)ctl[1] << 16 | (uint32_t)ctl[2] << 8 | ctl[3];
    size_t fed = 0;

    memset(out, 0, sizeof(*out));
    memset(&o, 0, sizeof(o));
    if (apr_pool_create(&p, NULL) != APR_SUCCESS)
        abort();
    out->pool = p;
    out->wrap = c->wrap;
    o.emit = emit;
    o.emit_ctx = out;
    if (c->inject) {
        o.inject = BOOT;
        o.inject_len = sizeof(BOOT) - 1;
    }
    o.max_tag_bytes = c->max_tag;
    if (c->elements) {
        o.on_element = element;
        o.element_ctx = out;
        o.max_element_bytes = c->max_element;
        o.max_elements = 8;
    }
    rw = ctfl_rewriter_create(p, &o);
    while (fed < n) {
        size_t len = chunked ? next_size(ctl, &seed, fed, n - fed) : n - fed;
        char *copy = malloc(len);              /* exact-size copy: overreads show up */
        if (!copy)
            abort();
        memcpy(copy, doc + fed, len);
        if (ctfl_rewriter_feed(rw, copy, len) != APR_SUCCESS)
            abort();
        memset(copy, 0xA5, len);
        free(copy);
        fed += len;
    }
    if (ctfl_rewriter_finish(rw) != APR_SUCCESS)
        abort();
    apr_pool_destroy(p);
    out->pool = NULL;
}

static void same(const sink *a, const sink *b)
{
    if (a->len != b->len || (a->len && memcmp(a->buf, b->buf, a->len)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialized;
    const char *doc;
    size_t n;
    config c;
    sink whole, chunked;

    if (!initialized) {
        apr_initialize();
        initialized = 1;
    }
    if (size < 4)
        return 0;
    doc = (const char *)data + 4;
    n = size - 4;
    memset(&c, 0, sizeof(c));
    c.max_tag = data[0] & 4 ? 1 + data[1] % 32 : 0;
    c.elements = (data[0] & 8) != 0;
    c.max_element = c.elements ? 16 + data[2] * 4u : 0;

    /* 1. identity: no bootstrap, elements kept */
    run(doc, n, data, 0, &c, &whole);
    if (whole.len != n || (n && memcmp(whole.buf, doc, n)))
        abort();
    run(doc, n, data, 1, &c, &chunked);
    same(&whole, &chunked);
    free(whole.buf);
    free(chunked.buf);

    /* 2. bootstrap (and wrapped elements): chunk invariance and placement */
    c.inject = 1;
    c.wrap = c.elements && !memchr(doc, '\x01', n) && !memchr(doc, '\x02', n);
    run(doc, n, data, 0, &c, &whole);
    run(doc, n, data, 1, &c, &chunked);
    same(&whole, &chunked);
    {
        char *plain = malloc(whole.len + 1);
        size_t pn = 0;
        const size_t bl = sizeof(BOOT) - 1;
        int ok = 0;
        if (!plain)
            abort();
        for (size_t i = 0; i < whole.len; i++)
            if (!c.wrap || (whole.buf[i] != '\x01' && whole.buf[i] != '\x02'))
                plain[pn++] = whole.buf[i];
        if (pn == n) {
            ok = !n || memcmp(plain, doc, n) == 0;
        } else if (pn == n + bl) {
            /* inserted right before some "</head" or "</body" */
            for (size_t k = 0; !ok && k + 6 <= n; k++)
                if ((!strncasecmp(doc + k, "</head", 6) || !strncasecmp(doc + k, "</body", 6))
                    && !memcmp(plain, doc, k) && !memcmp(plain + k, BOOT, bl)
                    && !memcmp(plain + k + bl, doc + k, n - k))
                    ok = 1;
        }
        if (!ok)
            abort();
        free(plain);
    }
    free(whole.buf);
    free(chunked.buf);
    return 0;
}
