"""Issue 3, personalized pages: the demo page (test/demo/site/index.html, variants as
<template> children) and the same page with field binding only (data/demo-fields.html,
variants from the CDA) show, for a new and an identified visitor, exactly the entries, texts
and tracking attributes of spec §9.6/§4.6; without consent the origin's bytes stay apart from
templates removed and attributes stamped; the same through mod_proxy (also in 1-byte chunks);
custom flags (§4.4); an element marked only with data-ctfl-entry-id."""

import json
import re

import pytest

from httpd import REPO, api_directives
from it_personalize import (DATA, DEMO_ORDER, DENIED, IDENTIFIED, NEW, TABLE_9_6, UNKNOWN,
                            USER_HEADER, MERGE_TAG_BASELINE, assert_baseline_rendering,
                            assert_demo_resolution, assert_same_outside, cda_directives, element_spans, no_variant_templates,
                            parse_html, strip_bootstrap, use_entry_cache)

PAGES = {"templates": (REPO / "test" / "demo" / "site" / "index.html").read_bytes(),
         "fields": (DATA / "demo-fields.html").read_bytes()}
VISITORS = {"new": NEW, "identified": IDENTIFIED}

FLAGS_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>flags</title></head>
<body>
<div id="flags" data-ctfl-baseline-id="1MwiFl4z7gkwqGYdvCmr8c">
  <p>Custom flags:</p>
  <span id="flag-plain" data-ctfl-flag="plain-text">plain default</span>
  <span id="flag-json" data-ctfl-flag="json">json default</span>
  <span id="flag-number" data-ctfl-flag="number">0</span>
  <em id="if-boolean" data-ctfl-flag-if="boolean">shown when boolean is on</em>
  <em id="if-missing" data-ctfl-flag-if="no-such-flag">shown when no-such-flag is on</em>
</div>
</body></html>
"""

FLAGS_OUTSIDE_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>flags outside entries</title></head>
<body>
<p id="flag-plain" data-ctfl-flag="plain-text">plain default</p>
<p id="if-missing" data-ctfl-flag-if="no-such-flag">shown when no-such-flag is on</p>
</body></html>
"""

ENTRY_ID_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>entry id only</title></head>
<body>
<section id="only-entry-id" data-ctfl-entry-id="4ib0hsHWoSOnCVdDkizE8d">
  <p>This is a baseline content entry for visitors from any continent.</p>
  <template data-ctfl-variant-id="4k6ZyFQnR2POY5IJLLlJRb"><p>This is a variant content entry for visitors from Europe.</p></template>
</section>
</body></html>
"""

MISSING_FIELD_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>missing field</title></head>
<body>
<div id="entry" data-ctfl-baseline-id="4ib0hsHWoSOnCVdDkizE8d">
  <p id="text" data-ctfl-field="text">This is a baseline content entry for visitors from any continent.</p>
  <p id="missing" class="kept" data-ctfl-field="noSuchField">origin text of a field the entry lacks</p>
</div>
</body></html>
"""


def site(apache, emulator, origin):
    use_entry_cache(apache)
    apache.write_doc("site/templates.html", PAGES["templates"])
    apache.write_doc("site/fields.html", PAGES["fields"])
    apache.write_doc("site/flags.html", FLAGS_PAGE)
    apache.write_doc("site/flags-outside.html", FLAGS_OUTSIDE_PAGE)
    apache.write_doc("site/entry-id.html", ENTRY_ID_PAGE)
    apache.write_doc("site/missing-field.html", MISSING_FIELD_PAGE)
    return api_directives(emulator) + cda_directives(emulator) + f"""
<Location /site/>
    CtflOptEngine On
    CtflOptUserId header:{USER_HEADER}
</Location>
<Location /px/>
    ProxyPass http://127.0.0.1:{origin.port}/app/
    CtflOptEngine On
    CtflOptUserId header:{USER_HEADER}
</Location>
"""


