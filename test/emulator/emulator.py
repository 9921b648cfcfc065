#!/usr/bin/python3
"""Local emulator of the Contentful Experience, Insights and CDA APIs, for tests and the demo.

Python 3 standard library only. See README.md next to this file for the contract (mounts, control
endpoints, fault modes) and ../shared/docs/contentful-protocol.md §1-§3, §9 for the protocol.
One threaded HTTP/1.1 server with keep-alive on 127.0.0.1; every API request is validated like the
real service would, recorded, and can be subjected to an injected fault.
"""

import argparse
import copy
import ipaddress
import json
import os
import re
import secrets
import select
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import event_schema  # noqa: E402

APIS = ("experience", "insights", "cda")
FAULT_MODES = ("delay", "hang", "500", "503", "503-then-200", "garbage", "schema", "oversize",
               "reset")
MAX_BODY = 1 << 20              # request bodies above this get 413
MAX_DRAIN = 16 << 20            # a 413 body up to this size is read and discarded (keep-alive)
MAX_HOLD_S = 60.0               # upper bound of `hang` and `delay`
OVERSIZE_BYTES = 5 * 1024 * 1024
MAX_RECORDS = 20000             # recorded requests kept (oldest dropped; a load run stays small)
IDLE_TIMEOUT_S = 120            # keep-alive idle timeout per connection
CDA_MAX_INCLUDE = 10
CDA_MAX_LIMIT = 1000

JSON_TYPE = "application/json; charset=utf-8"
CDA_TYPE = "application/vnd.contentful.delivery.v1+json"
BODY_MEDIA_TYPES = ("text/plain", "application/json")

EXPERIENCE_ROUTE = re.compile(
    r"^v2/organizations/([^/]+)/environments/([^/]+)/(?:(events)|profiles(?:/([^/]+))?)$")
INSIGHTS_EVENTS_ROUTE = re.compile(r"^v1/organizations/([^/]+)/environments/([^/]+)/events$")
INSIGHTS_PROFILE_ROUTE = re.compile(
    r"^v1/organizations/([^/]+)/environments/([^/]+)/profiles/([^/]+)$")
CDA_ROUTE = re.compile(
    r"^spaces/([^/]+)(?:/environments/([^/]+))?/(entries|locales|content_types)$")


