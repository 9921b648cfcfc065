#!/usr/bin/python3
"""Issue 3 benchmark: Apache with mod_ctflopt rewriting the marked elements of
../shared/bench/corpus/page-150k.html from a warm entry cache, against plain static serving of
the same file in the same run (wrk req/s), consent unknown and consent granted; then the peak
RSS of the Apache child while it serves the 1 MB corpus page and a generated 10 MB page.

The emulator serves the shared Experience fixtures and CDA entries generated here for every
corpus baseline id (a variant with title, Rich Text body and CTA, selected for a new visitor
through experience 2qVK4T5lnScbswoyBuGipd), so a consenting visitor gets every element
personalized. Each page is measured twice: as shipped, and with the `<p>` of every
data-ctfl-field="body" closed explicitly ("closed-p"; builds of mod_ctflopt before 2026-12-04
21:20 kept, unrewritten, the marked elements whose field content ends a <p> implicitly); the
report counts the elements the module actually stamped, so a row never measures less work
than it claims.

Reuses bench/bench.py's helpers (wrk, emulator, process handling). Only 127.0.0.1; every
process started is stopped by its pid, also on SIGINT/SIGTERM. No thresholds: it measures and
reports. Environment: as bench.py (BENCH_DURATION, BENCH_CONNECTIONS, BENCH_THREADS,
CTFLOPT_MODULE, CTFLOPT_SHARED, BENCH_KEEP, BENCH_RESULTS) plus BENCH_MEM_REQUESTS (3) and
BENCH_ROUNDS (3): the locations are measured in turn, round after round, and each row reports
the median round, because plain static serving on a shared 2-core box swings by 2x between
runs seconds apart."""

import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import bench
from bench import (CONNECTIONS, CONSENT, DURATION, MODULE, SHARED, THREADS, TIMEOUT_MS,
                   BenchError, fmt_ratio, get, log, loadavg, machine_info, wrk)

