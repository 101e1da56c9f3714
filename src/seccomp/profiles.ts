// Where a run's profile comes from: pawl's shipped profile for the trust level
// (native-profiles/, written by its generate.mjs), a file, or the policy itself. All go through
// the same schema: the shipped profiles are loaded exactly as a user's would be.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Policy, TrustLevel } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { SeccompProfile } from '../config/seccomp.js';

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

export interface ProfileSource {
  /** "pawl-<level>", the file's path, or "inline". */
  name: string;
  /** Where the profile was read from (none when inline). */
  path?: string;
  profile: SeccompProfile;
}

function parseProfile(doc: unknown, where: string): SeccompProfile {
  const r = SeccompProfile.safeParse(doc);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
  throw new PawlError('InvalidPolicy', `invalid seccomp profile ${where}: ${issues.join('; ')}`);
}

export async function readProfileFile(path: string): Promise<SeccompProfile> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new PawlError('InvalidPolicy', `cannot load seccomp profile ${path}: ${(e as Error).message}`);
  }
  return parseProfile(doc, path);
}

/** The profile a policy asks for, or null for "none" (refused where a filter is required). */
export async function profileSource(policy: Policy): Promise<ProfileSource | null> {
  const p = policy.security.seccomp.profile;
  // The policy schema refuses "none" where a filter is required (config/policy.ts FILTER_REQUIRED).
  if (p === 'none') return null;
  if (p === 'trust-level') {
    const level = policy.trustLevel;
    return { name: shippedProfileName(level), path: shippedProfilePath(level), profile: shippedProfile(level) };
  }
  if (typeof p === 'string') return { name: p, path: p, profile: await readProfileFile(p) };
  return { name: 'inline', profile: p };
}
