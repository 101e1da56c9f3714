// bwrap's set-up profile for one sandbox profile (native-profiles/apparmor/pawl-bwrap-setup.apparmor.in):
// bwrap runs under it (aa-exec) and its program enters the sandbox profile on exec.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEMPLATE_DIR } from './template.js';

let text: string | null = null;

export const setupName = (sandboxProfile: string) => `${sandboxProfile}-bwrap`;

export function bwrapSetupProfile(sandboxProfile: string): { name: string; text: string } {
  text ??= readFileSync(join(TEMPLATE_DIR, 'pawl-bwrap-setup.apparmor.in'), 'utf8');
  return { name: setupName(sandboxProfile), text: text.replaceAll('{{NAME}}', sandboxProfile) };
}
