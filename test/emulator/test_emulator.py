"""Tests of the Contentful services emulator: run with `/usr/bin/python3 -m pytest test/emulator`.

The emulator runs as a subprocess on a free port (port 0 + port file) and is stopped by its pid.
"""

import copy
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(os.path.dirname(REPO), "shared", "fixtures")
ORG = "v2/organizations/mock-client-id/environments/main"
CREATE = "/experience/%s/profiles" % ORG
FIXTURE_PROFILE_ID = "f0837a67eed5f1c93978f6d53fa948df93897137bcd048366f30ba590420754b"
INVALID_BODY = {"message": "Invalid Event Array", "data": {},
                "error": {"code": "ERR_INVALID_DATA"}}
CDA = "/contentful/spaces/mock-space-id/environments/master/entries"
BEARER = {"Authorization": "Bearer mock-token"}
INSIGHTS = "/insights/v1/organizations/mock-client-id/environments/main/events"


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    d = tmp_path_factory.mktemp("emu")
    port_file = d / "port"
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "emulator.py"), "--port", "0",
                             "--port-file", str(port_file), "--log", str(d / "log")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if port_file.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        yield int(port_file.read_text())
    finally:
        os.kill(proc.pid, 15)
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture(autouse=True)
def fresh(emu):
    call(emu, "POST", "/__emulator/reset")


