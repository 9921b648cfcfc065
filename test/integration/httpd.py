"""Harness for the mod_ctflopt integration suite: a real Debian apache2 with a generated
server root, the Contentful services emulator as a subprocess, a scriptable origin
server for proxy tests, and a small HTTP client with raw header access.

Everything listens on 127.0.0.1 and on ports chosen by binding port 0.
Every process started here is stopped by its pid."""

import gzip
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "bench" / "corpus"
FIXTURES = SHARED / "fixtures"
MODULE_SO = Path(os.environ.get("CTFLOPT_MODULE", REPO / "build" / "mod_ctflopt.so"))
APACHE_BIN = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
PYTHON = "/usr/bin/python3"

# Lines that say something about this machine, not about the code under test:
# AH01882 = Debian's mod_ssl built against a newer OpenSSL patch release than the one installed.
ALWAYS_IGNORED = ["AH01882"]

# Message levels that fail a test unless the test declared the line expected.
BAD_LEVEL = re.compile(r"\[[^\]\s]*:(warn|error|crit|alert|emerg)\]")

# Access log: one tab-separated line per request, keyed by our X-Test-Id request header.
ACCESS_FIELDS = ["test_id", "status", "pid", "method", "uri", "ctflopt_status", "profile_id",
                 "consent", "experiences", "api_ms", "no_ctflopt"]
ACCESS_FORMAT = "\\t".join([
    "%{X-Test-Id}i", "%>s", "%P", "%m", "%U%q", "%{CTFLOPT_STATUS}e", "%{CTFLOPT_PROFILE_ID}e",
    "%{CTFLOPT_CONSENT}e", "%{CTFLOPT_EXPERIENCES}e", "%{CTFLOPT_API_MS}e", "%{no-ctflopt}e"])

# log_config is compiled into Debian's apache2, so it is not loaded here.
BASE_MODULES = ["authz_core", "authz_user", "authn_core", "authn_file", "auth_basic", "mime", "dir",
                "alias", "headers", "env", "setenvif", "rewrite", "proxy", "proxy_http",
                "remoteip", "include", "deflate", "filter", "status"]


