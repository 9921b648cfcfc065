/* region_bench — in-process throughput of the full rewrite (issue 3, Performance).
 *
 * Usage: region_bench [--profile PAGE [--mode bare|unknown|granted] [--repeat N]] [CORPUS_DIR]
 *   (CORPUS_DIR default: $CTFL_SHARED/bench/corpus, else ../shared/bench/corpus)
 *
 * Each corpus page is fed in 8 KB chunks through ctfl_rewriter with a bootstrap
 * inserted. The on_element callback does what filters/ctflopt_elements.c does:
 * scratch pool cleared, ctfl_region_parse, ctfl_region_ids looked up in an entry
 * index, ctfl_region_rewrite with selections, profile and flags. The index is the
 * "warm cache": synthetic CDA-shaped entries for every baseline id found in the
 * pages, built once before timing (baseline + one nt_experience + one variant with
 * other field values); the selections choose variant 1 for every other baseline.
 *
 * Variants, each the median MB/s of ROUNDS rounds of at least MIN_SECONDS of
 * CPU time, by CPU time and by wall time (the 2 cores are shared):
 *   memcpy    the page copied chunk by chunk (the bound; ratios are to this)
 *   bare      the rewriter + bootstrap, no on_element
 *   unknown   + elements, personalize=0 (consent unknown: stamped, no entries)
 *   granted   + elements, personalize=1, warm index, selections
 * Before timing, each variant's output is collected once and checked (stamped
 * attribute counts, variant texts, bootstrap, byte-identity of the bare run), so
 * a no-op cannot pass for a fast rewrite. Exit status 1 when a check fails.
 *
 * --profile PAGE [--mode bare|unknown|granted] [--repeat N]: build everything, then
 * run that mode (default granted) N times (default once) on PAGE and exit, for
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=run_rewrite
 * No thresholds anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include "ctfl_rewrite.h"
#include "ctfl_region.h"
#include "ctfl_charset.h"
#include "ctfl_bootstrap.h"
#include "ctfl_entries.h"
#include "ctfl_json_value.h"
#include "ctfl_resolve.h"

#define CHUNK 8192
#define ROUNDS 5
#define MIN_SECONDS 0.25
#define MAX_IDS 4096
#define MAX_ID_LEN 64
#define VARIANT_MARK "VARIANT-"

static const char *const pages[] = { "page-20k.html", "page-150k.html", "page-1m.html" };

enum mode { MODE_MEMCPY, MODE_BARE, MODE_UNKNOWN, MODE_GRANTED };
static const char *const mode_names[] = { "memcpy", "bare", "unknown", "granted" };

/* The warm cache and the visitor: built once, read-only while timing. */
typedef struct {
    ctfl_entries *entries;
    apr_array_header_t *selections;     /* ctfl_selected_optimization */
    ctfl_value *profile;
    ctfl_value *flags;
    apr_table_t *selected;              /* baseline id -> "1" when a variant is chosen */
} world;

typedef struct {
    const world *w;
    const char *name;
    const char *doc;
    size_t len;
    const char *charset;
    char *copy;                         /* memcpy target */
    apr_pool_t *pool;
    enum mode mode;
    size_t sink;                        /* defeats dead-code elimination */
    /* per run */
    apr_pool_t *scratch;
    ctfl_region_parser *parser;         /* one libxml2 context per page, as the filter */
    ctfl_rewriter *rw;                  /* the page's rewriter: its scan of each element */
    unsigned rewritten, kept, ids_missing;
    const char *kept_reason;
    /* collecting output (checks only) */
    char *out;
    size_t out_len, out_cap;
    int collect;
    size_t boot_len;                    /* of the last bootstrap (collecting runs) */
    unsigned elements;
} job;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ctfl_value *parse_or_die(apr_pool_t *p, const char *text)
{
    ctfl_value *v;
    const char *err;
    if (ctfl_json_parse_value(p, text, strlen(text), &v, &err) != 0) {
        fprintf(stderr, "region_bench: %s: %.200s\n", err, text);
        exit(1);
    }
    return v;
}

