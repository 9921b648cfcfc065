/* libFuzzer target for ctfl_region (with ctfl_rewrite handing it the elements).
 *
 * Input: 2 control bytes, then the page.
 *   byte 0: bits 0-1 charset (utf-8, windows-1252, iso-8859-15, unknown),
 *           bit 2 personalize, bit 3 flags present, bits 4-6 the variant index
 *           selected for experience e1 (0: no selection)
 *   byte 1: where the page is split in two for the second run
 * Properties checked (abort on violation):
 *   - a kept element comes out exactly as it went in, with a reason;
 *   - the ids are unique;
 *   - with an unknown charset, no byte >= 0x80 is inserted (only references);
 *   - the page gives the same output fed whole (a libxml2 context per element,
 *     each element scanned again) or in two pieces (one context kept for the
 *     page's elements and the page's scan handed over, as in the filter);
 *   - outside the rewritten elements the output is the input (lengths add up).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include "ctfl_rewrite.h"
#include "ctfl_region.h"
#include "ctfl_entries.h"
#include "ctfl_json_value.h"

/* A baseline b1 with experience e1: variant 1 = v1 (fields of several types),
 * 2 = empty, 3 = v2; n1 a second baseline; m1 a merge tag. */
static const char ENTRIES[] =
    "{\"sys\":{\"type\":\"Array\"},\"items\":["
    "{\"metadata\":{},\"sys\":{\"id\":\"b1\",\"type\":\"Entry\",\"contentType\":{\"sys\":{\"id\":\"card\"}}},"
    "\"fields\":{\"title\":\"base\",\"nt_experiences\":[{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"e1\"}}]}}],"
    "\"includes\":{\"Entry\":["
    "{\"metadata\":{},\"sys\":{\"id\":\"e1\",\"type\":\"Entry\",\"contentType\":{\"sys\":{\"id\":\"nt_experience\"}}},"
    "\"fields\":{\"nt_name\":\"e\",\"nt_type\":\"nt_personalization\",\"nt_experience_id\":\"e1\","
    "\"nt_config\":{\"components\":[{\"baseline\":{\"id\":\"b1\"},\"variants\":[{\"id\":\"v1\"},{\"id\":\"\"},{\"id\":\"v2\"}]}]},"
    "\"nt_variants\":[{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"v1\"}},"
    "{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"v2\"}}]}},"
    "{\"metadata\":{},\"sys\":{\"id\":\"v1\",\"type\":\"Entry\",\"contentType\":{\"sys\":{\"id\":\"card\"}}},"
    "\"fields\":{\"title\":\"<i>\\\"caf\\u00e9\\\" \\u20ac \\u2713 &</i>\",\"n\":1.5,\"t\":true,"
    "\"img\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Asset\",\"id\":\"a1\"}},\"url\":\"//x.example/\\u00e9\","
    "\"body\":{\"nodeType\":\"document\",\"data\":{},\"content\":[{\"nodeType\":\"paragraph\",\"data\":{},"
    "\"content\":[{\"nodeType\":\"text\",\"value\":\"hi \\u00e9 \",\"marks\":[],\"data\":{}},"
    "{\"nodeType\":\"embedded-entry-inline\",\"data\":{\"target\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"m1\"}}},\"content\":[]}]}]}}},"
    "{\"metadata\":{},\"sys\":{\"id\":\"v2\",\"type\":\"Entry\",\"contentType\":{\"sys\":{\"id\":\"card\"}}},\"fields\":{\"title\":\"two\"}},"
    "{\"metadata\":{},\"sys\":{\"id\":\"n1\",\"type\":\"Entry\",\"contentType\":{\"sys\":{\"id\":\"card\"}}},\"fields\":{\"title\":\"n\"}},"
    "{\"metadata\":{},\"sys\":{\"id\":\"m1\",\"type\":\"Entry\",\"contentType\":{\"sys\":{\"id\":\"nt_mergetag\"}}},"
    "\"fields\":{\"nt_name\":\"m\",\"nt_mergetag_id\":\"location.city\",\"nt_fallback\":\"Nowhere \\u00fc\"}}],"
    "\"Asset\":[{\"sys\":{\"type\":\"Asset\",\"id\":\"a1\"},\"fields\":{\"file\":{\"url\":\"//img.example/a.png\"}}}]}}";

static const char FLAGS[] = "{\"s\":\"<b>\\u00e9\\u20ac\\\"</b>\",\"n\":0,\"o\":{\"k\":[1,null]},\"t\":true}";

static apr_pool_t *root;
static ctfl_entries *entries;
static ctfl_value *flags;

static const ctfl_value *lookup(void *ctx, const char *id)
{
    (void)ctx;
    return ctfl_entries_entry(entries, id);
}

typedef struct {
    char *buf;
    size_t len, cap;
    apr_pool_t *pool;
    ctfl_region_env *env;
    const char *charset;
    ctfl_region_parser *parser;   /* NULL: a context per element, and the element scanned
                                     again; else one context and the page's scan */
    const ctfl_rewriter *rw;
    size_t handed;            /* bytes of elements handed over */
    size_t replaced;          /* bytes written in their place */
} sink;

