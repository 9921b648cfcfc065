"""Helpers of the issue 3 integration tests (marked elements personalized from Contentful
entries): CDA directives, module counters summed over every child, a second emulator serving
the shared fixtures plus test/integration/data, the spec §9.6 expectations and HTML checks.

The checks work on bytes: the served page minus the bootstrap must equal the origin's page
outside the marked elements; marked elements are compared as parsed trees (texts, attributes)
or, where the baseline stays, byte for byte after putting the start tags' attributes in a
canonical order (where the module inserts an attribute is its business)."""

import html
import html.parser
import json
import os
import re
import shutil

import pytest
from pathlib import Path

import httpd
from httpd import FIXTURES, Apache, Emulator, http_request, parse_bootstrap, wait_until

SPACE = "uelxcuo7v97l"
CDA_TOKEN = "mock-token"
DATA = Path(__file__).resolve().with_name("data")
STATUS_PATH = "/__ctflopt-status"
STATUS_LOCATION = f"""
<Location {STATUS_PATH}>
    SetHandler ctflopt-status
</Location>
"""
# Visitors (spec §9.6): consent cookie; identified = CtflOptUserId header:X-User.
USER_HEADER = "X-User"
NEW = {"Cookie": "app-personalization-consent=granted"}
IDENTIFIED = {"Cookie": "app-personalization-consent=granted", USER_HEADER: "someone"}
UNKNOWN = {}
DENIED = {"Cookie": "app-personalization-consent=denied"}


def cda_directives(emulator, ttl: int = None, cache: str = "shmcb") -> str:
    """Server-level CDA + entry cache directives pointing at an emulator's /contentful/ mount."""
    return f"""
CtflOptContentfulSpace {SPACE}
CtflOptContentfulToken {CDA_TOKEN}
CtflOptContentfulURL {emulator.base}/contentful/
CtflOptEntryCache {cache}{f" {ttl}" if ttl is not None else ""}
"""


def use_entry_cache(apache: Apache):
    """The shmcb socache provider must be loaded for the default entry cache."""
    if "socache_shmcb" not in apache.extra_modules:
        apache.extra_modules.append("socache_shmcb")


# --------------------------------------------------------------------------------------------
# counters: per process in the module, so read every child and add them up


def counters(apache: Apache, max_requests: int = 300) -> dict:
    """The ctflopt-status counters summed over every current child of apache (each status
    request answers for the process that served it; new connections spread over them)."""
    children = set(Apache._children(apache.pid()))
    assert children, "apache has no children"
    seen = {}
    for _ in range(max_requests):
        r = http_request(apache.port, STATUS_PATH)
        assert r.status == 200, r.status
        doc = json.loads(r.body)
        seen[doc["pid"]] = doc["counters"]
        if children <= set(seen):
            break
    else:
        raise AssertionError(f"status never answered from children {children - set(seen)}")
    total = {}
    for c in seen.values():
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


# --------------------------------------------------------------------------------------------
# a second emulator: shared fixtures + our synthetic entries (test/integration/data)


def start_data_emulator(workdir: Path) -> Emulator:
    """An emulator whose fixtures are ../shared/fixtures plus data/contentful/entries."""
    root = workdir / "fixtures"
    entries = root / "contentful" / "entries"
    entries.mkdir(parents=True, exist_ok=True)
    if not (root / "experience").exists():
        os.symlink(FIXTURES / "experience", root / "experience")
    if not (root / "contentful" / "space").exists():
        os.symlink(FIXTURES / "contentful" / "space", root / "contentful" / "space")
    for src in list((FIXTURES / "contentful" / "entries").glob("*.json")) + \
            list((DATA / "contentful" / "entries").glob("*.json")):
        shutil.copyfile(src, entries / src.name)
    emu = Emulator(workdir)
    saved = httpd.FIXTURES            # Emulator.start passes httpd.FIXTURES as --fixtures
    httpd.FIXTURES = root
    try:
        emu.start()
    finally:
        httpd.FIXTURES = saved
    return emu


def data_emulator_fixtures(name: str, holder: dict):
    """A test module's own emulator (start_data_emulator): started once for the module, reset
    before each test; holder["emu"] is it, for site(). Bind both results in the module."""
    @pytest.fixture(scope="module", autouse=True)
    def data_emulator(workdir):
        emu = start_data_emulator(workdir / f"{name}-emulator")
        holder["emu"] = emu
        yield emu
        emu.stop()

    @pytest.fixture(autouse=True)
    def _reset_data_emulator(data_emulator):
        data_emulator.reset()

    return data_emulator, _reset_data_emulator