static const char *link_json(apr_pool_t *p, const char *id)
{
    return apr_psprintf(p, "{\"sys\":{\"type\":\"Link\",\"linkType\":\"Entry\",\"id\":\"%s\"}}", id);
}

static const char *sys_json(apr_pool_t *p, const char *id, const char *content_type)
{
    return apr_psprintf(p,
        "{\"space\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"Space\",\"id\":\"benchspace\"}},"
        "\"id\":\"%s\",\"type\":\"Entry\",\"createdAt\":\"2025-01-01T00:00:00.000Z\","
        "\"updatedAt\":\"2025-01-01T00:00:00.000Z\",\"environment\":{\"sys\":{\"id\":\"master\","
        "\"type\":\"Link\",\"linkType\":\"Environment\"}},\"publishedVersion\":1,\"revision\":1,"
        "\"contentType\":{\"sys\":{\"type\":\"Link\",\"linkType\":\"ContentType\",\"id\":\"%s\"}},"
        "\"locale\":\"en-US\"}", id, content_type);
}

static void add_entry_or_die(ctfl_entries *e, apr_pool_t *p, const char *json)
{
    if (ctfl_entries_add_entry(e, parse_or_die(p, json)) != 0) {
        fprintf(stderr, "region_bench: entry refused: %.200s\n", json);
        exit(1);
    }
}

/* Baseline B (content type "box": Symbol title, Text body, Symbol cta) with one
 * nt_experience "x<i>" whose components map B to the variant "v<i>". */
static void add_baseline(world *w, apr_pool_t *p, const char *b, unsigned i, int select)
{
    const char *xid = apr_psprintf(p, "x%u", i), *vid = apr_psprintf(p, "v%u", i);
    add_entry_or_die(w->entries, p, apr_psprintf(p,
        "{\"metadata\":{\"tags\":[]},\"sys\":%s,\"fields\":{\"title\":\"Baseline title %u\","
        "\"body\":\"Baseline body %u\",\"cta\":\"Baseline cta %u\",\"nt_experiences\":[%s]}}",
        sys_json(p, b, "box"), i, i, i, link_json(p, xid)));
    add_entry_or_die(w->entries, p, apr_psprintf(p,
        "{\"metadata\":{\"tags\":[]},\"sys\":%s,\"fields\":{\"nt_name\":\"bench %u\","
        "\"nt_type\":\"nt_experiment\",\"nt_config\":{\"traffic\":1,\"components\":[{\"baseline\":"
        "{\"id\":\"%s\"},\"variants\":[{\"id\":\"%s\",\"hidden\":false}]}],\"distribution\":[0.5,0.5]},"
        "\"nt_variants\":[%s],\"nt_experience_id\":\"%s\"}}",
        sys_json(p, xid, "nt_experience"), i, b, vid, link_json(p, vid), xid));
    add_entry_or_die(w->entries, p, apr_psprintf(p,
        "{\"metadata\":{\"tags\":[]},\"sys\":%s,\"fields\":{\"title\":\"" VARIANT_MARK "title %u\","
        "\"body\":\"" VARIANT_MARK "body %u: caf\\u00e9 <b> & \\\"q\\\"\",\"cta\":\"" VARIANT_MARK
        "cta %u\"}}", sys_json(p, vid, "box"), i, i, i));
    if (select) apr_table_setn(w->selected, b, "1");
}

