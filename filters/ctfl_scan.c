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

/* Byte classes. Whitespace includes CR: the input stream preprocessor turns
 * it into LF. */
enum { C_WS = 1, C_NAME_END = 2, C_ATTR_END = 4, C_UNQ_END = 8 };
#define WS_ (C_WS | C_NAME_END | C_ATTR_END | C_UNQ_END)
static const unsigned char byte_class[256] = {
    ['\t'] = WS_, ['\n'] = WS_, ['\f'] = WS_, ['\r'] = WS_, [' '] = WS_,
    ['/'] = C_NAME_END | C_ATTR_END,
    ['>'] = C_NAME_END | C_ATTR_END | C_UNQ_END,
    ['='] = C_ATTR_END,
};
#undef WS_
static inline int is_ws(unsigned c) { return byte_class[c & 0xFF] & C_WS; }
static inline int is_alpha(unsigned c) { return ((c | 0x20) - 'a') < 26; }
static inline unsigned to_lower(unsigned c) { return (c - 'A') < 26 ? c | 0x20 : c; }


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

int ctfl_scan_in_definite_tag(const ctfl_scan *sc)
{
    return sc->state >= S_TAG_NAME && sc->state <= S_SELF_CLOSING;
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
    memset(t->name, 0, sizeof(t->name));      /* NUL-padded, see ctfl_tag */
    t->name_overflow = 0;
    t->name_hash = CTFL_NAME_HASH_INIT;
    t->self_closing = 0;
    t->foreign = 0;
    t->attrs = 0;
    t->lt = sc->tag_lt;
    t->end = 0;
}

uint32_t ctfl_scan_name_hash(const char *lower_name, apr_size_t len)
{
    uint32_t h = CTFL_NAME_HASH_INIT;
    for (apr_size_t i = 0; i < len; i++)
        h = ctfl_scan_hash_step(h, (unsigned char)lower_name[i]);
    return h;
}

/* (begin_tag() zeroed the name: it stays NUL-padded) */
static inline void name_push(ctfl_tag *t, unsigned c)
{
    c = to_lower(c);
    t->name_hash = ctfl_scan_hash_step(t->name_hash, (unsigned char)c);
    if (t->name_len < CTFL_TAG_NAME_MAX)
        t->name[t->name_len++] = (char)c;
    else
        t->name_overflow = 1;
}

static inline void attr_begin(ctfl_scan *sc)
{
    sc->attr_len = 0;
    sc->attr_overflow = 0;
}

/* Keep n bytes of an attribute name the chunk ends inside of, lowercased;
 * only names up to CTFL_ATTR_NAME_MAX can be one the scanner notices. */
static void attr_keep(ctfl_scan *sc, const unsigned char *n, apr_size_t len)
{
    if (sc->attr_overflow || len > (apr_size_t)(CTFL_ATTR_NAME_MAX - sc->attr_len)) {
        sc->attr_overflow = 1;
        return;
    }
    for (apr_size_t i = 0; i < len; i++)
        sc->attr[sc->attr_len++] = (char)to_lower(n[i]);
}