def call(port, method, path, body=None, headers=None, conn=None, timeout=10):
    """One request; a fresh connection unless `conn` is given. Returns (status, headers, bytes)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def jcall(port, method, path, body=None, headers=None, conn=None):
    status, hdrs, data = call(port, method, path, body, headers, conn)
    return status, hdrs, (json.loads(data) if data else None)


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def page_event(**over):
    ts = now_iso()
    page = {"path": "/products", "query": {"utm_source": "mail"}, "referrer": "",
            "search": "?utm_source=mail", "url": "https://shop.example/products?utm_source=mail"}
    ev = {"type": "page", "channel": "server", "messageId": str(uuid.uuid4()),
          "originalTimestamp": ts, "sentAt": ts, "timestamp": ts,
          "properties": copy.deepcopy(page),
          "context": {"campaign": {"source": "mail"}, "gdpr": {"isConsentGiven": True},
                      "library": {"name": "mod_ctflopt", "version": "0.1.0"},
                      "locale": "en-US", "page": copy.deepcopy(page),
                      "userAgent": "Mozilla/5.0 test"}}
    ev.update(over)
    return ev


def identify_event(user="someone"):
    ev = page_event(type="identify", userId=user, traits={"identified": True})
    del ev["properties"]
    return ev


def envelope(*events):
    return {"events": list(events), "options": {"features": ["ip-enrichment", "location"]}}


def upsert(port, profile_id=None, body=None, ctype="text/plain", query="?locale=en-US",
           headers=None):
    path = CREATE + ("/" + profile_id if profile_id else "") + query
    h = {"Content-Type": ctype}
    h.update(headers or {})
    return jcall(port, "POST", path, envelope(page_event()) if body is None else body, h)


def recorded(port, api=None):
    return jcall(port, "GET", "/__emulator/requests" + ("?api=" + api if api else ""))[2]


def stats(port):
    return jcall(port, "GET", "/__emulator/stats")[2]


def fault(port, **spec):
    status, _, body = jcall(port, "POST", "/__emulator/fault", spec)
    assert status == 200, body


# ---- Experience: accepted requests ----------------------------------------------------------

def test_health(emu):
    assert call(emu, "GET", "/health")[::2] == (200, b"ok")


def test_create_returns_fresh_uuid_and_new_visitor(emu):
    status, hdrs, body = upsert(emu)
    assert status == 200
    assert body["message"] == "ok" and body["error"] is None
    prof = body["data"]["profile"]
    assert uuid.UUID(prof["id"]).version == 4 and str(uuid.UUID(prof["id"])) == prof["id"]
    assert prof["stableId"] == prof["id"]
    assert len(body["data"]["experiences"]) == 11 and body["data"]["changes"] == []
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", hdrs["traceparent"])
    assert hdrs["access-control-allow-origin"] == "*"
    assert hdrs["content-type"].startswith("application/json")
    other = upsert(emu)[2]["data"]["profile"]["id"]
    assert other != prof["id"]


def test_update_keeps_id_and_profile_becomes_known(emu):
    path = CREATE + "/custom-profile-id"
    assert jcall(emu, "GET", path)[0] == 404
    status, _, body = upsert(emu, "custom-profile-id")
    assert status == 200
    assert body["data"]["profile"]["id"] == "custom-profile-id"
    assert body["data"]["profile"]["stableId"] == "custom-profile-id"
    status, _, body = jcall(emu, "GET", path)
    assert status == 200 and body["data"]["profile"]["id"] == "custom-profile-id"


def test_json_content_type_accepted_other_rejected(emu):
    assert upsert(emu, ctype="application/json; charset=utf-8")[0] == 200
    assert upsert(emu, ctype="text/plain;charset=UTF-8")[0] == 200
    status, _, body = upsert(emu, ctype="application/x-www-form-urlencoded")
    assert (status, body) == (400, INVALID_BODY)


def test_extra_keys_optional_fields_and_timestamp_precision_accepted(emu):
    ev = page_event(name="Products", unknownTopLevel=1,
                    originalTimestamp="2026-09-01T10:00:00Z",
                    sentAt="2026-09-01T10:00:00.123456Z", timestamp="2024-02-29T23:59:59.9Z")
    ev["properties"].update(title="T", hash="#x", width=1024, extra={"a": [1, None]})
    ev["context"].update(app={"name": "demo", "version": "0.0.0"},
                         location={"city": "Berlin", "countryCode": "DE",
                                   "coordinates": {"latitude": 1.5, "longitude": 2}},
                         campaign={"name": "n", "source": "s", "medium": "m", "term": "t",
                                   "content": "c", "other": 5})
    del ev["context"]["userAgent"]
    ev["channel"] = "web"
    assert upsert(emu, body={"events": [ev]})[0] == 200       # options may be absent
    assert upsert(emu, body={"events": [ev], "options": {}})[0] == 200
    assert upsert(emu, query="")[0] == 200                     # locale is optional
    assert upsert(emu, query="?locale=de-DE&type=preflight")[0] == 200
    assert upsert(emu, headers={"X-Force-IP": "2001:db8::1"})[0] == 200


def _drop(path):
    def f(ev):
        obj = ev
        for k in path[:-1]:
            obj = obj[k]
        del obj[path[-1]]
    return f


def _set(path, value):
    def f(ev):
        obj = ev
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return f


EVENT_MUTATIONS = {
    "missing channel": _drop(["channel"]),
    "channel not in enum": _set(["channel"], "email"),
    "channel not string": _set(["channel"], 1),
    "missing messageId": _drop(["messageId"]),
    "messageId number": _set(["messageId"], 123),
    "messageId not uuid": _set(["messageId"], "msg-1"),
    "missing type": _drop(["type"]),
    "unknown type": _set(["type"], "pageview"),
    "insights-only type": _set(["type"], "component_click"),
    "missing originalTimestamp": _drop(["originalTimestamp"]),
    "missing sentAt": _drop(["sentAt"]),
    "missing timestamp": _drop(["timestamp"]),
    "timestamp with offset": _set(["timestamp"], "2026-09-01T10:00:00.000+00:00"),
    "timestamp without zone": _set(["sentAt"], "2026-09-01T10:00:00.000"),
    "timestamp impossible date": _set(["originalTimestamp"], "2026-02-29T10:00:00.000Z"),
    "timestamp number": _set(["timestamp"], 1788256800000),
    "timestamp date only": _set(["timestamp"], "2026-09-01"),
    "userId null": _set(["userId"], None),
    "userId number": _set(["userId"], 7),
    "missing context": _drop(["context"]),
    "context array": _set(["context"], []),
    "missing campaign": _drop(["context", "campaign"]),
    "campaign string": _set(["context", "campaign"], "mail"),
    "campaign value number": _set(["context", "campaign", "source"], 1),
    "missing gdpr": _drop(["context", "gdpr"]),
    "gdpr consent string": _set(["context", "gdpr", "isConsentGiven"], "true"),
    "gdpr consent number": _set(["context", "gdpr", "isConsentGiven"], 1),
    "gdpr consent missing": _drop(["context", "gdpr", "isConsentGiven"]),
    "missing library": _drop(["context", "library"]),
    "library name missing": _drop(["context", "library", "name"]),
    "library version number": _set(["context", "library", "version"], 1.0),
    "missing locale": _drop(["context", "locale"]),
    "locale number": _set(["context", "locale"], 1),
    "userAgent number": _set(["context", "userAgent"], 5),
    "userAgent null": _set(["context", "userAgent"], None),
    "app without version": _set(["context", "app"], {"name": "x"}),
    "location countryCode 3 chars": _set(["context", "location"], {"countryCode": "DEU"}),
    "location latitude string": _set(["context", "location"],
                                     {"coordinates": {"latitude": "1", "longitude": 2}}),
    "missing properties": _drop(["properties"]),
    "properties array": _set(["properties"], []),
    "properties.path missing": _drop(["properties", "path"]),
    "properties.query array": _set(["properties", "query"], []),
    "properties.query value number": _set(["properties", "query", "utm_source"], 1),
    "properties.referrer null": _set(["properties", "referrer"], None),
    "properties.search missing": _drop(["properties", "search"]),
    "properties.url number": _set(["properties", "url"], 3),
    "properties.title number": _set(["properties", "title"], 3),
    "missing context.page": _drop(["context", "page"]),
    "context.page.url missing": _drop(["context", "page", "url"]),
    "context.page.query string": _set(["context", "page", "query"], "utm_source=mail"),
    "context.page.title null": _set(["context", "page", "title"], None),
    "name number": _set(["name"], 1),
}


@pytest.mark.parametrize("name", sorted(EVENT_MUTATIONS))
def test_invalid_page_event_rejected(emu, name):
    ev = page_event()
    EVENT_MUTATIONS[name](ev)
    status, _, body = upsert(emu, body=envelope(ev))
    assert (status, body) == (400, INVALID_BODY)
    assert recorded(emu, "experience")[-1]["issues"]


IDENTIFY_MUTATIONS = {
    "missing userId": _drop(["userId"]),
    "userId number": _set(["userId"], 12),
    "missing traits": _drop(["traits"]),
    "traits array": _set(["traits"], ["identified"]),
    "traits null": _set(["traits"], None),
}


@pytest.mark.parametrize("name", sorted(IDENTIFY_MUTATIONS))
def test_invalid_identify_event_rejected(emu, name):
    ev = identify_event()
    assert upsert(emu, body=envelope(ev))[0] == 200
    IDENTIFY_MUTATIONS[name](ev)
    assert upsert(emu, body=envelope(ev))[:3:2] == (400, INVALID_BODY)


def _envelopes():
    ok = page_event()
    return {
        "not json": b"{events:",
        "json constant NaN": b'{"events": NaN}',
        "not utf-8": b'{"events": ["\xff"]}',
        "empty body": b"",
        "array": [envelope(ok)],
        "no events": {"options": {"features": []}},
        "empty events": {"events": [], "options": {"features": []}},
        "events object": {"events": {"0": ok}},
        "event not object": {"events": ["page"]},
        "event null": {"events": [ok, None]},
        "features not array": {"events": [ok], "options": {"features": "location"}},
        "features element number": {"events": [ok], "options": {"features": [1]}},
        "options null": {"events": [ok], "options": None},
        "options array": {"events": [ok], "options": []},
    }


ENVELOPES = _envelopes()


@pytest.mark.parametrize("name", sorted(ENVELOPES))
def test_invalid_envelope_rejected(emu, name):
    body = ENVELOPES[name]
    if not isinstance(body, bytes):
        body = json.dumps(body)
    status, _, data = call(emu, "POST", CREATE, body, {"Content-Type": "text/plain"})
    assert (status, json.loads(data)) == (400, INVALID_BODY)


@pytest.mark.parametrize("query", ["?locale=", "?type=live", "?foo=1",
                                   "?locale=en-US&locale=de-DE"])
def test_invalid_query_rejected(emu, query):
    assert upsert(emu, query=query)[0] == 400


def test_invalid_force_ip_rejected(emu):
    assert upsert(emu, headers={"X-Force-IP": "10.0.0.1:443"})[0] == 400
    assert upsert(emu, headers={"X-Force-IP": "198.51.100.7"})[0] == 200


def test_unknown_paths_404(emu):
    for path in ("/experience/v2/organizations/x/profiles",
                 "/experience/v1/organizations/x/environments/main/profiles",
                 "/experience/" + ORG + "/profiles/a/b", "/nowhere"):
        assert call(emu, "POST", path, json.dumps(envelope(page_event())),
                    {"Content-Type": "text/plain"})[0] == 404, path


def test_body_too_large_413(emu):
    c = http.client.HTTPConnection("127.0.0.1", emu, timeout=10)
    assert call(emu, "POST", CREATE, b"x" * ((1 << 20) + 1),
                {"Content-Type": "text/plain"}, conn=c)[0] == 413
    assert upsert(emu)[0] == 200
    c.close()


def raw_exchange(port, head, body_parts):
    """Send a raw request (head, then each body part) and return the whole response text."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head)
    got = b""
    for part in body_parts:
        if part is None:                         # wait for the interim 100 Continue
            while b"\r\n\r\n" not in got:
                got += s.recv(4096)
            continue
        s.sendall(part)
    s.shutdown(socket.SHUT_WR)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    return got.decode("utf-8", "replace")


