"""Issue 3, legacy charsets: text bound from a CDA entry holding non-Latin characters and "€"
(data/contentful/entries/itCharsetBaseline.json) is written in the page's charset or as
numeric character references, never as UTF-8 bytes in a windows-1252 page; the charset comes
from Content-Type, else <meta charset>, else <meta http-equiv>; ISO-8859-1 is windows-1252
(WHATWG); UTF-16 pages (BOM) pass through byte-identical. The bytes the origin wrote are
never converted."""

import pytest

from httpd import api_directives
from it_personalize import (NEW, UNKNOWN, assert_baseline_rendering, assert_same_outside,
                            cda_directives, parse_html, data_emulator_fixtures, strip_bootstrap,
                            use_entry_cache)

EMU = {}
VARIANT_TEXT = "Prix : 10 € — Zürich, 東京, Ωμέγα, “quotes” & <tags>"
VARIANT_BODY_TEXT = "Grüße aus 東京 für 5 €."
VARIANT_BOLD = "東京 für 5 €"
ASSET_URL = "https://images.ctfassets.net/uelxcuo7v97l/itCharsetAsset/0123abcd/tokyo.png"


def page(meta: str = "", title: str = "Café — 5 €") -> str:
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
{meta}<title>{title}</title>
</head>
<body>
<p>Déjà vu : 5 € — “origin” ‘text’ Œuvre ß</p>
<div id="cs" data-ctfl-baseline-id="itCharsetBaseline">
  <p id="cs-text" data-ctfl-field="text">Charset baseline : été à 5 €</p>
  <div id="cs-body" data-ctfl-field="body"><p>Baseline body, crème brûlée</p></div>
  <img id="cs-img" data-ctfl-field="image" data-ctfl-field-attr="src" src="/baseline.png" alt="">
</div>
<p>Fin — 10 €</p>
</body>
</html>
"""


META_CHARSET = '<meta charset="windows-1252">\n'
META_HTTP_EQUIV = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">\n'

# name -> (file, bytes, codec to read the served page with); the file extension picks the
# Content-Type charset (AddCharset below) or none.
LEGACY = {
    "cp1252-content-type": ("ct.cp1252.html", page().encode("cp1252"), "cp1252"),
    "cp1252-meta-charset": ("meta.html", page(META_CHARSET).encode("cp1252"), "cp1252"),
    "cp1252-meta-http-equiv": ("equiv.html", page(META_HTTP_EQUIV).encode("cp1252"), "cp1252"),
    # Only Latin-1 characters in this one (no €, “, Œ): it is a real ISO-8859-1 file.
    "iso-8859-1-content-type": ("ct.l1.html", page(title="Café")
                                .replace("5 € — “origin” ‘text’ Œuvre ß", "5 EUR - origin ß")
                                .replace("à 5 €", "à 5 EUR").replace("— 10 €", "- 10 EUR")
                                .encode("iso-8859-1"), "cp1252"),
    "utf-8-meta": ("utf8.html", page('<meta charset="utf-8">\n').encode("utf-8"), "utf-8"),
}
UTF16 = {
    "utf-16le-bom": ("bom16le.html", b"\xff\xfe" + page().encode("utf-16-le")),
    "utf-16be-bom": ("bom16be.html", b"\xfe\xff" + page().encode("utf-16-be")),
    "utf-16-content-type": ("ct.u16.html", b"\xff\xfe" + page().encode("utf-16-le")),
}


data_emulator, _reset_data_emulator = data_emulator_fixtures("charsets", EMU)


def site(apache, emulator, origin):
    emu = EMU["emu"]
    use_entry_cache(apache)
    for name, content, _ in LEGACY.values():
        apache.write_doc(f"cs/{name}", content)
    for name, content in UTF16.values():
        apache.write_doc(f"cs/{name}", content)
    return api_directives(emu) + cda_directives(emu) + f"""
AddCharset windows-1252 .cp1252
AddCharset ISO-8859-1 .l1
AddCharset UTF-16 .u16
<Location /cs/>
    CtflOptEngine On
</Location>
<Location /px/>
    ProxyPass http://127.0.0.1:{origin.port}/
    CtflOptEngine On
</Location>
"""


def check_bound_fields(served: bytes, original: bytes, codec: str):
    body, boot = strip_bootstrap(served, original)
    assert boot.data is not None
    assert boot.raw.isascii(), "the bootstrap must not depend on the page charset"
    assert_same_outside(body, original)
    if codec != "utf-8":
        for s in ("€", "東京", "Ω", "“", "ü"):
            assert s.encode("utf-8") not in body, f"UTF-8 bytes of {s!r} in a {codec} page"
    text = body.decode(codec)            # strict: undefined windows-1252 bytes fail here
    root = parse_html(text)
    assert root.find(id="cs").attrs["data-ctfl-entry-id"] == "itCharsetVariant"
    assert root.find(id="cs-text").text() == VARIANT_TEXT
    rich = root.find(id="cs-body")
    assert rich.text() == VARIANT_BODY_TEXT
    bold = [n for n in rich.iter() if n.tag in ("b", "strong")]
    assert len(bold) == 1 and bold[0].text() == VARIANT_BOLD
    assert root.find(id="cs-img").attrs["src"] == ASSET_URL
    return body


@pytest.mark.both_mpms
@pytest.mark.parametrize("case", LEGACY)
def test_bound_text_in_the_page_charset(apache, case):
    name, content, codec = LEGACY[case]
    r = apache.get(f"/cs/{name}", headers=NEW)
    assert r.status == 200
    check_bound_fields(r.body, content, codec)


@pytest.mark.parametrize("case", LEGACY)
def test_origin_bytes_untouched_without_consent(apache, case):
    name, content, _ = LEGACY[case]
    r = apache.get(f"/cs/{name}", headers=UNKNOWN)
    body, boot = strip_bootstrap(r.body, content)
    assert boot.data is None
    assert_baseline_rendering(body, content)


@pytest.mark.parametrize("chunking", [None, "1"], ids=["content-length", "1-byte"])
@pytest.mark.parametrize("case", ["cp1252-meta-charset", "cp1252-content-type"])
def test_proxied_legacy_page(apache, origin, case, chunking):
    name, content, codec = LEGACY[case]
    ctype = "text/html; charset=windows-1252" if case.endswith("content-type") else "text/html"
    origin.route(f"/{name}", body=content, content_type=ctype, chunking=chunking)
    r = apache.get(f"/px/{name}", headers=NEW)
    check_bound_fields(r.body, content, codec)


@pytest.mark.both_mpms
@pytest.mark.parametrize("case", UTF16)
def test_utf16_page_passes_through_byte_identical(apache, case):
    emu = EMU["emu"]
    name, content = UTF16[case]
    r = apache.get(f"/cs/{name}", headers=NEW)
    assert r.status == 200
    assert r.body == content
    assert emu.requests("cda") == []
