"""Fixtures for the mod_ctflopt integration suite (see httpd.py for the machinery).

- `emulator` (session): test/emulator/emulator.py as a subprocess; reset before every test.
- `origin` (session): the in-process scriptable origin; routes and records reset before every test.
- `apache` (module): one apache2 per test module and MPM, configured by the module's
  `site(apache, emulator, origin) -> str` function (vhost/Location config with CtflOpt*).
- MPM: env `MPM=event|prefork` runs everything under that MPM. Without it, tests run under
  event, and tests/modules marked `both_mpms` run under event and prefork.
- Error-log discipline: after every test, any warn/error/crit/alert/emerg line written during
  the test fails it unless declared with `expect_log("CTFLOPT0101")` (id or regex).
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from httpd import Apache, Emulator, ErrorLogChecker, Expectation, Origin, MODULE_SO

RUNNING = []   # Apache instances currently started (at most one per module at a time)


def pytest_configure(config):
    config.addinivalue_line("markers", "both_mpms: run under the event and the prefork MPM")


def pytest_generate_tests(metafunc):
    if "mpm" not in metafunc.fixturenames:
        return
    forced = os.environ.get("MPM")
    if forced:
        if forced not in ("event", "prefork"):
            raise pytest.UsageError("MPM must be event or prefork")
        mpms = [forced]
    elif metafunc.definition.get_closest_marker("both_mpms"):
        mpms = ["event", "prefork"]
    else:
        mpms = ["event"]
    metafunc.parametrize("mpm", mpms, scope="module")


@pytest.fixture(scope="session")
def workdir():
    # Not pytest's tmp_path_factory: its /tmp/pytest-of-root is 0700, and apache's children
    # run as www-data and must read the docroot and htpasswd files.
    d = Path(tempfile.mkdtemp(prefix="ctflopt-it-"))
    os.chmod(d, 0o755)
    yield d
    if not os.environ.get("CTFLOPT_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def module_so():
    if not MODULE_SO.exists():
        pytest.fail(f"{MODULE_SO} is missing: run `make -f apxs.mk` first")
    return MODULE_SO


@pytest.fixture(scope="session")
def emulator(workdir):
    emu = Emulator(workdir)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def origin():
    o = Origin()
    o.start()
    yield o
    o.stop()


@pytest.fixture(scope="session")
def scripted():
    """An origin whose routes are functions (prodkit.ScriptedOrigin), for the production tests."""
    from prodkit import ScriptedOrigin
    o = ScriptedOrigin().start()
    yield o
    o.stop()


@pytest.fixture(autouse=True)
def _reset_services(request, emulator, origin):
    emulator.reset()
    origin.reset()
    if "scripted" in request.fixturenames:
        request.getfixturevalue("scripted").reset()
    yield


@pytest.fixture(scope="module")
def apache(request, mpm, workdir, emulator, origin, module_so):
    name = request.module.__name__.rsplit(".", 1)[-1]
    root = Path(tempfile.mkdtemp(prefix=f"{name}-{mpm}-", dir=workdir))
    a = Apache(root, mpm, module_so)
    site = request.module.site(a, emulator, origin)
    a.start(site)
    RUNNING.append(a)
    bad = ErrorLogChecker.unexpected(a.error_log.lines_since(a.start_offset), [])
    if bad:
        RUNNING.remove(a)
        a.stop()
        pytest.fail("warnings/errors while starting apache:\n" + "\n".join(bad))
    a.error_log.mark()
    yield a
    RUNNING.remove(a)
    a.stop()
    bad = ErrorLogChecker.unexpected(a.error_log.lines_since(), [])
    assert not bad, "warnings/errors while stopping apache:\n" + "\n".join(bad)


@pytest.fixture
def expect_log(request):
    """expect_log("CTFLOPT0101") or expect_log(r"regex", required=False): declare log lines
    at warn level or above that this test expects (required ones must appear)."""
    expectations = []
    request.node.ctflopt_expectations = expectations

    def expect(pattern: str, required: bool = True):
        expectations.append(Expectation(pattern, required))
    return expect


def _settle(log: ErrorLogChecker, limit: float = 1.0):
    """Let lines written right after the last response reach the log."""
    deadline = time.monotonic() + limit
    size = log.size()
    while time.monotonic() < deadline:
        time.sleep(0.03)
        now = log.size()
        if now == size:
            return
        size = now


@pytest.fixture(autouse=True)
def _error_log_discipline(request):
    for a in RUNNING:
        a.error_log.mark()
    yield
    expectations = getattr(request.node, "ctflopt_expectations", [])
    problems = []
    for a in list(RUNNING):
        _settle(a.error_log)
        lines = a.error_log.lines_since()
        a.error_log.mark()
        problems += ErrorLogChecker.unexpected(lines, expectations)
    missing = [e.pattern for e in expectations if e.required and e.seen == 0]
    msg = []
    if problems:
        msg.append("unexpected error-log lines:\n" + "\n".join(problems))
    if missing:
        msg.append(f"expected error-log lines not found: {missing}")
    if msg:
        pytest.fail("\n".join(msg), pytrace=False)