def settle_cda_records(emulator: Emulator, expected: int, timeout: float = 5.0) -> list:
    """A hung or delayed CDA request is recorded when the emulator gives up: wait for it."""
    try:
        wait_until(lambda: len(emulator.requests("cda")) >= expected, timeout, 0.1, "CDA records")
    except TimeoutError:
        pass
    return emulator.requests("cda")


# --------------------------------------------------------------------------------------------
# fixture entries and the spec §9.6 table


def load_entries(*dirs) -> dict:
    out = {}
    for d in dirs:
        for f in sorted(Path(d).glob("*.json")):
            coll = json.loads(f.read_text())
            for e in coll["items"] + coll.get("includes", {}).get("Entry", []):
                out.setdefault(e["sys"]["id"], e)
    return out


ENTRIES = load_entries(FIXTURES / "contentful" / "entries", DATA / "contentful" / "entries")
MERGE_TAG_BASELINE = "1MwiFl4z7gkwqGYdvCmr8c"
MERGE_TAG_TEXT = ("This is a merge tag content entry that displays the visitor's continent "
                  "\"EU\" embedded within the text.")

# baseline -> (new visitor, identified visitor): (resolved entry, optimization id) or None
# for the baseline without a selection. Spec §9.6, nested entries L0 > L1 > L2 included.
TABLE_9_6 = {
    "4ib0hsHWoSOnCVdDkizE8d": (("4k6ZyFQnR2POY5IJLLlJRb", "2qVK4T5lnScbswoyBuGipd"),
                               ("4k6ZyFQnR2POY5IJLLlJRb", "2qVK4T5lnScbswoyBuGipd")),
    "xFwgG3oNaOcjzWiGe4vXo": (("6iyPl6vfDH5AoClf3MtYlh", "BBvRD6Uv03k69wPwB9Ou6"),
                              ("6iyPl6vfDH5AoClf3MtYlh", "BBvRD6Uv03k69wPwB9Ou6")),
    "2Z2WLOx07InSewC3LUB3eX": (("1UFf7qr4mHET3HYuYmcpEj", "2cSY1TX0nDfYe4fuIrGQ1K"),
                               ("3VBvwg9ysjjmnJRTQtIYK4", "603SW4mLeYB4AkPhdU2Jvj")),
    "5XHssysWUDECHzKLzoIsg1": (("4bmHsNUaEibELHwWCon3dt", "5kuc9KgA9q9RXnlbDxDlY"),
                               ("4bmHsNUaEibELHwWCon3dt", "5kuc9KgA9q9RXnlbDxDlY")),
    "6zqoWXyiSrf0ja7I2WGtYj": (None, ("7upHpduBBaKCWUqB27oTmX", "5us1xFZCsHyIYuzINJMeSV")),
    "7pa5bOx8Z9NmNcr7mISvD": (None, ("5daRHDDD7sj0Jm9kutAGou", "53yERfkqYXkg2B18EcdtK5")),
    "1JAU028vQ7v6nB2swl3NBo": (None, ("2KIWllNZJT205BwOSkMINg", "1FHhEY0xkcCC9R5WCmnjRr")),
    "5i4SdJXw9oDEY0vgO7CwF4": (None, ("5a8ONfBdanJtlJ39WWnH1w", "7DyidZaPB7Jr1gWKjoogg0")),
    "uaNY4YJ0HFPAX3gKXiRdX": (None, ("4hDiXxYEFrXHXcQgmdL9Uv", "6IueRX1pS3iMJncbhUQTba")),
    MERGE_TAG_BASELINE: (None, None),
}
# Document order of the marked elements of both demo pages, with their nesting depth.
DEMO_ORDER = [("4ib0hsHWoSOnCVdDkizE8d", 0), ("xFwgG3oNaOcjzWiGe4vXo", 0),
              ("2Z2WLOx07InSewC3LUB3eX", 0), ("5XHssysWUDECHzKLzoIsg1", 0),
              ("6zqoWXyiSrf0ja7I2WGtYj", 0), ("7pa5bOx8Z9NmNcr7mISvD", 0),
              ("1JAU028vQ7v6nB2swl3NBo", 0), ("5i4SdJXw9oDEY0vgO7CwF4", 1),
              ("uaNY4YJ0HFPAX3gKXiRdX", 2), (MERGE_TAG_BASELINE, 0)]


def expected_text(entry_id: str) -> str:
    if entry_id == MERGE_TAG_BASELINE:
        return MERGE_TAG_TEXT
    return ENTRIES[entry_id]["fields"]["text"]