/* a[0, n) equals the lowercase literal, ignoring ASCII case */
static inline int name_eq(const unsigned char *a, const char *lit, apr_size_t n)
{
    for (apr_size_t i = 0; i < n; i++)
        if (to_lower(a[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* The CTFL_ATTR_* bit of a data-ctfl-* name a[0, n) (any case), else 0. */
static inline unsigned data_ctfl_bit(const unsigned char *a, apr_size_t n)
{
    static const struct { const char *name; unsigned char len, bit; } names[] = {
        { "data-ctfl-flag", 14, CTFL_ATTR_FLAG },
        { "data-ctfl-field", 15, CTFL_ATTR_FIELD },
        { "data-ctfl-flag-if", 17, CTFL_ATTR_FLAG_IF },
        { "data-ctfl-entry-id", 18, CTFL_ATTR_ENTRY_ID },
        { "data-ctfl-field-attr", 20, CTFL_ATTR_FIELD_ATTR },
        { "data-ctfl-variant-id", 20, CTFL_ATTR_VARIANT_ID },
        { "data-ctfl-baseline-id", 21, CTFL_ATTR_BASELINE_ID }
    };
    if (n < 14 || n > 21 || !name_eq(a, "data-ctfl-", 10))
        return 0;
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].len == n && name_eq(a + 10, names[i].name + 10, n - 10))
            return names[i].bit;
    return 0;
}

unsigned ctfl_scan_data_ctfl_attr(const char *s, apr_size_t n)
{
    return data_ctfl_bit((const unsigned char *)s, n);
}

/* A complete attribute name a[0, n) (any case). Most attributes are none of
 * these: decide on the length first. */
static inline void attr_check(ctfl_tag *t, const unsigned char *a, apr_size_t n)
{
    if (n == 4 || n == 5) {
        if ((n == 4 && (name_eq(a, "face", 4) || name_eq(a, "size", 4)))
            || (n == 5 && name_eq(a, "color", 5)))
            t->attrs |= CTFL_ATTR_FONT_BREAK;
    } else if (n >= 14) {
        t->attrs |= data_ctfl_bit(a, n);
    }
}

/* The attribute name in progress ends at p; it started at q in this chunk,
 * after what earlier chunks left in sc->attr. */
static inline void attr_done(ctfl_scan *sc, const unsigned char *q, const unsigned char *p)
{
    const unsigned char *a = q;
    apr_size_t n = (apr_size_t)(p - q);
    if (sc->attr_len || sc->attr_overflow) {      /* begun in an earlier chunk (or '=') */
        attr_keep(sc, q, n);
        if (sc->attr_overflow)
            return;
        a = (const unsigned char *)sc->attr;
        n = sc->attr_len;
    }
    attr_check(&sc->tag, a, n);                   /* one call site: inlined */
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
    if (CTFL_TAG_NAME_IS(t, "font"))
        return (t->attrs & CTFL_ATTR_FONT_BREAK) != 0;
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (ctfl_tag_name_eq(t, names[i], strlen(names[i])))
            return 1;
    return 0;
}

static void set_text_state(ctfl_scan *sc, unsigned char state, const char *end_name)
{
    sc->state = state;
    sc->end_name = end_name;
    sc->end_name_len = (unsigned)strlen(end_name);
}

static inline int is_svg_or_math(const ctfl_tag *t)
{
    const char *n = t->name;
    return !t->name_overflow
        && ((t->name_len == 3 && n[0] == 's' && n[1] == 'v' && n[2] == 'g')
            || (t->name_len == 4 && n[0] == 'm' && n[1] == 'a' && n[2] == 't' && n[3] == 'h'));
}

/* The tokenizer state an HTML start tag switches to (what the tree builder
 * does for raw text and RCDATA elements) and the end tag name that ends it;
 * S_DATA for all others. Switch on the first letter, and always inline
 * (two callers would make GCC call it): this runs for every start tag. */
static inline __attribute__((always_inline)) unsigned char text_state_of(const ctfl_tag *t,
                                                                      const char **end_name)
{
#define IS(lit, st) if (CTFL_TAG_NAME_IS(t, lit)) { *end_name = lit; return st; }
    if (t->name_overflow || t->name_len < 3)
        return S_DATA;
    switch (t->name[0]) {
    case 's':
        IS("script", S_SCRIPT);
        IS("style", S_RAWTEXT);
        break;
    case 't':
        IS("title", S_RCDATA);
        IS("textarea", S_RCDATA);
        break;
    case 'x':
        IS("xmp", S_RAWTEXT);
        break;
    case 'i':
        IS("iframe", S_RAWTEXT);
        break;
    case 'n':
        IS("noembed", S_RAWTEXT);
        IS("noframes", S_RAWTEXT);
        IS("noscript", S_RAWTEXT);
        break;
    case 'p':
        IS("plaintext", S_PLAINTEXT);
        break;
    default:
        break;
    }
    return S_DATA;
#undef IS
}

int ctfl_scan_enters_text(const ctfl_tag *t)
{
    const char *end_name;
    return t->kind == CTFL_TAG_START && !t->foreign && text_state_of(t, &end_name) != S_DATA;
}

static void enter_text_state(ctfl_scan *sc, const ctfl_tag *t)
{
    const char *end_name = NULL;
    unsigned char st = text_state_of(t, &end_name);
    if (st == S_DATA || st == S_PLAINTEXT)
        sc->state = st;
    else
        set_text_state(sc, st, end_name);
}

/* A tag is complete: update SVG/MathML depth and pick the next tokenizer state
 * (what the tree builder would switch the tokenizer to). */
static void tag_done(ctfl_scan *sc)
{
    ctfl_tag *t = &sc->tag;

    if (t->kind == CTFL_TAG_END) {
        sc->state = S_DATA;
        t->foreign = sc->foreign_depth > 0;
        if (sc->foreign_depth) {
            if (is_svg_or_math(t))
                sc->foreign_depth--;
            else if (CTFL_TAG_NAME_IS(t, "br") || CTFL_TAG_NAME_IS(t, "p"))
                sc->foreign_depth = 0;
        }
        return;
    }
    if (sc->foreign_depth) {
        if (is_breakout(t)) {
            sc->foreign_depth = 0;
        } else {
            sc->state = S_DATA;
            t->foreign = 1;
            if (is_svg_or_math(t) && !t->self_closing)
                sc->foreign_depth++;
            return;
        }
    }
    if (is_svg_or_math(t)) {
        sc->state = S_DATA;
        t->foreign = 1;
        if (!t->self_closing)
            sc->foreign_depth = 1;
        return;
    }
    enter_text_state(sc, t);
}

/* Letters after "<" in script data compared with "script" (double escaping). */
static inline void match_script(ctfl_scan *sc, unsigned c)
{
    if (sc->end_match < 6 && to_lower(c) == (unsigned char)"script"[sc->end_match])
        sc->end_match++;
    else
        sc->end_match = NO_MATCH;
}

/* The next '<' in [p, end), p < end. Half the text between tags on a typical
 * page is empty or a newline: look at two bytes before calling memchr. */
static inline const unsigned char *find_lt(const unsigned char *p, const unsigned char *end)
{
    if (p[0] == '<')
        return p;
    if (end - p > 1 && p[1] == '<')
        return p + 1;
    return memchr(p, '<', (size_t)(end - p));
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
    unsigned char state = sc->state;   /* kept in a register in the loop */

#define AT(ptr) (base + (uint64_t)((ptr) - start))
/* continue in state st at label l, or stop there at the end of the chunk */
#define NEXT(st, l) do { state = (st); if (p >= end) goto chunk_end; goto l; } while (0)

    while (p < end) {
        c = *p;
        switch (state) {
        case S_DATA:
        l_data:
            q = find_lt(p, end);
            if (!q) {
                p = end;
                break;
            }
            sc->tag_lt = AT(q);
            p = q + 1;
            NEXT(S_TAG_OPEN, l_tag_open);

        case S_RCDATA:
        case S_RAWTEXT:
        case S_SCRIPT:
            q = memchr(p, '<', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            sc->tag_lt = AT(q);
            sc->text_state = state;
            state = S_TEXT_LT;
            p = q + 1;
            break;

        case S_PLAINTEXT:
            p = end;
            break;

        /* The tag states jump to each other directly (NEXT) instead of going
         * back through the switch: most of the scanning time is spent here. */
        case S_TAG_OPEN:
        l_tag_open:
            c = *p;
            if (is_alpha(c)) {
                begin_tag(sc, CTFL_TAG_START);
                NEXT(S_TAG_NAME, l_tag_name);
            }
            if (c == '!') {
                sc->md = 0;
                state = S_MARKUP_DECL;
                p++;
            } else if (c == '/') {
                p++;
                NEXT(S_END_TAG_OPEN, l_end_tag_open);
            } else if (c == '?') {
                state = S_BOGUS_COMMENT;
            } else {
                NEXT(S_DATA, l_data);          /* the '<' was text */
            }
            break;

        case S_END_TAG_OPEN:
        l_end_tag_open:
            c = *p;
            if (is_alpha(c)) {
                begin_tag(sc, CTFL_TAG_END);
                NEXT(S_TAG_NAME, l_tag_name);
            }
            if (c == '>') {
                state = S_DATA;                /* "</>" is dropped */
                p++;
            } else {
                state = S_BOGUS_COMMENT;
            }
            break;

        case S_TAG_NAME:
        l_tag_name:
            for (; p < end; p++) {
                c = *p;
                if (!(byte_class[c] & C_NAME_END)) {
                    name_push(&sc->tag, c);
                    continue;
                }
                if (is_ws(c)) {
                    p++;
                    NEXT(S_BEFORE_ATTR_NAME, l_before_attr_name);
                }
                if (c == '/') {
                    p++;
                    NEXT(S_SELF_CLOSING, l_self_closing);
                }
                p++;                           /* '>' */
                goto emit;
            }
            break;

        case S_BEFORE_ATTR_NAME:
        l_before_attr_name:
            while (p < end && is_ws(*p))
                p++;
            if (p == end)
                break;
            c = *p;
            if (c == '/') {                    /* via after-attribute-name */
                p++;
                NEXT(S_SELF_CLOSING, l_self_closing);
            }
            if (c == '>') {
                p++;
                goto emit;
            }
            attr_begin(sc);
            if (c == '=') {                    /* "=" starts the name: none we notice */
                sc->attr_overflow = 1;
                p++;
            }
            NEXT(S_ATTR_NAME, l_attr_name);

        case S_ATTR_NAME:
        l_attr_name:
            q = p;
            while (p < end && !(byte_class[*p] & C_ATTR_END))
                p++;
            if (p == end) {
                attr_keep(sc, q, (apr_size_t)(p - q));
                break;
            }
            attr_done(sc, q, p);
            if (*p == '=') {
                p++;
                NEXT(S_BEFORE_ATTR_VALUE, l_before_attr_value);
            }
            NEXT(S_AFTER_ATTR_NAME, l_after_attr_name);   /* whitespace, '/' or '>' */

        case S_AFTER_ATTR_NAME:
        l_after_attr_name:
            while (p < end && is_ws(*p))
                p++;
            if (p == end)
                break;
            c = *p;
            if (c == '/') {
                p++;
                NEXT(S_SELF_CLOSING, l_self_closing);
            }
            if (c == '=') {
                p++;
                NEXT(S_BEFORE_ATTR_VALUE, l_before_attr_value);
            }
            if (c == '>') {
                p++;
                goto emit;
            }
            attr_begin(sc);
            NEXT(S_ATTR_NAME, l_attr_name);

        case S_BEFORE_ATTR_VALUE:
        l_before_attr_value:
            while (p < end && is_ws(*p))
                p++;
            if (p == end)
                break;
            c = *p;
            if (c == '"') {
                p++;
                NEXT(S_ATTR_VALUE_DQ, l_value_quoted);
            }
            if (c == '\'') {
                p++;
                NEXT(S_ATTR_VALUE_SQ, l_value_quoted);
            }
            if (c == '>') {
                p++;
                goto emit;
            }
            NEXT(S_ATTR_VALUE_UNQ, l_value_unquoted);

        case S_ATTR_VALUE_DQ:
        case S_ATTR_VALUE_SQ:
        l_value_quoted:
            q = memchr(p, state == S_ATTR_VALUE_DQ ? '"' : '\'', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            p = q + 1;
            NEXT(S_AFTER_ATTR_VALUE, l_after_attr_value);

        case S_ATTR_VALUE_UNQ:
        l_value_unquoted:
            while (p < end && !(byte_class[*p] & C_UNQ_END))
                p++;
            if (p == end)
                break;
            if (*p++ == '>')
                goto emit;
            NEXT(S_BEFORE_ATTR_NAME, l_before_attr_name);

        case S_AFTER_ATTR_VALUE:
        l_after_attr_value:
            c = *p;
            if (c == '>') {
                p++;
                goto emit;
            }
            if (c == '/') {
                p++;
                NEXT(S_SELF_CLOSING, l_self_closing);
            }
            if (is_ws(c))
                p++;
            NEXT(S_BEFORE_ATTR_NAME, l_before_attr_name);

        case S_SELF_CLOSING:
        l_self_closing:
            if (*p == '>') {
                sc->tag.self_closing = 1;
                p++;
                goto emit;
            }
            NEXT(S_BEFORE_ATTR_NAME, l_before_attr_name);

        case S_TEXT_LT:
            if (c == '/') {
                sc->end_match = 0;
                state = S_TEXT_END_TAG_OPEN;
                p++;
            } else if (c == '!' && sc->text_state == S_SCRIPT) {
                state = S_SD_ESCAPE_START;
                p++;
            } else {
                state = sc->text_state;
            }
            break;

        case S_TEXT_END_TAG_OPEN:
            state = is_alpha(c) ? S_TEXT_END_TAG_NAME : sc->text_state;
            break;

        case S_TEXT_END_TAG_NAME:
            if (is_alpha(c)) {
                if (sc->end_match < sc->end_name_len
                    && to_lower(c) == (unsigned char)sc->end_name[sc->end_match]) {
                    sc->end_match++;
                    p++;
                } else {
                    state = sc->text_state;   /* not the appropriate end tag */
                }
            } else if ((is_ws(c) || c == '/' || c == '>') && sc->end_match == sc->end_name_len) {
                begin_tag(sc, CTFL_TAG_END);
                memcpy(sc->tag.name, sc->end_name, sc->end_name_len + 1);
                sc->tag.name_len = sc->end_name_len;
                sc->tag.name_hash = ctfl_scan_name_hash(sc->end_name, sc->end_name_len);
                p++;
                if (c == '>')
                    goto emit;
                state = c == '/' ? S_SELF_CLOSING : S_BEFORE_ATTR_NAME;
            } else {
                state = sc->text_state;
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
                    state = S_BOGUS_COMMENT;   /* doctype, <!x ...> */
                }
            } else if (sc->md == 1) {
                if (c == '-') {
                    state = S_COMMENT_START;
                    p++;
                } else {
                    state = S_BOGUS_COMMENT;
                }
            } else if (c == (unsigned char)"[CDATA["[sc->md - 10]) {
                p++;
                if (++sc->md == 17)
                    state = S_CDATA;
            } else {
                state = S_BOGUS_COMMENT;
            }
            break;

        case S_COMMENT_START:
            if (c == '-') {
                state = S_COMMENT_START_DASH;
                p++;
            } else if (c == '>') {
                state = S_DATA;            /* <!--> */
                p++;
            } else {
                state = S_COMMENT;
            }
            break;

        case S_COMMENT_START_DASH:
            if (c == '-') {
                state = S_COMMENT_END;
                p++;
            } else if (c == '>') {
                state = S_DATA;            /* <!---> */
                p++;
            } else {
                state = S_COMMENT;
            }
            break;

        case S_COMMENT:
            q = memchr(p, '-', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            state = S_COMMENT_END_DASH;
            p = q + 1;
            break;

        case S_COMMENT_END_DASH:
            if (c == '-') {
                state = S_COMMENT_END;
                p++;
            } else {
                state = S_COMMENT;
            }
            break;

        case S_COMMENT_END:
            if (c == '>') {
                state = S_DATA;
                p++;
            } else if (c == '!') {
                state = S_COMMENT_END_BANG;
                p++;
            } else if (c == '-') {
                p++;
            } else {
                state = S_COMMENT;
            }
            break;

        case S_COMMENT_END_BANG:
            if (c == '-') {
                state = S_COMMENT_END_DASH;
                p++;
            } else if (c == '>') {
                state = S_DATA;            /* --!> */
                p++;
            } else {
                state = S_COMMENT;
            }
            break;

        case S_BOGUS_COMMENT:
            q = memchr(p, '>', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            state = S_DATA;
            p = q + 1;
            break;

        case S_CDATA:
            q = memchr(p, ']', (size_t)(end - p));
            if (!q) {
                p = end;
                break;
            }
            state = S_CDATA_BRACKET;
            p = q + 1;
            break;

        case S_CDATA_BRACKET:
            if (c == ']') {
                state = S_CDATA_END;
                p++;
            } else {
                state = S_CDATA;
            }
            break;

        case S_CDATA_END:
            if (c == ']') {
                p++;
            } else if (c == '>') {
                state = S_DATA;
                p++;
            } else {
                state = S_CDATA;
            }
            break;

        case S_SD_ESCAPE_START:
            if (c == '-') {
                state = S_SD_ESCAPE_START_DASH;
                p++;
            } else {
                state = S_SCRIPT;
            }
            break;

        case S_SD_ESCAPE_START_DASH:
            if (c == '-') {
                state = S_SD_ESCAPED_DASH_DASH;
                p++;
            } else {
                state = S_SCRIPT;
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
                state = state == S_SD_ESCAPED ? S_SD_ESCAPED_DASH
                                                      : S_SD_DOUBLE_ESCAPED_DASH;
            } else if (state == S_SD_ESCAPED) {
                sc->tag_lt = AT(q);
                state = S_SD_ESCAPED_LT;
            } else {
                state = S_SD_DOUBLE_ESCAPED_LT;
            }
            p = q + 1;
            break;

        case S_SD_ESCAPED_DASH:
        case S_SD_ESCAPED_DASH_DASH:
            if (c == '-') {
                state = S_SD_ESCAPED_DASH_DASH;
            } else if (c == '<') {
                sc->tag_lt = AT(p);
                state = S_SD_ESCAPED_LT;
            } else if (c == '>' && state == S_SD_ESCAPED_DASH_DASH) {
                state = S_SCRIPT;
            } else {
                state = S_SD_ESCAPED;
            }
            p++;
            break;

        case S_SD_ESCAPED_LT:
            if (c == '/') {
                sc->end_match = 0;
                sc->text_state = S_SD_ESCAPED;
                state = S_TEXT_END_TAG_OPEN;
                p++;
            } else if (is_alpha(c)) {
                sc->end_match = 0;
                state = S_SD_DOUBLE_ESCAPE_START;
            } else {
                state = S_SD_ESCAPED;
            }
            break;

        case S_SD_DOUBLE_ESCAPE_START:
        case S_SD_DOUBLE_ESCAPE_END:
            if (is_ws(c) || c == '/' || c == '>') {
                int is_script = sc->end_match == 6;
                if (state == S_SD_DOUBLE_ESCAPE_START)
                    state = is_script ? S_SD_DOUBLE_ESCAPED : S_SD_ESCAPED;
                else
                    state = is_script ? S_SD_ESCAPED : S_SD_DOUBLE_ESCAPED;
                p++;
            } else if (is_alpha(c)) {
                match_script(sc, c);
                p++;
            } else {
                state = state == S_SD_DOUBLE_ESCAPE_START ? S_SD_ESCAPED
                                                                  : S_SD_DOUBLE_ESCAPED;
            }
            break;

        case S_SD_DOUBLE_ESCAPED_DASH:
        case S_SD_DOUBLE_ESCAPED_DASH_DASH:
            if (c == '-') {
                state = S_SD_DOUBLE_ESCAPED_DASH_DASH;
            } else if (c == '<') {
                state = S_SD_DOUBLE_ESCAPED_LT;
            } else if (c == '>' && state == S_SD_DOUBLE_ESCAPED_DASH_DASH) {
                state = S_SCRIPT;
            } else {
                state = S_SD_DOUBLE_ESCAPED;
            }
            p++;
            break;

        case S_SD_DOUBLE_ESCAPED_LT:
            if (c == '/') {
                sc->end_match = 0;
                state = S_SD_DOUBLE_ESCAPE_END;
                p++;
            } else {
                state = S_SD_DOUBLE_ESCAPED;
            }
            break;

        default:                               /* unreachable: keep scanning as text */
            state = S_DATA;
            break;
        }
    }
chunk_end:
    sc->state = state;
    sc->pos = AT(end);
    *off = len;
    return NULL;

emit:
    sc->tag.end = AT(p);
    tag_done(sc);                              /* sets sc->state */
    sc->pos = AT(p);
    *off = (apr_size_t)(p - start);
    return &sc->tag;
#undef NEXT
#undef AT
}
