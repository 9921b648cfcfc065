/* ctfl_richtext — Contentful Rich Text to HTML, the way @contentful/rich-text-html-renderer
 * 17.2.3 does it with default options.
 *
 * The package renders plain JS objects: renderNode[node.nodeType](node, next), with next()
 * mapping node.content; a text node is escapeHtml(value) wrapped by renderMark[mark.type] for
 * each mark in order (the first mark innermost). Unknown node types and marks render nothing.
 * Everything here mirrors what JS does with a JSON value in those places:
 *   - JS `undefined` is a NULL pointer here, JS `null` a CTFL_V_NULL value;
 *   - reading a property of null/undefined throws (TypeError) -> we fail;
 *   - a property of a string, number, boolean or array is undefined (none of the names read
 *     here exist on their prototypes), except marks.length, handled where it is read;
 *   - renderNode[key] converts key with ToPropertyKey: ["paragraph"] renders a paragraph, an
 *     object is "[object Object]", and ToString throws on an object with its own "toString".
 * Deliberate refusals (JS renders them, we fail): a node type or mark that names an
 * Object.prototype member ("constructor", "toString", "__proto__", ...), which JS would look
 * up on the prototype and call with odd results or side effects; a marks object whose "length"
 * is not a number, boolean or null; nesting deeper than CTFL_RT_MAX_DEPTH. */
#include "ctfl_richtext.h"

#include <string.h>

typedef struct {
    const char *s;
    apr_size_t n;
} span;

typedef struct {
    apr_pool_t *p;
    char *buf;                      /* always cap > len, room for the final NUL */
    apr_size_t len, cap, max;
    const ctfl_rt_options *opt;
    const char *err;
} rt;

static int fail(rt *r, const char *why)
{
    if (!r->err) r->err = why;
    return -1;
}

static int put(rt *r, const char *s, apr_size_t n)
{
    if (r->max && n > r->max - r->len) return fail(r, "rich text: output exceeds the size limit");
    if (n >= r->cap - r->len) {
        apr_size_t cap = r->cap * 2;
        char *buf;
        if (n > (((apr_size_t)-1) >> 2) - r->len) return fail(r, "rich text: output too large");
        if (cap < r->len + n + 1) cap = r->len + n + 1;
        buf = apr_palloc(r->p, cap);
        memcpy(buf, r->buf, r->len);
        r->buf = buf;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    return 0;
}

#define PUT_LIT(r, lit) put((r), (lit), sizeof(lit) - 1)

static int put_str(rt *r, const char *s)
{
    return put(r, s, strlen(s));
}

/* The package's escapeHtml(): " & ' < > (only_quote: its attributeValue(), '"' alone). */
static int put_escaped(rt *r, const char *s, apr_size_t n, int only_quote)
{
    apr_size_t i, start = 0;

    for (i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '"': rep = "&quot;"; break;
        case '&': rep = "&amp;"; break;
        case '\'': rep = "&#39;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        default: continue;
        }
        if (only_quote && s[i] != '"') continue;
        if (put(r, s + start, i - start) || put_str(r, rep)) return -1;
        start = i + 1;
    }
    return put(r, s + start, n - start);
}

static int nullish(const ctfl_value *v)
{
    return !v || v->type == CTFL_V_NULL;
}

/* JS `v.key`: throws on null/undefined. */
static int member(rt *r, const ctfl_value *v, const char *key, const ctfl_value **out)
{
    if (nullish(v)) return fail(r, "rich text: property read on null or undefined");
    *out = v->type == CTFL_V_OBJECT ? ctfl_value_get(v, key) : NULL;
    return 0;
}

/* JS `v?.key`. */
static const ctfl_value *opt_member(const ctfl_value *v, const char *key)
{
    return v && v->type == CTFL_V_OBJECT ? ctfl_value_get(v, key) : NULL;
}

/* `x ?? ''` passed to a string method: undefined/null give "", a non-string throws. */
static int string_or_empty(rt *r, const ctfl_value *v, span *out)
{
    out->s = "";
    out->n = 0;
    if (nullish(v)) return 0;
    if (v->type != CTFL_V_STRING) return fail(r, "rich text: string method called on a non-string");
    out->s = v->u.str.s;
    out->n = v->u.str.len;
    return 0;
}

static int span_is(span k, const char *name)
{
    return k.n == strlen(name) && memcmp(k.s, name, k.n) == 0;
}

