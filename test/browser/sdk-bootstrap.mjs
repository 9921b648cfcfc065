// Headless-Chromium test of mod_ctflopt's Web SDK bootstrap against a running Apache + module +
// emulator serving the demo site, with test/demo/sdk-standin.js as the Web SDK bundle.
//
//   node test/browser/sdk-bootstrap.mjs [granted|roundtrip|denied ...]   (default: all)
//
// Environment:
//   CTFLOPT_BASE_URL      the demo site, e.g. http://127.0.0.1:8080        (required)
//   CTFLOPT_EMULATOR_URL  the emulator, e.g. http://127.0.0.1:9090        (required)
//   CTFLOPT_CLIENT_ID     CtflOptClientId of the site                     (required)
//   CTFLOPT_ENVIRONMENT   CtflOptEnvironment (default main)
//   CTFLOPT_CHROMIUM      browser binary (default /usr/bin/chromium; never downloaded)
//   CTFLOPT_CONSENT_COOKIE  consent cookie name (default app-personalization-consent)
//
// The emulator is reset at the start of each scenario (its request records are asserted on).
// Exit status 0 when every scenario passed, 1 otherwise, with one line per failed check.

import { chromium } from 'playwright-core';
import { isDeepStrictEqual } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is required`);
  return v;
};
const BASE = env('CTFLOPT_BASE_URL').replace(/\/+$/, '');
const EMU = env('CTFLOPT_EMULATOR_URL').replace(/\/+$/, '');
const CLIENT_ID = env('CTFLOPT_CLIENT_ID');
const ENVIRONMENT = env('CTFLOPT_ENVIRONMENT', 'main');
const CHROMIUM = env('CTFLOPT_CHROMIUM', '/usr/bin/chromium');
const CONSENT_COOKIE = env('CTFLOPT_CONSENT_COOKIE', 'app-personalization-consent');
const AID_COOKIE = 'ctfl-opt-aid';
const PAGE_CALLS_KEY = 'ctflopt-standin-page-calls';   // sessionStorage key of the stand-in
const STEP_TIMEOUT_MS = 15000;

// ---------------------------------------------------------------------------------------------
// checks: every failed check is recorded (not thrown) so one run reports all of them

class Checks {
  constructor(scenario) {
    this.scenario = scenario;
    this.failures = [];
    this.count = 0;
  }

  ok(cond, what, detail) {
    this.count += 1;
    if (!cond) {
      this.failures.push(detail === undefined ? what : `${what}: ${fmt(detail)}`);
    }
    return !!cond;
  }

  equal(actual, expected, what) {
    return this.ok(isDeepStrictEqual(actual, expected), what,
      `got ${fmt(actual)}, expected ${fmt(expected)}`);
  }
}

function fmt(v) {
  if (v === undefined) return 'undefined';
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v, null, 0);
  return s && s.length > 600 ? `${s.slice(0, 600)}...` : s;
}

// ---------------------------------------------------------------------------------------------
// the emulator's control API

async function emulator(method, p) {
  const res = await fetch(EMU + p, {
    method,
    headers: method === 'POST' ? { 'Content-Type': 'application/json' } : {},
    body: method === 'POST' ? '{}' : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`emulator ${method} ${p}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

const resetEmulator = () => emulator('POST', '/__emulator/reset');
const experienceRequests = () => emulator('GET', '/__emulator/requests?api=experience');

// The profile the emulator holds for id (404 unless it issued or updated that id).
async function emulatorProfile(id) {
  const p = `/experience/v2/organizations/${encodeURIComponent(CLIENT_ID)}/environments/`
    + `${encodeURIComponent(ENVIRONMENT)}/profiles/${encodeURIComponent(id)}`;
  const res = await fetch(EMU + p);
  if (res.status !== 200) return { status: res.status };
  return { status: 200, profile: (await res.json()).data.profile };
}

function events(record) {
  const body = record.json ?? JSON.parse(record.body);
  return Array.isArray(body?.events) ? body.events : [];
}

const reEscape = (s) => String(s).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
// The Experience API path of a profile create (id undefined) or update.
const profilesPath = (id) => new RegExp(
  `/experience/v2/organizations/${reEscape(CLIENT_ID)}/environments/${reEscape(ENVIRONMENT)}`
  + `/profiles${id === undefined ? '' : `/${reEscape(id)}`}$`);

