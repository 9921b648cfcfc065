/* ctfl_breaker — a per-process circuit breaker for one upstream service.
 *
 * After `threshold` consecutive failures, the first of them no more than
 * `window` ago, the breaker opens: calls are skipped for `cooldown`. Then one
 * caller gets to probe (half-open); its result closes or re-opens the breaker.
 * Thread-safe: shared by the request threads of a process. */
#ifndef CTFL_BREAKER_H
#define CTFL_BREAKER_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct ctfl_breaker ctfl_breaker;

typedef enum { CTFL_BREAKER_CLOSED = 0, CTFL_BREAKER_OPEN, CTFL_BREAKER_HALF_OPEN } ctfl_breaker_state;

/* threshold 0 disables the breaker (every call allowed). NULL on failure. */
ctfl_breaker *ctfl_breaker_create(apr_pool_t *p, unsigned threshold,
                                  apr_interval_time_t window, apr_interval_time_t cooldown);

/* 1 when the caller may call the service now; *probe is set when this call is the
 * single half-open probe (its outcome must be reported). 0: skip the call. */
int ctfl_breaker_allow(ctfl_breaker *b, apr_time_t now, int *probe);

/* Report the outcome of an allowed call. */
void ctfl_breaker_report(ctfl_breaker *b, apr_time_t now, int success);

ctfl_breaker_state ctfl_breaker_get_state(ctfl_breaker *b, apr_time_t now);
const char *ctfl_breaker_state_name(ctfl_breaker_state s);
unsigned ctfl_breaker_opened_count(ctfl_breaker *b);   /* times it opened */

#endif