def test_chunked_body_and_expect_continue(emu):
    body = json.dumps(envelope(page_event())).encode()
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % CREATE).encode()
    chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100])
              for i in range(0, len(body), 100)] + [b"0\r\n\r\n"]
    assert raw_exchange(emu, head, chunks).startswith("HTTP/1.1 200 ")
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nExpect: 100-continue"
            "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (CREATE, len(body))).encode()
    resp = raw_exchange(emu, head, [None, body])
    assert resp.startswith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")


def test_identified_state(emu):
    _, _, body = upsert(emu, "visitor-a", body=envelope(identify_event()))
    prof = body["data"]["profile"]
    assert prof["traits"] == {"identified": True, "whatever": True}
    assert prof["id"] == prof["stableId"] == "visitor-a"
    assert len(body["data"]["changes"]) == 4 and len(body["data"]["experiences"]) == 20
    # A later page-only request for the same id stays identified; another id does not.
    assert upsert(emu, "visitor-a")[2]["data"]["profile"]["traits"]["identified"] is True
    assert upsert(emu, "visitor-b")[2]["data"]["profile"]["traits"] == {}
    # identify then page in one request, on create
    _, _, body = upsert(emu, body=envelope(identify_event(), page_event()))
    new_id = body["data"]["profile"]["id"]
    assert body["data"]["profile"]["traits"]["identified"] is True and new_id != FIXTURE_PROFILE_ID
    assert upsert(emu, new_id)[2]["data"]["profile"]["session"]["isReturningVisitor"] is True
    # Responses are deep copies: the fixture id never leaks, earlier answers are not shared.
    assert FIXTURE_PROFILE_ID not in json.dumps(recorded(emu))
    jcall(emu, "POST", "/experience/reset-state")
    assert upsert(emu, "visitor-a")[2]["data"]["profile"]["traits"] == {}


