/* ctfl_entries — CDA collection responses to an index of linked entries.
 *
 * Protocol spec §4.1/§9.5: a response `{items, includes: {Entry, Asset}}` has
 * every link unresolved. The index keeps the raw entries and assets by sys.id
 * (what may be cached: nothing here depends on the visitor) and hands out
 * resolved entries, in which every link `{sys: {type: "Link", linkType:
 * "Entry"|"Asset", id}}` inside `fields` (at any depth: arrays, rich text
 * `data.target`, ...) is replaced by the linked entry or asset, as
 * contentful.js does. Links to anything not in the index stay links.
 *
 * Resolved entries share structure and link to each other, so the graph may be
 * cyclic (rich text embedding its own entry, A -> B -> A): walk it with a depth
 * bound. Raw values are never modified.
 *
 * Not thread-safe: ctfl_entries_entry() fills a memo. Use one index per
 * request (or per thread), built in that request's pool. */
#ifndef CTFL_ENTRIES_H
#define CTFL_ENTRIES_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "ctfl_value.h"

typedef struct ctfl_entries ctfl_entries;

ctfl_entries *ctfl_entries_make(apr_pool_t *p);

/* Add every entry of items and includes.Entry, and every asset of
 * includes.Asset (and Asset items), keyed by sys.id. A later value for the
 * same id replaces the earlier one (as contentful.js's lookup map does), so
 * add newer data last. Elements without an object sys and a non-empty string
 * sys.id are skipped. Returns -1 with *err when the response is a CDA error
 * (`sys.type "Error"`: "cda error: NotFound") or has no items array. The
 * values must outlive the index (same pool or a parent). */
int ctfl_entries_add_response(ctfl_entries *e, const ctfl_value *response, const char **err);

/* Parse with ctfl_json_parse_value, then ctfl_entries_add_response. */
int ctfl_entries_add_json(ctfl_entries *e, const char *text, apr_size_t len, const char **err);

/* One raw entry / asset (e.g. from the shared cache); -1 if it has no sys.id. */
int ctfl_entries_add_entry(ctfl_entries *e, const ctfl_value *raw_entry);
int ctfl_entries_add_asset(ctfl_entries *e, const ctfl_value *raw_asset);

/* Copy every raw entry and asset of src into dst (src wins on equal ids).
 * src's values are shared, not copied: src's pool must outlive dst. */
void ctfl_entries_merge(ctfl_entries *dst, const ctfl_entries *src);

/* The entry with links resolved, or NULL when the id is not in the index. */
const ctfl_value *ctfl_entries_entry(ctfl_entries *e, const char *id);
/* The asset as received (assets carry no entry links), or NULL. */
const ctfl_value *ctfl_entries_asset(const ctfl_entries *e, const char *id);
/* The entry as received, links unresolved (what to cache), or NULL. */
const ctfl_value *ctfl_entries_raw(const ctfl_entries *e, const char *id);

apr_size_t ctfl_entries_count(const ctfl_entries *e);       /* entries */
apr_size_t ctfl_entries_asset_count(const ctfl_entries *e);
/* Ids of all entries (const char *), in no particular order. */
apr_array_header_t *ctfl_entries_ids(const ctfl_entries *e, apr_pool_t *p);

/* Ids (const char *, each once) of entries linked from `id` within
 * `max_hops` links (include=10 ⇒ 10) that the index lacks: what to fetch
 * before resolving. The walk follows raw links only through present entries. */
apr_array_header_t *ctfl_entries_missing(const ctfl_entries *e, apr_pool_t *p,
                                         const char *id, int max_hops);

#endif
