/* A scripted HTTP server plus a curl handle pool: the fixture of the tests of
 * the network code (ctfl_http, ctfl_experience, ctfl_cda). */
#ifndef CTFL_HTTP_FIXTURE_H
#define CTFL_HTTP_FIXTURE_H

#include "unit.h"
#include "scripted_server.h"
#include "ctfl_http.h"

typedef struct {
    apr_pool_t *p;
    ss_server *srv;
    ctfl_http_pool *hp;
    const char *new_visitor;    /* the new-visitor Experience fixture body, NULL if missing */
} http_fixture;

static inline int http_fixture_setup(void **state)
{
    http_fixture *f = calloc(1, sizeof(*f));
    apr_initialize();
    if (!f || apr_pool_create(&f->p, NULL) != APR_SUCCESS) return -1;
    f->new_visitor = unit_read_file(f->p, apr_psprintf(f->p, "%s/fixtures/experience/new-visitor.json",
                                                       unit_shared_dir()), NULL);
    *state = f;
    return 0;
}

static inline int http_fixture_teardown(void **state)
{
    http_fixture *f = *state;
    ss_stop(f->srv);
    apr_pool_destroy(f->p);     /* also cleans up the handle pool */
    free(f);
    return 0;
}

/* Start the server with its script (steps may be NULL) and a pool of max_idle handles. */
static inline void http_fixture_start(http_fixture *f, const ss_step *steps, int n, int max_idle)
{
    static const ss_step none = { .kind = SS_RESPOND, .status = 599 };
    f->srv = ss_start(steps ? steps : &none, n);
    assert_non_null(f->srv);
    f->hp = ctfl_http_pool_create(f->p, max_idle);
    assert_non_null(f->hp);
}

#endif
