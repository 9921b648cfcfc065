/* ctfl_rewrite — streaming, byte-preserving rewriter; see ctfl_rewrite.h.
 *
 * Output model: every byte of the stream before offset `emitted` has been passed
 * to emit(); the bytes [emitted, chunk_base) are in `hold` (an unfinished tag or
 * a marked element from earlier chunks). Bytes of the current chunk are emitted
 * straight from the caller's buffer. Edits are made by emitting other bytes in
 * place of, or before, stream bytes that have not been emitted yet.
 *
 * Marked elements (an entry id or a custom flag attribute): with on_element
 * set, an element stack follows a simplified version of the HTML
 * tree-construction rules (implied end tags of p, li, dd/dt, td/th/tr/tbody,
 * option; scopes; void elements; SVG/MathML) so that the end of a marked
 * element is found as a browser would find it. What those rules cannot
 * follow (misnested formatting elements around the element, </body> inside it,
 * a very deep stack) makes the element pass through unchanged. */
#include "ctfl_rewrite.h"
#include "ctfl_scan.h"
#include <string.h>

#define DEFAULT_MAX_TAG (64 * 1024)
#define DEFAULT_MAX_ELEMENT (1024 * 1024)
#define DEFAULT_MAX_ELEMENTS 1000
#define STACK_MAX 512
#define ELEMENT_TAGS_MAX 4096       /* tags recorded for one held element */

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

/* Known HTML elements in an open-addressing table keyed by the scanner's name
 * hash (slot = hash % 256, linear probing). Generated; checked against
 * ctfl_scan_name_hash() by ctfl_rewrite_elem_table_ok(). */
typedef struct {
    const char *name;
    uint32_t hash;
    unsigned char len;          /* 0: empty slot */
    unsigned short flags;
    unsigned char id;
} elem_info;

