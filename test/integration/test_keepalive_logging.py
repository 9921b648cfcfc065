"""Keep-alive reuse of Experience API connections (issue 2: "Keep-alive connections are
reused across requests in a process; show it") and the CTFLOPT_* environment variables in
an access log (LogFormat %{...}e).

Pooling is per process: under event, a process's threads share one pool, so sequential
requests reuse one connection; under prefork every child has its own pool, so a connection
is opened at most once per child that served a request."""

import http.client

import pytest

from httpd import (api_directives, cookie_header, experience_fixture, experiences_list,
                   html_page, http_request, injected_bootstrap)

PAGE = html_page("keepalive")
N = 20


def site(apache, emulator, origin):
    apache.write_doc("ka/page.html", PAGE)
    apache.write_doc("ka/id.html", PAGE)
    return api_directives(emulator) + """
<Location /ka/>
    CtflOptEngine On
    CtflOptConsentDefault granted
    CtflOptUserId header:X-User-Id
</Location>
"""


def experience_connections(emulator):
    recs = emulator.requests()
    conns = {r["conn"] for r in recs}
    assert emulator.stats()["api_connections"]["experience"] == len(conns)
    return len(recs), len(conns)


@pytest.mark.both_mpms
def test_connections_reused_across_requests(apache, emulator):
    pids = set()
    aid = None
    for i in range(N):          # a new client connection each time
        headers = {"Cookie": cookie_header(**{"ctfl-opt-aid": aid})} if aid else {}
        r = apache.get(f"/ka/page.html?n={i}", headers=headers)
        assert injected_bootstrap(r, PAGE).data is not None
        aid = r.cookies["ctfl-opt-aid"].value
        pids.add(apache.access_entry(r.test_id)["pid"])
    requests, conns = experience_connections(emulator)
    assert requests == N
    # at most one connection per serving process (so far fewer than requests: the MPM
    # configs of the harness run 2 event processes, or up to 6 idle prefork children)
    assert conns <= len(pids), (conns, pids)
    assert conns <= N // 2, conns


@pytest.mark.both_mpms
def test_one_connection_for_one_process(apache, emulator):
    conn = http.client.HTTPConnection("127.0.0.1", apache.port, timeout=30)
    pids = set()
    try:
        for i in range(N):     # one client connection: one apache process serves them all
            r = http_request(apache.port, f"/ka/page.html?n={i}", conn=conn)
            assert r.status == 200
            pids.add(apache.access_entry(r.test_id)["pid"])
    finally:
        conn.close()
    assert len(pids) == 1
    requests, conns = experience_connections(emulator)
    assert (requests, conns) == (N, 1)


def test_env_vars_for_an_evaluated_request(apache, emulator):
    r = apache.get("/ka/page.html")
    boot = injected_bootstrap(r, PAGE)
    e = apache.access_entry(r.test_id)
    assert e["ctflopt_status"] == "ok"
    assert e["consent"] == "granted"
    assert e["profile_id"] == boot.data["profile"]["id"]
    assert e["experiences"] == experiences_list(experience_fixture("new-visitor"))
    assert e["api_ms"].isdigit() and int(e["api_ms"]) < 60000


def test_env_vars_for_an_identified_visitor(apache, emulator):
    r = apache.get("/ka/id.html", headers={"X-User-Id": "log-user"})
    injected_bootstrap(r, PAGE)
    e = apache.access_entry(r.test_id)
    assert e["experiences"] == experiences_list(experience_fixture("identified-visitor"))


@pytest.mark.parametrize("method, cookie, status, consent", [
    ("GET", "app-personalization-consent=denied", "no-consent", "denied"),
    ("HEAD", None, "skipped", "granted"),
])
def test_env_vars_without_a_call(apache, emulator, method, cookie, status, consent):
    headers = {"Cookie": cookie} if cookie else {}
    r = http_request(apache.port, "/ka/page.html", method=method, headers=headers)
    assert r.status == 200
    e = apache.access_entry(r.test_id)
    assert (e["ctflopt_status"], e["consent"]) == (status, consent)
    assert (e["profile_id"], e["experiences"], e["api_ms"]) == ("-", "-", "-")
    assert emulator.requests() == []