static void append(sink *s, const char *d, size_t n)
{
    if (s->len + n > s->cap) {
        while (s->len + n > s->cap)
            s->cap = s->cap ? s->cap * 2 : 1024;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            abort();
    }
    memcpy(s->buf + s->len, d, n);
    s->len += n;
}

static apr_status_t emit(void *ctx, const char *d, apr_size_t n)
{
    append(ctx, d, n);
    return APR_SUCCESS;
}

static int page_has(const char *elem, apr_size_t len, const char *s, apr_size_t n)
{
    for (apr_size_t i = 0; i + n <= len; i++)
        if (!memcmp(elem + i, s, n))
            return 1;
    return 0;
}

static apr_status_t element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                            const char **repl, apr_size_t *repl_len)
{
    sink *s = ctx;
    const char *out = NULL, *reason = NULL;
    apr_size_t out_len = 0;
    ctfl_region_report rep;
    int ntags = 0;
    const ctfl_tag *tags = s->parser ? ctfl_rewriter_element_tags(s->rw, &ntags) : NULL;
    ctfl_region *r = ctfl_region_parse_with(s->parser, s->pool, elem, len, tag_len, s->charset,
                                            tags, ntags, &reason);

    if (!r) {
        if (!reason)
            abort();
        return APR_SUCCESS;
    }
    {
        apr_array_header_t *ids = ctfl_region_ids(r, s->pool);
        for (int i = 0; i < ids->nelts; i++)
            for (int j = 0; j < i; j++)
                if (!strcmp(APR_ARRAY_IDX(ids, i, const char *), APR_ARRAY_IDX(ids, j, const char *)))
                    abort();
    }
    if (ctfl_region_rewrite(r, s->env, &out, &out_len, &rep) == CTFL_REGION_KEPT) {
        if (out != elem || out_len != len || !rep.reason)
            abort();
        return APR_SUCCESS;
    }
    if (!s->charset) {                         /* unknown charset: inserted text is ASCII */
        for (apr_size_t i = 0; i < out_len; i++)
            if ((unsigned char)out[i] >= 0x80 && !page_has(elem, len, out + i, 1))
                abort();
    }
    s->handed += len;
    s->replaced += out_len;
    *repl = out;
    *repl_len = out_len;
    return APR_SUCCESS;
}

static void run(const uint8_t *page, size_t n, size_t split, sink *s)
{
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    memset(&o, 0, sizeof(o));
    o.emit = emit;
    o.emit_ctx = s;
    o.on_element = element;
    o.element_ctx = s;
    o.max_element_bytes = 64 * 1024;
    rw = ctfl_rewriter_create(s->pool, &o);
    s->rw = rw;
    if (split && split < n) {
        if (ctfl_rewriter_feed(rw, (const char *)page, split) != APR_SUCCESS
            || ctfl_rewriter_feed(rw, (const char *)page + split, n - split) != APR_SUCCESS)
            abort();
    } else if (ctfl_rewriter_feed(rw, (const char *)page, n) != APR_SUCCESS) {
        abort();
    }
    if (ctfl_rewriter_finish(rw) != APR_SUCCESS)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *err = NULL;
    ctfl_value *v = NULL;
    (void)argc;
    (void)argv;
    apr_initialize();
    ctfl_region_global_init();
    apr_pool_create(&root, NULL);
    entries = ctfl_entries_make(root);
    if (ctfl_entries_add_json(entries, ENTRIES, strlen(ENTRIES), &err) != 0
        || ctfl_json_parse_value(root, FLAGS, strlen(FLAGS), &v, &err) != 0)
        abort();
    flags = v;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const charsets[] = { "utf-8", "windows-1252", "iso-8859-15", NULL };
    apr_pool_t *p;
    ctfl_region_env env;
    apr_array_header_t *sel;
    sink a, b;
    unsigned vi;

    if (size < 2 || size > 256 * 1024)
        return 0;
    apr_pool_create(&p, root);
    memset(&env, 0, sizeof(env));
    env.personalize = (data[0] >> 2) & 1;
    env.flags = (data[0] & 8) ? flags : NULL;
    env.entry = lookup;
    vi = (data[0] >> 4) & 7;
    sel = apr_array_make(p, 1, sizeof(ctfl_selected_optimization));
    if (vi) {
        ctfl_selected_optimization *so = apr_array_push(sel);
        so->experience_id = "e1";
        so->variant_index = vi;
        so->sticky = (int)(vi & 1) - 1;
    }
    env.selections = sel;
    memset(&a, 0, sizeof(a));
    a.pool = p;
    a.env = &env;
    a.charset = charsets[data[0] & 3];
    b = a;
    b.parser = ctfl_region_parser_make(p);
    run(data + 2, size - 2, 0, &a);
    run(data + 2, size - 2, 1 + (size_t)data[1] * (size - 2) / 256, &b);
    if (a.len != b.len || (a.len && memcmp(a.buf, b.buf, a.len)))
        abort();
    if (a.len - a.replaced != size - 2 - a.handed)
        abort();
    free(a.buf);
    free(b.buf);
    apr_pool_destroy(p);
    return 0;
}
