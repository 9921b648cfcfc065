"""mod_ctflopt in front of a proxied origin: forwarded X-Ctfl-Opt-* headers (client-sent ones
stripped), header changes on personalized responses, and origin responses that must pass
through untouched (encoded, partial, non-200, non-HTML, other charsets, HEAD)."""

import json

import pytest

from httpd import (api_directives, experience_fixture, experiences_list, gzip_bytes, html_page,
                   injected_bootstrap, trace_skips)

PAGE = html_page("origin page", body="<p>from the origin</p>")
FORGED = [("X-Ctfl-Opt-Profile-Id", "forged-id"), ("x-ctfl-opt-experiences", "forged:1"),
          ("X-CTFL-OPT-FLAGS", '{"admin":true}'), ("X-Ctfl-Opt-Profile-Id", "forged-2")]
CTFL_HEADERS = ("x-ctfl-opt-profile-id", "x-ctfl-opt-experiences", "x-ctfl-opt-flags")


def site(apache, emulator, origin):
    o = f"http://127.0.0.1:{origin.port}"
    return api_directives(emulator) + f"""
<Location /fwd/>
    ProxyPass {o}/app/
    CtflOptEngine On
    CtflOptForwardHeaders On
    CtflOptUserId header:X-User-Id
</Location>
<Location /nofwd/>
    ProxyPass {o}/app/
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
<Location /px/>
    ProxyPass {o}/app/
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
"""


