/* ctfl_scan — byte-level HTML5 tokenizer subset; see ctfl_scan.h.
 *
 * State names follow the WHATWG tokenizer. Only what decides where tags start
 * and end is tracked; text, comment and attribute contents are skipped, with
 * memchr fast paths wherever a state waits for one particular byte. */
#include "ctfl_scan.h"
#include <string.h>

enum {
    S_DATA, S_RCDATA, S_RAWTEXT, S_SCRIPT, S_PLAINTEXT,
    /* "possible tag" states: S_TAG_OPEN .. S_TEXT_END_TAG_NAME */
    S_TAG_OPEN, S_END_TAG_OPEN, S_TAG_NAME, S_BEFORE_ATTR_NAME, S_ATTR_NAME,
    S_AFTER_ATTR_NAME, S_BEFORE_ATTR_VALUE, S_ATTR_VALUE_DQ, S_ATTR_VALUE_SQ,
    S_ATTR_VALUE_UNQ, S_AFTER_ATTR_VALUE, S_SELF_CLOSING,
    S_TEXT_LT, S_TEXT_END_TAG_OPEN, S_TEXT_END_TAG_NAME,
    S_MARKUP_DECL, S_COMMENT_START, S_COMMENT_START_DASH, S_COMMENT,
    S_COMMENT_END_DASH, S_COMMENT_END, S_COMMENT_END_BANG, S_BOGUS_COMMENT,
    S_CDATA, S_CDATA_BRACKET, S_CDATA_END,
    S_SD_ESCAPE_START, S_SD_ESCAPE_START_DASH, S_SD_ESCAPED, S_SD_ESCAPED_DASH,
    S_SD_ESCAPED_DASH_DASH, S_SD_ESCAPED_LT, S_SD_DOUBLE_ESCAPE_START,
    S_SD_DOUBLE_ESCAPED, S_SD_DOUBLE_ESCAPED_DASH, S_SD_DOUBLE_ESCAPED_DASH_DASH,
    S_SD_DOUBLE_ESCAPED_LT, S_SD_DOUBLE_ESCAPE_END
};

static const char *const state_names[] = {
    "data", "rcdata", "rawtext", "script-data", "plaintext",
    "tag-open", "end-tag-open", "tag-name", "before-attribute-name", "attribute-name",
    "after-attribute-name", "before-attribute-value", "attribute-value-double-quoted",
    "attribute-value-single-quoted", "attribute-value-unquoted",
    "after-attribute-value-quoted", "self-closing-start-tag",
    "text-less-than-sign", "text-end-tag-open", "text-end-tag-name",
    "markup-declaration-open", "comment-start", "comment-start-dash", "comment",
    "comment-end-dash", "comment-end", "comment-end-bang", "bogus-comment",
    "cdata-section", "cdata-section-bracket", "cdata-section-end",
    "script-data-escape-start", "script-data-escape-start-dash", "script-data-escaped",
    "script-data-escaped-dash", "script-data-escaped-dash-dash",
    "script-data-escaped-less-than-sign", "script-data-double-escape-start",
    "script-data-double-escaped", "script-data-double-escaped-dash",
    "script-data-double-escaped-dash-dash", "script-data-double-escaped-less-than-sign",
    "script-data-double-escape-end"
};

#define NO_MATCH 0xFF   /* end_match: the letters after "<" can no longer match */

static inline int is_ws(unsigned c)
{
    /* CR counts: the input stream preprocessor turns it into LF. */
    return c == ' ' || c == '\n' || c == '\t' || c == '\f' || c == '\r';
}
static inline int is_alpha(unsigned c) { return ((c | 0x20) - 'a') < 26; }
static inline unsigned to_lower(unsigned c) { return (c - 'A') < 26 ? c | 0x20 : c; }

static int name_is(const ctfl_tag *t, const char *s, unsigned n)
{
    return !t->name_overflow && t->name_len == n && memcmp(t->name, s, n) == 0;
}
#define NAME_IS(t, lit) name_is((t), lit, sizeof(lit) - 1)

