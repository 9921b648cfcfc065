"""Issue 4 "Streaming and size": a slow chunked origin's head (with the bootstrap) reaches the
client before the origin has sent the rest, also through the INFLATE -> CTFLOPT -> DEFLATE
chain; a 10 MB page comes out byte-identical (plus the bootstrap) and does not make the serving
child's memory grow with its size.

Memory: one child (prefork with one server, or one event process), its peak RSS (VmHWM, reset
through /proc/<pid>/clear_refs) while serving a 100 KB page and then a 10 MB page. The numbers
are printed (`pytest -s`) and only "not proportional to the size" is asserted: less than 5 MB
more for the 10 MB page than for the 100 KB page."""

import time
import zlib

import pytest

from httpd import api_directives, http_request, parse_bootstrap, split_injection
from prodkit import (MPM_DEFAULTS, ProdApache, Timeline, big_page_bytes,
                     new_root, proc_status_kb, read_stream, reset_peak_rss, serve, slow_parts,
                     split_http, streamed_body)

HEAD_PART = (b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             b"<title>slow</title>\n</head>\n<body>\n<p>first part, sent at once</p>\n")
REST_PART = b"<p>second part, sent two seconds later</p>\n</body>\n</html>\n"
SLOW_PAGE = HEAD_PART + REST_PART
PAUSE_S = 2.0
SMALL, BIG = 100 * 1024, 10 * 1024 * 1024
GROWTH_LIMIT_KB = 5 * 1024




def site(emulator, scripted):
    engine = "CtflOptEngine On\n    CtflOptConsentDefault granted"
    return api_directives(emulator) + f"""
<Location /px/>
    ProxyPass {scripted.base}/app/
    {engine}
</Location>
<Location /chain/>
    ProxyPass {scripted.base}/app/
    {engine}
    SetOutputFilter INFLATE;DEFLATE
</Location>
<Location /local/>
    {engine}
</Location>
<Location /local-off/>
    CtflOptEngine Off
</Location>
# Heap, not page-cache mappings: without this, apache maps local files in 4 MB pieces, which
# count in RSS (file-backed) with or without the module.
EnableMMAP Off
"""


@pytest.fixture(scope="module", params=["single-prefork", "single-event"])
def apache(request, workdir, emulator, scripted, module_so):
    mpm = request.param.split("-")[1]
    a = ProdApache(new_root(workdir, f"streaming-{request.param}"), mpm, module_so,
                   mpm_block=MPM_DEFAULTS[request.param])
    a.label = request.param
    yield from serve(a, site(emulator, scripted))


@pytest.fixture(autouse=True)
def _one_prefork_child_is_often_busy(apache, expect_log):
    # One prefork child serving a 2 s response: the parent notes it cannot start another.
    if apache.mpm == "prefork":
        expect_log("AH00161", required=False)


class Dechunker:
    """Incremental Transfer-Encoding: chunked decoder (+ optional gzip) over raw arrivals."""

    def __init__(self, gzipped: bool):
        self.buf = b""
        self.head_done = False
        self.body = b""
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        if not self.head_done:
            if b"\r\n\r\n" not in self.buf:
                return self.body
            self.buf = self.buf.split(b"\r\n\r\n", 1)[1]
            self.head_done = True
        for _ in range(100000):
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                break
            n = int(self.buf[:eol].split(b";")[0] or b"0", 16)
            if len(self.buf) < eol + 2 + n + 2:
                break
            chunk = self.buf[eol + 2:eol + 2 + n]
            self.buf = self.buf[eol + 2 + n + 2:]
            self.body += self.inflate.decompress(chunk) if self.inflate else chunk
            if n == 0:
                break
        return self.body


