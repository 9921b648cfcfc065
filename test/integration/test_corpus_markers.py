"""Issue 3 on ../shared/bench/corpus with the CDA and the entry cache configured (test_corpus.py
covers the pages without CDA configuration): a page whose markers are neutralised stays
byte-identical apart from the bootstrap and asks the CDA nothing, also for a consenting visitor
and through a 1-byte-chunked origin; the marked pages (entries unknown to the CDA: every
element keeps its baseline) come back with only the tracking attributes stamped on each
marked element (spec §4.6), every other byte the origin's. "closed-p": the same pages with the
<p> of each data-ctfl-field="body" closed explicitly (the pages as shipped end it implicitly at
the </div>, which is valid HTML)."""

import re
import socket
import struct
import uuid

import pytest

from httpd import CORPUS, api_directives, injected_bootstrap, real_head_end
from it_personalize import (NEW, UNKNOWN, assert_canonical_equal, cda_directives,
                            stamp_baselines, strip_bootstrap, use_entry_cache)

PAGES = sorted(p.name for p in CORPUS.glob("*.html"))


def unmarked(page: bytes) -> bytes:
    """Same length, no data-ctfl-* attribute left."""
    out = page.replace(b"data-ctfl-", b"data-cxxx-")
    assert b"data-ctfl" not in out
    return out


def closed_p(page: bytes) -> bytes:
    out, n = re.subn(rb'(data-ctfl-field="body"><p>(?:(?!</div>).)*?)</div>', rb"\1</p></div>",
                     page, flags=re.S)
    assert n == page.count(b'data-ctfl-field="body"')
    return out


MARKUP = {"as-shipped": lambda page: page, "closed-p": closed_p}


def ten_mb(page: bytes) -> bytes:
    """The 1 MB page with its body repeated to about 10 MB (more than the socket buffers)."""
    start = page.index(b">", page.index(b"<body")) + 1
    end = page.rindex(b"</body>")
    return page[:start] + page[start:end] * 10 + page[end:]


def site(apache, emulator, origin):
    use_entry_cache(apache)
    apache.write_doc("marked/page-10m.html", ten_mb((CORPUS / "page-1m.html").read_bytes()))
    for name in PAGES:
        content = (CORPUS / name).read_bytes()
        apache.write_doc(f"marked/{name}", content)
        apache.write_doc(f"marked/closed-p-{name}", closed_p(content))
        apache.write_doc(f"unmarked/{name}", unmarked(content))
    return api_directives(emulator) + cda_directives(emulator) + f"""
<LocationMatch "^/(marked|unmarked|px)/">
    CtflOptEngine On
    CtflOptMaxElements 100000
</LocationMatch>
<Location /px/>
    ProxyPass http://127.0.0.1:{origin.port}/
</Location>
"""


@pytest.mark.parametrize("visitor", ["unknown", "granted"])
@pytest.mark.parametrize("name", PAGES)
def test_unmarked_corpus_page_is_byte_identical(apache, emulator, name, visitor):
    page = unmarked((CORPUS / name).read_bytes())
    r = apache.get(f"/unmarked/{name}", headers=NEW if visitor == "granted" else UNKNOWN)
    boot = injected_bootstrap(r, page, real_head_end(page))
    assert (boot.data is not None) == (visitor == "granted")
    assert emulator.requests("cda") == []


def test_unmarked_corpus_page_proxied_in_1_byte_chunks(apache, origin, emulator):
    page = unmarked((CORPUS / "page-20k.html").read_bytes())
    origin.route("/page-20k.html", body=page, chunking="1")
    r = apache.get("/px/page-20k.html", headers=NEW)
    injected_bootstrap(r, page, real_head_end(page))
    assert emulator.requests("cda") == []


@pytest.mark.both_mpms
@pytest.mark.parametrize("markup", MARKUP)
@pytest.mark.parametrize("visitor", ["unknown", "granted"])
@pytest.mark.parametrize("name", PAGES)
def test_marked_corpus_page_gets_attributes_only(apache, emulator, name, visitor, markup):
    page = MARKUP[markup]((CORPUS / name).read_bytes())
    path = f"/marked/{name}" if markup == "as-shipped" else f"/marked/closed-p-{name}"
    r = apache.get(path, headers=NEW if visitor == "granted" else UNKNOWN)
    assert r.status == 200
    body, _ = strip_bootstrap(r.body, page)
    assert_canonical_equal(body, stamp_baselines(page), name)


@pytest.mark.both_mpms
def test_client_leaving_mid_page_is_not_an_error(apache, emulator):
    """A visitor closing the tab mid-download is routine: no error-level line (the log
    discipline fixture fails the test on any), like Apache's own filters."""
    test_id = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", apache.port), timeout=10) as s:
        s.sendall(b"GET /marked/page-10m.html HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Cookie: app-personalization-consent=granted\r\nX-Test-Id: "
                  + test_id.encode() + b"\r\nConnection: close\r\n\r\n")
        got = b""
        while len(got) < 65536:
            chunk = s.recv(65536)
            assert chunk, "the server closed first"
            got += chunk
        assert got.startswith(b"HTTP/1.1 200")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # RST
    apache.access_entry(test_id, timeout=30)
