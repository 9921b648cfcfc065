"""Helpers for the issue-4 tests (test_production.py, test_cache.py, test_mpms.py,
test_streaming.py, test_breaker.py, test_load.py): an origin whose routes are functions
(conditional requests, content negotiation, timed streaming, multi-megabyte bodies), apache
servers with other MPM settings or extra modules that the harness' error-log discipline still
covers, process memory readers, and the status endpoints.

Everything listens on 127.0.0.1; every process started here is stopped by its pid."""

import email.utils
import gzip
import http.client
import json
import os
import re
import socket
import tempfile
import time
import zlib
from pathlib import Path

import pytest

from conftest import RUNNING
from httpd import Apache, ErrorLogChecker, RecordingOrigin, http_request, wait_until

# --------------------------------------------------------------------------------------------
# An origin whose routes are functions


class ScriptedOrigin(RecordingOrigin):
    """route(path, fn) where fn(handler) writes the whole response. Every request is recorded
    (method, path, headers, time)."""

    NAME = "scripted-origin"

    def serve(self, h):
        with self._lock:
            self.records.append({"method": h.command, "path": h.path,
                                 "headers": {k.lower(): v for k, v in h.headers.items()},
                                 "time": time.monotonic()})
            fn = self.routes.get(h.path.split("?")[0])
        if fn is None:
            send_simple(h, 404, b"not found\n", "text/plain")
            return
        fn(h)

    def route(self, path: str, fn):
        with self._lock:
            self.routes[path] = fn


def send_simple(h, status, body, ctype, headers=()):
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def representation(body: bytes, etag: str = '"v1"', mtime: float = None, gzip_ok: bool = True,
                   cache_control: str = None, ctype: str = "text/html; charset=utf-8",
                   vary: bool = True):
    """A route behaving like a real static origin: strong ETag and Last-Modified, 304 for
    If-None-Match / If-Modified-Since, 206 for a single `bytes=a-b` Range (honouring
    If-Range), gzip when the request accepts it (Vary: Accept-Encoding), HEAD."""
    mtime = mtime or (time.time() - 86400)
    gz = gzip.compress(body, mtime=0)

    def serve(h):
        hdr = {k.lower(): v for k, v in h.headers.items()}
        coding = "gzip" if gzip_ok and "gzip" in hdr.get("accept-encoding", "") else None
        data = gz if coding else body
        tag = etag if not coding else etag[:-1] + '-gz"'
        common = [("ETag", tag), ("Last-Modified", http_date(mtime)), ("Accept-Ranges", "bytes")]
        if vary:
            common.append(("Vary", "Accept-Encoding"))
        if cache_control:
            common.append(("Cache-Control", cache_control))
        inm, ims = hdr.get("if-none-match"), hdr.get("if-modified-since")
        if (inm and tag in [t.strip() for t in inm.split(",")]) or \
                (not inm and ims and email.utils.parsedate_to_datetime(ims).timestamp() >= int(mtime)):
            h.send_response(304)
            for k, v in common:
                h.send_header(k, v)
            h.end_headers()
            return
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", hdr.get("range", ""))
        if rng and hdr.get("if-range") not in (None, tag):
            rng = None
        if rng:
            first = int(rng.group(1))
            last = min(int(rng.group(2) or len(data) - 1), len(data) - 1)
            part = data[first:last + 1]
            h.send_response(206)
            h.send_header("Content-Type", ctype)
            if coding:
                h.send_header("Content-Encoding", coding)
            h.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
            for k, v in common:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(part)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(part)
            return
        send_simple(h, 200, data, ctype, common + ([("Content-Encoding", coding)] if coding else []))
    return serve


class Timeline:
    """When the origin sent each part of a streamed response (time.monotonic())."""

    def __init__(self):
        self.sent = []


def slow_parts(parts, timeline: Timeline, ctype="text/html; charset=utf-8", coding=None):
    """A chunked response written part by part: parts = [(bytes, pause_after_seconds)].
    With coding="gzip" the parts are one gzip stream, sync-flushed after every part."""
    def serve(h):
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        if coding:
            h.send_header("Content-Encoding", coding)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        sock = h.connection
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        comp = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if coding else None
        for i, (data, pause) in enumerate(parts):
            if comp:
                data = comp.compress(data) + comp.flush(
                    zlib.Z_FINISH if i == len(parts) - 1 else zlib.Z_SYNC_FLUSH)
            sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
            timeline.sent.append(time.monotonic())
            time.sleep(min(pause, 10.0))
        sock.sendall(b"0\r\n\r\n")
    return serve


