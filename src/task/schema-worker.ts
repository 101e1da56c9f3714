// The code of the schema worker (validate.ts), kept as a string: a Worker runs JavaScript from a
// file or a string, and a string works the same from dist/ and from the TypeScript sources under
// test. It compiles a task's JSON Schema with ajv (linear-time regular expressions from re2js,
// first error only) and validates values against it. Compiled validators are cached by the
// schema text's hash; the cache dies with the worker (terminated when a bound is hit).
export const SCHEMA_WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const Ajv = require(workerData.ajv).default;
// Ratchet validates with a library that reads draft-04 schemas too (some of its samples declare
// it); ajv needs its draft-04 build for them.
const AjvDraft04 = require(workerData.ajvDraft04).default;
const DRAFT_04 = /^https?:\/\/json-schema\.org\/draft-04\/schema#?$/;
const { RE2JS } = require(workerData.re2js);

// ajv's RegExpEngine: (pattern, flags) -> { test(s) }, with the same unanchored search semantics
// as RegExp.prototype.test. RE2 refuses backreferences and lookaround instead of backtracking.
function re2(pattern) {
  const re = RE2JS.compile(pattern);
  return { test: (s) => re.matcher(s).find() };
}
re2.code = 're2js';

const cache = new Map();
const CACHE_MAX = 256;

function compiled(hash, text) {
  let v = cache.get(hash);
  if (!v) {
    // One Ajv per schema: two tasks with the same $id do not collide, and an evicted schema
    // leaves nothing behind in a shared instance.
    const schema = JSON.parse(text);
    const Engine = schema && typeof schema === 'object' && DRAFT_04.test(String(schema.$schema)) ? AjvDraft04 : Ajv;
    const ajv = new Engine({ allErrors: false, strict: false, logger: false, code: { regExp: re2 } });
    v = ajv.compile(schema);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
    cache.set(hash, v);
  }
  return v;
}

parentPort.on('message', (m) => {
  let v;
  try {
    v = compiled(m.hash, m.text);
  } catch (e) {
    parentPort.postMessage({ id: m.id, compileError: String((e && e.message) || e).slice(0, 500) });
    return;
  }
  if (m.op === 'compile') return parentPort.postMessage({ id: m.id, errors: [] });
  if (v(m.value)) return parentPort.postMessage({ id: m.id, errors: [] });
  const errors = (v.errors || []).slice(0, m.maxErrors).map((e) => (e.instancePath || '') + ' ' + (e.message || 'is invalid'));
  parentPort.postMessage({ id: m.id, errors });
});
parentPort.postMessage({ ready: true });
`;