// ---------------------------------------------------------------------------------------------
// the browser

async function withBrowser(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctflopt-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];   // console errors, page errors, failed or error responses
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(
    `request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  try {
    return await fn({ context, page, problems });
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function open(page, url) {
  const res = await page.goto(url, { waitUntil: 'load' });
  await page.waitForLoadState('networkidle');
  return res;
}

// Everything the page and the stand-in expose, read in the page.
function pageState(page) {
  return page.evaluate(([aidName, consentName, callsKey]) => {
    const cookie = (name) => {
      for (const part of (document.cookie || '').split('; ')) {
        if (part.startsWith(`${name}=`)) return part.substring(name.length + 1);
      }
      return undefined;
    };
    const h = window.__ctfloptStandin;
    const copy = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
    return {
      hasConsentGlobal: '__OPTIMIZATION_CONSENT__' in window,
      consent: window.__OPTIMIZATION_CONSENT__,
      hasData: '__OPTIMIZATION_DATA__' in window,
      data: copy(window.__OPTIMIZATION_DATA__),
      config: copy(window.__OPTIMIZATION_CONFIG__),
      standin: copy(h),
      instance: !!window.contentfulOptimization
        && window.contentfulOptimization instanceof window.ContentfulOptimization,
      aid: cookie(aidName),
      consentCookie: cookie(consentName),
      pageCallsSession: sessionStorage.getItem(callsKey),
    };
  }, [AID_COOKIE, CONSENT_COOKIE, PAGE_CALLS_KEY]);
}

// Checks common to every page load: the stand-in loaded and was constructed exactly once by the
// bootstrap, with this site's settings, and nothing went wrong in the page.
function checkConstructedOnce(c, s, label) {
  c.ok(s.standin?.loaded === true, `${label}: the SDK stand-in was loaded`, s.standin);
  c.equal(s.standin?.constructed, 1, `${label}: ContentfulOptimization constructed exactly once`);
  c.equal(s.standin?.errors, [], `${label}: stand-in errors`);
  c.ok(s.instance, `${label}: window.contentfulOptimization is the instance`);
  c.equal(s.standin?.config?.clientId, CLIENT_ID, `${label}: constructor clientId`);
  c.equal(s.standin?.config?.environment, ENVIRONMENT, `${label}: constructor environment`);
  c.ok(s.hasConsentGlobal, `${label}: window.__OPTIMIZATION_CONSENT__ is set by the bootstrap`);
  const defaults = s.standin?.config?.defaults;
  c.ok(defaults && typeof defaults === 'object', `${label}: constructor has defaults`, defaults);
  c.ok(defaults && !('selectedOptimizations' in defaults),
    `${label}: no selectedOptimizations in defaults (personalization stays server-owned)`, defaults);
  return defaults ?? {};
}

function checkNoProblems(c, problems, label) {
  c.equal(problems.splice(0), [], `${label}: console errors / page errors / failed requests`);
}

async function consentCookieValue(context) {
  const all = await context.cookies(BASE);
  return all.find((k) => k.name === CONSENT_COOKIE)?.value;
}

// ---------------------------------------------------------------------------------------------
// scenarios

// (a) Consent granted before the visit: the server evaluates and hands the profile over.
async function granted(c) {
  await resetEmulator();
  await withBrowser(async ({ context, page, problems }) => {
    await context.addCookies([{ name: CONSENT_COOKIE, value: 'granted', url: BASE }]);
    const res = await open(page, `${BASE}/`);
    c.equal(res?.status(), 200, 'page status');
    const s = await pageState(page);
    const d = checkConstructedOnce(c, s, 'granted');
    c.equal(s.consent, true, 'window.__OPTIMIZATION_CONSENT__');
    c.equal(d.consent, true, 'defaults.consent');
    c.ok(s.hasData && s.data?.profile, 'window.__OPTIMIZATION_DATA__ has a profile', s.data);
    const id = d.profile?.id;
    c.ok(typeof id === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(id),
      'defaults.profile.id is a plain token', d.profile);
    c.equal(d.profile, s.data?.profile, 'defaults.profile equals __OPTIMIZATION_DATA__.profile');
    c.equal(s.aid, id, `${AID_COOKIE} in document.cookie equals defaults.profile.id`);
    c.equal(s.standin?.pageCalls, 0, 'page() calls in the browser (the server sent the page)');
    c.equal(s.pageCallsSession, null, 'page() calls recorded in sessionStorage');

    const recs = await experienceRequests();
    c.equal(recs.length, 1, 'Experience API requests recorded by the emulator');
    const rec = recs[0];
    if (rec) {
      c.equal(rec.method, 'POST', 'server Experience request method');
      c.ok(profilesPath(undefined).test(rec.path), 'a new visitor: the server created a profile',
        rec.path);
      c.equal(rec.status, 200, 'emulator answered the server request');
      const evs = events(rec);
      c.ok(evs.some((e) => e.type === 'page' && e.channel === 'server'),
        'the server sent a page event with channel "server"', evs);
    }
    if (id) {
      const held = await emulatorProfile(id);
      c.equal(held.status, 200, 'the emulator issued this profile id');
      c.equal(d.profile, held.profile, "defaults.profile equals the emulator's profile");
    }
    checkNoProblems(c, problems, 'granted');
  });
}

// (b) No consent on the first visit; accept in the page; the reload is personalized, and the
// browser called page() exactly once over both loads.
async function roundtrip(c) {
  await resetEmulator();
  await withBrowser(async ({ context, page, problems }) => {
    const res = await open(page, `${BASE}/`);
    c.equal(res?.status(), 200, 'first visit: page status');
    let s = await pageState(page);
    let d = checkConstructedOnce(c, s, 'first visit');
    c.equal(s.consent, undefined, 'first visit: window.__OPTIMIZATION_CONSENT__');
    c.ok(!('consent' in d), 'first visit: defaults.consent is undefined', d);
    c.ok(!('profile' in d), 'first visit: no defaults.profile', d);
    c.ok(!s.hasData, 'first visit: no window.__OPTIMIZATION_DATA__', s.data);
    c.equal(s.aid, undefined, `first visit: no ${AID_COOKIE} cookie`);
    c.equal(s.consentCookie, undefined, 'first visit: no consent cookie');
    c.equal(s.standin?.pageCalls, 0, 'first visit: page() not called before consent');
    c.equal((await experienceRequests()).length, 0,
      'first visit: no Experience API request without consent');
    checkNoProblems(c, problems, 'first visit');

    await page.click('#consent-accept');
    // The bootstrap writes the cookie and calls page() synchronously from consent(true); the
    // stand-in's page() then POSTs to the emulator: wait for that call to settle.
    await page.waitForFunction(() => {
      const r = window.__ctfloptStandin?.pageResults?.[0];
      return r && (r.profileId || r.error);
    });
    await page.waitForLoadState('networkidle');
    s = await pageState(page);
    c.equal(await consentCookieValue(context), 'granted', 'after accept: consent cookie');
    c.equal(s.consentCookie, 'granted', 'after accept: consent cookie in document.cookie');
    c.equal(s.standin?.consentCalls, [true], 'after accept: consent() calls');
    c.equal(s.standin?.pageCalls, 1, 'after accept: page() called exactly once');
    c.equal(s.pageCallsSession, '1', 'after accept: page() calls in sessionStorage');
    const browserId = s.standin?.pageResults?.[0]?.profileId;
    c.ok(typeof browserId === 'string' && browserId.length > 0,
      "after accept: the browser's page() got a profile", s.standin?.pageResults);
    c.equal(s.aid, browserId, `after accept: ${AID_COOKIE} is the browser's profile id`);
    let recs = await experienceRequests();
    c.equal(recs.length, 1, 'after accept: Experience API requests (the browser page())');
    c.ok(recs[0] && events(recs[0]).some((e) => e.type === 'page' && e.channel === 'web'),
      'after accept: the browser sent a web page event', recs[0] && events(recs[0]));
    checkNoProblems(c, problems, 'after accept');

    const reload = await page.reload({ waitUntil: 'load' });
    await page.waitForLoadState('networkidle');
    c.equal(reload?.status(), 200, 'reload: page status');
    s = await pageState(page);
    d = checkConstructedOnce(c, s, 'reload');
    c.equal(s.consent, true, 'reload: window.__OPTIMIZATION_CONSENT__');
    c.equal(d.consent, true, 'reload: defaults.consent');
    c.ok(s.hasData && s.data?.profile, 'reload: personalized (__OPTIMIZATION_DATA__.profile)', s.data);
    const id = s.data?.profile?.id;
    c.ok(typeof id === 'string' && id.length > 0, 'reload: the server profile has an id', s.data);
    c.equal(s.aid, id, `reload: ${AID_COOKIE} equals __OPTIMIZATION_DATA__.profile.id`);
    c.equal(id, browserId, "reload: the server kept the browser's profile id");
    c.equal(d.profile, s.data?.profile, 'reload: defaults.profile equals the server profile');
    c.equal(s.standin?.pageCalls, 0, 'reload: page() not called (the server sent the page)');
    c.equal(s.pageCallsSession, '1', 'reload: page() called exactly once in total');

    recs = await experienceRequests();
    c.equal(recs.length, 2, 'reload: Experience API requests in total (browser + server)');
    const server = recs[1];
    if (server) {
      c.ok(profilesPath(browserId).test(server.path),
        'reload: the server updated the browser profile', server.path);
      c.equal(server.status, 200, 'reload: emulator answered the server request');
      c.ok(events(server).some((e) => e.type === 'page' && e.channel === 'server'),
        'reload: the server sent a page event with channel "server"', events(server));
    }
    checkNoProblems(c, problems, 'reload');
  });
}

