"""Issue 3, Contentful entries on the request path: a warm entry cache means no CDA request
(shared by every process, independent of the visitor); unknown ids are cached negatively; with
the CDA down a stale cache still personalizes (stale-while-error) and a cold cache serves the
baseline, stamped, in time; the token never shows. Spec §10.5, issue 3 "Contentful entries".

apache is restarted before each test: a cold (new) shmcb cache, counters at 0, and a fresh
log rate limiter (one line per reason per 10 s per process)."""

import json
import time

import pytest

from httpd import REPO, api_directives, free_port, http_request
from it_personalize import (CDA_TOKEN, IDENTIFIED, NEW, SPACE, STATUS_LOCATION, STATUS_PATH,
                            USER_HEADER, assert_baseline_rendering, assert_demo_resolution,
                            cda_directives,
                            counters, delta, no_variant_templates, settle_cda_records,
                            strip_bootstrap, use_entry_cache)

PAGE = (REPO / "test" / "demo" / "site" / "index.html").read_bytes()
TOP_LEVEL = 8            # outermost marked elements of the demo page
BUDGET_MS = 400          # CtflOptTimeout, for the Experience API and the CDA
MARGIN_S = 1.5           # as test_faults.py: "served within budget + a small margin"
UNKNOWN_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>unknown entry</title></head>
<body>
<div id="unknown" data-ctfl-baseline-id="itNoSuchEntry0001"><p>origin content</p></div>
</body></html>
"""


def site_config(emulator, ttl=None):
    return api_directives(emulator, timeout_ms=BUDGET_MS) + cda_directives(emulator, ttl) + f"""
<Location /c/>
    CtflOptEngine On
    CtflOptUserId header:{USER_HEADER}
