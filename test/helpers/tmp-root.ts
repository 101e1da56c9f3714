// vitest globalSetup: every test's temporary files go under one directory made for this run
// (TMPDIR, which os.tmpdir() reads, is inherited by the test workers), removed at the end, so a
// test that forgets its own clean-up leaves nothing in the host's /tmp.
import { chmodSync, mkdtempSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'pawl-tests-'));
  // As /tmp itself: sandboxes run as unprivileged host ids and must reach what tests bind in.
  chmodSync(root, 0o1777);
  process.env.TMPDIR = root;
  // --one-file-system: a mount a failed test left inside is not emptied through.
  return () => execFileSync('rm', ['-rf', '--one-file-system', root]);
}