// (c) Reject in the page: the consent cookie says denied, no page() call, and the reload stays
// anonymous with consent false handed to the SDK.
async function denied(c) {
  await resetEmulator();
  await withBrowser(async ({ context, page, problems }) => {
    await open(page, `${BASE}/`);
    let s = await pageState(page);
    checkConstructedOnce(c, s, 'first visit');
    c.equal(s.consent, undefined, 'first visit: window.__OPTIMIZATION_CONSENT__');

    await page.click('#consent-reject');
    await page.waitForLoadState('networkidle');
    s = await pageState(page);
    c.equal(await consentCookieValue(context), 'denied', 'after reject: consent cookie');
    c.equal(s.standin?.consentCalls, [false], 'after reject: consent() calls');
    c.equal(s.standin?.pageCalls, 0, 'after reject: page() not called');
    c.equal(s.pageCallsSession, null, 'after reject: no page() call in sessionStorage');
    c.equal(s.aid, undefined, `after reject: no ${AID_COOKIE} cookie`);
    checkNoProblems(c, problems, 'after reject');

    await page.reload({ waitUntil: 'load' });
    await page.waitForLoadState('networkidle');
    s = await pageState(page);
    const d = checkConstructedOnce(c, s, 'reload');
    c.equal(s.consent, false, 'reload: window.__OPTIMIZATION_CONSENT__');
    c.equal(d.consent, false, 'reload: defaults.consent');
    c.ok(!s.hasData && !('profile' in d), 'reload: no profile', s.data);
    c.equal(s.standin?.pageCalls, 0, 'reload: page() not called');
    c.equal(s.pageCallsSession, null, 'reload: no page() call in total');
    c.equal(s.aid, undefined, `reload: no ${AID_COOKIE} cookie`);
    c.equal((await experienceRequests()).length, 0, 'no Experience API request at all');
    checkNoProblems(c, problems, 'reload');
  });
}

// ---------------------------------------------------------------------------------------------

const SCENARIOS = { granted, roundtrip, denied };

async function main() {
  const names = process.argv.slice(2);
  for (const n of names) {
    if (!SCENARIOS[n]) {
      console.error(`unknown scenario ${n} (known: ${Object.keys(SCENARIOS).join(', ')})`);
      return 2;
    }
  }
  let failed = 0;
  let passed = 0;
  for (const name of names.length ? names : Object.keys(SCENARIOS)) {
    const c = new Checks(name);
    try {
      await SCENARIOS[name](c);
    } catch (e) {
      c.failures.push(`aborted: ${e?.stack ?? e}`);
    }
    if (c.failures.length) {
      failed += 1;
      console.error(`FAIL ${name} (${c.failures.length} of ${c.count} checks failed)`);
      for (const f of c.failures) console.error(`  - ${f}`);
    } else {
      passed += 1;
      console.log(`ok   ${name} (${c.count} checks)`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => {
  console.error(`browser test crashed: ${e?.stack ?? e}`);
  process.exit(1);
});
