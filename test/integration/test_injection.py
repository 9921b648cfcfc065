"""Where the bootstrap goes (before the first real </head>, else </body>, else nowhere),
byte-identical output otherwise, the header changes, and the responses the filter must pass
through untouched (issue 2 "The output filter")."""

import gzip

import pytest

from httpd import (api_directives, html_page, http_request, injected_bootstrap, parse_bootstrap,
                   split_injection, trace_skips)

HEAD = html_page("head")
BODY_ONLY = b"<!DOCTYPE html>\n<html>\n<body>\n<p>no head end tag</p>\n</body>\n</html>\n"
FRAGMENT = b'<div class="widget"><p>a fragment, no head or body end tag</p></div>\n'

# name -> page; "@@" marks the first real </head> (or </body>) and is removed. Every
# earlier look-alike is a decoy inside a comment, script, attribute, raw text...
TRICKY_SRC = {
    "comment": b"<html><head><!-- </head> --><title>t</title>\n@@</head><body>b</body></html>",
    "comment-dashes": b"<html><head><!-- a -- </head> --!> <!---->@@</head><body></body></html>",
    "abrupt-comments": b"<html><head><!--><!--->@@</head><body><p>x</p></body></html>",
    "script": (b'<html><head><script>var s = "</head>"; if (a </head> b) {}</script>\n'
               b"@@</head><body></body></html>"),
    "script-escaped": (b'<html><head><script><!-- document.write("<script>f()</script>");'
                       b' var s = "</head>"; --></script>@@</head><body></body></html>'),
    "script-uppercase-close": b'<html><head><script>x="</head>"</SCRIPT >@@</head><body></body></html>',
    "attributes": (b'<html><head><meta name="d" content="a > b </head>">'
                   b"<link title='</head> >' href=x.css rel=stylesheet>"
                   b'<meta content=a>\n@@</head><body></body></html>'),
    "title": b"<html><head><title>about </head> tags</title>@@</head><body></body></html>",
    "style": (b"<html><head><style>/* </head> */ a > b { content: \"</head>\" }</style>"
              b"@@</head><body></body></html>"),
    "noscript-textarea": (b"<html><head><noscript></head></noscript>@@</head>"
                          b"<body><textarea></head></textarea></body></html>"),
    "uppercase": b"<HTML><HEAD><TITLE>x</TITLE>@@</HEAD><BODY></BODY></HTML>",
    "end-tag-whitespace": b"<html><head><title>x</title>@@</head\n ><body></body></html>",
    "header-element": b"<html><body><header>h</header><!-- </body> --><p>x</p>@@</body></html>",
    "head-at-eof": b"<head><title>x</title>@@</head>",
    "two-heads": b"<html><head>@@</head><body><p></head></p></body></html>",
    "bom": b"\xef\xbb\xbf<!DOCTYPE html><html><head><title>\xc3\xa9</title>@@</head><body></body></html>",
    "cdata-pi": b'<html><head><?php echo "</head>"; ?><![CDATA[ x ]]>@@</head><body></body></html>',
    "xmp-iframe": (b"<html><head><title>x</title>@@</head><body><xmp></body></xmp>"
                   b"<iframe></body></iframe></body></html>"),
}
TRICKY = {k: (v.replace(b"@@", b""), v.index(b"@@")) for k, v in TRICKY_SRC.items()}

UNTOUCHED = {
    "fragment.html": (FRAGMENT, "text/html"),
    "empty.html": (b"", "text/html"),
    "notes.txt": (b"<html><head></head><body>plain text</body></html>\n", "text/plain"),
    "data.json": (b'{"html": "<head></head>"}\n', "application/json"),
    "style.css": (b"/* </head> */ body { color: red }\n", "text/css"),
    "utf16.html": ("\ufeff<html><head><title>x</title></head><body>u</body></html>".encode("utf-16-le"),
                   "text/html"),
}

SSI_MAIN = (b"<html><head><title>ssi</title></head><body>\n"
            b'<!--#include virtual="/ssi/inc.html" -->\n'
            b'<p>status=<!--#echo var="CTFLOPT_STATUS" --></p>\n</body></html>\n')
SSI_INC = b"<html><head><title>inc</title></head><body><p>included</p></body></html>"