/* The data-ctfl-baseline-id values of a page, in order (not deduplicated). */
static apr_array_header_t *page_ids(apr_pool_t *p, const char *doc, size_t len)
{
    static const char attr[] = "data-ctfl-baseline-id=\"";
    apr_array_header_t *ids = apr_array_make(p, 64, sizeof(const char *));
    const char *s = doc, *end = doc + len;
    while (s < end && ids->nelts < MAX_IDS) {
        const char *hit = memmem(s, (size_t)(end - s), attr, sizeof(attr) - 1), *q;
        if (!hit) break;
        hit += sizeof(attr) - 1;
        q = memchr(hit, '"', (size_t)(end - hit));
        if (!q) break;
        if (q > hit && q - hit <= MAX_ID_LEN)
            APR_ARRAY_PUSH(ids, const char *) = apr_pstrmemdup(p, hit, (apr_size_t)(q - hit));
        s = q + 1;
    }
    return ids;
}

static apr_status_t out_emit(void *ctx, const char *d, apr_size_t n)
{
    job *j = ctx;
    if (!n) return APR_SUCCESS;
    if (j->collect) {
        if (j->out_len + n > j->out_cap) {
            j->out_cap = (j->out_len + n) * 2;
            j->out = realloc(j->out, j->out_cap);
            if (!j->out) return APR_ENOMEM;
        }
        memcpy(j->out + j->out_len, d, n);
        j->out_len += n;
    }
    j->sink += n + (unsigned char)d[0];
    return APR_SUCCESS;
}

/* As ctflopt_elements_on_element, minus the logging and the CDA/socache fetch:
 * the ids the element needs are looked up in the warm index instead. */
static const ctfl_value *lookup_entry(void *ctx, const char *id)
{
    job *j = ctx;
    return ctfl_entries_entry(j->w->entries, id);
}

static const ctfl_value *lookup_asset(void *ctx, const char *id)
{
    job *j = ctx;
    return ctfl_entries_asset(j->w->entries, id);
}

static apr_status_t on_element(void *ctx, const char *elem, apr_size_t len,
                               apr_size_t start_tag_len, const char **replacement,
                               apr_size_t *replacement_len)
{
    job *j = ctx;
    ctfl_region_env env;
    ctfl_region_report rep;
    const char *reason = NULL, *out;
    apr_size_t out_len;
    ctfl_region *rg;

    apr_pool_clear(j->scratch);
    memset(&env, 0, sizeof(env));
    memset(&rep, 0, sizeof(rep));
    env.tags = ctfl_rewriter_element_tags(j->rw, &env.ntags);
    if (j->mode != MODE_GRANTED) {
        /* as the glue: the tokenizer-only fast path where it applies */
        if (ctfl_region_rewrite_element(j->scratch, elem, len, start_tag_len, j->charset, &env,
                                        &out, &out_len, &rep) != CTFL_REGION_REWRITTEN) {
            j->kept++;
            j->kept_reason = rep.reason;
            return APR_SUCCESS;
        }
        j->rewritten++;
        *replacement = out;
        *replacement_len = out_len;
        return APR_SUCCESS;
    }
    rg = ctfl_region_parse_with(j->parser, j->scratch, elem, len, start_tag_len, j->charset,
                                env.tags, env.ntags, &reason);
    if (!rg) {
        j->kept++;
        j->kept_reason = reason;
        return APR_SUCCESS;
    }
    env.personalize = 1;
    {
        apr_array_header_t *ids = ctfl_region_ids(rg, j->scratch);
        for (int i = 0; i < ids->nelts; i++)
            if (!ctfl_entries_raw(j->w->entries, APR_ARRAY_IDX(ids, i, const char *)))
                j->ids_missing++;
        env.selections = j->w->selections;
        env.profile = j->w->profile;
        env.flags = j->w->flags;
        env.entry = lookup_entry;
        env.asset = lookup_asset;
        env.lookup_ctx = j;
    }
    if (ctfl_region_rewrite(rg, &env, &out, &out_len, &rep) != CTFL_REGION_REWRITTEN) {
        j->kept++;
        j->kept_reason = rep.reason;
        return APR_SUCCESS;
    }
    j->rewritten++;
    *replacement = out;
    *replacement_len = out_len;
    return APR_SUCCESS;
}

