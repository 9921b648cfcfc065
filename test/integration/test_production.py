"""Issue 4, in front of real sites: compressed, conditional and ranged origins behind mod_proxy,
the neighbouring modules (mod_include, mod_deflate, HTTP/2 h2c, ErrorDocument), and the
operator's view (mod_status section and ?auto lines, the JSON endpoint, the startup line, message
ids, every directive documented in conf/ctflopt.conf).

Reverse-proxy recipes exercised here:
- default: the request hook asks a proxied origin for `Accept-Encoding: identity` and puts the
  client's value back for mod_deflate after the filter (`AddOutputFilterByType DEFLATE text/html`);
- origins that compress anyway: `SetOutputFilter INFLATE;DEFLATE` (the CTFLOPT filter is added
  by the module and sorts between them: INFLATE is RESOURCE-1, CTFLOPT RESOURCE+1, DEFLATE
  CONTENT_SET)."""

import gzip
import re
import subprocess
from pathlib import Path

import pytest

from httpd import (REPO, api_directives, gzip_bytes, html_page, http_request, injected_bootstrap,
                   parse_bootstrap, split_injection)
from prodkit import (STATUS_HANDLERS, ProdApache, new_root, representation, serve, status_auto,
                     status_json)

PAGE = html_page("proxied", body="<p>from the origin</p>")
LOCAL = html_page("local", body="<p>served by apache</p>")
ERR404 = b"<!DOCTYPE html><html><head><title>gone</title></head><body>custom 404</body></html>\n"
ERR500 = b"<!DOCTYPE html><html><head><title>oops</title></head><body>custom 500</body></html>\n"
SSI_MAIN = (b"<!DOCTYPE html>\n<html><head><title>ssi</title></head><body>\n"
            b'<!--#include virtual="/ssi/part.html" -->\n'
            b'<p>status=<!--#echo var="CTFLOPT_STATUS" --></p>\n</body></html>\n')
SSI_PART = b"<html><head><title>part</title></head><body><p>included</p></body></html>"
SSI_EXPANDED = (SSI_MAIN.replace(b'<!--#include virtual="/ssi/part.html" -->', SSI_PART)
                .replace(b'<!--#echo var="CTFLOPT_STATUS" -->', b"ok"))




def site_conf(a, emulator, origin, scripted) -> str:
    a.write_doc("ssi/page.shtml", SSI_MAIN)
    a.write_doc("ssi/part.html", SSI_PART)
    a.write_doc("err/404.html", ERR404)
    a.write_doc("err/500.html", ERR500)
    a.write_doc("h2/page.html", LOCAL)
    a.write_doc("st/notes.txt", b"plain text\n")
    a.write_doc("st/page.html", LOCAL)
    s, h = scripted.base, f"http://127.0.0.1:{origin.port}"
    engine = "CtflOptEngine On\n    CtflOptConsentDefault granted"
    return "Protocols h2c http/1.1\n" + api_directives(emulator) + f"""
<Location /px/>
    ProxyPass {s}/app/
    {engine}
</Location>
<Location /gz/>
    ProxyPass {s}/app/
    {engine}
    AddOutputFilterByType DEFLATE text/html
</Location>
<Location /raw/>
    ProxyPass {s}/app/
</Location>
<Location /hpx/>
    ProxyPass {h}/app/
    {engine}
</Location>
<Location /chain/>
    ProxyPass {h}/app/
    {engine}
    SetOutputFilter INFLATE;DEFLATE
</Location>
<Location /chain-explicit/>
    ProxyPass {h}/app/
    {engine}
    SetOutputFilter INFLATE;CTFLOPT;DEFLATE
</Location>
<Location /ssi/>
    {engine}
    AddOutputFilterByType DEFLATE text/html
</Location>
<Location /h2/>
    {engine}
</Location>
<Location /st/>
    {engine}
</Location>
<Location /err/>
    {engine}
</Location>
<Location /missing/>
    {engine}
    ErrorDocument 404 /err/404.html
</Location>
<Location /perr/>
    ProxyPass {h}/app/
    {engine}
    ProxyErrorOverride On
    ErrorDocument 500 /err/500.html
</Location>
{STATUS_HANDLERS}"""