def big_page_bytes(size: int) -> bytes:
    """An HTML page of about `size` bytes: a real head, then many ordinary paragraphs."""
    head = (b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            b"<title>big</title>\n</head>\n<body>\n")
    tail = b"</body>\n</html>\n"
    para = (b'<p class="row">Lorem <a href="/x?a=1&amp;b=2">ipsum</a> dolor sit amet, '
            b'<em>consectetur</em> adipiscing elit &mdash; <span data-x="1">sed do</span>.</p>\n')
    n = max(0, (size - len(head) - len(tail)) // len(para))
    return head + para * n + tail


def streamed_body(body: bytes, ctype="text/html; charset=utf-8", piece=65536):
    """Chunked response in `piece`-byte chunks (the origin never sends a Content-Length)."""
    def serve(h):
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if h.command == "HEAD":
            return
        for off in range(0, len(body), piece):
            part = body[off:off + piece]
            h.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")
    return serve


# --------------------------------------------------------------------------------------------
# Apache with other MPM settings and extra modules

# The MPM blocks the harness writes (httpd.py Apache.main_config), replaced when asked.
_HARNESS_MPM = {
    "event": ("StartServers 2\nServerLimit 4\nThreadsPerChild 10\nMinSpareThreads 5\n"
              "MaxSpareThreads 40\nMaxRequestWorkers 40\n"),
    "other": ("StartServers 3\nMinSpareServers 2\nMaxSpareServers 6\nServerLimit 20\n"
              "MaxRequestWorkers 20\n"),
}

MPM_DEFAULTS = {
    "worker": ("StartServers 2\nServerLimit 4\nThreadsPerChild 10\nMinSpareThreads 5\n"
               "MaxSpareThreads 40\nMaxRequestWorkers 40\n"),
    # One child, so its memory and counters are the whole server's.
    "single-prefork": ("StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nServerLimit 1\n"
                       "MaxRequestWorkers 1\n"),
    "single-event": ("StartServers 1\nServerLimit 1\nThreadsPerChild 8\nMinSpareThreads 1\n"
                     "MaxSpareThreads 8\nMaxRequestWorkers 8\n"),
}


class ProdApache(Apache):
    """The harness Apache with a chosen MPM block (worker, a single child...)."""

    def __init__(self, root: Path, mpm: str, module_so, mpm_block: str = None, modules=()):
        super().__init__(root, mpm, module_so)
        self.mpm_block = mpm_block if mpm_block is not None else MPM_DEFAULTS.get(mpm)
        self.extra_modules = list(modules)

    def main_config(self) -> str:
        text = super().main_config()
        if self.mpm_block is None:
            return text
        old = _HARNESS_MPM["event" if self.mpm == "event" else "other"]
        assert old in text, "the harness' MPM block changed: update prodkit._HARNESS_MPM"
        return text.replace(old, self.mpm_block)

    def children(self) -> list:
        pid = self.pid()
        return sorted(self._children(pid)) if pid else []

    def graceful(self):
        r = self._run("-k", "graceful")
        assert r.returncode == 0, r.stdout + r.stderr


def serve(a: Apache, site: str):
    """Generator body for a module-scoped fixture: start `a`, put it under the error-log
    discipline of conftest.py, stop it at the end (startup/shutdown lines checked too)."""
    a.start(site)
    bad = ErrorLogChecker.unexpected(a.error_log.lines_since(a.start_offset), [])
    if bad:
        a.stop()
        pytest.fail("warnings/errors while starting apache:\n" + "\n".join(bad))
    a.error_log.mark()
    RUNNING.append(a)
    try:
        yield a
    finally:
        RUNNING.remove(a)
        a.stop()
    bad = ErrorLogChecker.unexpected(a.error_log.lines_since(), [])
    assert not bad, "warnings/errors while stopping apache:\n" + "\n".join(bad)


def new_root(workdir: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))


# --------------------------------------------------------------------------------------------
# Status endpoints and process memory


# The module's JSON counters and mod_status, where status_json() and status_auto() read them.
STATUS_HANDLERS = """<Location /ctflopt-status>
    SetHandler ctflopt-status
</Location>
<Location /server-status>
    SetHandler server-status
</Location>
"""


def status_json(port: int, path: str = "/ctflopt-status", conn=None) -> dict:
    r = http_request(port, path, conn=conn)
    assert r.status == 200, (r.status, r.body[:200])
    assert r.header("Content-Type").startswith("application/json")
    return json.loads(r.body)


def status_auto(port: int, path: str = "/server-status?auto", conn=None) -> dict:
    r = http_request(port, path, conn=conn)
    assert r.status == 200, r.status
    out = {}
    for line in r.body.decode().splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            out[k] = v
    return out


def proc_status_kb(pid: int, field: str) -> int:
    """VmRSS / VmHWM ... of a process, in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int):
    """Reset VmHWM to the current RSS (Linux >= 4.0, needs privileges over the process)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def read_stream(port: int, path: str, headers=None, timeout: float = 30.0, limit: int = 64 << 20):
    """GET over a raw socket: (status line, headers, [(monotonic time, bytes)] as they arrive,
    de-chunked only at the end). Bounded by `timeout` and `limit` bytes."""
    hdrs = dict(headers or {})
    hdrs.setdefault("Host", f"127.0.0.1:{port}")
    hdrs.setdefault("Connection", "close")
    req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    arrivals = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req.encode())
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline and total < limit:
            data = s.recv(65536)
            if not data:
                break
            arrivals.append((time.monotonic(), data))
            total += len(data)
    return arrivals


def split_http(raw: bytes):
    """(status, {lower header: value}, body) of a raw HTTP/1.1 response (chunked decoded)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, pos = b"", 0
        for _ in range(10_000_000):
            eol = rest.index(b"\r\n", pos)
            n = int(rest[pos:eol].split(b";")[0], 16)
            if n == 0:
                break
            body += rest[eol + 2:eol + 2 + n]
            pos = eol + 2 + n + 2
        rest = body
    return status, headers, rest


def wait_for_children(a: ProdApache, n: int, timeout: float = 10.0) -> list:
    return wait_until(lambda: len(a.children()) >= n and a.children(), timeout,
                      what=f"{n} apache children")


def keepalive(port: int, timeout: float = 30.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def gunzip(data: bytes) -> bytes:
    return gzip.decompress(data)


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return int(v) if v and v.isdigit() else default
