"""Hostile Experience API responses: a stand-in Experience API (the harness origin) answers
with profile traits, change keys and experience ids crafted to break out of the bootstrap
<script>, the forwarded headers or the access log. Whatever the profile contains, the page
keeps exactly two scripts, the data round-trips through a JS engine unchanged, and no header
can be injected (issue 2: "All JSON is safe inside <script> ... whatever the profile traits
contain"; "a hostile profile trait in the bootstrap")."""

import copy
import json

import pytest

from httpd import (SDK_URL, api_directives, experience_fixture, html_page, injected_bootstrap,
                   run_bootstrap_js)

PAGE = html_page("hostile")
TRAITS = {
    "script": "</script><script>alert(1)</script>",
    "upper": "</SCRIPT ><img src=x onerror=alert(2)>",
    "comment": "<!-- <script>",
    "separators": "a\u2028b\u2029c",
    "html": "<b>&amp;</b> & > < ]]>",
    "quotes": "\"'`\\/",
    "controls": "\u0001\u001f\u007f\r\n\t",
    "astral": "\U0001F600 \u00e9",
    "</script><!--": "in a key too",
    "nested": {"list": ["</script>", {"deep": "<!--"}], "n": 1.5, "t": True, "z": None},
}
CITY = "</script><script>alert(3)</script>"
EVIL_HEADER = "v\r\nX-Evil: 1"


def hostile_response(profile_id="hostile-profile-1", traits=TRAITS):
    env = copy.deepcopy(experience_fixture("identified-visitor"))
    profile = env["data"]["profile"]
    profile["id"] = profile["stableId"] = profile_id
    profile["traits"] = traits
    profile["location"]["city"] = CITY
    env["data"]["changes"] = [
        {"key": "k\r\nX-Evil-Key: 1", "type": "Variable", "value": EVIL_HEADER,
         "meta": {"experienceId": "e\r\nX-Evil-Meta: 1", "variantIndex": 1}},
        {"key": "</script>", "type": "Variable", "value": {"<!--": "</script>"},
         "meta": {"experienceId": "x", "variantIndex": 1}},
    ]
    env["data"]["experiences"] = [
        {"experienceId": "exp\r\nX-Evil-Exp: 1", "variantIndex": 1, "variants": {}},
        {"experienceId": "plain", "variantIndex": 2, "variants": {"a": "b"}},
    ]
    return json.dumps(env).encode()


def site(apache, emulator, origin):
    apache.write_doc("h/page.html", PAGE)
    port = apache.port_for("hostile")
    o = f"http://127.0.0.1:{origin.port}"
    return api_directives(emulator) + f"""
<VirtualHost 127.0.0.1:{port}>
    ServerName hostile.test
    CtflOptExperienceURL {o}/exp/
    <Location /h/>
        CtflOptEngine On
        CtflOptConsentDefault granted
    </Location>
    <Location /fwd/>
        ProxyPass {o}/app/
        CtflOptEngine On
        CtflOptConsentDefault granted
        CtflOptForwardHeaders On
    </Location>
</VirtualHost>
"""


@pytest.fixture
def hostile_api(origin):
    origin.route("/exp/", body=hostile_response(), content_type="application/json",
                 methods=("POST",))
    return origin


def get(apache, path):
    from httpd import http_request
    return http_request(apache.ports["hostile"], path)


@pytest.mark.both_mpms
def test_hostile_traits_cannot_break_out(apache, hostile_api):
    r = get(apache, "/h/page.html")
    boot = injected_bootstrap(r, PAGE)
    raw = boot.raw
    # Exactly the two scripts of the bootstrap: no closing tag or comment opener from the data.
    assert raw.lower().count(b"</script") == 2
    assert raw.lower().count(b"<script") == 2
    assert b"<!--" not in raw
    assert "\u2028".encode() not in raw and "\u2029".encode() not in raw
    assert max(raw) < 0x80, "the bootstrap is pure ASCII"
    assert [a.get("src") for a, _ in boot.scripts] == [SDK_URL, None]
    # ...and the data survives the escaping unchanged.
    assert boot.data["profile"]["traits"] == TRAITS
    assert boot.data["profile"]["location"]["city"] == CITY
    assert r.cookies["ctfl-opt-aid"].value == "hostile-profile-1"
    # The requests reached the stand-in API (not the emulator).
    assert len(hostile_api.requests_to(
        "/exp/v2/organizations/itest-client/environments/main/profiles")) == 1


def test_hostile_traits_round_trip_through_a_js_engine(apache, hostile_api):
    boot = injected_bootstrap(get(apache, "/h/page.html"), PAGE)
    out = run_bootstrap_js(boot)
    assert out["data"]["profile"]["traits"] == TRAITS
    assert len(out["record"]["constructed"]) == 1
    cfg = out["record"]["constructed"][0]
    assert cfg["defaults"]["profile"]["traits"] == TRAITS
    assert cfg["defaults"]["profile"]["location"]["city"] == CITY


def test_hostile_values_cannot_inject_forwarded_headers(apache, hostile_api):
    hostile_api.route("/app/page.html", body=PAGE)
    r = get(apache, "/fwd/page.html")
    assert r.status == 200
    recs = hostile_api.requests_to("/app/page.html")
    assert len(recs) == 1
    names = [k.lower() for k, _ in recs[0]["headers"]]
    assert not [n for n in names if n.startswith("x-evil")], recs[0]["headers"]
    for k, v in recs[0]["headers"]:
        assert "\r" not in v and "\n" not in v
    flags = dict(recs[0]["headers"]).get("X-Ctfl-Opt-Flags")
    if flags is not None:                  # when forwarded, it is the JSON of spec §4.4
        assert json.loads(flags)["k\r\nX-Evil-Key: 1"] == EVIL_HEADER


def test_hostile_values_keep_the_access_log_line_whole(apache, hostile_api):
    r = get(apache, "/h/page.html")
    assert r.status == 200
    entry = apache.access_entry(r.test_id)
    assert entry["ctflopt_status"] == "ok"
    assert entry["profile_id"] == "hostile-profile-1"
    text = apache.access_log_path.read_text("utf-8", "replace")
    line = [x for x in text.splitlines() if x.startswith(r.test_id)][0]
    assert len(line.split("\t")) == len(entry), line


@pytest.mark.parametrize("bad_id", ["a;b", "../../x", "id with space", "x" * 129, ""])
def test_profile_id_from_the_api_must_be_a_token(apache, origin, expect_log, bad_id):
    """A profile id that could break the Set-Cookie header or a later URL is refused."""
    expect_log("CTFLOPT0102", required=False)
    origin.route("/exp/", body=hostile_response(bad_id), content_type="application/json",
                 methods=("POST",))
    r = get(apache, "/h/page.html")
    boot = injected_bootstrap(r, PAGE)
    assert boot.data is None
    assert r.header_all("Set-Cookie") == []
    assert apache.access_entry(r.test_id)["ctflopt_status"] == "error"


def test_nul_character_in_a_trait_is_accepted(apache, origin):
    """JSON allows \\u0000 in strings and the SDK's schema accepts any string trait (spec §1.6:
    the C decoder may be more lenient than the SDK, not stricter)."""
    traits = {"nul": "a\u0000b"}
    origin.route("/exp/", body=hostile_response(traits=traits), content_type="application/json",
                 methods=("POST",))
    r = get(apache, "/h/page.html")
    boot = injected_bootstrap(r, PAGE)
    assert apache.access_entry(r.test_id)["ctflopt_status"] == "ok"
    assert boot.data["profile"]["traits"] == traits
