/* ctfl_region — personalize one complete marked element; see ctfl_region.h.
 *
 * Parse (once per element, before anything is fetched):
 *   1. ctfl_scan over the element: every tag and its exact byte offsets.
 *   2. libxml2, one htmlCtxtReadMemory call with the page encoding set
 *      explicitly: its elements in document order must be the tokenizer's start
 *      tags with the same names; it gives the decoded data-ctfl-* values and the
 *      tree (parent, last descendant). Children of raw-text elements (script,
 *      noscript, textarea, ...) are skipped: the tokenizer, like a browser, sees
 *      text there where libxml2 2.9 parses markup. When the content holds no
 *      "data-ctfl" at all, only the start tag is parsed (it is all that is used).
 *   3. For each marked element (outer, then nested, depth first): ctfl_rewrite
 *      run on its bytes alone tells whether it ends with its own end tag, and
 *      ctfl_rewrite run on "<name>" + content + "</name>" finds the marked
 *      elements directly inside it, with the same rules that found the outer one.
 *   4. Extents of variant templates (only </template> closes a template), and of
 *      field/flag elements (whose content must be balanced markup), each checked
 *      against libxml2's subtree of that element.
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
    int owner;                /* innermost region containing it (not starting at it) */
    const char *name;         /* lowercased, from libxml2 */
    const char *baseline_id, *entry_id, *variant_id;
    const char *field, *field_attr, *flag, *flag_if;
    lexattr *lex;             /* start tag attributes (nodes that may be spliced) */
    int nlex;
    apr_size_t insert_at;     /* where a new attribute goes: the final '>' or the '/' of "/>" */
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
    const char *parse_enc;    /* libxml2 encoding name */
    int utf8_page;
    int c1_check;             /* parsed as ISO-8859-1 for windows-1252: refuse C1 in values */
    const char *out_enc;      /* iconv target for inserted text; NULL: NCRs only */
    int opaque;               /* content has no "data-ctfl": only the start tag was parsed */
    rtok *toks;
    int ntoks;
    rnode *nodes;
    int nnodes;
    apr_array_header_t *regions;   /* of rregion */
};

#define REGION(r, i) (&APR_ARRAY_IDX((r)->regions, (i), rregion))

/* ---- small helpers -------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

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

static int contains_ci(const char *s, apr_size_t n, const char *needle)
{
    apr_size_t m = strlen(needle);
    for (apr_size_t i = 0; i + m <= n; i++) {
        apr_size_t k = 0;
        while (k < m && lower(s[i + k]) == needle[k])
            k++;
        if (k == m)
            return 1;
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
static const char *setup_charset(ctfl_region *r, const char *cs)
{
    xmlCharEncodingHandlerPtr h;
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
    if (!(h = xmlFindCharEncodingHandler(cs)))
        return "charset unknown to libxml2";
    xmlCharEncCloseFunc(h);
    r->parse_enc = r->out_enc = cs;
    return NULL;
}

/* ---- the tokenizer pass --------------------------------------------------- */

static const char *scan_tokens(ctfl_region *r)
{
    apr_array_header_t *toks = apr_array_make(r->p, 32, sizeof(rtok));
    ctfl_scan sc;
    const ctfl_tag *t;
    apr_size_t off = 0;
    int nodes = 0;

    ctfl_scan_init(&sc);
    while ((t = ctfl_scan_next(&sc, r->elem, r->len, &off)) != NULL) {
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
        r->nodes[j].owner = -1;
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

static int raw_text_element(const char *name)
{
    static const char *const raw[] = {
        "script", "style", "xmp", "iframe", "noembed", "noframes", "noscript",
        "textarea", "title", "plaintext"
    };
    for (unsigned i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
        if (!strcmp(name, raw[i]))
            return 1;
    return 0;
}

static int has_c1(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)s[0] == 0xC2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9F)
            return 1;
    return 0;
}

/* Copy the data-ctfl-* values we use (first occurrence of each name). */
static const char *read_attrs(ctfl_region *r, rnode *nd, xmlNodePtr el)
{
    static const char *const names[] = {
        "data-ctfl-baseline-id", "data-ctfl-entry-id", "data-ctfl-variant-id", "data-ctfl-field",
        "data-ctfl-field-attr", "data-ctfl-flag", "data-ctfl-flag-if"
    };
    const char **slots[] = {
        &nd->baseline_id, &nd->entry_id, &nd->variant_id, &nd->field,
        &nd->field_attr, &nd->flag, &nd->flag_if
    };
    for (xmlAttrPtr a = el->properties; a; a = a->next) {
        const char *an = (const char *)a->name;
        if (strncmp(an, "data-ctfl-", 10) != 0)
            continue;
        for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            xmlChar *v;
            if (strcmp(an, names[i]) != 0 || *slots[i])
                continue;
            v = xmlNodeGetContent((xmlNodePtr)a);
            *slots[i] = apr_pstrdup(r->p, v ? (const char *)v : "");
            xmlFree(v);
            if (r->c1_check && has_c1(*slots[i]))
                return "C1 control in a data-ctfl value (windows-1252 page)";
        }
    }
    return NULL;
}

