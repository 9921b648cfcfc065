"""The bootstrap markup and what it does when run: the SDK <script src>, the globals, the
constructor call (once, with the server's profile and consent, no selectedOptimizations),
CtflOptBootstrap/AutoTrack/Nonce/WebSDKURL/CookieDomain/ConsentSync (issue 2, spec §7.7).
The inline script is executed in Node with a stand-in Web SDK (bootstrap_eval.js)."""

import html

import pytest

from httpd import (CLIENT_ID, ENVIRONMENT, SDK_URL, api_directives, experience_fixture, html_page,
                   injected_bootstrap)
from httpd import run_bootstrap_js as run_js

PAGE = html_page("bootstrap")
CDN = "https://cdn.example.test/sdk.umd.js?v=1&x=2"
LOCATIONS = {
    "b": "",
    "bg": "CtflOptConsentDefault granted",
    "bd": "CtflOptConsentDefault denied",
    "boff": "CtflOptConsentDefault granted\n    CtflOptBootstrap Off",
    "btrack": "CtflOptAutoTrack views hovers",
    "bclicks": "CtflOptAutoTrack clicks",
    "bnonce": "CtflOptNonce env:CSP_NONCE",
    "bsdk": f"CtflOptWebSDKURL {CDN}",
    "bsyncoff": "CtflOptConsentSync Off",
    "bdomain": "CtflOptCookieDomain example.test",
    "bloc": "CtflOptLocale fr-FR de",
}


def site(apache, emulator, origin):
    conf = [api_directives(emulator),
            'SetEnvIf X-Test-Nonce "^(.*)$" CSP_NONCE=$1']
    for loc, extra in LOCATIONS.items():
        apache.write_doc(f"{loc}/page.html", PAGE)
        conf.append(f"<Location /{loc}/>\n    CtflOptEngine On\n    {extra}\n</Location>")
    return "\n".join(conf) + "\n"


def boot_of(apache, loc, **kw):
    return injected_bootstrap(apache.get(f"/{loc}/page.html", **kw), PAGE)


def test_markup_and_globals_without_consent(apache, emulator):
    boot = boot_of(apache, "b")
    assert len(boot.scripts) == 2
    assert boot.src == SDK_URL
    assert boot.scripts[0][1] == ""                # the SDK script has no inline content
    assert boot.config["clientId"] == CLIENT_ID
    assert boot.config["environment"] == ENVIRONMENT
    assert boot.config["api"] == {"experienceBaseUrl": emulator.experience_url,
                                  "insightsBaseUrl": emulator.insights_url}
    assert "locale" not in boot.config
    assert boot.consent is None and boot.data is None


@pytest.mark.both_mpms
def test_constructed_once_with_server_profile_and_consent(apache, emulator):
    r = apache.get("/bg/page.html")
    boot = injected_bootstrap(r, PAGE)
    out = run_js(boot)
    assert len(out["record"]["constructed"]) == 1
    cfg = out["record"]["constructed"][0]
    assert cfg["clientId"] == CLIENT_ID and cfg["environment"] == ENVIRONMENT
    assert cfg["api"]["experienceBaseUrl"] == emulator.experience_url
    assert cfg["defaults"]["consent"] is True
    assert cfg["defaults"]["profile"] == boot.data["profile"]
    assert cfg["defaults"]["profile"]["id"] == r.cookies["ctfl-opt-aid"].value
    # personalization stays server-owned
    assert "selectedOptimizations" not in cfg["defaults"]
    assert "changes" not in cfg["defaults"]
    assert cfg["autoTrackEntryInteraction"] == {"views": True, "clicks": True, "hovers": False}
    assert out["consent"] is True
    assert out["data"] == boot.data
    assert set(out["data"]) == {"profile", "selectedOptimizations", "changes"}
    fixture = experience_fixture("new-visitor")["data"]
    assert out["data"]["selectedOptimizations"] == fixture["experiences"]
    assert out["data"]["changes"] == fixture["changes"]
    assert out["record"]["pageCalls"] == 0        # the server already sent page


@pytest.mark.parametrize("loc, consent, js_consent", [("b", None, "undefined"),
                                                      ("bd", False, False)])
def test_constructed_without_profile_when_not_granted(apache, loc, consent, js_consent):
    boot = boot_of(apache, loc)
    out = run_js(boot)
    assert out["consent"] == js_consent
    assert out["hasData"] is False
    cfg = out["record"]["constructed"][0]
    assert "profile" not in cfg["defaults"]
    if consent is None:
        assert "consent" not in cfg["defaults"]
    else:
        assert cfg["defaults"]["consent"] is consent


