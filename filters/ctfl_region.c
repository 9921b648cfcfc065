/* ctfl_region — personalize one complete marked element; see ctfl_region.h.
 *
 * Parse (once per element, before anything is fetched):
 *   1. ctfl_scan over the element: every tag and its exact byte offsets.
 *   2. libxml2 (SAX, one call, the page encoding set explicitly, no tree built)
 *      on the element's tags (see tags_only): its elements in document order
 *      must be the tokenizer's start tags with the same names and the same
 *      data-ctfl-* attributes; it gives their decoded values (plain ones are
 *      read from the bytes) and the tree (parent, last descendant).
 *      Markup inside raw-text elements (noscript, textarea, ...) is text for
 *      the tokenizer, as for a browser, so libxml2 2.9 (which parses it) never
 *      sees it. When the content holds no "data-ctfl" at all, only the start
 *      tag is parsed (it is all that is used).
 *   3. Extents from ctfl_rewrite itself, so that they follow the same HTML rules
 *      that found the outer element: run on "<name>" + content + "</name>" with
 *      a marker attribute added to every element the rewrite acts on (marked,
 *      field, flag, variant template), it hands over the outermost ones; run on
 *      one such element alone, it tells whether its own end tag closes it.
 *      Every extent must also be libxml2's subtree of that element. Where the
 *      page's scan of the element was handed over, the first of these runs
 *      replays those tags (ctfl_rewriter_replay) instead of scanning again.
 * Rewrite: walk the nodes of the chosen content in document order and splice
 * into the original bytes. */
#include "ctfl_region.h"
#include "ctfl_scan.h"
#include "ctfl_rewrite.h"
#include "ctfl_richtext.h"
#include "ctfl_escape.h"

#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_xlate.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/globals.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define MAX_ELEMENT_BYTES ((apr_size_t)(INT_MAX / 2))   /* libxml2 takes an int */
#define MAX_ID_LEN 64

enum {
    NF_MARKED = 1 << 0,       /* data-ctfl-baseline-id or data-ctfl-entry-id */
    NF_TEMPLATE = 1 << 1,     /* an HTML <template> */
    NF_VARIANT = 1 << 2,      /* variant template: direct child of a marked element */
    NF_EXTENT = 1 << 3,       /* cend/eend known */
    NF_VOID = 1 << 4          /* no content */
};

typedef struct {
    apr_size_t ws, name, name_end, val, val_end;  /* [ws, name): whitespace before it */
    int quoted;
} lexattr;

typedef struct {
    apr_size_t lt, end;       /* the tag [lt, end) */
    uint32_t hash;
    unsigned char kind, foreign, self_closing;
    unsigned attrs;           /* CTFL_ATTR_* seen by the tokenizer */
    int node;                 /* start tags: node index */
} rtok;

typedef struct {
    apr_size_t lt, end;       /* start tag */
    apr_size_t cend, eend;    /* content [end, cend), end tag [cend, eend) (NF_EXTENT) */
    unsigned flags;
    int tok;
    int parent, last;         /* libxml2 tree: parent node (-1: root), last descendant */
    int region;               /* region starting at this node, or -1 */
    const char *baseline_id, *entry_id, *variant_id;
    const char *field, *field_attr, *flag, *flag_if;
    lexattr *lex;             /* start tag attributes (nodes that may be spliced) */
    int nlex;
    apr_size_t insert_at;     /* where a new attribute goes: the final '>' or the '/' of "/>" */
    const char **plain;       /* NULL, or per attr_index: a plain value (plain_value)
                                 taken from the bytes, libxml2 only given the name */
} rnode;

typedef struct {
    int node;
    int parent;               /* enclosing region, -1 for the outer element */
    unsigned depth;
    int analysed;             /* 0: deeper than CTFL_REGION_MAX_DEPTH, kept as is */
    const char *id;           /* valid baseline id, or NULL */
} rregion;

struct ctfl_region {
    apr_pool_t *p;
    const char *elem;
    apr_size_t len;
    const char *xml;          /* what libxml2 parses (tags_only) */
    const char *parse_enc;    /* libxml2 encoding name */
    xmlCharEncodingHandlerPtr enc;  /* its handler when setup_charset had to look it up
                                       (until the parse takes it; closed with the pool) */
    int utf8_page;
    int c1_check;             /* parsed as ISO-8859-1 for windows-1252: refuse C1 in values */
    const char *out_enc;      /* iconv target for inserted text; NULL: NCRs only */
    int opaque;               /* content has no "data-ctfl": only the start tag was parsed */
    const ctfl_tag *given;    /* the element's tags from the page's scan, or NULL */
    int ngiven;
    rtok *toks;
    int ntoks;
    rnode *nodes;
    int nnodes;
    apr_array_header_t *regions;   /* of rregion */
    apr_size_t work, max_work;     /* bytes given to ctfl_rewrite runs, and their cap */
};

#define REGION(r, i) (&APR_ARRAY_IDX((r)->regions, (i), rregion))

static void use_given_tags(ctfl_region *r, const ctfl_tag *tags, int n)
{
    if (tags && n > 0 && tags[n - 1].end <= r->len) {   /* else: not this element's */
        r->given = tags;
        r->ngiven = n;
    }
}

/* The element's tags in order: those the page's rewriter handed over (its scan
 * of the page, identical to a scan of the element alone), else a scan here. */
typedef struct {
    const ctfl_region *r;
    int i;
    ctfl_scan sc;
    apr_size_t off;
} tag_src;

static void src_init(tag_src *ts, const ctfl_region *r)
{
    ts->r = r;
    ts->i = 0;
    ts->off = 0;
    if (!r->given)
        ctfl_scan_init(&ts->sc);
}

static const ctfl_tag *src_next(tag_src *ts)
{
    if (ts->r->given)
        return ts->i < ts->r->ngiven ? &ts->r->given[ts->i++] : NULL;
    return ctfl_scan_next(&ts->sc, ts->r->elem, ts->r->len, &ts->off);
}

/* ---- small helpers -------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* Bytes that end an attribute name: whitespace, '/', '>' and '='. */
static const unsigned char ends_attr_name[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\f'] = 1, ['\r'] = 1, ['/'] = 1, ['>'] = 1, ['='] = 1
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* A Contentful sys.id: 1-64 of [A-Za-z0-9._-]. */
static int valid_id(const char *s)
{
    apr_size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-') || n >= MAX_ID_LEN)
            return 0;
    }
    return n > 0;
}

/* The id a marked node stands for: data-ctfl-baseline-id, or data-ctfl-entry-id
 * when there is no (or an empty) baseline id. NULL when not a valid id. */
static const char *node_id(const rnode *n)
{
    if (n->baseline_id && *n->baseline_id)
        return valid_id(n->baseline_id) ? n->baseline_id : NULL;
    return valid_id(n->entry_id) ? n->entry_id : NULL;
}

/* needle: lowercase ASCII. Candidates are found with memchr on its first
 * byte that has no other case ('<', '-'), when it has one. */
static int contains_ci(const char *s, apr_size_t n, const char *needle)
{
    apr_size_t m = strlen(needle), a = 0, i = 0;
    while (a < m && needle[a] >= 'a' && needle[a] <= 'z')
        a++;
    if (a == m)
        a = 0;
    while (i + m <= n) {
        apr_size_t k = 0;
        if (needle[a] < 'a' || needle[a] > 'z') {
            const char *hit = memchr(s + i + a, needle[a], n - i - a);
            if (!hit || (apr_size_t)(hit - s) - a + m > n)
                return 0;
            i = (apr_size_t)(hit - s) - a;
        }
        while (k < m && lower(s[i + k]) == needle[k])
            k++;
        if (k == m)
            return 1;
        i++;
    }
    return 0;
}

/* Strict UTF-8 sequence at s: its length and code point, or 0 when invalid. */
static apr_size_t utf8_seq(const unsigned char *s, apr_size_t n, unsigned *cp)
{
    apr_size_t len, i;
    unsigned c;
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if (s[0] >= 0xC2 && s[0] <= 0xDF)      { len = 2; c = s[0] & 0x1Fu; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { len = 3; c = s[0] & 0x0Fu; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { len = 4; c = s[0] & 0x07u; }
    else return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF))
        || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static int utf8_valid(const char *s, apr_size_t n)
{
    apr_size_t i = 0, k;
    unsigned cp;
    while (i < n) {
        uint64_t w;
        if (i + 8 <= n && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080u))) {
            i += 8;                                   /* eight ASCII bytes */
            continue;
        }
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        if (!(k = utf8_seq((const unsigned char *)s + i, n - i, &cp)))
            return 0;
        i += k;
    }
    return 1;
}

/* Nodes are sorted by lt: the first with lt >= pos. */
static int node_from(const ctfl_region *r, apr_size_t pos)
{
    int lo = 0, hi = r->nnodes;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (r->nodes[mid].lt < pos) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* libxml2's subtree of node j covers exactly the start tags before `end`. */
static int subtree_is(const ctfl_region *r, int j, apr_size_t end)
{
    return node_from(r, end) - 1 == r->nodes[j].last;
}

/* ---- charsets ------------------------------------------------------------- */

/* How the element is parsed and inserted text written, for a canonical
 * (WHATWG) charset name. windows-1252 is the canonical name of iso-8859-1 and
 * us-ascii pages too: it is parsed as ISO-8859-1 (every byte is valid, unlike
 * iconv's windows-1252) and written as ISO-8859-1, so that what is inserted
 * means the same under all three labels (U+20AC is written "&#8364;"). */
static apr_status_t close_enc(void *data)
{
    ctfl_region *r = data;
    if (r->enc)
        xmlCharEncCloseFunc(r->enc);
    r->enc = NULL;
    return APR_SUCCESS;
}

static const char *setup_charset(ctfl_region *r, const char *cs)
{
    if (!cs) {                                   /* unknown: ASCII output is valid anywhere */
        r->parse_enc = "ISO-8859-1";
        r->c1_check = 1;
        return NULL;
    }
    if (!strcasecmp(cs, "utf-8")) {
        r->parse_enc = "UTF-8";
        r->utf8_page = 1;
        return NULL;
    }
    if (!strcasecmp(cs, "windows-1252")) {
        r->parse_enc = r->out_enc = "ISO-8859-1";
        r->c1_check = 1;
        return NULL;
    }
    if (!strncasecmp(cs, "utf-16", 6) || !strcasecmp(cs, "replacement"))
        return "charset not ASCII-compatible";
    if (!(r->enc = xmlFindCharEncodingHandler(cs)))
        return "charset unknown to libxml2";
    apr_pool_cleanup_register(r->p, r, close_enc, apr_pool_cleanup_null);
    r->parse_enc = r->out_enc = cs;
    return NULL;
}

/* ---- the tokenizer pass --------------------------------------------------- */

static const char *scan_tokens(ctfl_region *r)
{
    apr_array_header_t *toks = apr_array_make(r->p, r->given ? r->ngiven + 1 : 32, sizeof(rtok));
    tag_src ts;
    const ctfl_tag *t;
    int nodes = 0;

    src_init(&ts, r);
    while ((t = src_next(&ts)) != NULL) {
        rtok *k = apr_array_push(toks);
        k->lt = (apr_size_t)t->lt;
        k->end = (apr_size_t)t->end;
        k->hash = t->name_hash;
        k->kind = (unsigned char)t->kind;
        k->foreign = (unsigned char)(t->foreign != 0);
        k->self_closing = (unsigned char)(t->self_closing != 0);
        k->attrs = t->attrs;
        k->node = t->kind == CTFL_TAG_START ? nodes++ : -1;
    }
    r->toks = (rtok *)toks->elts;
    r->ntoks = toks->nelts;
    if (!r->ntoks || r->toks[0].kind != CTFL_TAG_START || r->toks[0].lt != 0)
        return "element does not start with a start tag";
    r->nnodes = nodes;
    r->nodes = apr_pcalloc(r->p, (apr_size_t)nodes * sizeof(rnode));
    for (int i = 0; i < r->ntoks; i++) {
        int j = r->toks[i].node;
        if (j < 0)
            continue;
        r->nodes[j].lt = r->toks[i].lt;
        r->nodes[j].end = r->toks[i].end;
        r->nodes[j].tok = i;
        r->nodes[j].region = -1;
        r->nodes[j].last = j;
        r->nodes[j].parent = -1;
    }
    return NULL;
}

/* ---- libxml2 -------------------------------------------------------------- */

static void silent(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static int has_c1(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)s[0] == 0xC2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9F)
            return 1;
    return 0;
}

