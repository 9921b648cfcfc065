/* ctfl_escape — escaping for the places the module writes into a page. */
#ifndef CTFL_ESCAPE_H
#define CTFL_ESCAPE_H

#include <apr_pools.h>

/* JSON text made safe inside <script>: '<' '>' '&' U+2028 U+2029 become \uXXXX.
 * Input must be valid JSON (those characters only occur inside strings). */
char *ctfl_json_for_script(apr_pool_t *p, const char *json);

/* JS/JSON string literal (with quotes), ASCII-only and script-safe. */
char *ctfl_js_string(apr_pool_t *p, const char *s);

/* HTML text / attribute value escaping: & < > " ' */
char *ctfl_html_escape(apr_pool_t *p, const char *s);
/* The character reference ctfl_html_escape writes for c, or NULL when c stays. */
const char *ctfl_html_entity(char c);

#endif
