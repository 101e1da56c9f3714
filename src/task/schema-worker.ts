// The code of the schema worker (validate.ts), kept as a string: a Worker runs JavaScript from a
// file or a string, and a string works the same from dist/ and from the TypeScript sources under
// test. It compiles a task's JSON Schema with ajv (linear-time regular expressions from re2js,
// first error only) and validates values against it. Compiled validators are cached by the
// schema text's hash; the cache dies with the worker (terminated when a bound is hit).
export const SCHEMA_WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
// Each dependency from the build's one file (schema-thread.ts) or from node_modules.
const deps = workerData.bundle
  ? require(workerData.bundle)
  : { ajv: () => require(workerData.ajv), ajvDraft04: () => require(workerData.ajvDraft04), re2js: () => require(workerData.re2js) };
const Ajv = deps.ajv().default;
// Ratchet validates with a library that reads draft-04 schemas too (some of its samples declare
// it); ajv needs its draft-04 build for them. It and re2js load at their first use: most
// schemas need neither, and the thread's start-up is on a CLI run's path.
let draft04;
const AjvDraft04 = () => (draft04 ??= deps.ajvDraft04().default);
const DRAFT_04 = /^https?:\/\/json-schema\.org\/draft-04\/schema#?$/;
let re2lib;

// ajv's RegExpEngine: (pattern, flags) -> { test(s) }, with the same unanchored search semantics
// as RegExp.prototype.test. RE2 refuses backreferences and lookaround instead of backtracking.
function re2(pattern) {
  const re = (re2lib ??= deps.re2js().RE2JS).compile(pattern);
  return { test: (s) => re.matcher(s).find() };
}
re2.code = 're2js';

const cache = new Map();
const CACHE_MAX = 256;
const OPTIONS = { allErrors: false, strict: false, logger: false, code: { regExp: re2 } };

// ajv checks a schema against its draft's meta-schema, which it compiles once per Ajv instance
// (40-170 ms measured, and a task has two schemas): one checker per draft checks every schema
// (compiling nothing of theirs, so they leave nothing in it), and each schema's own instance
// skips the check. Same messages as ajv's own ("schema is invalid: ...").
// The build has the draft-07 meta-schema's validator as code (scripts/bundle-cli.mjs): a schema
// that is draft-07 (ajv's default) is checked with it, and refused in validateSchema's words.
const checkers = new Map();
const DRAFT_07 = /^http:\/\/json-schema\.org\/draft-07\/schema#?$/;
let meta07;
function checkSchema(Engine, schema) {
  let c = checkers.get(Engine);
  if (!c) checkers.set(Engine, (c = new Engine(OPTIONS)));
  if (Engine === Ajv && deps.meta07 && (schema.$schema === undefined || (typeof schema.$schema === 'string' && DRAFT_07.test(schema.$schema)))) {
    const v = (meta07 ??= deps.meta07());
    if (!v(schema)) throw new Error('schema is invalid: ' + c.errorsText(v.errors));
    return;
  }
  c.validateSchema(schema, true);
}

function compile(schema) {
  const Engine = schema && typeof schema === 'object' && DRAFT_04.test(String(schema.$schema)) ? AjvDraft04() : Ajv;
  checkSchema(Engine, schema);
  // One Ajv per schema: two tasks with the same $id do not collide, and an evicted schema
  // leaves nothing behind in a shared instance.
  const v = new Engine({ ...OPTIONS, validateSchema: false }).compile(schema);
  // An $async schema's validator returns a promise, which is truthy: every value would pass, and
  // a rejected one (an invalid value) ends this thread, charged to whatever check is in hand then.
  if (v.$async) throw new Error('an $async schema is not supported: pawl checks values synchronously');
  return v;
}

function compiled(hash, text) {
  let v = cache.get(hash);
  if (!v) {
    v = compile(JSON.parse(text));
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
    cache.set(hash, v);
  }
  return v;
}

// Before 'ready', while the CLI still loads its own modules: the draft-07 meta-schema and ajv's
// code generation compile here, not inside the first task's time bound.
compile({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] })({ n: 1 });

parentPort.on('message', (m) => {
  let v;
  try {
    v = compiled(m.hash, m.text);
  } catch (e) {
    parentPort.postMessage({ id: m.id, compileError: String((e && e.message) || e).slice(0, 500) });
    return;
  }
  if (m.op === 'compile') return parentPort.postMessage({ id: m.id, errors: [] });
  const valid = v(m.value);
  if (valid === true) return parentPort.postMessage({ id: m.id, errors: [] });
  const errors = (v.errors || []).slice(0, m.maxErrors).map((e) => (e.instancePath || '') + ' ' + (e.message || 'is invalid'));
  // Anything but true is a failure, with a reason even when the validator gave none.
  parentPort.postMessage({ id: m.id, errors: errors.length ? errors : [' is invalid'] });
});
parentPort.postMessage({ ready: true });
`;