/* Walk libxml2's tree in document order next to the tokenizer's start tags. */
static const char *walk_tree(ctfl_region *r, xmlDocPtr doc, int expect)
{
    xmlNodePtr root = NULL, cur;
    int idx = 0;
    const char *err;

    for (cur = doc->children; cur; cur = cur->next) {
        if (cur->type == XML_DTD_NODE)
            continue;
        if (cur->type != XML_ELEMENT_NODE || root)
            return "libxml2: content outside the element";
        root = cur;
    }
    if (!root)
        return "libxml2: no element";
    cur = root;
    while (cur) {
        if (cur->type == XML_ELEMENT_NODE) {
            rnode *nd;
            const rtok *tk;
            char *name;
            apr_size_t nlen;
            int descend;
            if (idx >= expect)
                return "libxml2: more elements than start tags";
            nd = &r->nodes[idx];
            tk = &r->toks[nd->tok];
            name = apr_pstrdup(r->p, (const char *)cur->name);
            nlen = strlen(name);
            for (apr_size_t i = 0; i < nlen; i++)
                name[i] = lower(name[i]);
            if (ctfl_scan_name_hash(name, nlen) != tk->hash)
                return "libxml2: element name differs from the tokenizer's";
            nd->name = name;
            if (idx > 0) {
                if (!cur->parent || cur->parent->type != XML_ELEMENT_NODE || !cur->parent->_private)
                    return "libxml2: unexpected tree";
                nd->parent = (int)(intptr_t)cur->parent->_private - 1;
            }
            cur->_private = (void *)(intptr_t)(idx + 1);
            if ((err = read_attrs(r, nd, cur)) != NULL)
                return err;
            if (((nd->baseline_id || nd->entry_id) != 0)
                != ((tk->attrs & (CTFL_ATTR_BASELINE_ID | CTFL_ATTR_ENTRY_ID)) != 0))
                return "libxml2: marker attributes differ from the tokenizer's";
            if (nd->baseline_id || nd->entry_id)
                nd->flags |= NF_MARKED;
            if (!tk->foreign && !strcmp(name, "template"))
                nd->flags |= NF_TEMPLATE;
            if (tk->foreign ? tk->self_closing : (htmlTagLookup(cur->name) && htmlTagLookup(cur->name)->empty))
                nd->flags |= NF_VOID;
            descend = cur->children && (tk->foreign || !raw_text_element(name));
            idx++;
            if (descend) {
                cur = cur->children;
                continue;
            }
        }
        while (cur != root && !cur->next)
            cur = cur->parent;
        if (cur == root)
            break;
        cur = cur->next;
    }
    if (idx != expect)
        return "libxml2: fewer elements than start tags";
    for (int j = expect - 1; j > 0; j--) {       /* children come after their parent */
        int pj = r->nodes[j].parent;
        if (pj < 0 || pj >= j)
            return "libxml2: unexpected tree";
        if (r->nodes[j].last > r->nodes[pj].last)
            r->nodes[pj].last = r->nodes[j].last;
    }
    return NULL;
}

