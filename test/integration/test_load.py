"""Issue 4 "Load": wrk at 64 connections against the demo home page with consent granted, a
mix of new, returning and identified visitors (a wrk Lua script picks the cookies), entries
from the emulator's CDA; zero non-2xx responses, zero socket errors, children's RSS flat after
the warm-up; and three graceful restarts during load without a failed request.

Short by default so it runs with the suite (CTFLOPT_LOAD_SECONDS, default 10);
bench/load.sh runs it for 60 s and writes bench/results/issue4-<date>.md from the
`LOAD-RESULT {json}` lines it prints. Select or deselect it with `-k load` / `-k "not load"`
(every test here is named test_load_*)."""

import json
import re
import shutil
import subprocess
import threading
import time

import pytest

from httpd import REPO, api_directives, wait_until
from prodkit import (ProdApache, cpu_seconds, env_int, new_root, proc_status_kb, serve,
                     status_auto)

SECONDS = env_int("CTFLOPT_LOAD_SECONDS", 10)
CONNECTIONS = env_int("CTFLOPT_LOAD_CONNECTIONS", 64)
WARMUP_FRACTION = 0.3
RETURNING = 40                       # profiles created before the run
DEMO_PAGE = REPO / "test" / "demo" / "site" / "index.html"
# Every process exists from the start and none is stopped for being idle, so RSS per pid can
# be followed through the run. Each process has a thread for every wrk connection: when all
# workers of an event process are busy (here: waiting for the Experience API), its listener
# closes idle keep-alive connections early, and wrk counts a request sent on one of them at
# that moment as a read error (httpd behaviour, not the module's). ServerLimit leaves room for
# the old generation finishing its requests during a graceful restart.
MPM_BLOCK = ("StartServers 2\nServerLimit 4\nThreadsPerChild 64\nMinSpareThreads 64\n"
             "MaxSpareThreads 256\nMaxRequestWorkers 256\n")
# Under this load the emulator may answer late: the module then serves the baseline (or the
# baseline content of marked elements), logs (rate-limited) and may open its breaker; after a
# graceful restart the entry cache starts empty. Counted and reported, not failures.
DEGRADED = ["CTFLOPT0101", "CTFLOPT0102", "CTFLOPT0104", "CTFLOPT0301", "CTFLOPT0302"]

WRK_LUA = r"""
-- Visitors for mod_ctflopt load tests: 25%% new (consent cookie only), 65%% returning (one of
-- the known profile ids), 10%% returning and identified (X-User-Id).
local ids = {%(ids)s}
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
  table.insert(threads, thread)
end

function init(args)
  close_connections = args[1] == "close"
  math.randomseed(seed * 7919)
  non2xx = 0
  personalized = 0
  responses = 0
end

function request()
  local r = math.random()
  local cookie = "app-personalization-consent=granted"
  local headers = {}
  if r >= 0.25 then
    cookie = cookie .. "; ctfl-opt-aid=" .. ids[math.random(#ids)]
  end
  if r >= 0.90 then
    headers["X-User-Id"] = "load-user-" .. math.random(20)
  end
  headers["Cookie"] = cookie
  if close_connections then
    headers["Connection"] = "close"
  end
  return wrk.format("GET", "%(path)s", headers)
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif body and string.find(body, "__OPTIMIZATION_DATA__", 1, true) then
    personalized = personalized + 1
  end
end

function done(summary, latency, requests)
  local n, p, seen = 0, 0, 0
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
    p = p + t:get("personalized")
    seen = seen + t:get("responses")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests": %%d, "responses": %%d, "non2xx": %%d, "personalized": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d, ' ..
    '"duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d}\n',
    summary.requests, seen, n, p, e.connect, e.read, e.write, e.status, e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@pytest.fixture(scope="module")
def apache(workdir, emulator, module_so):
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (apt-get install wrk)")
    a = ProdApache(new_root(workdir, "load"), "event", module_so, mpm_block=MPM_BLOCK,
                   modules=["socache_shmcb"])
    a.write_doc("demo/index.html", DEMO_PAGE.read_bytes())
    site = api_directives(emulator, timeout_ms=2000) + f"""
CtflOptUserId header:X-User-Id
CtflOptContentfulSpace uelxcuo7v97l
CtflOptContentfulToken itest-token
CtflOptContentfulURL {emulator.base}/contentful/
CtflOptEntryCache "shmcb:{a.root}/run/entries(8388608)" 300
<Location /demo/>
    CtflOptEngine On
</Location>
<Location /server-status>
    SetHandler server-status