def json_bytes(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _reject_constant(name):
    raise ValueError("invalid JSON constant " + name)


def parse_json(raw):
    """Strict JSON: UTF-8, no NaN/Infinity. Raises ValueError."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


def experience_error(message, code):
    return {"message": message, "data": {}, "error": {"code": code}}


def cda_error(kind, message):
    return {"sys": {"type": "Error", "id": kind}, "message": message,
            "requestId": secrets.token_hex(8)}


def with_json(rec):
    """The record as served: plus `json`, the body parsed (null when empty or not JSON).
    Parsed on demand so that a long load run does not keep every body twice in memory."""
    try:
        parsed = parse_json(rec["body"].encode("utf-8")) if rec["body"] else None
    except ValueError:
        parsed = None
    return dict(rec, json=parsed)


def traceparent():
    return "00-%s-%s-01" % (secrets.token_hex(16), secrets.token_hex(8))


def iter_links(value, depth=0):
    """Yield every {sys:{type:"Link"}} object nested in a field value (rich text included)."""
    if depth > 64:
        return
    if isinstance(value, dict):
        sys_ = value.get("sys")
        if isinstance(sys_, dict) and sys_.get("type") == "Link":
            yield sys_
        for v in value.values():
            yield from iter_links(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from iter_links(v, depth + 1)


class Fixtures:
    """Experience responses and CDA entries loaded once at start-up (read-only afterwards)."""

    def __init__(self, root):
        exp = os.path.join(root, "experience")
        with open(os.path.join(exp, "new-visitor.json"), "rb") as f:
            self.new_visitor = parse_json(f.read())
        with open(os.path.join(exp, "identified-visitor.json"), "rb") as f:
            self.identified = parse_json(f.read())
        self.entry_files = {}   # id -> CDA collection (the fixture file, served verbatim)
        self.entries = {}       # id -> entry, from the items and includes of every file
        self.assets = {}
        self.order = []         # entry ids in a stable order, for content_type queries
        edir = os.path.join(root, "contentful", "entries")
        names = sorted(os.listdir(edir)) if os.path.isdir(edir) else []
        for name in names:
            if not name.endswith(".json"):
                continue
            with open(os.path.join(edir, name), "rb") as f:
                coll = parse_json(f.read())
            self.entry_files[name[:-5]] = coll
            incl = coll.get("includes") or {}
            for e in list(coll.get("items") or []) + list(incl.get("Entry") or []):
                eid = e.get("sys", {}).get("id")
                if eid and eid not in self.entries:
                    self.entries[eid] = e
                    self.order.append(eid)
            for a in incl.get("Asset") or []:
                self.assets.setdefault(a.get("sys", {}).get("id"), a)
        self.space = None
        space_file = os.path.join(root, "contentful", "space", "ctfl-space-data.json")
        if os.path.exists(space_file):
            with open(space_file, "rb") as f:
                self.space = parse_json(f.read())

    def visitor(self, profile_id, identified):
        env = copy.deepcopy(self.identified if identified else self.new_visitor)
        env["data"]["profile"]["id"] = profile_id
        env["data"]["profile"]["stableId"] = profile_id
        return env

    def linked_includes(self, roots, depth):
        """Entries and assets reachable from roots within depth link hops (cycle-safe)."""
        seen = {r["sys"]["id"] for r in roots}
        entries, assets, frontier = [], [], list(roots)
        for _ in range(depth):
            nxt = []
            for e in frontier:
                for link in iter_links(e.get("fields", {})):
                    lid = link.get("id")
                    if lid in seen:
                        continue
                    if link.get("linkType") == "Asset" and lid in self.assets:
                        seen.add(lid)
                        assets.append(self.assets[lid])
                    elif link.get("linkType") == "Entry" and lid in self.entries:
                        seen.add(lid)
                        entries.append(self.entries[lid])
                        nxt.append(self.entries[lid])
            frontier = nxt
        return entries, assets


class BadBody(Exception):
    """The request body cannot be used: answer `status`; keep the connection if it was drained."""

    def __init__(self, status, drained):
        super().__init__(status)
        self.status, self.drained = status, drained


class Fault:
    def __init__(self, mode, delay_ms, count):
        self.mode, self.delay_ms, self.remaining, self.served = mode, delay_ms, count, 0


class State:
    """Everything mutable, guarded by one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset_locked()
        self.open_conns = set()         # serials of the connections currently open

    def reset_locked(self):
        self.requests = deque(maxlen=MAX_RECORDS)
        self.next_record = 0
        self.faults = {}
        self.connections = 0
        self.counts = {}
        self.api_conns = {}
        self.identified = set()
        self.known = set()
        self.insights_batches = []

    def take_fault(self, api):
        """The fault mode for this request of `api` (or None), consuming one use of the fault."""
        with self.lock:
            f = self.faults.get(api)
            if f is None:
                return None, 0
            mode = f.mode
            if mode == "503-then-200":
                mode = "503" if f.served % 2 == 0 else None
            f.served += 1
            if f.remaining is not None:
                f.remaining -= 1
                if f.remaining <= 0:
                    del self.faults[api]
            return mode, f.delay_ms


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, fixtures, args):
        self.fixtures = fixtures
        self.args = args
        self.state = State()
        self.serial = 0
        self.conn_serials = {}
        self.log_lock = threading.Lock()
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = super().get_request()
        # Headers and body go out in separate writes: without NODELAY, Nagle plus the client's
        # delayed ACK would add ~40 ms to every keep-alive response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.state.lock:
            self.serial += 1
            self.conn_serials[sock] = self.serial
            self.state.connections += 1
            self.state.open_conns.add(self.serial)
        return sock, addr

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def log(self, line):
        if self.log_file:
            with self.log_lock:
                self.log_file.write(line + "\n")
                self.log_file.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ctflopt-emulator/1"
    timeout = IDLE_TIMEOUT_S

    # ---- connection lifecycle -------------------------------------------------------------
    def setup(self):
        super().setup()
        with self.server.state.lock:
            self.conn = self.server.conn_serials.pop(self.request, 0)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        with self.server.state.lock:
            self.server.state.open_conns.discard(self.conn)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, fmt, *args):  # the access log is our own (--log)
        pass

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_OPTIONS(self):
        self.dispatch("OPTIONS")

    # ---- request body ---------------------------------------------------------------------
    def read_body(self):
        """The request body (Content-Length or chunked); raises BadBody."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self.read_chunked()
        cl = (self.headers.get("Content-Length") or "0").strip()
        if not cl.isdigit():
            raise BadBody(400, drained=False)
        n = int(cl)
        if n <= MAX_BODY:
            return self.rfile.read(n)
        if n > MAX_DRAIN:
            raise BadBody(413, drained=False)
        while n > 0:                # discard it, so that the client gets to read our 413
            chunk = self.rfile.read(min(n, 65536))
            if not chunk:
                raise BadBody(413, drained=False)
            n -= len(chunk)
        raise BadBody(413, drained=True)

    def read_chunked(self):
        out = bytearray()
        for _ in range(100000):
            try:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            except ValueError:
                raise BadBody(400, drained=False)
            if size == 0:
                for _ in range(100):                # trailers up to the empty line
                    if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        break
                return bytes(out)
            if len(out) + size > MAX_BODY:
                raise BadBody(413, drained=False)
            out += self.rfile.read(size)
            self.rfile.readline(8)
        raise BadBody(413, drained=False)

    # ---- responses ------------------------------------------------------------------------
    def send(self, status, body=b"", ctype=None, headers=None):
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "traceparent")
        if self.api == "experience":
            self.send_header("traceparent", traceparent())
        if ctype:
            self.send_header("Content-Type", ctype)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, ctype=JSON_TYPE):
        self.send(status, json_bytes(obj), ctype)

    # ---- dispatch -------------------------------------------------------------------------
    def dispatch(self, method):
        split = urlsplit(self.path)
        path, qs = split.path, split.query
        control = path.startswith("/__emulator/")
        self.api = (None if control else
                    "experience" if path.startswith("/experience/") else
                    "insights" if path.startswith("/insights/") else
                    "cda" if path.startswith("/contentful/") else "other")
        pairs = parse_qsl(qs, keep_blank_values=True)
        query = {}
        for k, v in pairs:
            query.setdefault(k, v)
        self.dup_query = len(pairs) != len(query)
        try:
            body, bad = self.read_body(), None
        except BadBody as e:
            body, bad = b"", e
            self.close_connection = self.close_connection or not e.drained
        if control and bad is None:
            self.control(method, path, qs, body)
            return
        if control:
            self.send_json(bad.status, {"message": "Bad request body"})
            return
        rec = {"api": self.api, "method": method, "path": path, "query": query,
               "query_string": qs,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body.decode("utf-8", "replace"), "status": None,
               "conn": self.conn, "fault": None, "issues": [], "time": time.time()}
        self.rec = rec
        if bad is not None:
            self.commit(bad.status)
            self.send_json(bad.status, {"message": "Payload Too Large" if bad.status == 413
                                        else "Bad Request"})
            return
        mode, delay_ms = (None, 0)
        if self.api in APIS and method != "OPTIONS":
            mode, delay_ms = self.server.state.take_fault(self.api)
        rec["fault"] = mode

        if mode in ("hang", "reset"):
            self.commit(None)
            if mode == "hang":
                self.hold_until_client_leaves()
            else:
                self.reset_connection()
            return
        if mode == "delay":
            time.sleep(min(delay_ms / 1000.0, MAX_HOLD_S))

        status, payload, ctype = self.route(method, path, query, body)
        status, payload, ctype = self.apply_fault(mode, status, payload, ctype)
        self.commit(status)
        if isinstance(payload, (dict, list)):
            payload = json_bytes(payload)
        self.send(status, payload or b"", ctype, self.extra_headers(method))

    def extra_headers(self, method):
        if method != "OPTIONS":
            return {}
        req = self.headers.get("Access-Control-Request-Headers")
        return {"Access-Control-Allow-Methods": "POST, GET, OPTIONS",
                "Access-Control-Allow-Headers": req or "Content-Type, Authorization, X-Force-IP",
                "Access-Control-Max-Age": "600"}

    def commit(self, status):
        """Store the request record (before the response goes out, so tests see it)."""
        rec = self.rec
        rec["status"] = status
        st = self.server.state
        with st.lock:
            rec["id"] = st.next_record
            st.next_record += 1
            st.requests.append(rec)
            st.counts[rec["api"]] = st.counts.get(rec["api"], 0) + 1
            st.api_conns.setdefault(rec["api"], set()).add(rec["conn"])
        self.server.log("%s %s %s %s conn=%d fault=%s status=%s%s" % (
            time.strftime("%H:%M:%S"), rec["method"], self.path, rec["api"], rec["conn"],
            rec["fault"], status, (" issues=" + "; ".join(rec["issues"][:5])) if rec["issues"]
            else ""))

    def apply_fault(self, mode, status, payload, ctype):
        api = self.api
        if mode is None or mode == "delay":
            return status, payload, ctype
        if mode in ("500", "503"):
            if api == "cda":
                return int(mode), cda_error("ServerError", "Injected fault " + mode), CDA_TYPE
            msg = "Internal Server Error" if mode == "500" else "Service Unavailable"
            code = "ERR_INTERNAL_SERVER_ERROR" if mode == "500" else "ERR_SERVICE_UNAVAILABLE"
            return int(mode), experience_error(msg, code), JSON_TYPE
        if mode == "garbage":
            return 200, b"<html><body>upstream error</body></html>\n\xff\xfe{\"data\":", JSON_TYPE
        if mode == "schema":
            if api == "experience":
                bad = {"data": {"profile": {"id": 42}, "experiences": "none", "changes": {}},
                       "message": "ok", "error": None}
            elif api == "cda":
                bad = {"sys": {"type": "Array"}, "total": "one", "items": {"not": "an array"}}
            else:
                bad = {"unexpected": True}
            return 200, bad, ctype or JSON_TYPE
        if mode == "oversize":
            base = payload if isinstance(payload, dict) else {}
            pad_len = OVERSIZE_BYTES - len(json_bytes(base)) + 16
            big = dict(base, padding="x" * max(pad_len, 0))
            return 200, big, ctype or JSON_TYPE
        return status, payload, ctype

    def hold_until_client_leaves(self):
        """`hang`: answer nothing until the client closes, or MAX_HOLD_S passed."""
        sock = self.connection
        deadline = time.monotonic() + MAX_HOLD_S
        try:
            while time.monotonic() < deadline:
                r, _, _ = select.select([sock], [], [], 0.25)
                if r and not sock.recv(65536):
                    break
        except OSError:
            pass
        self.close_connection = True

    def reset_connection(self):
        """`reset`: close with SO_LINGER 0 so the peer gets a TCP RST and no response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
        except OSError:
            pass

    # ---- routing --------------------------------------------------------------------------
    def route(self, method, path, query, body):
        if method == "OPTIONS":
            return 204, b"", None
        if method in ("GET", "HEAD") and (path == "/health" or path.endswith("/health")):
            return 200, b"ok", "text/plain; charset=utf-8"
        if self.api == "experience":
            return self.experience(method, path[len("/experience/"):], query, body)
        if self.api == "insights":
            return self.insights(method, path[len("/insights/"):], body)
        if self.api == "cda":
            return self.cda(method, path[len("/contentful/"):], query)
        return 404, {"message": "Not Found"}, JSON_TYPE

    def invalid(self, issues, message="Invalid Event Array"):
        self.rec["issues"].extend(issues)
        return 400, experience_error(message, "ERR_INVALID_DATA"), JSON_TYPE

    def body_media_ok(self):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return ctype in BODY_MEDIA_TYPES

    def experience(self, method, sub, query, body):
        st, fx = self.server.state, self.server.fixtures
        if method == "POST" and sub == "reset-state":
            with st.lock:
                st.identified.clear()
                st.known.clear()
            return 200, {"message": "Internal state has been reset"}, JSON_TYPE
        m = EXPERIENCE_ROUTE.match(sub)
        if not m:
            return 404, experience_error("Not Found", "ERR_CONFIG_NOT_FOUND"), JSON_TYPE
        is_batch, raw_id = m.group(3) is not None, m.group(4)
        profile_id = unquote(raw_id) if raw_id is not None else None

        issues = self.check_experience_query(query)
        if method == "GET" and profile_id is not None and not is_batch:
            if issues:
                return self.invalid(issues, "Invalid Query")
            with st.lock:
                known, ident = profile_id in st.known, profile_id in st.identified
            if not known:
                return 404, experience_error("Profile not found", "ERR_PROFILE_NOT_FOUND"), \
                    JSON_TYPE
            return 200, fx.visitor(profile_id, ident), JSON_TYPE
        if method != "POST":
            return 404, experience_error("Not Found", "ERR_CONFIG_NOT_FOUND"), JSON_TYPE
        if not self.body_media_ok():
            issues.append("Content-Type: expected text/plain or application/json")
        force_ip = self.headers.get("X-Force-IP")
        if force_ip is not None:
            try:
                ipaddress.ip_address(force_ip.strip())
            except ValueError:
                issues.append("X-Force-IP: not an IP address")
        try:
            data = parse_json(body)
        except ValueError as e:
            return self.invalid(issues + ["body: not JSON (%s)" % e])
        issues += event_schema.check_experience_request(data, batch=is_batch)
        if issues:
            return self.invalid(issues)

        preflight = query.get("type") == "preflight"
        if is_batch:
            return 200, self.experience_batch(data, preflight), JSON_TYPE
        if profile_id is None:
            profile_id = str(uuid.uuid4())
        identifies = any(ev.get("type") == "identify" for ev in data["events"])
        with st.lock:
            identified = identifies or profile_id in st.identified
            if not preflight:
                st.known.add(profile_id)
                if identifies:
                    st.identified.add(profile_id)
        return 200, fx.visitor(profile_id, identified), JSON_TYPE

    def check_experience_query(self, query):
        issues = []
        if self.dup_query:
            issues.append("query: repeated parameter")
        for k, v in query.items():
            if k == "locale":
                if not v:
                    issues.append("query.locale: empty")
            elif k == "type":
                if v != "preflight":
                    issues.append("query.type: expected preflight")
            else:
                issues.append("query.%s: unknown parameter" % k)
        return issues

    def experience_batch(self, data, preflight):
        st, fx = self.server.state, self.server.fixtures
        order, ident = [], set()
        for ev in data["events"]:
            aid = ev["anonymousId"]
            if aid not in order:
                order.append(aid)
            if ev.get("type") == "identify":
                ident.add(aid)
        profiles = []
        with st.lock:
            for aid in order:
                is_ident = aid in ident or aid in st.identified
                if not preflight:
                    st.known.add(aid)
                    if aid in ident:
                        st.identified.add(aid)
                profiles.append(fx.visitor(aid, is_ident)["data"]["profile"])
        return {"data": {"profiles": profiles}, "message": "ok", "error": None}

    def insights(self, method, sub, body):
        st = self.server.state
        m = INSIGHTS_PROFILE_ROUTE.match(sub)
        if m and method == "GET":
            pid = unquote(m.group(3))
            with st.lock:
                found = [b for b in st.insights_batches
                         if b["profile"].get("id") == pid or b["profile"].get("stableId") == pid]
            return 200, {"data": found}, JSON_TYPE
        if not INSIGHTS_EVENTS_ROUTE.match(sub) or method != "POST":
            return 404, experience_error("Not Found", "ERR_CONFIG_NOT_FOUND"), JSON_TYPE
        issues = [] if self.body_media_ok() else [
            "Content-Type: expected application/json or text/plain"]
        try:
            data = parse_json(body)
        except ValueError as e:
            return self.invalid(issues + ["body: not JSON (%s)" % e], "Invalid payload")
        issues += event_schema.check_insights_request(data)
        if issues:
            return self.invalid(issues, "Invalid payload")
        with st.lock:
            st.insights_batches.extend(data)
        return 204, b"", None

    # ---- CDA ------------------------------------------------------------------------------
    def cda_authorized(self, query):
        auth = self.headers.get("Authorization") or ""
        token = None
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
        elif "access_token" in query:
            token = query["access_token"]
        if not token:
            return False
        return self.server.args.cda_token is None or token == self.server.args.cda_token

    def cda(self, method, sub, query):
        m = CDA_ROUTE.match(sub)
        if not m or method not in ("GET", "HEAD"):
            return 404, cda_error("NotFound", "The resource could not be found."), CDA_TYPE
        if not self.cda_authorized(query):
            return 401, cda_error("AccessTokenInvalid", "The access token you sent could not "
                                  "be found or is invalid."), CDA_TYPE
        fx = self.server.fixtures
        kind = m.group(3)
        if kind != "entries":
            if fx.space is None:
                return 404, cda_error("NotFound", "No space fixture."), CDA_TYPE
            key = "locales" if kind == "locales" else "contentTypes"
            items = fx.space.get(key) or []
            return 200, {"sys": {"type": "Array"}, "total": len(items), "skip": 0,
                         "limit": 100, "items": items}, CDA_TYPE
        try:
            include = self.int_param(query, "include", 1, 0, CDA_MAX_INCLUDE)
            limit = self.int_param(query, "limit", 100, 0, CDA_MAX_LIMIT)
            skip = self.int_param(query, "skip", 0, 0, 10 ** 9)
        except ValueError as e:
            self.rec["issues"].append(str(e))
            return 400, cda_error("InvalidQuery", str(e)), CDA_TYPE
        if query.get("locale", None) == "":
            return 400, cda_error("InvalidQuery", "locale: empty"), CDA_TYPE
        if "sys.id" in query:
            return self.cda_single(query["sys.id"], include)
        if "sys.id[in]" in query:
            ids = [i for i in query["sys.id[in]"].split(",")]
            if not ids or any(not i for i in ids):
                return 400, cda_error("InvalidQuery", "sys.id[in]: empty id"), CDA_TYPE
            return 200, self.cda_collection(ids, include), CDA_TYPE
        if "content_type" in query:
            return 200, self.cda_by_type(query, limit, skip), CDA_TYPE
        self.rec["issues"].append("entries: need sys.id, sys.id[in] or content_type")
        return 400, cda_error("InvalidQuery", "The query you sent was invalid."), CDA_TYPE

    @staticmethod
    def int_param(query, name, default, lo, hi):
        if name not in query:
            return default
        v = query[name]
        if not v.isdigit() or not lo <= int(v) <= hi:
            raise ValueError("%s: expected an integer in [%d, %d]" % (name, lo, hi))
        return int(v)

    def cda_single(self, eid, include):
        fx = self.server.fixtures
        if eid in fx.entry_files:
            return 200, fx.entry_files[eid], CDA_TYPE
        if eid in fx.entries:
            return 200, self.cda_collection([eid], include), CDA_TYPE
        if self.server.args.cda_unknown == "empty":
            return 200, self.cda_collection([], include), CDA_TYPE
        return 404, cda_error("NotFound", "The resource could not be found."), CDA_TYPE

    def cda_collection(self, ids, include):
        """Merged collection: items in request order (unknown ids skipped), includes de-duped."""
        fx = self.server.fixtures
        items, inc_entries, inc_assets = [], [], []
        for eid in dict.fromkeys(ids):
            if eid in fx.entry_files:
                coll = fx.entry_files[eid]
                items.extend(coll.get("items") or [])
                incl = coll.get("includes") or {}
                inc_entries.extend(incl.get("Entry") or [])
                inc_assets.extend(incl.get("Asset") or [])
            elif eid in fx.entries:
                items.append(fx.entries[eid])
                e, a = fx.linked_includes([fx.entries[eid]], include)
                inc_entries.extend(e)
                inc_assets.extend(a)
        item_ids = {i["sys"]["id"] for i in items}
        out = {"sys": {"type": "Array"}, "total": len(items), "skip": 0, "limit": 100,
               "items": items}
        if include > 0:
            includes = {}
            for key, lst in (("Entry", inc_entries), ("Asset", inc_assets)):
                seen, uniq = set(item_ids), []
                for x in lst:
                    xid = x["sys"]["id"]
                    if xid not in seen:
                        seen.add(xid)
                        uniq.append(x)
                if uniq:
                    includes[key] = uniq
            if includes:
                out["includes"] = includes
        return out

    def cda_by_type(self, query, limit, skip):
        fx = self.server.fixtures
        ct = query["content_type"]
        filters = {k[len("fields."):]: v for k, v in query.items() if k.startswith("fields.")}
        matched = []
        for eid in fx.order:
            e = fx.entries[eid]
            if e["sys"].get("contentType", {}).get("sys", {}).get("id") != ct:
                continue
            fields = e.get("fields", {})
            if all(f in fields and str(fields[f]) == v for f, v in filters.items()):
                matched.append(e)
        return {"sys": {"type": "Array"}, "total": len(matched), "skip": skip, "limit": limit,
                "items": matched[skip:skip + limit]}

    # ---- control endpoints (tests only) ---------------------------------------------------
    def control(self, method, path, qs, body):
        st = self.server.state
        if method == "POST" and path == "/__emulator/reset":
            with st.lock:
                st.reset_locked()
            self.send_json(200, {"ok": True})
        elif method == "POST" and path == "/__emulator/fault":
            err = self.set_fault(body)
            self.send_json(400 if err else 200, {"error": err} if err else {"ok": True})
        elif method == "GET" and path == "/__emulator/requests":
            api = dict(parse_qsl(qs)).get("api")
            with st.lock:
                recs = [r for r in st.requests if api is None or r["api"] == api]
            self.send(200, json_bytes([with_json(r) for r in recs]), JSON_TYPE)
        elif method == "GET" and path == "/__emulator/stats":
            with st.lock:
                stats = {"connections": st.connections,
                         "open_connections": sorted(st.open_conns),
                         "requests": dict(st.counts),
                         "api_connections": {k: len(v) for k, v in st.api_conns.items()},
                         "faults": {k: {"mode": f.mode, "remaining": f.remaining}
                                    for k, f in st.faults.items()}}
            self.send_json(200, stats)
        else:
            self.send_json(404, {"error": "unknown control endpoint"})

    def set_fault(self, body):
        try:
            spec = parse_json(body)
        except ValueError:
            return "body must be JSON"
        if not isinstance(spec, dict) or spec.get("api") not in APIS:
            return "api must be one of " + "|".join(APIS)
        mode = spec.get("mode")
        if mode in ("none", None):
            with self.server.state.lock:
                self.server.state.faults.pop(spec["api"], None)
            return None
        if mode not in FAULT_MODES:
            return "mode must be one of none|" + "|".join(FAULT_MODES)
        delay = spec.get("delay_ms", 0)
        count = spec.get("count")
        if type(delay) is not int or not 0 <= delay <= MAX_HOLD_S * 1000:
            return "delay_ms must be an integer in [0, 60000]"
        if count is not None and (type(count) is not int or count < 1):
            return "count must be a positive integer"
        with self.server.state.lock:
            self.server.state.faults[spec["api"]] = Fault(mode, delay, count)
        return None


def default_fixtures():
    repo = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    return os.path.join(os.path.dirname(repo), "shared", "fixtures")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--fixtures", default=default_fixtures())
    ap.add_argument("--log", help="append one line per request to this file")
    ap.add_argument("--cda-token", help="accept only this CDA token (default: any non-empty)")
    ap.add_argument("--cda-unknown", choices=("404", "empty"), default="404",
                    help="answer to sys.id=<unknown>: 404 (like the SDK mock) or an empty "
                         "collection (like the real CDA)")
    args = ap.parse_args(argv)
    try:
        fixtures = Fixtures(args.fixtures)
    except (OSError, ValueError, KeyError) as e:
        print("emulator: cannot load fixtures from %s: %s" % (args.fixtures, e), file=sys.stderr)
        return 2
    server = EmulatorServer((args.host, args.port), fixtures, args)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("PORT=%d" % port, flush=True)

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
