"""The Experience call itself: event payload, create vs update, profile id cookies (current,
legacy, invalid), identify (remote-user, header, env), locale negotiation, X-Force-IP behind
mod_remoteip, and trusted X-Forwarded-Proto/Host (issue 2 "The request hook", spec §1, §2,
§5.3, §10)."""

import re
import subprocess

import pytest

from httpd import api_directives, cookie_header, html_page, http_request, injected_bootstrap

PAGE = html_page("profile")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def site(apache, emulator, origin):
    for d in ("p", "auth", "hdr", "env", "loc", "loc1", "c-unknown"):
        apache.write_doc(f"{d}/page.html", PAGE)
    htpasswd = apache.root / "htpasswd"
    subprocess.run(["htpasswd", "-cbB", str(htpasswd), "alice", "wonderland"], check=True,
                   capture_output=True)
    trusted = apache.port_for("trusted")
    return api_directives(emulator) + f"""
RemoteIPHeader X-Forwarded-For
RemoteIPTrustedProxy 127.0.0.1
<Location /p/>
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
<Location /c-unknown/>
    CtflOptEngine On
</Location>
<Location /auth/>
    AuthType Basic
    AuthName "itest"
    AuthBasicProvider file
    AuthUserFile "{htpasswd}"
    Require valid-user
    CtflOptEngine On
    CtflOptConsentDefault granted
    CtflOptUserId remote-user
</Location>
<Location /hdr/>
    CtflOptEngine On
    CtflOptConsentDefault granted
    CtflOptUserId header:X-User-Id
</Location>
SetEnvIf X-Demo-User "^([a-z0-9-]+)$" CTFL_USER=$1
<Location /env/>
    CtflOptEngine On
    CtflOptConsentDefault granted
    CtflOptUserId env:CTFL_USER
</Location>
<Location /loc/>
    CtflOptEngine On
    CtflOptConsentDefault granted
    CtflOptLocale en-US de-DE fr
</Location>
<Location /loc1/>
    CtflOptEngine On
    CtflOptConsentDefault granted
    CtflOptLocale de_DE
</Location>
<VirtualHost 127.0.0.1:{trusted}>
    ServerName trusted.test
    CtflOptTrustedProxy On
    <Location /p/>
        CtflOptEngine On
        CtflOptConsentDefault granted
    </Location>
</VirtualHost>
"""


def one_request(emulator):
    recs = emulator.requests()
    assert len(recs) == 1, [r["path"] for r in recs]
    rec = recs[0]
    assert rec["status"] == 200, f"emulator rejected the call: {rec['issues']}"
    return rec


def test_page_event_as_the_spec_describes(apache, emulator):
    ua = "Mozilla/5.0 (X11; Linux x86_64) itest"
    r = apache.get("/p/page.html?utm_source=mail&utm_campaign=Spring%20Sale&x=1&x=2",
                   headers={"User-Agent": ua, "Referer": "https://ref.example/from?q=1"})
    injected_bootstrap(r, PAGE)
    rec = one_request(emulator)
    assert rec["method"] == "POST"
    assert rec["path"] == "/experience/v2/organizations/itest-client/environments/main/profiles"
    assert rec["query"] == {}                     # no CtflOptLocale here: no ?locale=
    assert rec["headers"]["content-type"].split(";")[0] == "text/plain"
    assert rec["headers"]["x-force-ip"] == "127.0.0.1"
    body = rec["json"]
    assert body["options"] == {"features": ["ip-enrichment", "location"]}
    assert [e["type"] for e in body["events"]] == ["page"]
    ev = body["events"][0]
    assert ev["channel"] == "server"
    assert UUID4.match(ev["messageId"])
    assert TIMESTAMP.match(ev["timestamp"])
    assert ev["timestamp"] == ev["sentAt"] == ev["originalTimestamp"]
    ctx = ev["context"]
    assert ctx["library"] == {"name": "mod_ctflopt", "version": "0.1.0"}
    assert ctx["gdpr"] == {"isConsentGiven": True}
    assert ctx["locale"] == "en-US"
    assert ctx["userAgent"] == ua
    assert ctx["campaign"] == {"source": "mail", "name": "Spring Sale"}
    query = "utm_source=mail&utm_campaign=Spring%20Sale&x=1&x=2"
    page = {"path": "/p/page.html", "search": "?" + query,
            "url": f"http://127.0.0.1:{apache.port}/p/page.html?{query}",
            "referrer": "https://ref.example/from?q=1",
            "query": {"utm_source": "mail", "utm_campaign": "Spring Sale", "x": "2"}}
    for k, v in page.items():
        assert ctx["page"][k] == v, k
    assert ev["properties"] == ctx["page"]