/* libxml2 SAX events, checked against the tokenizer's start tags as they come.
 * No tree is built: a stack of open elements gives parents and subtrees. */
typedef struct {
    ctfl_region *r;
    int expect, next;         /* start tags expected / seen */
    int *stack, sp;           /* open elements (node indexes) */
    int roots;
    const char *err;
} sax_state;

/* The data-ctfl-* attributes the rewrite reads, recognised by the tokenizer
 * (ctfl_scan_data_ctfl_attr); each is indexed by the position of its CTFL_ATTR_*
 * bit. In what libxml2 parses each is renamed to one letter, ATTR_ALIAS + its
 * index: libxml2 2.9 reads a name a character at a time through xmlNextChar,
 * and the long names were a fifth of its time. Which attribute is which is
 * decided by our tokenizer's reading of the tag, as a browser's would. */
enum { A_BASELINE_ID = 0, A_ENTRY_ID = 1, A_FLAG = 3, A_FLAG_IF = 4, A_FIELD = 5,
       A_FIELD_ATTR = 6, A_VARIANT_ID = 7, A_COUNT = 8 };
_Static_assert((1u << A_BASELINE_ID) == CTFL_ATTR_BASELINE_ID && (1u << A_ENTRY_ID) == CTFL_ATTR_ENTRY_ID
               && (1u << A_FLAG) == CTFL_ATTR_FLAG && (1u << A_FLAG_IF) == CTFL_ATTR_FLAG_IF
               && (1u << A_FIELD) == CTFL_ATTR_FIELD && (1u << A_FIELD_ATTR) == CTFL_ATTR_FIELD_ATTR
               && (1u << A_VARIANT_ID) == CTFL_ATTR_VARIANT_ID && (CTFL_ATTRS_DATA_CTFL >> A_COUNT) == 0,
               "A_* are the positions of the CTFL_ATTR_* bits");
#define ATTR_ALIAS 'a'

/* The index of the data-ctfl-* attribute named s[0, n), or -1. */
static int attr_index(const char *s, apr_size_t n)
{
    unsigned bit = ctfl_scan_data_ctfl_attr(s, n);
    int k = 0;
    if (!bit)
        return -1;
    while (!(bit & 1u)) {
        bit >>= 1;
        k++;
    }
    return k;
}

/* Copy the values libxml2 decoded (first occurrence of each name); *seen: the
 * tokenizer's bits of the attributes it reported. */
static const char *read_attrs(ctfl_region *r, rnode *nd, const xmlChar **atts, unsigned *seen)
{
    const char **slots[A_COUNT] = {
        [A_BASELINE_ID] = &nd->baseline_id, [A_ENTRY_ID] = &nd->entry_id,
        [A_VARIANT_ID] = &nd->variant_id, [A_FIELD] = &nd->field,
        [A_FIELD_ATTR] = &nd->field_attr, [A_FLAG] = &nd->flag, [A_FLAG_IF] = &nd->flag_if
    };
    for (; atts && atts[0]; atts += 2) {
        unsigned k = (unsigned)atts[0][0] - ATTR_ALIAS;
        if (k >= A_COUNT || !slots[k] || atts[0][1] || *slots[k])
            continue;
        *seen |= 1u << k;
        if (nd->plain && nd->plain[k])
            *slots[k] = nd->plain[k];
        else
            *slots[k] = apr_pstrdup(r->p, atts[1] ? (const char *)atts[1] : "");
        if (r->c1_check && has_c1(*slots[k]))
            return "C1 control in a data-ctfl value (windows-1252 page)";
    }
    return NULL;
}

static sax_state *sax_of(void *ctx)
{
    return ((htmlParserCtxtPtr)ctx)->_private;
}

static void sax_start(void *ctx, const xmlChar *xname, const xmlChar **atts)
{
    sax_state *s = sax_of(ctx);
    ctfl_region *r = s->r;
    const char *name = (const char *)xname;   /* lowercase in libxml2's HTML parser */
    uint32_t h = CTFL_NAME_HASH_INIT;
    unsigned seen = 0;
    rnode *nd;
    const rtok *tk;

    if (s->err)
        return;
    if (s->sp >= s->expect + 1) {
        s->err = "libxml2: too deep";
        return;
    }
    if (!s->sp && s->roots++) {
        s->err = "libxml2: content outside the element";
        return;
    }
    if (s->next >= s->expect) {
        s->err = "libxml2: more elements than start tags";
        return;
    }
    nd = &r->nodes[s->next];
    tk = &r->toks[nd->tok];
    for (const xmlChar *c = xname; *c; c++)
        h = ctfl_scan_hash_step(h, (unsigned char)lower((char)*c));
    if (h != tk->hash) {
        s->err = "libxml2: element name differs from the tokenizer's";
        return;
    }
    nd->parent = s->sp ? s->stack[s->sp - 1] : -1;
    if ((s->err = read_attrs(r, nd, atts, &seen)) != NULL)
        return;
    if (seen != (tk->attrs & CTFL_ATTRS_DATA_CTFL)) {
        s->err = "libxml2: marker attributes differ from the tokenizer's";
        return;
    }
    if (nd->baseline_id || nd->entry_id)
        nd->flags |= NF_MARKED;
    if (!tk->foreign && !strcmp(name, "template"))
        nd->flags |= NF_TEMPLATE;
    s->stack[s->sp++] = s->next++;
}

static void sax_close(sax_state *s)
{
    int child = s->stack[--s->sp], parent = s->sp ? s->stack[s->sp - 1] : -1;
    rnode *nodes = s->r->nodes;
    if (parent >= 0 && nodes[child].last > nodes[parent].last)
        nodes[parent].last = nodes[child].last;
}

static void sax_end(void *ctx, const xmlChar *name)
{
    sax_state *s = sax_of(ctx);
    (void)name;
    if (!s->err && s->sp)
        sax_close(s);
}

/* Text or a comment where libxml2 has no open element: it closed the element
 * early (or read a tag as text). */
static void sax_text(void *ctx, const xmlChar *ch, int len)
{
    sax_state *s = sax_of(ctx);
    (void)ch;
    (void)len;
    if (!s->sp && !s->err)
        s->err = "libxml2: content outside the element";
}

static void sax_comment(void *ctx, const xmlChar *value)
{
    sax_text(ctx, value, 0);
}

/* A kept context is reset and given the next element; after REUSE_MAX elements
 * (or a dictionary of DICT_MAX names) it is replaced, so that what one hostile
 * page can make it hold stays bounded. */
#define REUSE_MAX 4096
#define DICT_MAX 8192

struct ctfl_region_parser {
    htmlParserCtxtPtr ctxt;
    unsigned uses;
};

static apr_status_t parser_cleanup(void *data)
{
    ctfl_region_parser *ps = data;
    if (ps->ctxt)
        htmlFreeParserCtxt(ps->ctxt);
    ps->ctxt = NULL;
    return APR_SUCCESS;
}

ctfl_region_parser *ctfl_region_parser_make(apr_pool_t *p)
{
    ctfl_region_parser *ps = apr_pcalloc(p, sizeof(*ps));
    apr_pool_cleanup_register(p, ps, parser_cleanup, apr_pool_cleanup_null);
    return ps;
}

/* A push-parser context with an empty input: the kept one reset, else a new
 * one (kept in ps when there is a ps). NULL when libxml2 is out of memory.
 * The element then goes in as one chunk with terminate set, so none of the
 * push parser's chunk-boundary code runs (see libxml2-streaming.md); it also
 * parses a small input faster than htmlParseDocument, which keeps asking a
 * memory input to grow. */
static htmlParserCtxtPtr context_for(ctfl_region_parser *ps)
{
    htmlParserCtxtPtr ctxt;
    if (ps && ps->ctxt && ps->uses < REUSE_MAX && xmlDictSize(ps->ctxt->dict) < DICT_MAX) {
        xmlParserInputBufferPtr buf;
        xmlParserInputPtr in = NULL;
        ctxt = ps->ctxt;
        htmlCtxtReset(ctxt);                 /* frees the previous element's input */
        buf = xmlAllocParserInputBuffer(XML_CHAR_ENCODING_NONE);
        if (buf && !(in = xmlNewIOInputStream(ctxt, buf, XML_CHAR_ENCODING_NONE)))
            xmlFreeParserInputBuffer(buf);
        if (in && inputPush(ctxt, in) >= 0) {   /* inputPush frees what it refuses */
            ps->uses++;
            return ctxt;
        }
        parser_cleanup(ps);                       /* out of memory: start afresh next time */
        return NULL;
    }
    if (ps)
        parser_cleanup(ps);
    ctxt = htmlCreatePushParserCtxt(NULL, NULL, NULL, 0, NULL, XML_CHAR_ENCODING_NONE);
    if (ctxt && ps) {
        ps->ctxt = ctxt;
        ps->uses = 1;
    }
    return ctxt;
}

static const char *parse_xml(ctfl_region *r, apr_size_t n, int expect, ctfl_region_parser *ps)
{
    xmlGenericErrorFunc old_err = xmlGenericError;
    void *old_ctx = xmlGenericErrorContext;
    xmlStructuredErrorFunc old_serr = xmlStructuredError;
    void *old_sctx = xmlStructuredErrorContext;
    xmlCharEncodingHandlerPtr enc;
    htmlParserCtxtPtr ctxt;
    sax_state s;

    memset(&s, 0, sizeof(s));
    s.r = r;
    s.expect = expect;
    s.stack = apr_palloc(r->p, (apr_size_t)(expect + 1) * sizeof(*s.stack));
    /* thread-local in libxml2: silence "encoding error" lines on stderr */
    xmlSetGenericErrorFunc(NULL, silent);
    xmlSetStructuredErrorFunc(NULL, NULL);
    ctxt = context_for(ps);
    /* UTF-8 (validated) is what the parser reads natively: no converter */
    enc = r->utf8_page ? NULL : r->enc ? r->enc : xmlFindCharEncodingHandler(r->parse_enc);
    r->enc = NULL;                                  /* the parse owns it now */
    if (!ctxt || (!enc && !r->utf8_page)) {
        s.err = "libxml2: no parser context";
    } else {
        htmlCtxtUseOptions(ctxt, HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR
                                 | HTML_PARSE_NOWARNING | HTML_PARSE_NOIMPLIED
                                 | HTML_PARSE_IGNORE_ENC);
        if (enc)                                    /* explicit: no sniffing, no <meta> */
            xmlSwitchToEncoding(ctxt, enc);
        else
            ctxt->charset = XML_CHAR_ENCODING_UTF8;
        enc = NULL;                                 /* owned by the context now */
        memset(ctxt->sax, 0, sizeof(*ctxt->sax));   /* events only, no tree */
        ctxt->sax->startElement = sax_start;
        ctxt->sax->endElement = sax_end;
        ctxt->sax->characters = sax_text;
        ctxt->sax->cdataBlock = sax_text;
        ctxt->sax->comment = sax_comment;
        ctxt->_private = &s;
        htmlParseChunk(ctxt, r->xml, (int)n, 1);
        ctxt->_private = NULL;
        while (!s.err && s.sp)
            sax_close(&s);
        if (!s.err && s.next != expect)
            s.err = "libxml2: fewer elements than start tags";
    }
    if (enc)
        xmlCharEncCloseFunc(enc);
    if (ctxt && !ps)
        htmlFreeParserCtxt(ctxt);
    xmlSetGenericErrorFunc(old_ctx, old_err);
    xmlSetStructuredErrorFunc(old_sctx, old_serr);
    return s.err;
}