def expected_element(baseline: str, identified: bool) -> dict:
    """What spec §9.6 and §4.6 say the element shows: attributes and its own text."""
    hit = TABLE_9_6[baseline][1 if identified else 0]
    attrs = {"data-ctfl-baseline-id": baseline,
             "data-ctfl-entry-id": hit[0] if hit else baseline,
             "data-ctfl-variant-index": "1" if hit else "0"}
    if hit:
        attrs["data-ctfl-optimization-id"] = hit[1]
    return {"baseline": baseline, "attrs": attrs, "text": expected_text(attrs["data-ctfl-entry-id"])}


# --------------------------------------------------------------------------------------------
# HTML: a small tree (html.parser) for texts and attributes


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.parent = tag, parent
        self.attrs = {k: (v if v is not None else "") for k, v in attrs}
        self.children = []      # Node or str

    def text(self, skip_marked=True) -> str:
        """Own text, whitespace-collapsed: templates and (by default) nested marked elements
        excluded."""
        parts = []

        def walk(n):
            for c in n.children:
                if isinstance(c, str):
                    parts.append(c)
                elif c.tag == "template":
                    continue
                elif skip_marked and "data-ctfl-baseline-id" in c.attrs:
                    continue
                else:
                    walk(c)
        walk(self)
        return " ".join("".join(parts).split())

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find(self, **attrs):
        for n in self.iter():
            if all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                return n
        return None

    def depth_in_marked(self) -> int:
        d, p = 0, self.parent
        while p is not None:
            if "data-ctfl-baseline-id" in p.attrs:
                d += 1
            p = p.parent
        return d

    def in_template(self) -> bool:
        p = self.parent
        while p is not None:
            if p.tag == "template":
                return True
            p = p.parent
        return False


class _TreeBuilder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#root", [], None)

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse_html(text: str) -> Node:
    b = _TreeBuilder()
    b.feed(text)
    b.close()
    return b.root


def marked_elements(root: Node) -> list:
    """Marked elements outside templates, document order: dicts baseline/depth/attrs/text."""
    out = []
    for n in root.iter():
        if "data-ctfl-baseline-id" in n.attrs and not n.in_template():
            out.append({"baseline": n.attrs["data-ctfl-baseline-id"], "depth": n.depth_in_marked(),
                        "attrs": {k: v for k, v in n.attrs.items() if k.startswith("data-ctfl-")},
                        "text": n.text(), "node": n})
    return out


def assert_demo_resolution(body: str, identified: bool):
    """Every marked element of a demo page shows the §9.6 entry, ids and text."""
    found = marked_elements(parse_html(body))
    assert [(e["baseline"], e["depth"]) for e in found] == DEMO_ORDER
    for e in found:
        exp = expected_element(e["baseline"], identified)
        assert e["attrs"] == exp["attrs"], (e["baseline"], e["attrs"])
        assert e["text"] == exp["text"], (e["baseline"], e["text"])


# --------------------------------------------------------------------------------------------
# bytes: bootstrap, marked element spans, the baseline rendering


def head_end(page: bytes) -> int:
    """Offset of the real </head> (the last one before <body; comments may mention it)."""
    body = page.find(b"<body")
    pos = page.rfind(b"</head>", 0, body if body >= 0 else len(page))
    assert pos >= 0, "test precondition: the page has a </head>"
    return pos


def strip_bootstrap(served: bytes, original: bytes):
    """(served without the bootstrap, parsed bootstrap): the bytes before the real </head>
    must be the origin's, the insertion must end right before that </head>."""
    pos = head_end(original)
    assert served[:pos] == original[:pos], "the page changed before </head>"
    end = served.find(b"</head>", pos)
    assert end > pos, "no bootstrap before </head>"
    return served[:pos] + served[end:], parse_bootstrap(served[pos:end])