@pytest.mark.parametrize("location, coding, accept", [
    ("px", None, None),
    ("chain", "gzip", None),
    ("chain", "gzip", "gzip"),
])
def test_slow_origin_head_arrives_before_the_origin_finishes(apache, scripted, emulator,
                                                            location, coding, accept):
    timeline = Timeline()
    scripted.route("/app/slow.html", slow_parts([(HEAD_PART, PAUSE_S), (REST_PART, 0)],
                                                timeline, coding=coding))
    headers = {"Accept-Encoding": accept} if accept else {}
    start = time.monotonic()
    arrivals = read_stream(apache.port, f"/{location}/slow.html", headers=headers)
    raw = b"".join(d for _, d in arrivals)
    status, hdrs, _ = split_http(raw)
    assert status == 200
    assert hdrs.get("content-encoding") == (accept if accept else None)
    dec = Dechunker(gzipped=bool(accept))
    first_seen = None
    for t, data in arrivals:
        body = dec.feed(data)
        if first_seen is None and b"__OPTIMIZATION_CONFIG__" in body and b"first part" in body:
            first_seen = t
    boot = parse_bootstrap(split_injection(SLOW_PAGE, dec.body, SLOW_PAGE.index(b"</head>")))
    assert boot.data is not None
    assert len(timeline.sent) == 2, "the origin did not send both parts"
    assert first_seen is not None
    print(f"\n[{apache.label} {location} {accept}] head+bootstrap after "
          f"{first_seen - start:.3f}s, origin sent the rest after {timeline.sent[1] - start:.3f}s")
    assert first_seen < timeline.sent[1], (
        f"the first part reached the client {first_seen - start:.2f}s after the request, "
        f"not before the origin sent the rest ({timeline.sent[1] - start:.2f}s)")


def the_child(apache) -> int:
    kids = apache.children()
    assert len(kids) == 1, f"expected one child, found {kids}"
    return kids[0]


def peak_rss_while(apache, child, fetch, times=1):
    reset_peak_rss(child)
    for _ in range(times):
        fetch()
    return proc_status_kb(child, "VmHWM")


def growth_kb(apache, child, prefix, small, big, label):
    """Peak RSS of the child for the 10 MB page minus that for the 100 KB page."""
    def fetch(name, page):
        def go():
            r = http_request(apache.port, f"{prefix}/{name}.html", timeout=120)
            assert r.status == 200
            if prefix == "/local-off":
                assert r.body == page
            else:
                raw = split_injection(page, r.body, page.index(b"</head>"))
                assert parse_bootstrap(raw).data is not None
        return go

    for _ in range(3):                      # warm-up with the small page only
        fetch("small", small)()
    rss_before = proc_status_kb(child, "VmRSS")
    hwm_small = peak_rss_while(apache, child, fetch("small", small), times=3)
    hwm_big = peak_rss_while(apache, child, fetch("big", big))
    rss_after = proc_status_kb(child, "VmRSS")
    hwm_big2 = peak_rss_while(apache, child, fetch("big", big))
    assert the_child(apache) == child, "the child changed during the measurement"
    print(f"\n[{apache.label} {label}] child {child}: RSS before {rss_before} kB, peak 100 KB "
          f"page {hwm_small} kB, peak 10 MB page {hwm_big} kB (again: {hwm_big2} kB), "
          f"RSS after {rss_after} kB, growth {hwm_big - hwm_small} kB")
    return hwm_big - hwm_small


def test_big_proxied_page_streams_with_flat_memory(apache, scripted, emulator):
    small, big = big_page_bytes(SMALL), big_page_bytes(BIG)
    scripted.route("/app/small.html", streamed_body(small))
    scripted.route("/app/big.html", streamed_body(big))
    growth = growth_kb(apache, the_child(apache), "/px", small, big, "proxied")
    assert growth < GROWTH_LIMIT_KB, (
        f"serving a 10 MB page needed {growth} kB more than a 100 KB page")


def test_big_local_file_streams_with_flat_memory(apache, emulator):
    """A local file reaches the filter as one FILE bucket in one brigade: the filter must pass
    output on as it goes, not after reading the whole brigade. Compared with the same file
    served with the engine off."""
    small, big = big_page_bytes(SMALL), big_page_bytes(BIG)
    for d in ("local", "local-off"):
        apache.write_doc(f"{d}/small.html", small)
        apache.write_doc(f"{d}/big.html", big)
    apache.make_readable()
    child = the_child(apache)
    without = growth_kb(apache, child, "/local-off", small, big, "local, engine off")
    growth = growth_kb(apache, child, "/local", small, big, "local, engine on")
    assert growth - without < GROWTH_LIMIT_KB, (
        f"with the module a 10 MB file needed {growth} kB more than a 100 KB file "
        f"(without the module: {without} kB)")
