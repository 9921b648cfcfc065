"""Validation of Experience and Insights request bodies, mirroring the SDK's zod schemas.

Spec: ../shared/docs/contentful-protocol.md §1.5, §2, §3 (the schemas of
@contentful/optimization-api-schemas).
zod semantics reproduced here: `z.object` strips unknown keys (so extra keys are accepted),
`z.optional(X)` admits an absent key but not `null`, `z.number()` rejects booleans, `z.string()`
rejects everything that is not a string, `z.iso.datetime()` requires the `Z` suffix.
One deliberate extra check (the emulator README contract): `messageId` must be a UUID, which is
what every SDK sends.

Each `check_*` function appends human-readable issues ("path: problem") to a list; an empty list
means valid.
"""

import re

CHANNELS = ("server", "web", "mobile")
EXPERIENCE_EVENT_TYPES = ("alias", "component", "group", "identify", "page", "screen", "track")
INSIGHTS_EVENT_TYPES = ("component", "component_click", "component_hover")
CAMPAIGN_KEYS = ("name", "source", "medium", "term", "content")
GEO_STRING_KEYS = ("city", "postalCode", "region", "regionCode", "country", "continent", "timezone")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# zod v4 z.iso.datetime() default: date, 'T', hh:mm, optional :ss and fraction, then 'Z'.
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?Z$")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_str(v):
    return type(v) is str


def is_num(v):
    # bool is a subclass of int in Python; JSON numbers are never booleans.
    return type(v) in (int, float)


def is_bool(v):
    return type(v) is bool


def is_obj(v):
    return type(v) is dict


def is_datetime(v):
    if not is_str(v):
        return False
    m = _DATETIME.match(v)
    if not m:
        return False
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1 <= month <= 12 or day < 1 or day > _DAYS[month - 1]:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return not (month == 2 and day == 29 and not leap)


def is_uuid(v):
    return is_str(v) and bool(_UUID.match(v))