</Location>
""" + STATUS_LOCATION


def site(apache, emulator, origin):
    use_entry_cache(apache)
    apache.write_doc("c/index.html", PAGE)
    apache.write_doc("c/unknown.html", UNKNOWN_PAGE)
    return site_config(emulator)


@pytest.fixture
def fresh(apache, emulator):
    def restart(ttl=None):
        apache.restart(site_config(emulator, ttl))
        return apache
    return restart


def view(apache, headers, path="/c/index.html"):
    r = apache.get(path, headers=headers)
    assert r.status == 200
    return r


def personalized_body(r, identified):
    body, boot = strip_bootstrap(r.body, PAGE)
    assert boot.data is not None
    assert no_variant_templates(body)
    assert_demo_resolution(body.decode("utf-8"), identified)
    return body


@pytest.mark.both_mpms
def test_warm_cache_makes_no_cda_request(fresh, emulator):
    apache = fresh()
    personalized_body(view(apache, NEW), False)
    cold = emulator.requests("cda")
    assert cold, "a cold cache must ask the CDA"
    for rec in cold:
        assert rec["path"].endswith(f"/spaces/{SPACE}/environments/master/entries"), rec["path"]
        assert rec["query"].get("include") == "10" and rec["query"].get("sys.id[in]"), rec["query"]
        assert rec["status"] == 200
    c1 = counters(apache)
    assert c1["cda_calls"] == len(cold)
    assert c1["elements_rewritten"] == TOP_LEVEL

    # Another new visitor, then an identified one: the cache does not depend on the visitor.
    personalized_body(view(apache, NEW), False)
    personalized_body(view(apache, IDENTIFIED), True)
    assert emulator.requests("cda") == cold, "the warm cache still asked the CDA"
    d = delta(counters(apache), c1)
    assert d.get("cda_calls", 0) == 0 and d.get("entry_cache_misses", 0) == 0, d
    assert d["entry_cache_hits"] > 0 and d["elements_rewritten"] == 2 * TOP_LEVEL, d


def test_processes_keep_fresh_entries_decoded_until_the_ttl(fresh, emulator):
    """Each process keeps the objects it decoded while they are fresh (no shared-cache read,
    no JSON); after the TTL the shared cache and the CDA decide again."""
    apache = fresh(ttl=2)
    personalized_body(view(apache, NEW), False)
    cold = len(emulator.requests("cda"))
    before = counters(apache)
    for _ in range(6):
        personalized_body(view(apache, NEW), False)
        personalized_body(view(apache, IDENTIFIED), True)
    d = delta(counters(apache), before)
    assert len(emulator.requests("cda")) == cold
    assert d.get("entry_memory_hits", 0) > 0 and d["entry_memory_hits"] <= d["entry_cache_hits"], d
    assert d["elements_rewritten"] == 12 * TOP_LEVEL, d
    mem = json.loads(http_request(apache.port, STATUS_PATH).body)["decoded_entries"]
    assert mem["objects"] > 0 and mem["bytes"] > 0, mem
    time.sleep(2.5)                                              # past the TTL
    personalized_body(view(apache, IDENTIFIED), True)
    assert len(settle_cda_records(emulator, cold + 1)) > cold, "expired entries were not fetched"


def test_unknown_entry_is_cached_negatively(fresh, emulator):
    apache = fresh()
    for _ in range(2):
        r = view(apache, NEW, "/c/unknown.html")
        body, _ = strip_bootstrap(r.body, UNKNOWN_PAGE)
        assert_baseline_rendering(body, UNKNOWN_PAGE)
    assert len(emulator.requests("cda")) == 1
    c = counters(apache)
    assert c["cda_calls"] == 1 and c["entry_negative_hits"] >= 1, c


# fault mode -> the warning it must produce
CDA_FAULTS = [("500", "CTFLOPT0302"), ("reset", "CTFLOPT0302"), ("hang", "CTFLOPT0301")]


@pytest.mark.both_mpms
@pytest.mark.parametrize("mode, msg", CDA_FAULTS)
def test_stale_entries_served_when_the_cda_fails(fresh, emulator, expect_log, mode, msg):
    expect_log(msg + r": .* [1-9]\d* stale objects served")
    apache = fresh(ttl=1)
    personalized_body(view(apache, IDENTIFIED), True)            # warm for both visitors
    warm = len(emulator.requests("cda"))
    before = counters(apache)
    time.sleep(1.5)                                               # past the 1 s TTL
    emulator.fault(mode, api="cda")
    personalized_body(view(apache, IDENTIFIED), True)
    personalized_body(view(apache, NEW), False)
    assert len(settle_cda_records(emulator, warm + 1)) > warm, "stale entries were not refreshed"
    d = delta(counters(apache), before)
    assert d.get("entry_stale_served", 0) > 0 and d.get("cda_errors", 0) > 0, d
    assert d["elements_rewritten"] == 2 * TOP_LEVEL, d


@pytest.mark.both_mpms
@pytest.mark.parametrize("mode, msg", CDA_FAULTS)
def test_cold_cache_and_cda_down_serves_the_baseline_in_time(fresh, emulator, expect_log,
                                                           mode, msg):
    expect_log(msg + r": .* 0 stale objects served")
    apache = fresh()
    emulator.fault(mode, api="cda")
    r = view(apache, NEW)
    body, boot = strip_bootstrap(r.body, PAGE)
    assert boot.data is not None                                  # the Experience API worked
    assert_baseline_rendering(body, PAGE)
    assert r.elapsed < BUDGET_MS / 1000 + MARGIN_S, f"served after {r.elapsed:.3f}s"
    settle_cda_records(emulator, 1)
    c = counters(apache)
    assert c["cda_errors"] >= 1 and c["entry_stale_served"] == 0, c
    # The token is a secret: not in the page, not in the log.
    assert CDA_TOKEN.encode() not in r.body
    assert CDA_TOKEN not in "\n".join(apache.error_log.lines_since(0))


def test_cda_refused_connection_serves_the_baseline(apache, emulator, expect_log):
    """Nothing listens at the CDA URL: same as any other CDA failure."""
    expect_log(r"CTFLOPT030[12]: .* 0 stale objects served")
    dead = f"http://127.0.0.1:{free_port()}/"
    config = site_config(emulator).replace(f"CtflOptContentfulURL {emulator.base}/contentful/",
                                           f"CtflOptContentfulURL {dead}")
    assert dead in config
    apache.restart(config)
    try:
        r = view(apache, NEW)
        body, _ = strip_bootstrap(r.body, PAGE)
        assert_baseline_rendering(body, PAGE)
        assert r.elapsed < BUDGET_MS / 1000 + MARGIN_S, f"served after {r.elapsed:.3f}s"
        assert counters(apache)["cda_errors"] >= 1
    finally:
        apache.restart(site_config(emulator))


def test_token_from_file_is_sent_as_bearer_and_never_shown(apache, emulator):
    token = "file-token-7f3a9c"
    token_file = apache.root / "cda.token"
    token_file.write_text(token + "\n")
    config = site_config(emulator).replace(f"CtflOptContentfulToken {CDA_TOKEN}",
                                           f"CtflOptContentfulTokenFile {token_file}")
    assert str(token_file) in config
    apache.restart(config)
    try:
        r = view(apache, NEW)
        personalized_body(r, False)
        recs = emulator.requests("cda")
        assert recs
        for rec in recs:
            assert rec["headers"].get("authorization") == f"Bearer {token}", rec["headers"]
            assert token not in rec.get("query_string", "")
        assert token.encode() not in r.body
        assert token not in "\n".join(apache.error_log.lines_since(0))
    finally:
        apache.restart(site_config(emulator))