def origin_headers(origin, path):
    recs = origin.requests_to(path)
    assert len(recs) == 1, recs
    out = {}
    for k, v in recs[0]["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def ctfl_seen(origin, path):
    h = origin_headers(origin, path)
    return {k: h[k] for k in CTFL_HEADERS if k in h}


@pytest.mark.both_mpms
def test_forwarded_headers_for_a_new_visitor(apache, origin, emulator):
    origin.route("/app/page.html", body=PAGE)
    r = apache.get("/fwd/page.html",
                   headers=[("Cookie", "app-personalization-consent=granted")] + FORGED)
    boot = injected_bootstrap(r, PAGE)
    pid = r.cookies["ctfl-opt-aid"].value
    seen = ctfl_seen(origin, "/app/page.html")
    assert seen["x-ctfl-opt-profile-id"] == [pid] == [boot.data["profile"]["id"]]
    assert seen["x-ctfl-opt-experiences"] == [experiences_list(experience_fixture("new-visitor"))]
    assert json.loads(seen["x-ctfl-opt-flags"][0]) == {}
    assert apache.access_entry(r.test_id)["experiences"] == seen["x-ctfl-opt-experiences"][0]


def test_forwarded_flags_for_an_identified_visitor(apache, origin, emulator):
    origin.route("/app/page.html", body=PAGE)
    r = apache.get("/fwd/page.html", headers=[("Cookie", "app-personalization-consent=granted"),
                                               ("X-User-Id", "flag-user")] + FORGED)
    injected_bootstrap(r, PAGE)
    seen = ctfl_seen(origin, "/app/page.html")
    fixture = experience_fixture("identified-visitor")
    assert seen["x-ctfl-opt-experiences"] == [experiences_list(fixture)]
    # spec §4.4: one entry per change key with its value
    assert json.loads(seen["x-ctfl-opt-flags"][0]) == {
        c["key"]: c["value"] for c in fixture["data"]["changes"]}
    assert seen["x-ctfl-opt-profile-id"] == [r.cookies["ctfl-opt-aid"].value]


@pytest.mark.parametrize("cookie", [None, "app-personalization-consent=denied"])
def test_forged_headers_stripped_without_consent(apache, origin, emulator, cookie):
    origin.route("/app/page.html", body=PAGE)
    headers = ([("Cookie", cookie)] if cookie else []) + FORGED
    r = apache.get("/fwd/page.html", headers=headers)
    injected_bootstrap(r, PAGE)
    assert ctfl_seen(origin, "/app/page.html") == {}
    assert emulator.requests() == []


def test_forged_headers_stripped_when_evaluation_fails(apache, origin, emulator, expect_log):
    expect_log("CTFLOPT0102")
    emulator.fault("500")
    origin.route("/app/page.html", body=PAGE)
    r = apache.get("/fwd/page.html",
                   headers=[("Cookie", "app-personalization-consent=granted")] + FORGED)
    assert injected_bootstrap(r, PAGE).data is None
    assert ctfl_seen(origin, "/app/page.html") == {}


def test_no_forwarded_headers_when_off(apache, origin, emulator):
    origin.route("/app/page.html", body=PAGE)
    r = apache.get("/nofwd/page.html")
    assert injected_bootstrap(r, PAGE).data is not None
    assert ctfl_seen(origin, "/app/page.html") == {}


@pytest.mark.both_mpms
def test_personalized_proxied_response_headers(apache, origin, emulator):
    origin.route("/app/page.html", body=PAGE, headers=[
        ("ETag", '"origin-v1"'), ("Cache-Control", "public, max-age=600"),
        ("Vary", "Accept-Encoding")])
    r = apache.get("/px/page.html")
    assert injected_bootstrap(r, PAGE).data is not None
    assert r.header("Content-Length") in (None, str(len(r.body)))
    cc = [v.strip().lower() for h in r.header_all("Cache-Control") for v in h.split(",")]
    assert "private" in cc and "public" not in cc, cc
    vary = {v.strip().lower() for h in r.header_all("Vary") for v in h.split(",")}
    assert {"cookie", "accept-encoding"} <= vary, vary
    assert r.header("ETag") in (None,) or r.header("ETag").startswith("W/"), r.header("ETag")


def test_streamed_response_has_no_stale_length(apache, origin):
    origin.route("/app/page.html", body=PAGE, chunking="random", seed=3, max_chunk=16,
                  pauses=5, pause_total=0.05)
    r = apache.get("/px/page.html")
    injected_bootstrap(r, PAGE)
    assert r.header("Content-Length") in (None, str(len(r.body)))


# path, route kwargs, expected status: each must come back exactly as the origin sent it.
UNTOUCHED = {
    "gzip": dict(body=gzip_bytes(PAGE), headers=[("Content-Encoding", "gzip")]),
    "gzip-chunked": dict(body=gzip_bytes(PAGE), headers=[("Content-Encoding", "gzip")],
                         chunking="random", seed=5),
    "partial": dict(status=206, body=PAGE[:100],
                    headers=[("Content-Range", f"bytes 0-99/{len(PAGE)}")]),
    "not-found": dict(status=404, body=PAGE),
    "server-error": dict(status=500, body=PAGE),
    "plain-text": dict(body=PAGE, content_type="text/plain; charset=utf-8"),
    "json": dict(body=b'{"a":"</head>"}', content_type="application/json"),
    "utf-16": dict(body="<html><head></head><body>x</body></html>".encode("utf-16"),
                   content_type="text/html; charset=utf-16"),
}


@pytest.mark.parametrize("case", sorted(UNTOUCHED))
def test_origin_responses_passed_through(apache, origin, emulator, case):
    kw = UNTOUCHED[case]
    origin.route(f"/app/{case}", **kw)
    r = apache.get(f"/px/{case}", headers={"Accept-Encoding": "gzip"})
    assert r.status == kw.get("status", 200)
    assert r.body == kw["body"]
    for k, v in kw.get("headers", []):
        assert r.header(k) == v


def test_identity_content_encoding_is_filtered(apache, origin):
    origin.route("/app/page.html", body=PAGE, headers=[("Content-Encoding", "identity")])
    injected_bootstrap(apache.get("/px/page.html"), PAGE)


def test_head_through_the_proxy(apache, origin, emulator):
    origin.route("/app/page.html", body=PAGE)
    r = apache.head("/px/page.html")
    assert r.status == 200 and r.body == b""
    assert emulator.requests() == []
    assert [x["method"] for x in origin.requests_to("/app/page.html")] == ["HEAD"]


@pytest.mark.parametrize("case, reason", [("gzip", "Content-Encoding gzip"),
                                          ("partial", "status 206"),
                                          ("not-found", "status 404"),
                                          ("plain-text", "content type text/plain")])
def test_skip_reasons_are_traced(apache, origin, case, reason):
    origin.route(f"/app/{case}", **UNTOUCHED[case])
    r = apache.get(f"/px/{case}")
    apache.access_entry(r.test_id)
    assert any(s.startswith(reason) for s in trace_skips(apache)), trace_skips(apache)