static void run_memcpy(job *j)
{
    for (size_t off = 0; off < j->len; off += CHUNK) {
        size_t n = j->len - off < CHUNK ? j->len - off : CHUNK;
        memcpy(j->copy + off, j->doc + off, n);
    }
    j->sink += (unsigned char)j->copy[j->len / 2];
}

/* One page, as one request: bootstrap rendered, rewriter created, chunks fed.
 * Not inlined: callgrind's --toggle-collect=run_rewrite selects exactly this. */
__attribute__((noinline)) static void run_rewrite(job *j)
{
    ctfl_bootstrap b;
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    apr_pool_t *p;
    apr_size_t boot_len;

    apr_pool_create(&p, j->pool);
    memset(&b, 0, sizeof(b));
    b.sdk_url = "/ctflopt/web-sdk.umd.js";
    b.client_id = "bench";
    b.environment = "main";
    b.locale = "en-US";
    b.experience_base = "https://experience.ninetailed.co/";
    b.insights_base = "https://ingest.insights.ninetailed.co/";
    b.consent = j->mode == MODE_GRANTED ? 1 : -1;
    b.track_views = b.track_clicks = 1;
    b.consent_cookie = "app-personalization-consent";
    b.consent_granted = "granted";
    b.consent_denied = "denied";
    b.cookie_max_age = 31536000;
    memset(&o, 0, sizeof(o));
    o.emit = out_emit;
    o.emit_ctx = j;
    o.inject = ctfl_bootstrap_render(p, &b, &boot_len);
    o.inject_len = boot_len;
    if (j->collect) j->boot_len = boot_len;
    if (j->mode != MODE_BARE) {
        o.on_element = on_element;
        o.element_ctx = j;
        apr_pool_create(&j->scratch, p);
        j->parser = ctfl_region_parser_make(p);
    }
    j->rewritten = j->kept = j->ids_missing = 0;
    rw = ctfl_rewriter_create(p, &o);
    j->rw = rw;
    for (size_t off = 0; off < j->len; off += CHUNK) {
        size_t n = j->len - off < CHUNK ? j->len - off : CHUNK;
        if (ctfl_rewriter_feed(rw, j->doc + off, n) != APR_SUCCESS) abort();
    }
    if (ctfl_rewriter_finish(rw) != APR_SUCCESS) abort();
    j->elements = ctfl_rewriter_get_stats(rw)->elements;
    j->scratch = NULL;
    apr_pool_destroy(p);
}

static void run(job *j)
{
    if (j->mode == MODE_MEMCPY) run_memcpy(j);
    else run_rewrite(j);
}

static size_t count(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    const char *s = hay, *end = hay + len, *hit;
    while (s < end && (hit = memmem(s, (size_t)(end - s), needle, nl)) != NULL) {
        n++;
        s = hit + nl;
    }
    return n;
}

static int check(int ok, const job *j, const char *what, size_t got, size_t want)
{
    if (got == want) return ok;
    fprintf(stderr, "CHECK FAILED %s %s: %s = %zu, expected %zu\n", j->name,
            mode_names[j->mode], what, got, want);
    return 0;
}

