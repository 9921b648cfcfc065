"""The demo site matches its fixtures, and run-demo.sh starts and stops the demo."""

import filecmp
import html.parser
import http.client
import json
import os
import re
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import DEMO, REPO, free_port, get_json

SITE = os.path.join(DEMO, "site")
FIXTURES = os.path.join(DEMO, "fixtures")
SHARED_FIXTURES = os.path.join(os.path.dirname(REPO), "shared", "fixtures")
LAUNCHER = os.path.join(DEMO, "run-demo.sh")
MODULE = os.environ.get("DEMO_MODULE") or os.path.join(REPO, "build", "mod_ctflopt.so")
MERGE_TAG_BASELINE = "1MwiFl4z7gkwqGYdvCmr8c"


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children, self.text = [], ""


class TreeBuilder(html.parser.HTMLParser):
    """A small DOM; <template> content is parsed like any other element."""
    VOID = {"meta", "link", "br", "input", "img", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#root", {}, None)

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in self.VOID:
            self.cur = n

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text += data


def parse(name):
    b = TreeBuilder()
    with open(os.path.join(SITE, name), encoding="utf-8") as f:
        b.feed(f.read())
    return b.root


def walk(n):
    yield n
    for c in n.children:
        yield from walk(c)


def text_of(n):
    return (n.text + "".join(text_of(c) for c in n.children if c.tag != "template")).strip()


def first_p(n):
    return next(c for c in n.children if c.tag == "p")


def fixture_entries():
    """Every entry of the demo fixtures by id, and the top-level baseline files."""
    entries, files = {}, set()
    edir = os.path.join(FIXTURES, "contentful", "entries")
    for name in os.listdir(edir):
        with open(os.path.join(edir, name)) as f:
            coll = json.load(f)
        files.add(name[:-5])
        for e in coll["items"] + coll.get("includes", {}).get("Entry", []):
            entries.setdefault(e["sys"]["id"], e)
    return entries, files


def variants_of(entries, baseline_id):
    out = []
    for link in entries[baseline_id]["fields"].get("nt_experiences", []):
        exp = entries[link["sys"]["id"]]
        for comp in exp["fields"]["nt_config"]["components"]:
            if comp["baseline"]["id"] == baseline_id:
                out += [v["id"] for v in comp["variants"]]
    return out


def test_site_markers_match_fixtures():
    entries, files = fixture_entries()
    marked = [n for n in walk(parse("index.html")) if "data-ctfl-baseline-id" in n.attrs]
    top_level = {n.attrs["data-ctfl-baseline-id"] for n in marked
                 if not any(p.tag == "template" or "data-ctfl-baseline-id" in p.attrs
                            for p in ancestors(n))}
    assert top_level == {"4ib0hsHWoSOnCVdDkizE8d", "xFwgG3oNaOcjzWiGe4vXo",
                         "2Z2WLOx07InSewC3LUB3eX", "5XHssysWUDECHzKLzoIsg1",
                         "6zqoWXyiSrf0ja7I2WGtYj", "7pa5bOx8Z9NmNcr7mISvD",
                         "1JAU028vQ7v6nB2swl3NBo", MERGE_TAG_BASELINE}
    assert top_level <= files
    for n in marked:
        bid = n.attrs["data-ctfl-baseline-id"]
        if bid == MERGE_TAG_BASELINE:
            continue
        assert text_of(first_p(n)) == entries[bid]["fields"]["text"], bid
        templates = [c for c in n.children if c.tag == "template"]
        assert [t.attrs["data-ctfl-variant-id"] for t in templates] == variants_of(entries, bid)
        for t in templates:
            variant = entries[t.attrs["data-ctfl-variant-id"]]
            assert text_of(first_p(t)) == variant["fields"]["text"]
            # A variant that nests entries renders them as marked baselines again.
            nested = [c.attrs["data-ctfl-baseline-id"] for c in t.children
                      if "data-ctfl-baseline-id" in c.attrs]
            assert nested == [x["sys"]["id"] for x in variant["fields"].get("nested", [])]
        nested = [c.attrs["data-ctfl-baseline-id"] for c in n.children
                  if "data-ctfl-baseline-id" in c.attrs]
        assert nested == [x["sys"]["id"] for x in entries[bid]["fields"].get("nested", [])]


def ancestors(n):
    n = n.parent
    while n is not None:
        yield n
        n = n.parent


def test_merge_tag_rendered_with_fallback():
    entries, _ = fixture_entries()
    node = next(n for n in walk(parse("index.html"))
                if n.attrs.get("data-ctfl-baseline-id") == MERGE_TAG_BASELINE)
    field = next(c for c in node.children if c.attrs.get("data-ctfl-field") == "text")
    para = entries[MERGE_TAG_BASELINE]["fields"]["text"]["content"][0]["content"]
    tag = entries[para[1]["data"]["target"]["sys"]["id"]]["fields"]["nt_fallback"]
    assert text_of(field) == para[0]["value"] + tag + para[2]["value"]


def test_consent_buttons_and_debug_panel():
    nodes = {n.attrs.get("id"): n for n in walk(parse("index.html"))}
    for bid, value in (("consent-accept", "true"), ("consent-reject", "false")):
        assert nodes[bid].attrs["onclick"] == (
            "window.contentfulOptimization && contentfulOptimization.consent(%s)" % value)
    for pid in ("debug-consent", "debug-profile-id", "debug-cookie"):
        assert pid in nodes
    about = parse("about.html")
    assert not any(k.startswith("data-ctfl") for n in walk(about) for k in n.attrs)


def test_demo_fixtures_are_unmodified_copies():
    if not os.path.isdir(SHARED_FIXTURES):
        pytest.skip("../shared/fixtures is not available")
    for root, _, names in os.walk(FIXTURES):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), FIXTURES)
            if rel == "README.md":
                continue
            assert filecmp.cmp(os.path.join(FIXTURES, rel), os.path.join(SHARED_FIXTURES, rel),
                               shallow=False), rel