static const char *parse_xml(ctfl_region *r, apr_size_t n, int expect)
{
    xmlGenericErrorFunc old_err = xmlGenericError;
    void *old_ctx = xmlGenericErrorContext;
    xmlStructuredErrorFunc old_serr = xmlStructuredError;
    void *old_sctx = xmlStructuredErrorContext;
    htmlParserCtxtPtr ctxt;
    htmlDocPtr doc;
    const char *err;

    /* thread-local in libxml2: silence "encoding error" lines on stderr */
    xmlSetGenericErrorFunc(NULL, silent);
    xmlSetStructuredErrorFunc(NULL, NULL);
    ctxt = htmlNewParserCtxt();
    if (!ctxt) {
        err = "libxml2: no parser context";
    } else {
        doc = htmlCtxtReadMemory(ctxt, r->elem, (int)n, NULL, r->parse_enc,
                                 HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR
                                 | HTML_PARSE_NOWARNING | HTML_PARSE_NOIMPLIED
                                 | HTML_PARSE_IGNORE_ENC);
        err = doc ? walk_tree(r, doc, expect) : "libxml2: no document";
        if (doc)
            xmlFreeDoc(doc);
        htmlFreeParserCtxt(ctxt);
    }
    xmlSetGenericErrorFunc(old_ctx, old_err);
    xmlSetStructuredErrorFunc(old_sctx, old_serr);
    return err;
}

/* ---- start tag attributes ------------------------------------------------- */

/* Attributes of a complete start tag as the HTML tokenizer reads them. */
static const char *lex_tag(ctfl_region *r, rnode *nd)
{
    const char *s = r->elem + nd->lt;
    apr_size_t n = nd->end - nd->lt, i = 1;
    apr_array_header_t *a = apr_array_make(r->p, 8, sizeof(lexattr));

    while (i < n && !is_ws(s[i]) && s[i] != '/' && s[i] != '>')
        i++;
    for (;;) {
        apr_size_t ws = i, j;
        lexattr *at;
        while (i < n && (is_ws(s[i]) || s[i] == '/')) {
            if (s[i] == '/' && i + 1 < n && s[i + 1] == '>')
                break;
            i++;
        }
        if (i >= n)
            return "start tag: unexpected end";
        if (s[i] == '>' || s[i] == '/') {            /* '>' or "/>" */
            nd->insert_at = nd->lt + i;
            break;
        }
        at = apr_array_push(a);
        at->ws = nd->lt + ws;
        at->name = nd->lt + i;
        i++;                                         /* a leading '=' belongs to the name */
        while (i < n && !is_ws(s[i]) && s[i] != '/' && s[i] != '>' && s[i] != '=')
            i++;
        at->name_end = at->val = at->val_end = nd->lt + i;
        at->quoted = 0;
        for (j = i; j < n && is_ws(s[j]); j++)
            ;
        if (j >= n || s[j] != '=')
            continue;                                /* no value */
        for (j++; j < n && is_ws(s[j]); j++)
            ;
        if (j >= n)
            return "start tag: unexpected end";
        if (s[j] == '"' || s[j] == '\'') {
            const char *q = memchr(s + j + 1, s[j], n - j - 1);
            if (!q)
                return "start tag: unterminated value";
            at->val = nd->lt + j;
            i = (apr_size_t)(q - s) + 1;
            at->quoted = 1;
        } else {
            at->val = nd->lt + j;
            for (i = j; i < n && !is_ws(s[i]) && s[i] != '>'; i++)
                ;
        }
        at->val_end = nd->lt + i;
    }
    nd->lex = (lexattr *)a->elts;
    nd->nlex = a->nelts;
    return NULL;
}

static int lex_name_is(const ctfl_region *r, const lexattr *a, const char *name)
{
    apr_size_t n = a->name_end - a->name;
    if (strlen(name) != n)
        return 0;
    for (apr_size_t i = 0; i < n; i++)
        if (lower(r->elem[a->name + i]) != name[i])
            return 0;
    return 1;
}

/* ---- structure: ctfl_rewrite as the judge of where marked elements end ---- */

typedef struct {
    apr_size_t off, len;
} span;

