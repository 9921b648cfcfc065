/* ctfl_rewrite — streaming, byte-preserving rewriter; see ctfl_rewrite.h.
 *
 * Output model: every byte of the stream before offset `emitted` has been passed
 * to emit(); the bytes [emitted, chunk_base) are in `hold` (an unfinished tag or
 * a marked element from earlier chunks). Bytes of the current chunk are emitted
 * straight from the caller's buffer. Edits are made by emitting other bytes in
 * place of, or before, stream bytes that have not been emitted yet.
 *
 * Marked elements: with on_element set, an element stack follows a simplified
 * version of the HTML tree-construction rules (implied end tags of p, li, dd/dt,
 * td/th/tr/tbody, option; scopes; void elements; SVG/MathML) so that the end of a
 * marked element is found as a browser would find it. What those rules cannot
 * follow (misnested formatting elements around the element, </body> inside it,
 * a very deep stack) makes the element pass through unchanged. */
#include "ctfl_rewrite.h"
#include "ctfl_scan.h"
#include <string.h>

#define DEFAULT_MAX_TAG (64 * 1024)
#define DEFAULT_MAX_ELEMENT (1024 * 1024)
#define DEFAULT_MAX_ELEMENTS 1000
#define STACK_MAX 512

/* ---- element classes (HTML Standard, "tree construction") ---- */
enum {
    F_VOID = 1 << 0,
    F_SPECIAL = 1 << 1,         /* the "special" category */
    F_SCOPE = 1 << 2,           /* bounds "has an element in scope" */
    F_LIST_SCOPE = 1 << 3,      /* ... in list item scope, additionally */
    F_BUTTON_SCOPE = 1 << 4,    /* ... in button scope, additionally */
    F_TABLE_SCOPE = 1 << 5,     /* bounds "in table scope" */
    F_FORMATTING = 1 << 6,
    F_CLOSES_P = 1 << 7,        /* start tag closes a <p> in button scope */
    F_BLOCK_END = 1 << 8,       /* end tag pops to it when in scope */
    F_HEADING = 1 << 9,
    F_FOREIGN = 1 << 10         /* SVG or MathML element */
};
enum {
    E_OTHER, E_P, E_LI, E_DD, E_DT, E_CELL, E_TR, E_TSECTION, E_OPTION, E_OPTGROUP,
    E_A, E_NOBR, E_BUTTON, E_HTML, E_BODY, E_HEAD, E_BR, E_TABLE, E_TABLE_PART, E_IGNORED,
    E_DIV, E_ADDRESS
};

typedef struct {
    const char *name;
    unsigned char len;
    unsigned short flags;
    unsigned char id;
} elem_info;

