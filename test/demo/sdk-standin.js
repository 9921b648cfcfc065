/*
 * sdk-standin.js: a TEST AND DEMO STAND-IN for the Contentful Optimization Web SDK UMD bundle
 * (@contentful/optimization-web, dist/contentful-optimization-web.umd.js). It is NOT the SDK:
 * the real package is not reachable from this build environment, so the demo and the browser
 * tests load this file instead, through the same CtflOptWebSDKURL, to check what mod_ctflopt's
 * bootstrap does with the SDK.
 *
 * Real-SDK behaviours mirrored (../shared/docs/contentful-protocol.md §5, §7):
 * - loading defines the global constructor `ContentfulOptimization`; `new ContentfulOptimization(
 *   config)` sets `window.contentfulOptimization` to the instance and throws ("already
 *   initialized") when it already exists;
 * - `consent(true|false|{events, persistence})`, observable `states.consent` (and `states.profile`,
 *   `states.selectedOptimizations`, `states.changes`) whose `subscribe(fn)` calls fn at once with
 *   the current value and on every change, and returns `{unsubscribe}`; `.current` reads it;
 * - initial consent from `defaults.consent`, else the consent stored by an earlier `consent()`
 *   call in localStorage `__ctfl_opt_consent__` (`accepted` / `denied`);
 * - `consent(false)` and `reset()` delete the `ctfl-opt-aid` cookie (and legacy `ntaid`);
 * - `page(payload)` POSTs one valid `page` event (channel `web`, UUID messageId, equal `Z`
 *   timestamps, context.page/properties from `location` and `document`, UTM campaign inference,
 *   `gdpr.isConsentGiven`, userAgent) to `<experienceBaseUrl>v2/organizations/<clientId>/
 *   environments/<environment>/profiles[/<id>]?locale=<locale>` with `Content-Type: text/plain`,
 *   the id from the `ctfl-opt-aid` cookie, else the current profile; page is allowed before
 *   consent (default allow-list) and then carries `isConsentGiven: false`. On success it adopts
 *   the profile, selections and changes and, with consent, writes
 *   `ctfl-opt-aid=<profile.id>; Path=/; Max-Age=31536000; SameSite=Lax`. Resolves to the data
 *   (renamed `experiences` -> `selectedOptimizations`), or undefined on failure (a warning, never
 *   console.error: the real SDK logs at its own level and does not throw from page()).
 * - `getFlag(key)` reads `changes`; `destroy()` removes `window.contentfulOptimization`.
 * Deliberate difference: no rewrite of `ctfl-opt-aid` at start-up (the real SDK rewrites the
 * same value), so tests see the cookie exactly as the server set it. No tracking, no Insights.
 *
 * Test hooks: `window.__ctfloptStandin = {loaded, constructed (constructor calls, including
 * refused ones), config (deep copy of the last constructor argument), pageCalls, consentCalls,
 * pageResults, errors}`; the number of page() calls is also accumulated across reloads in
 * sessionStorage `ctflopt-standin-page-calls`.
 */
