/* ctfl_resolve — the SDK's entry resolution, merge tags and tracking
 * attributes (protocol spec §4.2, §4.3, §4.5, §4.6), on resolved entries from
 * ctfl_entries. Pure functions of their inputs; nothing is cached here. */
#ifndef CTFL_RESOLVE_H
#define CTFL_RESOLVE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "ctfl_value.h"

/* ---- §4.2 type predicates (exactly the SDK's type guards / zod schemas) --- */

int ctfl_is_resolved_entry(const ctfl_value *v);       /* isResolvedContentfulEntry */
int ctfl_is_unresolved_entry_link(const ctfl_value *v);
int ctfl_is_audience_entry(const ctfl_value *v);
int ctfl_is_optimization_entry(const ctfl_value *v);   /* valid nt_experience */
int ctfl_is_optimized_entry(const ctfl_value *v);      /* baseline with valid nt_experiences */
int ctfl_is_merge_tag_entry(const ctfl_value *v);
int ctfl_is_profile(const ctfl_value *v);              /* §1.6 Profile schema */

const char *ctfl_entry_id(const ctfl_value *entry);            /* sys.id or NULL */
const char *ctfl_entry_content_type(const ctfl_value *entry);  /* sys.contentType.sys.id */

/* ---- selections ---------------------------------------------------------- */

/* One SelectedOptimization. variant_index is the JSON number as sent: the
 * SDK compares it with 0 and indexes with Array.prototype.at(index - 1), so a
 * non-integer (0.5) behaves differently from its truncation. The `variants`
 * map is never consulted and not kept. */
typedef struct {
    const char *experience_id;
    double variant_index;
    int sticky;                    /* -1 absent, 0 false, 1 true */
} ctfl_selected_optimization;

/* From ctfl_json's model (array of ctfl_selection; integers only). */
apr_array_header_t *ctfl_selections_from_model(apr_pool_t *p, const apr_array_header_t *selections);
/* From data.experiences as a value (exact numbers). -1 when it is not an
 * array of {experienceId: string, variantIndex: number, sticky?: boolean}. */
int ctfl_selections_from_value(apr_pool_t *p, const ctfl_value *experiences,
                               apr_array_header_t **out);

/* ---- §4.3 resolve(baseline, selections) --------------------------------- */

typedef enum {
    CTFL_RES_NO_SELECTIONS = 0,   /* baseline: no selections */
    CTFL_RES_NOT_OPTIMIZED,       /* baseline: not an optimized entry (or not an entry) */
    CTFL_RES_NO_OPTIMIZATION,     /* baseline: no nt_experiences element is selected */
    CTFL_RES_BASELINE_SELECTED,   /* baseline + selection: variantIndex 0 */
    CTFL_RES_NO_VARIANT,          /* baseline + selection: no component/variant at that index */
    CTFL_RES_EMPTY_VARIANT,       /* baseline + selection + is_empty_variant */
    CTFL_RES_VARIANT_UNRESOLVED,  /* baseline + selection: variant not a resolved nt_variants entry */
    CTFL_RES_VARIANT              /* the variant entry + selection */
} ctfl_resolve_outcome;

typedef struct {
    const ctfl_value *entry;                          /* resolved entry (baseline when not a variant) */
    const ctfl_selected_optimization *selection;      /* into selections; NULL when none applies */
    int selection_index;                              /* its index in selections, or -1 */
    int is_empty_variant;
    const ctfl_value *optimization_entry;             /* the matched nt_experience, or NULL */
    ctfl_resolve_outcome outcome;                     /* why (for logs and tests) */
} ctfl_resolution;

/* selections: array of ctfl_selected_optimization, or NULL. Any baseline is
 * accepted (NULL or not an entry ⇒ itself, not optimized). */
void ctfl_resolve(const ctfl_value *baseline, const apr_array_header_t *selections,
                  ctfl_resolution *out);

const char *ctfl_resolve_outcome_name(ctfl_resolve_outcome o);

/* ---- §4.5 merge tags ----------------------------------------------------- */

/* The profile value for a merge tag entry: NULL when the entry is not a merge
 * tag entry; nt_fallback (possibly NULL) when the profile is not a valid
 * Profile or no selector finds a truthy string/number/boolean. Depends on the
 * visitor: never cache the result across visitors. */
const char *ctfl_merge_tag_resolve(apr_pool_t *p, const ctfl_value *merge_tag_entry,
                                   const ctfl_value *profile);
/* normalizeSelectors: "a_b_c" -> "a_b_c", "a.b_c", "a.b.c" (array of char *). */
apr_array_header_t *ctfl_merge_tag_selectors(apr_pool_t *p, const char *id);
/* getValueFromProfile: first truthy selector, stringified; NULL otherwise. */
const char *ctfl_merge_tag_profile_value(apr_pool_t *p, const char *id, const ctfl_value *profile);

/* ---- §4.6 tracking attributes -------------------------------------------- */

typedef struct {
    const char *name;
    const char *value;
} ctfl_attr;

typedef enum { CTFL_TRACK_UNSET = 0, CTFL_TRACK_FALSE, CTFL_TRACK_TRUE } ctfl_track_override;

typedef struct {                   /* all zero: no option attributes */
    int clickable;                 /* non-zero: data-ctfl-clickable="true" */
    ctfl_track_override track_clicks, track_hovers, track_views;
} ctfl_attr_options;

/* The SDK's attributes (resolveOptimizedEntryTrackingAttributes) as an array
 * of ctfl_attr in its key order: baseline-id, clickable, empty-variant,
 * entry-id, optimization-id, sticky, track-clicks, track-hovers, track-views,
 * variant-index. Values are JS-stringified; an attribute whose value would be
 * undefined or an empty string is left out, none is invented (no
 * optimization-context-id, no duplication-scope). r NULL or r->entry without
 * an id: the entry id is the baseline id (the baseline stays). opt may be NULL. */
apr_array_header_t *ctfl_tracking_attributes(apr_pool_t *p, const char *baseline_id,
                                             const ctfl_resolution *r,
                                             const ctfl_attr_options *opt);

#endif
