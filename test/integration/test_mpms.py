"""Issue 4: the same site under the event, worker and prefork MPMs — local, proxied and SSI
pages, mod_deflate after the filter, ErrorDocument pages left alone, and visitors served
concurrently by the threads of one process never see each other's profile."""

import gzip
import threading

import pytest

from httpd import (api_directives, html_page, http_request, injected_bootstrap, parse_bootstrap,
                   split_injection)
from prodkit import ProdApache, keepalive, new_root, serve

PAGE = html_page("mpm", body="<p>same page, any MPM</p>")
ERR = b"<!DOCTYPE html><html><head><title>404</title></head><body>not here</body></html>\n"
SSI = (b"<!DOCTYPE html><html><head><title>ssi</title></head><body>"
       b'<!--#include virtual="/m/part.html" --></body></html>\n')
PART = b"<p>part</p>"
SSI_EXPANDED = SSI.replace(b'<!--#include virtual="/m/part.html" -->', PART)


@pytest.fixture(scope="module", params=["event", "worker", "prefork"])
def apache(request, workdir, emulator, origin, module_so):
    a = ProdApache(new_root(workdir, f"mpms-{request.param}"), request.param, module_so)
    a.write_doc("m/page.html", PAGE)
    a.write_doc("m/ssi.shtml", SSI)
    a.write_doc("m/part.html", PART)
    a.write_doc("m/errors/404.html", ERR)
    site = api_directives(emulator) + f"""
<Location /m/>
    CtflOptEngine On
    CtflOptConsentDefault granted
    AddOutputFilterByType DEFLATE text/html
    ErrorDocument 404 /m/errors/404.html
</Location>
<Location /px/>
    ProxyPass http://127.0.0.1:{origin.port}/app/
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
"""
    yield from serve(a, site)


def test_new_then_returning_visitor(apache, emulator):
    first = apache.get("/m/page.html")
    aid = injected_bootstrap(first, PAGE).data["profile"]["id"]
    assert first.cookies["ctfl-opt-aid"].value == aid
    again = apache.get("/m/page.html", headers={"Cookie": f"ctfl-opt-aid={aid}"})
    assert injected_bootstrap(again, PAGE).data["profile"]["id"] == aid
    assert [r["path"].rsplit("/", 1)[-1] for r in emulator.requests()][-1] == aid


def test_proxied_page(apache, origin, emulator):
    origin.route("/app/page.html", body=PAGE, chunking="random", seed=9, max_chunk=64)
    r = apache.get("/px/page.html")
    assert injected_bootstrap(r, PAGE).data is not None


def test_ssi_with_deflate(apache, emulator):
    r = apache.get("/m/ssi.shtml", headers={"Accept-Encoding": "gzip"})
    assert r.header("Content-Encoding") == "gzip"
    plain = gzip.decompress(r.body)
    boot = parse_bootstrap(split_injection(SSI_EXPANDED, plain, SSI_EXPANDED.index(b"</head>")))
    assert boot.data is not None and plain.count(b"__OPTIMIZATION_CONFIG__") == 1
    assert len(emulator.requests()) == 1


def test_error_document_left_alone(apache):
    r = apache.get("/m/missing.html")
    assert r.status == 404 and r.body == ERR


VISITORS, ROUNDS = 8, 6


def test_concurrent_visitors_keep_their_own_profile(apache, emulator):
    """8 visitors at once, each on its own keep-alive connection (threads of one process under
    event/worker), 6 pages each: every page carries the visitor's own profile id."""
    problems, ids = [], {}

    def visitor(n):
        conn = keepalive(apache.port)
        try:
            aid = None
            for i in range(ROUNDS):
                headers = {"Cookie": f"ctfl-opt-aid={aid}"} if aid else {}
                r = http_request(apache.port, f"/m/page.html?v={n}&i={i}", conn=conn,
                                 headers=headers)
                got = injected_bootstrap(r, PAGE).data["profile"]["id"]
                if aid is None:
                    aid = got
                elif got != aid:
                    problems.append((n, i, aid, got))
            ids[n] = aid
        except Exception as e:      # reported below, with the others
            problems.append((n, repr(e)))
        finally:
            conn.close()

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(VISITORS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not problems, problems
    assert len(set(ids.values())) == VISITORS
    assert len(emulator.requests()) == VISITORS * ROUNDS
