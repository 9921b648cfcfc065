// Regenerates the expected HTML of the rich text unit test with the official renderer.
//
//   (cd test/richtext-oracle && npm install --no-package-lock)   # once; versions pinned
//   node test/richtext-oracle/generate.mjs
//
// For every test/unit/data/richtext/NAME.json ({"doc": <any JSON; absent = undefined>,
// "inline": {"<target sys.id>": "text"}, "c_refuses": "why"}) it writes NAME.html, the exact
// output of documentToHtmlString(doc) with default options, or NAME.throws when that throws.
// With "inline", embedded-entry-inline nodes whose data.target.sys.id is in the map render the
// escaped text instead (how mod_ctflopt replaces merge tags); others keep the default output.
// "c_refuses" marks inputs that the C renderer deliberately refuses (it must fail on them).
//
// It first (re)writes fixture-*.json from every Rich Text field in ../shared/fixtures
// (entries/*.json, links in the document resolved one level from the same response), plus a
// "-new-visitor"/"-identified-visitor" variant with the merge tags of that visitor's profile.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { documentToHtmlString } from '@contentful/rich-text-html-renderer';
import { INLINES } from '@contentful/rich-text-types';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const dataDir = path.join(repo, 'test/unit/data/richtext');
const shared = process.env.CTFL_SHARED || path.resolve(repo, '../shared');
const require = createRequire(import.meta.url);
const version = require('@contentful/rich-text-html-renderer/package.json').version;

const readJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));
const writeJson = (f, v) => fs.writeFileSync(f, JSON.stringify(v, null, 1) + '\n');

// ---- fixtures -------------------------------------------------------------------------------

const isLink = (v) => v && typeof v === 'object' && v.sys && v.sys.type === 'Link';

// A copy of doc where every Link object is replaced by the entry/asset it names (one level:
// the linked object keeps its own links, as a pointer-resolved graph would look to a renderer).
function resolveLinks(doc, byId) {
  if (Array.isArray(doc)) return doc.map((v) => resolveLinks(v, byId));
  if (!doc || typeof doc !== 'object') return doc;
  if (isLink(doc)) return byId.get(`${doc.sys.linkType}:${doc.sys.id}`) ?? doc;
  return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, resolveLinks(v, byId)]));
}

function inlineTargets(node, out = []) {
  if (Array.isArray(node)) node.forEach((n) => inlineTargets(n, out));
  else if (node && typeof node === 'object') {
    if (node.nodeType === INLINES.EMBEDDED_ENTRY && node.data?.target) out.push(node.data.target);
    inlineTargets(node.content, out);
  }
  return out;
}

// The test's stand-in for the merge tag resolver (spec §4.5 needs only a dotted path for the
// fixtures): the profile value at nt_mergetag_id when truthy and scalar, else nt_fallback.
function mergeTagValue(entry, profile) {
  let v = profile;
  for (const seg of String(entry.fields.nt_mergetag_id).split('.')) v = v && typeof v === 'object' ? v[seg] : undefined;
  if (v && ['string', 'number', 'boolean'].includes(typeof v)) return String(v);
  return entry.fields.nt_fallback ?? '';
}

function extractFixtures() {
  const dir = path.join(shared, 'fixtures/contentful/entries');
  if (!fs.existsSync(dir)) {
    console.warn(`no fixtures at ${dir}: fixture cases left as they are`);
    return;
  }
  const visitors = ['new-visitor', 'identified-visitor'].map((name) => [
    name, readJson(path.join(shared, 'fixtures/experience', `${name}.json`)).data.profile,
  ]);
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const response = readJson(path.join(dir, file));
    const all = [...(response.items ?? []), ...(response.includes?.Entry ?? []), ...(response.includes?.Asset ?? [])];
    const byId = new Map(all.map((e) => [`${e.sys.type}:${e.sys.id}`, e]));
    for (const entry of response.items ?? []) {
      for (const [field, value] of Object.entries(entry.fields ?? {})) {
        if (!value || value.nodeType !== 'document') continue;
        const name = `fixture-${entry.sys.id}-${field}`;
        const doc = resolveLinks(value, byId);
        const source = `fixtures/contentful/entries/${file} items[sys.id=${entry.sys.id}].fields.${field}, links resolved from the response`;
        writeJson(path.join(dataDir, `${name}.json`), { about: `${source}; default rendering`, doc });
        const tags = inlineTargets(doc).filter((t) => t.sys?.contentType?.sys?.id === 'nt_mergetag');
        for (const [visitor, profile] of tags.length ? visitors : []) {
          const inline = Object.fromEntries(tags.map((t) => [t.sys.id, mergeTagValue(t, profile)]));
          writeJson(path.join(dataDir, `${name}-${visitor}.json`),
            { about: `${source}; merge tags for fixtures/experience/${visitor}.json`, inline, doc });
        }
      }
    }
  }
}

// ---- rendering ------------------------------------------------------------------------------

const escapeText = (s) => documentToHtmlString({ content: [{ nodeType: 'text', value: s, marks: [] }] });

function options(inline) {
  if (!inline) return {};
  return {
    renderNode: {
      [INLINES.EMBEDDED_ENTRY]: (node) => {
        const id = node?.data?.target?.sys?.id;
        if (typeof id === 'string' && Object.hasOwn(inline, id)) return escapeText(inline[id]);
        return documentToHtmlString({ content: [node] });     // the package's own default
      },
    },
  };
}

function renderAll() {
  let html = 0, throws = 0;
  for (const file of fs.readdirSync(dataDir).filter((f) => f.endsWith('.json')).sort()) {
    const base = path.join(dataDir, file.slice(0, -5));
    const c = readJson(`${base}.json`);
    fs.rmSync(`${base}.html`, { force: true });
    fs.rmSync(`${base}.throws`, { force: true });
    try {
      fs.writeFileSync(`${base}.html`, documentToHtmlString(c.doc, options(c.inline)));
      html++;
    } catch (e) {
      fs.writeFileSync(`${base}.throws`, `${e.name}: ${e.message}\n`);
      throws++;
    }
  }
  fs.writeFileSync(path.join(dataDir, 'ORACLE_VERSION'), `@contentful/rich-text-html-renderer ${version}\n`);
  console.log(`@contentful/rich-text-html-renderer ${version}: ${html} html, ${throws} throws`);
}

extractFixtures();
renderAll();
