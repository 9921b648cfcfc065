/* ctfl_rewrite — the streaming, byte-preserving HTML rewriter (no httpd headers).
 *
 * Feed the page in any chunking; every input byte is emitted unchanged and in
 * order, except where an edit is spliced in (this slice: the bootstrap before the
 * first real </head>, else before the first real </body>; with on_element, the
 * marked elements). Only an unfinished tag, and a marked element being collected,
 * are held back between calls. Output is identical under any chunking. */
#ifndef CTFL_REWRITE_H
#define CTFL_REWRITE_H

#include <apr_pools.h>
#include "ctfl_scan.h"
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

/* A complete marked element (issue 3): a start tag carrying data-ctfl-baseline-id,
 * data-ctfl-entry-id, data-ctfl-flag or data-ctfl-flag-if (custom flags apply
 * anywhere on the page), from its '<' to the end of its end tag (or to where the
 * HTML parsing rules end it implicitly: the next <li>, <td>, <p>..., an ancestor's
 * end tag; a void element or a self-closed SVG/MathML one is just its start tag).
 * Marked elements nested inside it are part of elem. elem[0, start_tag_len) is the
 * start tag; elem is only valid during the call. To replace the element set
 * *replacement (it is emitted right after the call, so pool memory is fine);
 * leave it NULL to keep the original bytes. A non-APR_SUCCESS return aborts the
 * feed with that status. */
typedef apr_status_t (*ctfl_element_fn)(void *ctx, const char *elem, apr_size_t len,
                                        apr_size_t start_tag_len,
                                        const char **replacement,
                                        apr_size_t *replacement_len);

typedef struct {                 /* zero-initialise: fields may be added at the end */
    ctfl_emit_fn emit;
    void *emit_ctx;
    const char *inject;          /* bytes to insert once; NULL: scan only */
    apr_size_t inject_len;
    apr_size_t max_tag_bytes;    /* cap for one held tag (0: 64 KiB); a longer tag
                                    passes through unchanged and is not acted on
                                    (tokenizing stays exact) */
    ctfl_element_fn on_element;  /* NULL: no element is held (phase-1 behaviour) */
    void *element_ctx;
    apr_size_t max_element_bytes; /* cap for one held element (0: 1 MiB) */
    unsigned max_elements;       /* marked elements handed over per page (0: 1000) */
} ctfl_rewriter_opts;

typedef struct {
    apr_size_t bytes_in;
    apr_size_t bytes_out;
    apr_size_t max_held;         /* largest number of bytes held back at once */
    unsigned caps_hit;           /* tags that exceeded max_tag_bytes */
    ctfl_inject_where injected;
    /* Marked elements (nested ones are part of their outer element). Each one
     * not handed to on_element passed through unchanged and is counted in
     * exactly one of the last four. */
    unsigned elements;           /* handed to on_element */
    unsigned elements_over_bytes; /* longer than max_element_bytes, or a tag in it
                                    (its start tag included) over max_tag_bytes */
    unsigned elements_unclosed;  /* still open at end of input */
    unsigned elements_malformed; /* markup the simplified tree rules cannot follow */
    unsigned elements_over_count; /* beyond max_elements */
} ctfl_rewriter_stats;

ctfl_rewriter *ctfl_rewriter_create(apr_pool_t *p, const ctfl_rewriter_opts *opts);
apr_status_t ctfl_rewriter_feed(ctfl_rewriter *rw, const char *data, apr_size_t len);
/* Structure only: instead of feeding bytes, replay the tags a scan of a
 * stream of len bytes found (in order, stream offsets), with the scanner in
 * data state after the last one. Nothing is read or emitted: on_element gets
 * elem NULL, and ctfl_rewriter_element_offset() tells where the element starts.
 * Used once on a new rewriter with on_element, then ctfl_rewriter_finish.
 * The elements handed over and the stats are those a feed of the bytes gives. */
apr_status_t ctfl_rewriter_replay(ctfl_rewriter *rw, const ctfl_tag *tags, int n, uint64_t len);
/* During on_element: the stream offset of the element's '<'. */
uint64_t ctfl_rewriter_element_offset(const ctfl_rewriter *rw);
/* End of input: emits whatever is still held, unchanged. */
apr_status_t ctfl_rewriter_finish(ctfl_rewriter *rw);
const ctfl_rewriter_stats *ctfl_rewriter_get_stats(const ctfl_rewriter *rw);

/* During on_element: the element's tags in order, offsets relative to elem,
 * exactly as ctfl_scan finds them in elem alone (the page's scan, handed over
 * so that it need not be repeated), or NULL (*n = 0) when the page's scan may
 * differ there (the element starts inside SVG/MathML) or it has very many tags. */
const ctfl_tag *ctfl_rewriter_element_tags(const ctfl_rewriter *rw, int *n);

/* Self-check of the built-in HTML element table (for the unit tests): 1 if good. */
int ctfl_rewrite_elem_table_ok(void);

#endif