/* ---- start tag attributes ------------------------------------------------- */

/* The attributes of a complete start tag s[0, n) as the HTML tokenizer reads
 * them, one at a time (offsets relative to s). */
typedef struct {
    const char *s;
    apr_size_t n, i;
    apr_size_t close;         /* at the end: the final '>' or the '/' of "/>" */
} attr_iter;

static void attrs_begin(attr_iter *it, const char *s, apr_size_t n)
{
    it->s = s;
    it->n = n;
    it->i = 1;
    while (it->i < n && !is_ws(s[it->i]) && s[it->i] != '/' && s[it->i] != '>')
        it->i++;
}

/* 1: *at is the next attribute; 0: no more (it->close set); -1: malformed. */
static int attrs_next(attr_iter *it, lexattr *at)
{
    const char *s = it->s;
    apr_size_t n = it->n, i = it->i, ws = i, j;

    while (i < n && (is_ws(s[i]) || s[i] == '/')) {
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '>')
            break;
        i++;
    }
    if (i >= n)
        return -1;
    if (s[i] == '>' || s[i] == '/') {
        it->close = i;
        return 0;
    }
    at->ws = ws;
    at->name = i++;                                  /* a leading '=' belongs to the name */
    while (i < n && !ends_attr_name[(unsigned char)s[i]])
        i++;
    at->name_end = at->val = at->val_end = i;
    at->quoted = 0;
    for (j = i; j < n && is_ws(s[j]); j++)
        ;
    if (j < n && s[j] == '=') {
        for (j++; j < n && is_ws(s[j]); j++)
            ;
        if (j >= n)
            return -1;
        at->val = j;
        if (s[j] == '"' || s[j] == '\'') {
            const char *q = memchr(s + j + 1, s[j], n - j - 1);
            if (!q)
                return -1;
            i = (apr_size_t)(q - s) + 1;
            at->quoted = 1;
        } else {
            for (i = j; i < n && !is_ws(s[i]) && s[i] != '>'; i++)
                ;
        }
        at->val_end = i;
    }
    it->i = i;
    return 1;
}

/* A node's start tag attributes, kept for splicing (element offsets). */
static const char *lex_tag(ctfl_region *r, rnode *nd)
{
    apr_array_header_t *a = apr_array_make(r->p, 8, sizeof(lexattr));
    attr_iter it;
    lexattr at;
    int rc;

    attrs_begin(&it, r->elem + nd->lt, nd->end - nd->lt);
    while ((rc = attrs_next(&it, &at)) == 1) {
        lexattr *o = apr_array_push(a);
        o->ws = nd->lt + at.ws;
        o->name = nd->lt + at.name;
        o->name_end = nd->lt + at.name_end;
        o->val = nd->lt + at.val;
        o->val_end = nd->lt + at.val_end;
        o->quoted = at.quoted;
    }
    if (rc < 0)
        return "start tag: malformed";
    nd->insert_at = nd->lt + it.close;
    nd->lex = (lexattr *)a->elts;
    nd->nlex = a->nelts;
    return NULL;
}

/* Bytes libxml2 reads as they are in an attribute value (nothing decoded,
 * nothing normalised, nothing converted). */
static int plain_value(const char *s, apr_size_t n)
{
    for (apr_size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F || c == '&' || c == '"' || c == '\'' || c == '<' || c == '>'
            || c == '=' || c == '`')
            return 0;
    }
    return 1;
}

/* What libxml2 is given: the element's tags in order, no text or comments;
 * start tags with only the first of each data-ctfl-* attribute, aliased,
 * and its value as written unless it is plain (then taken from the bytes:
 * libxml2 would read it as it is, a character at a time). Its tree depends
 * on the tags alone inside the element (text only matters at the top level),
 * and it parses markup at about 15 ns a byte: this keeps the cross-check and
 * the decoded values at a fraction of the cost. */
static const char *tags_only(ctfl_region *r, int ntoks, apr_size_t *out_len)
{
    /* a kept attribute gains a space where it followed a quote directly, and a
     * tag one before its end: well within twice the input */
    char *buf = apr_palloc(r->p, 2 * r->len + 2), *o = buf;
    for (int t = 0; t < ntoks; t++) {
        const rtok *k = &r->toks[t];
        const char *s = r->elem + k->lt;
        attr_iter it;
        lexattr at;
        int rc, unquoted_last = 0;
        unsigned seen = 0;
        if (k->kind == CTFL_TAG_END) {
            memcpy(o, s, k->end - k->lt);
            o += k->end - k->lt;
            continue;
        }
        attrs_begin(&it, s, k->end - k->lt);
        memcpy(o, s, it.i);
        o += it.i;
        if (!(k->attrs & CTFL_ATTRS_DATA_CTFL)) {   /* the tokenizer saw none of them */
            if (k->self_closing)
                *o++ = '/';
            *o++ = '>';
            continue;
        }
        while ((rc = attrs_next(&it, &at)) == 1) {
            int ai = attr_index(s + at.name, at.name_end - at.name);
            apr_size_t vs = at.val + (apr_size_t)at.quoted, ve = at.val_end - (apr_size_t)at.quoted;
            if (ai < 0 || (seen & (1u << ai)))
                continue;                     /* libxml2 too keeps only the first */
            seen |= 1u << ai;
            *o++ = ' ';
            *o++ = (char)(ATTR_ALIAS + ai);
            if (at.val < at.val_end && k->node >= 0 && plain_value(s + vs, ve - vs)) {
                rnode *nd = &r->nodes[k->node];
                if (!nd->plain)
                    nd->plain = apr_pcalloc(r->p, A_COUNT * sizeof(*nd->plain));
                nd->plain[ai] = apr_pstrmemdup(r->p, s + vs, ve - vs);
                unquoted_last = 0;
                continue;
            }
            memcpy(o, s + at.name_end, at.val_end - at.name_end);
            o += at.val_end - at.name_end;
            unquoted_last = !at.quoted && at.val < at.val_end;
        }
        if (rc < 0)
            return "start tag: malformed";
        if (unquoted_last)
            *o++ = ' ';       /* "a=b" + "/>" would read as the value "b/" */
        memcpy(o, s + it.close, k->end - k->lt - it.close);
        o += k->end - k->lt - it.close;
    }
    *out_len = (apr_size_t)(o - buf);
    r->xml = buf;
    return NULL;
}

/* The attribute's name is the lowercase name[0, n). */
static int lex_name_is(const ctfl_region *r, const lexattr *a, const char *name, apr_size_t n)
{
    if (a->name_end - a->name != n)
        return 0;
    for (apr_size_t i = 0; i < n; i++)
        if (lower(r->elem[a->name + i]) != name[i])
            return 0;
    return 1;
}

/* ---- structure: ctfl_rewrite as the judge of where elements end ----------- */

typedef struct {
    apr_size_t off, len;
} span;

typedef struct {
    const char *base;             /* the bytes fed, or NULL when tags are replayed */
    apr_size_t n;
    ctfl_rewriter *rw;
    apr_array_header_t *found;    /* of span */
    int bad;
} subrun;

static apr_status_t sub_emit(void *ctx, const char *data, apr_size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return APR_SUCCESS;
}

static apr_status_t sub_element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                                const char **replacement, apr_size_t *replacement_len)
{
    subrun *s = ctx;
    uint64_t at = ctfl_rewriter_element_offset(s->rw);
    (void)tag_len;
    (void)replacement_len;
    *replacement = NULL;
    if (at != ctfl_rewriter_get_stats(s->rw)->bytes_out || at > s->n || len > s->n - at
        || (s->base && (uintptr_t)elem - (uintptr_t)s->base != at)) {
        s->bad = 1;                               /* not where the stream says: doubt */
    } else {
        span *sp = apr_array_push(s->found);
        sp->off = (apr_size_t)at;
        sp->len = len;
    }
    return APR_SUCCESS;
}

/* Run the rewriter over buf[0, n) in one chunk, or replay the tags a scan of
 * it finds (tags not NULL: buf unused): the marked elements it hands over
 * (stream spans) and its stats. work: the bytes counted against the cap.
 * -1 on an internal doubt, -2 over the cap. */
static int run_rewriter(ctfl_region *r, const char *buf, const ctfl_tag *tags, int ntags,
                        apr_size_t n, apr_size_t work, apr_array_header_t **found,
                        ctfl_rewriter_stats *st)
{
    subrun s;
    ctfl_rewriter_opts o;
    apr_status_t rv;
    int rc = 0;

    r->work += work;               /* nested elements are re-read: keep it linear */
    if (r->work > r->max_work)
        return -2;
    memset(&s, 0, sizeof(s));
    memset(&o, 0, sizeof(o));
    s.base = tags ? NULL : buf;
    s.n = n;
    s.found = apr_array_make(r->p, 4, sizeof(span));
    o.emit = sub_emit;
    o.on_element = sub_element;
    o.element_ctx = &s;
    o.max_tag_bytes = n + 1;
    o.max_element_bytes = n + 1;
    o.max_elements = n < UINT_MAX - 1 ? (unsigned)n + 1 : UINT_MAX;
    s.rw = ctfl_rewriter_create(r->p, &o);  /* the element's pool: it is short-lived */
    rv = tags ? ctfl_rewriter_replay(s.rw, tags, ntags, n) : ctfl_rewriter_feed(s.rw, buf, n);
    if (rv != APR_SUCCESS || ctfl_rewriter_finish(s.rw) != APR_SUCCESS || s.bad
        || ctfl_rewriter_get_stats(s.rw)->bytes_out != n)
        rc = -1;
    *st = *ctfl_rewriter_get_stats(s.rw);
    *found = s.found;
    return rc;
}

/* What the rewrite acts on, and so needs an exact extent: marked elements,
 * field/flag elements (a field-attr binding alone only needs the start tag)
 * and templates with data-ctfl-variant-id. */
static int interesting(const rnode *nd)
{
    return (nd->flags & NF_MARKED) || nd->flag || nd->flag_if || (nd->field && !nd->field_attr)
        || ((nd->flags & NF_TEMPLATE) && nd->variant_id);
}

/* Inserted right after a tag name. With a quoted value, what follows the name
 * (whitespace, '/' or '>') reads as it did after the name: a bare attribute
 * would swallow a following "=..." as its value. */
#define MARK " data-ctfl-entry-id=\"\""
#define MARK_LEN (sizeof(MARK) - 1)

/* Length of the tag name after the '<' of a start tag. */
static apr_size_t name_len(const ctfl_region *r, const rnode *nd)
{
    const char *s = r->elem + nd->lt + 1;
    apr_size_t n = 0, max = nd->end - nd->lt - 1;
    while (n < max && !is_ws(s[n]) && s[n] != '/' && s[n] != '>')
        n++;
    return n;
}

/* Where the element [nd->lt, eend) ends its content: ctfl_rewrite, run on the
 * element alone with a marker added to its start tag, hands over all of it
 * when it ends with its own end tag, and nothing (still open) when it ended
 * implicitly (content structure does not depend on the context). */