def free_port() -> int:
    """A currently free loopback port (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# HTTP client


@dataclass
class Response:
    status: int
    reason: str
    headers: list          # [(name, value)] in wire order
    body: bytes
    elapsed: float         # seconds, request sent to body read
    test_id: str
    version: int = 11

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def has_header(self, name):
        return any(k.lower() == name.lower() for k, _ in self.headers)

    @property
    def cookies(self):
        """Set-Cookie headers parsed: {name: SetCookie}; a name sent twice fails loudly."""
        out = {}
        for raw in self.header_all("Set-Cookie"):
            c = SetCookie.parse(raw)
            assert c.name not in out, f"two Set-Cookie headers for {c.name}: {self.header_all('Set-Cookie')}"
            out[c.name] = c
        return out


@dataclass
class SetCookie:
    raw: str
    name: str
    value: str
    attrs: dict = field(default_factory=dict)   # lower-case attribute name -> value (None for flags)
    names: list = field(default_factory=list)   # attribute names as sent

    @classmethod
    def parse(cls, raw: str) -> "SetCookie":
        parts = [p.strip() for p in raw.split(";")]
        name, _, value = parts[0].partition("=")
        attrs, names = {}, []
        for p in parts[1:]:
            if not p:
                continue
            k, eq, v = p.partition("=")
            attrs[k.strip().lower()] = v.strip() if eq else None
            names.append(k.strip())
        return cls(raw, name.strip(), value.strip(), attrs, names)

    @property
    def is_deletion(self) -> bool:
        return self.value == "" and (self.attrs.get("max-age") == "0"
                                     or "1970" in (self.attrs.get("expires") or ""))


def http_request(port: int, path: str, method: str = "GET", headers=None, body=None,
                 timeout: float = 30.0, conn: http.client.HTTPConnection = None,
                 test_id: str = None, https: bool = False) -> Response:
    """One request to 127.0.0.1:port. `headers` is a dict or a list of pairs (repeats allowed).
    Every request carries X-Test-Id so its access-log line can be found."""
    own = conn is None
    if own and https:
        import ssl
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                           context=ssl._create_unverified_context())
    elif own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    test_id = test_id or uuid.uuid4().hex
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in pairs}
    start = time.monotonic()
    try:
        conn.putrequest(method, path, skip_host="host" in names, skip_accept_encoding=True)
        for k, v in pairs:
            conn.putheader(k, v)
        conn.putheader("X-Test-Id", test_id)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        elapsed = time.monotonic() - start
        return Response(r.status, r.reason, list(r.getheaders()), data, elapsed, test_id, r.version)
    finally:
        if own:
            conn.close()


def cookie_header(**cookies) -> str:
    """cookie_header(**{"ctfl-opt-aid": "x"}) -> 'ctfl-opt-aid=x' (dict order kept)."""
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


# --------------------------------------------------------------------------------------------
# Injection / bootstrap helpers

BOOT_GLOBAL = re.compile(r"(?:window\.)?__OPTIMIZATION_(CONFIG|CONSENT|DATA)__\s*=(?!=)\s*")


def first_difference(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    for i in range(0, n, 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, min(i + 4096, n)):
                if a[j] != b[j]:
                    return j
    return n


def assert_same_bytes(actual: bytes, expected: bytes, what: str = "body"):
    if actual == expected:
        return
    i = first_difference(actual, expected)
    raise AssertionError(
        f"{what}: {len(actual)} bytes, expected {len(expected)}; first difference at offset {i}:\n"
        f"  actual:   {actual[max(0, i - 60):i + 60]!r}\n  expected: {expected[max(0, i - 60):i + 60]!r}")


def split_injection(original: bytes, served: bytes, pos: int) -> bytes:
    """Assert served == original[:pos] + X + original[pos:] for some non-empty X; return X."""
    n = len(served) - len(original)
    if n <= 0:
        assert_same_bytes(served, original, "served (expected an injection)")
        raise AssertionError(f"nothing was injected at offset {pos} (served {len(served)} bytes, "
                             f"original {len(original)})")
    injected = served[pos:pos + n]
    assert_same_bytes(served, original[:pos] + injected + original[pos:],
                      f"served body vs original with the bootstrap at offset {pos}")
    return injected


@dataclass
class Bootstrap:
    raw: bytes
    scripts: list          # [(attrs: dict, body: str)]
    config: dict
    consent: object        # True / False / None (undefined)
    data: object           # dict or None when not set

    @property
    def inline(self) -> str:
        return self.scripts[-1][1]

    @property
    def src(self):
        """src of the Web SDK <script>, or None when there is no such element."""
        return self.scripts[0][0].get("src") if len(self.scripts) > 1 else None

    def var(self, name: str):
        """The JSON value of `var NAME=...` in the inline script (None when absent)."""
        m = re.search(r"\bvar\s+" + re.escape(name) + r"\s*=\s*", self.inline)
        return js_value(self.inline, m.end()) if m else None


def js_value(script: str, pos: int):
    """The JSON literal at script[pos:] (or `undefined`, or a variable set earlier with
    `var NAME=<JSON>`)."""
    rest = script[pos:]
    if rest.startswith("undefined") or rest.startswith("void 0"):
        return None
    ident = re.match(r"([A-Za-z_$][\w$]*)\s*[;,\n]", rest)
    if ident and ident.group(1) not in ("true", "false", "null"):
        m = re.search(r"\bvar\s+" + re.escape(ident.group(1)) + r"\s*=\s*", script)
        assert m, f"cannot resolve {ident.group(1)!r} in the bootstrap"
        rest = script[m.end():]
    val, _ = json.JSONDecoder().raw_decode(rest)
    return val


SCRIPT_RE = re.compile(rb"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
ATTR_RE = re.compile(r'([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|\'([^\']*)\'|([^\s"\'>]+)))?')


def parse_bootstrap(raw: bytes) -> Bootstrap:
    """Parse the injected markup: <script src=...></script><script>...globals...</script>."""
    scripts = []
    pos = 0
    for m in SCRIPT_RE.finditer(raw):
        assert raw[pos:m.start()].strip() == b"", f"unexpected markup between scripts: {raw[pos:m.start()]!r}"
        attrs = {}
        for a in ATTR_RE.finditer(m.group(1).decode("ascii")):
            attrs[a.group(1).lower()] = next((g for g in a.groups()[1:] if g is not None), "")
        scripts.append((attrs, m.group(2).decode("utf-8")))
        pos = m.end()
    assert raw[pos:].strip() == b"", f"unexpected markup after the scripts: {raw[pos:][:200]!r}"
    assert scripts, f"no <script> in the injection: {raw[:300]!r}"
    inline = scripts[-1][1]
    values = {}
    for m in BOOT_GLOBAL.finditer(inline):
        name = m.group(1)
        assert name not in values, f"__OPTIMIZATION_{name}__ assigned twice"
        values[name] = js_value(inline, m.end())
    assert "CONFIG" in values, f"no __OPTIMIZATION_CONFIG__ in {inline[:300]!r}"
    return Bootstrap(raw, scripts, values["CONFIG"], values.get("CONSENT"), values.get("DATA"))


def real_head_end(page: bytes) -> int:
    """Offset of the only '</head>' of a page (corpus precondition: exactly one, and real)."""
    assert page.count(b"</head>") == 1, "test precondition: exactly one </head>"
    return page.index(b"</head>")


# --------------------------------------------------------------------------------------------
# The emulator subprocess


class Emulator:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc = None
        self.port = None
        self.log_path = workdir / "emulator.log"
        self._ctl = None
        self._ctl_lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def experience_url(self) -> str:
        return f"{self.base}/experience/"

    @property
    def insights_url(self) -> str:
        return f"{self.base}/insights/"

    def start(self):
        script = REPO / "test" / "emulator" / "emulator.py"
        if not script.exists():
            raise RuntimeError(f"{script} does not exist yet")
        port_file = self.workdir / "emulator.port"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, str(script), "--port", "0", "--port-file", str(port_file),
             "--fixtures", str(FIXTURES)],
            cwd=str(REPO), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.proc.returncode}; see {self.log_path}")
            try:
                text = port_file.read_text().strip()
            except OSError:
                return False
            return text.isdigit() and int(text)
        self.port = wait_until(ready, 20, what="emulator port file")
        wait_until(lambda: self._health(), 10, what="emulator /health")

    def _health(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            c.request("GET", "/health")
            ok = c.getresponse().read().strip() == b"ok"
            c.close()
            return ok
        except OSError:
            return False

    def stop(self):
        if self._ctl is not None:
            self._ctl.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def _control(self, method, path, body=None):
        """Control calls share one keep-alive connection so they add at most one TCP
        connection to the emulator's counters."""
        with self._ctl_lock:
            for attempt in (1, 2):
                if self._ctl is None:
                    self._ctl = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                try:
                    data = json.dumps(body).encode() if body is not None else None
                    hdrs = {"Content-Type": "application/json"} if data is not None else {}
                    self._ctl.request(method, path, body=data, headers=hdrs)
                    r = self._ctl.getresponse()
                    payload = r.read()
                    if r.status >= 300:
                        raise RuntimeError(f"emulator {method} {path}: {r.status} {payload[:300]!r}")
                    return json.loads(payload) if payload.strip()[:1] in (b"{", b"[") else payload
                except (http.client.HTTPException, ConnectionError):
                    self._ctl.close()
                    self._ctl = None
                    if attempt == 2:
                        raise

    def reset(self):
        self._control("POST", "/__emulator/reset", {})

    def fault(self, mode: str, api: str = "experience", delay_ms: int = None, count: int = None):
        body = {"api": api, "mode": mode}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        if count is not None:
            body["count"] = count
        self._control("POST", "/__emulator/fault", body)

    def requests(self, api: str = "experience") -> list:
        return self._control("GET", f"/__emulator/requests?api={api}")

    def stats(self) -> dict:
        return self._control("GET", "/__emulator/stats")

    def events(self, api: str = "experience") -> list:
        """Every event of every recorded request, in order."""
        out = []
        for rec in self.requests(api):
            body = rec.get("json") or json.loads(rec["body"])
            out.extend(body["events"])
        return out