void ctfl_scan_init(ctfl_scan *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->state = S_DATA;
}

int ctfl_scan_in_tag(const ctfl_scan *sc)
{
    return (sc->state >= S_TAG_OPEN && sc->state <= S_TEXT_END_TAG_NAME)
        || sc->state == S_SD_ESCAPED_LT;
}

uint64_t ctfl_scan_tag_start(const ctfl_scan *sc) { return sc->tag_lt; }

const char *ctfl_scan_state_name(const ctfl_scan *sc)
{
    return sc->state < sizeof(state_names) / sizeof(state_names[0])
        ? state_names[sc->state] : "?";
}

static void begin_tag(ctfl_scan *sc, int kind)
{
    ctfl_tag *t = &sc->tag;
    t->kind = kind;
    t->name_len = 0;
    t->name[0] = '\0';
    t->name_overflow = 0;
    t->self_closing = 0;
    t->foreign = 0;
    t->attrs = 0;
    t->lt = sc->tag_lt;
    t->end = 0;
}

static inline void name_push(ctfl_tag *t, unsigned c)
{
    if (t->name_len < CTFL_TAG_NAME_MAX) {
        t->name[t->name_len++] = (char)to_lower(c);
        t->name[t->name_len] = '\0';
    } else {
        t->name_overflow = 1;
    }
}

static inline void attr_begin(ctfl_scan *sc)
{
    sc->attr_len = 0;
    sc->attr_overflow = 0;
}

static inline void attr_push(ctfl_scan *sc, unsigned c)
{
    if (sc->attr_len < CTFL_ATTR_NAME_MAX)
        sc->attr[sc->attr_len++] = (char)to_lower(c);
    else
        sc->attr_overflow = 1;
}

/* Called when an attribute name is complete. */
static void attr_done(ctfl_scan *sc)
{
    static const struct { const char *name; unsigned len; unsigned bit; } known[] = {
        { "data-ctfl-baseline-id", 21, CTFL_ATTR_BASELINE_ID },
        { "data-ctfl-entry-id", 18, CTFL_ATTR_ENTRY_ID },
        { "color", 5, CTFL_ATTR_FONT_BREAK },
        { "face", 4, CTFL_ATTR_FONT_BREAK },
        { "size", 4, CTFL_ATTR_FONT_BREAK },
    };
    if (sc->attr_overflow)
        return;
    for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (sc->attr_len == known[i].len && memcmp(sc->attr, known[i].name, known[i].len) == 0)
            sc->tag.attrs |= known[i].bit;
}

/* Start tags that take the parser out of SVG/MathML content (tree construction,
 * "parsing tokens in foreign content"). */
static int is_breakout(const ctfl_tag *t)
{
    static const char *const names[] = {
        "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl",
        "dt", "em", "embed", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i",
        "img", "li", "listing", "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s",
        "small", "span", "strong", "strike", "sub", "sup", "table", "tt", "u", "ul", "var"
    };
    if (t->name_overflow)
        return 0;
    if (NAME_IS(t, "font"))
        return (t->attrs & CTFL_ATTR_FONT_BREAK) != 0;
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(t->name, names[i]) == 0)
            return 1;
    return 0;
}

static void set_text_state(ctfl_scan *sc, unsigned char state, const char *end_name)
{
    sc->state = state;
    sc->end_name = end_name;
    sc->end_name_len = (unsigned)strlen(end_name);
}

/* A tag is complete: update SVG/MathML depth and pick the next tokenizer state
 * (what the tree builder would switch the tokenizer to). */
