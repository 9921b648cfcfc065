#!/bin/bash
# Issue 4 load run: test/integration/test_load.py for 60 s (wrk, 64 connections, the demo home
# page with consent granted, new / returning / identified visitors; then 60 s with three
# graceful restarts), and a Markdown report in bench/results/issue4-<date>.md made from the
# LOAD-RESULT lines the tests print. The tests' assertions apply (zero non-2xx, zero socket
# errors, flat child RSS after the warm-up); the exit status is pytest's.
#
# Needs: build/mod_ctflopt.so (`make -f apxs.mk`), Debian apache2, wrk, /usr/bin/python3 + pytest.
# Environment (optional): CTFLOPT_LOAD_SECONDS (60), CTFLOPT_LOAD_CONNECTIONS (64),
# CTFLOPT_MODULE (module to load), CTFLOPT_KEEP=1 (keep the server roots under /tmp).
set -u
cd "$(dirname "$0")/.."
export CTFLOPT_LOAD_SECONDS=${CTFLOPT_LOAD_SECONDS:-60}
export CTFLOPT_LOAD_CONNECTIONS=${CTFLOPT_LOAD_CONNECTIONS:-64}
stamp=$(date -u +%Y-%m-%d-%H%M)
out=bench/results/issue4-$stamp.md
log=$(mktemp /tmp/ctflopt-load-XXXXXX.log)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

/usr/bin/python3 -m pytest -q -s -p no:cacheprovider test/integration/test_load.py 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

/usr/bin/python3 - "$log" "$out" "$rc" "$load_before" <<'EOF'
import json, subprocess, sys, time
log, out, rc, load_before = sys.argv[1:5]
results = [json.loads(line.split("LOAD-RESULT ", 1)[1]) for line in open(log, errors="replace")
           if "LOAD-RESULT " in line]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                       capture_output=True, text=True).stdout.strip()
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
lines = [f"# mod_ctflopt load test, issue 4 ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)", "",
         f"- Commit {commit}{' + uncommitted changes' if dirty else ''}; pytest exit status {rc}.",
         f"- Machine: {len(cpu)} x {cpu[0] if cpu else '?'}; load average before "
         f"{load_before}, after {' '.join(open('/proc/loadavg').read().split()[:3])}. wrk, Apache "
         "(event MPM) and the emulator share these cores.",
         "- `wrk -t2 -c64`, the demo home page (test/demo/site/index.html: 10 marked elements, "
         "entries from the emulator's CDA through the shmcb entry cache), consent granted: 25% "
         "new visitors, 65% returning (40 known profiles), 10% returning and identified.", ""]
for r in results:
    w = r["wrk"]
    secs = w["duration_us"] / 1e6
    errors = {k: w[k] for k in ("connect", "read", "write", "timeout", "status")}
    lines += [f"## {r['test']} ({r['seconds']} s, {r['connections']} connections"
              + (f", {r['restarts']} graceful restarts" if "restarts" in r else "") + ")", "",
              "| requests | req/s | non-2xx | socket errors | personalized | p50 ms | p99 ms | max ms |",
              "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
              f"| {w['requests']} | {w['requests'] / secs:.0f} | {w['non2xx']} | "
              f"{', '.join(f'{k} {v}' for k, v in errors.items())} | {w['personalized']} | "
              f"{w['p50_us'] / 1000:.1f} | {w['p99_us'] / 1000:.1f} | {w['max_us'] / 1000:.1f} |", ""]
    if "restarts" in r:
        lines += ["One request per connection (`Connection: close`): a graceful restart closes idle "
                  "keep-alive connections and wrk counts a request sent on one at that moment as a "
                  "read error (plain Apache has the same race); here every request must be answered.", ""]
    lines += ["Warning/error lines in the error log: "
              + (", ".join(f"{k}: {v}" for k, v in sorted(r.get("warnings", {}).items())) or "none"), ""]
    if "statuses" in r:
        lines += ["CTFLOPT_STATUS of the requests (access log): "
                  + ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items())), ""]
    if "cpu_s" in r:
        lines += [f"CPU time during the run: Apache children {r['cpu_s']['apache']} s, emulator "
                  f"{r['cpu_s']['emulator']} s ({1000 * r['cpu_s']['apache'] / max(1, w['requests']):.2f}"
                  " ms of Apache CPU per request).", ""]
    if r.get("rss_kb"):
        lines += ["Child RSS (kB) at the end of the warm-up (30% of the run), at the end, and peak:", "",
                  "| child | warm | end | growth | peak |", "| ---: | ---: | ---: | ---: | ---: |"]
        for pid, v in r["rss_kb"].items():
            lines.append(f"| {pid} | {v['warm']} | {v['end']} | {v['end'] - v['warm']} | {v['peak']} |")
        lines.append("")
if not results:
    lines += ["No LOAD-RESULT lines: the tests did not get to run wrk (see the pytest output).", ""]
open(out, "w").write("\n".join(lines))
print(f"\nwrote {out}")
EOF
rm -f "$log"
exit "$rc"