# --------------------------------------------------------------------------------------------
# The scriptable origin (for mod_proxy tests), in-process


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: list = field(default_factory=list)    # [(name, value)]
    content_type: str = "text/html; charset=utf-8"
    chunking: str = None        # None: Content-Length; "whole": one chunk; "1": 1-byte chunks;
                                # "random": random sizes (seeded)
    seed: int = 1
    max_chunk: int = 2048
    pauses: int = 0             # number of short pauses spread over the body...
    pause_total: float = 0.0    # ...whose sum is this many seconds (bounded)
    methods: tuple = ("GET", "HEAD", "POST")


class RecordingOrigin:
    """A threaded HTTP/1.1 server on 127.0.0.1 that records every request; subclasses answer
    them (serve) with their own routes."""

    NAME = "origin"
    METHODS = ("GET", "HEAD")

    def __init__(self):
        self.routes = {}
        self.records = []
        self._lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                origin.serve(self)

        for method in self.METHODS:
            setattr(Handler, f"do_{method}", Handler._serve)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name=self.NAME,
                                       daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, handler):
        raise NotImplementedError

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        with self._lock:
            self.routes.clear()
            self.records.clear()

    def requests_to(self, path: str) -> list:
        with self._lock:
            return [r for r in self.records if r["path"].split("?")[0] == path]