#define ELEM_SLOTS 256
static const elem_info html_elems[ELEM_SLOTS] = {
    [3] = { "tr", 0x47455003u, 2, F_SPECIAL, E_TR },
    [4] = { "img", 0x84e72504u, 3, F_SPECIAL | F_VOID, E_OTHER },
    [5] = { "dt", 0x4d1cb705u, 2, F_CLOSES_P | F_SPECIAL, E_DT },
    [8] = { "colgroup", 0x08f58208u, 8, F_SPECIAL, E_TABLE_PART },
    [9] = { "figure", 0x61a6d509u, 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [10] = { "main", 0xea90e208u, 4, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [11] = { "template", 0x694aaa0bu, 8, F_BLOCK_END | F_SCOPE | F_SPECIAL | F_TABLE_SCOPE, E_OTHER },
    [12] = { "title", 0x9865b509u, 5, F_SPECIAL, E_OTHER },
    [16] = { "u", 0xf00c3c10u, 1, F_FORMATTING, E_OTHER },
    [19] = { "summary", 0x10a44713u, 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [27] = { "tfoot", 0xbfb4741bu, 5, F_SPECIAL, E_TSECTION },
    [30] = { "hgroup", 0x8512ef1eu, 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [32] = { "plaintext", 0x69eac520u, 9, F_CLOSES_P | F_SPECIAL, E_OTHER },
    [44] = { "a", 0xe40c292cu, 1, F_FORMATTING, E_A },
    [45] = { "select", 0x11c2662du, 6, F_BLOCK_END | F_SPECIAL, E_OTHER },
    [50] = { "param", 0x4e0e3632u, 5, F_SPECIAL | F_VOID, E_OTHER },
    [52] = { "ul", 0x5f433734u, 2, F_BLOCK_END | F_CLOSES_P | F_LIST_SCOPE | F_SPECIAL, E_OTHER },
    [53] = { "dd", 0x5d1cd035u, 2, F_CLOSES_P | F_SPECIAL, E_DD },
    [54] = { "keygen", 0xa4db2c36u, 6, F_SPECIAL | F_VOID, E_OTHER },
    [58] = { "menu", 0x99e4dd3au, 4, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [60] = { "track", 0x7b3d6c3cu, 5, F_SPECIAL | F_VOID, E_OTHER },
    [63] = { "hr", 0x4f3acf3fu, 2, F_CLOSES_P | F_SPECIAL | F_VOID, E_OTHER },
    [68] = { "area", 0x9b0f2144u, 4, F_SPECIAL | F_VOID, E_OTHER },
    [69] = { "td", 0x3d454045u, 2, F_SCOPE | F_SPECIAL, E_CELL },
    [70] = { "h5", 0x8c3b2f46u, 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    [71] = { "form", 0x4058c747u, 4, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [72] = { "div", 0xe562ab48u, 3, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_DIV },
    [73] = { "li", 0x4031bd46u, 2, F_CLOSES_P | F_SPECIAL, E_LI },
    [75] = { "marquee", 0x02ace84bu, 7, F_BLOCK_END | F_SCOPE | F_SPECIAL, E_OTHER },
    [78] = { "embed", 0x281ba64eu, 5, F_SPECIAL | F_VOID, E_OTHER },
    [79] = { "nobr", 0x9ab21f4eu, 4, F_FORMATTING, E_NOBR },
    [80] = { "strike", 0x25b4af4fu, 6, F_FORMATTING, E_OTHER },
    [83] = { "address", 0x2c6a2953u, 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_ADDRESS },
    [88] = { "meta", 0x81fe4f58u, 4, F_SPECIAL | F_VOID, E_OTHER },
    [89] = { "article", 0x17676759u, 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [96] = { "header", 0xe488d460u, 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [101] = { "basefont", 0x3116b465u, 8, F_SPECIAL | F_VOID, E_OTHER },
    [102] = { "caption", 0xef131c65u, 7, F_SCOPE | F_SPECIAL, E_TABLE_PART },
    [105] = { "link", 0x0ddb0669u, 4, F_SPECIAL | F_VOID, E_OTHER },
    [106] = { "xmp", 0xd670686au, 3, F_CLOSES_P | F_SPECIAL, E_OTHER },
    [107] = { "tbody", 0x8b7cd36bu, 5, F_SPECIAL, E_TSECTION },
    [108] = { "h3", 0x8e3b326cu, 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    [113] = { "button", 0x43b27471u, 6, F_BLOCK_END | F_BUTTON_SCOPE | F_SPECIAL, E_BUTTON },
    [114] = { "col", 0xf28dd471u, 3, F_SPECIAL | F_VOID, E_OTHER },
    [117] = { "bgsound", 0xb2b63175u, 7, F_SPECIAL | F_VOID, E_OTHER },
    [118] = { "body", 0xdbaa7975u, 4, F_SPECIAL, E_BODY },
    [119] = { "tt", 0x4d455975u, 2, F_FORMATTING, E_OTHER },
    [122] = { "strong", 0xc51f5d7au, 6, F_FORMATTING, E_OTHER },
    [123] = { "input", 0xf9d86f7bu, 5, F_SPECIAL | F_VOID, E_OTHER },
    [130] = { "s", 0xf60c4582u, 1, F_FORMATTING, E_OTHER },
    [132] = { "center", 0x058c4484u, 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [136] = { "noframes", 0x83d3a088u, 8, F_SPECIAL, E_OTHER },
    [140] = { "small", 0xa2c4f48cu, 5, F_FORMATTING, E_OTHER },
    [144] = { "font", 0x274e1290u, 4, F_FORMATTING, E_OTHER },
    [145] = { "applet", 0x23375d91u, 6, F_BLOCK_END | F_SCOPE | F_SPECIAL, E_OTHER },
    [146] = { "h1", 0x903b3592u, 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    [147] = { "noscript", 0x53c9eb91u, 8, F_SPECIAL, E_OTHER },
    [148] = { "dir", 0xe962b194u, 3, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [149] = { "figcaption", 0xb72fca95u, 10, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [150] = { "option", 0xe7e19b94u, 6, 0, E_OPTION },
    [151] = { "th", 0x41454691u, 2, F_SCOPE | F_SPECIAL, E_CELL },
    [153] = { "thead", 0xaa108e99u, 5, F_SPECIAL, E_TSECTION },
    [158] = { "blockquote", 0xe18d189eu, 10, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [161] = { "iframe", 0xd00085a1u, 6, F_SPECIAL, E_OTHER },
    [165] = { "details", 0x5967f3a5u, 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [166] = { "frame", 0xd20a71a6u, 5, F_SPECIAL | F_VOID, E_OTHER },
    [167] = { "noembed", 0xf4ef80a7u, 7, F_SPECIAL, E_OTHER },
    [169] = { "search", 0x803328a9u, 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [170] = { "script", 0x203e6faau, 6, F_SPECIAL, E_OTHER },
    [178] = { "footer", 0x114985b2u, 6, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [179] = { "h6", 0x8b3b2db3u, 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    [181] = { "br", 0x4f2bc4b5u, 2, F_SPECIAL | F_VOID, E_BR },
    [185] = { "big", 0x53cacdb9u, 3, F_FORMATTING, E_OTHER },
    [186] = { "dialog", 0x0aa7f0b9u, 6, F_BLOCK_END | F_CLOSES_P, E_OTHER },
    [187] = { "object", 0xb8c60cbau, 6, F_BLOCK_END | F_SCOPE | F_SPECIAL, E_OTHER },
    [195] = { "head", 0x32694bc3u, 4, F_SPECIAL, E_HEAD },
    [196] = { "i", 0xec0c35c4u, 1, F_FORMATTING, E_OTHER },
    [199] = { "aside", 0xdbc0dcc7u, 5, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [202] = { "wbr", 0x25dc1dcau, 3, F_SPECIAL | F_VOID, E_OTHER },
    [204] = { "section", 0xfcdd0cccu, 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [205] = { "dl", 0x651cdccdu, 2, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [208] = { "html", 0xd775a7d0u, 4, F_SCOPE | F_SPECIAL | F_TABLE_SCOPE, E_HTML },
    [214] = { "style", 0xac307ed6u, 5, F_SPECIAL, E_OTHER },
    [216] = { "base", 0x3ddc94d8u, 4, F_SPECIAL | F_VOID, E_OTHER },
    [217] = { "h4", 0x8d3b30d9u, 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
    [218] = { "source", 0x1bcf29d8u, 6, F_SPECIAL | F_VOID, E_OTHER },
    [222] = { "frameset", 0x7faa0edeu, 8, F_SPECIAL, E_IGNORED },
    [223] = { "listing", 0xb48709dfu, 7, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [224] = { "table", 0x4a9c9bdfu, 5, F_SCOPE | F_SPECIAL | F_TABLE_SCOPE, E_TABLE },
    [229] = { "b", 0xe70c2de5u, 1, F_FORMATTING, E_OTHER },
    [230] = { "pre", 0x4a7ab7e6u, 3, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [237] = { "optgroup", 0xdcda01edu, 8, 0, E_OPTGROUP },
    [239] = { "p", 0xf50c43efu, 1, F_CLOSES_P | F_SPECIAL, E_P },
    [242] = { "nav", 0x178eedf2u, 3, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [244] = { "code", 0xf9316cf4u, 4, F_FORMATTING, E_OTHER },
    [246] = { "ol", 0x633432f6u, 2, F_BLOCK_END | F_CLOSES_P | F_LIST_SCOPE | F_SPECIAL, E_OTHER },
    [247] = { "em", 0x401a63f7u, 2, F_FORMATTING, E_OTHER },
    [250] = { "image", 0xb35135fau, 5, F_VOID, E_OTHER },
    [251] = { "textarea", 0xd6aab9fbu, 8, F_SPECIAL, E_OTHER },
    [253] = { "fieldset", 0x94c91bfdu, 8, F_BLOCK_END | F_CLOSES_P | F_SPECIAL, E_OTHER },
    [255] = { "h2", 0x8f3b33ffu, 2, F_BLOCK_END | F_CLOSES_P | F_HEADING | F_SPECIAL, E_OTHER },
};

static const elem_info *elem_lookup(uint32_t hash, unsigned len)
{
    for (unsigned i = hash % ELEM_SLOTS; html_elems[i].len; i = (i + 1) % ELEM_SLOTS)
        if (html_elems[i].hash == hash && html_elems[i].len == len)
            return &html_elems[i];
    return NULL;
}

int ctfl_rewrite_elem_table_ok(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < ELEM_SLOTS; i++) {
        const elem_info *e = &html_elems[i];
        if (!e->len)
            continue;
        n++;
        if (e->len != strlen(e->name) || e->hash != ctfl_scan_name_hash(e->name, e->len)
            || elem_lookup(e->hash, e->len) != e)
            return 0;
    }
    return n == 101;
}

/* Classes of the element named by t; as an SVG/MathML element if `foreign`. */
static void classify(const ctfl_tag *t, int foreign, unsigned *flags, unsigned *id)
{
    *flags = 0;
    *id = E_OTHER;
    if (t->name_overflow || !t->name_len)
        return;
    if (foreign) {
        /* MathML text and annotation, SVG foreignObject/desc/title: scope bounds */
        static const char *const bounds[] = {
            "mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc", "title"
        };
        *flags = F_FOREIGN;
        for (unsigned i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
            if (ctfl_tag_name_eq(t, bounds[i], strlen(bounds[i])))
                *flags |= F_SCOPE | F_SPECIAL;
        return;
    }
    {
        const elem_info *e = elem_lookup(t->name_hash, t->name_len);
        if (e) {
            *flags = e->flags;
            *id = e->id;
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

    /* The tags of the element being collected, as the page's scan found them,
     * for on_element (ctfl_rewriter_element_tags): only when they are what a
     * scan of the element alone finds, i.e. when the scanner is in HTML content
     * after its start tag; NULL otherwise or over ELEMENT_TAGS_MAX. */
    ctfl_tag *etags;
    unsigned netags, etags_cap;
    int etags_ok;
    const ctfl_tag *handed_tags; /* during on_element: rebased to the element */
    int handed_ntags;

    int replay;                 /* ctfl_rewriter_replay: tags without bytes */
    uint64_t element_lt;        /* during on_element: the element's stream offset */

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
    if (rw->replay) {                          /* no bytes: only the accounting */
        rw->st.bytes_out += (apr_size_t)(to - rw->emitted);
        rw->emitted = to;
        return APR_SUCCESS;
    }
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

static void etags_push(ctfl_rewriter *rw, const ctfl_tag *t)
{
    if (!rw->etags_ok)
        return;
    if (rw->netags == rw->etags_cap) {
        ctfl_tag *nt;
        if (rw->etags_cap >= ELEMENT_TAGS_MAX) {
            rw->etags_ok = 0;
            return;
        }
        rw->etags_cap = rw->etags_cap ? rw->etags_cap * 2 : 32;
        nt = apr_palloc(rw->pool, rw->etags_cap * sizeof(*nt));
        if (rw->netags)
            memcpy(nt, rw->etags, rw->netags * sizeof(*nt));
        rw->etags = nt;
    }
    rw->etags[rw->netags++] = *t;
}

/* A marked start tag begins an element: its tags are recorded from here on. */
static void etags_begin(ctfl_rewriter *rw, const ctfl_tag *t)
{
    rw->netags = 0;
    /* (not in a replay: nobody reads them there) */
    rw->etags_ok = !t->foreign && rw->sc.foreign_depth == 0 && !rw->replay;
    etags_push(rw, t);
}

const ctfl_tag *ctfl_rewriter_element_tags(const ctfl_rewriter *rw, int *n)
{
    *n = rw->handed_tags ? rw->handed_ntags : 0;
    return rw->handed_tags;
}

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
    if (rw->replay) {
        elem = NULL;
    } else if (lt >= rw->chunk_base) {
        elem = rw->chunk + (lt - rw->chunk_base);
    } else {
        if (end > rw->chunk_base)              /* make it contiguous in the hold */
            hold_append(rw, rw->chunk, (apr_size_t)(end - rw->chunk_base));
        elem = rw->hold + rw->hold_off;
    }
    rw->st.elements++;
    if (rw->etags_ok) {
        int n = 0;
        for (unsigned i = 0; i < rw->netags && rw->etags[i].end <= end; i++, n++) {
            rw->etags[i].lt -= lt;
            rw->etags[i].end -= lt;
        }
        rw->handed_tags = rw->etags;
        rw->handed_ntags = n;
    }
    rw->element_lt = lt;
    rv = rw->o.on_element(rw->o.element_ctx, elem, len, tag_len, &repl, &repl_len);
    rw->handed_tags = NULL;
    rw->etags_ok = 0;
    if (rv != APR_SUCCESS)
        return rw->error = rv;
    if (rw->replay) {
        rw->st.bytes_out += len;
    } else {
        rv = repl ? out(rw, repl, repl_len) : out(rw, elem, len);
        if (rv != APR_SUCCESS)
            return rv;
        if (lt < rw->chunk_base)
            hold_consume(rw, len);
    }
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

/* Index of the topmost open HTML element whose name hash (by_id 0) or element
 * id (by_id 1) is key, unless an element with one of the `bounds` flags is
 * above it; -1 when none. */
static int find_in_scope(const ctfl_rewriter *rw, int by_id, uint32_t key, unsigned bounds)
{
    for (int i = (int)rw->depth - 1; i >= 0; i--) {
        const open_elem *e = &rw->stack[i];
        if ((by_id ? e->id : e->hash) == key && !(e->flags & F_FOREIGN))
            return i;
        if (e->flags & bounds)
            return -1;
    }
    return -1;
}

static int in_scope(const ctfl_rewriter *rw, uint32_t hash, unsigned bounds)
{
    return find_in_scope(rw, 0, hash, bounds);
}

static int id_in_scope(const ctfl_rewriter *rw, unsigned id, unsigned bounds)
{
    return find_in_scope(rw, 1, id, bounds);
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

    classify(t, 0, &flags, &id);
    if (rw->region == REGION_COLLECTING && (id == E_BODY || id == E_HTML || id == E_HEAD))
        region_give_up(rw, &rw->st.elements_malformed);
    if (t->foreign) {                          /* nearest matching SVG/MathML element */
        for (i = (int)rw->depth - 1; i >= 0 && (rw->stack[i].flags & F_FOREIGN); i--)
            if (rw->stack[i].hash == t->name_hash)
                return pop_to_elem(rw, t, i);
    }
    switch (id) {
    case E_BODY: case E_HTML: case E_BR: case E_IGNORED:
        return APR_SUCCESS;
    case E_HEAD:
        if (rw->depth && rw->stack[rw->depth - 1].id == E_HEAD)
            return pop_to_elem(rw, t, (int)rw->depth - 1);
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
    int marked = (t->attrs & (CTFL_ATTR_BASELINE_ID | CTFL_ATTR_ENTRY_ID
                              | CTFL_ATTR_FLAG | CTFL_ATTR_FLAG_IF)) != 0;
    int pushed = 0, is_void;
    apr_status_t rv;

    classify(t, t->foreign, &flags, &id);
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
    etags_begin(rw, t);
    if (is_void)
        return element_done(rw, t->lt, t->end, (apr_size_t)(t->end - t->lt));
    if (!pushed || rw->stack_lost) {
        rw->st.elements_malformed++;
        rw->etags_ok = 0;
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
    return t->kind == kind && ctfl_tag_name_eq(t, name, strlen(name));
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

    if (capped) {
        rw->st.caps_hit++;                     /* passed through, not acted on */
        region_give_up(rw, &rw->st.elements_over_bytes);
    }
    if (rw->o.on_element) {
        if (rw->region == REGION_COLLECTING)
            etags_push(rw, t);
        rv = t->kind == CTFL_TAG_START ? tree_start_tag(rw, t, capped) : tree_end_tag(rw, t);
        if (rv != APR_SUCCESS)
            return rv;
    }
    if (capped || t->kind != CTFL_TAG_END || rw->st.injected != CTFL_INJECT_NONE)
        return APR_SUCCESS;                    /* (checked here: most tags stop here) */
    return maybe_inject(rw, t);
}

/* The tags of a chunk, scanned from data or replayed from tags, each acted on.
 * The one place that calls on_tag: it runs for every tag of the page, and GCC
 * keeps it and the tree code inlined only while it has a single caller. */
static apr_status_t take_tags(ctfl_rewriter *rw, const char *data, apr_size_t len,
                              const ctfl_tag *tags, int n)
{
    apr_size_t off = 0;
    apr_status_t rv;
    const ctfl_tag *t;
    for (int i = 0;; i++) {
        if (tags) {
            if (i >= n)
                break;
            t = &tags[i];
            if (t->lt < (i ? tags[i - 1].end : 0) || t->end > rw->st.bytes_in)
                return rw->error = APR_EGENERAL;
        } else if ((t = ctfl_scan_next(&rw->sc, data, len, &off)) == NULL) {
            break;
        }
        if ((rv = on_tag(rw, t)) != APR_SUCCESS)
            return rv;
    }
    return APR_SUCCESS;
}

apr_status_t ctfl_rewriter_feed(ctfl_rewriter *rw, const char *data, apr_size_t len)
{
    apr_status_t rv;
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

    if ((rv = take_tags(rw, data, len, NULL, 0)) != APR_SUCCESS)
        return rv;

    /* Hold back the marked element being collected and an unfinished tag,
     * unless over their caps (a tag is counted when it completes, or at EOF,
     * so the counts do not depend on the chunking). */
    keep_from = chunk_end;
    if (rw->region == REGION_COLLECTING) {
        /* The element ends at the earliest where the unfinished tag starts:
         * give it up now only when its length is certain to exceed the cap, or
         * when that tag will complete over its own cap (so the decision does
         * not depend on where the chunk ended). */
        int in_tag = ctfl_scan_in_tag(&rw->sc);
        uint64_t tag_lt = ctfl_scan_tag_start(&rw->sc);
        uint64_t min_end = in_tag ? tag_lt : chunk_end;
        if (min_end - rw->region_lt > rw->o.max_element_bytes
            || (ctfl_scan_in_definite_tag(&rw->sc) && chunk_end - tag_lt > rw->o.max_tag_bytes))
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

apr_status_t ctfl_rewriter_replay(ctfl_rewriter *rw, const ctfl_tag *tags, int n, uint64_t len)
{
    apr_status_t rv;

    if (rw->error)
        return rw->error;
    if (rw->finished || rw->st.bytes_in || !rw->o.on_element)
        return rw->error = APR_EGENERAL;
    rw->replay = 1;
    rw->st.bytes_in = len;
    if ((rv = take_tags(rw, NULL, 0, tags, n)) != APR_SUCCESS)
        return rv;
    rw->chunk_base = len;
    return APR_SUCCESS;
}

uint64_t ctfl_rewriter_element_offset(const ctfl_rewriter *rw)
{
    return rw->element_lt;
}

apr_status_t ctfl_rewriter_finish(ctfl_rewriter *rw)
{
    if (rw->error)
        return rw->error;
    if (rw->finished)
        return APR_SUCCESS;
    rw->finished = 1;
    if (ctfl_scan_in_tag(&rw->sc)
        && rw->st.bytes_in - ctfl_scan_tag_start(&rw->sc) > rw->o.max_tag_bytes) {
        rw->st.caps_hit++;
        if (ctfl_scan_in_definite_tag(&rw->sc))   /* as the last feed decided */
            region_give_up(rw, &rw->st.elements_over_bytes);
    }
    region_give_up(rw, &rw->st.elements_unclosed);
    rw->region = REGION_NONE;
    return emit_upto(rw, rw->st.bytes_in);     /* all held bytes, unchanged */
}

const ctfl_rewriter_stats *ctfl_rewriter_get_stats(const ctfl_rewriter *rw)
{
    return &rw->st;
}
