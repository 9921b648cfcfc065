"""The Web SDK stand-in, run in headless Chromium against the (strictly validating) emulator."""

import html
import json
import re
import shutil
import subprocess

import pytest

from conftest import get_json

CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
def test_standin_contract(emulator, static_server, tmp_path):
    get_json(emulator + "__emulator/reset", "POST")
    url = static_server + "standin_check.html?emu=" + emulator
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--user-data-dir=" + str(tmp_path / "profile"), "--dump-dom",
                           "--virtual-time-budget=10000", url],
                          capture_output=True, timeout=120)
    m = re.search(rb'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert m, proc.stderr.decode(errors="replace")[-2000:]
    out = json.loads(html.unescape(m.group(1).decode()))
    assert "exception" not in out, out["exception"]
    assert out["consoleErrors"] == []
    assert out["globalIsInstance"] is True
    assert out["secondConstruction"] == "ContentfulOptimization is already initialized"
    hooks = out["hooks"]
    assert hooks["constructed"] == 2 and hooks["pageCalls"] == 2
    assert out["sessionPageCalls"] == "2"
    assert hooks["config"]["api"]["experienceBaseUrl"] == emulator + "experience/"
    assert hooks["consentCalls"] == [True, False, True]
    # The subscriber saw the initial value and each change, and nothing after unsubscribe.
    assert out["consentSeen"] == ["undefined", True, False]
    # Before consent page() works but writes no cookie; with consent the id is persisted;
    # the second call updates the same profile; revocation deletes the cookie.
    assert out["cookieBeforeConsent"] == ""
    assert out["firstId"] and out["secondId"] == out["firstId"]
    assert out["cookieAfterConsent"] == "ctfl-opt-aid=" + out["firstId"]
    assert out["cookieAfterRevoke"] == ""
    assert out["flagMissing"] is True and out["globalAfterDestroy"] == "undefined"

    recs = get_json(emulator + "__emulator/requests?api=experience")
    assert [r["status"] for r in recs] == [200, 200], [r["issues"] for r in recs]
    base = "/experience/v2/organizations/mock-client-id/environments/main/profiles"
    assert [r["path"] for r in recs] == [base, base + "/" + out["firstId"]]
    for r, consent in zip(recs, (False, True)):
        assert r["query"] == {"locale": "de-DE"}
        assert r["headers"]["content-type"] == "text/plain"
        ev = r["json"]["events"][0]
        assert ev["type"] == "page" and ev["channel"] == "web"
        assert ev["context"]["gdpr"]["isConsentGiven"] is consent
        assert ev["context"]["library"]["name"] == "@contentful/optimization-web-standin"
        assert ev["context"]["locale"] == "de-DE"
        assert ev["context"]["page"]["path"] == "/standin_check.html"
        assert ev["context"]["page"]["query"] == {"emu": emulator}
        assert ev["originalTimestamp"] == ev["sentAt"] == ev["timestamp"]
    assert recs[1]["json"]["events"][0]["properties"]["title"] == "explicit title"