/* JS ToPropertyKey(v) for a JSON value (ToString; arrays join their elements with ","). */
static int js_key(rt *r, const ctfl_value *v, int depth, span *out)
{
    apr_size_t i, total = 0;
    span *parts;
    char *s;

    if (depth > CTFL_RT_MAX_DEPTH) return fail(r, "rich text: nested too deeply");
    switch (v->type) {
    case CTFL_V_STRING:
        out->s = v->u.str.s;
        out->n = v->u.str.len;
        return 0;
    case CTFL_V_NUMBER:
        out->s = ctfl_js_number(r->p, v->u.n);
        out->n = strlen(out->s);
        return 0;
    case CTFL_V_BOOL:
        out->s = v->u.b ? "true" : "false";
        out->n = strlen(out->s);
        return 0;
    case CTFL_V_NULL:
        out->s = "null";
        out->n = 4;
        return 0;
    case CTFL_V_OBJECT:
        /* An own "toString" is never callable in JSON, and valueOf() yields the object. */
        if (ctfl_value_get(v, "toString")) return fail(r, "rich text: object not convertible to a key");
        out->s = "[object Object]";
        out->n = 15;
        return 0;
    case CTFL_V_ARRAY:
        break;
    }
    parts = apr_pcalloc(r->p, (v->u.arr.n ? v->u.arr.n : 1) * sizeof *parts);
    for (i = 0; i < v->u.arr.n; i++) {
        const ctfl_value *e = v->u.arr.items[i];
        if (!nullish(e) && js_key(r, e, depth + 1, &parts[i])) return -1;
        total += parts[i].n + (i ? 1 : 0);
    }
    out->s = s = apr_palloc(r->p, total + 1);
    for (i = 0; i < v->u.arr.n; i++) {
        if (i) *s++ = ',';
        if (parts[i].n) memcpy(s, parts[i].s, parts[i].n);
        s += parts[i].n;
    }
    *s = '\0';
    out->n = total;
    return 0;
}

/* Own members of Object.prototype (Node 20): renderNode[name] would find these. */
static int refused_key(rt *r, span k)
{
    static const char *const proto[] = {
        "constructor", "__defineGetter__", "__defineSetter__", "hasOwnProperty",
        "__lookupGetter__", "__lookupSetter__", "isPrototypeOf", "propertyIsEnumerable",
        "toString", "valueOf", "__proto__", "toLocaleString",
    };
    apr_size_t i;
    for (i = 0; i < sizeof proto / sizeof proto[0]; i++)
        if (span_is(k, proto[i])) return fail(r, "rich text: type names a JavaScript prototype member");
    return 0;
}

static const struct {
    const char *type, *tag;
} mark_renderers[] = {
    { "bold", "b" }, { "italic", "i" }, { "underline", "u" }, { "code", "code" },
    { "superscript", "sup" }, { "subscript", "sub" }, { "strikethrough", "s" },
};

/* renderMark[mark.type] for one element of node.marks: *tag is its element or NULL (skip). */
static int mark_tag(rt *r, const ctfl_value *mark, const char **tag)
{
    const ctfl_value *type;
    span k;
    apr_size_t i;

    *tag = NULL;
    if (member(r, mark, "type", &type)) return -1;
    if (!type) return 0;                                  /* renderMark["undefined"] */
    if (js_key(r, type, 1, &k)) return -1;
    for (i = 0; i < sizeof mark_renderers / sizeof mark_renderers[0]; i++)
        if (span_is(k, mark_renderers[i].type)) {
            *tag = mark_renderers[i].tag;
            return 0;
        }
    return refused_key(r, k);
}

/* `node.marks.length > 0`: sets *use when the marks are to be reduced (an array). */
static int marks_used(rt *r, const ctfl_value *marks, int *use)
{
    const ctfl_value *len;

    *use = 0;
    if (nullish(marks)) return fail(r, "rich text: text node without marks");
    switch (marks->type) {
    case CTFL_V_ARRAY:
        *use = marks->u.arr.n > 0;
        return 0;
    case CTFL_V_STRING:                                   /* "ab".reduce is not a function */
        return marks->u.str.len ? fail(r, "rich text: marks is not an array") : 0;
    case CTFL_V_OBJECT:
        len = ctfl_value_get(marks, "length");
        if (nullish(len)) return 0;
        if ((len->type == CTFL_V_NUMBER && len->u.n > 0) || (len->type == CTFL_V_BOOL && len->u.b))
            return fail(r, "rich text: marks is not an array");
        if (len->type == CTFL_V_NUMBER || len->type == CTFL_V_BOOL) return 0;
        return fail(r, "rich text: marks with an unsupported length");
    default:                                              /* numbers, booleans: no length */
        return 0;
    }
}