static const char *element_end(ctfl_region *r, rnode *nd, apr_size_t eend)
{
    apr_size_t nl = name_len(r, nd), head = 1 + nl, total = eend - nd->lt + MARK_LEN;
    apr_array_header_t *found;
    ctfl_rewriter_stats st;
    const span *sp;
    char *buf;
    int t, rc;

    nd->eend = eend;
    nd->flags |= NF_EXTENT;
    if (eend == nd->end) {                           /* handed over as its start tag alone */
        nd->cend = eend;
        nd->flags |= NF_VOID;
        return NULL;
    }
    /* The common case without a run: the last tag is an end tag of the same
     * name, and counting the same-named tags from the start tag first comes
     * back to zero there. (Should that end tag close an inner element left
     * open across a scope boundary instead, the splice stays sound: it
     * becomes this element's end tag.) */
    t = nd->tok;
    {
        uint32_t h = r->toks[t].hash;
        int depth = 0;
        for (; t < r->ntoks && r->toks[t].end <= eend; t++) {
            const rtok *k = &r->toks[t];
            if (k->hash != h || (k->kind == CTFL_TAG_START && k->foreign && k->self_closing))
                continue;
            depth += k->kind == CTFL_TAG_START ? 1 : -1;
            if (!depth)
                break;
        }
        if (t < r->ntoks && !depth && r->toks[t].end == eend && r->toks[t].kind == CTFL_TAG_END) {
            nd->cend = r->toks[t].lt;
            return NULL;
        }
    }
    buf = apr_palloc(r->p, total);
    memcpy(buf, r->elem + nd->lt, head);
    memcpy(buf + head, MARK, MARK_LEN);
    memcpy(buf + head + MARK_LEN, r->elem + nd->lt + head, eend - nd->lt - head);
    if ((rc = run_rewriter(r, buf, NULL, 0, total, total, &found, &st)) != 0)
        return rc == -2 ? "structure: nesting too costly to follow" : "structure: rewriter doubt";
    sp = found->nelts == 1 ? &APR_ARRAY_IDX(found, 0, span) : NULL;
    if (sp && sp->off == 0 && sp->len == total && !st.elements_unclosed) {
        t = nd->tok + 1;
        while (t < r->ntoks && r->toks[t].end < eend)
            t++;
        if (t >= r->ntoks || r->toks[t].kind != CTFL_TAG_END || r->toks[t].end != eend)
            return "structure: end tag not found";
        nd->cend = r->toks[t].lt;
    } else if (found->nelts == 0 && st.elements_unclosed == 1 && !st.elements_malformed) {
        nd->cend = eend;                             /* ended implicitly */
    } else {
        return "structure: element end differs from the rewriter's";
    }
    return NULL;
}

static const char *children(ctfl_region *r, int j, int region);

/* A marked element inside `parent`: a new region, analysed unless too deep. */
static const char *add_region(ctfl_region *r, int c, int parent, int *region)
{
    rregion *rg = apr_array_push(r->regions);
    rg->node = c;
    rg->parent = parent;
    rg->depth = parent < 0 ? 0 : REGION(r, parent)->depth + 1;
    rg->analysed = rg->depth < CTFL_REGION_MAX_DEPTH;
    rg->id = node_id(&r->nodes[c]);
    *region = r->regions->nelts - 1;
    r->nodes[c].region = *region;
    return rg->analysed ? lex_tag(r, &r->nodes[c]) : NULL;
}

/* The probe of children() as tags, to replay instead of scanning it: the
 * page's scan of j's content is what a scan of "<name>" + content finds when
 * j and all it holds are HTML content (no SVG/MathML) and the content does not
 * end in raw text or RCDATA; a marker only adds CTFL_ATTR_ENTRY_ID to a tag.
 * Offsets stay element offsets, with "</name>" at `to`. NULL: the tags cannot
 * stand for the bytes (not handed over by the page, or one of those cases). */
static ctfl_tag *probe_tags(const ctfl_region *r, int j, apr_size_t to, int *n)
{
    const rnode *nd = &r->nodes[j];
    int t0 = nd->tok, t1 = t0 + 1;
    ctfl_tag *tags;

    if (!r->given)
        return NULL;
    while (t1 < r->ntoks && r->toks[t1].lt < to)
        t1++;
    for (int t = t0; t < t1; t++)
        if (r->given[t].foreign)
            return NULL;
    if (ctfl_scan_enters_text(&r->given[t1 - 1]))
        return NULL;
    *n = t1 - t0 + 1;
    tags = apr_palloc(r->p, (apr_size_t)*n * sizeof(*tags));
    tags[0] = r->given[t0];                       /* "<name>" */
    tags[0].attrs = 0;
    tags[0].self_closing = 0;
    for (int t = t0 + 1; t < t1; t++) {
        ctfl_tag *c = &tags[t - t0];
        *c = r->given[t];
        if (r->toks[t].node >= 0 && interesting(&r->nodes[r->toks[t].node]))
            c->attrs |= CTFL_ATTR_ENTRY_ID;
    }
    tags[*n - 1] = tags[0];                       /* "</name>" */
    tags[*n - 1].kind = CTFL_TAG_END;
    tags[*n - 1].lt = to;
    tags[*n - 1].end = to + name_len(r, nd) + 3;
    return tags;
}

/* The probe of children() as bytes: "<name>" + content + "</name>", a marker
 * after the name of each of the `marks` interesting start tags in it. Spans
 * found in it are mapped back to element offsets by unprobe(). */
static char *probe_bytes(ctfl_region *r, int j, int marks, apr_size_t total, apr_size_t **pins)
{
    const rnode *nd = &r->nodes[j];
    apr_size_t nl = name_len(r, nd), from = nd->end, to = nd->cend, at = nl + 2, src = from;
    int stop = node_from(r, to), m = 0;
    char *buf = apr_palloc(r->p, total);

    *pins = apr_palloc(r->p, (apr_size_t)marks * sizeof(**pins));
    buf[0] = '<';
    memcpy(buf + 1, r->elem + nd->lt + 1, nl);
    buf[nl + 1] = '>';
    for (int k = node_from(r, from); k < stop; k++) {
        const rnode *c = &r->nodes[k];
        apr_size_t cut;
        if (!interesting(c))
            continue;
        cut = c->lt + 1 + name_len(r, c);
        memcpy(buf + at, r->elem + src, cut - src);
        at += cut - src;
        (*pins)[m++] = at;
        memcpy(buf + at, MARK, MARK_LEN);
        at += MARK_LEN;
        src = cut;
    }
    memcpy(buf + at, r->elem + src, to - src);
    at += to - src;
    memcpy(buf + at, "</", 2);
    memcpy(buf + at + 2, r->elem + nd->lt + 1, nl);
    buf[at + 2 + nl] = '>';
    return buf;
}

/* A span of the byte probe in element offsets; 0 when outside the content. */
static int unprobe(const ctfl_region *r, int j, const apr_size_t *pins, int marks,
                   apr_size_t total, span *sp)
{
    const rnode *nd = &r->nodes[j];
    apr_size_t nl = name_len(r, nd), open = nl + 2, q = sp->off, qe = sp->off + sp->len;
    apr_size_t before = 0, upto = 0;
    for (int m = 0; m < marks; m++) {
        before += pins[m] < q;
        upto += pins[m] < qe;
    }
    if (q < open || qe > total - nl - 3)
        return 0;
    sp->off = nd->end + (q - open) - before * MARK_LEN;
    sp->len = (qe - q) - (upto - before) * MARK_LEN;
    return 1;
}

/* The interesting elements directly inside interesting element j (extent
 * known), found by ctfl_rewrite in "<name>" + content + "</name>" with a
 * marker added to each interesting start tag (the probe; replayed as tags
 * where they stand for it): it hands over the outermost ones, ending where the
 * HTML rules end them. Each is checked against libxml2's subtree, gets its
 * extent, and is searched in turn. `region` is the marked element that j is
 * (or is inside of). */
static const char *children(ctfl_region *r, int j, int region)
{
    rnode *nd = &r->nodes[j];
    apr_size_t nl = name_len(r, nd), from = nd->end, to = nd->cend, total;
    int first = node_from(r, from), stop = node_from(r, to), marks = 0, k, rc, ntags = 0;
    apr_array_header_t *found;
    ctfl_rewriter_stats st;
    const ctfl_tag *tags;
    apr_size_t *pins = NULL;
    const char *err;

    if (from == to)
        return NULL;
    for (k = first; k < stop; k++)
        marks += interesting(&r->nodes[k]);
    if (!marks)
        return NULL;
    total = nl + 2 + (to - from) + (apr_size_t)marks * MARK_LEN + nl + 3;
    if ((tags = probe_tags(r, j, to, &ntags)) != NULL)
        rc = run_rewriter(r, NULL, tags, ntags, tags[ntags - 1].end, total, &found, &st);
    else
        rc = run_rewriter(r, probe_bytes(r, j, marks, total, &pins), NULL, 0, total, total,
                          &found, &st);
    if (rc != 0)
        return rc == -2 ? "structure: nesting too costly to follow" : "structure: rewriter doubt";
    if (st.elements_unclosed || st.elements_malformed || st.elements_over_bytes
        || st.elements_over_count)
        return "structure: nested element not followed";

    k = first;                              /* next interesting node not yet covered */
    for (int i = 0; i < found->nelts; i++) {
        span *sp = &APR_ARRAY_IDX(found, i, span);
        apr_size_t a, b;
        int c, creg = region;
        rnode *cn;
        if (!tags && !unprobe(r, j, pins, marks, total, sp))
            return "structure: nested element outside the content";
        a = sp->off;
        b = sp->off + sp->len;
        if (a < from || b > to)
            return "structure: nested element outside the content";
        c = node_from(r, a);
        if (c >= stop || r->nodes[c].lt != a || !interesting(&r->nodes[c]))
            return "structure: nested element not at a marked start tag";
        for (; k < c; k++)                  /* interesting ones before it were not found */
            if (interesting(&r->nodes[k]))
                return "structure: an element the rewriter did not see";
        if (!subtree_is(r, c, b))
            return "structure: element differs from libxml2's";
        cn = &r->nodes[c];
        if ((cn->flags & NF_TEMPLATE) && cn->variant_id && cn->parent == REGION(r, region)->node
            && (r->nodes[cn->parent].flags & NF_MARKED))
            cn->flags |= NF_VARIANT;               /* not of an outer flag-only element */
        if ((cn->flags & NF_MARKED) && (err = add_region(r, c, region, &creg)) != NULL)
            return err;
        if (creg != region && !REGION(r, creg)->analysed) {
            cn->cend = cn->eend = b;        /* too deep: kept as it is */
        } else if ((err = element_end(r, cn, b)) != NULL || (err = children(r, c, creg)) != NULL) {
            return err;
        }
        k = node_from(r, b);
    }
    for (; k < stop; k++)
        if (interesting(&r->nodes[k]))
            return "structure: an element the rewriter did not see";
    return NULL;
}

/* ---- parse ---------------------------------------------------------------- */

void ctfl_region_global_init(void)
{
    xmlInitParser();
}

ctfl_region *ctfl_region_parse(apr_pool_t *p, const char *elem, apr_size_t len,
                               apr_size_t start_tag_len, const char *charset,
                               const char **reason)
{
    return ctfl_region_parse_with(NULL, p, elem, len, start_tag_len, charset, NULL, 0, reason);
}