def check_personalized(served: bytes, original: bytes, identified: bool):
    """§9.6 texts and ids; bytes outside the marked elements untouched; elements that keep
    their baseline keep the origin's bytes (templates removed, attributes stamped)."""
    body, boot = strip_bootstrap(served, original)
    assert boot.data is not None and boot.data["profile"]["id"], "not an evaluated page"
    assert no_variant_templates(body)
    assert_demo_resolution(body.decode("utf-8"), identified)
    assert_same_outside(body, original)
    tops = [bid for bid, depth in DEMO_ORDER if depth == 0]
    for bid, s, o in zip(tops, element_spans(body), element_spans(original)):
        if TABLE_9_6[bid][1 if identified else 0] is None and bid != MERGE_TAG_BASELINE:
            assert_baseline_rendering(body[s[0]:s[1]], original[o[0]:o[1]], bid)
    return body


@pytest.mark.both_mpms
@pytest.mark.parametrize("visitor", VISITORS)
@pytest.mark.parametrize("page", PAGES)
def test_demo_page_shows_spec_9_6(apache, emulator, page, visitor):
    r = apache.get(f"/site/{page}.html", headers=VISITORS[visitor])
    assert r.status == 200
    check_personalized(r.body, PAGES[page], visitor == "identified")
    assert emulator.requests("experience"), "no Experience call"
    log = apache.access_entry(r.test_id)
    assert log["ctflopt_status"] == "ok"


@pytest.mark.both_mpms
@pytest.mark.parametrize("consent", ["unknown", "denied"])
@pytest.mark.parametrize("page", PAGES)
def test_demo_page_without_consent_keeps_the_origin_content(apache, emulator, page, consent):
    headers = UNKNOWN if consent == "unknown" else DENIED
    r = apache.get(f"/site/{page}.html", headers=dict(headers, **{USER_HEADER: "someone"}))
    assert r.status == 200
    body, boot = strip_bootstrap(r.body, PAGES[page])
    assert boot.data is None
    assert no_variant_templates(body)
    assert_baseline_rendering(body, PAGES[page])
    assert emulator.requests("experience") == [] and emulator.requests("cda") == []


# Through mod_proxy: the origin sends the page with a Content-Length or in 1-byte chunks.
@pytest.mark.parametrize("chunking", [None, "1"], ids=["content-length", "1-byte"])
@pytest.mark.parametrize("visitor", VISITORS)
@pytest.mark.parametrize("page", PAGES)
def test_proxied_demo_page(apache, origin, emulator, page, visitor, chunking):
    origin.route(f"/app/{page}.html", body=PAGES[page], chunking=chunking)
    r = apache.get(f"/px/{page}.html", headers=VISITORS[visitor])
    assert r.status == 200
    check_personalized(r.body, PAGES[page], visitor == "identified")
    assert len(origin.requests_to(f"/app/{page}.html")) == 1


@pytest.mark.parametrize("page", PAGES)
def test_proxied_demo_page_without_consent_in_1_byte_chunks(apache, origin, emulator, page):
    origin.route(f"/app/{page}.html", body=PAGES[page], chunking="1")
    r = apache.get(f"/px/{page}.html")
    body, boot = strip_bootstrap(r.body, PAGES[page])
    assert boot.data is None
    assert_baseline_rendering(body, PAGES[page])


def test_static_and_proxied_pages_are_the_same(apache, origin, emulator):
    """The same visitor gets the same bytes from a file and from a chunked origin."""
    origin.route("/app/templates.html", body=PAGES["templates"], chunking="random", seed=3,
                 max_chunk=64)
    a = strip_bootstrap(apache.get("/site/templates.html", headers=IDENTIFIED).body,
                        PAGES["templates"])[0]
    b = strip_bootstrap(apache.get("/px/templates.html", headers=IDENTIFIED).body,
                        PAGES["templates"])[0]
    assert a == b


# --------------------------------------------------------------------------------------------
# custom flags (spec §4.4; identified visitor: plain-text, number, json, boolean)


def flags_view(body: bytes) -> dict:
    root = parse_html(body.decode("utf-8"))
    out = {}
    for name in ("flag-plain", "flag-json", "flag-number", "if-boolean", "if-missing"):
        n = root.find(id=name)
        out[name] = None if n is None else n.text()
    return out


