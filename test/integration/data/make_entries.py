#!/usr/bin/python3
"""Writes the synthetic CDA entry files of contentful/entries/ (run it after editing; the JSON
files are what the tests read). Shaped like ../shared/fixtures/contentful/entries: a CDA
collection, links unresolved in items, linked entries and assets in includes, locale en-US.
The experiences reuse experience ids the Experience fixtures select (spec §9.5), so the
shared new-visitor/identified-visitor responses pick them."""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "contentful" / "entries"

def sys_(eid, ct, kind="Entry"):
    s = {"space": {"sys": {"type": "Link", "linkType": "Space", "id": "uelxcuo7v97l"}},
         "id": eid, "type": kind, "createdAt": "2026-12-01T10:00:00.000Z",
         "updatedAt": "2026-12-01T10:00:00.000Z",
         "environment": {"sys": {"id": "master", "type": "Link", "linkType": "Environment"}},
         "publishedVersion": 1, "revision": 1, "locale": "en-US"}
    if ct:
        s["contentType"] = {"sys": {"type": "Link", "linkType": "ContentType", "id": ct}}
    return s

def entry(eid, ct, fields):
    return {"metadata": {"tags": [], "concepts": []}, "sys": sys_(eid, ct), "fields": fields}

def link(eid, kind="Entry"):
    return {"sys": {"type": "Link", "linkType": kind, "id": eid}}

def experience(eid, exp_id, baseline, variants, name):
    return entry(eid, "nt_experience", {
        "nt_name": name, "nt_type": "nt_personalization",
        "nt_config": {"traffic": 1, "components": [
            {"baseline": {"id": baseline}, "variants": variants}], "distribution": [0, 1]},
        "nt_variants": [link(v["id"]) for v in variants if v["id"]],
        "nt_experience_id": exp_id, "nt_metadata": {"type": "origin"}})

def write(baseline, includes, assets=()):
    coll = {"sys": {"type": "Array"}, "total": 1, "skip": 0, "limit": 100, "items": [baseline],
            "includes": {"Entry": includes}}
    if assets:
        coll["includes"]["Asset"] = list(assets)
    (OUT / f"{baseline['sys']['id']}.json").write_text(json.dumps(coll, indent=2, ensure_ascii=False) + "\n")

def text(v, marks=()):
    return {"nodeType": "text", "value": v, "marks": [{"type": m} for m in marks], "data": {}}

# 1. Charsets: the variant's fields hold non-Latin characters and the euro sign.
asset = {"metadata": {"tags": []}, "sys": sys_("itCharsetAsset", None, "Asset"),
         "fields": {"title": "Tokyo", "file": {
             "url": "//images.ctfassets.net/uelxcuo7v97l/itCharsetAsset/0123abcd/tokyo.png",
             "details": {"size": 1234, "image": {"width": 10, "height": 10}},
             "fileName": "tokyo.png", "contentType": "image/png"}}}
variant = entry("itCharsetVariant", "content", {
    "internalTitle": "[Variant] charsets",
    "text": "Prix : 10 € — Zürich, 東京, Ωμέγα, “quotes” & <tags>",
    "body": {"nodeType": "document", "data": {}, "content": [
        {"nodeType": "paragraph", "data": {}, "content": [
            text("Grüße aus "), text("東京 für 5 €", ["bold"]), text(".")]}]},
    "image": link("itCharsetAsset", "Asset")})
base = entry("itCharsetBaseline", "content", {
    "internalTitle": "[Baseline] charsets", "text": "Charset baseline",
    "nt_experiences": [link("itCharsetExperience")]})
write(base, [experience("itCharsetExperience", "2qVK4T5lnScbswoyBuGipd", "itCharsetBaseline",
                        [{"id": "itCharsetVariant", "hidden": False}], "[it] charsets (Europe)"),
             variant], [asset])

# 2. A sticky selection (new visitor: 6df0DI1BG9GTb9qIcjfkmh, variantIndex 1, sticky true).
base = entry("itStickyBaseline", "content", {
    "internalTitle": "[Baseline] sticky", "text": "Sticky baseline text.",
    "nt_experiences": [link("itStickyExperience")]})
write(base, [experience("itStickyExperience", "6df0DI1BG9GTb9qIcjfkmh", "itStickyBaseline",
                        [{"id": "itStickyVariant", "hidden": False}], "[it] sticky"),
             entry("itStickyVariant", "content", {"internalTitle": "[Variant] sticky",
                                                  "text": "Sticky variant text."})])

# 3. An empty variant (new visitor: 44jIanEK8sjH9SoJ5AOa7m, variantIndex 1 -> id "").
base = entry("itEmptyBaseline", "content", {
    "internalTitle": "[Baseline] empty variant", "text": "Empty-variant baseline text.",
    "nt_experiences": [link("itEmptyExperience")]})
write(base, [experience("itEmptyExperience", "44jIanEK8sjH9SoJ5AOa7m", "itEmptyBaseline",
                        [{"id": "", "hidden": True}], "[it] empty variant")])