def test_preflight_does_not_persist(emu):
    _, _, body = upsert(emu, "p1", body=envelope(identify_event()), query="?type=preflight")
    assert body["data"]["profile"]["traits"]["identified"] is True
    assert upsert(emu, "p1")[2]["data"]["profile"]["traits"] == {}


def test_batch_endpoint(emu):
    a, b = identify_event(), page_event()
    a["anonymousId"], b["anonymousId"] = "u1", "u2"
    status, _, body = jcall(emu, "POST", "/experience/%s/events" % ORG, envelope(a, b),
                            {"Content-Type": "application/json"})
    assert status == 200
    profiles = body["data"]["profiles"]
    assert [p["id"] for p in profiles] == ["u1", "u2"]
    assert profiles[0]["traits"]["identified"] is True and profiles[1]["traits"] == {}
    del b["anonymousId"]
    assert jcall(emu, "POST", "/experience/%s/events" % ORG, envelope(a, b),
                 {"Content-Type": "application/json"})[0] == 400


def test_requests_are_recorded(emu):
    upsert(emu, "rec-1", headers={"X-Force-IP": "192.0.2.1", "User-Agent": "ua-test"})
    call(emu, "POST", INSIGHTS, "[]", {"Content-Type": "application/json"})
    recs = recorded(emu, "experience")
    assert len(recs) == 1
    r = recs[0]
    assert r["method"] == "POST" and r["path"] == CREATE + "/rec-1"
    assert r["query"] == {"locale": "en-US"} and r["status"] == 200
    assert r["headers"]["x-force-ip"] == "192.0.2.1"
    assert r["headers"]["content-type"] == "text/plain"
    assert r["json"]["events"][0]["type"] == "page" and isinstance(r["conn"], int)
    assert [x["api"] for x in recorded(emu)] == ["experience", "insights"]