TOKEN_RE = re.compile(rb"<!--.*?-->|<(script|style)\b[^>]*>.*?</\1\s*>|"
                      rb"<(/?)([A-Za-z][\w:-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S | re.I)


def element_spans(page: bytes, attr: bytes = b"data-ctfl-baseline-id") -> list:
    """(start, end) of each outermost element whose start tag has attr (same-name depth count;
    for the well-formed pages of these tests)."""
    spans, open_at, name, depth = [], None, None, 0
    for m in TOKEN_RE.finditer(page):
        if m.group(3) is None:
            continue
        closing, tag, rest = m.group(2) == b"/", m.group(3).lower(), m.group(4)
        if open_at is None:
            if not closing and re.search(rb"\s" + attr + rb"\s*=", rest):
                if tag.decode() in VOID or rest.rstrip().endswith(b"/"):
                    spans.append((m.start(), m.end()))
                else:
                    open_at, name, depth = m.start(), tag, 1
            continue
        if tag == name:
            depth += -1 if closing else 1
            if depth == 0:
                spans.append((open_at, m.end()))
                open_at = None
    assert open_at is None, f"unclosed marked element at {open_at}"
    return spans


def outside(page: bytes, spans) -> list:
    out, pos = [], 0
    for s, e in spans:
        out.append(page[pos:s])
        pos = e
    out.append(page[pos:])
    return out


def assert_same_outside(served: bytes, original: bytes):
    """Outside the outermost marked elements, the served page is the origin's, byte for byte."""
    a, b = element_spans(served), element_spans(original)
    assert len(a) == len(b), f"{len(a)} marked elements served, {len(b)} in the origin's page"
    assert outside(served, a) == outside(original, b)


START_TAG_RE = re.compile(r"<([A-Za-z][\w:-]*)((?:\s+[^\s=>/\"']+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|"
                          r"[^\s>\"']+))?)*)\s*(/?)>")
ATTR_RE = re.compile(r"([^\s=>/\"']+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?")


def _attrs(text: str) -> list:
    return [(m.group(1).lower(), next((g for g in m.groups()[1:] if g is not None), ""))
            for m in ATTR_RE.finditer(text)]


def canonical(page: bytes) -> str:
    """The page (latin-1 view of the bytes) with every start tag carrying a data-ctfl-
    attribute rewritten with its attributes sorted, double-quoted, single-spaced."""
    def canon(m):
        if "data-ctfl-" not in m.group(2):
            return m.group(0)
        attrs = sorted(_attrs(m.group(2)))
        return "<" + m.group(1).lower() + "".join(f' {k}="{v}"' for k, v in attrs) + ">"
    return START_TAG_RE.sub(canon, page.decode("latin-1"))


def remove_variant_templates(page: bytes) -> bytes:
    """The page without its <template data-ctfl-variant-id> elements (nested ones with them)."""
    out, pos = [], 0
    opener = re.compile(rb"<template\b[^>]*\bdata-ctfl-variant-id\s*=", re.I)
    while True:
        m = opener.search(page, pos)
        if not m:
            out.append(page[pos:])
            return b"".join(out)
        out.append(page[pos:m.start()])
        depth, i = 0, m.start()
        for t in re.finditer(rb"<(/?)template\b[^>]*>", page[m.start():], re.I):
            depth += -1 if t.group(1) else 1
            if depth == 0:
                i = m.start() + t.end()
                break
        else:
            raise AssertionError("unclosed variant template")
        pos = i


def stamp_baselines(page: bytes) -> bytes:
    """Every marked start tag with the baseline attributes of spec §4.6 (no selection)."""
    def stamp(m):
        tag = m.group(0)
        if b"data-ctfl-baseline-id" not in tag:
            return tag
        bid = re.search(rb'data-ctfl-baseline-id="([^"]*)"', tag).group(1)
        end = len(tag) - (2 if tag.endswith(b"/>") else 1)
        return tag[:end] + b' data-ctfl-entry-id="' + bid + b'" data-ctfl-variant-index="0"' + tag[end:]
    return re.sub(rb"<[A-Za-z][\w:-]*\b[^>]*>", stamp, page)


def baseline_rendering(original: bytes) -> bytes:
    """What the module must make of origin bytes when every element keeps its baseline:
    variant templates removed, attributes stamped, every other byte the same."""
    return stamp_baselines(remove_variant_templates(original))


def assert_canonical_equal(actual: bytes, expected: bytes, what: str = "page"):
    """actual == expected once the marked start tags are canonical; a short report if not."""
    a, b = canonical(actual), canonical(expected)
    if a == b:
        return
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    raise AssertionError(f"{what}: first difference at offset {i} (canonical form):\n"
                         f"  actual:   {a[max(0, i - 100):i + 100]!r}\n"
                         f"  expected: {b[max(0, i - 100):i + 100]!r}")


def assert_baseline_rendering(served: bytes, original: bytes, what: str = "page"):
    """Every marked element kept its baseline: the origin's bytes, templates removed,
    attributes stamped."""
    assert_canonical_equal(served, baseline_rendering(original), what)


def no_variant_templates(page: bytes) -> bool:
    return re.search(rb"<template\b[^>]*data-ctfl-variant-id", page, re.I) is None


def unescape_text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", fragment)).split())
