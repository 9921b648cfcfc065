/* libFuzzer target: Experience API response decoding (ctfl_json).
 *
 * Build and run (from the repo root; see the lead's `make -f apxs.mk fuzz`):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Imod_ctflopt \
 *     $(pkg-config --cflags apr-1 jansson) test/fuzz/fuzz_json.c mod_ctflopt/ctfl_json.c \
 *     $(pkg-config --libs apr-1 jansson) -lm -o build/fuzz_json
 *   build/fuzz_json -max_total_time=60 -max_len=65536 test/fuzz/corpus/json
 *
 * Every input goes through both entry points; on success the outputs must be
 * non-NULL, NUL-terminated and printable ASCII (they end up in headers and
 * inside <script>). */
#include "ctfl_json.h"

#include <apr_general.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static apr_pool_t *root_pool;

static void check_ascii(const char *s)
{
    if (!s) abort();
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    ctfl_experience_data *d = NULL;
    const char *err = NULL, *code;

    if (!root_pool) {
        apr_initialize();
        if (apr_pool_create(&root_pool, NULL) != APR_SUCCESS) abort();
    }
    apr_pool_create(&p, root_pool);

    if (ctfl_json_decode_experience(p, (const char *)data, size, &d, &err) == 0) {
        if (!d || err) abort();
        check_ascii(d->profile_json);
        check_ascii(d->selections_json);
        check_ascii(d->changes_json);
        check_ascii(d->flags_json);
        if (!d->profile_id || !d->selections || !d->experiences_list) abort();
        for (const char *s = d->experiences_list; *s; s++)
            if (*s == '\r' || *s == '\n' || *s == ' ') abort();
    } else {
        if (d || !err) abort();
        check_ascii(err);
    }
    code = ctfl_json_error_code(p, (const char *)data, size);
    if (code) check_ascii(code);

    apr_pool_destroy(p);
    return 0;
}