@pytest.mark.both_mpms
def test_custom_flags_for_the_identified_visitor(apache, emulator):
    r = apache.get("/site/flags.html", headers=IDENTIFIED)
    body, _ = strip_bootstrap(r.body, FLAGS_PAGE)
    view = flags_view(body)
    assert view["flag-plain"] == "Plain Text"
    assert json.loads(view["flag-json"]) == {"flag": True}
    assert view["flag-json"].replace(" ", "") == '{"flag":true}'
    assert view["flag-number"] == "12345"
    assert view["if-boolean"] == "shown when boolean is on"       # truthy: kept as it was
    assert view["if-missing"] is None                              # missing: removed
    assert b"no-such-flag" not in body
    assert re.search(rb'<em id="if-boolean" data-ctfl-flag-if="boolean">shown when boolean is '
                     rb'on</em>', body)
    assert_same_outside(body, FLAGS_PAGE)


def test_custom_flags_for_a_new_visitor(apache, emulator):
    """No changes for a new visitor: every flag-if element goes, as its flag is missing."""
    r = apache.get("/site/flags.html", headers=NEW)
    body, boot = strip_bootstrap(r.body, FLAGS_PAGE)
    assert boot.data is not None
    view = flags_view(body)
    assert view["if-boolean"] is None and view["if-missing"] is None


@pytest.mark.parametrize("headers", [UNKNOWN, DENIED], ids=["unknown", "denied"])
def test_no_flags_without_consent(apache, emulator, headers):
    r = apache.get("/site/flags.html", headers=dict(headers, **{USER_HEADER: "someone"}))
    body, boot = strip_bootstrap(r.body, FLAGS_PAGE)
    assert boot.data is None
    assert_baseline_rendering(body, FLAGS_PAGE)
    assert flags_view(body) == {"flag-plain": "plain default", "flag-json": "json default",
                                "flag-number": "0", "if-boolean": "shown when boolean is on",
                                "if-missing": "shown when no-such-flag is on"}


def test_custom_flags_outside_marked_elements(apache, emulator):
    """Issue 3 "Custom Flags" puts no condition on where the element is."""
    r = apache.get("/site/flags-outside.html", headers=IDENTIFIED)
    body, _ = strip_bootstrap(r.body, FLAGS_OUTSIDE_PAGE)
    root = parse_html(body.decode("utf-8"))
    assert root.find(id="flag-plain").text() == "Plain Text"
    assert root.find(id="if-missing") is None


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("visitor", VISITORS)
def test_element_marked_with_entry_id_only(apache, emulator, visitor):
    """Issue 3: an element that only carries data-ctfl-entry-id is a baseline with that id."""
    r = apache.get("/site/entry-id.html", headers=VISITORS[visitor])
    body, _ = strip_bootstrap(r.body, ENTRY_ID_PAGE)
    node = parse_html(body.decode("utf-8")).find(id="only-entry-id")
    attrs = {k: v for k, v in node.attrs.items() if k.startswith("data-ctfl-")}
    assert attrs == {"data-ctfl-entry-id": "4k6ZyFQnR2POY5IJLLlJRb",
                     "data-ctfl-baseline-id": "4ib0hsHWoSOnCVdDkizE8d",
                     "data-ctfl-variant-index": "1",
                     "data-ctfl-optimization-id": "2qVK4T5lnScbswoyBuGipd"}
    assert node.text() == "This is a variant content entry for visitors from Europe."
    assert no_variant_templates(body)


def test_field_the_variant_lacks_leaves_the_element_empty(apache, emulator):
    """Issue 3: "A field the entry does not have leaves the element empty"."""
    r = apache.get("/site/missing-field.html", headers=NEW)
    body, _ = strip_bootstrap(r.body, MISSING_FIELD_PAGE)
    root = parse_html(body.decode("utf-8"))
    assert root.find(id="entry").attrs["data-ctfl-entry-id"] == "4k6ZyFQnR2POY5IJLLlJRb"
    assert root.find(id="text").text() == "This is a variant content entry for visitors from Europe."
    missing = root.find(id="missing")
    assert missing.children == [] and missing.attrs["class"] == "kept"