static const elem_info html_elems[] = {   /* sorted by name */
    { "a", 1, F_FORMATTING, E_A },
    { "address", 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_ADDRESS },
    { "applet", 6, F_BLOCK_END | F_SCOPE | F_SPECIAL, E_OTHER },
    { "area", 4, F_SPECIAL | F_VOID, E_OTHER },
    { "article", 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "aside", 5, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "b", 1, F_FORMATTING, E_OTHER },
    { "base", 4, F_SPECIAL | F_VOID, E_OTHER },
    { "basefont", 8, F_SPECIAL | F_VOID, E_OTHER },
    { "bgsound", 7, F_SPECIAL | F_VOID, E_OTHER },
    { "big", 3, F_FORMATTING, E_OTHER },
    { "blockquote", 10, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "body", 4, F_SPECIAL, E_BODY },
    { "br", 2, F_SPECIAL | F_VOID, E_BR },
    { "button", 6, F_BLOCK_END | F_BUTTON_SCOPE | F_SPECIAL, E_BUTTON },
    { "caption", 7, F_SCOPE | F_SPECIAL, E_TABLE_PART },
    { "center", 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "code", 4, F_FORMATTING, E_OTHER },
    { "col", 3, F_SPECIAL | F_VOID, E_OTHER },
    { "colgroup", 8, F_SPECIAL, E_TABLE_PART },
    { "dd", 2, F_CLOSES_P | F_SPECIAL, E_DD },
    { "details", 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "dialog", 6, F_BLOCK_END | F_CLOSES_P, E_OTHER },
    { "dir", 3, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "div", 3, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_DIV },
    { "dl", 2, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "dt", 2, F_CLOSES_P | F_SPECIAL, E_DT },
    { "em", 2, F_FORMATTING, E_OTHER },
    { "embed", 5, F_SPECIAL | F_VOID, E_OTHER },
    { "fieldset", 8, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "figcaption", 10, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "figure", 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "font", 4, F_FORMATTING, E_OTHER },
    { "footer", 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "form", 4, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "frame", 5, F_SPECIAL | F_VOID, E_OTHER },
    { "frameset", 8, F_SPECIAL, E_IGNORED },
    { "h1", 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    { "h2", 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    { "h3", 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    { "h4", 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    { "h5", 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    { "h6", 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    { "head", 4, F_SPECIAL, E_HEAD },
    { "header", 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "hgroup", 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "hr", 2, F_CLOSES_P | F_SPECIAL | F_VOID, E_OTHER },
    { "html", 4, F_SCOPE | F_SPECIAL | F_TABLE_SCOPE, E_HTML },
    { "i", 1, F_FORMATTING, E_OTHER },
    { "iframe", 6, F_SPECIAL, E_OTHER },
    { "image", 5, F_VOID, E_OTHER },
    { "img", 3, F_SPECIAL | F_VOID, E_OTHER },
    { "input", 5, F_SPECIAL | F_VOID, E_OTHER },
    { "keygen", 6, F_SPECIAL | F_VOID, E_OTHER },
    { "li", 2, F_CLOSES_P | F_SPECIAL, E_LI },
    { "link", 4, F_SPECIAL | F_VOID, E_OTHER },
    { "listing", 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "main", 4, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "marquee", 7, F_BLOCK_END | F_SCOPE | F_SPECIAL, E_OTHER },
    { "menu", 4, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "meta", 4, F_SPECIAL | F_VOID, E_OTHER },
    { "nav", 3, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "nobr", 4, F_FORMATTING, E_NOBR },
    { "noembed", 7, F_SPECIAL, E_OTHER },
    { "noframes", 8, F_SPECIAL, E_OTHER },
    { "noscript", 8, F_SPECIAL, E_OTHER },
    { "object", 6, F_BLOCK_END | F_SCOPE | F_SPECIAL, E_OTHER },
    { "ol", 2, F_BLOCK_END | F_CLOSES_P | F_LIST_SCOPE | F_SPECIAL, E_OTHER },
    { "optgroup", 8, 0, E_OPTGROUP },
    { "option", 6, 0, E_OPTION },
    { "p", 1, F_CLOSES_P | F_SPECIAL, E_P },
    { "param", 5, F_SPECIAL | F_VOID, E_OTHER },
    { "plaintext", 9, F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "pre", 3, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "s", 1, F_FORMATTING, E_OTHER },
    { "script", 6, F_SPECIAL, E_OTHER },
    { "search", 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "section", 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "select", 6, F_BLOCK_END | F_SPECIAL, E_OTHER },
    { "small", 5, F_FORMATTING, E_OTHER },
    { "source", 6, F_SPECIAL | F_VOID, E_OTHER },
    { "strike", 6, F_FORMATTING, E_OTHER },
    { "strong", 6, F_FORMATTING, E_OTHER },
    { "style", 5, F_SPECIAL, E_OTHER },
    { "summary", 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    { "table", 5, F_SCOPE | F_SPECIAL | F_TABLE_SCOPE, E_TABLE },
    { "tbody", 5, F_SPECIAL, E_TSECTION },
    { "td", 2, F_SCOPE | F_SPECIAL, E_CELL },
    { "template", 8, F_BLOCK_END | F_SCOPE | F_SPECIAL | F_TABLE_SCOPE, E_OTHER },
    { "textarea", 8, F_SPECIAL, E_OTHER },
    { "tfoot", 5, F_SPECIAL, E_TSECTION },
    { "th", 2, F_SCOPE | F_SPECIAL, E_CELL },
    { "thead", 5, F_SPECIAL, E_TSECTION },
    { "title", 5, F_SPECIAL, E_OTHER },
    { "tr", 2, F_SPECIAL, E_TR },
    { "track", 5, F_SPECIAL | F_VOID, E_OTHER },
    { "tt", 2, F_FORMATTING, E_OTHER },
    { "u", 1, F_FORMATTING, E_OTHER },
    { "ul", 2, F_BLOCK_END | F_CLOSES_P | F_LIST_SCOPE | F_SPECIAL, E_OTHER },
    { "wbr", 3, F_SPECIAL | F_VOID, E_OTHER },
    { "xmp", 3, F_CLOSES_P | F_SPECIAL, E_OTHER },
};
/* index of the first name starting with 'a' + i (27 entries: one past 'z') */
static const unsigned char letter_start[27] = {
    0, 6, 15, 20, 27, 29, 37, 37, 48, 53, 53, 54, 57, 61, 66, 70, 74, 74, 74, 85,
    97, 99, 99, 100, 101, 101, 101
};

static void classify(const ctfl_tag *t, unsigned *flags, unsigned *id)
{
    *flags = 0;
    *id = E_OTHER;
    if (t->name_overflow || !t->name_len)
        return;
    if (t->foreign) {
        /* MathML text and annotation, SVG foreignObject/desc/title: scope bounds */
        static const char *const bounds[] = {
            "mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc", "title"
        };
        *flags = F_FOREIGN;
        for (unsigned i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
            if (strcmp(t->name, bounds[i]) == 0)
                *flags |= F_SCOPE | F_SPECIAL;
        return;
    }
    if (t->name[0] >= 'a' && t->name[0] <= 'z') {
        unsigned c = (unsigned)(t->name[0] - 'a');
        for (unsigned i = letter_start[c]; i < letter_start[c + 1]; i++)
            if (html_elems[i].len == t->name_len && memcmp(html_elems[i].name, t->name, t->name_len) == 0) {
                *flags = html_elems[i].flags;
                *id = html_elems[i].id;
                return;
            }
    }
}

typedef struct {
    uint32_t hash;
    unsigned short flags;
    unsigned char id;
} open_elem;

enum { REGION_NONE, REGION_COLLECTING, REGION_PASSING };

struct ctfl_rewriter {
    apr_pool_t *pool;
    ctfl_rewriter_opts o;
    ctfl_rewriter_stats st;
    ctfl_scan sc;

    char *hold;                 /* hold[hold_off, hold_len) = stream [emitted, chunk_base) */
    apr_size_t hold_off, hold_len, hold_cap;

    uint64_t emitted;           /* stream offset of the next byte to emit */
    uint64_t chunk_base;        /* stream offset of chunk[0] */
    const char *chunk;
    apr_size_t chunk_len;

    /* marked elements (only with on_element) */
    open_elem *stack;
    unsigned depth;
    int stack_lost;             /* overflowed: no further elements are collected */
    int region;                 /* REGION_* */
    unsigned region_idx;        /* stack index of the marked element */
    uint64_t region_lt;         /* its '<' */
    apr_size_t region_tag_len;  /* its start tag's length */
    unsigned started;           /* marked elements taken on */

    apr_status_t error;         /* sticky: an emit failure or a call after finish */
    int finished;
};

/* ---- output ---- */

static apr_status_t out(ctfl_rewriter *rw, const char *data, apr_size_t len)
{
    apr_status_t rv;
    if (!len)
        return APR_SUCCESS;
    rv = rw->o.emit(rw->o.emit_ctx, data, len);
    if (rv != APR_SUCCESS)
        rw->error = rv;
    else
        rw->st.bytes_out += len;
    return rv;
}

static void hold_consume(ctfl_rewriter *rw, apr_size_t n)
{
    rw->hold_off += n;
    if (rw->hold_off >= rw->hold_len)
        rw->hold_off = rw->hold_len = 0;
}

/* Emit the stream up to offset `to` (held bytes first, then the chunk). */
static apr_status_t emit_upto(ctfl_rewriter *rw, uint64_t to)
{
    apr_status_t rv;
    if (to <= rw->emitted)
        return APR_SUCCESS;
    if (rw->emitted < rw->chunk_base) {
        uint64_t stop = to < rw->chunk_base ? to : rw->chunk_base;
        apr_size_t n = (apr_size_t)(stop - rw->emitted);
        if ((rv = out(rw, rw->hold + rw->hold_off, n)) != APR_SUCCESS)
            return rv;
        hold_consume(rw, n);
        rw->emitted = stop;
    }
    if (to > rw->emitted) {
        apr_size_t from = (apr_size_t)(rw->emitted - rw->chunk_base);
        if ((rv = out(rw, rw->chunk + from, (apr_size_t)(to - rw->emitted))) != APR_SUCCESS)
            return rv;
        rw->emitted = to;
    }
    return APR_SUCCESS;
}

/* Append bytes to the hold buffer (grows by doubling; pool memory). */
static void hold_append(ctfl_rewriter *rw, const char *data, apr_size_t len)
{
    if (!len)
        return;
    if (rw->hold_off && rw->hold_len + len > rw->hold_cap) {
        memmove(rw->hold, rw->hold + rw->hold_off, rw->hold_len - rw->hold_off);
        rw->hold_len -= rw->hold_off;
        rw->hold_off = 0;
    }
    if (rw->hold_len + len > rw->hold_cap) {
        apr_size_t cap = rw->hold_cap ? rw->hold_cap : 256;
        char *nb;
        while (cap < rw->hold_len + len)
            cap *= 2;
        nb = apr_palloc(rw->pool, cap);
        if (rw->hold_len)
            memcpy(nb, rw->hold, rw->hold_len);
        rw->hold = nb;
        rw->hold_cap = cap;
    }
    memcpy(rw->hold + rw->hold_len, data, len);
    rw->hold_len += len;
}

ctfl_rewriter *ctfl_rewriter_create(apr_pool_t *p, const ctfl_rewriter_opts *opts)
{
    ctfl_rewriter *rw = apr_pcalloc(p, sizeof(*rw));
    rw->pool = p;
    rw->o = *opts;
    if (!rw->o.max_tag_bytes)
        rw->o.max_tag_bytes = DEFAULT_MAX_TAG;
    if (!rw->o.max_element_bytes)
        rw->o.max_element_bytes = DEFAULT_MAX_ELEMENT;
    if (!rw->o.max_elements)
        rw->o.max_elements = DEFAULT_MAX_ELEMENTS;
    if (rw->o.on_element)
        rw->stack = apr_palloc(p, STACK_MAX * sizeof(open_elem));
    ctfl_scan_init(&rw->sc);
    return rw;
}

/* ---- marked elements ---- */

/* Hand the complete element [lt, end) to on_element and emit what it returns. */
static apr_status_t element_done(ctfl_rewriter *rw, uint64_t lt, uint64_t end, apr_size_t tag_len)
{
    apr_size_t len = (apr_size_t)(end - lt), repl_len = 0;
    const char *elem, *repl = NULL;
    apr_status_t rv;

    if (lt < rw->emitted)                      /* cannot happen: the element was held */
        return APR_SUCCESS;
    if (len > rw->o.max_element_bytes) {
        rw->st.elements_over_bytes++;
        return APR_SUCCESS;                    /* passes through */
    }
    if ((rv = emit_upto(rw, lt)) != APR_SUCCESS)
        return rv;
    if (lt >= rw->chunk_base) {
        elem = rw->chunk + (lt - rw->chunk_base);
    } else {
        if (end > rw->chunk_base)              /* make it contiguous in the hold */
            hold_append(rw, rw->chunk, (apr_size_t)(end - rw->chunk_base));
        elem = rw->hold + rw->hold_off;
    }
    rw->st.elements++;
    rv = rw->o.on_element(rw->o.element_ctx, elem, len, tag_len, &repl, &repl_len);
    if (rv != APR_SUCCESS)
        return rw->error = rv;
    rv = repl ? out(rw, repl, repl_len) : out(rw, elem, len);
    if (rv != APR_SUCCESS)
        return rv;
    if (lt < rw->chunk_base)
        hold_consume(rw, len);
    rw->emitted = end;
    return APR_SUCCESS;
}

/* The marked element can no longer be collected: it passes through. */
static void region_give_up(ctfl_rewriter *rw, unsigned *counter)
{
    if (rw->region == REGION_COLLECTING) {
        (*counter)++;
        rw->region = REGION_PASSING;
    }
}

/* Pop the stack to `depth` entries. If that closes the marked element, it
 * ends at stream offset `end`. */
static apr_status_t pop_to(ctfl_rewriter *rw, unsigned depth, uint64_t end)
{
    apr_status_t rv = APR_SUCCESS;
    if (depth >= rw->depth)
        return APR_SUCCESS;
    if (rw->region != REGION_NONE && depth <= rw->region_idx) {
        if (rw->region == REGION_COLLECTING)
            rv = element_done(rw, rw->region_lt, end, rw->region_tag_len);
        rw->region = REGION_NONE;
    }
    rw->depth = depth;
    return rv;
}

/* Index of the topmost open element with this name, unless an element with one
 * of the `bounds` flags is above it; -1 when none. */
static int in_scope(const ctfl_rewriter *rw, uint32_t hash, unsigned bounds)
{
    for (int i = (int)rw->depth - 1; i >= 0; i--) {
        if (rw->stack[i].hash == hash && !(rw->stack[i].flags & F_FOREIGN))
            return i;
        if (rw->stack[i].flags & bounds)
            return -1;
    }
    return -1;
}

static int id_in_scope(const ctfl_rewriter *rw, unsigned id, unsigned bounds)
{
    for (int i = (int)rw->depth - 1; i >= 0; i--) {
        if (rw->stack[i].id == id && !(rw->stack[i].flags & F_FOREIGN))
            return i;
        if (rw->stack[i].flags & bounds)
            return -1;
    }
    return -1;
}

#define SCOPE F_SCOPE
#define LIST_SCOPE (F_SCOPE | F_LIST_SCOPE)
#define BUTTON_SCOPE (F_SCOPE | F_BUTTON_SCOPE)
#define TABLE_SCOPE F_TABLE_SCOPE

/* Where an element closed by token t ends: after t when t is the element's own
 * end tag (popping exactly to it), otherwise before t. */
static uint64_t end_at(const ctfl_rewriter *rw, const ctfl_tag *t, unsigned idx)
{
    return t->kind == CTFL_TAG_END && idx == rw->region_idx ? t->end : t->lt;
}

static apr_status_t pop_to_elem(ctfl_rewriter *rw, const ctfl_tag *t, int idx)
{
    return idx < 0 ? APR_SUCCESS : pop_to(rw, (unsigned)idx, end_at(rw, t, (unsigned)idx));
}

/* The adoption agency algorithm, as far as it matters for finding where
 * elements end: with no special element above the formatting element, pop to
 * it; otherwise it is only removed from the stack (the special one stays
 * open), and a marked element caught in between is given up. */
static apr_status_t adopt(ctfl_rewriter *rw, const ctfl_tag *t, uint32_t hash)
{
    int fe = in_scope(rw, hash, SCOPE), fb = -1;
    if (fe < 0)
        return APR_SUCCESS;
    for (unsigned i = (unsigned)fe + 1; i < rw->depth; i++)
        if (rw->stack[i].flags & F_SPECIAL) {
            fb = (int)i;
            break;
        }
    if (fb < 0)
        return pop_to_elem(rw, t, fe);
    if (rw->region != REGION_NONE && rw->region_idx >= (unsigned)fe && rw->region_idx <= (unsigned)fb) {
        region_give_up(rw, &rw->st.elements_malformed);
        if (rw->region_idx == (unsigned)fe)
            rw->region = REGION_NONE;
    }
    memmove(&rw->stack[fe], &rw->stack[fe + 1], (rw->depth - (unsigned)fe - 1) * sizeof(open_elem));
    rw->depth--;
    if (rw->region != REGION_NONE && rw->region_idx > (unsigned)fe)
        rw->region_idx--;
    return APR_SUCCESS;
}

static apr_status_t tree_end_tag(ctfl_rewriter *rw, const ctfl_tag *t)
{
    unsigned flags, id;
    int i;

    if (rw->region == REGION_COLLECTING && !t->name_overflow
        && (!strcmp(t->name, "body") || !strcmp(t->name, "html") || !strcmp(t->name, "head")))
        region_give_up(rw, &rw->st.elements_malformed);
    if (t->foreign) {                          /* nearest matching SVG/MathML element */
        for (i = (int)rw->depth - 1; i >= 0 && (rw->stack[i].flags & F_FOREIGN); i--)
            if (rw->stack[i].hash == t->name_hash)
                return pop_to_elem(rw, t, i);
    }
    {
        ctfl_tag html = *t;
        html.foreign = 0;
        classify(&html, &flags, &id);
    }
    switch (id) {
    case E_BODY: case E_HTML: case E_BR: case E_HEAD: case E_IGNORED:
        return APR_SUCCESS;
    case E_P:
        return pop_to_elem(rw, t, in_scope(rw, t->name_hash, BUTTON_SCOPE));
    case E_LI:
        return pop_to_elem(rw, t, in_scope(rw, t->name_hash, LIST_SCOPE));
    case E_DD: case E_DT:
        return pop_to_elem(rw, t, in_scope(rw, t->name_hash, SCOPE));
    case E_CELL: case E_TR: case E_TSECTION: case E_TABLE: case E_TABLE_PART:
        return pop_to_elem(rw, t, in_scope(rw, t->name_hash, TABLE_SCOPE));
    case E_OPTION: case E_OPTGROUP:
        if (rw->depth && rw->stack[rw->depth - 1].hash == t->name_hash)
            return pop_to_elem(rw, t, (int)rw->depth - 1);
        return APR_SUCCESS;
    default:
        break;
    }
    if (flags & F_HEADING) {
        for (i = (int)rw->depth - 1; i >= 0; i--) {
            if ((rw->stack[i].flags & (F_HEADING | F_FOREIGN)) == F_HEADING)
                return pop_to_elem(rw, t, i);
            if (rw->stack[i].flags & SCOPE)
                return APR_SUCCESS;
        }
        return APR_SUCCESS;
    }
    if (flags & F_BLOCK_END)
        return pop_to_elem(rw, t, in_scope(rw, t->name_hash, SCOPE));
    if (flags & F_FORMATTING)
        return adopt(rw, t, t->name_hash);
    /* any other end tag: the nearest same-named element, unless a special one
     * comes first */
    for (i = (int)rw->depth - 1; i >= 0; i--) {
        if (rw->stack[i].hash == t->name_hash)
            return pop_to_elem(rw, t, i);
        if (rw->stack[i].flags & F_SPECIAL)
            return APR_SUCCESS;
    }
    return APR_SUCCESS;
}

/* Implied end tags caused by an HTML start tag. */
static apr_status_t implied_by_start(ctfl_rewriter *rw, const ctfl_tag *t, unsigned flags, unsigned id)
{
    apr_status_t rv = APR_SUCCESS;
    int i;

    /* leaving SVG/MathML: pop foreign elements above the nearest HTML element
     * or integration point */
    while (rw->depth && (rw->stack[rw->depth - 1].flags & (F_FOREIGN | F_SCOPE)) == F_FOREIGN)
        if ((rv = pop_to(rw, rw->depth - 1, t->lt)) != APR_SUCCESS)
            return rv;

    if (id == E_LI || id == E_DD || id == E_DT) {
        for (i = (int)rw->depth - 1; i >= 0; i--) {
            const open_elem *e = &rw->stack[i];
            unsigned eid = e->flags & F_FOREIGN ? E_OTHER : e->id;
            if ((id == E_LI && eid == E_LI) || (id != E_LI && (eid == E_DD || eid == E_DT))) {
                if ((rv = pop_to(rw, (unsigned)i, t->lt)) != APR_SUCCESS)
                    return rv;
                break;
            }
            if ((e->flags & F_SPECIAL) && eid != E_P && eid != E_DIV && eid != E_ADDRESS)
                break;
        }
    }
    if (flags & F_CLOSES_P) {
        i = id_in_scope(rw, E_P, BUTTON_SCOPE);
        if (i >= 0 && (rv = pop_to(rw, (unsigned)i, t->lt)) != APR_SUCCESS)
            return rv;
    }
    if ((flags & F_HEADING) && rw->depth
        && (rw->stack[rw->depth - 1].flags & (F_HEADING | F_FOREIGN)) == F_HEADING)
        if ((rv = pop_to(rw, rw->depth - 1, t->lt)) != APR_SUCCESS)
            return rv;

    switch (id) {
    case E_OPTION: case E_OPTGROUP:
        if (rw->depth && rw->stack[rw->depth - 1].id == E_OPTION)
            rv = pop_to(rw, rw->depth - 1, t->lt);
        if (rv == APR_SUCCESS && id == E_OPTGROUP && rw->depth
            && rw->stack[rw->depth - 1].id == E_OPTGROUP)
            rv = pop_to(rw, rw->depth - 1, t->lt);
        return rv;
    case E_CELL: case E_TR: case E_TSECTION:
        i = id_in_scope(rw, E_CELL, TABLE_SCOPE);              /* close the cell */
        if (i >= 0 && (rv = pop_to(rw, (unsigned)i, t->lt)) != APR_SUCCESS)
            return rv;
        if (id == E_CELL)
            return APR_SUCCESS;
        i = id_in_scope(rw, E_TR, TABLE_SCOPE);
        if (i >= 0 && (rv = pop_to(rw, (unsigned)i, t->lt)) != APR_SUCCESS)
            return rv;
        if (id == E_TSECTION) {
            i = id_in_scope(rw, E_TSECTION, TABLE_SCOPE);
            if (i >= 0)
                rv = pop_to(rw, (unsigned)i, t->lt);
        }
        return rv;
    case E_BUTTON:
        return pop_to_elem(rw, t, id_in_scope(rw, E_BUTTON, SCOPE));
    case E_A: case E_NOBR:
        return adopt(rw, t, t->name_hash);
    case E_TABLE:
        /* standards mode closes an open <p> here, quirks mode does not: a marked
         * element that this decides is given up */
        if (rw->region == REGION_COLLECTING && id_in_scope(rw, E_P, BUTTON_SCOPE) >= 0)
            region_give_up(rw, &rw->st.elements_malformed);
        return APR_SUCCESS;
    default:
        return APR_SUCCESS;
    }
}

static apr_status_t tree_start_tag(ctfl_rewriter *rw, const ctfl_tag *t, int capped)
{
    unsigned flags, id;
    int marked = (t->attrs & (CTFL_ATTR_BASELINE_ID | CTFL_ATTR_ENTRY_ID)) != 0;
    int pushed = 0, is_void;
    apr_status_t rv;

    classify(t, &flags, &id);
    if (!t->foreign && (rv = implied_by_start(rw, t, flags, id)) != APR_SUCCESS)
        return rv;
    is_void = t->foreign ? t->self_closing : (flags & F_VOID) != 0;
    if (!is_void && id != E_IGNORED
        && !((id == E_HTML || id == E_BODY) && id_in_scope(rw, id, 0) >= 0)) {
        if (rw->depth < STACK_MAX) {
            rw->stack[rw->depth].hash = t->name_hash;
            rw->stack[rw->depth].flags = (unsigned short)flags;
            rw->stack[rw->depth].id = (unsigned char)id;
            rw->depth++;
            pushed = 1;
        } else {
            rw->stack_lost = 1;
            region_give_up(rw, &rw->st.elements_malformed);
        }
    }
    if (!marked || rw->region != REGION_NONE)
        return APR_SUCCESS;                    /* nested ones belong to the outer element */
    if (rw->started >= rw->o.max_elements) {
        rw->st.elements_over_count++;
        return APR_SUCCESS;
    }
    rw->started++;
    if (capped) {
        rw->st.elements_over_bytes++;
        return APR_SUCCESS;
    }
    if (is_void)
        return element_done(rw, t->lt, t->end, (apr_size_t)(t->end - t->lt));
    if (!pushed || rw->stack_lost) {
        rw->st.elements_malformed++;
        return APR_SUCCESS;
    }
    rw->region = REGION_COLLECTING;
    rw->region_idx = rw->depth - 1;
    rw->region_lt = t->lt;
    rw->region_tag_len = (apr_size_t)(t->end - t->lt);
    return APR_SUCCESS;
}

/* ---- tags ---- */

static int tag_is(const ctfl_tag *t, int kind, const char *name)
{
    return t->kind == kind && !t->name_overflow && strcmp(t->name, name) == 0;
}

static apr_status_t maybe_inject(ctfl_rewriter *rw, const ctfl_tag *t)
{
    apr_status_t rv;
    ctfl_inject_where where;

    if (!rw->o.inject || rw->st.injected != CTFL_INJECT_NONE || t->kind != CTFL_TAG_END)
        return APR_SUCCESS;
    if (tag_is(t, CTFL_TAG_END, "head"))
        where = CTFL_INJECT_HEAD;
    else if (tag_is(t, CTFL_TAG_END, "body"))
        where = CTFL_INJECT_BODY;
    else
        return APR_SUCCESS;
    if (t->lt < rw->emitted)                   /* cannot happen: a short tag is held */
        return APR_SUCCESS;
    if ((rv = emit_upto(rw, t->lt)) != APR_SUCCESS)
        return rv;
    if ((rv = out(rw, rw->o.inject, rw->o.inject_len)) != APR_SUCCESS)
        return rv;
    rw->st.injected = where;
    return APR_SUCCESS;
}

static apr_status_t on_tag(ctfl_rewriter *rw, const ctfl_tag *t)
{
    apr_status_t rv;
    int capped = t->end - t->lt > rw->o.max_tag_bytes;

    if (capped)
        rw->st.caps_hit++;                     /* passed through, not acted on */
    if (rw->o.on_element) {
        rv = t->kind == CTFL_TAG_START ? tree_start_tag(rw, t, capped) : tree_end_tag(rw, t);
        if (rv != APR_SUCCESS)
            return rv;
    }
    return capped ? APR_SUCCESS : maybe_inject(rw, t);
}

apr_status_t ctfl_rewriter_feed(ctfl_rewriter *rw, const char *data, apr_size_t len)
{
    apr_status_t rv;
    apr_size_t off = 0;
    const ctfl_tag *t;
    uint64_t keep_from, chunk_end;

    if (rw->error)
        return rw->error;
    if (rw->finished)
        return rw->error = APR_EGENERAL;
    if (!len)
        return APR_SUCCESS;

    rw->chunk_base = rw->st.bytes_in;
    rw->chunk = data;
    rw->chunk_len = len;
    rw->st.bytes_in += len;
    chunk_end = rw->chunk_base + len;

    while ((t = ctfl_scan_next(&rw->sc, data, len, &off)) != NULL)
        if ((rv = on_tag(rw, t)) != APR_SUCCESS)
            return rv;

    /* Hold back the marked element being collected and an unfinished tag,
     * unless over their caps (a tag is counted when it completes, or at EOF,
     * so the counts do not depend on the chunking). */
    keep_from = chunk_end;
    if (rw->region == REGION_COLLECTING) {
        if (chunk_end - rw->region_lt > rw->o.max_element_bytes)
            region_give_up(rw, &rw->st.elements_over_bytes);
        else
            keep_from = rw->region_lt;
    }
    if (ctfl_scan_in_tag(&rw->sc) && chunk_end - ctfl_scan_tag_start(&rw->sc) <= rw->o.max_tag_bytes
        && ctfl_scan_tag_start(&rw->sc) < keep_from)
        keep_from = ctfl_scan_tag_start(&rw->sc);
    if ((rv = emit_upto(rw, keep_from)) != APR_SUCCESS)
        return rv;
    if (keep_from < chunk_end) {
        uint64_t from = keep_from > rw->chunk_base ? keep_from : rw->chunk_base;
        hold_append(rw, data + (from - rw->chunk_base), (apr_size_t)(chunk_end - from));
        if (rw->hold_len - rw->hold_off > rw->st.max_held)
            rw->st.max_held = rw->hold_len - rw->hold_off;
    }
    rw->chunk_base = chunk_end;                /* the chunk is now either emitted or held */
    rw->chunk = NULL;
    rw->chunk_len = 0;
    return APR_SUCCESS;
}

apr_status_t ctfl_rewriter_finish(ctfl_rewriter *rw)
{
    if (rw->error)
        return rw->error;
    if (rw->finished)
        return APR_SUCCESS;
    rw->finished = 1;
    if (ctfl_scan_in_tag(&rw->sc)
        && rw->st.bytes_in - ctfl_scan_tag_start(&rw->sc) > rw->o.max_tag_bytes)
        rw->st.caps_hit++;
    region_give_up(rw, &rw->st.elements_unclosed);
    rw->region = REGION_NONE;
    return emit_upto(rw, rw->st.bytes_in);     /* all held bytes, unchanged */
}

const ctfl_rewriter_stats *ctfl_rewriter_get_stats(const ctfl_rewriter *rw)
{
    return &rw->st;
}