static int render_text(rt *r, const ctfl_value *node)
{
    const ctfl_value *value = ctfl_value_get(node, "value"), *marks = ctfl_value_get(node, "marks");
    const char *tag;
    apr_size_t i, n;
    int use;

    if (!value || value->type != CTFL_V_STRING) return fail(r, "rich text: text value is not a string");
    if (marks_used(r, marks, &use)) return -1;
    if (!use) return put_escaped(r, value->u.str.s, value->u.str.len, 0);
    n = marks->u.arr.n;
    for (i = n; i-- > 0;) {                               /* the last mark is outermost */
        if (mark_tag(r, marks->u.arr.items[i], &tag)) return -1;
        if (tag && (PUT_LIT(r, "<") || put_str(r, tag) || PUT_LIT(r, ">"))) return -1;
    }
    if (put_escaped(r, value->u.str.s, value->u.str.len, 0)) return -1;
    for (i = 0; i < n; i++) {
        if (mark_tag(r, marks->u.arr.items[i], &tag)) return -1;
        if (tag && (PUT_LIT(r, "</") || put_str(r, tag) || PUT_LIT(r, ">"))) return -1;
    }
    return 0;
}

static int render_node(rt *r, const ctfl_value *node, int depth);

/* next(node.content): content must be an array ("map is not a function" otherwise). */
static int render_children(rt *r, const ctfl_value *node, int depth)
{
    const ctfl_value *content = ctfl_value_get(node, "content");
    apr_size_t i;

    if (!content || content->type != CTFL_V_ARRAY) return fail(r, "rich text: content is not an array");
    for (i = 0; i < content->u.arr.n; i++)
        if (render_node(r, content->u.arr.items[i], depth + 1)) return -1;
    return 0;
}

/* defaultInline(): <span>type: TYPE id: node.data.target.sys.id</span> */
static int render_inline_id(rt *r, const ctfl_value *node, const char *type)
{
    const ctfl_value *target, *sys, *id;

    if (member(r, ctfl_value_get(node, "data"), "target", &target) || member(r, target, "sys", &sys)
        || member(r, sys, "id", &id))
        return -1;
    if (!id || id->type != CTFL_V_STRING) return fail(r, "rich text: link target id is not a string");
    return PUT_LIT(r, "<span>type: ") || put_str(r, type) || PUT_LIT(r, " id: ")
           || put_escaped(r, id->u.str.s, id->u.str.len, 0) || PUT_LIT(r, "</span>");
}

/* embedded-entry-inline: the caller's text (merge tags) or defaultInline(). */
static int render_inline_entry(rt *r, const ctfl_value *node, const char *type)
{
    if (r->opt && r->opt->inline_entry) {
        const ctfl_value *target = opt_member(ctfl_value_get(node, "data"), "target");
        const char *text = r->opt->inline_entry(r->opt->ctx, target);
        if (text) return put_escaped(r, text, strlen(text), 0);
    }
    return render_inline_id(r, node, type);
}

/* defaultInlineResource(): <span>type: TYPE urn: node.data?.target?.sys?.urn ?? ''</span> */
static int render_inline_urn(rt *r, const ctfl_value *node, const char *type)
{
    const ctfl_value *sys = opt_member(opt_member(ctfl_value_get(node, "data"), "target"), "sys");
    span urn;

    if (string_or_empty(r, opt_member(sys, "urn"), &urn)) return -1;
    return PUT_LIT(r, "<span>type: ") || put_str(r, type) || PUT_LIT(r, " urn: ")
           || put_escaped(r, urn.s, urn.n, 0) || PUT_LIT(r, "</span>");
}

/* defaultBlockAsset(): an <img> of the target's file url ("//host" gets "https:"). */
static int render_asset_block(rt *r, const ctfl_value *node)
{
    const ctfl_value *fields = opt_member(opt_member(ctfl_value_get(node, "data"), "target"), "fields");
    span url, alt;

    if (string_or_empty(r, opt_member(opt_member(fields, "file"), "url"), &url)
        || string_or_empty(r, opt_member(fields, "description"), &alt))
        return -1;
    return PUT_LIT(r, "<img src=\"")
           || (url.n >= 2 && url.s[0] == '/' && url.s[1] == '/' && PUT_LIT(r, "https:"))
           || put_escaped(r, url.s, url.n, 0) || PUT_LIT(r, "\" alt=\"")
           || put_escaped(r, alt.s, alt.n, 0) || PUT_LIT(r, "\" loading=\"lazy\" />");
}

/* <a href="uri with only '"' escaped">children</a>; a non-string uri gives href="". */
static int render_hyperlink(rt *r, const ctfl_value *node, int depth)
{
    const ctfl_value *uri;

    if (member(r, ctfl_value_get(node, "data"), "uri", &uri)) return -1;
    if (PUT_LIT(r, "<a href=\"")) return -1;
    if (uri && uri->type == CTFL_V_STRING && put_escaped(r, uri->u.str.s, uri->u.str.len, 1)) return -1;
    return PUT_LIT(r, "\">") || render_children(r, node, depth) || PUT_LIT(r, "</a>");
}

