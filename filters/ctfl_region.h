/* ctfl_region — personalize one complete marked element (issue 3; no httpd headers).
 *
 * Input: the bytes of one element that ctfl_rewrite handed to its on_element
 * callback (a start tag carrying data-ctfl-baseline-id, data-ctfl-entry-id,
 * data-ctfl-flag or data-ctfl-flag-if, to its end), the page charset and the
 * visitor's resolution environment. Output: the replacement bytes, made by
 * splicing into the original bytes:
 *
 *  - the element is resolved (spec §4.3) and its start tag gets the §4.6
 *    attributes: an existing attribute's value is replaced in place, a missing
 *    one is inserted before '>' (or "/>"), stale data-ctfl-optimization-id /
 *    -sticky / -empty-variant are dropped; every other byte of the tag stays;
 *  - direct child <template data-ctfl-variant-id="ID"> elements are the inline
 *    variants: the chosen variant's template content becomes the content, and
 *    every variant template is removed in every case; an empty variant keeps the
 *    start and end tags with nothing between them;
 *  - descendants with data-ctfl-field="F" (not inside a nested marked element)
 *    get the resolved entry's field when a variant was chosen (a Rich Text field
 *    with merge tags also for the baseline: the origin cannot render the
 *    visitor's profile); with data-ctfl-field-attr="src"|"href" the attribute is
 *    set to the asset's (or string's) URL instead;
 *  - data-ctfl-flag="K" / data-ctfl-flag-if="K" (spec §4.4) on the element or
 *    its descendants: content = the flag value / element removed unless truthy;
 *  - nested marked elements are resolved the same way, to CTFL_REGION_MAX_DEPTH.
 * An outer element with flag attributes only (custom flags apply anywhere on
 * the page) has no entry: nothing is stamped on it and it has no variant
 * templates; its flags apply, and marked elements inside it are resolved.
 *
 * Structure comes from three sources that must agree, or the element is kept
 * unchanged ("fail open", with a reason): the ctfl_scan tokenizer (exact byte
 * offsets), ctfl_rewrite itself run on the element and its content (where
 * marked, field, flag and template elements end, with the rewriter's own
 * implied-end rules), and libxml2 on the element's tags (decoded attribute
 * values; the tree: its k-th element must be the tokenizer's k-th start tag,
 * and every extent its subtree).
 * Text that is inserted is HTML-escaped and written in the page charset, with
 * numeric character references for what it cannot represent; original bytes
 * (kept content, templates) are never converted.
 *
 * Threads: ctfl_region_global_init() once before threads start (libxml2);
 * everything else only uses the pools passed in. */
#ifndef CTFL_REGION_H
#define CTFL_REGION_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "ctfl_value.h"
#include "ctfl_resolve.h"
#include "ctfl_scan.h"

#define CTFL_REGION_MAX_DEPTH 16          /* marked-element nesting levels resolved */
#define CTFL_REGION_DEFAULT_MAX_OUTPUT (8u * 1024u * 1024u)

typedef struct ctfl_region ctfl_region;

/* id -> resolved entry (ctfl_entries_entry) or asset; NULL when unknown or
 * unavailable (then the origin's content stays). */
typedef const ctfl_value *(*ctfl_region_lookup_fn)(void *ctx, const char *id);

typedef struct {                         /* zero-initialise: fields may be added at the end */
    int personalize;                     /* 0: no consent / no profile: keep the origin's
                                            content (attributes are still stamped, variant
                                            templates still removed) */
    const apr_array_header_t *selections;/* of ctfl_selected_optimization; NULL: none */
    const ctfl_value *profile;           /* for merge tags; NULL: fallbacks */
    const ctfl_value *flags;             /* spec §4.4 flags object; NULL: no flags
                                            (flag elements keep their content) */
    ctfl_region_lookup_fn entry;         /* NULL: no entries */
    ctfl_region_lookup_fn asset;         /* for asset links left unresolved; may be NULL */
    void *lookup_ctx;
    const ctfl_attr_options *attr_options; /* may be NULL */
    apr_size_t max_output;               /* 0: CTFL_REGION_DEFAULT_MAX_OUTPUT */
    const ctfl_tag *tags;                /* the element's tags from the page's scan
                                            (ctfl_rewriter_element_tags), or NULL: it
                                            is scanned again */
    int ntags;
} ctfl_region_env;

typedef enum {
    CTFL_REGION_KEPT = 0,                /* *out is the original element */
    CTFL_REGION_REWRITTEN = 1            /* *out is the replacement (may equal the input) */
} ctfl_region_status;

