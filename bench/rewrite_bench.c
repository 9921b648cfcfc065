/* rewrite_bench — in-process throughput of the streaming rewriter on the corpus.
 *
 * Usage: rewrite_bench [CORPUS_DIR] (default $CTFL_SHARED/bench/corpus, else
 * ../shared/bench/corpus). Each page is fed in 8 KB chunks; every variant runs
 * for at least 0.3 s per round, 5 rounds, and the median MB/s is printed:
 *   memcpy   copying the page chunk by chunk into an output buffer (the bound)
 *   scan     the tokenizer alone
 *   rewrite  the rewriter with the bootstrap injected; emit() only counts bytes,
 *            as a zero-copy bucket filter would
 *   regions  rewrite + the marked-element callback (returns the element as is)
 * Ratios are to memcpy measured in the same run. No thresholds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "ctfl_rewrite.h"
#include "ctfl_scan.h"

#define CHUNK 8192
#define ROUNDS 5
#define MIN_SECONDS 0.3

static const char *const pages[] = { "page-20k.html", "page-150k.html", "page-1m.html" };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    const char *doc;
    size_t len;
    char *out;                /* memcpy target */
    apr_pool_t *pool;
    size_t sink;              /* defeats dead-code elimination */
    int regions;
    unsigned elements;        /* marked elements seen by the last run */
} job;

static apr_status_t count_emit(void *ctx, const char *d, apr_size_t n)
{
    job *j = ctx;
    j->sink += n + (unsigned char)d[0];
    return APR_SUCCESS;
}

static apr_status_t keep_element(void *ctx, const char *elem, apr_size_t len,
                                 apr_size_t start_tag_len, const char **repl, apr_size_t *repl_len)
{
    job *j = ctx;
    j->sink += len + start_tag_len + (unsigned char)elem[0];
    *repl = NULL;
    *repl_len = 0;
    return APR_SUCCESS;
}

static void run_memcpy(job *j)
{
    for (size_t off = 0; off < j->len; off += CHUNK) {
        size_t n = j->len - off < CHUNK ? j->len - off : CHUNK;
        memcpy(j->out + off, j->doc + off, n);
    }
    j->sink += (unsigned char)j->out[j->len / 2];
}

static void run_scan(job *j)
{
    ctfl_scan sc;
    ctfl_scan_init(&sc);
    for (size_t off = 0; off < j->len; off += CHUNK) {
        size_t n = j->len - off < CHUNK ? j->len - off : CHUNK, o = 0;
        const ctfl_tag *t;
        while ((t = ctfl_scan_next(&sc, j->doc + off, n, &o)) != NULL)
            j->sink += t->name_len;
    }
}

static void run_rewrite(job *j)
{
    static const char boot[] = "<script src=\"/sdk.js\"></script><script>window.x=1</script>";
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    apr_pool_t *p;
    memset(&o, 0, sizeof(o));
    o.emit = count_emit;
    o.emit_ctx = j;
    o.inject = boot;
    o.inject_len = sizeof(boot) - 1;
    if (j->regions) {
        o.on_element = keep_element;
        o.element_ctx = j;
    }
    apr_pool_create(&p, j->pool);
    rw = ctfl_rewriter_create(p, &o);
    for (size_t off = 0; off < j->len; off += CHUNK) {
        size_t n = j->len - off < CHUNK ? j->len - off : CHUNK;
        if (ctfl_rewriter_feed(rw, j->doc + off, n) != APR_SUCCESS)
            abort();
    }
    if (ctfl_rewriter_finish(rw) != APR_SUCCESS)
        abort();
    j->elements = ctfl_rewriter_get_stats(rw)->elements;
    apr_pool_destroy(p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median MB/s over ROUNDS rounds of at least MIN_SECONDS each. */
static double measure(job *j, void (*fn)(job *))
{
    double mbs[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now(), t;
        size_t iters = 0;
        do {
            fn(j);
            iters++;
            t = now() - t0;
        } while (t < MIN_SECONDS);
        mbs[r] = (double)j->len * (double)iters / t / 1e6;
    }
    qsort(mbs, ROUNDS, sizeof(double), cmp_double);
    return mbs[ROUNDS / 2];
}

int main(int argc, char **argv)
{
    const char *shared = getenv("CTFL_SHARED");
    const char *dir = argc > 1 ? argv[1] : NULL;
    apr_pool_t *pool;
    size_t sink = 0;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!dir)
        dir = apr_pstrcat(pool, shared && *shared ? shared : "../shared", "/bench/corpus", NULL);
    printf("rewrite_bench: %d KB chunks, median of %d rounds >= %.1f s\n", CHUNK / 1024, ROUNDS,
           MIN_SECONDS);
    printf("%-16s %9s %10s %10s %10s %8s %10s %8s %7s\n", "page", "bytes", "memcpy", "scan",
           "rewrite", "ratio", "regions", "ratio", "elems");
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        const char *path = apr_pstrcat(pool, dir, "/", pages[i], NULL);
        FILE *f = fopen(path, "rb");
        job j;
        double m, s, rw, rg;
        unsigned elems;
        if (!f) {
            fprintf(stderr, "rewrite_bench: cannot open %s\n", path);
            return 1;
        }
        memset(&j, 0, sizeof(j));
        fseek(f, 0, SEEK_END);
        j.len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        j.doc = apr_palloc(pool, j.len);
        j.out = apr_palloc(pool, j.len);
        if (fread((char *)j.doc, 1, j.len, f) != j.len)
            return 1;
        fclose(f);
        j.pool = pool;

        m = measure(&j, run_memcpy);
        s = measure(&j, run_scan);
        rw = measure(&j, run_rewrite);
        j.regions = 1;
        rg = measure(&j, run_rewrite);
        elems = j.elements;
        printf("%-16s %9zu %10.0f %10.0f %10.0f %7.3fx %10.0f %7.3fx %7u\n", pages[i], j.len, m, s,
               rw, rw / m, rg, rg / m, elems);
        sink += j.sink;
    }
    printf("(MB/s; ratio = variant / memcpy in the same run; sink %zu)\n", sink % 10);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