class Origin(RecordingOrigin):
    """Routes (Route) by exact path, then longest prefix ending in '/'. Records every request
    (method, path, headers, body)."""

    METHODS = ("GET", "HEAD", "POST")

    def serve(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            self.records.append({"method": h.command, "path": h.path,
                                 "headers": list(h.headers.items()), "body": body})
        route = self.lookup(h.path.split("?")[0])
        if route is None or h.command not in route.methods:
            h.send_response(404)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", "10")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(b"not found\n")
            return
        self.write_response(h, route)

    def route(self, path: str, **kw) -> Route:
        r = Route(**kw)
        with self._lock:
            self.routes[path] = r
        return r

    def lookup(self, path: str):
        with self._lock:
            if path in self.routes:
                return self.routes[path]
            best = None
            for p, r in self.routes.items():
                if p.endswith("/") and path.startswith(p) and (best is None or len(p) > len(best[0])):
                    best = (p, r)
            return best[1] if best else None

    @staticmethod
    def chunks(route: Route):
        body = route.body
        if route.chunking == "1":
            sizes = [1] * len(body)
        elif route.chunking == "random":
            rng = random.Random(route.seed)
            sizes, left = [], len(body)
            while left > 0:
                # Mostly small pieces, sometimes large, so splits land everywhere.
                n = rng.choice((rng.randint(1, 16), rng.randint(1, 256), rng.randint(1, route.max_chunk)))
                n = min(n, left)
                sizes.append(n)
                left -= n
        else:
            sizes = [len(body)] if body else []
        out, off = [], 0
        for n in sizes:
            out.append(body[off:off + n])
            off += n
        return out

    def write_response(self, h: BaseHTTPRequestHandler, route: Route):
        h.send_response(route.status)
        if route.content_type:
            h.send_header("Content-Type", route.content_type)
        for k, v in route.headers:
            h.send_header(k, v)
        chunked = route.chunking is not None
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(len(route.body)))
        h.end_headers()
        if h.command == "HEAD":
            return
        if not chunked:
            h.wfile.write(route.body)
            return
        pieces = self.chunks(route)
        pause_at = set()
        if route.pauses and pieces:
            rng = random.Random(route.seed + 7)
            pause_at = set(rng.sample(range(len(pieces)), min(route.pauses, len(pieces))))
        pause = route.pause_total / max(1, len(pause_at))
        sock = h.connection
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        for i, piece in enumerate(pieces):
            buf += b"%x\r\n" % len(piece) + piece + b"\r\n"
            # Batch the framing of tiny chunks into one send (the chunk boundaries stay in the
            # stream either way); pauses force separate TCP segments.
            if i in pause_at or len(buf) >= 16384:
                sock.sendall(buf)
                buf.clear()
                if i in pause_at:
                    time.sleep(pause)
        buf += b"0\r\n\r\n"
        sock.sendall(buf)


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# --------------------------------------------------------------------------------------------
# Apache