typedef struct {
    const char *base;
    apr_size_t n, emitted;
    apr_array_header_t *found;    /* of span */
    int bad;
} subrun;

static apr_status_t sub_emit(void *ctx, const char *data, apr_size_t len)
{
    (void)data;
    ((subrun *)ctx)->emitted += len;
    return APR_SUCCESS;
}

static apr_status_t sub_element(void *ctx, const char *elem, apr_size_t len, apr_size_t tag_len,
                                const char **replacement, apr_size_t *replacement_len)
{
    subrun *s = ctx;
    uintptr_t b = (uintptr_t)s->base, e = (uintptr_t)elem;
    (void)tag_len;
    (void)replacement_len;
    *replacement = NULL;
    if (e < b || e - b != s->emitted || len > s->n - s->emitted) {
        s->bad = 1;                               /* not where the stream says: doubt */
    } else {
        span *sp = apr_array_push(s->found);
        sp->off = (apr_size_t)(e - b);
        sp->len = len;
    }
    return APR_SUCCESS;
}

/* Run the rewriter over buf in one chunk: the marked elements it hands over
 * (spans into buf, in p) and its stats. -1 on an internal doubt. */
static int run_rewriter(apr_pool_t *p, const char *buf, apr_size_t n,
                        apr_array_header_t **found, ctfl_rewriter_stats *st)
{
    apr_pool_t *sp;
    subrun s;
    ctfl_rewriter_opts o;
    ctfl_rewriter *rw;
    int rc = 0;

    memset(&s, 0, sizeof(s));
    memset(&o, 0, sizeof(o));
    s.base = buf;
    s.n = n;
    s.found = apr_array_make(p, 4, sizeof(span));
    if (apr_pool_create(&sp, p) != APR_SUCCESS)
        return -1;
    o.emit = sub_emit;
    o.emit_ctx = &s;
    o.on_element = sub_element;
    o.element_ctx = &s;
    o.max_tag_bytes = n + 1;
    o.max_element_bytes = n + 1;
    o.max_elements = n < UINT_MAX - 1 ? (unsigned)n + 1 : UINT_MAX;
    rw = ctfl_rewriter_create(sp, &o);
    if (ctfl_rewriter_feed(rw, buf, n) != APR_SUCCESS || ctfl_rewriter_finish(rw) != APR_SUCCESS
        || s.bad || s.emitted != n)
        rc = -1;
    *st = *ctfl_rewriter_get_stats(rw);
    apr_pool_destroy(sp);
    *found = s.found;
    return rc;
}

/* Does the marked element [nd->lt, b) end with its own end tag? Sets its extent. */
static const char *find_end(ctfl_region *r, rnode *nd, apr_size_t b)
{
    apr_array_header_t *found;
    ctfl_rewriter_stats st;
    const span *sp;

    if (run_rewriter(r->p, r->elem + nd->lt, b - nd->lt, &found, &st) != 0)
        return "structure: rewriter doubt";
    sp = found->nelts == 1 ? &APR_ARRAY_IDX(found, 0, span) : NULL;
    if (sp && sp->off == 0 && sp->len == b - nd->lt && !st.elements_unclosed) {
        if (b == nd->end) {
            nd->cend = b;                            /* void, or self-closed SVG/MathML */
            nd->flags |= NF_VOID;
        } else {
            int t = nd->tok + 1;
            while (t < r->ntoks && r->toks[t].end < b)
                t++;
            if (t >= r->ntoks || r->toks[t].kind != CTFL_TAG_END || r->toks[t].end != b)
                return "structure: end tag not found";
            nd->cend = r->toks[t].lt;
        }
    } else if (found->nelts == 0 && st.elements_unclosed == 1 && !st.elements_malformed) {
        nd->cend = b;                                /* ended implicitly */
    } else {
        return "structure: element end differs";
    }
    nd->eend = b;
    nd->flags |= NF_EXTENT;
    return NULL;
}

static const char *analyse(ctfl_region *r, int ri);

/* The marked elements directly inside region ri, found by the rewriter in
 * "<name>" + content + "</name>" (the element's own context, no markers). */
