/* ctfl_rewrite — the streaming, byte-preserving HTML rewriter (no httpd headers).
 *
 * Feed the page in any chunking; every input byte is emitted unchanged and in
 * order, except where an edit is spliced in (this slice: the bootstrap before the
 * first real </head>, else before the first real </body>). Only an unfinished
 * tag is held back between calls. Output is identical under any chunking. */
#ifndef CTFL_REWRITE_H
#define CTFL_REWRITE_H

#include <apr_pools.h>
#include <apr_errno.h>

typedef struct ctfl_rewriter ctfl_rewriter;

/* Receives output in order. data points either into the buffer passed to the
 * current ctfl_rewriter_feed() call (pass-through: the caller may reference the
 * original bytes zero-copy) or into memory owned by the rewriter; it is only valid
 * during the callback. A non-APR_SUCCESS return aborts the feed with that status. */
typedef apr_status_t (*ctfl_emit_fn)(void *ctx, const char *data, apr_size_t len);

typedef enum {
    CTFL_INJECT_NONE = 0,   /* not (yet) inserted */
    CTFL_INJECT_HEAD,       /* before </head> */
    CTFL_INJECT_BODY        /* before </body> (no </head> came first) */
} ctfl_inject_where;

typedef struct {
    ctfl_emit_fn emit;
    void *emit_ctx;
    const char *inject;          /* bytes to insert once; NULL: scan only */
    apr_size_t inject_len;
    apr_size_t max_tag_bytes;    /* cap for one held tag (0: 64 KiB); over it the tag
                                    passes through and scanning continues as text */
} ctfl_rewriter_opts;

typedef struct {
    apr_size_t bytes_in;
    apr_size_t bytes_out;
    apr_size_t max_held;         /* largest number of bytes held back at once */
    unsigned caps_hit;           /* tags that exceeded max_tag_bytes */
    ctfl_inject_where injected;
} ctfl_rewriter_stats;

ctfl_rewriter *ctfl_rewriter_create(apr_pool_t *p, const ctfl_rewriter_opts *opts);
apr_status_t ctfl_rewriter_feed(ctfl_rewriter *rw, const char *data, apr_size_t len);
/* End of input: emits whatever is still held, unchanged. */
apr_status_t ctfl_rewriter_finish(ctfl_rewriter *rw);
const ctfl_rewriter_stats *ctfl_rewriter_get_stats(const ctfl_rewriter *rw);

#endif