ctfl_region *ctfl_region_parse_with(ctfl_region_parser *ps, apr_pool_t *p, const char *elem,
                                    apr_size_t len, apr_size_t start_tag_len,
                                    const char *charset, const ctfl_tag *tags, int ntags,
                                    const char **reason)
{
    ctfl_region *r;
    const char *err = NULL;
    int region;
    const char *dummy;

    if (!reason)
        reason = &dummy;
    *reason = NULL;
    if (!elem || len < 3 || start_tag_len < 3 || start_tag_len > len || elem[0] != '<') {
        *reason = "not an element";
        return NULL;
    }
    if (len > MAX_ELEMENT_BYTES) {
        *reason = "element too large";
        return NULL;
    }
    r = apr_pcalloc(p, sizeof(*r));
    r->p = p;
    r->elem = elem;
    r->len = len;
    r->regions = apr_array_make(p, 4, sizeof(rregion));
    r->max_work = 16 * len + 64 * 1024;
    use_given_tags(r, tags, ntags);
    if ((err = setup_charset(r, charset)) == NULL && r->utf8_page && !utf8_valid(elem, len))
        err = "invalid UTF-8";
    if (!err)
        err = scan_tokens(r);
    if (!err && r->toks[0].end != start_tag_len)
        err = "start tag length differs from the tokenizer's";
    if (!err) {
        apr_size_t xlen = 0;
        r->opaque = !contains_ci(elem + start_tag_len, len - start_tag_len, "data-ctfl");
        if ((err = tags_only(r, r->opaque ? 1 : r->ntoks, &xlen)) == NULL)
            err = parse_xml(r, xlen, r->opaque ? 1 : r->nnodes, ps);
    }
    if (!err && !(r->nodes[0].flags & NF_MARKED) && !r->nodes[0].flag_if && !r->nodes[0].flag)
        err = "element not marked";
    if (!err)
        err = add_region(r, 0, -1, &region);
    if (!err)
        err = element_end(r, &r->nodes[0], len);
    if (!err && !r->opaque)
        err = children(r, 0, 0);
    for (int j = 1; !err && !r->opaque && j < r->nnodes; j++)
        if (r->nodes[j].field && r->nodes[j].field_attr)
            err = lex_tag(r, &r->nodes[j]);
    if (err) {
        *reason = err;
        return NULL;
    }
    return r;
}

apr_array_header_t *ctfl_region_ids(const ctfl_region *r, apr_pool_t *p)
{
    apr_array_header_t *ids = apr_array_make(p, 4, sizeof(const char *));
    apr_hash_t *seen = NULL;               /* once there are more than a few */
    int n = r->opaque ? 1 : r->nnodes;
    for (int j = 0; j < n; j++) {
        const char *id;
        int dup = 0;
        if (!(r->nodes[j].flags & NF_MARKED) || !(id = node_id(&r->nodes[j])))
            continue;
        if (!seen && ids->nelts >= 8) {
            seen = apr_hash_make(p);
            for (int k = 0; k < ids->nelts; k++)
                apr_hash_set(seen, APR_ARRAY_IDX(ids, k, const char *), APR_HASH_KEY_STRING, "");
        }
        if (seen)
            dup = apr_hash_get(seen, id, APR_HASH_KEY_STRING) != NULL;
        for (int k = 0; !seen && !dup && k < ids->nelts; k++)
            dup = !strcmp(APR_ARRAY_IDX(ids, k, const char *), id);
        if (dup)
            continue;
        if (seen)
            apr_hash_set(seen, id, APR_HASH_KEY_STRING, "");
        APR_ARRAY_PUSH(ids, const char *) = id;
    }
    return ids;
}

/* ---- output --------------------------------------------------------------- */

typedef struct {
    ctfl_region *r;
    const ctfl_region_env *env;
    apr_pool_t *p;
    char *buf;
    apr_size_t n, cap, max;
    int over;
    int flags_known;
    apr_xlate_t *x;           /* UTF-8 -> page charset, opened on first need */
    int x_failed;
    ctfl_region_report *rep;
} emitter;

typedef struct {              /* the resolution of one marked element */
    const ctfl_value *entry;  /* resolved entry; NULL: not resolved */
    int variant;              /* a variant entry was chosen */
    int empty;                /* empty variant */
    ctfl_region_element *item;
} rres;

static void put(emitter *em, const char *s, apr_size_t n)
{
    if (em->over || !n)
        return;
    if (n > em->max - em->n) {
        em->over = 1;
        return;
    }
    if (em->n + n > em->cap) {
        apr_size_t cap = em->cap ? em->cap : 256;
        char *nb;
        while (cap < em->n + n)
            cap *= 2;
        nb = apr_palloc(em->p, cap);
        if (em->n)
            memcpy(nb, em->buf, em->n);
        em->buf = nb;
        em->cap = cap;
    }
    memcpy(em->buf + em->n, s, n);
    em->n += n;
}

static void put_raw(emitter *em, apr_size_t from, apr_size_t to)
{
    if (to > from)
        put(em, em->r->elem + from, to - from);
}

/* One non-ASCII character in the page charset; 0 when it cannot be (or when
 * the result would contain markup-significant ASCII). */
static int put_xlated(emitter *em, const char *s, apr_size_t n)
{
    char out[32];
    apr_size_t in_left = n, out_left = sizeof(out), flush_left, used;
    if (!em->r->out_enc || em->x_failed)
        return 0;
    if (!em->x && apr_xlate_open(&em->x, em->r->out_enc, "UTF-8", em->p) != APR_SUCCESS) {
        em->x_failed = 1;
        em->x = NULL;
        return 0;
    }
    if (apr_xlate_conv_buffer(em->x, s, &in_left, out, &out_left) != APR_SUCCESS || in_left) {
        flush_left = sizeof(out);
        apr_xlate_conv_buffer(em->x, NULL, NULL, out, &flush_left);   /* reset the state */
        return 0;
    }
    flush_left = out_left;                          /* back to the initial shift state */
    if (apr_xlate_conv_buffer(em->x, NULL, NULL, out + (sizeof(out) - out_left), &flush_left)
        != APR_SUCCESS)
        return 0;
    used = sizeof(out) - flush_left;
    if (!used)
        return 0;
    for (apr_size_t i = 0; i < used; i++)
        if (out[i] == '<' || out[i] == '>' || out[i] == '&' || out[i] == '"' || out[i] == '\'')
            return 0;
    put(em, out, used);
    return 1;
}

/* UTF-8 text already safe as HTML, written in the page charset: non-ASCII
 * characters it cannot represent become numeric character references. */
static void put_html(emitter *em, const char *s, apr_size_t n)
{
    apr_size_t i = 0;
    if (em->r->utf8_page) {
        put(em, s, n);
        return;
    }
    while (i < n) {
        apr_size_t j = i, k;
        unsigned cp;
        while (j < n && (unsigned char)s[j] < 0x80)
            j++;
        put(em, s + i, j - i);
        if (j >= n)
            break;
        if (!(k = utf8_seq((const unsigned char *)s + j, n - j, &cp))) {
            cp = 0xFFFD;
            k = 1;
        }
        if (!put_xlated(em, s + j, k)) {
            char ref[16];
            int m = apr_snprintf(ref, sizeof(ref), "&#%u;", cp);
            put(em, ref, (apr_size_t)m);
        }
        i = j + k;
    }
}

/* UTF-8 text, HTML-escaped as ctfl_html_escape does, without a copy (the
 * characters escaped are ASCII: a run never splits a UTF-8 sequence). */
static void put_text(emitter *em, const char *utf8)
{
    const char *s = utf8, *run = utf8, *rep;
    for (; *s; s++) {
        if ((rep = ctfl_html_entity(*s)) == NULL)
            continue;
        put_html(em, run, (apr_size_t)(s - run));
        put(em, rep, strlen(rep));
        run = s + 1;
    }
    put_html(em, run, (apr_size_t)(s - run));
}

/* ---- values ----------------------------------------------------------------- */

static int flag_removes(const emitter *em, const rnode *nd)
{
    return nd->flag_if && em->flags_known
        && !ctfl_value_truthy(ctfl_value_get(em->env->flags, nd->flag_if));
}

/* A flag as text (§4.4): strings as is, numbers JS-formatted, the rest JSON;
 * an absent flag is empty. */
static const char *flag_text(emitter *em, const char *key)
{
    const ctfl_value *v = ctfl_value_get(em->env->flags, key);
    const char *s;
    if (!v)
        return "";
    switch (v->type) {
    case CTFL_V_STRING: return v->u.str.s;
    case CTFL_V_NUMBER: return ctfl_js_number(em->p, v->u.n);
    case CTFL_V_BOOL: return v->u.b ? "true" : "false";
    default:
        s = ctfl_value_to_json(em->p, v);
        return s ? s : "";
    }
}

typedef struct {
    apr_pool_t *p;
    const ctfl_value *profile;
    int merge_tags;
} merge_ctx;

static const char *merge_tag(void *ctx, const ctfl_value *target)
{
    merge_ctx *m = ctx;
    const char *v;
    if (!ctfl_is_merge_tag_entry(target))
        return NULL;                   /* another entry: the npm renderer's default */
    m->merge_tags++;
    v = ctfl_merge_tag_resolve(m->p, target, m->profile);
    return v ? v : "";
}

static int is_rich_text(const ctfl_value *v)
{
    const char *t = ctfl_value_str(ctfl_value_get(v, "nodeType"));
    return ctfl_value_is(v, CTFL_V_OBJECT) && t && !strcmp(t, "document");
}

/* The HTML for a field of the resolved entry; 0 to keep the origin's content.
 * With the baseline only Rich Text with merge tags is rendered. */
static int field_html(emitter *em, const rres *rs, const char *field, const char **html)
{
    const ctfl_value *v;
    if (!rs->entry || rs->empty)
        return 0;
    v = ctfl_value_get(ctfl_value_get(rs->entry, "fields"), field);
    if (is_rich_text(v)) {
        merge_ctx m = { em->p, em->env->profile, 0 };
        ctfl_rt_options o = { merge_tag, &m, em->max - em->n };
        if (ctfl_rt_render(em->p, v, &o, html, NULL, NULL) != 0)
            return 0;
        return rs->variant || m.merge_tags > 0;
    }
    if (!rs->variant)
        return 0;
    if (!v || v->type == CTFL_V_NULL) {
        *html = "";                                 /* the entry does not have it */
        return 1;
    }
    switch (v->type) {
    case CTFL_V_STRING: *html = ctfl_html_escape(em->p, v->u.str.s); return 1;
    case CTFL_V_NUMBER: *html = ctfl_js_number(em->p, v->u.n); return 1;
    case CTFL_V_BOOL: *html = v->u.b ? "true" : "false"; return 1;
    default:
        if (ctfl_value_get(v, "sys"))               /* an entry, asset or link: no text */
            return 0;
        if (v->type == CTFL_V_ARRAY)
            for (apr_size_t i = 0; i < ctfl_value_len(v); i++)
                if (ctfl_value_get(ctfl_value_at(v, i), "sys"))
                    return 0;
        if (!(*html = ctfl_value_to_json(em->p, v)))
            return 0;
        *html = ctfl_html_escape(em->p, *html);
        return 1;
    }
}

/* An URL safe to put in src/href: https (from "//host"), http, or a path. */
static const char *safe_url(apr_pool_t *p, const char *u)
{
    if (!u || !*u)
        return NULL;
    if (u[0] == '/' && u[1] == '/')
        return apr_pstrcat(p, "https:", u, NULL);
    if (!strncmp(u, "https://", 8) || !strncmp(u, "http://", 7) || u[0] == '/')
        return u;
    return NULL;
}

/* data-ctfl-field-attr: the value for that attribute (variants only), or NULL. */
static const char *field_url(emitter *em, const rres *rs, const rnode *nd)
{
    const ctfl_value *v;
    const char *type;
    if (!rs->entry || !rs->variant || rs->empty
        || (strcasecmp(nd->field_attr, "src") && strcasecmp(nd->field_attr, "href")))
        return NULL;
    v = ctfl_value_get(ctfl_value_get(rs->entry, "fields"), nd->field);
    if (ctfl_value_is(v, CTFL_V_STRING))
        return safe_url(em->p, ctfl_value_str(v));
    type = ctfl_value_str(ctfl_value_path(v, "sys.type"));
    if (type && !strcmp(type, "Link")) {
        const char *lt = ctfl_value_str(ctfl_value_path(v, "sys.linkType"));
        const char *id = ctfl_value_str(ctfl_value_path(v, "sys.id"));
        if (!lt || strcmp(lt, "Asset") || !em->env->asset || !valid_id(id))
            return NULL;
        v = em->env->asset(em->env->lookup_ctx, id);
        type = ctfl_value_str(ctfl_value_path(v, "sys.type"));
    }
    if (!type || strcmp(type, "Asset"))
        return NULL;
    return safe_url(em->p, ctfl_value_str(ctfl_value_path(v, "fields.file.url")));
}

/* ---- start tag splicing ------------------------------------------------------ */