static const char *find_nested(ctfl_region *r, int ri)
{
    rnode *nd = &r->nodes[REGION(r, ri)->node];
    const char *s = r->elem + nd->lt + 1, *err;
    apr_size_t nl = 0, clen = nd->cend - nd->end, open, total;
    apr_array_header_t *found;
    ctfl_rewriter_stats st;
    char *buf;

    if (!clen)
        return NULL;
    while (nl < nd->end - nd->lt - 1 && !is_ws(s[nl]) && s[nl] != '/' && s[nl] != '>')
        nl++;
    open = nl + 2;
    total = open + clen + nl + 3;
    buf = apr_palloc(r->p, total);
    buf[0] = '<';
    memcpy(buf + 1, s, nl);
    buf[nl + 1] = '>';
    memcpy(buf + open, r->elem + nd->end, clen);
    memcpy(buf + open + clen, "</", 2);
    memcpy(buf + open + clen + 2, s, nl);
    buf[total - 1] = '>';
    if (run_rewriter(r->p, buf, total, &found, &st) != 0)
        return "structure: rewriter doubt";
    if (st.elements_unclosed || st.elements_malformed || st.elements_over_bytes
        || st.elements_over_count)
        return "structure: nested element not followed";
    for (int i = 0; i < found->nelts; i++) {
        const span *sp = &APR_ARRAY_IDX(found, i, span);
        apr_size_t a, b;
        int j;
        rregion *c;
        if (sp->off < open || sp->off + sp->len > open + clen)
            return "structure: nested element outside the content";
        a = nd->end + (sp->off - open);
        b = a + sp->len;
        j = node_from(r, a);
        if (j >= r->nnodes || r->nodes[j].lt != a || !(r->nodes[j].flags & NF_MARKED))
            return "structure: nested element not a marked start tag";
        if (!subtree_is(r, j, b))
            return "structure: nested element differs from libxml2's";
        c = apr_array_push(r->regions);
        c->node = j;
        c->parent = ri;
        c->depth = REGION(r, ri)->depth + 1;
        c->analysed = c->depth < CTFL_REGION_MAX_DEPTH;
        c->id = node_id(&r->nodes[j]);
        r->nodes[j].region = r->regions->nelts - 1;
        r->nodes[j].eend = b;
        if (!c->analysed) {
            r->nodes[j].cend = b;
            continue;
        }
        if ((err = find_end(r, &r->nodes[j], b)) != NULL
            || (err = analyse(r, r->regions->nelts - 1)) != NULL)
            return err;
    }
    return NULL;
}

static const char *analyse(ctfl_region *r, int ri)
{
    rnode *nd = &r->nodes[REGION(r, ri)->node];
    const char *err;
    if ((err = lex_tag(r, nd)) != NULL)
        return err;
    return find_nested(r, ri);
}

/* Only </template> closes a template (HTML "in template" rules). */
static const char *template_extent(ctfl_region *r, rnode *nd, apr_size_t limit)
{
    uint32_t h = ctfl_scan_name_hash("template", 8);
    int depth = 1;
    for (int t = nd->tok + 1; t < r->ntoks && r->toks[t].end <= limit; t++) {
        const rtok *k = &r->toks[t];
        if (k->foreign || k->hash != h)
            continue;
        depth += k->kind == CTFL_TAG_START ? 1 : -1;
        if (!depth) {
            nd->cend = k->lt;
            nd->eend = k->end;
            nd->flags |= NF_EXTENT;
            return NULL;
        }
    }
    return "structure: template not closed";
}

/* A field/flag element's content must be balanced markup ending in its own
 * end tag: anything the HTML parser would close implicitly is a doubt. */