def site(apache, emulator, origin):
    for loc in ("i", "ig", "off"):
        apache.write_doc(f"{loc}/head.html", HEAD)
    apache.write_doc("i/body.html", BODY_ONLY)
    apache.write_doc("i/page.xhtml", HEAD)
    for name, (content, _) in TRICKY.items():
        apache.write_doc(f"i/tricky-{name}.html", content)
    for name, (content, _) in UNTOUCHED.items():
        apache.write_doc(f"i/{name}", content)
        apache.write_doc(f"ig/{name}", content)
    apache.write_doc("ig/optout.html", HEAD)
    apache.write_doc("ssi/page.shtml", SSI_MAIN)
    apache.write_doc("ssi/inc.html", SSI_INC)
    apache.write_doc("gz/head.html", HEAD)
    apache.write_doc("dir/index.html", HEAD)
    apache.write_doc("front/real.html", HEAD)
    return api_directives(emulator) + f"""
<Directory "{apache.docroot}/front">
    RewriteEngine On
    RewriteRule ^pretty$ real.html [L]
</Directory>
<Location /dir/>
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
<Location /front/>
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
SetEnvIf Request_URI "^/ig/optout" no-ctflopt
<Location /i/>
    CtflOptEngine On
</Location>
<Location /ig/>
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
<Location /ssi/>
    CtflOptEngine On
    CtflOptConsentDefault granted
</Location>
<Location /gz/>
    CtflOptEngine On
    CtflOptConsentDefault granted
    AddOutputFilterByType DEFLATE text/html
</Location>
"""


def test_before_head_end(apache, emulator):
    r = apache.get("/i/head.html")
    boot = injected_bootstrap(r, HEAD)
    assert boot.consent is None and boot.data is None
    assert r.header("Content-Type").startswith("text/html")


@pytest.mark.both_mpms
def test_body_end_fallback(apache):
    r = apache.get("/i/body.html")
    injected_bootstrap(r, BODY_ONLY, BODY_ONLY.index(b"</body>"))


@pytest.mark.both_mpms
@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_pages(apache, name):
    content, pos = TRICKY[name]
    r = apache.get(f"/i/tricky-{name}.html")
    assert r.status == 200
    raw = split_injection(content, r.body, pos)
    parse_bootstrap(raw)


def test_xhtml_is_filtered(apache):
    r = apache.get("/i/page.xhtml")
    assert r.header("Content-Type").startswith("application/xhtml+xml")
    injected_bootstrap(r, HEAD)


@pytest.mark.parametrize("location", ["i", "ig"])
@pytest.mark.parametrize("name", sorted(UNTOUCHED))
def test_untouched_bodies(apache, emulator, location, name):
    """Fragments, non-HTML types and non-ASCII-compatible charsets pass byte for byte."""
    content, ctype = UNTOUCHED[name]
    r = apache.get(f"/{location}/{name}")
    assert r.status == 200
    assert r.header("Content-Type").split(";")[0] == ctype
    assert r.body == content
    assert b"__OPTIMIZATION_" not in r.body
    if ctype != "text/html":
        # A skipped response keeps its representation headers.
        assert r.header("Content-Length") == str(len(content))
        assert r.header("ETag") and not r.header("ETag").startswith("W/")


@pytest.mark.parametrize("name", ["data.json", "style.css", "notes.txt"])
def test_no_call_for_static_non_html(apache, emulator, name):
    r = apache.get(f"/ig/{name}")
    assert r.status == 200
    assert emulator.requests() == []
    assert r.header_all("Set-Cookie") == []


def assert_length_is_not_stale(r, original):
    """The original Content-Length must go; apache's CONTENT_LENGTH filter may put back the
    length of the new body when it had the whole body at once."""
    assert r.header("Content-Length") in (None, str(len(r.body)))
    assert len(r.body) != len(original)


def test_content_length_is_the_new_length(apache):
    plain = apache.get("/off/head.html")
    assert plain.header("Content-Length") == str(len(HEAD))
    r = apache.get("/i/head.html")
    injected_bootstrap(r, HEAD)
    assert_length_is_not_stale(r, HEAD)