(function (w) {
  'use strict';

  var AID_COOKIE = 'ctfl-opt-aid';
  var PAGE_CALLS_KEY = 'ctflopt-standin-page-calls';
  var CONSENT_KEY = '__ctfl_opt_consent__';
  var DEFAULT_EXPERIENCE_URL = 'https://experience.ninetailed.co/';
  var LIBRARY = { name: '@contentful/optimization-web-standin', version: '0.0.0' };
  var UTM = { utm_campaign: 'name', utm_source: 'source', utm_medium: 'medium',
              utm_term: 'term', utm_content: 'content' };

  var hooks = w.__ctfloptStandin = {
    loaded: true, constructed: 0, config: undefined, pageCalls: 0, consentCalls: [],
    pageResults: [], errors: []
  };

  function copyJson(v) {
    return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
  }

  function storage(kind) {
    try { return w[kind]; } catch (e) { return null; }
  }

  function readCookie(name) {
    var parts = (w.document.cookie || '').split('; ');
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(name + '=') === 0) return parts[i].substring(name.length + 1);
    }
    return undefined;
  }

  function deleteCookie(name, domain) {
    w.document.cookie = name + '=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/' +
      (domain ? '; Domain=' + domain : '');
  }

  function uuid4() {
    var b = new Uint8Array(16);
    w.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = '';
    for (var i = 0; i < 16; i++) {
      h += (b[i] + 0x100).toString(16).substring(1);
      if (i === 3 || i === 5 || i === 7 || i === 9) h += '-';
    }
    return h;
  }

  /* A minimal observable like the SDK's `states.*`. */
  function Observable(value) {
    this.current = value;
    this.subscribers = [];
  }
  Observable.prototype.subscribe = function (fn) {
    var subs = this.subscribers;
    subs.push(fn);
    fn(this.current);
    return { unsubscribe: function () {
      var i = subs.indexOf(fn);
      if (i >= 0) subs.splice(i, 1);
    } };
  };
  Observable.prototype.set = function (value) {
    this.current = value;
    var subs = this.subscribers.slice();
    for (var i = 0; i < subs.length; i++) subs[i](value);
  };

  function pageContext() {
    var loc = w.location;
    var query = {};
    new URLSearchParams(loc.search).forEach(function (v, k) { query[k] = v; });
    return { path: loc.pathname, query: query, referrer: w.document.referrer || '',
             search: loc.search, title: w.document.title || '', url: loc.href,
             hash: loc.hash, height: w.innerHeight, width: w.innerWidth };
  }

  function campaignFrom(url) {
    var campaign = {};
    try {
      var params = new URL(url).searchParams;
      for (var k in UTM) if (params.has(k)) campaign[UTM[k]] = params.get(k);
    } catch (e) { /* a relative or empty URL: no inference */ }
    return campaign;
  }

  function ContentfulOptimization(config) {
    if (!(this instanceof ContentfulOptimization)) {
      throw new TypeError("Class constructor ContentfulOptimization cannot be invoked without 'new'");
    }
    hooks.constructed += 1;
    if (w.contentfulOptimization) {
      var err = new Error('ContentfulOptimization is already initialized');
      hooks.errors.push(err.message);
      throw err;
    }
    config = config || {};
    if (typeof config.clientId !== 'string' || !config.clientId) {
      hooks.errors.push('clientId is required');
      throw new Error('ContentfulOptimization: clientId is required');
    }
    hooks.config = copyJson(config);
    this.config = config;
    var defaults = config.defaults || {};
    var consent = defaults.consent;
    if (typeof consent !== 'boolean') {
      var ls = storage('localStorage');
      var stored = ls ? ls.getItem(CONSENT_KEY) : null;
      consent = stored === 'accepted' ? true : stored === 'denied' ? false : undefined;
    }
    this.states = {
      consent: new Observable(consent),
      profile: new Observable(defaults.profile),
      selectedOptimizations: new Observable(defaults.selectedOptimizations),
      changes: new Observable(defaults.changes)
    };
    w.contentfulOptimization = this;
  }

  ContentfulOptimization.prototype.consent = function (value) {
    hooks.consentCalls.push(copyJson(value));
    var v = (value && typeof value === 'object') ? value.events : value;
    if (typeof v !== 'boolean') return;
    var ls = storage('localStorage');
    if (ls) ls.setItem(CONSENT_KEY, v ? 'accepted' : 'denied');
    if (!v) {
      var domain = this.config.cookie && this.config.cookie.domain;
      deleteCookie(AID_COOKIE, domain);
      deleteCookie('ntaid', domain);
    }
    if (this.states.consent.current !== v) this.states.consent.set(v);
  };

  ContentfulOptimization.prototype.page = function (payload) {
    hooks.pageCalls += 1;
    var ss = storage('sessionStorage');
    if (ss) ss.setItem(PAGE_CALLS_KEY, String((parseInt(ss.getItem(PAGE_CALLS_KEY), 10) || 0) + 1));

    var cfg = this.config, self = this;
    var now = new Date().toISOString();
    var page = pageContext();
    var props = {};
    var k;
    for (k in page) props[k] = page[k];
    for (k in (payload || {})) props[k] = payload[k];
    var context = {
      campaign: campaignFrom(props.url),
      gdpr: { isConsentGiven: this.states.consent.current === true },
      library: LIBRARY,
      locale: cfg.locale || 'en-US',
      page: props,
      userAgent: w.navigator.userAgent
    };
    if (cfg.app) context.app = cfg.app;
    var event = { type: 'page', channel: 'web', messageId: uuid4(), originalTimestamp: now,
                  sentAt: now, timestamp: now, properties: props, context: context };
    var api = cfg.api || {};
    var features = (api.enabledFeatures && api.enabledFeatures.length) ?
      api.enabledFeatures : ['ip-enrichment', 'location'];
    var profile = this.states.profile.current;
    var id = readCookie(AID_COOKIE) || (profile && profile.id);
    var rel = 'v2/organizations/' + cfg.clientId + '/environments/' +
      (cfg.environment || 'main') + '/profiles' + (id ? '/' + id : '') +
      (cfg.locale ? '?locale=' + encodeURIComponent(cfg.locale) : '');
    var url = new URL(rel, api.experienceBaseUrl || DEFAULT_EXPERIENCE_URL).href;
    var result = { url: url, status: 0 };
    hooks.pageResults.push(result);

    return w.fetch(url, {
      method: 'POST', headers: { 'Content-Type': 'text/plain' }, keepalive: true,
      body: JSON.stringify({ events: [event], options: { features: features } })
    }).then(function (res) {
      result.status = res.status;
      if (!res.ok) throw new Error('Experience API answered ' + res.status);
      return res.json();
    }).then(function (body) {
      var data = body && body.data;
      if (!data || !data.profile || typeof data.profile.id !== 'string') {
        throw new Error('Experience API response does not match the schema');
      }
      self.states.profile.set(data.profile);
      self.states.selectedOptimizations.set(data.experiences);
      self.states.changes.set(data.changes);
      if (self.states.consent.current === true) {
        w.document.cookie = AID_COOKIE + '=' + data.profile.id +
          '; Path=/; Max-Age=31536000; SameSite=Lax';
      }
      result.profileId = data.profile.id;
      return { profile: data.profile, selectedOptimizations: data.experiences,
               changes: data.changes };
    }).catch(function (e) {
      result.error = String(e && e.message || e);
      hooks.errors.push(result.error);
      if (w.console && w.console.warn) w.console.warn('[sdk-standin] page() failed:', result.error);
      return undefined;
    });
  };

  ContentfulOptimization.prototype.getFlag = function (key) {
    var changes = this.states.changes.current || [];
    for (var i = 0; i < changes.length; i++) {
      if (changes[i] && changes[i].key === key) return changes[i].value;
    }
    return undefined;
  };

  ContentfulOptimization.prototype.reset = function () {
    deleteCookie(AID_COOKIE, this.config.cookie && this.config.cookie.domain);
    this.states.profile.set(undefined);
    this.states.selectedOptimizations.set(undefined);
    this.states.changes.set(undefined);
  };

  ContentfulOptimization.prototype.destroy = function () {
    for (var name in this.states) this.states[name].subscribers = [];
    if (w.contentfulOptimization === this) delete w.contentfulOptimization;
  };

  w.ContentfulOptimization = ContentfulOptimization;
})(window);
