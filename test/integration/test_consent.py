"""Consent: unknown / denied / granted, the consent cookie and its defaults, and what each
does to the Experience call, the ctfl-opt-aid cookie and the bootstrap (issue 2, spec §5)."""

import pytest

from httpd import (DENIED, GRANTED, api_directives, cookie_header, html_page,
                   injected_bootstrap)

pytestmark = pytest.mark.both_mpms

PAGE = html_page("consent")
LOCATIONS = {
    "/c/": "",
    "/c-granted/": "CtflOptConsentDefault granted",
    "/c-denied/": "CtflOptConsentDefault denied",
    "/c-custom/": "CtflOptConsentCookie cmp-consent yes no",
    "/c-name/": "CtflOptConsentCookie cmp_ok",
    "/off/": "CtflOptEngine Off",
}


def site(apache, emulator, origin):
    conf = [api_directives(emulator)]
    for loc, extra in LOCATIONS.items():
        apache.write_doc(loc.strip("/") + "/page.html", PAGE)
        conf.append(f"<Location {loc}>\n    CtflOptEngine On\n    {extra}\n</Location>\n")
    return "\n".join(conf)


def get(apache, path, cookies=None, **kw):
    headers = {"Cookie": cookie_header(**cookies)} if cookies else {}
    return apache.get(path, headers=headers, **kw)


def assert_not_evaluated(apache, emulator, resp, consent, consent_env):
    """No API call, no personal data, the bootstrap with the consent only."""
    assert emulator.requests() == []
    boot = injected_bootstrap(resp, PAGE)
    assert boot.consent is consent
    assert boot.data is None
    log = apache.access_entry(resp.test_id)
    assert log["ctflopt_status"] == "no-consent"
    assert log["consent"] == consent_env
    assert log["profile_id"] == "-"
    return boot


@pytest.mark.parametrize("cookies, consent, env", [
    (None, None, "unknown"),
    ({"other": "1"}, None, "unknown"),
    ({"app-personalization-consent": "maybe"}, None, "unknown"),
    ({"xapp-personalization-consent": "granted"}, None, "unknown"),
    ({"app-personalization-consent": "denied"}, False, "denied"),
    ({"a": "1", "app-personalization-consent": "denied", "b": "2"}, False, "denied"),
])
def test_without_consent_no_call_no_cookie(apache, emulator, cookies, consent, env):
    r = get(apache, "/c/page.html", cookies)
    assert_not_evaluated(apache, emulator, r, consent, env)
    assert r.header_all("Set-Cookie") == []


@pytest.mark.parametrize("consent_value", [None, "denied"])
def test_without_consent_carried_profile_cookie_is_deleted(apache, emulator, consent_value):
    cookies = {"ctfl-opt-aid": "a1b2c3"}
    if consent_value:
        cookies["app-personalization-consent"] = consent_value
    r = get(apache, "/c/page.html", cookies)
    assert_not_evaluated(apache, emulator, r, False if consent_value else None,
                         consent_value or "unknown")
    c = r.cookies
    assert list(c) == ["ctfl-opt-aid"], r.header_all("Set-Cookie")
    aid = c["ctfl-opt-aid"]
    assert aid.is_deletion, aid.raw
    assert aid.value == ""
    assert aid.attrs.get("path") == "/"
    assert "httponly" not in aid.attrs


def test_without_consent_legacy_cookie_alone_sets_nothing(apache, emulator):
    r = get(apache, "/c/page.html", {"ntaid": "a1b2c3", "app-personalization-consent": "denied"})
    assert_not_evaluated(apache, emulator, r, False, "denied")
    assert r.header_all("Set-Cookie") == []


def test_granted_evaluates_and_sets_profile_cookie(apache, emulator):
    r = apache.get("/c/page.html", headers=GRANTED)
    recs = emulator.requests()
    assert len(recs) == 1
    assert recs[0]["status"] == 200, recs[0]["issues"]
    assert recs[0]["path"].endswith("/environments/main/profiles")
    boot = injected_bootstrap(r, PAGE)
    assert boot.consent is True
    pid = boot.data["profile"]["id"]
    assert r.cookies["ctfl-opt-aid"].value == pid
    assert not r.cookies["ctfl-opt-aid"].is_deletion
    log = apache.access_entry(r.test_id)
    assert (log["ctflopt_status"], log["consent"], log["profile_id"]) == ("ok", "granted", pid)


def test_granted_with_profile_cookie_keeps_it(apache, emulator):
    r = get(apache, "/c/page.html", {"app-personalization-consent": "granted",
                                     "ctfl-opt-aid": "returning-visitor-1"})
    assert emulator.requests()[0]["path"].endswith("/profiles/returning-visitor-1")
    assert r.cookies["ctfl-opt-aid"].value == "returning-visitor-1"
    assert injected_bootstrap(r, PAGE).data["profile"]["id"] == "returning-visitor-1"


def test_default_granted_without_cookie(apache, emulator):
    r = apache.get("/c-granted/page.html")
    assert len(emulator.requests()) == 1
    boot = injected_bootstrap(r, PAGE)
    assert boot.consent is True and boot.data is not None
    assert r.cookies["ctfl-opt-aid"].value == boot.data["profile"]["id"]


def test_default_granted_overridden_by_denied_cookie(apache, emulator):
    r = apache.get("/c-granted/page.html", headers=DENIED)
    assert_not_evaluated(apache, emulator, r, False, "denied")
    assert r.header_all("Set-Cookie") == []


def test_default_denied(apache, emulator):
    r = apache.get("/c-denied/page.html")
    assert_not_evaluated(apache, emulator, r, False, "denied")
    assert r.header_all("Set-Cookie") == []
    r = apache.get("/c-denied/page.html", headers=GRANTED)
    assert len(emulator.requests()) == 1
    assert injected_bootstrap(r, PAGE).consent is True


@pytest.mark.parametrize("cookies, consent", [
    ({"cmp-consent": "yes"}, True),
    ({"cmp-consent": "no"}, False),
    ({"cmp-consent": "granted"}, None),                    # not this location's token
    ({"app-personalization-consent": "granted"}, None),    # not this location's cookie
])
def test_custom_consent_cookie_and_values(apache, emulator, cookies, consent):
    r = get(apache, "/c-custom/page.html", cookies)
    boot = injected_bootstrap(r, PAGE)
    assert boot.consent is consent
    assert len(emulator.requests()) == (1 if consent else 0)
    # The bootstrap writes the same cookie with the same tokens when the page's consent UI
    # changes the SDK's consent (CtflOptConsentSync defaults to On).
    assert "cmp-consent=yes" in boot.inline and "cmp-consent=no" in boot.inline


def test_custom_consent_cookie_name_default_values(apache, emulator):
    r = get(apache, "/c-name/page.html", {"cmp_ok": "granted"})
    assert injected_bootstrap(r, PAGE).consent is True
    assert len(emulator.requests()) == 1


def test_engine_off_is_untouched(apache, emulator):
    r = get(apache, "/off/page.html", {"app-personalization-consent": "granted",
                                       "ctfl-opt-aid": "abc"})
    assert r.status == 200
    assert r.body == PAGE
    assert r.header("Content-Length") == str(len(PAGE))
    assert r.header_all("Set-Cookie") == []
    assert emulator.requests() == []
    assert apache.access_entry(r.test_id)["ctflopt_status"] == "-"
