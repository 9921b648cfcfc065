/* ctfl_breaker — see ctfl_breaker.h. A mutex, not atomics: the state has
 * several fields that must change together, and the critical sections are a
 * few instructions long. */
#include <apr_thread_mutex.h>

#include "ctfl_breaker.h"

struct ctfl_breaker {
    apr_thread_mutex_t *lock;
    unsigned threshold;
    apr_interval_time_t window, cooldown;
    unsigned failures;            /* consecutive failures so far */
    apr_time_t first_failure;     /* time of the first of them */
    apr_time_t open_until;        /* 0: closed */
    int probing;                  /* the half-open probe is in flight */
    unsigned opened;
};

ctfl_breaker *ctfl_breaker_create(apr_pool_t *p, unsigned threshold,
                                  apr_interval_time_t window, apr_interval_time_t cooldown)
{
    ctfl_breaker *b = apr_pcalloc(p, sizeof(*b));
    if (apr_thread_mutex_create(&b->lock, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
        return NULL;
    b->threshold = threshold;
    b->window = window;
    b->cooldown = cooldown;
    return b;
}

static ctfl_breaker_state state_locked(const ctfl_breaker *b, apr_time_t now)
{
    if (!b->open_until) return CTFL_BREAKER_CLOSED;
    return now < b->open_until ? CTFL_BREAKER_OPEN : CTFL_BREAKER_HALF_OPEN;
}

int ctfl_breaker_allow(ctfl_breaker *b, apr_time_t now, int *probe)
{
    int allow = 1;
    *probe = 0;
    if (!b || !b->threshold) return 1;
    apr_thread_mutex_lock(b->lock);
    switch (state_locked(b, now)) {
    case CTFL_BREAKER_CLOSED: break;
    case CTFL_BREAKER_OPEN: allow = 0; break;
    case CTFL_BREAKER_HALF_OPEN:
        /* One probe at a time; everybody else keeps skipping until it reports. */
        if (b->probing) allow = 0;
        else b->probing = *probe = 1;
        break;
    }
    apr_thread_mutex_unlock(b->lock);
    return allow;
}

void ctfl_breaker_report(ctfl_breaker *b, apr_time_t now, int success)
{
    if (!b || !b->threshold) return;
    apr_thread_mutex_lock(b->lock);
    if (success) {
        b->failures = 0;
        b->open_until = 0;
        b->probing = 0;
    }
    else if (b->open_until) {
        /* The probe failed (or a call that was allowed before opening): stay open. */
        if (now >= b->open_until || b->probing) {
            b->open_until = now + b->cooldown;
            b->opened++;
        }
        b->probing = 0;
    }
    else {
        if (!b->failures || now - b->first_failure > b->window) {
            b->failures = 0;
            b->first_failure = now;
        }
        if (++b->failures >= b->threshold) {
            b->open_until = now + b->cooldown;
            b->opened++;
        }
    }
    apr_thread_mutex_unlock(b->lock);
}

ctfl_breaker_state ctfl_breaker_get_state(ctfl_breaker *b, apr_time_t now)
{
    ctfl_breaker_state s;
    if (!b || !b->threshold) return CTFL_BREAKER_CLOSED;
    apr_thread_mutex_lock(b->lock);
    s = state_locked(b, now);
    apr_thread_mutex_unlock(b->lock);
    return s;
}

const char *ctfl_breaker_state_name(ctfl_breaker_state s)
{
    return s == CTFL_BREAKER_OPEN ? "open" : s == CTFL_BREAKER_HALF_OPEN ? "half-open" : "closed";
}

unsigned ctfl_breaker_opened_count(ctfl_breaker *b)
{
    unsigned n;
    if (!b) return 0;
    apr_thread_mutex_lock(b->lock);
    n = b->opened;
    apr_thread_mutex_unlock(b->lock);
    return n;
}
