/* ctfl_rewrite — streaming, byte-preserving rewriter; see ctfl_rewrite.h.
 *
 * Output model: every byte of the stream before offset `emitted` has been passed
 * to emit(); the bytes [emitted, chunk start) are in `hold` (an unfinished tag
 * from an earlier chunk). Bytes of the current chunk are emitted straight from
 * the caller's buffer. Edits are made by emitting extra bytes at a stream offset
 * that has not been emitted yet. */
#include "ctfl_rewrite.h"
#include "ctfl_scan.h"
#include <string.h>

#define DEFAULT_MAX_TAG (64 * 1024)

struct ctfl_rewriter {
    apr_pool_t *pool;
    ctfl_rewriter_opts o;
    ctfl_rewriter_stats st;
    ctfl_scan sc;

    char *hold;                 /* hold[hold_off, hold_len) = stream [emitted, chunk_base) */
    apr_size_t hold_off, hold_len, hold_cap;

    uint64_t emitted;           /* stream offset of the next byte to emit */
    uint64_t chunk_base;        /* stream offset of chunk[0] */
    const char *chunk;
    apr_size_t chunk_len;

    apr_status_t error;         /* sticky: an emit failure or a call after finish */
    int finished;
};

static apr_status_t out(ctfl_rewriter *rw, const char *data, apr_size_t len)
{
    apr_status_t rv;
    if (!len)
        return APR_SUCCESS;
    rv = rw->o.emit(rw->o.emit_ctx, data, len);
    if (rv != APR_SUCCESS)
        rw->error = rv;
    else
        rw->st.bytes_out += len;
    return rv;
}

/* Emit the stream up to offset `to` (held bytes first, then the chunk). */
static apr_status_t emit_upto(ctfl_rewriter *rw, uint64_t to)
{
    apr_status_t rv;
    if (to <= rw->emitted)
        return APR_SUCCESS;
    if (rw->emitted < rw->chunk_base) {
        uint64_t stop = to < rw->chunk_base ? to : rw->chunk_base;
        apr_size_t n = (apr_size_t)(stop - rw->emitted);
        if ((rv = out(rw, rw->hold + rw->hold_off, n)) != APR_SUCCESS)
            return rv;
        rw->hold_off += n;
        rw->emitted = stop;
        if (rw->hold_off == rw->hold_len)
            rw->hold_off = rw->hold_len = 0;
    }
    if (to > rw->emitted) {
        apr_size_t from = (apr_size_t)(rw->emitted - rw->chunk_base);
        if ((rv = out(rw, rw->chunk + from, (apr_size_t)(to - rw->emitted))) != APR_SUCCESS)
            return rv;
        rw->emitted = to;
    }
    return APR_SUCCESS;
}

/* Append bytes to the hold buffer (grows by doubling; pool memory). */
static void hold_append(ctfl_rewriter *rw, const char *data, apr_size_t len)
{
    if (!len)
        return;
    if (rw->hold_off && rw->hold_len + len > rw->hold_cap) {
        memmove(rw->hold, rw->hold + rw->hold_off, rw->hold_len - rw->hold_off);
        rw->hold_len -= rw->hold_off;
        rw->hold_off = 0;
    }
    if (rw->hold_len + len > rw->hold_cap) {
        apr_size_t cap = rw->hold_cap ? rw->hold_cap : 256;
        char *nb;
        while (cap < rw->hold_len + len)
            cap *= 2;
        nb = apr_palloc(rw->pool, cap);
        if (rw->hold_len)
            memcpy(nb, rw->hold, rw->hold_len);
        rw->hold = nb;
        rw->hold_cap = cap;
    }
    memcpy(rw->hold + rw->hold_len, data, len);
    rw->hold_len += len;
}

ctfl_rewriter *ctfl_rewriter_create(apr_pool_t *p, const ctfl_rewriter_opts *opts)
{
    ctfl_rewriter *rw = apr_pcalloc(p, sizeof(*rw));
    rw->pool = p;
    rw->o = *opts;
    if (!rw->o.max_tag_bytes)
        rw->o.max_tag_bytes = DEFAULT_MAX_TAG;
    ctfl_scan_init(&rw->sc);
    return rw;
}

