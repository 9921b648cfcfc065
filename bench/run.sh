#!/bin/bash
# Issue 2 benchmark of mod_ctflopt: plain static vs module (consent unknown / granted) on the
# 150 KB corpus page, one Apache (event MPM) + the emulator on 127.0.0.1; wrk and ab.
# Prints a Markdown report and writes it to bench/results/issue2-<date>.md. No thresholds.
#
# Needs: build/mod_ctflopt.so (`make -f apxs.mk`), Debian apache2, wrk, ab (apache2-utils).
# Environment (all optional):
#   CTFLOPT_MODULE   module to load           (default: build/mod_ctflopt.so)
#   CTFLOPT_SHARED   the shared/ directory    (default: ../shared next to the repo)
#   BENCH_PAGE       page to serve            (default: $CTFLOPT_SHARED/bench/corpus/page-150k.html)
#   BENCH_DURATION   seconds per wrk run (10)  BENCH_CONNECTIONS wrk connections (8)
#   BENCH_THREADS    wrk threads (2)           BENCH_REQUESTS ab requests for the connection count (10000)
#   BENCH_AB_CONCURRENCY (8)  BENCH_TIMEOUT_MS CtflOptTimeout (500)  BENCH_KEEP=1 keep the temp dir
# Takes about 7 x BENCH_DURATION + 10 s plus the ab run.
set -u
cd "$(dirname "$0")/.."
/usr/bin/python3 bench/bench.py &
pid=$!
# bench.py stops everything it started (by pid) when it ends or gets TERM/INT/HUP.
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"' INT TERM HUP
wait "$pid"
rc=$?
trap - INT TERM HUP
exit "$rc"
