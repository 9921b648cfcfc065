// Runs the inline bootstrap script served by Apache in a Node vm with a stand-in for the Web
// SDK constructor, and reports what it did (JSON on stdout). Used by test_bootstrap.py.
//
// stdin: {"script": "...", "protocol": "http:", "preexisting": false, "noConstructor": false,
//         "actions": ["grant" | "deny", ...]}
'use strict';
const vm = require('vm');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));

const record = { constructed: [], pageCalls: 0, consentCalls: [], cookieWrites: [], errors: [] };
const document = {};
Object.defineProperty(document, 'cookie', {
  get() { return input.cookie || ''; },
  set(v) { record.cookieWrites.push(String(v)); },
});
const window = { document, location: { protocol: input.protocol || 'http:' } };
if (input.preexisting) window.contentfulOptimization = { preexisting: true };

class ContentfulOptimization {
  constructor(config) {
    if (window.contentfulOptimization) throw new Error('ContentfulOptimization is already initialized');
    record.constructed.push(JSON.parse(JSON.stringify(config)));
    window.contentfulOptimization = this;
    const subscribers = [];
    this._subscribers = subscribers;
    this.states = { consent: { subscribe(fn) { subscribers.push(fn); return { unsubscribe() {} }; } } };
  }
  consent(v) {
    record.consentCalls.push(v);
    for (const fn of this._subscribers) fn(v);
  }
  page() { record.pageCalls += 1; return Promise.resolve(); }
}
if (!input.noConstructor) window.ContentfulOptimization = ContentfulOptimization;

const context = vm.createContext({ window });
try {
  vm.runInContext(input.script, context, { timeout: 2000 });
} catch (e) {
  record.errors.push(String(e && e.stack || e));
}
for (const action of input.actions || []) {
  const sdk = window.contentfulOptimization;
  try {
    if (action === 'grant') sdk.consent(true);
    else if (action === 'deny') sdk.consent(false);
  } catch (e) {
    record.errors.push(String(e && e.stack || e));
  }
}
const consent = window.__OPTIMIZATION_CONSENT__;
process.stdout.write(JSON.stringify({
  record,
  config: window.__OPTIMIZATION_CONFIG__ === undefined ? null : window.__OPTIMIZATION_CONFIG__,
  consent: consent === undefined ? 'undefined' : consent,
  hasData: '__OPTIMIZATION_DATA__' in window,
  data: window.__OPTIMIZATION_DATA__ === undefined ? null : window.__OPTIMIZATION_DATA__,
}));
