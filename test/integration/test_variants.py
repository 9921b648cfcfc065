"""Issue 3 / spec §4.6 attributes the shared fixtures cannot show (they have no CDA entries for
these selections, §9.5): a sticky selection stamps data-ctfl-sticky="true"; an empty variant
keeps the start and end tags with no content and data-ctfl-empty-variant="true". Entries:
data/contentful/entries/itStickyBaseline.json, itEmptyBaseline.json (the new-visitor fixture
selects 6df0DI1BG9GTb9qIcjfkmh sticky and 44jIanEK8sjH9SoJ5AOa7m -> "")."""

import pytest

from httpd import api_directives
from it_personalize import (IDENTIFIED, NEW, UNKNOWN, assert_baseline_rendering,
                            assert_same_outside, cda_directives,
                            element_spans, no_variant_templates, parse_html, data_emulator_fixtures,
                            strip_bootstrap, use_entry_cache)

EMU = {}
PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>variants</title></head>
<body>
<div id="sticky" data-ctfl-baseline-id="itStickyBaseline">
  <p>Sticky baseline text.</p>
  <template data-ctfl-variant-id="itStickyVariant"><p>Sticky variant text.</p></template>
</div>
<div id="sticky-field" data-ctfl-baseline-id="itStickyBaseline"><p data-ctfl-field="text">Sticky baseline text.</p></div>
<div id="empty" class="keep" data-ctfl-baseline-id="itEmptyBaseline">
  <p>Empty-variant baseline text.</p>
</div>
</body></html>
"""


data_emulator, _reset_data_emulator = data_emulator_fixtures("variants", EMU)


def site(apache, emulator, origin):
    emu = EMU["emu"]
    use_entry_cache(apache)
    apache.write_doc("v/page.html", PAGE)
    return api_directives(emu) + cda_directives(emu) + """
<Location /v/>
    CtflOptEngine On
    CtflOptUserId header:X-User
</Location>
"""


def ctfl_attrs(node):
    return {k: v for k, v in node.attrs.items() if k.startswith("data-ctfl-")}


@pytest.mark.both_mpms
def test_sticky_and_empty_variants_for_a_new_visitor(apache):
    r = apache.get("/v/page.html", headers=NEW)
    body, _ = strip_bootstrap(r.body, PAGE)
    assert no_variant_templates(body)
    assert_same_outside(body, PAGE)
    root = parse_html(body.decode("utf-8"))
    sticky = {"data-ctfl-baseline-id": "itStickyBaseline", "data-ctfl-entry-id": "itStickyVariant",
              "data-ctfl-variant-index": "1", "data-ctfl-optimization-id": "6df0DI1BG9GTb9qIcjfkmh",
              "data-ctfl-sticky": "true"}
    for eid in ("sticky", "sticky-field"):
        node = root.find(id=eid)
        assert ctfl_attrs(node) == sticky, eid
        assert node.text() == "Sticky variant text.", eid
    empty = root.find(id="empty")
    assert ctfl_attrs(empty) == {
        "data-ctfl-baseline-id": "itEmptyBaseline", "data-ctfl-entry-id": "itEmptyBaseline",
        "data-ctfl-variant-index": "1", "data-ctfl-optimization-id": "44jIanEK8sjH9SoJ5AOa7m",
        "data-ctfl-empty-variant": "true"}
    assert empty.children == [] and empty.attrs["class"] == "keep"


def test_identified_visitor_has_no_sticky_selection(apache):
    """The identified fixture selects 44jIanEK8sjH9SoJ5AOa7m (empty) but not the sticky one."""
    r = apache.get("/v/page.html", headers=IDENTIFIED)
    body, _ = strip_bootstrap(r.body, PAGE)
    spans, originals = element_spans(body), element_spans(PAGE)
    for (s, e), (os_, oe) in list(zip(spans, originals))[:2]:     # the two sticky elements
        assert_baseline_rendering(body[s:e], PAGE[os_:oe], "sticky element")
    empty = parse_html(body.decode("utf-8")).find(id="empty")
    assert empty.attrs["data-ctfl-empty-variant"] == "true" and empty.children == []


def test_without_consent_nothing_is_resolved(apache):
    r = apache.get("/v/page.html", headers=UNKNOWN)
    body, _ = strip_bootstrap(r.body, PAGE)
    assert_baseline_rendering(body, PAGE)