enum { ED_SET, ED_INSERT, ED_DELETE };

typedef struct {
    apr_size_t pos, end;      /* bytes replaced */
    int kind;
    const char *name, *value;
} edit;

/* Attributes whose value we set; the SDK sets these only sometimes, so a stale
 * one from the origin is dropped when ours does not set it. */
static const char *const stale_attrs[] = {
    "data-ctfl-optimization-id", "data-ctfl-sticky", "data-ctfl-empty-variant"
};

/* The decoded value of the attribute's first occurrence, where we have it. */
static const char *decoded_value(const rnode *nd, const char *name)
{
    if (!strcmp(name, "data-ctfl-baseline-id"))
        return nd->baseline_id;
    if (!strcmp(name, "data-ctfl-entry-id"))
        return nd->entry_id;
    return NULL;
}

/* The original start tag with `sets` (ctfl_attr; an existing attribute's value
 * is replaced, a new one inserted) and, with strip, stale attributes dropped. */
static void put_start_tag(emitter *em, const rnode *nd, const apr_array_header_t *sets, int strip)
{
    ctfl_region *r = em->r;
    apr_array_header_t *eds = apr_array_make(em->p, 8, sizeof(edit));
    apr_size_t cur = nd->lt;
    int n;

    for (int i = 0; sets && i < sets->nelts; i++) {
        const ctfl_attr *a = &APR_ARRAY_IDX(sets, i, ctfl_attr);
        const lexattr *found = NULL;
        const char *decoded;
        apr_size_t name_len = strlen(a->name);
        edit *e;
        for (int k = 0; k < nd->nlex && !found; k++)
            if (lex_name_is(r, &nd->lex[k], a->name, name_len))
                found = &nd->lex[k];
        if (found && (decoded = decoded_value(nd, a->name)) != NULL && !strcmp(decoded, a->value))
            continue;                                 /* the same value already (libxml2) */
        if (found && found->val < found->val_end) {   /* the same bytes already: leave them */
            const char *esc = ctfl_html_escape(em->p, a->value);
            apr_size_t vs = found->val + (apr_size_t)found->quoted;
            apr_size_t ve = found->val_end - (apr_size_t)found->quoted;
            int same = strlen(esc) == ve - vs && !memcmp(esc, r->elem + vs, ve - vs);
            for (const char *c = esc; same && !r->utf8_page && *c; c++)
                if ((unsigned char)*c >= 0x80)
                    same = 0;                          /* would be written converted */
            if (same)
                continue;
        }
        e = apr_array_push(eds);
        e->name = a->name;
        e->value = a->value;
        if (found) {
            e->kind = ED_SET;
            e->pos = found->name_end;
            e->end = found->val_end;
        } else {
            e->kind = ED_INSERT;
            e->pos = e->end = nd->insert_at;
        }
    }
    for (int k = 0; strip && k < nd->nlex; k++) {
        for (unsigned s = 0; s < sizeof(stale_attrs) / sizeof(stale_attrs[0]); s++) {
            int ours = 0;
            edit *e;
            if (!lex_name_is(r, &nd->lex[k], stale_attrs[s], strlen(stale_attrs[s])))
                continue;
            for (int i = 0; sets && i < sets->nelts; i++)
                if (!strcmp(APR_ARRAY_IDX(sets, i, ctfl_attr).name, stale_attrs[s]))
                    ours = 1;
            if (ours)
                continue;
            e = apr_array_push(eds);
            e->kind = ED_DELETE;
            e->pos = nd->lex[k].ws;
            e->end = nd->lex[k].val_end;
        }
    }
    n = eds->nelts;
    for (int i = 1; i < n; i++) {   /* stable sort by position, insertions last */
        edit t = APR_ARRAY_IDX(eds, i, edit);
        int j = i - 1;
        while (j >= 0 && (APR_ARRAY_IDX(eds, j, edit).pos > t.pos
                          || (APR_ARRAY_IDX(eds, j, edit).pos == t.pos
                              && APR_ARRAY_IDX(eds, j, edit).kind == ED_INSERT && t.kind != ED_INSERT))) {
            APR_ARRAY_IDX(eds, j + 1, edit) = APR_ARRAY_IDX(eds, j, edit);
            j--;
        }
        APR_ARRAY_IDX(eds, j + 1, edit) = t;
    }
    for (int i = 0; i < n; i++) {
        const edit *e = &APR_ARRAY_IDX(eds, i, edit);
        if (e->pos < cur)
            continue;                                 /* overlaps a deletion: cannot happen */
        put_raw(em, cur, e->pos);
        if (e->kind == ED_INSERT) {
            put(em, " ", 1);
            put(em, e->name, strlen(e->name));
        }
        if (e->kind != ED_DELETE) {
            put(em, "=\"", 2);
            put_text(em, e->value);
            put(em, "\"", 1);
        }
        cur = e->end;
    }
    put_raw(em, cur, nd->end);
}

/* ---- the walk ------------------------------------------------------------------ */

static void emit_region(emitter *em, int ri);

/* A descendant with a field, flag or field-attr: splice it, advancing *cur.
 * Nothing to do leaves *cur where it is (the walk goes on inside it). */
static void emit_bound(emitter *em, const rres *rs, const rnode *nd, apr_size_t *cur)
{
    const char *html = NULL, *url = NULL;
    int content = 0;

    if (!(nd->flags & NF_VOID) && (nd->flags & NF_EXTENT)) {
        if (nd->flag && em->flags_known) {
            html = ctfl_html_escape(em->p, flag_text(em, nd->flag));
            content = 1;
            em->rep->flags_applied++;
        } else if (nd->field && !nd->field_attr && field_html(em, rs, nd->field, &html)) {
            content = 1;
        }
    }
    if (nd->field && nd->field_attr)
        url = field_url(em, rs, nd);
    if (!content && !url)
        return;
    if (rs->item && (url || (content && !nd->flag)))
        rs->item->fields_bound++;
    if (url || (content && !nd->flag))
        em->rep->fields_bound++;
    put_raw(em, *cur, nd->lt);
    if (url) {
        apr_array_header_t *set = apr_array_make(em->p, 1, sizeof(ctfl_attr));
        ctfl_attr *a = apr_array_push(set);
        a->name = apr_pstrdup(em->p, nd->field_attr);
        for (char *c = (char *)a->name; *c; c++)
            *c = lower(*c);
        a->value = url;
        put_start_tag(em, nd, set, 0);
    } else {
        put_raw(em, nd->lt, nd->end);
    }
    if (content) {
        put_html(em, html, strlen(html));
        put_raw(em, nd->cend, nd->eend);
        *cur = nd->eend;
    } else {
        *cur = nd->end;
    }
}

/* Bytes [from, to) of a marked element's content (rs: its resolution), with
 * the nested marked elements resolved, its variant templates removed and its
 * fields and flags bound. A node reached here belongs to this element: the
 * walk jumps over each nested marked element as a whole. */
static void emit_range(emitter *em, const rres *rs, apr_size_t from, apr_size_t to)
{
    ctfl_region *r = em->r;
    apr_size_t cur = from;
    if (!r->opaque) {
        for (int j = node_from(r, from); j < r->nnodes && r->nodes[j].lt < to; j++) {
            const rnode *nd = &r->nodes[j];
            if (nd->lt < cur)
                continue;                   /* inside something already emitted */
            if (nd->region >= 0) {
                put_raw(em, cur, nd->lt);
                emit_region(em, nd->region);
                cur = nd->eend;
            } else if (nd->flags & NF_VARIANT) {
                put_raw(em, cur, nd->lt);
                cur = nd->eend;
                em->rep->templates_removed++;
            } else if (flag_removes(em, nd)) {
                put_raw(em, cur, nd->lt);
                cur = nd->eend;
                em->rep->removed++;
            } else if (nd->field || nd->flag) {
                emit_bound(em, rs, nd, &cur);
            }
        }
    }
    put_raw(em, cur, to);
}

static void resolve_region(emitter *em, int ri, rres *rs, apr_array_header_t **attrs)
{
    const rregion *rg = REGION(em->r, ri);
    const ctfl_value *base = NULL;
    ctfl_resolution res;

    *attrs = NULL;
    if (rg->id && em->env->personalize && em->env->entry)
        base = em->env->entry(em->env->lookup_ctx, rg->id);
    if (base) {
        ctfl_resolve(base, em->env->selections, &res);
        rs->entry = res.entry;
        rs->variant = res.outcome == CTFL_RES_VARIANT;
        rs->empty = res.is_empty_variant != 0;
        rs->item->resolved = 1;
        rs->item->outcome = res.outcome;
        rs->item->experience_id = res.selection ? res.selection->experience_id : NULL;
        *attrs = ctfl_tracking_attributes(em->p, rg->id, &res, em->env->attr_options);
    } else if (rg->id) {
        *attrs = ctfl_tracking_attributes(em->p, rg->id, NULL, em->env->attr_options);
    }
    for (int i = 0; *attrs && i < (*attrs)->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(*attrs, i, ctfl_attr).name, "data-ctfl-entry-id"))
            rs->item->entry_id = APR_ARRAY_IDX(*attrs, i, ctfl_attr).value;
}

static void emit_region(emitter *em, int ri)
{
    ctfl_region *r = em->r;
    const rregion *rg = REGION(r, ri);
    const rnode *nd = &r->nodes[rg->node], *tpl = NULL;
    apr_array_header_t *attrs;
    const char *html = NULL;
    rres rs;

    memset(&rs, 0, sizeof(rs));
    if (nd->flags & NF_MARKED) {
        rs.item = apr_array_push(em->rep->elements);
    } else {                                        /* an outer flag element: not listed */
        rs.item = apr_palloc(em->p, sizeof(*rs.item));
    }
    memset(rs.item, 0, sizeof(*rs.item));
    rs.item->depth = rg->depth;
    rs.item->baseline_id = rg->id;
    if (!rg->analysed) {
        put_raw(em, nd->lt, nd->eend);
        rs.item->content = CTFL_REGION_DEPTH_CAP;
        return;
    }
    if (flag_removes(em, nd)) {
        rs.item->content = CTFL_REGION_REMOVED;
        em->rep->removed++;
        return;
    }
    resolve_region(em, ri, &rs, &attrs);
    if (nd->field && nd->field_attr) {              /* the element's own attribute binding */
        const char *url = field_url(em, &rs, nd);
        if (url) {
            ctfl_attr *a;
            if (!attrs)
                attrs = apr_array_make(em->p, 1, sizeof(ctfl_attr));
            a = apr_array_push(attrs);
            a->name = apr_pstrdup(em->p, nd->field_attr);
            for (char *c = (char *)a->name; *c; c++)
                *c = lower(*c);
            a->value = url;
            rs.item->fields_bound++;
            em->rep->fields_bound++;
        }
    }
    put_start_tag(em, nd, attrs, attrs != NULL);
    if (rs.variant) {
        const char *vid = ctfl_entry_id(rs.entry);
        for (int j = rg->node + 1; vid && j < r->nnodes && r->nodes[j].lt < nd->cend; j++)
            if ((r->nodes[j].flags & NF_VARIANT) && r->nodes[j].parent == rg->node
                && !strcmp(r->nodes[j].variant_id, vid)) {
                tpl = &r->nodes[j];
                break;
            }
    }
    if (rs.empty) {
        rs.item->content = CTFL_REGION_EMPTY;
    } else if (nd->flag && em->flags_known && !(nd->flags & NF_VOID)) {
        put_text(em, flag_text(em, nd->flag));
        em->rep->flags_applied++;
    } else if (nd->field && !nd->field_attr && !(nd->flags & NF_VOID)
               && field_html(em, &rs, nd->field, &html)) {
        put_html(em, html, strlen(html));
        rs.item->fields_bound++;
        em->rep->fields_bound++;
    } else if (tpl) {
        emit_range(em, &rs, tpl->end, tpl->cend);
        rs.item->content = CTFL_REGION_TEMPLATE;
        /* the other templates are dropped with the baseline content */
        for (int j = rg->node + 1; j < r->nnodes && r->nodes[j].lt < nd->cend; j++)
            if ((r->nodes[j].flags & NF_VARIANT) && r->nodes[j].parent == rg->node)
                em->rep->templates_removed++;
    } else {
        emit_range(em, &rs, nd->end, nd->cend);
    }
    put_raw(em, nd->cend, nd->eend);
}

