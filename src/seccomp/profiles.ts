// pawl's shipped profiles, one per trust level (native-profiles/, written by its generate.mjs).
// They are loaded through the same schema as a user's profile: no second code path.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TrustLevel } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { SeccompProfile } from './schema.js';

// Two levels up from src/seccomp/ or dist/seccomp/: the package root.
const DIR = new URL('../../native-profiles/', import.meta.url);

export const shippedProfileName = (level: TrustLevel) => `pawl-${level}`;
export const shippedProfilePath = (level: TrustLevel) => fileURLToPath(new URL(`${shippedProfileName(level)}.json`, DIR));

const loaded = new Map<TrustLevel, SeccompProfile>();

export function shippedProfile(level: TrustLevel): SeccompProfile {
  let p = loaded.get(level);
  if (!p) {
    const path = shippedProfilePath(level);
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new PawlError('RuntimeError', `pawl's seccomp profile ${path} cannot be read: ${(e as Error).message}`);
    }
    p = SeccompProfile.parse(doc);
    loaded.set(level, p);
  }
  return p;
}
