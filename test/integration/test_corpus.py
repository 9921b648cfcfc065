"""Byte-identical output for every page of ../shared/bench/corpus apart from the inserted
bootstrap: served from disk, and through mod_proxy from an origin that sends the page in
1-byte and random-size chunks (issue 2 "Tests", "The output filter").

The corpus pages carry marked elements (data-ctfl-baseline-id) whose entries no CDA knows here:
they keep their content and only gain the tracking attributes of issue 3, which the comparison
takes out after checking each marked element got them."""

import dataclasses
import re

import pytest

from httpd import CORPUS, api_directives, real_head_end
from httpd import injected_bootstrap as exact_bootstrap

TRACKING = re.compile(rb' data-ctfl-(?:entry-id|variant-index|optimization-id|sticky|empty-variant)'
                      rb'="[^"]*"')


def injected_bootstrap(r, page, pos):
    """Original bytes + the bootstrap at pos + tracking attributes on the marked elements."""
    marked = len(re.findall(rb"data-ctfl-baseline-id=", page))
    assert len(re.findall(rb"data-ctfl-variant-index=", r.body)) == marked
    stripped = dataclasses.replace(r, body=TRACKING.sub(b"", r.body))
    return exact_bootstrap(stripped, TRACKING.sub(b"", page), pos)

PAGES = sorted(p.name for p in CORPUS.glob("*.html"))


def site(apache, emulator, origin):
    for name in PAGES:
        content = (CORPUS / name).read_bytes()
        apache.write_doc(f"corpus/{name}", content)
        apache.write_doc(f"corpus-g/{name}", content)
    return api_directives(emulator) + f"""
<Location /corpus/>
    CtflOptEngine On
</Location>
<Location /corpus-g/>
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
<Location /px/>
    ProxyPass http://127.0.0.1:{origin.port}/
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
"""


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_corpus_is_present():
    assert PAGES == ["page-150k.html", "page-1m.html", "page-20k.html"]


@pytest.mark.both_mpms
@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("location", ["corpus", "corpus-g"])
def test_static_corpus_page(apache, emulator, location, name):
    page = corpus(name)
    r = apache.get(f"/{location}/{name}")
    boot = injected_bootstrap(r, page, real_head_end(page))
    if location == "corpus-g":
        assert boot.data["profile"]["id"] == r.cookies["ctfl-opt-aid"].value
    else:
        assert boot.data is None and emulator.requests() == []


# chunking, pauses: the origin's Transfer-Encoding chunked framing of the page; pauses put
# the chunks into separate TCP segments (and so separate brigades) at seeded random places.
CHUNKINGS = {
    "content-length": (None, 0),
    "one-chunk": ("whole", 0),
    "1-byte": ("1", 0),
    "1-byte-paused": ("1", 50),
    "random": ("random", 0),
    "random-paused": ("random", 50),
}
# 1 MB in 1-byte chunks takes ~10 s through mod_proxy alone: only the paused variant for it.
PROXY_CASES = [pytest.param(name, *CHUNKINGS[c], id=f"{c}-{name}")
               for name in PAGES for c in CHUNKINGS
               if not (c == "1-byte" and name == "page-1m.html")]


@pytest.mark.parametrize("name, chunking, pauses", PROXY_CASES)
def test_proxied_corpus_page(apache, origin, emulator, name, chunking, pauses):
    page = corpus(name)
    origin.route(f"/{name}", body=page, chunking=chunking, seed=len(page) + pauses,
                 pauses=pauses, pause_total=0.25)
    r = apache.get(f"/px/{name}")
    boot = injected_bootstrap(r, page, real_head_end(page))
    assert boot.data["profile"]["id"] == r.cookies["ctfl-opt-aid"].value
    assert r.header("Content-Length") in (None, str(len(r.body)))
    assert len(origin.requests_to(f"/{name}")) == 1


@pytest.mark.both_mpms
def test_proxied_random_chunks_many_seeds(apache, origin):
    """Several seeded random splittings of the mid-size page."""
    page = corpus("page-20k.html")
    for seed in range(12):
        origin.route("/seeded.html", body=page, chunking="random", seed=seed, max_chunk=64,
                     pauses=8, pause_total=0.04)
        r = apache.get("/px/seeded.html")
        injected_bootstrap(r, page, real_head_end(page))