static void tag_done(ctfl_scan *sc)
{
    static const char *const rawtext[] = {
        "style", "xmp", "iframe", "noembed", "noframes", "noscript"
    };
    ctfl_tag *t = &sc->tag;
    int svg_or_math = NAME_IS(t, "svg") || NAME_IS(t, "math");

    sc->state = S_DATA;
    if (t->kind == CTFL_TAG_END) {
        t->foreign = sc->foreign_depth > 0;
        if (sc->foreign_depth) {
            if (svg_or_math)
                sc->foreign_depth--;
            else if (NAME_IS(t, "br") || NAME_IS(t, "p"))
                sc->foreign_depth = 0;
        }
        return;
    }
    if (sc->foreign_depth) {
        if (is_breakout(t)) {
            sc->foreign_depth = 0;
        } else {
            t->foreign = 1;
            if (svg_or_math && !t->self_closing)
                sc->foreign_depth++;
            return;
        }
    }
    if (svg_or_math) {
        t->foreign = 1;
        if (!t->self_closing)
            sc->foreign_depth = 1;
        return;
    }
    if (t->name_overflow)
        return;
    if (NAME_IS(t, "script")) {
        set_text_state(sc, S_SCRIPT, "script");
    } else if (NAME_IS(t, "title")) {
        set_text_state(sc, S_RCDATA, "title");
    } else if (NAME_IS(t, "textarea")) {
        set_text_state(sc, S_RCDATA, "textarea");
    } else if (NAME_IS(t, "plaintext")) {
        sc->state = S_PLAINTEXT;
    } else {
        for (unsigned i = 0; i < sizeof(rawtext) / sizeof(rawtext[0]); i++)
            if (strcmp(t->name, rawtext[i]) == 0) {
                set_text_state(sc, S_RAWTEXT, rawtext[i]);
                break;
            }
    }
}

/* Letters after "<" in script data compared with "script" (double escaping). */
static inline void match_script(ctfl_scan *sc, unsigned c)
{
    if (sc->end_match < 6 && to_lower(c) == (unsigned char)"script"[sc->end_match])
        sc->end_match++;
    else
        sc->end_match = NO_MATCH;
}