</Location>
"""
    yield from serve(a, site)


@pytest.fixture
def degraded_ok(expect_log):
    for p in DEGRADED:
        expect_log(p, required=False)


def returning_ids(apache, n=RETURNING) -> list:
    ids = []
    for i in range(n):
        r = apache.get(f"/demo/index.html?seed={i}",
                       headers={"Cookie": "app-personalization-consent=granted"})
        assert r.status == 200, r.status
        ids.append(r.cookies["ctfl-opt-aid"].value)
    return ids


def wrk_script(apache, ids) -> str:
    path = apache.root / "visitors.lua"
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", i) for i in ids)
    path.write_text(WRK_LUA % {"ids": ", ".join(f'"{i}"' for i in ids),
                               "path": "/demo/index.html"})
    return str(path)


def run_wrk(apache, script, seconds, close=False) -> dict:
    """wrk with the visitors script; close=True: one request per connection."""
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", script, f"http://127.0.0.1:{apache.port}/demo/index.html"]
                         + (["--", "close"] if close else []),
                         capture_output=True, text=True, timeout=seconds + 60)
    assert out.returncode == 0, out.stderr
    line = [x for x in out.stdout.splitlines() if x.startswith("WRK-RESULT ")]
    assert line, out.stdout + out.stderr
    return json.loads(line[0][len("WRK-RESULT "):])


class RssSampler:
    """RSS of every child of the apache parent, sampled every 0.5 s in a thread."""

    def __init__(self, apache):
        self.apache = apache
        self.samples = []              # (monotonic, {pid: rss kB})
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.5):
            rss = {}
            for pid in self.apache.children():
                try:
                    rss[pid] = proc_status_kb(pid, "VmRSS")
                except (OSError, KeyError):
                    pass
            self.samples.append((time.monotonic(), rss))

    def __enter__(self):
        self.start = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(5)

    def growth_after(self, warm_until: float) -> dict:
        """pid -> (RSS at the end of the warm-up, RSS at the end, peak) for pids seen in both."""
        warm = [s for t, s in self.samples if t <= warm_until]
        late = [s for t, s in self.samples if t > warm_until]
        if not warm or not late:
            return {}
        out = {}
        for pid, w in warm[-1].items():
            if pid in late[-1]:
                out[pid] = (w, late[-1][pid], max(s.get(pid, 0) for _, s in self.samples))
        return out


def statuses(apache) -> dict:
    """CTFLOPT_STATUS counts of /demo/ requests in the access log."""
    counts = {}
    for line in apache.access_log_path.read_text("utf-8", "replace").splitlines():
        cols = line.split("\t")
        if len(cols) > 5 and cols[4].startswith("/demo/index.html") and cols[0] == "-":
            counts[cols[5]] = counts.get(cols[5], 0) + 1
    return counts


def quiesce(apache, limit: float = 15.0):
    """Wait (bounded) until requests still in flight when wrk stopped are done, so their
    warnings (a late Experience answer: CTFLOPT0101 after the 2 s budget) land in this test,
    where they are expected, and not in the next one or in the shutdown check."""
    def idle():
        return int(status_auto(apache.port)["BusyWorkers"]) <= 1      # this status request
    wait_until(idle, limit, 0.2, "apache's workers to finish the requests in flight")


def warnings_by_id(apache) -> dict:
    """Warn-or-worse lines written during the current test, counted by message id."""
    counts = {}
    for line in apache.error_log.lines_since():
        m = re.search(r"\[[^\]\s]*:(warn|error|crit|alert|emerg)\].*?\b(CTFLOPT\d{4}|AH\d{5})\b", line)
        if m:
            counts[m.group(2)] = counts.get(m.group(2), 0) + 1
    return counts


def report(name, apache, **values):
    values["warnings"] = warnings_by_id(apache)
    print(f"\nLOAD-RESULT {json.dumps(dict(test=name, **values))}")


def test_load_mixed_visitors(apache, emulator, degraded_ok):
    ids = returning_ids(apache)
    script = wrk_script(apache, ids)
    before = statuses(apache)
    kids = apache.children()
    cpu0 = (sum(cpu_seconds(p) for p in kids), cpu_seconds(emulator.proc.pid))
    with RssSampler(apache) as rss:
        res = run_wrk(apache, script, SECONDS)
    quiesce(apache)
    cpu = (sum(cpu_seconds(p) for p in kids) - cpu0[0], cpu_seconds(emulator.proc.pid) - cpu0[1])
    growth = rss.growth_after(rss.start + SECONDS * WARMUP_FRACTION)
    after = statuses(apache)
    during = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    report("mixed-visitors", apache, seconds=SECONDS, connections=CONNECTIONS, wrk=res,
           req_per_s=round(res["requests"] / (res["duration_us"] / 1e6), 1),
           statuses=during, cpu_s=dict(apache=round(cpu[0], 2), emulator=round(cpu[1], 2)),
           rss_kb={str(p): dict(warm=g[0], end=g[1], peak=g[2])
                                    for p, g in growth.items()})
    assert res["requests"] > 0 and res["responses"] > 0
    assert res["non2xx"] == 0 and res["status"] == 0, res
    assert (res["connect"], res["read"], res["write"], res["timeout"]) == (0, 0, 0, 0), res
    assert growth, "no RSS samples for the same children before and after the warm-up"
    for pid, (warm, end, _) in growth.items():
        # Flat: allocator noise only, not a growth with the request count.
        assert end - warm < max(8 * 1024, warm // 5), f"child {pid}: {warm} kB -> {end} kB"


def test_load_graceful_restarts(apache, emulator, degraded_ok, expect_log):
    """One request per connection: a graceful restart closes idle keep-alive connections, and
    a client that sends on one at that moment gets no answer. That race is HTTP/1.1's (plain
    Apache serving a static file has it too: about 2500 wrk read errors in 10 s with keep-alive,
    0 with Connection: close); HTTP clients retry such requests, wrk counts them. Every request
    that reaches a server process must be answered."""
    # The old generation still holds its scoreboard slots while it finishes: capacity notice.
    expect_log("AH00484", required=False)
    ids = returning_ids(apache, 10)
    script = wrk_script(apache, ids)
    seconds = max(SECONDS, 8)
    result = {}

    def load():
        result.update(run_wrk(apache, script, seconds, close=True))

    t = threading.Thread(target=load)
    t.start()
    for _ in range(3):
        time.sleep(seconds / 4)
        apache.graceful()
    t.join(seconds + 90)
    assert not t.is_alive()
    quiesce(apache)
    report("graceful-restarts", apache, seconds=seconds, connections=CONNECTIONS, restarts=3, wrk=result)
    assert result["requests"] > 0
    assert result["non2xx"] == 0 and result["status"] == 0, result
    assert (result["connect"], result["read"], result["write"], result["timeout"]) == (0, 0, 0, 0), \
        result
    lines = [x for x in apache.error_log.lines_since() if "AH00493" in x]   # SIGUSR1 received
    assert len(lines) == 3, lines
