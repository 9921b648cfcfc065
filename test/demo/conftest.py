"""Shared helpers of the demo tests (run with `/usr/bin/python3 -m pytest test/demo`)."""

import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

DEMO = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(DEMO))
EMULATOR = os.path.join(REPO, "test", "emulator", "emulator.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, method="GET"):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """The emulator serving the demo fixtures; yields its base URL (ending in /)."""
    d = tmp_path_factory.mktemp("emu")
    port_file = d / "port"
    proc = subprocess.Popen([sys.executable, EMULATOR, "--port", "0", "--port-file",
                             str(port_file), "--fixtures", os.path.join(DEMO, "fixtures")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if port_file.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        yield "http://127.0.0.1:%d/" % int(port_file.read_text())
    finally:
        os.kill(proc.pid, 15)
        proc.wait(timeout=10)
        proc.stderr.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass


@pytest.fixture(scope="module")
def static_server():
    """A static file server for test/demo (the stand-in and its check page)."""
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=DEMO))
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield "http://127.0.0.1:%d/" % httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
