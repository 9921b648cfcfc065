#!/bin/bash
# A representative subset of the integration suite with every apache2 under
# `valgrind --leak-check=full` as ONE process (`apache2 -X`, see valgrind_plugin.py), then a
# report of the valgrind errors and definite leaks attributable to mod_ctflopt (a frame in
# mod_ctflopt.so or in one of its ctfl_* / ctflopt_* functions); httpd's, APR's and the
# libraries' own findings are counted but not blamed on us.
#
#   test/integration/valgrind_subset.sh [pytest args, e.g. test files; default: the subset]
#
# Exit status: 1 when valgrind found errors or definite leaks attributable to mod_ctflopt,
# else pytest's. Logs stay in $CTFLOPT_VALGRIND_DIR (default: a new /tmp/ctflopt-vg-* dir).
# Takes several minutes (everything runs ~20-50x slower under valgrind); not in the default
# suite. Tests that measure time, memory, processes or load are not in the subset.
set -u
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
export CTFLOPT_VALGRIND_DIR=${CTFLOPT_VALGRIND_DIR:-$(mktemp -d /tmp/ctflopt-vg-XXXXXX)}
export PYTHONPATH=test/integration${PYTHONPATH:+:$PYTHONPATH}
export MPM=${MPM:-prefork}
if [ $# -eq 0 ]; then
    set -- test/integration/test_proxy.py test/integration/test_injection.py \
        test/integration/test_consent.py test/integration/test_cookies.py \
        test/integration/test_hostile.py test/integration/test_cache.py \
        "test/integration/test_production.py" \
        "test/integration/test_faults.py::test_fault_serves_the_baseline"
fi
/usr/bin/python3 -m pytest -q -p no:cacheprovider -p valgrind_plugin \
    -o faulthandler_timeout=900 "$@"
rc=$?

/usr/bin/python3 - "$CTFLOPT_VALGRIND_DIR" <<'EOF'
import re, sys
from pathlib import Path
ours = re.compile(r"mod_ctflopt\.so|\b(ctfl|ctflopt)_\w+|\((ctfl|ctflopt)_\w+\.c:\d+\)")
logs = sorted(Path(sys.argv[1]).glob("*.log"))
total_err = total_leaks = 0
blamed = []
for log in logs:
    text = log.read_text(errors="replace")
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    total_err += int(m.group(1)) if m else 0
    # Records are separated by lines holding only the ==PID== prefix.
    for block in re.split(r"\n==\d+== ?\n", text):
        lines = [re.sub(r"^==\d+== ?", "", l) for l in block.strip().splitlines()]
        if not lines:
            continue
        head = lines[0]
        is_leak = "definitely lost in loss record" in head
        is_error = bool(re.match(r"(Invalid|Conditional jump|Use of uninitialised|Syscall param|"
                                 r"Mismatched|Source and destination overlap|Argument|"
                                 r"Uninitialised|Jump to)", head))
        if not (is_leak or is_error):
            continue
        total_leaks += is_leak
        if any(ours.search(l) for l in lines[1:]):
            blamed.append((log.name, "\n".join(lines)))
print(f"\nvalgrind: {len(logs)} apache processes, {total_err} errors reported in total "
      f"(leaks included), {total_leaks} definite-leak records in total")
print(f"attributable to mod_ctflopt: {len(blamed)}")
for name, text in blamed:
    print(f"\n--- {name}\n{text}")
print(f"\nlogs: {sys.argv[1]}")
sys.exit(1 if blamed else 0)
EOF
vg=$?
[ "$vg" -ne 0 ] && exit 1
exit "$rc"
