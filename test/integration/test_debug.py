"""Issue 4 "Operator's view": CtflOptDebug On adds an X-CtflOpt-Debug header explaining the
decisions (consent, status, experiences, each marked element baseline -> resolved); Off (the
default) adds nothing; a response the filter skips says why."""

from httpd import api_directives
from it_personalize import IDENTIFIED, UNKNOWN, USER_HEADER, cda_directives, use_entry_cache

PAGE = (b'<!DOCTYPE html>\n<html><head><title>debug</title></head>\n<body>\n'
        b'<div data-ctfl-baseline-id="4ib0hsHWoSOnCVdDkizE8d">\n'
        b'  <p>This is a baseline content entry for visitors from any continent.</p>\n'
        b'  <template data-ctfl-variant-id="4k6ZyFQnR2POY5IJLLlJRb"><p>Europe</p></template>\n'
        b'</div>\n</body>\n</html>\n')


def site(apache, emulator, origin):
    use_entry_cache(apache)
    apache.write_doc("dbg/page.html", PAGE)
    apache.write_doc("dbg/style.css", b"body{}\n")
    apache.write_doc("nodbg/page.html", PAGE)
    return api_directives(emulator) + cda_directives(emulator) + f"""
<Location /dbg/>
    CtflOptEngine On
    CtflOptDebug On
    CtflOptUserId header:{USER_HEADER}
</Location>
<Location /nodbg/>
    CtflOptEngine On
</Location>
"""


def debug_header(r) -> str:
    assert r.status == 200
    value = r.header("X-CtflOpt-Debug")
    assert value is not None, r.headers
    return value


def test_debug_header_for_a_personalized_page(apache):
    r = apache.get("/dbg/page.html", headers=IDENTIFIED)
    d = debug_header(r)
    profile = r.cookies["ctfl-opt-aid"].value
    assert "consent=granted; status=ok" in d
    assert f"profile={profile};" in d
    assert "2qVK4T5lnScbswoyBuGipd:1" in d                      # the experiences list
    assert "bootstrap=head" in d
    assert ("elements=4ib0hsHWoSOnCVdDkizE8d>4k6ZyFQnR2POY5IJLLlJRb"
            "(variant,2qVK4T5lnScbswoyBuGipd,template)") in d
    assert b"<p>Europe</p>" in r.body


def test_debug_header_without_consent(apache):
    d = debug_header(apache.get("/dbg/page.html", headers=UNKNOWN))
    assert "consent=unknown; status=no-consent" in d
    assert "profile=-; experiences=-" in d
    assert "elements=4ib0hsHWoSOnCVdDkizE8d>4k6ZyFQnR2POY5IJLLlJRb" not in d
    assert "4ib0hsHWoSOnCVdDkizE8d>4ib0hsHWoSOnCVdDkizE8d" in d


def test_debug_header_says_why_the_filter_skipped(apache):
    d = debug_header(apache.get("/dbg/style.css", headers=UNKNOWN))
    assert "filter=skipped (content type text/css)" in d


def test_no_debug_header_by_default(apache):
    r = apache.get("/nodbg/page.html", headers=IDENTIFIED)
    assert r.status == 200 and r.header("X-CtflOpt-Debug") is None