ctfl_region_status ctfl_region_rewrite(ctfl_region *r, const ctfl_region_env *env,
                                       const char **out, apr_size_t *out_len,
                                       ctfl_region_report *report)
{
    ctfl_region_report dummy;
    ctfl_region_env none;
    emitter em;

    if (!report)
        report = &dummy;
    memset(report, 0, sizeof(*report));
    report->elements = apr_array_make(r->p, 4, sizeof(ctfl_region_element));
    if (!env) {
        memset(&none, 0, sizeof(none));
        env = &none;
    }
    memset(&em, 0, sizeof(em));
    em.r = r;
    em.env = env;
    em.p = r->p;
    em.rep = report;
    em.max = env->max_output ? env->max_output : CTFL_REGION_DEFAULT_MAX_OUTPUT;
    em.flags_known = env->personalize && ctfl_value_is(env->flags, CTFL_V_OBJECT);
    emit_region(&em, 0);
    if (em.over) {
        memset(report, 0, sizeof(*report));
        report->elements = apr_array_make(r->p, 1, sizeof(ctfl_region_element));
        report->reason = "output over the cap";
        *out = r->elem;
        *out_len = r->len;
        return CTFL_REGION_KEPT;
    }
    *out = em.buf ? em.buf : "";
    *out_len = em.n;
    return CTFL_REGION_REWRITTEN;
}

/* ---- without consent: the tokenizer-only fast path ------------------------------ */

/* Without consent the rewrite only stamps each marked start tag (the origin's
 * content stays, no flags apply, no entry is bound); with no <template> there
 * is nothing to remove either. Then the structure is only needed to know that
 * the slow path would accept the element and at which depth each marked
 * element sits: on a tag stream where every element is closed by its own end
 * tag (or, for <p> and <li>, by the end tag of the block around it) and no
 * start tag closes anything, libxml2's tree, the rewriter's extents and the
 * tokenizer's nesting are one and the same. Anything outside that (other
 * implied ends, start tags that close an open element in libxml2 2.9 or HTML,
 * tables, forms, HTML inside SVG, MathML, values libxml2 would decode or
 * convert) is left to the slow path; so is an element whose content has no
 * data-ctfl at all, unless its own end tag ends it (all the slow path checks
 * then). Checked against the slow path in test_region.c (corpus, hand-written
 * and random markup). */

/* What the fast path needs to know of a tag name. */
enum {
    T_REFUSED = 1 << 0,        /* special parsing in HTML or libxml2 2.9 (tables, forms, the
                                  document skeleton, own insertion modes, text only): slow path */
    T_VOID = 1 << 1,           /* no content in HTML */
    T_VOID_UNKNOWN = 1 << 2,   /* void in HTML, not in libxml2 2.9: what follows goes inside */
    T_CLOSES_P = 1 << 3,       /* a start tag that closes an open <p> (HTML and libxml2) */
    T_FONTSTYLE = 1 << 4,      /* closed by a <p> start tag in libxml2 2.9 */
    T_HEADING = 1 << 5,
    T_P = 1 << 6,
    T_LI = 1 << 7,
    T_A = 1 << 8,
    T_LIST = 1 << 9            /* ul, ol: libxml2 2.9 closes one at the other's start tag */
};

typedef struct {
    const char *name;
    unsigned kind;
} tag_kind;

static const tag_kind tag_kinds[] = {        /* sorted by name (strcmp) */
    { "a", T_A },
    { "address", T_REFUSED },
    { "annotation-xml", T_REFUSED },
    { "applet", T_REFUSED },
    { "area", T_VOID },
    { "article", T_CLOSES_P },
    { "aside", T_CLOSES_P },
    { "b", T_FONTSTYLE },
    { "base", T_VOID },
    { "basefont", T_VOID },
    { "bgsound", T_VOID | T_VOID_UNKNOWN },
    { "big", T_FONTSTYLE },
    { "blockquote", T_CLOSES_P },
    { "body", T_REFUSED },
    { "br", T_VOID },
    { "button", T_REFUSED },
    { "caption", T_REFUSED },
    { "center", T_REFUSED },
    { "col", T_REFUSED | T_VOID },
    { "colgroup", T_REFUSED },
    { "datalist", T_REFUSED },
    { "dd", T_REFUSED },
    { "desc", T_REFUSED },
    { "details", T_CLOSES_P },
    { "dialog", T_CLOSES_P },
    { "dir", T_REFUSED },
    { "div", T_CLOSES_P },
    { "dl", T_REFUSED },
    { "dt", T_REFUSED },
    { "embed", T_VOID },
    { "fieldset", T_REFUSED },
    { "figcaption", T_CLOSES_P },
    { "figure", T_CLOSES_P },
    { "font", T_FONTSTYLE },
    { "footer", T_CLOSES_P },
    { "foreignobject", T_REFUSED },
    { "form", T_REFUSED },
    { "frame", T_REFUSED },
    { "frameset", T_REFUSED },
    { "h1", T_CLOSES_P | T_HEADING },
    { "h2", T_CLOSES_P | T_HEADING },
    { "h3", T_CLOSES_P | T_HEADING },
    { "h4", T_CLOSES_P | T_HEADING },
    { "h5", T_CLOSES_P | T_HEADING },
    { "h6", T_CLOSES_P | T_HEADING },
    { "head", T_REFUSED },
    { "header", T_CLOSES_P },
    { "hgroup", T_CLOSES_P },
    { "hr", T_CLOSES_P | T_VOID },
    { "html", T_REFUSED },
    { "i", T_FONTSTYLE },
    { "image", T_REFUSED },
    { "img", T_VOID },
    { "input", T_VOID },
    { "isindex", T_REFUSED },
    { "keygen", T_VOID | T_VOID_UNKNOWN },
    { "legend", T_REFUSED },
    { "li", T_CLOSES_P | T_LI },
    { "link", T_VOID },
    { "listing", T_REFUSED },
    { "main", T_CLOSES_P },
    { "marquee", T_REFUSED },
    { "math", T_REFUSED },
    { "menu", T_REFUSED },
    { "meta", T_VOID },
    { "nav", T_CLOSES_P },
    { "nobr", T_REFUSED },
    { "noframes", T_REFUSED },
    { "object", T_REFUSED },
    { "ol", T_CLOSES_P | T_LIST },
    { "optgroup", T_REFUSED },
    { "option", T_REFUSED },
    { "p", T_CLOSES_P | T_P },
    { "param", T_VOID },
    { "plaintext", T_REFUSED },
    { "pre", T_REFUSED },
    { "rb", T_REFUSED },
    { "rp", T_REFUSED },
    { "rt", T_REFUSED },
    { "rtc", T_REFUSED },
    { "ruby", T_REFUSED },
    { "s", T_FONTSTYLE },
    { "search", T_CLOSES_P },
    { "section", T_CLOSES_P },
    { "select", T_REFUSED },
    { "small", T_FONTSTYLE },
    { "source", T_VOID | T_VOID_UNKNOWN },
    { "strike", T_FONTSTYLE },
    { "summary", T_CLOSES_P },
    { "table", T_REFUSED },
    { "tbody", T_REFUSED },
    { "td", T_REFUSED },
    { "template", T_REFUSED },
    { "tfoot", T_REFUSED },
    { "th", T_REFUSED },
    { "thead", T_REFUSED },
    { "title", T_REFUSED },
    { "tr", T_REFUSED },
    { "track", T_VOID | T_VOID_UNKNOWN },
    { "tt", T_FONTSTYLE },
    { "u", T_FONTSTYLE },
    { "ul", T_CLOSES_P | T_LIST },
    { "wbr", T_VOID | T_VOID_UNKNOWN },
    { "xmp", T_REFUSED },
};

static int tag_kind_cmp(const void *key, const void *member)
{
    return strcmp(key, ((const tag_kind *)member)->name);
}

/* 0 for the names nothing special is known of (custom elements included). */
static unsigned tag_kind_of(const ctfl_tag *t)
{
    const tag_kind *k;
    if (t->name_overflow)
        return 0;                     /* longer than any name listed */
    k = bsearch(t->name, tag_kinds, sizeof(tag_kinds) / sizeof(tag_kinds[0]), sizeof(tag_kinds[0]),
                tag_kind_cmp);
    /* (strcmp stops at a NUL in the name: check it is the whole name) */
    return k && ctfl_tag_name_eq(t, k->name, strlen(k->name)) ? k->kind : 0;
}

#define FAST_MAX_OPEN 200          /* well inside libxml2's own nesting limits */

typedef struct {
    uint32_t hash;
    unsigned kind;                 /* T_* */
    unsigned char regions;         /* marked (region) elements open, this one included */
    unsigned char interesting;     /* interesting elements open, this one included */
    unsigned char foreign;
} fast_open;

/* A start tag of kind x inside the open elements st[0, sp): would libxml2 2.9
 * or HTML close something there? Conservative: a "yes" only costs the slow
 * path (T_REFUSED names never get here). */
static int start_closes(const fast_open *st, int sp, unsigned x)
{
    unsigned c = st[sp - 1].kind;
    for (int i = 0; i < sp; i++) {
        if ((x & T_CLOSES_P) && (st[i].kind & T_P))
            return 1;                     /* HTML: p closed in button scope */
        if ((x & T_A) && (st[i].kind & T_A))
            return 1;                     /* HTML: the adoption agency */
    }
    if (x & T_LI)                         /* HTML closes any open li, libxml2 the innermost */
        return !(c & T_LIST);
    if ((x & T_HEADING) && (c & T_HEADING))
        return 1;                         /* HTML: a heading closes a heading */
    /* libxml2 2.9: <p> closes inline elements, <p> and <li> close headings,
     * <ul> and <ol> close each other */
    return ((x & T_P) && (c & T_FONTSTYLE)) || ((x & (T_P | T_LI)) && (c & T_HEADING))
        || ((x & T_LIST) && (c & T_LIST));
}

/* End tag t (of kind x) while the innermost open element is something else:
 * both HTML (generate implied end tags) and libxml2 (end tag priorities) close
 * an open <p> or <li> on the end tag of a block that contains it; nothing else
 * is followed here. Returns the open elements left, or -1. */
static int end_implied(const fast_open *st, int sp, const ctfl_tag *t, unsigned x)
{
    if (t->foreign || !(x & (T_CLOSES_P | T_HEADING)))
        return -1;
    while (sp > 0 && st[sp - 1].hash != t->name_hash && (st[sp - 1].kind & (T_P | T_LI)))
        sp--;
    return sp > 0 && st[sp - 1].hash == t->name_hash ? sp : -1;
}

