"""Issue 4: personalized responses can never be stored by mod_cache for others.

mod_cache + mod_cache_disk in front of a proxied origin that says "cache me for 10 minutes"
(`Cache-Control: public, max-age=600`), pages with marked elements resolved through the CDA of
the emulator. Visitors: A (consent, anonymous: the new-visitor variants), B (consent,
identified on the first request: the identified variants), C (no consent: the baseline page,
which may be cached since it varies on Cookie).

Both `CacheQuickHandler Off` and `On` (the default). Documented behaviour with `On`: the quick
handler answers before any request hook, so a stored page (only ever an unpersonalized one) is
served without the module running at all: no Experience call, no page event, CTFLOPT_STATUS
unset in the access log."""

import os
import pwd

import pytest

from httpd import api_directives, html_page, parse_bootstrap
from prodkit import ProdApache, new_root, representation, serve

GRANTED = "app-personalization-consent=granted"
# spec §9.6: 2Z2W... -> 1UFf... for new visitors, 3VBv... for identified ("return") visitors;
# 7pa5... -> 5daR... for identified visitors only.
BODY = """
<div id="visitors" data-ctfl-baseline-id="2Z2WLOx07InSewC3LUB3eX"><p>BASELINE-ALL</p>
<template data-ctfl-variant-id="3VBvwg9ysjjmnJRTQtIYK4"><p>VARIANT-RETURN</p></template>
<template data-ctfl-variant-id="1UFf7qr4mHET3HYuYmcpEj"><p>VARIANT-NEW</p></template></div>
<div id="identified" data-ctfl-baseline-id="7pa5bOx8Z9NmNcr7mISvD"><p>BASELINE-ANY-USER</p>
<template data-ctfl-variant-id="5daRHDDD7sj0Jm9kutAGou"><p>VARIANT-IDENTIFIED</p></template></div>
"""
PAGE = html_page("cached", body=BODY)
EXPECTED = {   # visitor -> markers that must be in its page
    "A": {b"VARIANT-NEW", b"BASELINE-ANY-USER"},
    "B": {b"VARIANT-RETURN", b"VARIANT-IDENTIFIED"},
    "C": {b"BASELINE-ALL", b"BASELINE-ANY-USER"},
}
MARKERS = set().union(*EXPECTED.values())




@pytest.fixture(scope="module", params=["Off", "On"], ids=["quick-off", "quick-on"])
def apache(request, workdir, emulator, scripted, module_so):
    a = ProdApache(new_root(workdir, f"cache-{request.param}"), "event", module_so,
                   modules=["cache", "cache_disk", "socache_shmcb"])
    a.quick = request.param
    cache = a.root / "cache"
    cache.mkdir()
    www = pwd.getpwnam("www-data")
    os.chown(cache, www.pw_uid, www.pw_gid)
    site = api_directives(emulator) + f"""
CtflOptUserId header:X-User-Id
CtflOptContentfulSpace uelxcuo7v97l
CtflOptContentfulToken itest-token
CtflOptContentfulURL {emulator.base}/contentful/
CacheRoot "{cache}"
CacheQuickHandler {request.param}
CacheHeader On
CacheEnable disk /c/
CacheEnable disk /plain/
<Location /c/>
    ProxyPass {scripted.base}/app/
    CtflOptEngine On
</Location>
<Location /plain/>
    ProxyPass {scripted.base}/app/
</Location>
"""
    yield from serve(a, site)


class Visitor:
    def __init__(self, apache, name, consent=True, user_id=None):
        self.apache, self.name, self.consent, self.user_id = apache, name, consent, user_id
        self.aid = None

    def get(self, path):
        cookies = ([GRANTED] if self.consent else []) + ([f"ctfl-opt-aid={self.aid}"] if self.aid else [])
        headers = {"Cookie": "; ".join(cookies)} if cookies else {}
        if self.user_id and self.aid is None:
            headers["X-User-Id"] = self.user_id
        return self.apache.get(path, headers=headers)


def check_own_page(v: Visitor, r):
    """The page carries this visitor's variants and profile id, nobody else's."""
    assert r.status == 200
    found = {m for m in MARKERS if m in r.body}
    assert found == EXPECTED[v.name], f"visitor {v.name} got {sorted(found)}"
    boot = parse_bootstrap(extract_bootstrap(r.body))
    if not v.consent:
        assert boot.data is None
        assert not any(c.startswith("ctfl-opt-aid=") for c in r.header_all("Set-Cookie"))
        return
    pid = boot.data["profile"]["id"]
    cookie = r.cookies["ctfl-opt-aid"].value
    if v.aid is None:
        v.aid = cookie
    assert pid == cookie == v.aid, f"visitor {v.name} ({v.aid}) got profile {pid}, cookie {cookie}"
    assert r.header("X-Cache") is None or "HIT" not in r.header("X-Cache"), \
        f"a personalized page for {v.name} came from the cache"
    cc = {t.strip().lower() for h in r.header_all("Cache-Control") for t in h.split(",")}
    assert "private" in cc and "public" not in cc, cc


def extract_bootstrap(body: bytes) -> bytes:
    """The injected markup: from the first injected <script to the end of the inline script."""
    start = body.index(b"<script src=")
    end = body.index(b"</script>", body.index(b"__OPTIMIZATION_CONFIG__")) + len(b"</script>")
    return body[start:end]


