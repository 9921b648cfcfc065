#!/usr/bin/python3
"""Issue 2 benchmark: one Apache (event MPM) with mod_ctflopt and the emulator serving the same
150 KB page three ways, measured with wrk (req/s, 1-connection latency) and ab (connections the
module opened to the emulator over N requests). Prints a Markdown report and writes it to
bench/results/. Run through bench/run.sh; settings come from the environment (see run.sh).

Only 127.0.0.1 is used. Every process started here is stopped by its pid, also on SIGINT/SIGTERM.
No thresholds: it measures and reports."""

import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED = Path(os.environ.get("CTFLOPT_SHARED", REPO.parent / "shared")).resolve()
PAGE = Path(os.environ.get("BENCH_PAGE", SHARED / "bench" / "corpus" / "page-150k.html")).resolve()
MODULE = Path(os.environ.get("CTFLOPT_MODULE", REPO / "build" / "mod_ctflopt.so")).resolve()
FIXTURES = Path(os.environ.get("CTFLOPT_FIXTURES", SHARED / "fixtures"))
EMULATOR = REPO / "test" / "emulator" / "emulator.py"
RESULTS = Path(os.environ.get("BENCH_RESULTS", BENCH / "results"))

DURATION = int(os.environ.get("BENCH_DURATION", "10"))       # seconds per wrk run
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))  # wrk throughput connections
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "10000"))    # ab run for the connection count
AB_CONCURRENCY = int(os.environ.get("BENCH_AB_CONCURRENCY", "8"))
TIMEOUT_MS = int(os.environ.get("BENCH_TIMEOUT_MS", "500"))  # CtflOptTimeout (module default)

APACHE_BIN = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
PYTHON = "/usr/bin/python3"
CONSENT = "app-personalization-consent=granted"
LOCATIONS = ("plain", "unknown", "granted")
TITLES = {"plain": "plain static (engine Off)",
          "unknown": "module on, consent unknown",
          "granted": "module on, consent granted"}

STARTED = []   # Popen objects, stopped in reverse order by stop_all()


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise BenchError(f"timed out after {timeout}s waiting for {what}")


def start(argv, **kw):
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
    STARTED.append(proc)
    return proc


