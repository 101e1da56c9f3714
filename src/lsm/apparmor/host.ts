// Whether this kernel runs AppArmor at all (a profile can be generated anywhere, applied only here).
import { readFileSync } from 'node:fs';

export const APPARMOR_ENABLED_FILE = '/sys/module/apparmor/parameters/enabled';

export function apparmorEnabled(): boolean {
  try {
    return readFileSync(APPARMOR_ENABLED_FILE, 'utf8').trim() === 'Y';
  } catch {
    return false;
  }
}