static const char *balanced_extent(ctfl_region *r, rnode *nd, apr_size_t limit)
{
    int *stack, sp = 0;
    uint32_t own = r->toks[nd->tok].hash;

    if (nd->flags & NF_VOID) {
        nd->cend = nd->eend = nd->end;
        nd->flags |= NF_EXTENT;
        return NULL;
    }
    stack = apr_palloc(r->p, (apr_size_t)(r->ntoks + 1) * sizeof(int));
    for (int t = nd->tok + 1; t < r->ntoks && r->toks[t].end <= limit; t++) {
        const rtok *k = &r->toks[t];
        if (k->kind == CTFL_TAG_START) {
            if (!(r->nodes[k->node].flags & NF_VOID))
                stack[sp++] = t;
        } else if (sp) {
            if (r->toks[stack[sp - 1]].hash != k->hash)
                return "structure: unbalanced field or flag content";
            sp--;
        } else {
            if (k->hash != own)
                return "structure: unbalanced field or flag content";
            nd->cend = k->lt;
            nd->eend = k->end;
            nd->flags |= NF_EXTENT;
            return NULL;
        }
    }
    return "structure: field or flag element not closed";
}

/* The rewriter agrees that the element's own end tag closes it: run on
 * "<name data-ctfl-entry-id>" + its content and end tag, it must hand over the
 * whole of it (a <p> holding a <section> is closed early by HTML rules that
 * libxml2 2.9 does not know). Content structure does not depend on context. */
static const char *confirm_extent(ctfl_region *r, const rnode *nd)
{
    static const char marker[] = " data-ctfl-entry-id>";
    const char *s = r->elem + nd->lt + 1;
    apr_size_t nl = 0, rest = nd->eend - nd->end, total;
    apr_array_header_t *found;
    ctfl_rewriter_stats st;
    const span *sp;
    char *buf;

    while (nl < nd->end - nd->lt - 1 && !is_ws(s[nl]) && s[nl] != '/' && s[nl] != '>')
        nl++;
    total = 1 + nl + sizeof(marker) - 1 + rest;
    buf = apr_palloc(r->p, total);
    buf[0] = '<';
    memcpy(buf + 1, s, nl);
    memcpy(buf + 1 + nl, marker, sizeof(marker) - 1);
    memcpy(buf + total - rest, r->elem + nd->end, rest);
    if (run_rewriter(r->p, buf, total, &found, &st) != 0 || found->nelts != 1)
        return "structure: element end differs from the rewriter's";
    sp = &APR_ARRAY_IDX(found, 0, span);
    return sp->off == 0 && sp->len == total ? NULL : "structure: element end differs from the rewriter's";
}

/* Owners, variant templates, field/flag extents, and that every marker was
 * found by the rewriter. */
static const char *finish_structure(ctfl_region *r)
{
    const char *err;
    for (int ri = 0; ri < r->regions->nelts; ri++) {     /* preorder: inner ones win */
        const rregion *rg = REGION(r, ri);
        const rnode *nd = &r->nodes[rg->node];
        for (int j = rg->node + 1; j < r->nnodes && r->nodes[j].lt < nd->eend; j++)
            r->nodes[j].owner = ri;
    }
    for (int j = 1; j < r->nnodes; j++) {
        rnode *nd = &r->nodes[j];
        const rregion *own;
        if (nd->region >= 0)
            continue;
        own = REGION(r, nd->owner);
        if (!own->analysed)
            continue;
        if (nd->flags & NF_MARKED)
            return "structure: a marker the rewriter did not see";
        if ((nd->flags & NF_TEMPLATE) && nd->variant_id && nd->parent == own->node) {
            nd->flags |= NF_VARIANT;
            err = template_extent(r, nd, r->nodes[own->node].cend);
        } else if (nd->flag || nd->flag_if || (nd->field && !nd->field_attr)) {
            err = balanced_extent(r, nd, r->nodes[own->node].cend);
        } else {
            err = NULL;
        }
        if (!err && (nd->flags & NF_EXTENT) && !subtree_is(r, j, nd->eend))
            err = "structure: element differs from libxml2's";
        if (!err && (nd->flags & NF_EXTENT) && !(nd->flags & NF_VOID))
            err = confirm_extent(r, nd);
        if (!err && nd->field && nd->field_attr)
            err = lex_tag(r, nd);
        if (err)
            return err;
    }
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
    ctfl_region *r;
    rregion *outer;
    const char *err = NULL;
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
    if ((err = setup_charset(r, charset)) == NULL && r->utf8_page && !utf8_valid(elem, len))
        err = "invalid UTF-8";
    if (!err)
        err = scan_tokens(r);
    if (!err && r->toks[0].end != start_tag_len)
        err = "start tag length differs from the tokenizer's";
    if (!err) {
        r->opaque = !contains_ci(elem + start_tag_len, len - start_tag_len, "data-ctfl");
        err = r->opaque ? parse_xml(r, start_tag_len, 1) : parse_xml(r, len, r->nnodes);
    }
    if (!err && !(r->nodes[0].flags & NF_MARKED) && !r->nodes[0].flag_if && !r->nodes[0].flag)
        err = "element not marked";
    if (!err) {
        outer = apr_array_push(r->regions);
        outer->node = 0;
        outer->parent = -1;
        outer->depth = 0;
        outer->analysed = 1;
        outer->id = node_id(&r->nodes[0]);
        r->nodes[0].region = 0;
        err = find_end(r, &r->nodes[0], len);
    }
    if (!err) {
        if (r->opaque) {
            err = lex_tag(r, &r->nodes[0]);
            for (int j = 1; j < r->nnodes; j++)
                r->nodes[j].owner = 0;
        } else {
            if ((err = analyse(r, 0)) == NULL)
                err = finish_structure(r);
        }
    }
    if (err) {
        *reason = err;
        return NULL;
    }
    return r;
}