def test_page_without_query_referrer_or_user_agent(apache, emulator):
    r = http_request(apache.port, "/p/page.html", headers={})   # http.client sends no UA
    injected_bootstrap(r, PAGE)
    ev = one_request(emulator)["json"]["events"][0]
    assert ev["context"]["page"]["search"] == ""
    assert ev["context"]["page"]["query"] == {}
    assert ev["context"]["page"]["referrer"] == ""
    assert ev["context"]["campaign"] == {}
    assert "userAgent" not in ev["context"]


def test_new_then_returning_visitor(apache, emulator):
    first = apache.get("/p/page.html")
    rec = one_request(emulator)
    assert rec["path"].endswith("/profiles")
    aid = first.cookies["ctfl-opt-aid"].value
    assert UUID4.match(aid), aid                      # the emulator issues UUIDs on create
    boot = injected_bootstrap(first, PAGE)
    assert boot.data["profile"]["id"] == aid
    assert boot.data["profile"]["session"]["isReturningVisitor"] is False

    emulator.reset()
    second = apache.get("/p/page.html", headers={"Cookie": cookie_header(**{"ctfl-opt-aid": aid})})
    rec = one_request(emulator)
    assert rec["path"].endswith(f"/profiles/{aid}")
    assert second.cookies["ctfl-opt-aid"].value == aid
    assert injected_bootstrap(second, PAGE).data["profile"]["id"] == aid
    log = apache.access_entry(second.test_id)
    assert log["profile_id"] == aid


def test_legacy_ntaid_used_when_ctfl_opt_aid_is_absent(apache, emulator):
    r = apache.get("/p/page.html", headers={"Cookie": "ntaid=legacy-id-7"})
    assert one_request(emulator)["path"].endswith("/profiles/legacy-id-7")
    assert r.cookies["ctfl-opt-aid"].value == "legacy-id-7"


def test_ctfl_opt_aid_wins_over_ntaid(apache, emulator):
    apache.get("/p/page.html", headers={"Cookie": "ntaid=legacy-id-7; ctfl-opt-aid=current-id-8"})
    assert one_request(emulator)["path"].endswith("/profiles/current-id-8")


@pytest.mark.parametrize("bad", [
    "abc.def", "a/b", "..", "a%2Fb", "a+b", '"quoted"', "x" * 129, "\u00e9t\u00e9".encode().decode("latin-1"),
])
def test_invalid_profile_ids_are_ignored(apache, emulator, bad):
    r = apache.get("/p/page.html", headers={"Cookie": f"ctfl-opt-aid={bad}"})
    rec = one_request(emulator)
    assert rec["path"].endswith("/environments/main/profiles"), rec["path"]   # create
    new = r.cookies["ctfl-opt-aid"].value
    assert new != bad and UUID4.match(new)


def test_longest_valid_profile_id_is_used(apache, emulator):
    pid = "A-_9" * 32                                    # 128 bytes of [A-Za-z0-9_-]
    r = apache.get("/p/page.html", headers={"Cookie": f"ctfl-opt-aid={pid}"})
    assert one_request(emulator)["path"].endswith("/profiles/" + pid)
    assert r.cookies["ctfl-opt-aid"].value == pid


def test_invalid_ctfl_opt_aid_does_not_fall_back_to_ntaid_silently(apache, emulator):
    # Either id source may be used only if it is valid; an invalid current id must never be sent.
    apache.get("/p/page.html", headers={"Cookie": "ctfl-opt-aid=bad.id; ntaid=good-id"})
    path = one_request(emulator)["path"]
    assert "bad.id" not in path


def identify_then_page(emulator, user_id):
    events = one_request(emulator)["json"]["events"]
    assert [e["type"] for e in events] == ["identify", "page"]
    assert events[0]["userId"] == user_id
    assert isinstance(events[0]["traits"], dict)
    assert events[0]["channel"] == "server"
    return events