const ctfl_tag *ctfl_scan_next(ctfl_scan *sc, const char *data, apr_size_t len,
                               apr_size_t *off)
{
    const unsigned char *const start = (const unsigned char *)data;
    const unsigned char *p = start + *off;
    const unsigned char *const end = start + len;
    const uint64_t base = sc->pos - *off;     /* stream offset of data[0] */
    const unsigned char *q;
    unsigned c;

#define AT(ptr) (base + (uint64_t)((ptr) - start))

    while (p < end) {
        c = *p;
        switch (sc->state) {
        case S_DATA:
            q = memchr(p, '<', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            sc->tag_lt = AT(q);
            sc->state = S_TAG_OPEN;
            p = q + 1;
            break;

        case S_RCDATA:
        case S_RAWTEXT:
        case S_SCRIPT:
            q = memchr(p, '<', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            sc->tag_lt = AT(q);
            sc->text_state = sc->state;
            sc->state = S_TEXT_LT;
            p = q + 1;
            break;

        case S_PLAINTEXT:
            p = end;
            break;

        case S_TAG_OPEN:
            if (c == '!') {
                sc->md = 0;
                sc->state = S_MARKUP_DECL;
                p++;
            } else if (c == '/') {
                sc->state = S_END_TAG_OPEN;
                p++;
            } else if (is_alpha(c)) {
                begin_tag(sc, CTFL_TAG_START);
                sc->state = S_TAG_NAME;
            } else if (c == '?') {
                sc->state = S_BOGUS_COMMENT;
            } else {
                sc->state = S_DATA;            /* the '<' was text */
            }
            break;

        case S_END_TAG_OPEN:
            if (is_alpha(c)) {
                begin_tag(sc, CTFL_TAG_END);
                sc->state = S_TAG_NAME;
            } else if (c == '>') {
                sc->state = S_DATA;            /* "</>" is dropped */
                p++;
            } else {
                sc->state = S_BOGUS_COMMENT;
            }
            break;

        case S_TAG_NAME:
            for (; p < end; p++) {
                c = *p;
                if (is_ws(c)) {
                    sc->state = S_BEFORE_ATTR_NAME;
                    p++;
                    break;
                }
                if (c == '/') {
                    sc->state = S_SELF_CLOSING;
                    p++;
                    break;
                }
                if (c == '>') {
                    p++;
                    goto emit;
                }
                name_push(&sc->tag, c);
            }
            break;

        case S_BEFORE_ATTR_NAME:
            if (is_ws(c)) {
                p++;
            } else if (c == '/' || c == '>') {
                sc->state = S_AFTER_ATTR_NAME;
            } else {
                attr_begin(sc);
                if (c == '=') {                /* "=" starts the name */
                    attr_push(sc, c);
                    p++;
                }
                sc->state = S_ATTR_NAME;
            }
            break;

        case S_ATTR_NAME:
            for (; p < end; p++) {
                c = *p;
                if (is_ws(c) || c == '/' || c == '>') {
                    attr_done(sc);
                    sc->state = S_AFTER_ATTR_NAME;
                    break;
                }
                if (c == '=') {
                    attr_done(sc);
                    sc->state = S_BEFORE_ATTR_VALUE;
                    p++;
                    break;
                }
                attr_push(sc, c);
            }
            break;

        case S_AFTER_ATTR_NAME:
            if (is_ws(c)) {
                p++;
            } else if (c == '/') {
                sc->state = S_SELF_CLOSING;
                p++;
            } else if (c == '=') {
                sc->state = S_BEFORE_ATTR_VALUE;
                p++;
            } else if (c == '>') {
                p++;
                goto emit;
            } else {
                attr_begin(sc);
                sc->state = S_ATTR_NAME;
            }
            break;

        case S_BEFORE_ATTR_VALUE:
            if (is_ws(c)) {
                p++;
            } else if (c == '"') {
                sc->state = S_ATTR_VALUE_DQ;
                p++;
            } else if (c == '\'') {
                sc->state = S_ATTR_VALUE_SQ;
                p++;
            } else if (c == '>') {
                p++;
                goto emit;
            } else {
                sc->state = S_ATTR_VALUE_UNQ;
            }
            break;

        case S_ATTR_VALUE_DQ:
        case S_ATTR_VALUE_SQ:
            q = memchr(p, sc->state == S_ATTR_VALUE_DQ ? '"' : '\'', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            sc->state = S_AFTER_ATTR_VALUE;
            p = q + 1;
            break;

        case S_ATTR_VALUE_UNQ:
            for (; p < end; p++) {
                c = *p;
                if (is_ws(c)) {
                    sc->state = S_BEFORE_ATTR_NAME;
                    p++;
                    break;
                }
                if (c == '>') {
                    p++;
                    goto emit;
                }
            }
            break;

        case S_AFTER_ATTR_VALUE:
            if (is_ws(c)) {
                sc->state = S_BEFORE_ATTR_NAME;
                p++;
            } else if (c == '/') {
                sc->state = S_SELF_CLOSING;
                p++;
            } else if (c == '>') {
                p++;
                goto emit;
            } else {
                sc->state = S_BEFORE_ATTR_NAME;
            }
            break;

        case S_SELF_CLOSING:
            if (c == '>') {
                sc->tag.self_closing = 1;
                p++;
                goto emit;
            }
            sc->state = S_BEFORE_ATTR_NAME;
            break;

        case S_TEXT_LT:
            if (c == '/') {
                sc->end_match = 0;
                sc->state = S_TEXT_END_TAG_OPEN;
                p++;
            } else if (c == '!' && sc->text_state == S_SCRIPT) {
                sc->state = S_SD_ESCAPE_START;
                p++;
            } else {
                sc->state = sc->text_state;
            }
            break;

        case S_TEXT_END_TAG_OPEN:
            sc->state = is_alpha(c) ? S_TEXT_END_TAG_NAME : sc->text_state;
            break;

        case S_TEXT_END_TAG_NAME:
            if (is_alpha(c)) {
                if (sc->end_match < sc->end_name_len
                    && to_lower(c) == (unsigned char)sc->end_name[sc->end_match]) {
                    sc->end_match++;
                    p++;
                } else {
                    sc->state = sc->text_state;   /* not the appropriate end tag */
                }
            } else if ((is_ws(c) || c == '/' || c == '>') && sc->end_match == sc->end_name_len) {
                begin_tag(sc, CTFL_TAG_END);
                memcpy(sc->tag.name, sc->end_name, sc->end_name_len + 1);
                sc->tag.name_len = sc->end_name_len;
                p++;
                if (c == '>')
                    goto emit;
                sc->state = c == '/' ? S_SELF_CLOSING : S_BEFORE_ATTR_NAME;
            } else {
                sc->state = sc->text_state;
            }
            break;

        case S_MARKUP_DECL:
            if (sc->md == 0) {
                if (c == '-') {
                    sc->md = 1;
                    p++;
                } else if (c == '[' && sc->foreign_depth) {
                    sc->md = 11;
                    p++;
                } else {
                    sc->state = S_BOGUS_COMMENT;   /* doctype, <!x ...> */
                }
            } else if (sc->md == 1) {
                if (c == '-') {
                    sc->state = S_COMMENT_START;
                    p++;
                } else {
                    sc->state = S_BOGUS_COMMENT;
                }
            } else if (c == (unsigned char)"[CDATA["[sc->md - 10]) {
                p++;
                if (++sc->md == 17)
                    sc->state = S_CDATA;
            } else {
                sc->state = S_BOGUS_COMMENT;
            }
            break;

        case S_COMMENT_START:
            if (c == '-') {
                sc->state = S_COMMENT_START_DASH;
                p++;
            } else if (c == '>') {
                sc->state = S_DATA;            /* <!--> */
                p++;
            } else {
                sc->state = S_COMMENT;
            }
            break;

        case S_COMMENT_START_DASH:
            if (c == '-') {
                sc->state = S_COMMENT_END;
                p++;
            } else if (c == '>') {
                sc->state = S_DATA;            /* <!---> */
                p++;
            } else {
                sc->state = S_COMMENT;
            }
            break;

        case S_COMMENT:
            q = memchr(p, '-', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            sc->state = S_COMMENT_END_DASH;
            p = q + 1;
            break;

        case S_COMMENT_END_DASH:
            if (c == '-') {
                sc->state = S_COMMENT_END;
                p++;
            } else {
                sc->state = S_COMMENT;
            }
            break;

        case S_COMMENT_END:
            if (c == '>') {
                sc->state = S_DATA;
                p++;
            } else if (c == '!') {
                sc->state = S_COMMENT_END_BANG;
                p++;
            } else if (c == '-') {
                p++;
            } else {
                sc->state = S_COMMENT;
            }
            break;

        case S_COMMENT_END_BANG:
            if (c == '-') {
                sc->state = S_COMMENT_END_DASH;
                p++;
            } else if (c == '>') {
                sc->state = S_DATA;            /* --!> */
                p++;
            } else {
                sc->state = S_COMMENT;
            }
            break;

        case S_BOGUS_COMMENT:
            q = memchr(p, '>', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            sc->state = S_DATA;
            p = q + 1;
            break;

        case S_CDATA:
            q = memchr(p, ']', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            sc->state = S_CDATA_BRACKET;
            p = q + 1;
            break;

        case S_CDATA_BRACKET:
            if (c == ']') {
                sc->state = S_CDATA_END;
                p++;
            } else {
                sc->state = S_CDATA;
            }
            break;

        case S_CDATA_END:
            if (c == ']') {
                p++;
            } else if (c == '>') {
                sc->state = S_DATA;
                p++;
            } else {
                sc->state = S_CDATA;
            }
            break;

        case S_SD_ESCAPE_START:
            if (c == '-') {
                sc->state = S_SD_ESCAPE_START_DASH;
                p++;
            } else {
                sc->state = S_SCRIPT;
            }
            break;

        case S_SD_ESCAPE_START_DASH:
            if (c == '-') {
                sc->state = S_SD_ESCAPED_DASH_DASH;
                p++;
            } else {
                sc->state = S_SCRIPT;
            }
            break;

        case S_SD_ESCAPED:
        case S_SD_DOUBLE_ESCAPED:
            for (q = p; q < end && *q != '-' && *q != '<'; q++)
                ;
            if (q == end) {
                p = end;
                break;
            }
            if (*q == '-') {
                sc->state = sc->state == S_SD_ESCAPED ? S_SD_ESCAPED_DASH
                                                      : S_SD_DOUBLE_ESCAPED_DASH;
            } else if (sc->state == S_SD_ESCAPED) {
                sc->tag_lt = AT(q);
                sc->state = S_SD_ESCAPED_LT;
            } else {
                sc->state = S_SD_DOUBLE_ESCAPED_LT;
            }
            p = q + 1;
            break;

        case S_SD_ESCAPED_DASH:
        case S_SD_ESCAPED_DASH_DASH:
            if (c == '-') {
                sc->state = S_SD_ESCAPED_DASH_DASH;
            } else if (c == '<') {
                sc->tag_lt = AT(p);
                sc->state = S_SD_ESCAPED_LT;
            } else if (c == '>' && sc->state == S_SD_ESCAPED_DASH_DASH) {
                sc->state = S_SCRIPT;
            } else {
                sc->state = S_SD_ESCAPED;
            }
            p++;
            break;

        case S_SD_ESCAPED_LT:
            if (c == '/') {
                sc->end_match = 0;
                sc->text_state = S_SD_ESCAPED;
                sc->state = S_TEXT_END_TAG_OPEN;
                p++;
            } else if (is_alpha(c)) {
                sc->end_match = 0;
                sc->state = S_SD_DOUBLE_ESCAPE_START;
            } else {
                sc->state = S_SD_ESCAPED;
            }
            break;

        case S_SD_DOUBLE_ESCAPE_START:
        case S_SD_DOUBLE_ESCAPE_END:
            if (is_ws(c) || c == '/' || c == '>') {
                int is_script = sc->end_match == 6;
                if (sc->state == S_SD_DOUBLE_ESCAPE_START)
                    sc->state = is_script ? S_SD_DOUBLE_ESCAPED : S_SD_ESCAPED;
                else
                    sc->state = is_script ? S_SD_ESCAPED : S_SD_DOUBLE_ESCAPED;
                p++;
            } else if (is_alpha(c)) {
                match_script(sc, c);
                p++;
            } else {
                sc->state = sc->state == S_SD_DOUBLE_ESCAPE_START ? S_SD_ESCAPED
                                                                  : S_SD_DOUBLE_ESCAPED;
            }
            break;

        case S_SD_DOUBLE_ESCAPED_DASH:
        case S_SD_DOUBLE_ESCAPED_DASH_DASH:
            if (c == '-') {
                sc->state = S_SD_DOUBLE_ESCAPED_DASH_DASH;
            } else if (c == '<') {
                sc->state = S_SD_DOUBLE_ESCAPED_LT;
            } else if (c == '>' && sc->state == S_SD_DOUBLE_ESCAPED_DASH_DASH) {
                sc->state = S_SCRIPT;
            } else {
                sc->state = S_SD_DOUBLE_ESCAPED;
            }
            p++;
            break;

        case S_SD_DOUBLE_ESCAPED_LT:
            if (c == '/') {
                sc->end_match = 0;
                sc->state = S_SD_DOUBLE_ESCAPE_END;
                p++;
            } else {
                sc->state = S_SD_DOUBLE_ESCAPED;
            }
            break;

        default:                               /* unreachable: keep scanning as text */
            sc->state = S_DATA;
            break;
        }
    }
    sc->pos = AT(end);
    *off = len;
    return NULL;

emit:
    sc->tag.end = AT(p);
    tag_done(sc);
    sc->pos = AT(p);
    *off = (apr_size_t)(p - start);
    return &sc->tag;
#undef AT
}