def test_cors_preflight(emu):
    status, hdrs, body = call(emu, "OPTIONS", CREATE, headers={
        "Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert status == 204 and body == b""
    assert hdrs["access-control-allow-origin"] == "*"
    assert "POST" in hdrs["access-control-allow-methods"]
    assert hdrs["access-control-allow-headers"] == "content-type"


# ---- faults ---------------------------------------------------------------------------------

def test_fault_500_with_count(emu):
    fault(emu, api="experience", mode="500", count=1)
    status, hdrs, body = upsert(emu)
    assert status == 500 and body["error"]["code"] == "ERR_INTERNAL_SERVER_ERROR"
    assert "traceparent" in hdrs
    assert upsert(emu)[0] == 200


def test_fault_503_always_and_cleared(emu):
    fault(emu, api="experience", mode="503")
    assert [upsert(emu)[0] for _ in range(3)] == [503, 503, 503]
    fault(emu, api="experience", mode="none")
    assert upsert(emu)[0] == 200


def test_fault_503_then_200(emu):
    fault(emu, api="experience", mode="503-then-200")
    assert [upsert(emu)[0] for _ in range(4)] == [503, 200, 503, 200]
    fault(emu, api="experience", mode="503-then-200", count=2)
    assert [upsert(emu)[0] for _ in range(3)] == [503, 200, 200]


def test_fault_garbage(emu):
    fault(emu, api="experience", mode="garbage", count=1)
    status, _, data = call(emu, "POST", CREATE, json.dumps(envelope(page_event())),
                           {"Content-Type": "text/plain"})
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(data)


def test_fault_schema(emu):
    fault(emu, api="experience", mode="schema", count=1)
    status, _, body = upsert(emu)
    assert status == 200 and not isinstance(body["data"]["profile"]["id"], str)
    assert not isinstance(body["data"]["experiences"], list)


def test_fault_oversize(emu):
    fault(emu, api="experience", mode="oversize", count=1)
    status, _, data = call(emu, "POST", CREATE, json.dumps(envelope(page_event())),
                           {"Content-Type": "text/plain"})
    assert status == 200 and len(data) >= 5 * 1024 * 1024
    body = json.loads(data)      # valid JSON: only its size is wrong
    assert isinstance(body["data"]["profile"]["id"], str)


def test_fault_delay(emu):
    fault(emu, api="experience", mode="delay", delay_ms=300, count=1)
    t0 = time.monotonic()
    assert upsert(emu)[0] == 200
    assert time.monotonic() - t0 >= 0.3


def test_fault_hang_holds_until_client_leaves(emu):
    fault(emu, api="experience", mode="hang", count=1)
    c = http.client.HTTPConnection("127.0.0.1", emu, timeout=0.5)
    with pytest.raises(socket.timeout):
        call(emu, "POST", CREATE, json.dumps(envelope(page_event())),
             {"Content-Type": "text/plain"}, conn=c)
    rec = recorded(emu, "experience")[-1]
    assert rec["fault"] == "hang" and rec["status"] is None
    assert rec["conn"] in stats(emu)["open_connections"]     # still held open
    c.close()
    for _ in range(100):                         # the server notices the client left
        if rec["conn"] not in stats(emu)["open_connections"]:
            break
        time.sleep(0.05)
    assert rec["conn"] not in stats(emu)["open_connections"]
    assert upsert(emu)[0] == 200


def test_fault_reset_sends_rst(emu):
    fault(emu, api="experience", mode="reset", count=1)
    body = json.dumps(envelope(page_event())).encode()
    s = socket.create_connection(("127.0.0.1", emu), timeout=10)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (CREATE.encode(), len(body), body))
    with pytest.raises(ConnectionResetError):
        s.recv(1024)
    s.close()
    assert recorded(emu, "experience")[-1]["fault"] == "reset"
    assert upsert(emu)[0] == 200


def test_faults_are_per_api(emu):
    fault(emu, api="insights", mode="500")
    assert upsert(emu)[0] == 200
    assert call(emu, "POST", INSIGHTS, "[]", {"Content-Type": "application/json"})[0] == 500
    fault(emu, api="cda", mode="503", count=1)
    assert call(emu, "GET", CDA + "?sys.id=4ib0hsHWoSOnCVdDkizE8d", headers=BEARER)[0] == 503
    assert call(emu, "GET", CDA + "?sys.id=4ib0hsHWoSOnCVdDkizE8d", headers=BEARER)[0] == 200


@pytest.mark.parametrize("spec", [{"api": "other", "mode": "500"},
                                  {"api": "cda", "mode": "explode"},
                                  {"api": "cda", "mode": "delay", "delay_ms": 61000},
                                  {"api": "cda", "mode": "500", "count": 0}])
def test_invalid_fault_spec(emu, spec):
    assert jcall(emu, "POST", "/__emulator/fault", spec)[0] == 400


# ---- connection accounting ------------------------------------------------------------------

def test_stats_count_connections_with_keep_alive(emu):
    c = http.client.HTTPConnection("127.0.0.1", emu, timeout=10)
    for _ in range(5):
        assert jcall(emu, "POST", CREATE + "/ka?locale=en-US", envelope(page_event()),
                     {"Content-Type": "text/plain"}, conn=c)[0] == 200
    s = stats(emu)
    assert s["api_connections"]["experience"] == 1
    assert s["requests"]["experience"] == 5
    assert s["connections"] == 2                   # the keep-alive one and the stats request
    assert len({r["conn"] for r in recorded(emu, "experience")}) == 1
    c.close()
    for _ in range(3):                             # one connection per request
        upsert(emu)
    s = stats(emu)
    assert s["api_connections"]["experience"] == 4
    assert s["connections"] == 2 + 1 + 3 + 1       # + the recorded() call, 3 upserts, stats


# ---- CDA ------------------------------------------------------------------------------------

def fixture_entry(eid):
    with open(os.path.join(FIXTURES, "contentful", "entries", eid + ".json")) as f:
        return json.load(f)


def test_cda_requires_token(emu):
    status, _, body = jcall(emu, "GET", CDA + "?sys.id=4ib0hsHWoSOnCVdDkizE8d")
    assert status == 401 and body["sys"]["id"] == "AccessTokenInvalid"
    assert jcall(emu, "GET", CDA + "?sys.id=4ib0hsHWoSOnCVdDkizE8d",
                 headers={"Authorization": "Basic x"})[0] == 401
    assert jcall(emu, "GET", CDA + "?sys.id=4ib0hsHWoSOnCVdDkizE8d&access_token=t")[0] == 200


def test_cda_single_entry_and_recorded_query(emu):
    status, hdrs, body = jcall(emu, "GET", CDA + "?sys.id=4ib0hsHWoSOnCVdDkizE8d&include=10"
                               "&locale=de-DE", headers=BEARER)
    assert status == 200 and body == fixture_entry("4ib0hsHWoSOnCVdDkizE8d")
    assert hdrs["content-type"] == "application/vnd.contentful.delivery.v1+json"
    rec = recorded(emu, "cda")[-1]
    assert rec["query"] == {"sys.id": "4ib0hsHWoSOnCVdDkizE8d", "include": "10",
                            "locale": "de-DE"}
    assert rec["headers"]["authorization"] == "Bearer mock-token"
    assert jcall(emu, "GET", CDA + "?sys.id=nope", headers=BEARER)[0] == 404


def test_cda_entry_known_only_from_includes(emu):
    status, _, body = jcall(emu, "GET", CDA + "?sys.id=2KIWllNZJT205BwOSkMINg&include=10",
                            headers=BEARER)
    assert status == 200 and [i["sys"]["id"] for i in body["items"]] == ["2KIWllNZJT205BwOSkMINg"]
    ids = {e["sys"]["id"] for e in body["includes"]["Entry"]}
    assert "5i4SdJXw9oDEY0vgO7CwF4" in ids           # its nested link is included


def test_cda_sys_id_in_merges(emu):
    a, b = "4ib0hsHWoSOnCVdDkizE8d", "xFwgG3oNaOcjzWiGe4vXo"
    status, _, body = jcall(emu, "GET", CDA + "?sys.id[in]=%s,unknown1,%s&include=10" % (a, b),
                            headers=BEARER)
    assert status == 200
    assert [i["sys"]["id"] for i in body["items"]] == [a, b] and body["total"] == 2
    inc = [e["sys"]["id"] for e in body["includes"]["Entry"]]
    assert len(inc) == len(set(inc)) and a not in inc and b not in inc
    expected = {e["sys"]["id"] for x in (a, b) for e in fixture_entry(x)["includes"]["Entry"]}
    assert set(inc) == expected


def test_cda_content_type_query(emu):
    status, _, body = jcall(emu, "GET", CDA + "?content_type=nt_experience&limit=3",
                            headers=BEARER)
    assert status == 200 and len(body["items"]) == 3 and body["total"] > 3
    assert "includes" not in body
    assert all(i["sys"]["contentType"]["sys"]["id"] == "nt_experience" for i in body["items"])
    _, _, body = jcall(emu, "GET", CDA + "?content_type=nt_experience"
                       "&fields.nt_experience_id=2qVK4T5lnScbswoyBuGipd", headers=BEARER)
    assert [i["sys"]["id"] for i in body["items"]] == ["2qVK4T5lnScbswoyBuGipd"]


@pytest.mark.parametrize("query", ["", "?locale=en-US", "?sys.id=x&include=11",
                                   "?sys.id=x&include=-1", "?content_type=content&limit=1001",
                                   "?sys.id[in]=a,,b"])
def test_cda_invalid_query(emu, query):
    status, _, body = jcall(emu, "GET", CDA + query, headers=BEARER)
    assert status == 400 and body["sys"]["id"] == "InvalidQuery"


def test_cda_locales(emu):
    status, _, body = jcall(emu, "GET", CDA.replace("/entries", "/locales"), headers=BEARER)
    assert status == 200 and [x["code"] for x in body["items"]] == ["en-US"]


# ---- Insights -------------------------------------------------------------------------------

def view_event():
    ev = page_event(type="component", componentType="Entry",
                    componentId="4k6ZyFQnR2POY5IJLLlJRb", experienceId="2qVK4T5lnScbswoyBuGipd",
                    variantIndex=1, viewId=str(uuid.uuid4()), viewDurationMs=1000)
    del ev["properties"]
    ev["channel"] = "web"
    return ev


def test_insights_accepts_batches(emu):
    click = view_event()
    click["type"] = "component_click"
    hover = dict(view_event(), type="component_hover", hoverId="h1", hoverDurationMs=1200)
    body = [{"profile": {"id": "p-1", "traits": {}}, "events": [view_event(), click, hover]}]
    status, hdrs, data = call(emu, "POST", INSIGHTS, json.dumps(body),
                              {"Content-Type": "application/json"})
    assert (status, data) == (204, b"")
    assert call(emu, "POST", INSIGHTS, "[]", {"Content-Type": "text/plain;charset=UTF-8"})[0] == 204
    _, _, got = jcall(emu, "GET", INSIGHTS.replace("/events", "/profiles/p-1"))
    assert len(got["data"]) == 1 and len(got["data"][0]["events"]) == 3


@pytest.mark.parametrize("body", [
    b"not json", b"{}", b'[{"events": []}]', b'[{"profile": {}, "events": []}]',
    b'[{"profile": {"id": 1}, "events": []}]', b'[{"profile": {"id": "p"}}]',
    b'[{"profile": {"id": "p"}, "events": [{"type": "page"}]}]', b"[1]"])
def test_insights_rejects_invalid(emu, body):
    status, _, data = jcall(emu, "POST", INSIGHTS, body, {"Content-Type": "application/json"})
    assert status == 400 and data["error"]["code"] == "ERR_INVALID_DATA"


def test_insights_rejects_invalid_event_fields(emu):
    hover = dict(view_event(), type="component_hover")     # no hoverId / hoverDurationMs
    body = [{"profile": {"id": "p"}, "events": [hover]}]
    assert call(emu, "POST", INSIGHTS, json.dumps(body),
                {"Content-Type": "application/json"})[0] == 400
    ev = view_event()
    ev["componentType"] = "Flag"
    assert call(emu, "POST", INSIGHTS, json.dumps([{"profile": {"id": "p"}, "events": [ev]}]),
                {"Content-Type": "application/json"})[0] == 400