# ---- the launcher ---------------------------------------------------------------------------

class Demo:
    def __init__(self, run_dir, port, no_module):
        self.run, self.port = str(run_dir), port
        self.env = dict(os.environ, DEMO_PORT=str(port), DEMO_RUN_DIR=self.run)
        if no_module:
            self.env["DEMO_NO_MODULE"] = "1"

    def start(self):
        p = subprocess.run([LAUNCHER, "--detach"], env=self.env, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "http://127.0.0.1:%d/" % self.port in p.stdout
        self.pids = [int(open(os.path.join(self.run, f)).read())
                     for f in ("httpd.pid", "emulator.pid")]
        with open(os.path.join(self.run, "emulator.port")) as f:
            self.emulator = "http://127.0.0.1:%d/" % int(f.read())
        return p.stdout

    def stop(self):
        subprocess.run([LAUNCHER, "--stop"], env=self.env, capture_output=True, timeout=60)
        for pid in getattr(self, "pids", []):      # in case --stop itself is broken
            if alive(pid):
                os.kill(pid, 9)

    def get(self, path, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running: it only waits for its parent (pytest for nothing here).
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(") ")[1][0] != "Z"


def status_of(url, headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def site_bytes(name):
    with open(os.path.join(SITE, name), "rb") as f:
        return f.read()


def test_launcher_without_module(tmp_path):
    demo = Demo(tmp_path / "run", free_port(), no_module=True)
    try:
        demo.start()
        r, body = demo.get("/")
        assert r.status == 200 and body == site_bytes("index.html")
        r, body = demo.get("/ctflopt/sdk-standin.js")
        with open(os.path.join(DEMO, "sdk-standin.js"), "rb") as f:
            assert r.status == 200 and body == f.read()
        assert demo.get("/about.html")[1] == site_bytes("about.html")
        # The emulator serves the demo's own fixture copy, not ../shared/fixtures.
        cda = demo.emulator + "contentful/spaces/s/environments/master/entries?sys.id="
        auth = {"Authorization": "Bearer demo"}
        assert status_of(cda + "4ib0hsHWoSOnCVdDkizE8d", auth) == 200
        assert status_of(cda + "1hTtSf1ChvTtBgY6BwBZk1", auth) == 404
        with open(os.path.join(demo.run, "access.log")) as f:
            assert "status=- profile=- experiences=- api_ms=-" in f.read()
        # A second start refuses while the first demo runs.
        p = subprocess.run([LAUNCHER, "--detach"], env=demo.env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode != 0 and "already running" in p.stderr
    finally:
        demo.stop()
    assert not any(alive(pid) for pid in demo.pids)
    assert not os.path.exists(os.path.join(demo.run, "httpd.pid"))


def test_launcher_refuses_missing_module(tmp_path):
    if os.path.exists(MODULE):
        pytest.skip("the module is built")
    env = dict(os.environ, DEMO_PORT=str(free_port()), DEMO_RUN_DIR=str(tmp_path))
    env.pop("DEMO_NO_MODULE", None)
    p = subprocess.run([LAUNCHER, "--detach"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0 and "make -f apxs.mk" in p.stderr


@pytest.mark.skipif(not os.path.exists(MODULE), reason="build/mod_ctflopt.so is not built")
def test_launcher_with_module(tmp_path):
    demo = Demo(tmp_path / "run", free_port(), no_module=False)
    try:
        demo.start()
        original = site_bytes("index.html")
        head_end = original.index(b"\n</head>") + 1     # the real one, not the comment's
        # Consent unknown: no Experience call, no cookie, no CDA; the head gets the bootstrap,
        # every marked element keeps its baseline content (variant templates removed) and
        # gets its tracking attributes.
        r, body = demo.get("/")
        assert r.status == 200 and r.getheader("Set-Cookie") is None
        assert body.startswith(original[:head_end])
        assert body[head_end:].startswith(b'<script src="/ctflopt/sdk-standin.js"')
        assert b"<template data-ctfl-variant-id" not in body
        for baseline in re.findall(rb'data-ctfl-baseline-id="([^"]+)"', original):
            assert (b'data-ctfl-baseline-id="%s" data-ctfl-entry-id="%s" data-ctfl-variant-index="0"'
                    % (baseline, baseline)) in body
        assert b"This is a baseline content entry for visitors from any continent." in body
        assert get_json(demo.emulator + "__emulator/requests?api=experience") == []
        assert get_json(demo.emulator + "__emulator/requests?api=cda") == []
        # Consent granted: a profile is created, kept in the cookie, and reused.
        r, body = demo.get("/", {"Cookie": "app-personalization-consent=granted"})
        m = re.match(r"ctfl-opt-aid=([0-9a-f-]{36});", r.getheader("Set-Cookie") or "")
        assert r.status == 200 and m, r.getheaders()
        pid = m.group(1)
        assert pid.encode() in body
        r, body = demo.get("/", {"Cookie": "app-personalization-consent=granted; "
                                           "ctfl-opt-aid=" + pid})
        assert r.status == 200
        recs = get_json(demo.emulator + "__emulator/requests?api=experience")
        assert [x["status"] for x in recs] == [200, 200], [x["issues"] for x in recs]
        assert recs[1]["path"].endswith("/profiles/" + pid)
        with open(os.path.join(demo.run, "access.log")) as f:
            log = f.read()
        assert "status=ok profile=%s" % pid in log
        with open(os.path.join(demo.run, "error.log")) as f:
            errors = [line for line in f if ":error]" in line or ":crit]" in line]
        assert errors == []
    finally:
        demo.stop()
    assert not any(alive(pid) for pid in demo.pids)


@pytest.mark.skipif(not os.path.exists(MODULE), reason="build/mod_ctflopt.so is not built")
def test_reload_after_consent_is_not_a_304(tmp_path):
    """The browser's consent round trip: the first visit (consent unknown) is cached; after the
    Accept click the reload revalidates that copy with the cookie granted. The answer must be the
    personalized page, never a 304 that keeps the stale one."""
    demo = Demo(tmp_path / "run", free_port(), no_module=False)
    try:
        demo.start()
        r, _ = demo.get("/")
        validators = {}
        if r.getheader("Last-Modified"):
            validators["If-Modified-Since"] = r.getheader("Last-Modified")
        if r.getheader("ETag"):
            validators["If-None-Match"] = r.getheader("ETag")
        r, body = demo.get("/", dict(validators, Cookie="app-personalization-consent=granted"))
        assert r.status == 200 and b"__OPTIMIZATION_DATA__=d" in body
    finally:
        demo.stop()
