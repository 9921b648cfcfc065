"""Attributes of the ctfl-opt-aid cookie the module sets and deletes (issue 2: Path=/, Max-Age,
SameSite, Domain, Secure only on https, never HttpOnly; spec §5.3)."""

import pytest

from httpd import api_directives, html_page, http_request, injected_bootstrap

PAGE = html_page("cookies")


def site(apache, emulator, origin):
    for d in ("k", "k-custom", "k-none"):
        apache.write_doc(f"{d}/page.html", PAGE)
    apache.extra_modules += ["ssl", "socache_shmcb"]
    cert, key = apache.make_certificate()
    tls = apache.port_for("tls")
    locations = """
    <Location /k/>
        CtflOptEngine On
        CtflOptConsentDefault granted
    </Location>
    <Location /k-custom/>
        CtflOptEngine On
        CtflOptCookieDomain example.test
        CtflOptCookieMaxAge 3600
        CtflOptCookieSameSite Strict
    </Location>
    <Location /k-none/>
        CtflOptEngine On
        CtflOptConsentDefault granted
        CtflOptCookieSameSite None
    </Location>
"""
    return api_directives(emulator) + locations + f"""
SSLSessionCache "shmcb:{apache.root}/run/ssl_scache(512000)"
<VirtualHost 127.0.0.1:{tls}>
    ServerName 127.0.0.1
    SSLEngine on
    SSLCertificateFile "{cert}"
    SSLCertificateKeyFile "{key}"
{locations}
</VirtualHost>
"""


def aid_cookie(r):
    cookies = r.cookies
    assert list(cookies) == ["ctfl-opt-aid"], r.header_all("Set-Cookie")
    return cookies["ctfl-opt-aid"]


@pytest.mark.both_mpms
def test_default_attributes(apache):
    r = apache.get("/k/page.html")
    boot = injected_bootstrap(r, PAGE)
    c = aid_cookie(r)
    assert c.value == boot.data["profile"]["id"]
    assert c.attrs.get("path") == "/"
    assert c.attrs.get("max-age") == "31536000"
    assert c.attrs.get("samesite") == "Lax"
    assert "domain" not in c.attrs
    assert "secure" not in c.attrs
    assert "httponly" not in c.attrs


def test_configured_attributes(apache):
    r = apache.get("/k-custom/page.html", headers={"Cookie": "app-personalization-consent=granted"})
    c = aid_cookie(r)
    assert c.attrs.get("path") == "/"
    assert c.attrs.get("max-age") == "3600"
    assert c.attrs.get("samesite") == "Strict"
    assert c.attrs.get("domain") == "example.test"
    assert "secure" not in c.attrs and "httponly" not in c.attrs


def test_deletion_carries_the_same_domain_and_path(apache):
    r = apache.get("/k-custom/page.html", headers={"Cookie": "ctfl-opt-aid=abc"})
    c = aid_cookie(r)
    assert c.is_deletion
    assert c.attrs.get("domain") == "example.test"
    assert c.attrs.get("path") == "/"
    assert "httponly" not in c.attrs


def test_samesite_none_is_secure(apache):
    # Browsers reject SameSite=None without Secure (documented in ctfl_cookie.h).
    c = aid_cookie(apache.get("/k-none/page.html"))
    assert c.attrs.get("samesite") == "None"
    assert "secure" in c.attrs


@pytest.mark.parametrize("path", ["/k/page.html", "/k-custom/page.html"])
def test_secure_on_https(apache, emulator, path):
    r = http_request(apache.ports["tls"], path, https=True,
                     headers={"Cookie": "app-personalization-consent=granted"})
    boot = injected_bootstrap(r, PAGE)
    c = aid_cookie(r)
    assert c.value == boot.data["profile"]["id"]
    assert "secure" in c.attrs
    assert "httponly" not in c.attrs
    url = emulator.requests()[0]["json"]["events"][0]["context"]["page"]["url"]
    assert url == f"https://127.0.0.1:{apache.ports['tls']}{path}"


def test_deletion_is_secure_on_https(apache):
    r = http_request(apache.ports["tls"], "/k-custom/page.html", https=True,
                     headers={"Cookie": "ctfl-opt-aid=abc"})
    c = aid_cookie(r)
    assert c.is_deletion and "secure" in c.attrs