@pytest.mark.both_mpms
def test_personalized_response_headers(apache, emulator):
    plain = apache.get("/off/head.html")
    etag = plain.header("ETag")
    assert etag and not etag.startswith("W/"), "precondition: apache sends a strong ETag"
    r = apache.get("/ig/head.html")
    boot = injected_bootstrap(r, HEAD)
    assert boot.data is not None
    assert_length_is_not_stale(r, HEAD)
    cc = [v.strip().lower() for h in r.header_all("Cache-Control") for v in h.split(",")]
    assert "private" in cc and "public" not in cc
    vary = [v.strip().lower() for h in r.header_all("Vary") for v in h.split(",")]
    assert "cookie" in vary
    new_etag = r.header("ETag")
    assert new_etag is None or new_etag.startswith("W/"), new_etag
    assert new_etag != etag


def test_head_request_makes_no_call(apache, emulator):
    r = apache.head("/ig/head.html")
    assert r.status == 200
    assert r.body == b""
    assert emulator.requests() == []
    assert r.header_all("Set-Cookie") == []
    assert apache.access_entry(r.test_id)["ctflopt_status"] == "skipped"


def test_non_200_is_untouched(apache, emulator):
    r = apache.get("/ig/missing.html")
    assert r.status == 404
    assert b"__OPTIMIZATION_" not in r.body and b"<script" not in r.body


def test_no_ctflopt_env_opts_out(apache, emulator):
    r = apache.get("/ig/optout.html")
    assert r.status == 200
    assert r.body == HEAD
    assert r.header("Content-Length") == str(len(HEAD))
    assert emulator.requests() == []
    assert r.header_all("Set-Cookie") == []
    log = apache.access_entry(r.test_id)
    assert log["ctflopt_status"] == "skipped"
    assert log["no_ctflopt"] == "1"


def test_ssi_sub_request_is_not_filtered_or_evaluated(apache, emulator):
    r = apache.get("/ssi/page.shtml")
    assert r.status == 200
    expanded = (SSI_MAIN.replace(b'<!--#include virtual="/ssi/inc.html" -->', SSI_INC)
                .replace(b'<!--#echo var="CTFLOPT_STATUS" -->', b"ok"))
    boot = injected_bootstrap(r, expanded, expanded.index(b"</head>"))
    assert boot.data is not None
    assert r.body.count(b"__OPTIMIZATION_CONFIG__") == 1
    assert len(emulator.requests()) == 1


def test_deflate_after_the_filter(apache, emulator):
    r = apache.get("/gz/head.html", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    plain = gzip.decompress(r.body)
    boot = parse_bootstrap(split_injection(HEAD, plain, HEAD.index(b"</head>")))
    assert boot.data is not None
    assert r.cookies["ctfl-opt-aid"].value == boot.data["profile"]["id"]


@pytest.mark.parametrize("method, path, reason", [
    ("HEAD", "/ig/head.html", "HEAD"),
    ("GET", "/ig/notes.txt", "content type text/plain"),
    ("GET", "/i/data.json", "content type application/json"),
    ("GET", "/ig/optout.html", "no-ctflopt"),
    ("GET", "/i/utf16.html", "charset"),
    ("GET", "/ssi/page.shtml", "sub-request"),
])
def test_skip_reasons_are_traced(apache, method, path, reason):
    """Each skip is logged at trace level with its reason (LogLevel ctflopt:trace2 here)."""
    r = http_request(apache.port, path, method=method)
    assert r.status == 200
    apache.access_entry(r.test_id)           # the request is complete
    assert any(s.startswith(reason) for s in trace_skips(apache)), trace_skips(apache)


@pytest.mark.parametrize("path", ["/dir/", "/front/pretty"])
def test_internal_redirects_evaluate_once(apache, emulator, path):
    """DirectoryIndex and a mod_rewrite front controller re-enter as internal redirects: one
    Experience call for the URL the visitor asked for, one bootstrap."""
    r = apache.get(path)
    boot = injected_bootstrap(r, HEAD)
    assert boot.data is not None
    assert r.body.count(b"__OPTIMIZATION_CONFIG__") == 1
    recs = emulator.requests()
    assert len(recs) == 1
    assert recs[0]["json"]["events"][0]["context"]["page"]["path"] == path
    assert r.cookies["ctfl-opt-aid"].value == boot.data["profile"]["id"]