def test_identify_from_remote_user(apache, emulator):
    import base64
    auth = "Basic " + base64.b64encode(b"alice:wonderland").decode()
    r = apache.get("/auth/page.html", headers={"Authorization": auth})
    identify_then_page(emulator, "alice")
    boot = injected_bootstrap(r, PAGE)
    assert boot.data["profile"]["traits"].get("identified") is True   # identified fixture
    assert r.cookies["ctfl-opt-aid"].value == boot.data["profile"]["id"]


def test_unauthenticated_request_makes_no_call(apache, emulator):
    r = apache.get("/auth/page.html")
    assert r.status == 401
    assert emulator.requests() == []
    assert b"__OPTIMIZATION_" not in r.body
    assert r.header_all("Set-Cookie") == []


def test_identify_from_header(apache, emulator):
    r = apache.get("/hdr/page.html", headers={"X-User-Id": "user-42"})
    identify_then_page(emulator, "user-42")
    assert injected_bootstrap(r, PAGE).data["profile"]["traits"].get("identified") is True


def test_no_identify_without_the_header(apache, emulator):
    apache.get("/hdr/page.html")
    events = one_request(emulator)["json"]["events"]
    assert [e["type"] for e in events] == ["page"]


def test_identify_from_env(apache, emulator):
    apache.get("/env/page.html", headers={"X-Demo-User": "env-user-1"})
    identify_then_page(emulator, "env-user-1")


@pytest.mark.parametrize("accept_language, expected", [
    (None, "en-US"),
    ("de-DE", "de-DE"),
    ("de", "de-DE"),
    ("de-CH, fr;q=0.9", "de-DE"),
    ("fr-FR;q=0.8, en-US;q=0.9", "en-US"),
    ("fr-CA", "fr"),
    ("ja, de;q=0.5", "de-DE"),
    ("ja", "en-US"),
    ("de-DE;q=0, fr;q=0.1", "fr"),
    ("EN-us", "en-US"),
    ("*", "en-US"),
    (";;;,,,q=", "en-US"),
])
def test_locale_negotiation(apache, emulator, accept_language, expected):
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    r = apache.get("/loc/page.html", headers=headers)
    rec = one_request(emulator)
    assert rec["query"] == {"locale": expected}
    ev = rec["json"]["events"][0]
    assert ev["context"]["locale"] == expected
    boot = injected_bootstrap(r, PAGE)
    assert boot.config["locale"] == expected
    vary = ",".join(r.header_all("Vary")).lower()
    assert "accept-language" in vary          # the locale in the bootstrap depends on it


def test_single_locale_is_normalized(apache, emulator):
    r = apache.get("/loc1/page.html", headers={"Accept-Language": "fr"})
    rec = one_request(emulator)
    assert rec["query"] == {"locale": "de-DE"}
    assert rec["json"]["events"][0]["context"]["locale"] == "de-DE"
    assert injected_bootstrap(r, PAGE).config["locale"] == "de-DE"


@pytest.mark.parametrize("xff, expected", [
    (None, "127.0.0.1"),
    ("203.0.113.7", "203.0.113.7"),
    ("198.51.100.9, 203.0.113.7", "203.0.113.7"),
    ("2001:db8::5", "2001:db8::5"),
])
def test_force_ip_is_the_client_address_after_mod_remoteip(apache, emulator, xff, expected):
    headers = {"X-Forwarded-For": xff} if xff else {}
    r = apache.get("/p/page.html", headers=headers)
    assert r.status == 200
    assert one_request(emulator)["headers"]["x-force-ip"] == expected


def test_forwarded_proto_and_host_ignored_unless_trusted(apache, emulator):
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "www.example.com"}
    apache.get("/p/page.html?a=1", headers=fwd)
    url = one_request(emulator)["json"]["events"][0]["context"]["page"]["url"]
    assert url == f"http://127.0.0.1:{apache.port}/p/page.html?a=1"