typedef enum { R_WRAP, R_HR, R_ASSET_BLOCK, R_INLINE_ID, R_INLINE_ENTRY, R_INLINE_URN, R_HYPERLINK } rkind;

static const struct {
    const char *type;
    rkind kind;
    const char *tag;
} node_renderers[] = {
    { "paragraph", R_WRAP, "p" },
    { "heading-1", R_WRAP, "h1" }, { "heading-2", R_WRAP, "h2" }, { "heading-3", R_WRAP, "h3" },
    { "heading-4", R_WRAP, "h4" }, { "heading-5", R_WRAP, "h5" }, { "heading-6", R_WRAP, "h6" },
    { "embedded-entry-block", R_WRAP, "div" }, { "embedded-resource-block", R_WRAP, "div" },
    { "embedded-asset-block", R_ASSET_BLOCK, NULL },
    { "unordered-list", R_WRAP, "ul" }, { "ordered-list", R_WRAP, "ol" }, { "list-item", R_WRAP, "li" },
    { "blockquote", R_WRAP, "blockquote" }, { "hr", R_HR, NULL },
    { "table", R_WRAP, "table" }, { "table-row", R_WRAP, "tr" },
    { "table-header-cell", R_WRAP, "th" }, { "table-cell", R_WRAP, "td" },
    { "asset-hyperlink", R_INLINE_ID, NULL }, { "entry-hyperlink", R_INLINE_ID, NULL },
    { "resource-hyperlink", R_INLINE_URN, NULL }, { "embedded-entry-inline", R_INLINE_ENTRY, NULL },
    { "embedded-resource-inline", R_INLINE_URN, NULL }, { "hyperlink", R_HYPERLINK, NULL },
};

static int render_node(rt *r, const ctfl_value *node, int depth)
{
    const ctfl_value *type;
    span k;
    apr_size_t i;

    if (depth > CTFL_RT_MAX_DEPTH) return fail(r, "rich text: nested too deeply");
    if (nullish(node)) return fail(r, "rich text: null node");
    if (node->type != CTFL_V_OBJECT) return 0;            /* no nodeType: renders nothing */
    type = ctfl_value_get(node, "nodeType");
    if (type && type->type == CTFL_V_STRING && type->u.str.len == 4 && !memcmp(type->u.str.s, "text", 4))
        return render_text(r, node);
    if (!type || !ctfl_value_truthy(type)) return 0;
    if (js_key(r, type, 1, &k)) return -1;
    for (i = 0; i < sizeof node_renderers / sizeof node_renderers[0]; i++)
        if (span_is(k, node_renderers[i].type)) break;
    if (i == sizeof node_renderers / sizeof node_renderers[0])
        return refused_key(r, k);                         /* unknown type (or "document"): "" */

    switch (node_renderers[i].kind) {
    case R_WRAP:
        return PUT_LIT(r, "<") || put_str(r, node_renderers[i].tag) || PUT_LIT(r, ">")
               || render_children(r, node, depth)
               || PUT_LIT(r, "</") || put_str(r, node_renderers[i].tag) || PUT_LIT(r, ">");
    case R_HR:
        return PUT_LIT(r, "<hr/>");
    case R_ASSET_BLOCK:
        return render_asset_block(r, node);
    case R_INLINE_ID:
        return render_inline_id(r, node, node_renderers[i].type);
    case R_INLINE_ENTRY:
        return render_inline_entry(r, node, node_renderers[i].type);
    case R_INLINE_URN:
        return render_inline_urn(r, node, node_renderers[i].type);
    case R_HYPERLINK:
        return render_hyperlink(r, node, depth);
    }
    return 0;
}

int ctfl_rt_render(apr_pool_t *p, const ctfl_value *doc, const ctfl_rt_options *opts,
                   const char **html, apr_size_t *len, const char **err)
{
    rt r = { p, NULL, 0, 256, opts ? opts->max_bytes : 0, opts, NULL };
    const ctfl_value *content;
    apr_size_t i;
    int rc = 0;

    r.buf = apr_palloc(p, r.cap);
    /* if (!doc || !doc.content) return ''; a string, number or array has no content */
    content = doc && doc->type == CTFL_V_OBJECT ? ctfl_value_get(doc, "content") : NULL;
    if (content && ctfl_value_truthy(content)) {
        if (content->type != CTFL_V_ARRAY)
            rc = fail(&r, "rich text: document content is not an array");
        for (i = 0; rc == 0 && content->type == CTFL_V_ARRAY && i < content->u.arr.n; i++)
            rc = render_node(&r, content->u.arr.items[i], 1);
    }
    if (rc) {
        *html = NULL;
        if (len) *len = 0;
        if (err) *err = r.err;
        return -1;
    }
    r.buf[r.len] = '\0';
    *html = r.buf;
    if (len) *len = r.len;
    return 0;
}