/* A tag's name as libxml2 reads it: [A-Za-z0-9:_.-] up to the end of the name. */
static int plain_tag_name(const char *s, apr_size_t n)
{
    apr_size_t i = s[1] == '/' ? 2 : 1;
    for (; i < n && !is_ws(s[i]) && s[i] != '/' && s[i] != '>'; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == ':' || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* Reads the data-ctfl-* attributes of start tag [lt, end) (first occurrence
 * of each, values as written). 0 when the slow path must decide. */
static int fast_tag_attrs(ctfl_region *r, rnode *nd, const ctfl_tag *t, int *field, int *field_attr)
{
    const char *vals[A_COUNT] = { NULL };
    const char *s = r->elem + nd->lt;
    attr_iter it;
    lexattr at;
    int rc;

    attrs_begin(&it, s, nd->end - nd->lt);
    while ((rc = attrs_next(&it, &at)) == 1) {
        apr_size_t vs = at.val + (apr_size_t)at.quoted, ve = at.val_end - (apr_size_t)at.quoted;
        int k;
        if (at.name_end - at.name < 10 || strncasecmp(s + at.name, "data-ctfl-", 10) != 0)
            continue;
        for (apr_size_t i = at.name; i < at.name_end; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '-' || c == '_'))
                return 0;
        }
        if (at.val < at.val_end && !plain_value(s + vs, ve - vs))
            return 0;
        k = attr_index(s + at.name, at.name_end - at.name);
        if (k >= 0 && !vals[k])
            vals[k] = at.val < at.val_end ? apr_pstrmemdup(r->p, s + vs, ve - vs) : "";
    }
    if (rc < 0)
        return 0;
    /* the tokenizer must have seen the same marker attributes (as the slow path checks) */
    if (((vals[A_BASELINE_ID] || vals[A_ENTRY_ID]) != 0)
            != ((t->attrs & (CTFL_ATTR_BASELINE_ID | CTFL_ATTR_ENTRY_ID)) != 0)
        || (vals[A_FLAG] != NULL) != ((t->attrs & CTFL_ATTR_FLAG) != 0)
        || (vals[A_FLAG_IF] != NULL) != ((t->attrs & CTFL_ATTR_FLAG_IF) != 0))
        return 0;
    nd->baseline_id = vals[A_BASELINE_ID];
    nd->entry_id = vals[A_ENTRY_ID];
    nd->flag = vals[A_FLAG];
    nd->flag_if = vals[A_FLAG_IF];
    *field = vals[A_FIELD] != NULL;
    *field_attr = vals[A_FIELD_ATTR] != NULL;
    if (vals[A_BASELINE_ID] || vals[A_ENTRY_ID])
        nd->flags |= NF_MARKED;
    return 1;
}

/* The rest of an element whose content has no data-ctfl: counting the tags
 * of its name (as element_end does) comes back to zero at the last byte. */
static int opaque_end(const ctfl_region *r, tag_src *ts, uint32_t hash)
{
    const ctfl_tag *t;
    int depth = 1;
    while ((t = src_next(ts)) != NULL) {
        if (!depth)
            return 0;                                 /* tags after its end */
        if (t->name_hash != hash || (t->kind == CTFL_TAG_START && t->foreign && t->self_closing))
            continue;
        depth += t->kind == CTFL_TAG_START ? 1 : -1;
        if (!depth && t->end != r->len)
            return 0;
    }
    return !depth;
}

typedef struct {
    rnode *nodes;                  /* the marked start tags, document order */
    unsigned *depth;
    int n;
} fast_marks;

/* The tokenizer walk: the marked start tags and their depths, or 0 when the
 * element is not one the fast path can vouch for. */
static int fast_walk(ctfl_region *r, apr_size_t start_tag_len, int opaque, fast_marks *m)
{
    apr_array_header_t *nodes = apr_array_make(r->p, 4, sizeof(rnode));
    apr_array_header_t *depths = apr_array_make(r->p, 4, sizeof(unsigned));
    fast_open st[FAST_MAX_OPEN];
    tag_src ts;
    const ctfl_tag *t;
    int sp = 0, ntags = 0, closed = 0, deepest = 0, interesting_n = 0;

    src_init(&ts, r);
    while ((t = src_next(&ts)) != NULL) {
        apr_size_t lt = (apr_size_t)t->lt, end = (apr_size_t)t->end;
        rnode nd;
        int field = 0, field_attr = 0, interesting, is_void;
        unsigned kind;

        if (closed || (ntags++ == 0 && (t->kind != CTFL_TAG_START || lt != 0 || end != start_tag_len)))
            return 0;                                 /* bytes after the element's end */
        if (!plain_tag_name(r->elem + lt, end - lt))
            return 0;
        kind = tag_kind_of(t);
        if (t->kind == CTFL_TAG_END) {
            if (!sp || (kind & T_VOID))
                return 0;
            if (st[sp - 1].hash != t->name_hash && (sp = end_implied(st, sp, t, kind)) < 0)
                return 0;                             /* not an element open here */
            closed = --sp == 0;
            if (closed && end != r->len)
                return 0;
            continue;
        }
        if (kind & T_REFUSED)
            return 0;
        if (sp && (t->foreign != 0) != (st[sp - 1].foreign != 0)
            && !(t->foreign && CTFL_TAG_NAME_IS(t, "svg")))
            return 0;                                 /* into or out of SVG: HTML rules differ */
        if (sp && start_closes(st, sp, kind))
            return 0;
        memset(&nd, 0, sizeof(nd));
        nd.lt = lt;
        nd.end = end;
        nd.region = -1;
        if ((sp == 0 || !opaque) && contains_ci(r->elem + lt, end - lt, "data-ctfl")
            && !fast_tag_attrs(r, &nd, t, &field, &field_attr))
            return 0;
        if (sp == 0 && !(nd.flags & NF_MARKED) && !nd.flag && !nd.flag_if)
            return 0;                                 /* not a marked element */
        is_void = (kind & T_VOID) || (t->foreign && t->self_closing);
        if (t->self_closing && !is_void)
            return 0;                                 /* "<div/>": libxml2 closes it, HTML not */
        if (sp == 0 && opaque && !is_void) {
            /* content without data-ctfl: only the start tag matters to the slow
             * path, and that its own end tag ends the element */
            if (!opaque_end(r, &ts, t->name_hash))
                return 0;
            if (nd.flags & NF_MARKED) {
                APR_ARRAY_PUSH(nodes, rnode) = nd;
                APR_ARRAY_PUSH(depths, unsigned) = 0;
            }
            m->nodes = (rnode *)nodes->elts;
            m->depth = (unsigned *)depths->elts;
            m->n = nodes->nelts;
            return 1;
        }
        interesting = (nd.flags & NF_MARKED) || nd.flag || nd.flag_if || (field && !field_attr);
        if (interesting && (kind & T_VOID_UNKNOWN))
            return 0;                                 /* its extents differ in libxml2 */
        interesting_n += interesting;
        if (sp == 0 || (nd.flags & NF_MARKED)) {
            unsigned depth = sp ? st[sp - 1].regions : 0;
            if (depth >= CTFL_REGION_MAX_DEPTH)
                return 0;                             /* the slow path keeps it as it is */
            if (nd.flags & NF_MARKED) {
                APR_ARRAY_PUSH(nodes, rnode) = nd;
                APR_ARRAY_PUSH(depths, unsigned) = depth;
            }
        }
        if (is_void) {
            if (sp == 0 && (closed = 1) && end != r->len)
                return 0;
            continue;
        }
        if (sp >= FAST_MAX_OPEN)
            return 0;
        st[sp].hash = t->name_hash;
        st[sp].kind = kind;
        st[sp].foreign = (unsigned char)(t->foreign != 0);
        st[sp].regions = (unsigned char)((sp ? st[sp - 1].regions : 0)
                                         + (sp == 0 || (nd.flags & NF_MARKED)));
        st[sp].interesting = (unsigned char)((sp ? st[sp - 1].interesting : 0) + (sp == 0 || interesting));
        if (st[sp].interesting > deepest)
            deepest = st[sp].interesting;
        sp++;
    }
    if (!closed)
        return 0;
    /* the slow path re-reads each level of nested bound elements, within a cap */
    if ((uint64_t)deepest * (r->len + (uint64_t)interesting_n * (MARK_LEN + 64))
        > 16 * (uint64_t)r->len + 64 * 1024)
        return 0;
    m->nodes = (rnode *)nodes->elts;
    m->depth = (unsigned *)depths->elts;
    m->n = nodes->nelts;
    return 1;
}

int ctfl_region_rewrite_unconsented(apr_pool_t *p, const char *elem, apr_size_t len,
                                    apr_size_t start_tag_len, const char *charset,
                                    const ctfl_region_env *env, const char **out,
                                    apr_size_t *out_len, ctfl_region_report *report)
{
    ctfl_region_report dummy;
    ctfl_region *r;
    fast_marks m;
    emitter em;
    apr_size_t cur = 0;

    if ((env && env->personalize) || !elem || len < 3 || start_tag_len < 3 || start_tag_len > len
        || elem[0] != '<' || len > MAX_ELEMENT_BYTES || contains_ci(elem, len, "<template"))
        return 0;
    r = apr_pcalloc(p, sizeof(*r));
    r->p = p;
    r->elem = elem;
    r->len = len;
    if (env)
        use_given_tags(r, env->tags, env->ntags);
    if (setup_charset(r, charset) != NULL || (r->utf8_page && !utf8_valid(elem, len)))
        return 0;
    memset(&m, 0, sizeof(m));
    if (!fast_walk(r, start_tag_len,
                   !contains_ci(elem + start_tag_len, len - start_tag_len, "data-ctfl"), &m))
        return 0;
    for (int i = 0; i < m.n; i++)
        if (lex_tag(r, &m.nodes[i]) != NULL)
            return 0;

    if (!report)
        report = &dummy;
    memset(report, 0, sizeof(*report));
    report->elements = apr_array_make(p, m.n ? m.n : 1, sizeof(ctfl_region_element));
    memset(&em, 0, sizeof(em));
    em.r = r;
    em.env = env;
    em.p = p;
    em.rep = report;
    em.max = env && env->max_output ? env->max_output : CTFL_REGION_DEFAULT_MAX_OUTPUT;
    for (int i = 0; i < m.n; i++) {
        const rnode *nd = &m.nodes[i];
        ctfl_region_element *item = apr_array_push(report->elements);
        const apr_array_header_t *attrs = NULL;
        memset(item, 0, sizeof(*item));
        item->depth = m.depth[i];
        item->baseline_id = node_id(nd);
        item->content = CTFL_REGION_ORIGIN;
        if (item->baseline_id)
            attrs = ctfl_tracking_attributes(p, item->baseline_id, NULL,
                                             env ? env->attr_options : NULL);
        for (int k = 0; attrs && k < attrs->nelts; k++)
            if (!strcmp(APR_ARRAY_IDX(attrs, k, ctfl_attr).name, "data-ctfl-entry-id"))
                item->entry_id = APR_ARRAY_IDX(attrs, k, ctfl_attr).value;
        put_raw(&em, cur, nd->lt);
        put_start_tag(&em, nd, attrs, attrs != NULL);
        cur = nd->end;
    }
    put_raw(&em, cur, len);
    if (em.over) {
        memset(report, 0, sizeof(*report));
        report->elements = apr_array_make(p, 1, sizeof(ctfl_region_element));
        report->reason = "output over the cap";
        *out = elem;
        *out_len = len;
        return -1;
    }
    *out = em.buf ? em.buf : "";
    *out_len = em.n;
    return 1;
}

ctfl_region_status ctfl_region_rewrite_element(apr_pool_t *p, const char *elem, apr_size_t len,
                                               apr_size_t start_tag_len, const char *charset,
                                               const ctfl_region_env *env,
                                               const char **out, apr_size_t *out_len,
                                               ctfl_region_report *report)
{
    const char *reason = NULL;
    ctfl_region *r;
    int fast = ctfl_region_rewrite_unconsented(p, elem, len, start_tag_len, charset, env,
                                               out, out_len, report);
    if (fast)
        return fast > 0 ? CTFL_REGION_REWRITTEN : CTFL_REGION_KEPT;
    r = ctfl_region_parse_with(NULL, p, elem, len, start_tag_len, charset, env ? env->tags : NULL,
                               env ? env->ntags : 0, &reason);
    if (!r) {
        if (report) {
            memset(report, 0, sizeof(*report));
            report->elements = apr_array_make(p, 1, sizeof(ctfl_region_element));
            report->reason = reason;
        }
        *out = elem;
        *out_len = len;
        return CTFL_REGION_KEPT;
    }
    return ctfl_region_rewrite(r, env, out, out_len, report);
}
