// What the probe fixture (test/fixtures/tasks/probe) must see in every sandbox, whatever runs it.
import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import type { RunResult } from '../../src/index.js';

export function expectLockedDown(r: RunResult): void {
  expect(r.status).toBe('succeeded');
  const o = r.output as Record<string, any>;
  expect([o.uid, o.gid]).toEqual([1000, 1000]);
  expect(o.capEff).toBe('0000000000000000');
  expect(o.capBnd).toBe('0000000000000000');
  expect(o.noNewPrivs).toBe('1');
  expect(o.shadow.ok).toBe(false);
  // Whatever the host's /root holds, the sandbox's /root is missing or empty.
  expect(o.hostRoot.ok === false || o.hostRoot.value.length === 0).toBe(true);
  for (const w of ['writeEtc', 'writeRoot', 'writeUsr']) expect(o[w]).toEqual({ ok: false, code: 'EROFS' });
  expect(o.writeTmp).toEqual({ ok: true, value: 'x' });
  expect(o.writeWorkspace).toEqual({ ok: true, value: 'x' });
  expect(o.env).toEqual({ PATH: '/usr/bin', HOME: '/workspace', TMPDIR: '/tmp', LANG: 'C.UTF-8', PWD: '/workspace' });
  expect(o.hostname).toBe('pawl');
  expect(existsSync('/etc/pawned')).toBe(false);
}