static int tag_is(const ctfl_tag *t, int kind, const char *name)
{
    return t->kind == kind && !t->name_overflow && strcmp(t->name, name) == 0;
}

static apr_status_t on_tag(ctfl_rewriter *rw, const ctfl_tag *t)
{
    apr_status_t rv;
    ctfl_inject_where where;

    if (t->end - t->lt > rw->o.max_tag_bytes) {
        rw->st.caps_hit++;                     /* passed through, not acted on */
        return APR_SUCCESS;
    }
    if (!rw->o.inject || rw->st.injected != CTFL_INJECT_NONE || t->kind != CTFL_TAG_END)
        return APR_SUCCESS;
    if (tag_is(t, CTFL_TAG_END, "head"))
        where = CTFL_INJECT_HEAD;
    else if (tag_is(t, CTFL_TAG_END, "body"))
        where = CTFL_INJECT_BODY;
    else
        return APR_SUCCESS;
    if (t->lt < rw->emitted)                   /* cannot happen: a short tag is held */
        return APR_SUCCESS;
    if ((rv = emit_upto(rw, t->lt)) != APR_SUCCESS)
        return rv;
    if ((rv = out(rw, rw->o.inject, rw->o.inject_len)) != APR_SUCCESS)
        return rv;
    rw->st.injected = where;
    return APR_SUCCESS;
}

apr_status_t ctfl_rewriter_feed(ctfl_rewriter *rw, const char *data, apr_size_t len)
{
    apr_status_t rv;
    apr_size_t off = 0;
    const ctfl_tag *t;
    uint64_t keep_from, chunk_end;

    if (rw->error)
        return rw->error;
    if (rw->finished)
        return rw->error = APR_EGENERAL;
    if (!len)
        return APR_SUCCESS;

    rw->chunk_base = rw->st.bytes_in;
    rw->chunk = data;
    rw->chunk_len = len;
    rw->st.bytes_in += len;
    chunk_end = rw->chunk_base + len;

    while ((t = ctfl_scan_next(&rw->sc, data, len, &off)) != NULL)
        if ((rv = on_tag(rw, t)) != APR_SUCCESS)
            return rv;

    /* Hold back an unfinished tag, unless it is already over the cap (it is
     * counted when it completes, or at EOF, so the count does not depend on
     * the chunking). */
    keep_from = chunk_end;
    if (ctfl_scan_in_tag(&rw->sc) && chunk_end - ctfl_scan_tag_start(&rw->sc) <= rw->o.max_tag_bytes)
        keep_from = ctfl_scan_tag_start(&rw->sc);
    if ((rv = emit_upto(rw, keep_from)) != APR_SUCCESS)
        return rv;
    if (keep_from < chunk_end) {
        uint64_t from = keep_from > rw->chunk_base ? keep_from : rw->chunk_base;
        hold_append(rw, data + (from - rw->chunk_base), (apr_size_t)(chunk_end - from));
        if (rw->hold_len - rw->hold_off > rw->st.max_held)
            rw->st.max_held = rw->hold_len - rw->hold_off;
    }
    rw->chunk_base = chunk_end;                /* the chunk is now either emitted or held */
    rw->chunk = NULL;
    rw->chunk_len = 0;
    return APR_SUCCESS;
}

apr_status_t ctfl_rewriter_finish(ctfl_rewriter *rw)
{
    apr_status_t rv;
    if (rw->error)
        return rw->error;
    if (rw->finished)
        return APR_SUCCESS;
    rw->finished = 1;
    if (ctfl_scan_in_tag(&rw->sc)
        && rw->st.bytes_in - ctfl_scan_tag_start(&rw->sc) > rw->o.max_tag_bytes)
        rw->st.caps_hit++;
    rv = emit_upto(rw, rw->st.bytes_in);       /* an unfinished tag is not a tag */
    return rv;
}

const ctfl_rewriter_stats *ctfl_rewriter_get_stats(const ctfl_rewriter *rw)
{
    return &rw->st;
}