/* Run the mode once collecting the output and check it was really rewritten. */
static int verify(job *j, size_t baselines, size_t selected)
{
    int ok = 1;
    size_t boot;
    j->collect = 1;
    j->out_len = 0;
    run_rewrite(j);
    j->collect = 0;
    boot = count(j->out, j->out_len, "<script") - count(j->doc, j->len, "<script");
    ok = check(ok, j, "bootstrap <script> added", boot, 2);
    ok = check(ok, j, "data-ctfl-baseline-id", count(j->out, j->out_len, "data-ctfl-baseline-id=\""),
               baselines);
    if (j->mode == MODE_BARE) {
        /* Byte identity: the output is the input with the bootstrap before </head>. */
        const char *head = memmem(j->doc, j->len, "</head>", 7);
        size_t at = head ? (size_t)(head - j->doc) : 0;
        ok = check(ok, j, "output length - bootstrap", j->out_len - j->boot_len, j->len);
        ok = check(ok, j, "bytes identical outside the bootstrap", head
                   && j->out_len == j->len + j->boot_len && !memcmp(j->out, j->doc, at)
                   && !memcmp(j->out + at + j->boot_len, j->doc + at, j->len - at), 1);
        ok = check(ok, j, "elements handed over", j->elements, 0);
        ok = check(ok, j, "data-ctfl-entry-id", count(j->out, j->out_len, "data-ctfl-entry-id="), 0);
        return ok;
    }
    ok = check(ok, j, "elements handed over", j->elements, baselines);
    ok = check(ok, j, "elements rewritten", j->rewritten, baselines);
    if (j->kept)
        fprintf(stderr, "  %u kept, last reason: %s\n", j->kept,
                j->kept_reason ? j->kept_reason : "?");
    ok = check(ok, j, "data-ctfl-entry-id", count(j->out, j->out_len, "data-ctfl-entry-id=\""),
               baselines);
    ok = check(ok, j, "data-ctfl-variant-index=\"1\"",
               count(j->out, j->out_len, "data-ctfl-variant-index=\"1\""),
               j->mode == MODE_GRANTED ? selected : 0);
    ok = check(ok, j, "data-ctfl-optimization-id",
               count(j->out, j->out_len, "data-ctfl-optimization-id=\""),
               j->mode == MODE_GRANTED ? selected : 0);
    ok = check(ok, j, "variant field texts (3 per selected)", count(j->out, j->out_len, VARIANT_MARK),
               j->mode == MODE_GRANTED ? 3 * selected : 0);
    ok = check(ok, j, "escaped variant body", count(j->out, j->out_len,
               "caf\xc3\xa9 &lt;b&gt; &amp; &quot;q&quot;"), j->mode == MODE_GRANTED ? selected : 0);
    if (j->mode == MODE_GRANTED)
        ok = check(ok, j, "ids missing from the index", j->ids_missing, 0);
    return ok;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    double wall_mbs;             /* median MB/s by the monotonic clock */
    double cpu_mbs;              /* median MB/s by this thread's CPU time (user + sys):
                                    robust to the team sharing the 2 cores */
    double minflt_per_run;       /* page faults per page rewritten (malloc trimming) */
} result;

/* ROUNDS rounds of at least MIN_SECONDS of CPU time each (at most MAX_ROUND_WALL
 * seconds of wall time, so a starved run still ends). */
#define MAX_ROUND_WALL 3.0
static result measure(job *j)
{
    double wall[ROUNDS], cpu[ROUNDS];
    size_t total_iters = 0;
    struct rusage ru0, ru1;
    result res;
    getrusage(RUSAGE_THREAD, &ru0);
    for (int r = 0; r < ROUNDS; r++) {
        double w0 = now(), c0 = cpu_now(), c, w;
        size_t iters = 0;
        do {
            run(j);
            iters++;
            c = cpu_now() - c0;
            w = now() - w0;
        } while (c < MIN_SECONDS && w < MAX_ROUND_WALL);
        wall[r] = (double)j->len * (double)iters / w / 1e6;
        cpu[r] = (double)j->len * (double)iters / c / 1e6;
        total_iters += iters;
    }
    getrusage(RUSAGE_THREAD, &ru1);
    qsort(wall, ROUNDS, sizeof(double), cmp_double);
    qsort(cpu, ROUNDS, sizeof(double), cmp_double);
    res.wall_mbs = wall[ROUNDS / 2];
    res.cpu_mbs = cpu[ROUNDS / 2];
    res.minflt_per_run = (double)(ru1.ru_minflt - ru0.ru_minflt) / (double)total_iters;
    return res;
}

static int load(apr_pool_t *pool, const char *path, const char **doc, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    buf = apr_palloc(pool, (apr_size_t)n);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    fclose(f);
    *doc = buf;
    *len = (size_t)n;
    return 0;
}