@pytest.fixture(scope="module")
def apache(workdir, emulator, origin, scripted, module_so):
    a = ProdApache(new_root(workdir, "production"), "event", module_so, modules=["http2"])
    yield from serve(a, site_conf(a, emulator, origin, scripted))


def decoded(r) -> bytes:
    return gzip.decompress(r.body) if r.header("Content-Encoding") == "gzip" else r.body


def tokens(r, name) -> set:
    return {v.strip().lower() for h in r.header_all(name) for v in h.split(",") if v.strip()}


def origin_saw(scripted, path) -> dict:
    recs = scripted.requests_to(path)
    assert len(recs) == 1, recs
    return recs[0]["headers"]


# ---- compressed origins -----------------------------------------------------------------------

@pytest.mark.parametrize("location, accept, coding", [
    ("px", "gzip, deflate, br", None),      # no DEFLATE configured: identity to the client
    ("px", None, None),
    ("gz", "gzip, deflate, br", "gzip"),    # DEFLATE after us sees the client's Accept-Encoding
    ("gz", None, None),
])
def test_origin_is_asked_for_identity(apache, scripted, emulator, location, accept, coding):
    scripted.route("/app/page.html", representation(PAGE))
    r = apache.get(f"/{location}/page.html", headers={"Accept-Encoding": accept} if accept else {})
    assert origin_saw(scripted, "/app/page.html").get("accept-encoding") == "identity"
    assert r.header("Content-Encoding") == coding
    plain = decoded(r)
    boot = parse_bootstrap(split_injection(PAGE, plain, PAGE.index(b"</head>")))
    assert boot.data["profile"]["id"] == r.cookies["ctfl-opt-aid"].value
    if coding:
        assert "accept-encoding" in tokens(r, "Vary")


@pytest.mark.parametrize("accept", ["gzip", None])
def test_gzip_origin_through_the_inflate_chain(apache, origin, emulator, accept):
    """An origin that compresses whatever it is asked: INFLATE -> CTFLOPT -> DEFLATE."""
    origin.route("/app/page.html", body=gzip_bytes(PAGE), chunking="random", seed=11,
                 headers=[("Content-Encoding", "gzip"), ("ETag", '"gz-1"'),
                          ("Vary", "Accept-Encoding")])
    r = apache.get("/chain/page.html", headers={"Accept-Encoding": accept} if accept else {})
    assert r.status == 200
    assert r.header("Content-Encoding") == ("gzip" if accept else None)
    boot = parse_bootstrap(split_injection(PAGE, decoded(r), PAGE.index(b"</head>")))
    assert boot.data is not None
    assert r.header("ETag") is None or r.header("ETag").startswith("W/")
    assert "cookie" in tokens(r, "Vary")


