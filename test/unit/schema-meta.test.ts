// The build's schema thread checks draft-07 schemas against a validator generated at build time
// (scripts/bundle-cli.mjs, ajv's standalone code) instead of compiling the meta-schema at run
// time. A task must see the same verdict and the same words either way: the thread is run here
// both ways, from the build's file and from node_modules, on the same schemas.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleSchemaDeps } from '../../scripts/bundle-cli.mjs';
import { SCHEMA_WORKER_SOURCE } from '../../src/task/schema-worker.js';

const ROOT = join(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);
const FROM_NODE_MODULES = { ajv: require.resolve('ajv'), ajvDraft04: require.resolve('ajv-draft-04'), re2js: require.resolve('re2js') };
let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pawl-schema-deps-'));
  bundle = join(dir, 'schema-deps.cjs');
  await (bundleSchemaDeps as (outfile: string, resolveDir: string) => Promise<void>)(bundle, ROOT);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the schema thread answers to compiling each schema, one thread for all of them. */
async function compileAll(workerData: object, schemas: unknown[]): Promise<unknown[]> {
  const w = new Worker(SCHEMA_WORKER_SOURCE, { eval: true, execArgv: [], workerData });
  try {
    const answers: unknown[] = [];
    for (const [i, schema] of schemas.entries()) {
      answers.push(
        await new Promise((resolve, reject) => {
          const onMessage = (m: { id?: number }) => {
            if (m.id !== i) return;
            w.off('message', onMessage).off('error', reject);
            resolve(m);
          };
          w.on('message', onMessage).once('error', reject);
          w.postMessage({ id: i, op: 'compile', hash: `h${i}`, text: JSON.stringify(schema), maxErrors: 20 });
        }),
      );
    }
    return answers;
  } finally {
    await w.terminate();
  }
}

const SCHEMAS = [
  { type: 'object', properties: { num1: { type: 'number' } }, required: ['num1'] },
  { $schema: 'http://json-schema.org/draft-07/schema#', type: 'string', minLength: 1 },
  { $schema: 'http://json-schema.org/draft-07/schema', type: 'array', items: [{ type: 'string' }] },
  { type: 'no-such-type' },
  { type: 'object', properties: { a: { minimum: 'ten' } } },
  { required: 'num1' },
  { properties: { a: { items: [{ type: 'bogus' }] } } },
  { $schema: 'http://json-schema.org/draft-07/schema#', enum: 'x' },
  { $schema: 5 },
  { $schema: ['http://json-schema.org/draft-07/schema'] },
  { $schema: 'https://json-schema.org/draft-07/schema' },
  { $schema: 'http://json-schema.org/draft-04/schema#', type: 'object', required: [] },
  { definitions: { x: { type: ['string', 'nope'] } } },
];

describe("the schema thread's draft-07 meta-schema check, generated at build time", () => {
  it('is in the build and refuses what ajv\'s meta-schema refuses', () => {
    const deps = require(bundle) as { meta07?: () => ((s: unknown) => boolean) & { errors?: { instancePath: string; message: string }[] } };
    expect(typeof deps.meta07).toBe('function');
    const v = deps.meta07!();
    expect(v({ type: 'object' })).toBe(true);
    expect(v({ type: 'object', properties: { a: { minimum: 'ten' } } })).toBe(false);
    expect(v.errors?.[0]).toMatchObject({ instancePath: '/properties/a/minimum', message: 'must be number' });
  });

  it('gives every schema the verdict and the message ajv compiling its meta-schema gives', async () => {
    const [built, plain] = await Promise.all([compileAll({ bundle }, SCHEMAS), compileAll(FROM_NODE_MODULES, SCHEMAS)]);
    expect(built).toEqual(plain);
    // The list holds both kinds, so the comparison means something.
    expect(built.filter((a) => 'compileError' in (a as object)).length).toBeGreaterThan(5);
    expect(built.filter((a) => (a as { errors?: unknown[] }).errors?.length === 0).length).toBe(3);
    expect(built[4]).toEqual({ id: 4, compileError: 'schema is invalid: data/properties/a/minimum must be number' });
  });
});