def test_forwarded_proto_and_host_used_when_trusted(apache, emulator):
    port = apache.ports["trusted"]
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "www.example.com"}
    r = http_request(port, "/p/page.html?a=1", headers=fwd)
    injected_bootstrap(r, PAGE)
    url = one_request(emulator)["json"]["events"][0]["context"]["page"]["url"]
    assert url == "https://www.example.com/p/page.html?a=1"


def test_host_header_is_used_for_the_page_url(apache, emulator):
    apache.get("/p/page.html", headers={"Host": "shop.example:8080"})
    url = one_request(emulator)["json"]["events"][0]["context"]["page"]["url"]
    assert url == "http://shop.example:8080/p/page.html"


def test_every_call_validates_and_ids_are_unique(apache, emulator):
    ids = set()
    for i in range(5):
        apache.get(f"/p/page.html?n={i}")
    recs = emulator.requests()
    assert len(recs) == 5
    for rec in recs:
        assert rec["status"] == 200, rec["issues"]
        ids.add(rec["json"]["events"][0]["messageId"])
    assert len(ids) == 5


@pytest.mark.parametrize("path, headers", [
    ("/p/page.html?q=%FF%FE&a=%C3%A9&b=x+y", {}),
    ("/p/page.html?%00=1&q=%00&r=%0d%0a", {}),
    ("/p/page.html?a=%u00e9&b=%&c=%G1&utm_source=%FF", {}),
    ("/p/page.html", {"Referer": "https://x.test/\xe9\xff\"<\\"}),
    ("/p/page.html", {"User-Agent": "Mozilla \xff\xfe \"quoted\\ </script>"}),
    ("/p/page.html;x=%22%3C%3E%E2%80%A8", {}),
])
def test_odd_request_bytes_still_make_valid_events(apache, emulator, path, headers):
    """Whatever bytes the client sends, the event is valid UTF-8 JSON the API accepts."""
    r = apache.get(path, headers=headers)
    assert r.status in (200, 404)
    rec = one_request(emulator)
    assert rec["issues"] == []
    assert apache.access_entry(r.test_id)["ctflopt_status"] == "ok"


def test_first_of_duplicate_profile_cookies_is_used(apache, emulator):
    apache.get("/p/page.html", headers={"Cookie": "ctfl-opt-aid=first-id; ctfl-opt-aid=second-id"})
    assert one_request(emulator)["path"].endswith("/profiles/first-id")


def test_post_makes_no_call(apache, emulator):
    r = apache.get("/p/page.html", method="POST", body=b"x=1",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status in (200, 405)
    assert emulator.requests() == []
    assert r.header_all("Set-Cookie") == []


def test_no_state_leaks_between_requests_on_one_connection(apache, emulator):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", apache.port, timeout=30)
    try:
        first = http_request(apache.port, "/c-unknown/page.html", conn=conn,
                             headers={"Cookie": "ctfl-opt-aid=conn-id-1"})
        second = http_request(apache.port, "/p/page.html", conn=conn,
                              headers={"Cookie": "ctfl-opt-aid=conn-id-2"})
        third = http_request(apache.port, "/c-unknown/page.html", conn=conn)
    finally:
        conn.close()
    assert first.cookies["ctfl-opt-aid"].is_deletion
    assert injected_bootstrap(first, PAGE).data is None
    assert second.cookies["ctfl-opt-aid"].value == "conn-id-2"
    assert injected_bootstrap(second, PAGE).data["profile"]["id"] == "conn-id-2"
    assert third.header_all("Set-Cookie") == []
    boot = injected_bootstrap(third, PAGE)
    assert boot.data is None and boot.consent is None
    assert len(emulator.requests()) == 1


@pytest.mark.both_mpms
def test_concurrent_visitors_get_their_own_profiles(apache, emulator):
    """Parallel requests (threads of one process under event) never mix up profiles."""
    from concurrent.futures import ThreadPoolExecutor

    def visit(i):
        pid = f"parallel-{i}"
        r = apache.get(f"/p/page.html?i={i}", headers={"Cookie": f"ctfl-opt-aid={pid}"})
        boot = injected_bootstrap(r, PAGE)
        return pid, r.cookies["ctfl-opt-aid"].value, boot.data["profile"]["id"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(visit, range(36)))
    for sent, cookie, data_id in results:
        assert sent == cookie == data_id
    assert len(emulator.requests()) == 36