def test_ctflopt_named_in_the_chain_injects_once(apache, origin, emulator):
    """`SetOutputFilter INFLATE;CTFLOPT;DEFLATE` (the chain as the issue writes it) must not
    add a second CTFLOPT filter next to the one the module inserts itself."""
    origin.route("/app/page.html", body=gzip_bytes(PAGE), headers=[("Content-Encoding", "gzip")])
    r = apache.get("/chain-explicit/page.html", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    plain = decoded(r)
    assert plain.count(b"__OPTIMIZATION_CONFIG__") == 1, "bootstrap injected more than once"
    parse_bootstrap(split_injection(PAGE, plain, PAGE.index(b"</head>")))


ENCODED = {
    "br": b"\x1b\x8f\x00\xf8\x25\x09\x76\x2c<html><head></head>",   # opaque bytes
    "x-custom": b"<html><head></head><body>not really html</body></html>",
    "gzip, br": b"\x0b\x02\x80<html><head></head>\x03",
}


@pytest.mark.parametrize("location", ["hpx", "chain"])
@pytest.mark.parametrize("coding", sorted(ENCODED))
def test_other_encodings_pass_untouched(apache, origin, location, coding):
    body = ENCODED[coding]
    origin.route("/app/enc", body=body, headers=[("Content-Encoding", coding), ("ETag", '"e1"')])
    r = apache.get(f"/{location}/enc", headers={"Accept-Encoding": "gzip, br"})
    assert r.status == 200
    assert r.header("Content-Encoding") == coding
    assert r.body == body
    assert r.header("ETag") == '"e1"'


def test_origin_ignoring_accept_encoding_without_chain_passes_untouched(apache, origin, emulator):
    origin.route("/app/page.html", body=gzip_bytes(PAGE), headers=[("Content-Encoding", "gzip")])
    r = apache.get("/hpx/page.html")
    assert r.status == 200 and r.header("Content-Encoding") == "gzip"
    assert r.body == gzip_bytes(PAGE)


# ---- conditional and ranged requests ---------------------------------------------------------

CONDITIONAL = {
    "if-none-match": ({"If-None-Match": '"v1"'}, 304),
    "if-modified-since": ({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, 304),
    "range": ({"Range": "bytes=0-9"}, 206),
    "if-range": ({"Range": "bytes=0-9", "If-Range": '"v1"'}, 206),
}


@pytest.mark.parametrize("case", sorted(CONDITIONAL))
def test_conditional_and_range_headers_never_reach_the_origin(apache, scripted, emulator, case):
    headers, origin_status = CONDITIONAL[case]
    scripted.route("/app/page.html", representation(PAGE))
    control = apache.get("/raw/page.html", headers=headers)
    assert control.status == origin_status, "precondition: the origin honours the header"
    scripted.reset()
    scripted.route("/app/page.html", representation(PAGE))
    r = apache.get("/px/page.html", headers=headers)
    seen = origin_saw(scripted, "/app/page.html")
    for name in ("if-none-match", "if-modified-since", "range", "if-range"):
        assert name not in seen, f"{name} reached the origin"
    assert r.status == 200
    assert r.header("Content-Range") is None
    assert injected_bootstrap(r, PAGE).data is not None


def test_rewritten_output_drops_the_origin_validators(apache, scripted, emulator):
    scripted.route("/app/page.html", representation(PAGE, cache_control="public, max-age=600"))
    raw = apache.get("/raw/page.html")
    assert raw.header("ETag") == '"v1"' and raw.header("Last-Modified"), "precondition"
    r = apache.get("/px/page.html")
    injected_bootstrap(r, PAGE)
    assert r.header("ETag") is None or r.header("ETag").startswith("W/"), r.header("ETag")
    assert r.header("Last-Modified") is None
    assert r.header("Accept-Ranges") is None
    assert tokens(r, "Cache-Control") == {"private"}
    assert {"cookie", "accept-encoding"} <= tokens(r, "Vary")


@pytest.mark.parametrize("status, extra", [
    (304, [("ETag", '"v1"')]),
    (206, [("Content-Range", f"bytes 0-9/{len(PAGE)}")]),
])
def test_304_and_206_from_the_origin_pass_through(apache, origin, emulator, status, extra):
    body = b"" if status == 304 else PAGE[:10]
    origin.route("/app/page.html", status=status, body=body, headers=extra)
    for location in ("hpx", "chain"):
        r = apache.get(f"/{location}/page.html", headers={"Accept-Encoding": "gzip"})
        assert r.status == status
        assert r.body == body
        for k, v in extra:
            assert r.header(k) == v


@pytest.mark.parametrize("location", ["px", "gz", "chain"])
def test_head_through_the_proxy(apache, scripted, origin, emulator, location):
    scripted.route("/app/page.html", representation(PAGE))
    origin.route("/app/page.html", body=PAGE)
    r = apache.head(f"/{location}/page.html", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.body == b""
    assert emulator.requests() == []
    assert r.header_all("Set-Cookie") == []


# ---- neighbouring modules ---------------------------------------------------------------------

def test_ssi_output_compressed_by_deflate_gets_one_bootstrap(apache, emulator):
    r = apache.get("/ssi/page.shtml", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.header("Content-Encoding") == "gzip"
    plain = gzip.decompress(r.body)
    assert plain.count(b"__OPTIMIZATION_CONFIG__") == 1
    boot = parse_bootstrap(split_injection(SSI_EXPANDED, plain, SSI_EXPANDED.index(b"</head>")))
    assert boot.data["profile"]["id"] == r.cookies["ctfl-opt-aid"].value
    assert len(emulator.requests()) == 1


def test_error_document_is_left_alone(apache, emulator):
    r = apache.get("/missing/nothing-here.html")
    assert r.status == 404
    assert r.body == ERR404
    assert b"__OPTIMIZATION_" not in r.body


def test_proxied_error_with_error_document_is_left_alone(apache, origin, emulator):
    origin.route("/app/boom", status=500, body=PAGE)
    r = apache.get("/perr/boom")
    assert r.status == 500
    assert r.body == ERR500


def curl_h2(port, path, *extra):
    """HTTP/2 over cleartext with prior knowledge: (status line, headers dict, raw body)."""
    out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "20",
                          "-D", "-", *extra, f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return lines[0], headers, body


def test_h2c_page_is_personalized(apache, emulator):
    status, headers, body = curl_h2(apache.port, "/h2/page.html")
    assert status.startswith("HTTP/2 200")
    boot = parse_bootstrap(split_injection(LOCAL, body, LOCAL.index(b"</head>")))
    cookie = [c for c in headers["set-cookie"] if c.startswith("ctfl-opt-aid=")]
    assert cookie and cookie[0].split(";")[0].split("=", 1)[1] == boot.data["profile"]["id"]
    assert len(emulator.requests()) == 1


def test_h2c_with_ssi_and_deflate(apache, emulator):
    status, headers, body = curl_h2(apache.port, "/ssi/page.shtml", "-H", "Accept-Encoding: gzip")
    assert status.startswith("HTTP/2 200")
    assert headers["content-encoding"] == ["gzip"]
    plain = gzip.decompress(body)
    assert plain.count(b"__OPTIMIZATION_CONFIG__") == 1
    parse_bootstrap(split_injection(SSI_EXPANDED, plain, SSI_EXPANDED.index(b"</head>")))


def test_h2c_through_the_inflate_chain(apache, origin, emulator):
    origin.route("/app/page.html", body=gzip_bytes(PAGE), chunking="random", seed=4,
                 headers=[("Content-Encoding", "gzip")])
    status, headers, body = curl_h2(apache.port, "/chain/page.html", "-H", "Accept-Encoding: gzip")
    assert status.startswith("HTTP/2 200")
    plain = gzip.decompress(body)
    assert parse_bootstrap(split_injection(PAGE, plain, PAGE.index(b"</head>"))).data is not None


# ---- operator's view --------------------------------------------------------------------------

def counter_deltas(before: dict, after: dict) -> dict:
    return {k: after["counters"][k] - before["counters"][k] for k in after["counters"]
            if after["counters"][k] != before["counters"][k]}


def test_status_json_counts_what_happened(apache, emulator):
    """One keep-alive connection, so one process: its counters move exactly as expected."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", apache.port, timeout=30)
    try:
        before = status_json(apache.port, conn=conn)
        assert before["module"] == "mod_ctflopt" and before["breaker"] == "closed"
        for _ in range(3):
            injected_bootstrap(http_request(apache.port, "/st/page.html", conn=conn), LOCAL)
        r = http_request(apache.port, "/st/page.html", conn=conn,
                         headers={"Cookie": "app-personalization-consent=denied"})
        injected_bootstrap(r, LOCAL)
        assert http_request(apache.port, "/st/notes.txt", conn=conn).status == 200
        after = status_json(apache.port, conn=conn)
    finally:
        conn.close()
    assert after["pid"] == before["pid"]
    deltas = counter_deltas(before, after)
    assert deltas.pop("api_connections", 0) <= 1      # a pooled connection may be reused
    assert deltas.pop("filter_skipped", 0) <= 1       # notes.txt, if its filter is inserted
    assert deltas == {
        "requests_seen": 5, "evaluated": 3, "evaluated_ok": 3, "no_consent": 1, "skipped": 1,
        "filtered": 4, "bootstrap_injected": 4, "bytes_scanned": 4 * len(LOCAL),
    }, deltas


def camel(snake: str) -> str:
    return "".join(p.capitalize() for p in snake.split("_"))


def test_mod_status_section_and_auto_lines(apache, emulator):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", apache.port, timeout=30)
    try:
        injected_bootstrap(http_request(apache.port, "/st/page.html", conn=conn), LOCAL)
        js = status_json(apache.port, conn=conn)
        auto = status_auto(apache.port, conn=conn)
        html = http_request(apache.port, "/server-status", conn=conn).body.decode()
    finally:
        conn.close()
    assert auto["CtflOptBreaker"] == js["breaker"] == "closed"
    for key, value in js["counters"].items():
        line = "CtflOpt" + camel(key)
        assert line in auto, f"?auto has no {line}"
        # Same process, and only the status requests themselves happened in between.
        assert int(auto[line]) == value, (line, auto[line], value)
    assert "mod_ctflopt" in html and "circuit breaker" in html
    assert int(auto["CtflOptRequestsSeen"]) >= 1


def test_startup_line_lists_the_versions(apache):
    lines = [line for line in apache.error_log.lines_since(0) if "CTFLOPT0001:" in line]
    assert lines, "no CTFLOPT0001 startup line"
    line = lines[0]
    assert "[ctflopt:info]" in line
    version = re.search(r'#define CTFLOPT_VERSION "([^"]+)"',
                        (REPO / "mod_ctflopt" / "ctflopt_version.h").read_text()).group(1)
    expected = {
        "module": f"mod_ctflopt/{version}",
        "httpd": re.search(r"Apache/[\d.]+", subprocess.run(
            ["/usr/sbin/apache2", "-v"], capture_output=True, text=True).stdout).group(0),
        "libxml2": "libxml2 " + pkg_version("libxml-2.0"),
        "libcurl": "libcurl/" + pkg_version("libcurl"),
        "jansson": "jansson " + pkg_version("jansson"),
    }
    for what, text in expected.items():
        assert text in line, f"{what}: {text!r} not in {line!r}"


def pkg_version(name: str) -> str:
    return subprocess.run(["pkg-config", "--modversion", name], capture_output=True, text=True,
                          check=True).stdout.strip()


# ---- static checks of the sources against the shipped documentation ---------------------------

CONF = REPO / "conf" / "ctflopt.conf"
README = REPO / "README.md"


def glue_sources() -> list:
    """The module's C files (listed when a test runs: others may be adding or renaming)."""
    return sorted((REPO / "mod_ctflopt").glob("*.c")) + sorted((REPO / "filters").glob("*.c"))


def code_directives() -> set:
    """Directive names registered in command tables: AP_INIT_*("Name", ...) and wrappers
    such as DIR_FLAG("Name", ...)."""
    names = set()
    for p in glue_sources() + [REPO / "mod_ctflopt" / "ctflopt_cache.h"]:
        text = p.read_text()
        names |= set(re.findall(r'\b(?:AP_INIT_\w+|[A-Z_]*FLAG)\(\s*"(CtflOpt\w+)"', text))
    return names


def conf_blocks() -> dict:
    """Directive -> the comment block that documents it in conf/ctflopt.conf: a block is a run
    of lines up to a blank line; every '# CtflOptName ...' header line in it (several
    directives may share one description) maps to the whole block."""
    blocks = {}
    for block in re.split(r"\n\s*\n", CONF.read_text()):
        for name in re.findall(r"^#\s(CtflOpt\w+)\b", block, re.M):
            blocks[name] = block
    return blocks


def test_directive_sources_are_found():
    names = code_directives()
    assert {"CtflOptEngine", "CtflOptClientId", "CtflOptBreaker", "CtflOptBootstrap",
            "CtflOptEntryCache"} <= names, sorted(names)


def test_every_directive_is_documented_in_ctflopt_conf():
    missing = sorted(code_directives() - set(conf_blocks()))
    assert not missing, f"directives in the code but not documented in conf/ctflopt.conf: {missing}"


def test_every_documented_directive_has_a_default_or_says_it_has_none():
    undocumented = [k for k, block in conf_blocks().items()
                    if k in code_directives() and not re.search(r"default|required", block, re.I)]
    assert not undocumented, f"no default stated for: {undocumented}"


def test_no_directive_is_documented_that_the_code_does_not_have():
    stale = sorted(set(conf_blocks()) - code_directives())
    assert not stale, f"documented in conf/ctflopt.conf but not in the code: {stale}"


LOG_CALL = re.compile(r"\bap_log_(?:r|c|p|s|)error\s*\(")
BAD_LEVELS = {"APLOG_WARNING", "APLOG_ERR", "APLOG_CRIT", "APLOG_ALERT", "APLOG_EMERG"}


def log_calls(path: Path):
    """(line number, full argument text) of every ap_log_*error( call in a file."""
    text = path.read_text()
    for m in LOG_CALL.finditer(text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text.count("\n", 0, m.start()) + 1, text[m.end():i - 1]


def call_level(args: str):
    levels = set(re.findall(r"\bAPLOG_[A-Z0-9]+\b", args)) - {"APLOG_MARK", "APLOG_STARTUP",
                                                               "APLOG_NOERRNO"}
    return levels


def readme_ids() -> dict:
    return {m.group(1): m.group(2) for m in re.finditer(
        r"^\|\s*`(CTFLOPT\d{4})`\s*\|\s*(\w+)\s*\|", README.read_text(), re.M)}


def test_log_call_scanner_finds_calls():
    calls = [c for p in glue_sources() for c in log_calls(p)]
    assert len(calls) >= 10 and any("CTFLOPTNO(0101)" in a for _, a in calls)


def test_every_warning_and_error_carries_a_message_id():
    offenders = []
    for p in glue_sources():
        for line, args in log_calls(p):
            levels = call_level(args)
            if (not levels or levels & BAD_LEVELS) and not re.search(r"CTFLOPTNO\(\d{4}\)", args):
                offenders.append(f"{p.relative_to(REPO)}:{line}: {' '.join(args.split())[:120]}")
    assert not offenders, "warn/error log calls without a CTFLOPTNO id:\n" + "\n".join(offenders)


def test_every_message_id_is_in_the_readme_troubleshooting_table():
    table = readme_ids()
    assert "CTFLOPT0001" in table, "precondition: the README table parses"
    used = {}
    for p in glue_sources():
        for line, args in log_calls(p):
            for n in re.findall(r"CTFLOPTNO\((\d{4})\)", args):
                used.setdefault(f"CTFLOPT{n}", set()).update(call_level(args))
    missing = sorted(set(used) - set(table))
    assert not missing, f"message ids used in the code but not in README.md: {missing}"
    level_name = {"APLOG_WARNING": "warn", "APLOG_ERR": "error", "APLOG_CRIT": "crit",
                  "APLOG_EMERG": "emerg", "APLOG_ALERT": "alert", "APLOG_INFO": "info",
                  "APLOG_DEBUG": "debug", "APLOG_NOTICE": "notice"}
    wrong = {i: (table[i], sorted(level_name.get(lv, lv) for lv in lvls))
             for i, lvls in used.items() if lvls and table[i] not in {level_name.get(lv) for lv in lvls}}
    assert not wrong, f"README level differs from the code (README, code): {wrong}"
