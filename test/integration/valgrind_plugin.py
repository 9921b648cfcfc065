"""pytest plugin (`-p valgrind_plugin`, with test/integration on PYTHONPATH) that runs every
apache2 the integration tests start as ONE process (`-X`: no detach, no children) under
`valgrind --leak-check=full`, one log per process in CTFLOPT_VALGRIND_DIR. Used by
valgrind_subset.sh, which also reads the logs.

Only httpd.Apache's start and stop change: `apache2 -k start` becomes
`valgrind ... apache2 -X` in the background (waited for until it answers), `-k stop` a SIGTERM
to that process (waited for while valgrind writes its leak report). Config tests (`-t`) and
everything else run as usual."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpd

VG_DIR = Path(os.environ.get("CTFLOPT_VALGRIND_DIR", "/tmp/ctflopt-valgrind"))
VALGRIND = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite", "--num-callers=40", "--keep-debuginfo=yes",
            "--child-silent-after-fork=yes", "--error-limit=no",
            f"--suppressions={Path(__file__).with_name('valgrind.supp')}"]
START_TIMEOUT = 180.0
STOP_TIMEOUT = 180.0

_procs = {}            # Apache root -> Popen of valgrind
_original_run = httpd.Apache._run


def _alive(port: int) -> bool:
    import http.client
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/__alive")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def _run(self, *args, timeout=30):
    if args == ("-k", "start"):
        VG_DIR.mkdir(parents=True, exist_ok=True)
        name = f"{self.root.name}.%p.log"
        out = open(self.logs / "valgrind.stdout", "ab")
        p = subprocess.Popen(VALGRIND + [f"--log-file={VG_DIR / name}", httpd.APACHE_BIN, "-X",
                                         "-d", str(self.root), "-f", str(self.conf_path)],
                             stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=self._env(),
                             start_new_session=True)
        out.close()
        _procs[str(self.root)] = p
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if p.poll() is not None:
                return subprocess.CompletedProcess(args, p.returncode, "", "apache2 -X exited")
            if _alive(self.port):
                return subprocess.CompletedProcess(args, 0, "", "")
            time.sleep(0.5)
        return subprocess.CompletedProcess(args, 1, "", "apache2 -X under valgrind did not answer")
    if args == ("-k", "stop"):
        p = _procs.pop(str(self.root), None)
        if p is None:
            return _original_run(self, *args, timeout=timeout)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        # apache2 -X leaves its pid file behind; the next start would warn (AH00098).
        self.pidfile.unlink(missing_ok=True)
        return subprocess.CompletedProcess(args, 0, "", "")
    if args and args[0] == "-k":
        raise RuntimeError(f"apache2 {' '.join(args)} is not supported under valgrind_plugin")
    return _original_run(self, *args, timeout=timeout)


httpd.Apache._run = _run


def pytest_report_header(config):
    return f"valgrind_plugin: apache2 -X under valgrind, logs in {VG_DIR}"