def test_not_constructed_when_the_page_already_did(apache):
    out = run_js(boot_of(apache, "bg"), preexisting=True)
    assert out["record"]["constructed"] == []
    assert out["consent"] is True                 # the globals are still set


def test_no_error_without_the_sdk(apache):
    out = run_js(boot_of(apache, "bg"), noConstructor=True)
    assert out["record"]["constructed"] == []
    assert out["data"]["profile"]["id"]


def test_consent_round_trip_grant_without_server_profile(apache):
    out = run_js(boot_of(apache, "b"), actions=["grant", "grant"])
    writes = out["record"]["cookieWrites"]
    assert writes and all(w.startswith("app-personalization-consent=granted;") for w in writes)
    assert "Path=/" in writes[-1]
    assert "Secure" not in writes[-1]
    assert out["record"]["pageCalls"] == 1        # once, not per consent call


def test_consent_round_trip_secure_on_https(apache):
    out = run_js(boot_of(apache, "b"), actions=["grant"], protocol="https:")
    assert out["record"]["cookieWrites"][-1].endswith("; Secure")


def test_consent_round_trip_with_server_profile_never_calls_page(apache):
    out = run_js(boot_of(apache, "bg"), actions=["grant"])
    assert out["record"]["pageCalls"] == 0


def test_consent_revocation_writes_denied(apache):
    out = run_js(boot_of(apache, "bg"), actions=["deny"])
    assert out["record"]["cookieWrites"][-1].startswith("app-personalization-consent=denied;")
    assert out["record"]["pageCalls"] == 0


def test_consent_sync_off(apache):
    boot = boot_of(apache, "bsyncoff")
    out = run_js(boot, actions=["grant"])
    assert len(out["record"]["constructed"]) == 1
    assert out["record"]["cookieWrites"] == []
    assert out["record"]["pageCalls"] == 0


def test_bootstrap_off_leaves_the_page_alone_but_evaluates(apache, emulator):
    r = apache.get("/boff/page.html")
    assert r.status == 200
    assert r.body == PAGE
    assert len(emulator.requests()) == 1
    assert r.cookies["ctfl-opt-aid"].value
    cc = ",".join(r.header_all("Cache-Control")).lower()
    assert "private" in cc


@pytest.mark.parametrize("loc, expected", [
    ("btrack", {"views": True, "clicks": False, "hovers": True}),
    ("bclicks", {"views": False, "clicks": True, "hovers": False}),
])
def test_autotrack(apache, loc, expected):
    out = run_js(boot_of(apache, loc))
    assert out["record"]["constructed"][0]["autoTrackEntryInteraction"] == expected


@pytest.mark.parametrize("nonce", ["r4nd0m+/Nonce==", "abc-_123"])
def test_nonce_on_both_scripts(apache, nonce):
    boot = boot_of(apache, "bnonce", headers={"X-Test-Nonce": nonce})
    assert [attrs.get("nonce") for attrs, _ in boot.scripts] == [nonce, nonce]


@pytest.mark.parametrize("nonce", ['x" onload="alert(1)', "a>b<script>", "sp ace"])
def test_unsafe_nonce_is_not_written(apache, nonce):
    boot = boot_of(apache, "bnonce", headers={"X-Test-Nonce": nonce})
    assert len(boot.scripts) == 2
    for attrs, _ in boot.scripts:
        assert set(attrs) <= {"src", "nonce"}, attrs
        assert attrs.get("nonce") in (None, html.escape(nonce, quote=True)), attrs


def test_no_nonce_without_the_env(apache):
    boot = boot_of(apache, "bnonce")
    assert [a.get("nonce") for a, _ in boot.scripts] == [None, None]


def test_sdk_url_is_attribute_escaped(apache):
    boot = boot_of(apache, "bsdk")
    assert html.unescape(boot.src) == CDN
    assert b'src="https://cdn.example.test/sdk.umd.js?v=1&amp;x=2"' in boot.raw


def test_cookie_domain_reaches_the_sdk(apache):
    out = run_js(boot_of(apache, "bdomain"))
    assert out["record"]["constructed"][0]["cookie"] == {"domain": "example.test"}


def test_locale_in_config(apache):
    boot = boot_of(apache, "bloc", headers={"Accept-Language": "de-AT"})
    assert boot.config["locale"] == "de"
    out = run_js(boot)
    assert out["record"]["constructed"][0]["locale"] == "de"