class _Checker:
    """Collects issues; every helper returns True when the value is acceptable."""

    def __init__(self, issues):
        self.issues = issues

    def bad(self, path, msg):
        self.issues.append("%s: %s" % (path, msg))
        return False

    def field(self, obj, key, path, pred, what, required=True):
        if key not in obj:
            return self.bad("%s.%s" % (path, key), "required") if required else True
        if not pred(obj[key]):
            return self.bad("%s.%s" % (path, key), "expected " + what)
        return True

    def obj(self, parent, key, path, required=True):
        """Returns the nested object or None (absent or invalid; an issue is logged if needed)."""
        if key not in parent:
            if required:
                self.bad("%s.%s" % (path, key), "required")
            return None
        if not is_obj(parent[key]):
            self.bad("%s.%s" % (path, key), "expected object")
            return None
        return parent[key]

    def string_record(self, parent, key, path, required=True):
        rec = self.obj(parent, key, path, required)
        if rec is not None:
            for k, v in rec.items():
                if not is_str(v):
                    self.bad("%s.%s.%s" % (path, key, k), "expected string")

    def name_version(self, parent, key, path, required):
        o = self.obj(parent, key, path, required)
        if o is not None:
            p = "%s.%s" % (path, key)
            self.field(o, "name", p, is_str, "string")
            self.field(o, "version", p, is_str, "string")

    def page(self, parent, key, path, required):
        """Page: path, query (string record), referrer, search, url strings; title optional;
        extra keys allowed (any JSON)."""
        pg = self.obj(parent, key, path, required)
        if pg is None:
            return
        p = "%s.%s" % (path, key)
        for k in ("path", "referrer", "search", "url"):
            self.field(pg, k, p, is_str, "string")
        self.field(pg, "title", p, is_str, "string", required=False)
        self.string_record(pg, "query", p)

    def geo(self, parent, key, path):
        g = self.obj(parent, key, path, required=False)
        if g is None:
            return
        p = "%s.%s" % (path, key)
        for k in GEO_STRING_KEYS:
            self.field(g, k, p, is_str, "string", required=False)
        self.field(g, "countryCode", p, lambda v: is_str(v) and len(v) == 2,
                   "string of length 2", required=False)
        c = self.obj(g, "coordinates", p, required=False)
        if c is not None:
            self.field(c, "latitude", p + ".coordinates", is_num, "number")
            self.field(c, "longitude", p + ".coordinates", is_num, "number")

    def context(self, ev, path, page_required, screen_required):
        ctx = self.obj(ev, "context", path)
        if ctx is None:
            return
        p = path + ".context"
        self.name_version(ctx, "app", p, required=False)
        camp = self.obj(ctx, "campaign", p)
        if camp is not None:
            for k in CAMPAIGN_KEYS:
                self.field(camp, k, p + ".campaign", is_str, "string", required=False)
        gdpr = self.obj(ctx, "gdpr", p)
        if gdpr is not None:
            self.field(gdpr, "isConsentGiven", p + ".gdpr", is_bool, "boolean")
        self.name_version(ctx, "library", p, required=True)
        self.field(ctx, "locale", p, is_str, "string")
        self.geo(ctx, "location", p)
        self.page(ctx, "page", p, required=page_required)
        scr = self.obj(ctx, "screen", p, required=screen_required)
        if scr is not None:
            self.field(scr, "name", p + ".screen", is_str, "string")
        self.field(ctx, "userAgent", p, is_str, "string", required=False)

    def universal(self, ev, path, page_required=False, screen_required=False):
        self.field(ev, "channel", path, lambda v: is_str(v) and v in CHANNELS,
                   "one of " + "|".join(CHANNELS))
        self.context(ev, path, page_required, screen_required)
        self.field(ev, "messageId", path, is_uuid, "UUID string")
        for k in ("originalTimestamp", "sentAt", "timestamp"):
            self.field(ev, k, path, is_datetime, "ISO-8601 datetime ending in Z")
        self.field(ev, "userId", path, is_str, "string", required=False)

    def interaction(self, ev, path):
        self.universal(ev, path)
        self.field(ev, "componentType", path, lambda v: is_str(v) and v in ("Entry", "Variable"),
                   "Entry|Variable")
        self.field(ev, "componentId", path, is_str, "string")
        self.field(ev, "experienceId", path, is_str, "string", required=False)
        self.field(ev, "variantIndex", path, is_num, "number")

    def event(self, ev, path, allowed_types):
        if not is_obj(ev):
            return self.bad(path, "expected object")
        t = ev.get("type")
        if not is_str(t) or t not in allowed_types:
            return self.bad(path + ".type", "expected one of " + "|".join(allowed_types))
        if t == "page":
            self.universal(ev, path, page_required=True)
            self.field(ev, "name", path, is_str, "string", required=False)
            self.page(ev, "properties", path, required=True)
        elif t == "identify":
            self.universal(ev, path)
            self.field(ev, "userId", path, is_str, "string")
            self.obj(ev, "traits", path)
        elif t == "track":
            self.universal(ev, path)
            self.field(ev, "event", path, is_str, "string")
            self.obj(ev, "properties", path)
        elif t == "screen":
            self.universal(ev, path, screen_required=True)
            self.field(ev, "name", path, is_str, "string")
            self.obj(ev, "properties", path)
        elif t == "component":
            self.interaction(ev, path)
            self.field(ev, "viewDurationMs", path, is_num, "number", required=False)
            self.field(ev, "viewId", path, is_str, "string", required=False)
        elif t == "component_click":
            self.interaction(ev, path)
        elif t == "component_hover":
            self.interaction(ev, path)
            self.field(ev, "hoverDurationMs", path, is_num, "number")
            self.field(ev, "hoverId", path, is_str, "string")
        else:  # alias, group: universal properties only
            self.universal(ev, path)
        return True

    def events_array(self, parent, path, allowed_types, min_len):
        evs = parent.get("events")
        if "events" not in parent:
            return self.bad(path + ".events", "required")
        if type(evs) is not list:
            return self.bad(path + ".events", "expected array")
        if len(evs) < min_len:
            return self.bad(path + ".events", "expected at least %d element(s)" % min_len)
        for i, ev in enumerate(evs):
            self.event(ev, "%s.events[%d]" % (path, i), allowed_types)
        return True


def check_experience_request(body, batch=False):
    """ExperienceRequestData (create/update) or BatchExperienceRequestData (batch=True)."""
    issues = []
    c = _Checker(issues)
    if not is_obj(body):
        c.bad("$", "expected object")
        return issues
    c.events_array(body, "$", EXPERIENCE_EVENT_TYPES, 1)
    if batch and type(body.get("events")) is list:
        for i, ev in enumerate(body["events"]):
            if is_obj(ev):
                c.field(ev, "anonymousId", "$.events[%d]" % i, is_str, "string")
    opts = c.obj(body, "options", "$", required=False)
    if opts is not None and "features" in opts:
        f = opts["features"]
        if type(f) is not list:
            c.bad("$.options.features", "expected array")
        else:
            for i, v in enumerate(f):
                if not is_str(v):
                    c.bad("$.options.features[%d]" % i, "expected string")
    return issues


def check_insights_request(body):
    """BatchInsightsEventArray: [{profile: {id: string, ...}, events: [InsightsEvent...]}, ...]."""
    issues = []
    c = _Checker(issues)
    if type(body) is not list:
        c.bad("$", "expected array")
        return issues
    for i, batch in enumerate(body):
        p = "$[%d]" % i
        if not is_obj(batch):
            c.bad(p, "expected object")
            continue
        prof = c.obj(batch, "profile", p)
        if prof is not None:
            c.field(prof, "id", p + ".profile", is_str, "string")
        c.events_array(batch, p, INSIGHTS_EVENT_TYPES, 0)
    return issues
