// The shipped template (native-profiles/apparmor/pawl.apparmor.in) and its per-trust-level parts
// (levels.json), read once. They are data beside the seccomp profiles, so an operator can read
// what every profile holds without reading the generator.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../../config/host.js';
import { TrustLevel } from '../../config/policy.js';
import { PawlError } from '../../errors.js';

export const TEMPLATE_DIR = join(PACKAGE_ROOT, 'native-profiles', 'apparmor');

const LevelPart = z.strictObject({
  /** The keyword of every deny rule: "audit deny" also logs each refused access. */
  deny: z.enum(['deny', 'audit deny']),
  /** Programs on the operator's read-only binds may be run (ix) and mapped as code (m). */
  execReadOnlyBinds: z.boolean(),
});
export type LevelPart = z.infer<typeof LevelPart>;

const Levels = z.object({ levels: z.record(TrustLevel, LevelPart) });

export interface Template {
  text: string;
  levels: Record<TrustLevel, LevelPart>;
}

let loaded: Template | null = null;

function read(name: string): string {
  const path = join(TEMPLATE_DIR, name);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new PawlError('RuntimeError', `pawl's AppArmor template ${path} cannot be read: ${(e as Error).message}`);
  }
}

export function template(): Template {
  if (loaded) return loaded;
  let doc: unknown;
  try {
    doc = JSON.parse(read('levels.json'));
  } catch (e) {
    if (e instanceof PawlError) throw e;
    throw new PawlError('RuntimeError', `${join(TEMPLATE_DIR, 'levels.json')} is not JSON: ${(e as Error).message}`);
  }
  const levels = Levels.safeParse(doc);
  if (!levels.success) throw new PawlError('RuntimeError', `${join(TEMPLATE_DIR, 'levels.json')} is malformed: ${levels.error.message}`);
  return (loaded = { text: read('pawl.apparmor.in'), levels: levels.data.levels });
}
