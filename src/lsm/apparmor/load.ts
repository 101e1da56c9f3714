// Loading generated profiles into the kernel with apparmor_parser. A profile's name is the hash
// of its rules (name.ts), so a name the kernel already lists holds exactly these rules: each
// distinct profile is loaded once per boot, and a run whose profile is loaded pays nothing.
import { execFile } from 'node:child_process';
import { PawlError } from '../../errors.js';
import { APPARMOR_PARSER, forgetLsmHost, lsmHost } from '../host.js';

const loading = new Map<string, Promise<void>>();

/** Load `text` (one or more profiles) unless every name in `names` is loaded already. */
export function loadProfiles(names: string[], text: string): Promise<void> {
  if (names.every((n) => lsmHost().apparmor.loaded.includes(n))) return Promise.resolve();
  const key = names.join(' ');
  let p = loading.get(key);
  if (!p) {
    p = new Promise<void>((resolve, reject) => {
      // -r: add or replace; -W: also write the compiled form to the parser's cache.
      const child = execFile(APPARMOR_PARSER, ['-r', '-W'], { env: {}, timeout: 60_000 }, (err, _out, stderr) => {
        forgetLsmHost();
        if (err) reject(new PawlError('HostUnsupported', `apparmor_parser could not load profile ${names.join(', ')}: ${(stderr || err.message).trim()}`));
        else resolve();
      });
      child.stdin!.end(text);
    });
    loading.set(key, p);
    p.catch(() => loading.delete(key));
  }
  return p;
}
