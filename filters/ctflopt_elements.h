/* Marked elements in the CTFLOPT filter (glue around ctfl_region). */
#ifndef CTFLOPT_ELEMENTS_H
#define CTFLOPT_ELEMENTS_H

#include "ctflopt_private.h"
#include "ctfl_rewrite.h"

typedef struct ctflopt_elements ctflopt_elements;

/* debug: collect a per-element description for CtflOptDebug. */
ctflopt_elements *ctflopt_elements_create(request_rec *r, const ctflopt_req *q, int debug);
/* The page's rewriter: each element's tags are taken from its scan. */
void ctflopt_elements_set_rewriter(ctflopt_elements *el, const ctfl_rewriter *rw);
/* The page charset (canonical name) once the first bytes have been seen. */
void ctflopt_elements_set_charset(ctflopt_elements *el, const char *charset);
/* ctfl_element_fn for ctfl_rewriter_opts.on_element (ctx = the ctflopt_elements). */
apr_status_t ctflopt_elements_on_element(void *ctx, const char *elem, apr_size_t len,
                                         apr_size_t start_tag_len, const char **replacement,
                                         apr_size_t *replacement_len);
void ctflopt_elements_finish(ctflopt_elements *el, const ctfl_rewriter_stats *st);
/* "baseline>resolved(outcome,experience,content) ..." or "none". */
const char *ctflopt_elements_debug(const ctflopt_elements *el);

#endif