def stop_all():
    """Stop what we started, by pid: SIGTERM (apache -DFOREGROUND stops its children on it),
    then SIGKILL after a grace period."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def get(port, path, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# services


class Emulator:
    def __init__(self, work):
        self.port_file = work / "emulator.port"
        self.log_path = work / "emulator.log"
        self.port = None
        self.conn = None

    def start(self):
        with open(self.log_path, "ab") as out:
            self.proc = start([PYTHON, str(EMULATOR), "--port", "0", "--port-file",
                               str(self.port_file), "--fixtures", str(FIXTURES)],
                              stdout=out, stderr=out, cwd=str(REPO))

        def ready():
            if self.proc.poll() is not None:
                raise BenchError(f"emulator exited ({self.proc.returncode}), see {self.log_path}")
            try:
                t = self.port_file.read_text().strip()
            except OSError:
                return None
            return int(t) if t.isdigit() else None
        self.port = wait_until(ready, 20, "the emulator's port file")

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def stats(self):
        # A fresh connection per call: it never carries an Experience request, so it does not
        # change api_connections.experience, the number we report.
        st, _, body = get(self.port, "/__emulator/stats")
        if st != 200:
            raise BenchError(f"emulator stats: HTTP {st}")
        return json.loads(body)


class Apache:
    """One apache2 -DFOREGROUND on 127.0.0.1 serving the files of start() under /plain/,
    /unknown/ and /granted/ (each an Alias of one docroot); subclasses add directives."""

    MODS = ["mpm_event", "authz_core", "mime", "alias"]
    MPM = ("StartServers 2\nServerLimit 2\nThreadsPerChild 32\nMinSpareThreads 16\n"
           "MaxSpareThreads 64\nMaxRequestWorkers 64")

    def __init__(self, work, emulator, name="apache"):
        self.root = work / name
        self.docroot = self.root / "htdocs"
        self.logs = self.root / "logs"
        self.access_log = self.logs / "access.log"
        self.error_log = self.logs / "error.log"
        self.conf = self.root / "httpd.conf"
        self.port = free_port()
        self.emulator = emulator
        self.proc = None
        for d in (self.docroot, self.logs, self.root / "run"):
            d.mkdir(parents=True, exist_ok=True)

    def base_config(self, mpm=None, log_format=None):
        """Everything but the module's own directives."""
        loads = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in self.MODS)
        user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
        locs = "\n".join(f'Alias "/{name}/" "{self.docroot}/"' for name in LOCATIONS)
        access = f'CustomLog "{self.access_log}" "{log_format}"' if log_format else ""
        return f"""# generated by bench/{Path(sys.argv[0]).name}
ServerRoot "{self.root}"
DefaultRuntimeDir "{self.root}/run"
PidFile "{self.root}/run/httpd.pid"
Listen 127.0.0.1:{self.port}
ServerName 127.0.0.1:{self.port}
{user}
{loads}
LoadModule ctflopt_module {MODULE}
{mpm or self.MPM}
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15
ErrorLog "{self.error_log}"
LogLevel warn
{access}
TypesConfig /etc/mime.types
DocumentRoot "{self.docroot}"
<Directory />
    Require all denied
</Directory>
<Directory "{self.docroot}">
    Require all granted
</Directory>
{locs}

CtflOptClientId bench-client
CtflOptEnvironment main
CtflOptExperienceURL {self.emulator.base}/experience/
CtflOptInsightsURL {self.emulator.base}/insights/
CtflOptAllowInsecureAPI On
CtflOptTimeout {TIMEOUT_MS}
CtflOptWebSDKURL /sdk/contentful-optimization-web.umd.js
"""

    def config(self):
        # %{...}e columns let the report show what the module did for every measured request.
        return self.base_config(log_format="%U\\t%>s\\t%{CTFLOPT_STATUS}e\\t%{CTFLOPT_API_MS}e"
                                           "\\t%D") + """
# The same directives in both, so the cookie sent by the load generator is the only difference.
<Location "/unknown/">
    CtflOptEngine On
</Location>
<Location "/granted/">
    CtflOptEngine On
</Location>
"""

    def start(self, files: dict):
        for name, content in files.items():
            (self.docroot / name).write_bytes(content)
        self.conf.write_text(self.config())
        for dirpath, _, names in os.walk(self.root):   # children run as www-data when root
            os.chmod(dirpath, 0o755)
            for f in names:
                os.chmod(os.path.join(dirpath, f), 0o644)
        env = {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}
        env["LANG"] = "C"
        t = subprocess.run([APACHE_BIN, "-d", str(self.root), "-f", str(self.conf), "-t"],
                           capture_output=True, text=True, env=env, timeout=30)
        if t.returncode != 0:
            raise BenchError(f"apache2 -t failed:\n{t.stdout}{t.stderr}")
        self.proc = start([APACHE_BIN, "-d", str(self.root), "-f", str(self.conf),
                           "-DFOREGROUND"], env=env)
        first = next(iter(files))

        def up():
            if self.proc.poll() is not None:
                raise BenchError(f"apache2 exited ({self.proc.returncode}):\n{self.errors()}")
            try:
                return get(self.port, f"/plain/{first}", timeout=2)[0] == 200
            except OSError:
                return False
        wait_until(up, 20, "apache to answer")

    def errors(self):
        try:
            return self.error_log.read_text("utf-8", "replace")
        except OSError:
            return ""

    def bad_lines(self):
        """Error-log lines at warn or above."""
        return [line for line in self.errors().splitlines()
                if re.search(r"\[[^\]\s]*:(warn|error|crit|alert|emerg)\]", line)]

    def access_offset(self):
        try:
            return self.access_log.stat().st_size
        except OSError:
            return 0

    def access_lines(self, since):
        with open(self.access_log, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace").splitlines()


# ---------------------------------------------------------------------------------------------
# sanity: each location does what its row claims, else the numbers would mean nothing


def header(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def check_locations(apache, page):
    st, h, body = get(apache.port, "/plain/page.html")
    if st != 200 or body != page:
        raise BenchError(f"/plain/: HTTP {st}, {len(body)} bytes, expected the page unchanged")

    st, h, body = get(apache.port, "/unknown/page.html")
    if st != 200 or not re.search(rb"__OPTIMIZATION_CONSENT__\s*=\s*(undefined|void 0)", body) \
            or b"__OPTIMIZATION_DATA__" in body or header(h, "Set-Cookie"):
        raise BenchError(f"/unknown/: HTTP {st}: expected a bootstrap with consent undefined, "
                         f"no profile and no Set-Cookie (headers {h})")

    return personalized_profile_id(apache, "/granted/page.html")


def personalized_profile_id(apache, path):
    """GET path with consent: a personalized page and the ctfl-opt-aid it set (the profile id)."""
    st, h, body = get(apache.port, path, {"Cookie": CONSENT}, timeout=60)
    aid = None
    for c in header(h, "Set-Cookie"):
        m = re.match(r"ctfl-opt-aid=([A-Za-z0-9_-]+)", c)
        if m:
            aid = m.group(1)
    if st != 200 or b"__OPTIMIZATION_DATA__" not in body or not aid:
        raise BenchError(f"{path}: HTTP {st}: expected a personalized page and a ctfl-opt-aid "
                         f"cookie (headers {h}); error log:\n{apache.errors()[-2000:]}")
    return aid


# ---------------------------------------------------------------------------------------------
# load generators

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise BenchError(f"cannot parse wrk duration {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, connections, threads, duration, cookie=None, latency=False):
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    if latency:
        argv.append("--latency")
    if cookie:
        argv += ["-H", f"Cookie: {cookie}"]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed:\n{out.stdout}{out.stderr}")
    text = out.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    n = re.search(r"(\d+) requests in", text)
    if not m or not n:
        raise BenchError(f"cannot parse wrk output:\n{text}")
    res = {"rps": float(m.group(1)), "requests": int(n.group(1)), "errors": 0, "raw": text}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    res["errors"] = (int(non2xx.group(1)) if non2xx else 0) + \
        (sum(int(x) for x in sock.groups()) if sock else 0)
    if latency:
        for p in ("50", "99"):
            lm = re.search(rf"^\s+{p}%\s+(\S+)", text, re.M)
            if not lm:
                raise BenchError(f"no {p}% latency in wrk output:\n{text}")
            res[f"p{p}"] = ms(lm.group(1))
    return res


def ab(url, n, c, cookie):
    argv = ["ab", "-q", "-n", str(n), "-c", str(c), "-k", "-H", f"Cookie: {cookie}", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed:\n{out.stdout}{out.stderr}")
    text = out.stdout

    def num(label):
        m = re.search(rf"^{label}:\s+(\d+)", text, re.M)
        return int(m.group(1)) if m else 0
    # ab counts a body whose length differs from the first one as "failed (Length)"; the
    # bootstrap embeds the profile, so lengths legitimately vary. Only real failures count.
    parts = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", text)
    failed = sum(int(x) for x in parts.groups()) if parts else 0
    rps = re.search(r"Requests per second:\s+([\d.]+)", text)
    return {"complete": num("Complete requests"), "failed": failed,
            "non2xx": num("Non-2xx responses"), "rps": float(rps.group(1)) if rps else 0.0}


def module_outcomes(lines, prefix):
    """CTFLOPT_STATUS counts and API-call ms (median, p99) for access-log lines under prefix."""
    statuses, api = {}, []
    for line in lines:
        cols = line.split("\t")
        if len(cols) < 5 or not cols[0].startswith(prefix):
            continue
        statuses[cols[2]] = statuses.get(cols[2], 0) + 1
        if cols[3] not in ("", "-"):
            try:
                api.append(float(cols[3]))
            except ValueError:
                pass
    api.sort()
    pct = (lambda q: api[min(len(api) - 1, int(q * len(api)))]) if api else (lambda q: None)
    return statuses, pct(0.5), pct(0.99)


# ---------------------------------------------------------------------------------------------
# report


def fmt_ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def fmt_statuses(s):
    return ", ".join(f"{k or '-'}: {v}" for k, v in sorted(s.items())) or "-"


def machine_info():
    def run(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except OSError:
            return ""
    apache = re.search(r"Server version:\s*(.*)", run([APACHE_BIN, "-v"]))
    wrk_v = run(["wrk", "-v"]).splitlines()
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    version = re.search(r'CTFLOPT_VERSION "([^"]+)"',
                        (REPO / "mod_ctflopt" / "ctflopt_version.h").read_text())
    commit = run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).strip()
    return {"apache": apache.group(1) if apache else "?", "wrk": wrk_v[0] if wrk_v else "?",
            "cpu": f"{os.cpu_count()} x {cpu}", "module": version.group(1) if version else "?",
            "commit": commit or "uncommitted"}


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def report(info, page, results, conn, outcomes, load_before, load_after, errors):
    now = datetime.datetime.now(datetime.timezone.utc)
    out = [f"# mod_ctflopt benchmark, issue 2 ({now:%Y-%m-%d %H:%M} UTC)", "",
           f"- Page: `{page.name}` ({page.stat().st_size} bytes); one Apache, event MPM "
           f"(2 processes x 32 threads), access log on; emulator = test/emulator/emulator.py.",
           f"- mod_ctflopt {info['module']} ({info['commit']}), {info['apache']}, {info['wrk']}",
           f"- Machine: {info['cpu']}; load average before {load_before}, after {load_after}. "
           f"Load generator, Apache and emulator share these cores.",
           f"- Throughput: `wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s`; latency: "
           f"`wrk -t1 -c1 -d{DURATION}s --latency`. Consent granted = a returning visitor "
           f"(consent cookie + the ctfl-opt-aid from a first request); CtflOptTimeout {TIMEOUT_MS} ms.",
           "",
           "| location | req/s | ratio req/s | p50 ms (1 conn) | ratio p50 | p99 ms (1 conn) "
           "| ratio p99 | wrk errors |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = results["plain"]
    for name in LOCATIONS:
        r = results[name]
        out.append(f"| {TITLES[name]} | {r['tput']['rps']:.0f} | "
                   f"{fmt_ratio(r['tput']['rps'], base['tput']['rps'])} | "
                   f"{r['lat']['p50']:.3f} | {fmt_ratio(r['lat']['p50'], base['lat']['p50'])} | "
                   f"{r['lat']['p99']:.3f} | {fmt_ratio(r['lat']['p99'], base['lat']['p99'])} | "
                   f"{r['tput']['errors'] + r['lat']['errors']} |")
    out += ["", "Ratios are module/plain (req/s: higher is better; latency: lower is better).", "",
            "What the module did during the wrk runs, warm-ups included (CTFLOPT_STATUS from the access log; "
            "API ms = CTFLOPT_API_MS):", "",
            "| location | statuses | API ms p50 | API ms p99 |", "| --- | --- | ---: | ---: |"]
    for name in ("unknown", "granted"):
        s, p50, p99 = outcomes[name]
        out.append(f"| {TITLES[name]} | {fmt_statuses(s)} | "
                   f"{'-' if p50 is None else f'{p50:g}'} | {'-' if p99 is None else f'{p99:g}'} |")
    out += ["", f"Connections to the emulator, consent granted, `ab -n {REQUESTS} -c {AB_CONCURRENCY} "
            f"-k` right after startup:", "",
            "| requests completed | failed | Experience API requests | new TCP connections that "
            "carried them | connections per request | module statuses |",
            "| ---: | ---: | ---: | ---: | ---: | --- |",
            f"| {conn['ab']['complete']} | {conn['ab']['failed'] + conn['ab']['non2xx']} | "
            f"{conn['api_requests']} | {conn['api_connections']} | "
            f"{conn['api_connections'] / conn['api_requests'] if conn['api_requests'] else 0:.4f} | "
            f"{fmt_statuses(conn['statuses'])} |",
            "", f"Over the whole run: {conn['total_requests']} Experience API requests on "
            f"{conn['total_connections']} TCP connections.",
            "", f"Error-log lines at warn or above during the run: {len(errors)}."]
    out += [f"    {e}" for e in errors[:10]]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def main():
    for tool in ("wrk", "ab"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} not found (Debian packages wrk, apache2-utils)")
    for p, what in ((PAGE, "page (BENCH_PAGE)"), (MODULE, "module (CTFLOPT_MODULE; run "
                    "`make -f apxs.mk`)"), (EMULATOR, "emulator"), (FIXTURES, "fixtures")):
        if not p.exists():
            raise BenchError(f"{what} not found: {p}")
    page = PAGE.read_bytes()
    info = machine_info()
    load_before = loadavg()
    log(f"load average {load_before}; page {PAGE} ({len(page)} bytes); module {MODULE}")

    work = Path(tempfile.mkdtemp(prefix="ctflopt-bench-"))
    os.chmod(work, 0o755)
    try:
        emu = Emulator(work)
        emu.start()
        apache = Apache(work, emu)
        apache.start({"page.html": page})
        aid = check_locations(apache, page)
        returning = f"{CONSENT}; ctfl-opt-aid={aid}"
        url = {n: f"http://127.0.0.1:{apache.port}/{n}/page.html" for n in LOCATIONS}
        cookie = {"plain": None, "unknown": None, "granted": returning}

        # 1. Connections the module opens to the emulator, starting from a fresh Apache.
        log(f"ab: {REQUESTS} requests, consent granted")
        before = emu.stats()
        off = apache.access_offset()
        ab_res = ab(url["granted"], REQUESTS, AB_CONCURRENCY, returning)
        time.sleep(0.5)   # let the last access-log lines land
        after = emu.stats()
        exp = lambda s, k: s.get(k, {}).get("experience", 0)
        conn = {"ab": ab_res,
                "api_requests": exp(after, "requests") - exp(before, "requests"),
                "api_connections": exp(after, "api_connections") - exp(before, "api_connections"),
                "statuses": module_outcomes(apache.access_lines(off), "/granted/")[0]}

        # 2. Throughput, then 1-connection latency, for each location in turn.
        results = {n: {} for n in LOCATIONS}
        off = apache.access_offset()
        for n in LOCATIONS:
            wrk(url[n], CONNECTIONS, THREADS, 2, cookie[n])                      # warm-up
            log(f"wrk throughput: {n}")
            results[n]["tput"] = wrk(url[n], CONNECTIONS, THREADS, DURATION, cookie[n])
        for n in LOCATIONS:
            log(f"wrk latency (1 connection): {n}")
            results[n]["lat"] = wrk(url[n], 1, 1, DURATION, cookie[n], latency=True)
        time.sleep(0.5)
        lines = apache.access_lines(off)
        outcomes = {n: module_outcomes(lines, f"/{n}/") for n in ("unknown", "granted")}
        final = emu.stats()
        conn["total_requests"] = exp(final, "requests")
        conn["total_connections"] = exp(final, "api_connections")
        errors = apache.bad_lines()
    finally:
        finish(work)

    write_report("issue2", report(info, PAGE, results, conn, outcomes, load_before, loadavg(),
                                  errors))


def finish(work):
    """Stop every process started, remove the work directory (BENCH_KEEP=1 keeps it)."""
    stop_all()
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"kept {work}")


def write_report(prefix, text):
    RESULTS.mkdir(parents=True, exist_ok=True)
    dest = RESULTS / f"{prefix}-{datetime.datetime.now():%Y-%m-%d-%H%M}.md"
    dest.write_text(text)
    print(text)
    log(f"written to {dest}")


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run(main):
    """Run a benchmark's main: TERM/HUP stop it like Ctrl-C (finally blocks stop what it
    started); exit 1 on a BenchError, 130 when interrupted."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        main()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        print(f"bench: interrupted ({e})", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run(main)