def page_route(scripted, name, vary=False):
    """The origin's page, cacheable for 10 minutes (by default without Vary: Accept-Encoding,
    see test_pages_varying_on_accept_encoding_are_still_cached)."""
    scripted.route(f"/app/{name}.html", representation(PAGE, cache_control="public, max-age=600",
                                                       vary=vary))
    return f"/c/{name}.html"


def test_cache_is_active(apache, scripted):
    """Control: without the engine the origin's page is stored and served from the cache."""
    scripted.route("/app/control.html", representation(PAGE, cache_control="public, max-age=600"))
    # (with Vary: Accept-Encoding, as most origins send it)
    first = apache.get("/plain/control.html")
    second = apache.get("/plain/control.html")
    assert first.body == second.body == PAGE
    assert "HIT" in (second.header("X-Cache") or ""), second.headers
    assert len(scripted.requests_to("/app/control.html")) == 1


def test_alternating_visitors_only_see_their_own_page(apache, scripted, emulator):
    path = page_route(scripted, "alternate")
    visitors = [Visitor(apache, "A"), Visitor(apache, "B", user_id="cache-user-b"),
                Visitor(apache, "C", consent=False)]
    for _ in range(4):
        for v in visitors:
            check_own_page(v, v.get(path))
    a, b, _ = visitors
    assert a.aid != b.aid
    # Every personalized page came from the origin: 2 visitors x 4 rounds.
    assert len(scripted.requests_to("/app/alternate.html")) >= 8


def test_unpersonalized_page_is_cached_per_cookie_header(apache, scripted):
    path = page_route(scripted, "anonymous")
    c1, c2 = Visitor(apache, "C", consent=False), Visitor(apache, "C", consent=False)
    check_own_page(c1, c1.get(path))
    again = c2.get(path)
    check_own_page(c2, again)
    assert "HIT" in (again.header("X-Cache") or ""), again.headers
    vary = {t.strip().lower() for h in again.header_all("Vary") for t in h.split(",")}
    assert "cookie" in vary
    # Another Cookie header is another variant: not served the stored copy.
    other = apache.get(path, headers={"Cookie": "theme=dark"})
    assert "HIT" not in (other.header("X-Cache") or "")


def test_pages_varying_on_accept_encoding_are_still_cached(apache, scripted):
    """Most origins send Vary: Accept-Encoding. The request hook asks a proxied origin for
    identity; the stored copy and the lookup must still agree on the client's value, or no
    page of an engine-on location is ever served from the cache."""
    path = page_route(scripted, "vary-ae", vary=True)
    for accept in (None, "gzip"):
        headers = {"Accept-Encoding": accept} if accept else {}
        apache.get(path, headers=headers)
        again = apache.get(path, headers=headers)
        assert "HIT" in (again.header("X-Cache") or ""), (accept, again.header("X-Cache"))


def test_quick_handler_setting_decides_whether_the_module_sees_cache_hits(apache, scripted):
    """Off: the request hook runs before mod_cache's handler (CTFLOPT_STATUS no-consent on a
    hit). On (documented): hits are answered before the module runs (CTFLOPT_STATUS unset)."""
    path = page_route(scripted, "quick")
    Visitor(apache, "C", consent=False).get(path)
    hit = Visitor(apache, "C", consent=False).get(path)
    assert "HIT" in (hit.header("X-Cache") or "")
    status = apache.access_entry(hit.test_id)["ctflopt_status"]
    assert status == ("-" if apache.quick == "On" else "no-consent")


def test_fail_open_baseline_is_not_stored(apache, scripted, emulator, expect_log):
    """A consented visitor whose evaluation failed gets the baseline page; that copy must not
    be stored, or the visitor (and everybody sending the same Cookie header) keeps getting the
    baseline from the cache after the Experience API has recovered."""
    expect_log("CTFLOPT0102", required=False)    # rate-limited: one line per 10 s
    path = page_route(scripted, "failopen")
    a = Visitor(apache, "A")
    check_own_page(a, a.get(path))
    emulator.fault("500")
    failed = a.get(path)
    assert failed.status == 200 and b"BASELINE-ALL" in failed.body
    emulator.fault("none")
    after = a.get(path)
    assert "HIT" not in (after.header("X-Cache") or ""), "the fail-open baseline was cached"
    check_own_page(a, after)


def test_responses_setting_the_profile_cookie_are_never_public(apache, scripted, emulator,
                                                                 expect_log):
    """Whatever mod_cache serves, a response carrying a visitor's ctfl-opt-aid must not be
    marked cacheable by shared caches downstream."""
    expect_log("CTFLOPT0102", required=False)    # rate-limited: one line per 10 s
    path = page_route(scripted, "cookiecc")
    a = Visitor(apache, "A")
    responses = [a.get(path)]
    emulator.fault("500")
    responses.append(a.get(path))
    emulator.fault("none")
    responses += [a.get(path), a.get(path)]
    for r in responses:
        if any(c.startswith("ctfl-opt-aid=") and not c.startswith("ctfl-opt-aid=;")
               for c in r.header_all("Set-Cookie")):
            cc = {t.strip().lower() for h in r.header_all("Cache-Control") for t in h.split(",")}
            assert "public" not in cc and ("private" in cc or "no-store" in cc), \
                f"Set-Cookie ctfl-opt-aid with Cache-Control {cc} (X-Cache {r.header('X-Cache')})"
