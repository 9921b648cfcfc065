"""Configuration is validated at startup: a bad value fails `apache2 -t` and the message
names the directive (issue 2 "Configuration")."""

import tempfile
from pathlib import Path

import pytest

from httpd import Apache

BASE = """CtflOptClientId itest-client
CtflOptExperienceURL http://127.0.0.1:9/experience/
CtflOptInsightsURL http://127.0.0.1:9/insights/
CtflOptAllowInsecureAPI On
"""


@pytest.fixture(scope="module")
def server(workdir, module_so):
    return Apache(Path(tempfile.mkdtemp(prefix="config-", dir=workdir)), "event", module_so)


def configtest(server, text):
    rc, out = server.configtest(text)
    return rc, out


def test_valid_configuration(server):
    rc, out = configtest(server, BASE + """
CtflOptEnvironment staging
CtflOptTimeout 250
CtflOptTrustedProxy On
<Location />
    CtflOptEngine On
    CtflOptConsentCookie consent yes no
    CtflOptConsentDefault denied
    CtflOptLocale en-US de_DE fr
    CtflOptCookieDomain example.test
    CtflOptCookieMaxAge 86400
    CtflOptCookieSameSite Strict
    CtflOptUserId header:X-User
    CtflOptWebSDKURL /static/sdk.js
    CtflOptBootstrap On
    CtflOptAutoTrack views clicks hovers
    CtflOptNonce env:CSP_NONCE
    CtflOptForwardHeaders On
    CtflOptConsentSync Off
</Location>
""")
    assert rc == 0, out
    assert "Syntax OK" in out


BAD = [
    ("CtflOptEngine", "<Location />\nCtflOptEngine Maybe\n</Location>"),
    ("CtflOptTimeout", "CtflOptTimeout 0"),
    ("CtflOptTimeout", "CtflOptTimeout fast"),
    ("CtflOptConsentDefault", "<Location />\nCtflOptConsentDefault perhaps\n</Location>"),
    ("CtflOptConsentCookie", "<Location />\nCtflOptConsentCookie consent yes\n</Location>"),
    ("CtflOptConsentCookie", "<Location />\nCtflOptConsentCookie consent same same\n</Location>"),
    ("CtflOptLocale", "<Location />\nCtflOptLocale en-US *\n</Location>"),
    ("CtflOptLocale", "<Location />\nCtflOptLocale und\n</Location>"),
    ("CtflOptLocale", "<Location />\nCtflOptLocale en_US!\n</Location>"),
    ("CtflOptCookieSameSite", "<Location />\nCtflOptCookieSameSite Lenient\n</Location>"),
    ("CtflOptCookieMaxAge", "<Location />\nCtflOptCookieMaxAge -1\n</Location>"),
    ("CtflOptCookieDomain", "<Location />\nCtflOptCookieDomain exa;mple.test\n</Location>"),
    ("CtflOptUserId", "<Location />\nCtflOptUserId cookie:uid\n</Location>"),
    ("CtflOptAutoTrack", "<Location />\nCtflOptAutoTrack scrolls\n</Location>"),
    ("CtflOptNonce", "<Location />\nCtflOptNonce header:X-Nonce\n</Location>"),
    ("CtflOptWebSDKURL", "<Location />\nCtflOptWebSDKURL javascript:alert(1)\n</Location>"),
    ("CtflOptWebSDKURL", '<Location />\nCtflOptWebSDKURL "/sdk.js\\"><script>"\n</Location>'),
    ("CtflOptBootstrap", "<Location />\nCtflOptBootstrap Yes\n</Location>"),
    ("CtflOptForwardHeaders", "<Location />\nCtflOptForwardHeaders 1\n</Location>"),
    ("CtflOptConsentSync", "<Location />\nCtflOptConsentSync enabled\n</Location>"),
    ("CtflOptExperienceURL", "CtflOptExperienceURL ftp://127.0.0.1/x/"),
    ("CtflOptInsightsURL", "CtflOptInsightsURL not-a-url"),
    ("CtflOptClientId", "CtflOptClientId bad/id"),
    ("CtflOptEnvironment", "CtflOptEnvironment ../main"),
]


@pytest.mark.parametrize("directive, text", BAD, ids=[f"{d}-{i}" for i, (d, _) in enumerate(BAD)])
def test_bad_value_fails_and_names_the_directive(server, directive, text):
    rc, out = configtest(server, BASE + text + "\n")
    assert rc != 0, out
    assert directive in out, out


def test_plain_http_api_refused_without_allow_insecure(server):
    rc, out = configtest(server, "CtflOptClientId c\n"
                                 "CtflOptExperienceURL http://127.0.0.1:9/experience/\n"
                                 "<Location />\nCtflOptEngine On\n</Location>\n")
    assert rc != 0, out
    assert "CtflOptExperienceURL" in out and "CtflOptAllowInsecureAPI" in out


def test_engine_needs_a_client_id(server):
    rc, out = configtest(server, "<Location />\nCtflOptEngine On\n</Location>\n")
    assert rc != 0, out
    assert "CtflOptClientId" in out