int main(int argc, char **argv)
{
    const char *shared = getenv("CTFL_SHARED"), *dir = NULL, *profile_page = NULL;
    enum mode profile_mode = MODE_GRANTED;
    long repeat = 1;
    enum { NPAGES = sizeof(pages) / sizeof(pages[0]) };
    job jobs[NPAGES];
    size_t baselines[NPAGES], selected[NPAGES], sink = 0;
    apr_pool_t *pool;
    world w;
    unsigned next = 0;
    int ok = 1;

    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--profile") && a + 1 < argc) profile_page = argv[++a];
        else if (!strcmp(argv[a], "--mode") && a + 1 < argc) {
            const char *m = argv[++a];
            profile_mode = !strcmp(m, "bare") ? MODE_BARE
                           : !strcmp(m, "unknown") ? MODE_UNKNOWN : MODE_GRANTED;
        } else if (!strcmp(argv[a], "--repeat") && a + 1 < argc) {
            repeat = strtol(argv[++a], NULL, 10);
            if (repeat < 1) repeat = 1;
        } else dir = argv[a];
    }
    apr_initialize();
    ctfl_region_global_init();
    apr_pool_create(&pool, NULL);
    if (!dir) dir = apr_pstrcat(pool, shared && *shared ? shared : "../shared", "/bench/corpus", NULL);

    /* The warm cache: one baseline/experience/variant triple per distinct id. */
    memset(&w, 0, sizeof(w));
    w.entries = ctfl_entries_make(pool);
    w.selected = apr_table_make(pool, 256);
    {
        apr_table_t *seen = apr_table_make(pool, 256);
        apr_array_header_t *sel = apr_array_make(pool, 128, sizeof(const char *));
        const char *sel_json;
        for (int i = 0; i < NPAGES; i++) {
            job *j = &jobs[i];
            apr_array_header_t *ids;
            ctfl_charset cs;
            memset(j, 0, sizeof(*j));
            j->name = pages[i];
            if (load(pool, apr_pstrcat(pool, dir, "/", pages[i], NULL), &j->doc, &j->len) != 0) {
                fprintf(stderr, "region_bench: cannot read %s/%s\n", dir, pages[i]);
                return 1;
            }
            ctfl_charset_detect(pool, "text/html", j->doc, j->len < 1024 ? j->len : 1024, &cs);
            j->charset = cs.name;
            j->copy = apr_palloc(pool, j->len);
            j->pool = pool;
            j->w = &w;
            ids = page_ids(pool, j->doc, j->len);
            for (int k = 0; k < ids->nelts; k++) {
                const char *id = APR_ARRAY_IDX(ids, k, const char *);
                if (apr_table_get(seen, id)) continue;
                apr_table_setn(seen, id, "1");
                add_baseline(&w, pool, id, next, next % 2 == 0);
                if (next % 2 == 0)
                    APR_ARRAY_PUSH(sel, const char *) = apr_psprintf(pool,
                        "{\"experienceId\":\"x%u\",\"variantIndex\":1,\"variants\":{\"%s\":\"v%u\"},"
                        "\"sticky\":false}", next, id, next);
                next++;
            }
            baselines[i] = (size_t)ids->nelts;
            selected[i] = 0;
            for (int k = 0; k < ids->nelts; k++)
                if (apr_table_get(w.selected, APR_ARRAY_IDX(ids, k, const char *))) selected[i]++;
        }
        sel_json = apr_pstrcat(pool, "[", apr_array_pstrcat(pool, sel, ','), "]", NULL);
        if (ctfl_selections_from_value(pool, parse_or_die(pool, sel_json), &w.selections) != 0) {
            fprintf(stderr, "region_bench: selections refused\n");
            return 1;
        }
        w.profile = parse_or_die(pool,
            "{\"id\":\"bench-profile\",\"stableId\":\"bench-profile\",\"random\":0.5,"
            "\"audiences\":[],\"traits\":{},\"location\":{\"city\":\"Berlin\"},"
            "\"session\":{\"id\":\"s\",\"isReturningVisitor\":false,\"landingPage\":{},"
            "\"count\":1,\"activeSessionLength\":0,\"averageSessionLength\":0}}");
        w.flags = parse_or_die(pool, "{\"bench-flag\":true}");
    }

    if (profile_page) {
        for (int i = 0; i < NPAGES; i++) {
            if (strcmp(pages[i], profile_page)) continue;
            jobs[i].mode = profile_mode;
            for (long k = 0; k < repeat; k++) run(&jobs[i]);
            printf("region_bench --profile %s --mode %s: %u rewritten, %u kept\n", pages[i],
                   mode_names[profile_mode], jobs[i].rewritten, jobs[i].kept);
            return profile_mode == MODE_BARE || jobs[i].rewritten == baselines[i] ? 0 : 1;
        }
        fprintf(stderr, "region_bench: unknown page %s\n", profile_page);
        return 1;
    }

    printf("region_bench: %d KB chunks, median of %d rounds >= %.2f s; warm index of %zu entries,"
           " %d selections\n", CHUNK / 1024, ROUNDS, MIN_SECONDS,
           (size_t)ctfl_entries_count(w.entries), w.selections->nelts);
    /* Correctness first: a failed check means the numbers would not mean anything. */
    for (int i = 0; i < NPAGES; i++)
        for (int m = MODE_BARE; m <= MODE_GRANTED; m++) {
            jobs[i].mode = (enum mode)m;
            ok = verify(&jobs[i], baselines[i], selected[i]) && ok;
        }
    printf("checks: %s\n", ok ? "all passed" : "FAILED (numbers below measure something else)");
    printf("%-15s %8s %5s %4s | %-8s %9s %9s %7s %9s %7s %9s %7s\n", "page", "bytes", "elems",
           "sel", "clock", "memcpy", "bare", "ratio", "unknown", "ratio", "granted", "ratio");
    for (int i = 0; i < NPAGES; i++) {
        result r[4];
        for (int m = MODE_MEMCPY; m <= MODE_GRANTED; m++) {
            jobs[i].mode = (enum mode)m;
            r[m] = measure(&jobs[i]);
        }
        printf("%-15s %8zu %5zu %4zu | %-8s %9.0f %9.0f %6.4fx %9.0f %6.4fx %9.0f %6.4fx\n",
               pages[i], jobs[i].len, baselines[i], selected[i], "cpu", r[0].cpu_mbs,
               r[1].cpu_mbs, r[1].cpu_mbs / r[0].cpu_mbs, r[2].cpu_mbs, r[2].cpu_mbs / r[0].cpu_mbs,
               r[3].cpu_mbs, r[3].cpu_mbs / r[0].cpu_mbs);
        printf("%-15s %8s %5s %4s | %-8s %9.0f %9.0f %6.4fx %9.0f %6.4fx %9.0f %6.4fx\n", "", "",
               "", "", "wall", r[0].wall_mbs, r[1].wall_mbs, r[1].wall_mbs / r[0].wall_mbs,
               r[2].wall_mbs, r[2].wall_mbs / r[0].wall_mbs, r[3].wall_mbs,
               r[3].wall_mbs / r[0].wall_mbs);
        printf("%-15s %8s %5s %4s | %-8s %9.1f %9.1f %7s %9.1f %7s %9.1f\n", "", "", "", "",
               "faults", r[0].minflt_per_run, r[1].minflt_per_run, "", r[2].minflt_per_run, "",
               r[3].minflt_per_run);
        sink += jobs[i].sink;
        free(jobs[i].out);
    }
    printf("(MB/s of input; cpu = by thread CPU time, wall = by the monotonic clock; ratio =\n"
           " variant / memcpy in the same run; faults = minor page faults per page; sink %zu)\n",
           sink % 10);
    apr_pool_destroy(pool);
    apr_terminate();
    return ok ? 0 : 1;
}
