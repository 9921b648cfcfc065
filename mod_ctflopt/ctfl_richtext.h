/* ctfl_richtext — Contentful Rich Text documents to HTML.
 *
 * Byte-for-byte the output of documentToHtmlString() of the npm package
 * @contentful/rich-text-html-renderer 17.2.3 with default options (the oracle in
 * test/richtext-oracle), including its escaping, its handling of unknown node types and of
 * odd JSON shapes. Where the JS renderer throws, ctfl_rt_render fails. It also fails, on
 * purpose, for a few inputs that JS renders only by accident of the language (see the .c), for
 * documents nested deeper than CTFL_RT_MAX_DEPTH and for output larger than max_bytes.
 *
 * The document is a ctfl_value tree whose links may be resolved by pointer (cycles allowed):
 * the renderer reads only fixed fields of link targets and never recurses into them. */
#ifndef CTFL_RICHTEXT_H
#define CTFL_RICHTEXT_H

#include <apr_pools.h>
#include "ctfl_value.h"

/* Deepest node nesting rendered (document content = depth 1). */
#define CTFL_RT_MAX_DEPTH 64

/* Replacement text for an embedded-entry-inline node (merge tags, spec §4.5). target is the
 * node's data.target (NULL when absent; an entry when links were resolved). Return the text to
 * insert — it is HTML-escaped by the renderer, "" renders nothing — or NULL for the package's
 * default rendering ("<span>type: embedded-entry-inline id: ID</span>"). The returned string
 * must stay valid until ctfl_rt_render returns. */
typedef const char *(*ctfl_rt_inline_entry_fn)(void *ctx, const ctfl_value *target);

typedef struct {
    ctfl_rt_inline_entry_fn inline_entry;  /* NULL: default rendering for every inline entry */
    void *ctx;                             /* passed to inline_entry */
    apr_size_t max_bytes;                  /* output cap; 0 = no cap */
} ctfl_rt_options;

/* Renders doc (NULL = JS undefined, renders ""). opts may be NULL. On success returns 0 and
 * sets *html (NUL-terminated UTF-8 from p) and *len (may be NULL). On failure returns -1, sets
 * *err (may be NULL) to a short static reason, and *html to NULL. */
int ctfl_rt_render(apr_pool_t *p, const ctfl_value *doc, const ctfl_rt_options *opts,
                   const char **html, apr_size_t *len, const char **err);

#endif
