/* ctfl_scan — a byte-level HTML5 tokenizer subset (no httpd headers).
 *
 * Finds the start and end tags of a byte stream the way a browser's tokenizer
 * does (WHATWG "tokenization"), without building anything: text, tags with the
 * three attribute-value forms, comments (incl. <!-->, <!--->, --!>), doctype,
 * <? ?>, <!...> and (outside SVG/MathML) <![CDATA[ as bogus comments, raw text
 * (script style xmp iframe noembed noframes noscript), RCDATA (textarea title),
 * plaintext, the script-data-escaped states, and CDATA sections in SVG/MathML.
 *
 * All state lives in struct ctfl_scan (no allocation), so the tags found do not
 * depend on how the stream is split into chunks. Offsets are stream offsets:
 * bytes counted from the start of the stream. */
#ifndef CTFL_SCAN_H
#define CTFL_SCAN_H

#include <stdint.h>
#include <string.h>
#include <apr.h>

#define CTFL_TAG_NAME_MAX 15        /* longer names are reported as overflowed */
#define CTFL_ATTR_NAME_MAX 24

enum { CTFL_TAG_START = 1, CTFL_TAG_END = 2 };

/* Attribute names the scanner notices on a tag (ctfl_tag.attrs bits). */
enum {
    CTFL_ATTR_BASELINE_ID = 1u << 0,  /* data-ctfl-baseline-id */
    CTFL_ATTR_ENTRY_ID    = 1u << 1,  /* data-ctfl-entry-id */
    CTFL_ATTR_FONT_BREAK  = 1u << 2,  /* color, face or size (a <font> leaving SVG/MathML) */
    CTFL_ATTR_FLAG        = 1u << 3,  /* data-ctfl-flag */
    CTFL_ATTR_FLAG_IF     = 1u << 4,  /* data-ctfl-flag-if */
    CTFL_ATTR_FIELD       = 1u << 5,  /* data-ctfl-field */
    CTFL_ATTR_FIELD_ATTR  = 1u << 6,  /* data-ctfl-field-attr */
    CTFL_ATTR_VARIANT_ID  = 1u << 7   /* data-ctfl-variant-id */
};
/* The seven data-ctfl-* attributes among them (all but CTFL_ATTR_FONT_BREAK). */
#define CTFL_ATTRS_DATA_CTFL (CTFL_ATTR_BASELINE_ID | CTFL_ATTR_ENTRY_ID | CTFL_ATTR_FLAG \
                              | CTFL_ATTR_FLAG_IF | CTFL_ATTR_FIELD | CTFL_ATTR_FIELD_ATTR \
                              | CTFL_ATTR_VARIANT_ID)

typedef struct {
    int kind;                         /* CTFL_TAG_START or CTFL_TAG_END */
    char name[CTFL_TAG_NAME_MAX + 1]; /* ASCII-lowercased, NUL-padded to the end */
    unsigned name_len;
    int name_overflow;                /* the name was longer than CTFL_TAG_NAME_MAX */
    uint32_t name_hash;               /* ctfl_scan_name_hash() of the whole lowercased name */
    int self_closing;                 /* ended with "/>" */
    int foreign;                      /* an SVG/MathML element (start tag: after the
                                         breakout rules; end tag: inside SVG/MathML) */
    unsigned attrs;                   /* CTFL_ATTR_* seen on this tag */
    uint64_t lt;                      /* stream offset of the '<' */
    uint64_t end;                     /* stream offset just after the '>' */
} ctfl_tag;

typedef struct {
    uint64_t pos;                     /* stream offset of the next byte to scan */
    uint64_t tag_lt;                  /* '<' of the tag (or possible tag) in progress */
    ctfl_tag tag;                     /* the tag in progress / last one returned */
    unsigned char state;
    unsigned char text_state;         /* raw text state to resume when "</x" is not the end tag */
    unsigned char end_match;          /* bytes of end_name matched after "</" */
    unsigned char md;                 /* bytes matched after "<!" ("--" or "[CDATA[") */
    unsigned char attr_len;
    unsigned char attr_overflow;
    char attr[CTFL_ATTR_NAME_MAX];    /* attribute name in progress, lowercased */
    const char *end_name;             /* name that ends the current raw text / RCDATA */
    unsigned end_name_len;
    unsigned foreign_depth;           /* open <svg>/<math> elements (0: HTML content) */
} ctfl_scan;

void ctfl_scan_init(ctfl_scan *sc);

/* Scans data[*off..len), the bytes that follow everything scanned so far.
 * Returns the next complete tag (valid until the next call) with *off just after
 * its '>', or NULL with *off == len when the chunk holds no further complete tag. */
const ctfl_tag *ctfl_scan_next(ctfl_scan *sc, const char *data, apr_size_t len,
                               apr_size_t *off);

/* Non-zero while the bytes from ctfl_scan_tag_start() on may still turn out to be
 * a tag (an unfinished tag at the end of a chunk). */
int ctfl_scan_in_tag(const ctfl_scan *sc);
uint64_t ctfl_scan_tag_start(const ctfl_scan *sc);
/* Non-zero when that unfinished tag is certainly a tag (past "<name"): it will
 * complete, unless the input ends first. */
int ctfl_scan_in_definite_tag(const ctfl_scan *sc);

/* The CTFL_ATTR_* bit of the attribute name s[0, n) when it is one of the
 * seven data-ctfl-* names (any ASCII case), else 0. */
unsigned ctfl_scan_data_ctfl_attr(const char *s, apr_size_t n);

/* Non-zero when t is an HTML start tag after which the tokenizer reads raw
 * text, RCDATA, script data or plaintext (script, style, textarea, ...). */
int ctfl_scan_enters_text(const ctfl_tag *t);

/* t's name is exactly the lowercase name[0, n). Compare lengths, never with
 * strcmp: a name may hold NUL bytes ("head\0x" is not "head"). */
static inline int ctfl_tag_name_eq(const ctfl_tag *t, const char *name, size_t n)
{
    return !t->name_overflow && t->name_len == n && memcmp(t->name, name, n) == 0;
}
#define CTFL_TAG_NAME_IS(t, lit) ctfl_tag_name_eq((t), lit, sizeof(lit) - 1)

/* FNV-1a of a lowercased name: equal names, of any length, hash equal. */
#define CTFL_NAME_HASH_INIT 2166136261u
static inline uint32_t ctfl_scan_hash_step(uint32_t h, unsigned char lower_c)
{
    return (h ^ lower_c) * 16777619u;
}
uint32_t ctfl_scan_name_hash(const char *lower_name, apr_size_t len);

/* Name of the current tokenizer state (for tests and debugging). */
const char *ctfl_scan_state_name(const ctfl_scan *sc);

#endif
