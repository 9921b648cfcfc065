"""Issue 4 "Faults": the Experience API circuit breaker (`CtflOptBreaker COUNT SECONDS`) and a
failing socache provider for the entry cache.

Breaker: after COUNT consecutive failures within SECONDS, calls are skipped (the emulator
records no more requests; CTFLOPT_STATUS breaker-open; baseline page with the consent-only
bootstrap); the status JSON and ?auto show it open; after the cool-down exactly one request
probes, and its outcome closes or re-opens the breaker. The breaker is per process and shared
by its threads, so these tests run one child (a single event process with 8 threads, and a
single prefork child) and restart it before each test.

Entry cache: `CtflOptEntryCache memcache:127.0.0.1:<nothing listening>` with the CDA
configured: pages are still served (200), personalized from direct CDA fetches, or with the
baseline content when the CDA fails too."""

import threading
import time

import pytest

from httpd import (api_directives, free_port, html_page, http_request, injected_bootstrap,
                   parse_bootstrap, wait_until)
from prodkit import (MPM_DEFAULTS, STATUS_HANDLERS, ProdApache, keepalive, new_root, serve,
                     status_auto, status_json)

COUNT, COOLDOWN = 3, 2
BUDGET_MS = 300
PAGE = html_page("breaker", body="<p>baseline</p>")
ENTRY_BODY = """
<div id="visitors" data-ctfl-baseline-id="2Z2WLOx07InSewC3LUB3eX"><p>BASELINE-ALL</p>
<template data-ctfl-variant-id="3VBvwg9ysjjmnJRTQtIYK4"><p>VARIANT-RETURN</p></template>
<template data-ctfl-variant-id="1UFf7qr4mHET3HYuYmcpEj"><p>VARIANT-NEW</p></template></div>
"""
ENTRY_PAGE = html_page("entries", body=ENTRY_BODY)


@pytest.fixture(scope="module", params=["single-event", "single-prefork"])
def apache(request, workdir, emulator, module_so):
    mpm = request.param.split("-")[1]
    a = ProdApache(new_root(workdir, f"breaker-{request.param}"), mpm, module_so,
                   mpm_block=MPM_DEFAULTS[request.param], modules=["socache_memcache"])
    a.label = request.param
    a.write_doc("b/page.html", PAGE)
    a.write_doc("b/entries.html", ENTRY_PAGE)
    off = a.port_for("breaker-off")
    dead = free_port()                      # the memcache "server": nothing listens there
    site = api_directives(emulator, timeout_ms=BUDGET_MS) + f"""
CtflOptBreaker {COUNT} {COOLDOWN}
CtflOptContentfulSpace uelxcuo7v97l
CtflOptContentfulToken itest-token
CtflOptContentfulURL {emulator.base}/contentful/
CtflOptEntryCache memcache:127.0.0.1:{dead} 300
<Location /b/>
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
{STATUS_HANDLERS}<VirtualHost 127.0.0.1:{off}>
    ServerName breaker-off.test
    CtflOptBreaker Off
    <Location /b/>
        CtflOptEngine On
        CtflOptConsentDefault granted
    </Location>
</VirtualHost>
"""
    yield from serve(a, site)


@pytest.fixture
def fresh(apache, expect_log):
    apache.restart()                        # a new breaker, a new log rate limiter
    if apache.mpm == "prefork":
        # One prefork child busy with a slow request: the parent notes it cannot start another.
        expect_log("AH00161", required=False)
    return apache


def page(a, conn, port=None, path="/b/page.html"):
    r = http_request(port or a.port, path, conn=conn)
    assert r.status == 200
    return r, a.access_entry(r.test_id)["ctflopt_status"]


def assert_baseline(r, original=PAGE):
    boot = injected_bootstrap(r, original)
    assert boot.consent is True and boot.data is None
    assert r.header_all("Set-Cookie") == []


def settled(emulator, expected):
    """Hung/delayed requests are recorded when the emulator answers: wait (bounded)."""
    try:
        wait_until(lambda: len(emulator.requests()) >= expected, 5, 0.1, "emulator records")
    except TimeoutError:
        pass
    time.sleep(0.2)
    return len(emulator.requests())


def open_breaker(a, emulator, conn, mode="500"):
    emulator.fault(mode)
    for i in range(COUNT):
        r, status = page(a, conn)
        assert status == ("timeout" if mode == "hang" else "error"), (i, status)
        assert_baseline(r)
    assert settled(emulator, COUNT) == COUNT


def test_breaker_opens_and_skips_calls(fresh, emulator, expect_log):
    expect_log("CTFLOPT0102")
    expect_log("CTFLOPT0104")
    conn = keepalive(fresh.port)
    try:
        before = status_json(fresh.port, conn=conn)
        assert before["breaker"] == "closed"
        open_breaker(fresh, emulator, conn)
        for _ in range(5):
            r, status = page(fresh, conn)
            assert status == "breaker-open"
            assert_baseline(r)
        assert len(emulator.requests()) == COUNT, "calls were made while the breaker was open"
        after = status_json(fresh.port, conn=conn)
        auto = status_auto(fresh.port, conn=conn)
    finally:
        conn.close()
    assert after["breaker"] == "open" and auto["CtflOptBreaker"] == "open"
    d = {k: after["counters"][k] - before["counters"][k] for k in after["counters"]}
    assert (d["breaker_opened"], d["breaker_skipped"], d["evaluated"], d["evaluated_error"]) == \
        (1, 5, COUNT, COUNT), d
    assert int(auto["CtflOptBreakerSkipped"]) == after["counters"]["breaker_skipped"]
    lines = [x for x in fresh.error_log.lines_since() if "CTFLOPT0104" in x]
    assert len(lines) == 1 and "opened" in lines[0], lines


