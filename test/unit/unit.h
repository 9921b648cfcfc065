/* Common includes for the cmocka unit tests. */
#ifndef CTFL_UNIT_H
#define CTFL_UNIT_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <cmocka.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

/* Path to ../shared (fixtures, corpus): $CTFL_SHARED, else ../shared next to the repo. */
static inline const char *unit_shared_dir(void)
{
    const char *d = getenv("CTFL_SHARED");
    return d && *d ? d : "../shared";
}

/* Read a whole file into pool memory; NULL when missing. */
static inline char *unit_read_file(apr_pool_t *p, const char *path, apr_size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = apr_palloc(p, (apr_size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len) *len = got;
    return buf;
}

/* One APR pool per test: setup/teardown for cmocka_unit_test_setup_teardown. */
static inline int unit_pool_setup(void **state)
{
    apr_pool_t *p;
    apr_initialize();
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) return -1;
    *state = p;
    return 0;
}
static inline int unit_pool_teardown(void **state)
{
    apr_pool_destroy((apr_pool_t *)*state);
    return 0;
}
#endif