class ErrorLogChecker:
    """Remembers an offset into the error log; reports bad-level lines written since."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def mark(self):
        self.offset = self.size()

    def lines_since(self, offset: int = None) -> list:
        offset = self.offset if offset is None else offset
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return []
        return data.decode("utf-8", "replace").splitlines()

    @staticmethod
    def unexpected(lines, expected) -> list:
        """Bad-level lines not matched by any expectation (message id or regex)."""
        bad = []
        for line in lines:
            if not BAD_LEVEL.search(line):
                continue
            if any(e.matches(line) for e in expected):
                continue
            if any(f"{i}:" in line for i in ALWAYS_IGNORED):
                continue
            bad.append(line)
        return bad


@dataclass
class Expectation:
    pattern: str               # message id like CTFLOPT0101 or a regular expression
    required: bool = True      # the line must appear at least once
    seen: int = 0

    def matches(self, line: str) -> bool:
        if re.fullmatch(r"(CTFLOPT\d{4}|AH\d{5})", self.pattern):
            hit = f"{self.pattern}:" in line
        else:
            hit = re.search(self.pattern, line) is not None
        if hit:
            self.seen += 1
        return hit


class Apache:
    """One generated server root and the apache2 processes started from it."""

    def __init__(self, root: Path, mpm: str = "event", module_so: Path = MODULE_SO):
        self.root = root
        self.mpm = mpm
        self.module_so = module_so
        self.port = free_port()
        self.docroot = root / "htdocs"
        self.logs = root / "logs"
        self.conf_path = root / "httpd.conf"
        self.site_path = root / "site.conf"
        self.error_log = ErrorLogChecker(self.logs / "error.log")
        self.access_log_path = self.logs / "access.log"
        self.pidfile = self.logs / "httpd.pid"
        for d in (root, self.docroot, self.logs, root / "run"):
            d.mkdir(parents=True, exist_ok=True)
        self.running = False
        self.start_offset = 0
        self.ports = {}
        self.extra_modules = []     # e.g. ["ssl", "socache_shmcb"]

    def make_certificate(self):
        """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
        cert, key = self.root / "cert.pem", self.root / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE",
                        "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        return cert, key

    def port_for(self, name: str) -> int:
        """An extra Listen port (for IP-based <VirtualHost 127.0.0.1:PORT> blocks)."""
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]

    # -- files

    def write_doc(self, rel: str, content: bytes) -> Path:
        p = self.docroot / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        return p

    def make_readable(self):
        """Apache's children run as www-data when we are root: open up the tree we serve.
        Docroot files get an old mtime so apache's file ETags are strong (it weakens the
        ETag of a file modified within the last second)."""
        old = time.time() - 3600
        for dirpath, dirnames, filenames in os.walk(self.root):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                p = os.path.join(dirpath, f)
                if not os.path.islink(p):
                    os.chmod(p, 0o644)
                    if p.startswith(str(self.docroot)):
                        os.utime(p, (old, old))

    def main_config(self) -> str:
        mods = [f"LoadModule mpm_{self.mpm}_module {APACHE_MODULES}/mod_mpm_{self.mpm}.so"]
        mods += [f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so"
                 for m in BASE_MODULES + self.extra_modules]
        if self.module_so is not None:
            mods.append(f"LoadModule ctflopt_module {self.module_so}")
        if self.mpm == "event":
            mpm = ("StartServers 2\nServerLimit 4\nThreadsPerChild 10\nMinSpareThreads 5\n"
                   "MaxSpareThreads 40\nMaxRequestWorkers 40\n")
        else:
            mpm = ("StartServers 3\nMinSpareServers 2\nMaxSpareServers 6\nServerLimit 20\n"
                   "MaxRequestWorkers 20\n")
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        return f"""# generated by test/integration/httpd.py
ServerRoot "{self.root}"
DefaultRuntimeDir "{self.root}/run"
PidFile "{self.pidfile}"
Listen 127.0.0.1:{self.port}
{"".join(f"Listen 127.0.0.1:{p}{chr(10)}" for p in self.ports.values())}ServerName 127.0.0.1:{self.port}
ServerAdmin test@example.invalid
{user}
{chr(10).join(mods)}
{mpm}
Timeout 30
KeepAlive On
MaxKeepAliveRequests 1000
KeepAliveTimeout 5
ErrorLog "{self.error_log.path}"
LogLevel warn{" ctflopt:trace2" if self.module_so else ""}
LogFormat "{ACCESS_FORMAT}" ctflopt
CustomLog "{self.access_log_path}" ctflopt
TypesConfig /etc/mime.types
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
DocumentRoot "{self.docroot}"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{self.docroot}">
    Options FollowSymLinks Includes
    AllowOverride None
    Require all granted
</Directory>
DirectoryIndex index.html
# Liveness probe for the harness, outside every CtflOpt location.
Alias /__alive "{self.docroot}/__alive.txt"

Include "{self.site_path}"
"""

    def configure(self, site: str):
        self.write_doc("__alive.txt", b"alive\n")
        self.conf_path.write_text(self.main_config())
        self.site_path.write_text(site)
        self.make_readable()

    # -- processes

    def _run(self, *args, timeout=30):
        return subprocess.run([APACHE_BIN, "-d", str(self.root), "-f", str(self.conf_path), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env=self._env())

    @staticmethod
    def _env():
        env = {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}
        env["LANG"] = "C"
        # A sanitizer build of the module needs its runtime loaded first (make integration-asan).
        if os.environ.get("CTFLOPT_APACHE_PRELOAD"):
            env["LD_PRELOAD"] = os.environ["CTFLOPT_APACHE_PRELOAD"]
        return env

    def configtest(self, site: str = None):
        """`apache2 -t` on the current (or given) site config: (returncode, output)."""
        if site is not None:
            self.configure(site)
        r = self._run("-t")
        return r.returncode, r.stdout + r.stderr

    def pid(self):
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, site: str = None):
        if site is not None:
            self.configure(site)
        assert not self.running
        self.start_offset = self.error_log.size()
        r = self._run("-k", "start")
        if r.returncode != 0:
            raise RuntimeError(f"apache2 -k start failed ({r.returncode}):\n{r.stdout}{r.stderr}\n"
                               + "\n".join(self.error_log.lines_since(self.start_offset)[-30:]))
        self.running = True

        def alive():
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/__alive")
                ok = c.getresponse().status == 200
                c.close()
                return ok
            except OSError:
                return False
        try:
            wait_until(alive, 20, 0.1, "apache to answer")
        except TimeoutError:
            tail = "\n".join(self.error_log.lines_since(self.start_offset)[-30:])
            self.stop()
            raise RuntimeError(f"apache did not come up on port {self.port}:\n{tail}")

    def stop(self):
        if not self.running:
            return
        pid = self.pid()
        self._run("-k", "stop")
        if pid is not None:
            try:
                wait_until(lambda: not pid_alive(pid), 15, 0.05, f"apache pid {pid} to exit")
            except TimeoutError:
                # Last resort, by pid: the parent, then any of its children still alive.
                for child in self._children(pid):
                    try:
                        os.kill(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.running = False

    @staticmethod
    def _children(pid: int) -> list:
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                    if int(stat.split(")")[-1].split()[1]) == pid:
                        out.append(int(d.name))
                except (OSError, ValueError, IndexError):
                    continue
        return out

    def restart(self, site: str = None):
        self.stop()
        self.start(site)

    # -- requests and logs

    def get(self, path: str, **kw) -> Response:
        return http_request(self.port, path, **kw)

    def head(self, path: str, **kw) -> Response:
        return http_request(self.port, path, method="HEAD", **kw)

    @property
    def origin_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_entry(self, test_id: str, timeout: float = 5.0) -> dict:
        """The access-log line of one request (written after the response, so poll)."""
        def find():
            try:
                text = self.access_log_path.read_text("utf-8", "replace")
            except FileNotFoundError:
                return None
            for line in text.splitlines():
                cols = line.split("\t")
                if cols[0] == test_id:
                    return dict(zip(ACCESS_FIELDS, cols))
            return None
        return wait_until(find, timeout, 0.05, f"access log line for {test_id}")


# ---------------------------------------------------------------------------------------------
# Config snippets shared by the test modules

CLIENT_ID = "itest-client"
ENVIRONMENT = "main"
SDK_URL = "/static/contentful-optimization-web.umd.js"


def api_directives(emulator, timeout_ms: int = 2000) -> str:
    """Server-level CtflOpt* directives pointing the module at the emulator."""
    return f"""
CtflOptClientId {CLIENT_ID}
CtflOptEnvironment {ENVIRONMENT}
CtflOptExperienceURL {emulator.experience_url}
CtflOptInsightsURL {emulator.insights_url}
CtflOptAllowInsecureAPI On
CtflOptTimeout {timeout_ms}
CtflOptWebSDKURL {SDK_URL}
"""


GRANTED = {"Cookie": "app-personalization-consent=granted"}
DENIED = {"Cookie": "app-personalization-consent=denied"}


def with_cookies(**cookies) -> dict:
    return {"Cookie": cookie_header(**cookies)}


def html_page(title: str = "t", head: str = "", body: str = "<p>hello</p>") -> bytes:
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n{head}</head>\n<body>\n{body}\n</body>\n</html>\n").encode()


def injected_bootstrap(resp: Response, original: bytes, pos: int = None) -> Bootstrap:
    """Check resp.body == original with one insertion at pos (default: before the only
    </head>) and parse the insertion."""
    assert resp.status == 200, f"status {resp.status}"
    if pos is None:
        pos = real_head_end(original)
    return parse_bootstrap(split_injection(original, resp.body, pos))


def experience_fixture(name: str) -> dict:
    """A full Experience API response from ../shared/fixtures/experience (new-visitor, ...)."""
    return json.loads((FIXTURES / "experience" / f"{name}.json").read_text())


def experiences_list(fixture: dict) -> str:
    """CTFLOPT_EXPERIENCES / X-Ctfl-Opt-Experiences for a response: id:variantIndex,..."""
    return ",".join(f"{e['experienceId']}:{e['variantIndex']}" for e in fixture["data"]["experiences"])


NODE = shutil.which("node") or shutil.which("nodejs")


def run_bootstrap_js(boot: Bootstrap, **options) -> dict:
    """Execute the inline bootstrap in Node with a stand-in Web SDK (bootstrap_eval.js)."""
    if NODE is None:
        import pytest
        pytest.skip("node is not installed")
    payload = dict(options, script=boot.inline)
    r = subprocess.run([NODE, str(Path(__file__).with_name("bootstrap_eval.js"))],
                       input=json.dumps(payload), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["record"]["errors"] == [], out["record"]["errors"]
    return out


def trace_skips(apache) -> list:
    """The module's 'filter skipped: <reason>' trace lines since the current test began."""
    return [line.split("filter skipped: ", 1)[1] for line in apache.error_log.lines_since()
            if "[ctflopt:trace" in line and "filter skipped: " in line]