def wait_cooldown(a, conn):
    """Until the status no longer says open (bounded by the cool-down plus a second)."""
    wait_until(lambda: status_json(a.port, conn=conn)["breaker"] != "open", COOLDOWN + 1.5, 0.2,
               "the cool-down to end")


def test_successful_probe_closes_the_breaker(fresh, emulator, expect_log):
    expect_log("CTFLOPT0102")
    expect_log("CTFLOPT0104")
    conn = keepalive(fresh.port)
    try:
        open_breaker(fresh, emulator, conn)
        emulator.fault("none")
        r, status = page(fresh, conn)
        assert status == "breaker-open" and len(emulator.requests()) == COUNT
        wait_cooldown(fresh, conn)
        r, status = page(fresh, conn)       # the probe
        assert status == "ok"
        assert injected_bootstrap(r, PAGE).data is not None
        assert len(emulator.requests()) == COUNT + 1
        assert status_json(fresh.port, conn=conn)["breaker"] == "closed"
        for i in range(3):
            assert page(fresh, conn)[1] == "ok"
        assert len(emulator.requests()) == COUNT + 4
    finally:
        conn.close()


def test_failed_probe_reopens_the_breaker(fresh, emulator, expect_log):
    expect_log("CTFLOPT0102")
    expect_log("CTFLOPT0104")
    conn = keepalive(fresh.port)
    try:
        open_breaker(fresh, emulator, conn)
        wait_cooldown(fresh, conn)
        r, status = page(fresh, conn)       # the probe fails
        assert status == "error"
        assert_baseline(r)
        assert len(emulator.requests()) == COUNT + 1
        for _ in range(3):
            assert page(fresh, conn)[1] == "breaker-open"
        assert len(emulator.requests()) == COUNT + 1
        js = status_json(fresh.port, conn=conn)
        assert js["breaker"] == "open" and js["counters"]["breaker_opened"] == 2
    finally:
        conn.close()


def test_timeouts_open_the_breaker(fresh, emulator, expect_log):
    expect_log("CTFLOPT0101")
    expect_log("CTFLOPT0104")
    conn = keepalive(fresh.port)
    try:
        open_breaker(fresh, emulator, conn, mode="hang")
        for _ in range(3):
            r, status = page(fresh, conn)
            assert status == "breaker-open"
            assert_baseline(r)
        assert settled(emulator, COUNT + 1) == COUNT
    finally:
        conn.close()


def test_threads_of_a_process_share_the_breaker(fresh, emulator, expect_log):
    """Failures from concurrent connections count for the one breaker of the process."""
    expect_log("CTFLOPT0102")
    expect_log("CTFLOPT0104")
    emulator.fault("500")
    errors = []

    def visit():
        try:
            assert http_request(fresh.port, "/b/page.html").status == 200
        except Exception as e:  # collected and asserted below
            errors.append(repr(e))

    threads = [threading.Thread(target=visit) for _ in range(2 * COUNT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    made = len(emulator.requests())
    assert COUNT <= made <= 2 * COUNT
    for _ in range(3):
        r = http_request(fresh.port, "/b/page.html")
        assert fresh.access_entry(r.test_id)["ctflopt_status"] == "breaker-open"
    assert len(emulator.requests()) == made


def test_breaker_off_calls_every_time(fresh, emulator, expect_log):
    expect_log("CTFLOPT0102")
    port = fresh.ports["breaker-off"]
    emulator.fault("500")
    conn = keepalive(port)
    try:
        for _ in range(2 * COUNT + 2):
            r, status = page(fresh, conn, port=port)
            assert status == "error"
    finally:
        conn.close()
    assert len(emulator.requests()) == 2 * COUNT + 2
    assert not [x for x in fresh.error_log.lines_since() if "CTFLOPT0104" in x]


# ---- the socache provider of the entry cache fails --------------------------------------------

SOCACHE_FAILURE = [r"AH00791", r"AH00790", r"CTFLOPT0303"]   # mod_socache_memcache, our store line


def test_failing_entry_cache_still_personalizes_from_the_cda(fresh, emulator, expect_log):
    for p in SOCACHE_FAILURE:
        expect_log(p, required=False)
    conn = keepalive(fresh.port)
    try:
        for i in range(3):
            r, status = page(fresh, conn, path="/b/entries.html")
            assert status == "ok"
            assert b"VARIANT-NEW" in r.body and b"BASELINE-ALL" not in r.body
            assert r.body.count(b"__OPTIMIZATION_CONFIG__") == 1
        js = status_json(fresh.port, conn=conn)
    finally:
        conn.close()
    # The shared cache stores nothing; this (single) process keeps what it decoded,
    # so only the first page asks the CDA, and nothing is read from memcache.
    assert len(emulator.requests("cda")) == 1
    assert js["counters"]["entry_cache_hits"] == js["counters"]["entry_memory_hits"] > 0
    assert js["counters"]["entry_cache_store_errors"] >= 1


@pytest.mark.parametrize("cda_fault", ["500", "hang", "reset"])
def test_failing_entry_cache_and_cda_serve_the_baseline(fresh, emulator, expect_log, cda_fault):
    for p in SOCACHE_FAILURE:
        expect_log(p, required=False)
    expect_log("CTFLOPT0301" if cda_fault == "hang" else "CTFLOPT0302")
    emulator.fault(cda_fault, api="cda")
    conn = keepalive(fresh.port)
    try:
        r, status = page(fresh, conn, path="/b/entries.html")
    finally:
        conn.close()
    assert status == "ok"                    # the Experience call worked
    assert b"BASELINE-ALL" in r.body and b"VARIANT-NEW" not in r.body
    boot = parse_bootstrap(r.body[r.body.index(b"<script src="):r.body.index(b"</head>")])
    assert boot.data is not None
