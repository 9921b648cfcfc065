"""Headless Chromium against Apache + mod_ctflopt + the emulator serving the demo site, with the
Web SDK stand-in (test/demo/sdk-standin.js) as CtflOptWebSDKURL (issue 2, "Tests").

The browser side is test/browser/sdk-bootstrap.mjs (playwright-core driving Debian's chromium);
this wrapper serves the site, runs one scenario per test and fails on a non-zero exit. Skipped
only when chromium or node is not installed (`make -f apxs.mk deps` installs both); the npm
dependency is installed by test/browser/install.sh (idempotent) when it is missing."""

import os
import shutil
import subprocess

import pytest

from httpd import CLIENT_ID, ENVIRONMENT, REPO, SDK_URL, api_directives

CHROMIUM = os.environ.get("CTFLOPT_CHROMIUM", "/usr/bin/chromium")
BROWSER_DIR = REPO / "test" / "browser"
SCRIPT = BROWSER_DIR / "sdk-bootstrap.mjs"
DEMO = REPO / "test" / "demo"
STANDIN_URL = "/ctflopt/sdk-standin.js"


def site(apache, emulator, origin):
    # A copy of the demo site (the Apache user must be able to read it) and the stand-in.
    for f in sorted((DEMO / "site").iterdir()):
        if f.is_file():
            apache.write_doc(f.name, f.read_bytes())
    apache.write_doc(STANDIN_URL.lstrip("/"), (DEMO / "sdk-standin.js").read_bytes())
    # Chromium asks for /favicon.ico on its own; a 404 there is a console error.
    if not (apache.docroot / "favicon.ico").exists():
        apache.write_doc("favicon.ico", b"")
    directives = api_directives(emulator).replace(f"CtflOptWebSDKURL {SDK_URL}",
                                                  f"CtflOptWebSDKURL {STANDIN_URL}")
    assert STANDIN_URL in directives
    return directives + '\n<Location "/">\n    CtflOptEngine On\n</Location>\n'


@pytest.fixture(scope="module")
def browser_ready():
    missing = [what for what, ok in (("chromium", os.access(CHROMIUM, os.X_OK)),
                                     ("node", shutil.which("node")),
                                     ("npm", shutil.which("npm"))) if not ok]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (make -f apxs.mk deps)")
    r = subprocess.run([str(BROWSER_DIR / "install.sh")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"test/browser/install.sh failed:\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("scenario", ["granted", "roundtrip", "denied"])
def test_browser(apache, emulator, browser_ready, scenario):
    env = dict(os.environ,
               CTFLOPT_BASE_URL=apache.origin_url,
               CTFLOPT_EMULATOR_URL=emulator.base,
               CTFLOPT_CLIENT_ID=CLIENT_ID,
               CTFLOPT_ENVIRONMENT=ENVIRONMENT,
               CTFLOPT_CHROMIUM=CHROMIUM)
    r = subprocess.run(["node", str(SCRIPT), scenario], cwd=str(REPO), env=env,
                       capture_output=True, text=True, timeout=180)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0, f"browser scenario {scenario} failed (exit {r.returncode}):\n{out}"