typedef enum {
    CTFL_REGION_ORIGIN = 0,              /* the origin's content (variant templates removed) */
    CTFL_REGION_TEMPLATE,                /* the chosen variant's template content */
    CTFL_REGION_EMPTY,                   /* empty variant: no content */
    CTFL_REGION_REMOVED,                 /* data-ctfl-flag-if falsy: element removed */
    CTFL_REGION_DEPTH_CAP                /* nested too deep: bytes kept as they were */
} ctfl_region_content;

typedef struct {                         /* one marked element, outer or nested */
    unsigned depth;                      /* 0: the outer element; an outer element with
                                            only flag attributes is not listed, but
                                            counts (what is inside it is at 1) */
    const char *baseline_id;             /* as marked; NULL when missing or not a valid id */
    const char *entry_id;                /* data-ctfl-entry-id stamped (resolved id); NULL: none */
    int resolved;                        /* 0: not resolved (personalize off, entry unavailable) */
    ctfl_resolve_outcome outcome;        /* when resolved */
    const char *experience_id;           /* the selection applied, or NULL */
    ctfl_region_content content;
    unsigned fields_bound;               /* data-ctfl-field elements filled from the entry */
} ctfl_region_element;

typedef struct {
    const char *reason;                  /* KEPT: why (short static string); else NULL */
    apr_array_header_t *elements;        /* of ctfl_region_element, document order */
    unsigned templates_removed;          /* variant templates dropped */
    unsigned fields_bound;               /* contents and attributes set from entries */
    unsigned flags_applied;              /* data-ctfl-flag contents set */
    unsigned removed;                    /* elements removed by data-ctfl-flag-if */
} ctfl_region_report;

/* libxml2's one-time initialisation (xmlInitParser); call before threads start. */
void ctfl_region_global_init(void);

/* Tokenize, parse and cross-check one element: elem[0, start_tag_len) is its
 * start tag. charset: the page's canonical charset name (ctfl_charset), ASCII-
 * compatible; NULL: unknown (parsed as windows-1252, inserted text as ASCII).
 * Returns NULL and a short static *reason when the element must be kept as is.
 * elem must stay valid and unchanged while the region is used. */
ctfl_region *ctfl_region_parse(apr_pool_t *p, const char *elem, apr_size_t len,
                               apr_size_t start_tag_len, const char *charset,
                               const char **reason);

/* A libxml2 parser context kept for the elements of one page: creating one
 * costs about as much as parsing a typical element. Freed with p. One per
 * request (not thread-safe). */
typedef struct ctfl_region_parser ctfl_region_parser;
ctfl_region_parser *ctfl_region_parser_make(apr_pool_t *p);

/* ctfl_region_parse with ps's context (NULL: one of its own, freed before it
 * returns) and the element's tags as the page's scan found them
 * (ctfl_rewriter_element_tags; NULL: scanned again). Same results either way. */
ctfl_region *ctfl_region_parse_with(ctfl_region_parser *ps, apr_pool_t *p, const char *elem,
                                    apr_size_t len, apr_size_t start_tag_len,
                                    const char *charset, const ctfl_tag *tags, int ntags,
                                    const char **reason);

/* Every valid entry id marked in the element (data-ctfl-baseline-id, else
 * data-ctfl-entry-id; outer, nested, inside templates), document order, each
 * once (const char *): fetch them in one batch before ctfl_region_rewrite. */
apr_array_header_t *ctfl_region_ids(const ctfl_region *r, apr_pool_t *p);

/* The replacement bytes for the element, from the region's pool. report may be
 * NULL. On CTFL_REGION_KEPT, *out and *out_len are the original element. */
ctfl_region_status ctfl_region_rewrite(ctfl_region *r, const ctfl_region_env *env,
                                       const char **out, apr_size_t *out_len,
                                       ctfl_region_report *report);

/* Without consent (env NULL or env->personalize == 0) the rewrite only stamps
 * the marked start tags: this does it with the tokenizer alone, no libxml2 and
 * no extra rewriter passes, when the element has no <template> and a structure
 * it can vouch for (see ctfl_region.c). Returns 1 (rewritten) or -1 (kept: the
 * output cap) with exactly what ctfl_region_parse + ctfl_region_rewrite give,
 * or 0 when the element needs them. */
int ctfl_region_rewrite_unconsented(apr_pool_t *p, const char *elem, apr_size_t len,
                                    apr_size_t start_tag_len, const char *charset,
                                    const ctfl_region_env *env, const char **out,
                                    apr_size_t *out_len, ctfl_region_report *report);

/* parse + rewrite in one call (a parse failure is KEPT with its reason); tries
 * ctfl_region_rewrite_unconsented first. */
ctfl_region_status ctfl_region_rewrite_element(apr_pool_t *p, const char *elem, apr_size_t len,
                                               apr_size_t start_tag_len, const char *charset,
                                               const ctfl_region_env *env,
                                               const char **out, apr_size_t *out_len,
                                               ctfl_region_report *report);

#endif
