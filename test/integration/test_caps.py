"""Issue 3 "The rewriter" caps: an element larger than CtflOptMaxElementBytes, the marked
elements beyond CtflOptMaxElements and an element still open at the end of the page pass
through byte for byte, with one CTFLOPT0203 line per page and the caps_hit counter; the other
elements of the page are still personalized. Static files and a 1-byte-chunked origin.

apache is restarted before each test (fresh per-process log limiter and counters)."""

import pytest

from httpd import api_directives
from it_personalize import (NEW, STATUS_LOCATION, cda_directives, counters, element_spans,
                            parse_html, strip_bootstrap, use_entry_cache)

MAX_BYTES = 2048
MAX_ELEMENTS = 3
VARIANT_EUROPE = "This is a variant content entry for visitors from Europe."


def element(eid: str, filler: int = 0) -> str:
    pad = "".join(f"<span>filler {i:05d}</span>\n" for i in range(filler))
    return (f'<div id="{eid}" data-ctfl-baseline-id="4ib0hsHWoSOnCVdDkizE8d">\n'
            f"  <p>This is a baseline content entry for visitors from any continent.</p>\n{pad}"
            f'  <template data-ctfl-variant-id="4k6ZyFQnR2POY5IJLLlJRb"><p>{VARIANT_EUROPE}</p>'
            f"</template>\n</div>\n")


def page(body: str, tail: str = "</body>\n</html>\n") -> bytes:
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>caps</title></head>\n'
            f"<body>\n{body}{tail}").encode()


BIG = page(element("small-1") + element("big", filler=200) + element("small-2"))
MANY = page("".join(element(f"e{i}") for i in range(5)))
UNCLOSED = page(element("closed") + '<div id="open" data-ctfl-baseline-id="4ib0hsHWoSOnCVdDkizE8d">'
                "\n  <p>the origin stopped here", tail="")
assert len(element("big", filler=200)) > MAX_BYTES > len(element("small-1"))


def site_config(emulator, origin):
    return api_directives(emulator) + cda_directives(emulator) + f"""
<LocationMatch "^/(caps|px)/">
    CtflOptEngine On
    CtflOptMaxElementBytes {MAX_BYTES}
    CtflOptMaxElements {MAX_ELEMENTS}
</LocationMatch>
<Location /px/>
    ProxyPass http://127.0.0.1:{origin.port}/
</Location>
""" + STATUS_LOCATION


def site(apache, emulator, origin):
    use_entry_cache(apache)
    for name, content in (("big", BIG), ("many", MANY), ("unclosed", UNCLOSED)):
        apache.write_doc(f"caps/{name}.html", content)
    return site_config(emulator, origin)


@pytest.fixture
def fresh(apache, emulator, origin):
    apache.restart(site_config(emulator, origin))
    return apache


SOURCES = ["static", "proxy-1-byte"]


def fetch(apache, origin, source, name, content):
    if source == "static":
        return apache.get(f"/caps/{name}.html", headers=NEW)
    origin.route(f"/{name}.html", body=content, chunking="1")
    return apache.get(f"/px/{name}.html", headers=NEW)


def personalized(node) -> bool:
    return (node.attrs.get("data-ctfl-entry-id") == "4k6ZyFQnR2POY5IJLLlJRb"
            and node.text() == VARIANT_EUROPE)


def split(served: bytes, original: bytes):
    body, boot = strip_bootstrap(served, original)
    assert boot.data is not None
    return body, parse_html(body.decode("utf-8"))


@pytest.mark.both_mpms
@pytest.mark.parametrize("source", SOURCES)
def test_element_over_max_element_bytes_passes_unchanged(fresh, origin, expect_log, source):
    expect_log(r"CTFLOPT0203: .*\b1 over CtflOptMaxElementBytes, 0 still open at the end of "
               r"the page, 0 malformed, 0 over CtflOptMaxElements")
    r = fetch(fresh, origin, source, "big", BIG)
    body, root = split(r.body, BIG)
    assert personalized(root.find(id="small-1")) and personalized(root.find(id="small-2"))
    (s, e), (os_, oe) = element_spans(body)[1], element_spans(BIG)[1]
    assert body[s:e] == BIG[os_:oe], "the element over the cap changed"
    c = counters(fresh)
    assert c["caps_hit"] == 1 and c["elements_rewritten"] == 2, c


@pytest.mark.parametrize("source", SOURCES)
def test_elements_over_max_elements_pass_unchanged(fresh, origin, expect_log, source):
    expect_log(r"CTFLOPT0203: .*\b0 over CtflOptMaxElementBytes, 0 still open at the end of "
               r"the page, 0 malformed, 2 over CtflOptMaxElements")
    r = fetch(fresh, origin, source, "many", MANY)
    body, root = split(r.body, MANY)
    for i in range(MAX_ELEMENTS):
        assert personalized(root.find(id=f"e{i}")), i
    spans, originals = element_spans(body), element_spans(MANY)
    for (s, e), (os_, oe) in list(zip(spans, originals))[MAX_ELEMENTS:]:
        assert body[s:e] == MANY[os_:oe]
    c = counters(fresh)
    assert c["caps_hit"] == 2 and c["elements_rewritten"] == MAX_ELEMENTS, c


@pytest.mark.parametrize("source", SOURCES)
def test_element_open_at_the_end_of_the_page_passes_unchanged(fresh, origin, expect_log, source):
    expect_log(r"CTFLOPT0203: .*\b0 over CtflOptMaxElementBytes, 1 still open at the end of "
               r"the page")
    r = fetch(fresh, origin, source, "unclosed", UNCLOSED)
    body, boot = strip_bootstrap(r.body, UNCLOSED)
    assert boot.data is not None
    cut = UNCLOSED.index(b'<div id="open"')
    assert body.endswith(UNCLOSED[cut:]), "the unclosed element changed"
    root = parse_html(body[:len(body) - (len(UNCLOSED) - cut)].decode("utf-8"))
    assert personalized(root.find(id="closed"))
    c = counters(fresh)
    assert c["caps_hit"] == 1 and c["elements_rewritten"] == 1, c