CORPUS = SHARED / "bench" / "corpus"
PAGE_150K = CORPUS / "page-150k.html"
PAGE_1M = CORPUS / "page-1m.html"
MEM_REQUESTS = int(os.environ.get("BENCH_MEM_REQUESTS", "3"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
MEM_CONCURRENCY = 4
NEW_VISITOR_EXPERIENCE = "2qVK4T5lnScbswoyBuGipd"    # selected, variantIndex 1 (spec §9.5)
LOCATIONS = ("plain", "unknown", "granted")
TITLES = {"plain": "plain static (engine Off)", "unknown": "module on, consent unknown",
          "granted": "module on, consent granted"}
MARKED = re.compile(rb'data-ctfl-baseline-id="([A-Za-z0-9._-]+)"')


# ---------------------------------------------------------------------------------------------
# pages and entries


def closed_p(page: bytes) -> bytes:
    """Every data-ctfl-field="body" <div><p>... gets its </p> before the </div>."""
    return re.sub(rb'(data-ctfl-field="body"><p>(?:(?!</div>).)*?)</div>', rb"\1</p></div>",
                  page, flags=re.S)


def ten_mb_page(page: bytes) -> bytes:
    """The 1 MB page with its <body> content repeated until the page is about 10 MB."""
    start = page.index(b">", page.index(b"<body")) + 1
    end = page.rindex(b"</body>")
    n = max(1, (10 * 1024 * 1024 - (len(page) - (end - start))) // (end - start))
    return page[:start] + page[start:end] * n + page[end:]


def sys_(eid, ctype=None, kind="Entry"):
    s = {"space": {"sys": {"type": "Link", "linkType": "Space", "id": "uelxcuo7v97l"}},
         "id": eid, "type": kind, "createdAt": "2026-12-01T10:00:00.000Z",
         "updatedAt": "2026-12-01T10:00:00.000Z",
         "environment": {"sys": {"id": "master", "type": "Link", "linkType": "Environment"}},
         "revision": 1, "locale": "en-US"}
    if ctype:
        s["contentType"] = {"sys": {"type": "Link", "linkType": "ContentType", "id": ctype}}
    return s


def link(eid):
    return {"sys": {"type": "Link", "linkType": "Entry", "id": eid}}


def entry(eid, ctype, fields):
    return {"metadata": {"tags": []}, "sys": sys_(eid, ctype), "fields": fields}


def rich(*parts):
    return {"nodeType": "document", "data": {}, "content": [
        {"nodeType": "paragraph", "data": {}, "content": [
            {"nodeType": "text", "value": v, "marks": [{"type": m} for m in marks], "data": {}}
            for v, marks in parts]}]}


def write_fixtures(root: Path, ids):
    """Shared Experience fixtures + one CDA collection per corpus baseline id."""
    (root / "contentful" / "entries").mkdir(parents=True)
    os.symlink(SHARED / "fixtures" / "experience", root / "experience")
    for bid in ids:
        exp, var = f"{bid}Exp", f"{bid}Var"
        baseline = entry(bid, "teaser", {
            "title": "Baseline title", "body": rich(("Baseline body", [])), "cta": "Baseline",
            "nt_experiences": [link(exp)]})
        experience = entry(exp, "nt_experience", {
            "nt_name": f"bench {bid}", "nt_type": "nt_personalization",
            "nt_experience_id": NEW_VISITOR_EXPERIENCE,
            "nt_config": {"traffic": 1, "distribution": [0, 1], "components": [
                {"baseline": {"id": bid}, "variants": [{"id": var, "hidden": False}]}]},
            "nt_variants": [link(var)]})
        variant = entry(var, "teaser", {
            "title": "Variant title – Zürich €",
            "body": rich(("Personalized body for ", []), ("returning", ["bold"]),
                         (" visitors, 5 € off.", [])),
            "cta": "Shop now »"})
        coll = {"sys": {"type": "Array"}, "total": 1, "skip": 0, "limit": 100, "items": [baseline],
                "includes": {"Entry": [experience, variant]}}
        (root / "contentful" / "entries" / f"{bid}.json").write_text(
            json.dumps(coll, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------
# Apache


class Apache(bench.Apache):
    """bench.py's Apache with the CDA and the entry cache configured.
    single_child: one event process (for peak-RSS readings)."""

    MODS = bench.Apache.MODS + ["socache_shmcb"]

    def __init__(self, work: Path, name: str, emulator, single_child=False):
        super().__init__(work, emulator, name)
        self.single_child = single_child

    def config(self):
        mpm = ("StartServers 1\nServerLimit 1\nThreadsPerChild 8\nMinSpareThreads 1\n"
               "MaxSpareThreads 8\nMaxRequestWorkers 8") if self.single_child else None
        return self.base_config(mpm) + f"""CtflOptContentfulSpace uelxcuo7v97l
CtflOptContentfulToken bench-token
CtflOptContentfulURL {self.emulator.base}/contentful/
CtflOptEntryCache shmcb 3600
<Location "/unknown/">
    CtflOptEngine On
    CtflOptMaxElements 100000
</Location>
<Location "/granted/">
    CtflOptEngine On
    CtflOptMaxElements 100000
</Location>
"""

    def stop(self):
        if self.proc in bench.STARTED:
            bench.STARTED.remove(self.proc)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def children(self):
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                    if int(stat.split(")")[-1].split()[1]) == self.proc.pid:
                        out.append(int(d.name))
                except (OSError, ValueError, IndexError):
                    continue
        return out


def cda_requests(emulator):
    return emulator.stats().get("requests", {}).get("cda", 0)


def returning_cookie(apache, path):
    return f"{CONSENT}; ctfl-opt-aid={bench.personalized_profile_id(apache, path)}"


def element_report(body: bytes, elements: int) -> str:
    """How many marked elements the module stamped and how many got the variant."""
    stamped = body.count(b"data-ctfl-entry-id=")
    variants = len(re.findall(rb'data-ctfl-entry-id="[A-Za-z0-9._-]+Var"', body))
    return f"{stamped}/{elements} stamped, {variants} variants"


def check(apache, name, page, cookie):
    """Each location does what its row claims (else the numbers mean nothing); returns what
    the module did to the marked elements for unknown and granted."""
    st, _, body = get(apache.port, f"/plain/{name}", timeout=60)
    if st != 200 or body != page:
        raise BenchError(f"/plain/{name}: HTTP {st}, {len(body)} bytes, expected the page")
    elements = len(MARKED.findall(page))
    st, h, body = get(apache.port, f"/unknown/{name}", timeout=60)
    if st != 200 or b"__OPTIMIZATION_CONSENT__" not in body or b"__OPTIMIZATION_DATA__" in body:
        raise BenchError(f"/unknown/{name}: HTTP {st}: expected a bootstrap without profile")
    done = {"unknown": element_report(body, elements)}
    st, h, body = get(apache.port, f"/granted/{name}", {"Cookie": cookie}, timeout=60)
    if st != 200 or b"__OPTIMIZATION_DATA__" not in body:
        raise BenchError(f"/granted/{name}: HTTP {st}: expected a personalized page")
    done["granted"] = element_report(body, elements)
    return done


# ---------------------------------------------------------------------------------------------
# memory


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])          # kB
    return out


def reset_peak(pid):
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def fetch_all(port, path, cookie, n, concurrency):
    errors = []

    def one():
        try:
            st, _, body = get(port, path, {"Cookie": cookie} if cookie else None, timeout=120)
            if st != 200:
                errors.append(st)
        except OSError as e:
            errors.append(str(e))
    for _ in range(n):
        threads = [threading.Thread(target=one) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
    if errors:
        raise BenchError(f"{path}: failed requests {errors[:5]}")


def measure_memory(work, emu, label, name, page):
    apache = Apache(work, f"mem-{label}", emu, single_child=True)
    apache.start({name: page})
    rows = []
    try:
        cookie = returning_cookie(apache, f"/granted/{name}")       # also warms the cache
        kids = apache.children()
        if len(kids) != 1:
            raise BenchError(f"expected one apache child, found {kids}")
        child = kids[0]
        get(apache.port, f"/unknown/{name}", timeout=120)
        for loc in LOCATIONS:
            for conc in (1, MEM_CONCURRENCY):
                before = proc_status(child)
                reset_peak(child)
                fetch_all(apache.port, f"/{loc}/{name}", cookie if loc == "granted" else None,
                          MEM_REQUESTS, conc)
                after = proc_status(child)
                rows.append({"location": loc, "concurrency": conc, "rss_before": before["VmRSS"],
                             "peak": after["VmHWM"], "rss_after": after["VmRSS"],
                             "anon_after": after["RssAnon"], "file_after": after["RssFile"]})
        bad = apache.bad_lines()
    finally:
        apache.stop()
    return rows, bad


# ---------------------------------------------------------------------------------------------
# report


def report(info, results, marks, cda_during, mem, load_before, load_after, errors, sizes):
    now = datetime.datetime.now(datetime.timezone.utc)
    out = [f"# mod_ctflopt benchmark, issue 3 ({now:%Y-%m-%d %H:%M} UTC)", "",
           f"- Pages: `{PAGE_150K.name}` ({sizes['150k']} bytes, 30 marked elements) for req/s; "
           f"`{PAGE_1M.name}` ({sizes['1m']} bytes, 200) and a generated 10 MB page "
           f"({sizes['10m']} bytes: the 1 MB page's body repeated, 2000 marked elements, "
           f"CtflOptMaxElements raised) for memory. \"closed-p\" = the same page with the `<p>` "
           f"of every `data-ctfl-field=\"body\"` closed before its `</div>`.",
           f"- mod_ctflopt {info['module']} ({info['commit']}), {info['apache']}, {info['wrk']}",
           f"- Machine: {info['cpu']}; load average before {load_before}, after {load_after}. "
           f"wrk, Apache and the emulator share these cores.",
           f"- req/s: one Apache, event MPM (2 processes x 32 threads), "
           f"`wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s` after a 2 s warm-up, {ROUNDS} rounds "
           f"(plain, unknown, granted in turn), median round per row; entry cache "
           f"shmcb, warm (filled by the checks before the runs, TTL 3600 s); consent granted = "
           f"a returning new visitor (consent cookie + ctfl-opt-aid), one Experience call per "
           f"request; CtflOptTimeout {TIMEOUT_MS} ms.", "",
           "| page | location | req/s (median) | ratio to plain static | each round: req/s (ratio) "
           "| marked elements (one check request) | CDA requests during the runs | wrk errors |",
           "| --- | --- | ---: | ---: | --- | --- | ---: | ---: |"]
    for variant in results:
        base = results[variant]["plain"]
        for loc in LOCATIONS:
            r = results[variant][loc]
            each = ", ".join(f"{v:.0f} ({fmt_ratio(v, b)})" for v, b in zip(r["all"], base["all"]))
            out.append(f"| {variant} | {TITLES[loc]} | {r['rps']:.0f} | "
                       f"{fmt_ratio(r['rps'], base['rps'])} | {each} | "
                       f"{marks[variant].get(loc, '-')} | {cda_during[variant][loc]} | "
                       f"{r['errors']} |")
    out += ["", "Ratios are module/plain static in the same run: of the medians, and per round "
            "(each round measures plain, unknown and granted within seconds; issue 3 target for "
            "consent unknown: >= 0.25). CDA requests are counted over all rounds of all "
            "locations (0 = the warm cache served every element).", "",
            f"Peak RSS of the single Apache child (event MPM, 1 process x 8 threads), `VmHWM` "
            f"reset through `/proc/PID/clear_refs` before each row, {MEM_REQUESTS} rounds of "
            f"1 or {MEM_CONCURRENCY} concurrent requests. RSS includes the file's pages that "
            f"Apache mmaps and the filter reads (RssFile).", "",
            "| page | location | concurrent | RSS before (MB) | peak RSS (MB) | peak - before (MB) "
            "| RSS after: anon / file (MB) |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for label, rows in mem.items():
        for r in rows:
            out.append(f"| {label} | {TITLES[r['location']]} | {r['concurrency']} | "
                       f"{r['rss_before'] / 1024:.1f} | {r['peak'] / 1024:.1f} | "
                       f"{(r['peak'] - r['rss_before']) / 1024:.1f} | "
                       f"{r['anon_after'] / 1024:.1f} / {r['file_after'] / 1024:.1f} |")
    out += ["", f"Error-log lines at warn or above: {len(errors)}."]
    out += [f"    {e}" for e in errors[:10]]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def main():
    if not shutil.which("wrk"):
        raise BenchError("wrk not found (Debian package wrk)")
    for p, what in ((PAGE_150K, "corpus page"), (PAGE_1M, "corpus page"),
                    (MODULE, "module (CTFLOPT_MODULE; run `make -f apxs.mk`)")):
        if not p.exists():
            raise BenchError(f"{what} not found: {p}")
    p150 = PAGE_150K.read_bytes()
    p1m = PAGE_1M.read_bytes()
    p10m = ten_mb_page(p1m)
    pages = {"as shipped": p150, "closed-p": closed_p(p150)}
    if pages["closed-p"].count(b"</p></div>") < 30:
        raise BenchError("closed-p: the body fields of the 150 KB page were not found")
    info = machine_info()
    load_before = loadavg()
    log(f"load average {load_before}; module {MODULE}")

    work = Path(tempfile.mkdtemp(prefix="ctflopt-bench3-"))
    os.chmod(work, 0o755)
    try:
        ids = sorted({m.decode() for p in (p150, p1m) for m in MARKED.findall(p)})
        write_fixtures(work / "fixtures", ids)
        bench.FIXTURES = work / "fixtures"
        emu = bench.Emulator(work)
        emu.start()

        # 1. req/s, 150 KB page, both variants, in one Apache.
        apache = Apache(work, "rps", emu)
        files = {"page.html": pages["as shipped"], "page-closed.html": pages["closed-p"]}
        apache.start(files)
        results, marks, cda_during = {}, {}, {}
        cookie = returning_cookie(apache, "/granted/page.html")
        for variant, name in (("as shipped", "page.html"), ("closed-p", "page-closed.html")):
            marks[variant] = check(apache, name, pages[variant], cookie)
            results[variant], cda_during[variant] = {}, {}
            urls = {loc: f"http://127.0.0.1:{apache.port}/{loc}/{name}" for loc in LOCATIONS}
            rounds = {loc: [] for loc in LOCATIONS}
            for loc in LOCATIONS:
                wrk(urls[loc], CONNECTIONS, THREADS, 2, cookie if loc == "granted" else None)
            n0 = cda_requests(emu)
            for k in range(ROUNDS):
                for loc in LOCATIONS:
                    log(f"wrk: {variant} {loc} round {k + 1}/{ROUNDS}")
                    rounds[loc].append(wrk(urls[loc], CONNECTIONS, THREADS, DURATION,
                                           cookie if loc == "granted" else None))
            for loc in LOCATIONS:
                runs = sorted(rounds[loc], key=lambda r: r["rps"])
                results[variant][loc] = dict(runs[len(runs) // 2],
                                             all=[r["rps"] for r in rounds[loc]],
                                             errors=sum(r["errors"] for r in runs))
                cda_during[variant][loc] = cda_requests(emu) - n0 if loc == "granted" else "-"
        errors = apache.bad_lines()
        apache.stop()

        # 2. Peak RSS: 1 MB and 10 MB pages, as shipped and closed-p.
        mem = {}
        for label, name, page in (("1 MB", "p1m.html", p1m), ("1 MB closed-p", "p1m.html",
                                                                 closed_p(p1m)),
                                  ("10 MB", "p10m.html", p10m),
                                  ("10 MB closed-p", "p10m.html", closed_p(p10m))):
            log(f"memory: {label}")
            mem[label], bad = measure_memory(work, emu, label.replace(" ", "-"), name, page)
            errors += bad
    finally:
        bench.finish(work)

    sizes = {"150k": len(p150), "1m": len(p1m), "10m": len(p10m)}
    bench.write_report("issue3", report(info, results, marks, cda_during, mem, load_before,
                                        loadavg(), errors, sizes))


if __name__ == "__main__":
    bench.run(main)