apr_array_header_t *ctfl_region_ids(const ctfl_region *r, apr_pool_t *p)
{
    apr_array_header_t *ids = apr_array_make(p, 4, sizeof(const char *));
    apr_hash_t *seen = apr_hash_make(p);
    int n = r->opaque ? 1 : r->nnodes;
    for (int j = 0; j < n; j++) {
        const char *id;
        if (!(r->nodes[j].flags & NF_MARKED) || !(id = node_id(&r->nodes[j])))
            continue;
        if (apr_hash_get(seen, id, APR_HASH_KEY_STRING))
            continue;
        apr_hash_set(seen, id, APR_HASH_KEY_STRING, id);
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

static void put_text(emitter *em, const char *utf8)
{
    const char *esc = ctfl_html_escape(em->p, utf8);
    put_html(em, esc, strlen(esc));
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
        return "";                     /* resolve() of a non-merge-tag: undefined (§4.5) */
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
        edit *e;
        for (int k = 0; k < nd->nlex && !found; k++)
            if (lex_name_is(r, &nd->lex[k], a->name))
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
            if (!lex_name_is(r, &nd->lex[k], stale_attrs[s]))
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

/* Bytes [from, to) of region ri's content, with its nested elements resolved,
 * its variant templates removed and its fields/flags bound. */
static void emit_range(emitter *em, int ri, const rres *rs, apr_size_t from, apr_size_t to)
{
    ctfl_region *r = em->r;
    apr_size_t cur = from;
    if (!r->opaque) {
        for (int j = node_from(r, from); j < r->nnodes && r->nodes[j].lt < to; j++) {
            const rnode *nd = &r->nodes[j];
            if (nd->lt < cur || nd->owner != ri)
                continue;
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
    rs.item = apr_array_push(em->rep->elements);
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
        emit_range(em, ri, &rs, tpl->end, tpl->cend);
        rs.item->content = CTFL_REGION_TEMPLATE;
        /* the other templates are dropped with the baseline content */
        for (int j = rg->node + 1; j < r->nnodes && r->nodes[j].lt < nd->cend; j++)
            if ((r->nodes[j].flags & NF_VARIANT) && r->nodes[j].parent == rg->node)
                em->rep->templates_removed++;
    } else {
        emit_range(em, ri, &rs, nd->end, nd->cend);
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

ctfl_region_status ctfl_region_rewrite_element(apr_pool_t *p, const char *elem, apr_size_t len,
                                               apr_size_t start_tag_len, const char *charset,
                                               const ctfl_region_env *env,
                                               const char **out, apr_size_t *out_len,
                                               ctfl_region_report *report)
{
    const char *reason = NULL;
    ctfl_region *r = ctfl_region_parse(p, elem, len, start_tag_len, charset, &reason);
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
