// pawl's C programs are built by gcc as root: from the source they claim to be built from, with
// nothing of the caller's environment, and only a binary no one else could have replaced is run.
import { describe, expect, it, vi } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

/** staticBinary as a fresh process has it (it remembers its answers per process). */
async function freshStaticBinary(source: string, binary: string): Promise<string> {
  vi.resetModules();
  const m = await import('../../src/util/static-binary.js');
  return m.staticBinary(source, binary, 'test program');
}

const hasGcc = existsSync('/usr/bin/gcc');
const program = (word: string) => `#include <stdio.h>\nint main(void) { puts("${word}"); return 0; }\n`;

describe.runIf(hasGcc)('static binaries', () => {
  it('builds from the source, and again when the source changes, whatever the mtimes say', async () => {
    const d = mkdtempSync(join(tmpdir(), 'pawl-static-'));
    const src = join(d, 'p.c');
    writeFileSync(src, program('one'));
    const bin = await freshStaticBinary(src, join(d, 'p'));
    expect(execFileSync(bin, { encoding: 'utf8' })).toBe('one\n');
    // New source, binary newer than it (a copy that kept no mtimes, a 9p mount's cached attributes).
    writeFileSync(src, program('two'));
    const later = new Date(Date.now() + 60_000);
    utimesSync(bin, later, later);
    expect(execFileSync(await freshStaticBinary(src, bin), { encoding: 'utf8' })).toBe('two\n');
  });

  it('gives gcc none of the caller\'s environment (COMPILER_PATH would choose the assembler root runs)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'pawl-static-'));
    const evil = join(d, 'evil');
    const marker = join(d, 'ran');
    mkdirSync(evil);
    writeFileSync(join(evil, 'as'), `#!/bin/sh\ntouch ${marker}\nexit 1\n`);
    chmodSync(join(evil, 'as'), 0o755);
    const src = join(d, 'p.c');
    writeFileSync(src, program('clean'));
    const saved = process.env.COMPILER_PATH;
    process.env.COMPILER_PATH = evil;
    try {
      const bin = await freshStaticBinary(src, join(d, 'p'));
      expect(execFileSync(bin, { encoding: 'utf8' })).toBe('clean\n');
    } finally {
      if (saved === undefined) delete process.env.COMPILER_PATH;
      else process.env.COMPILER_PATH = saved;
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a binary others could have replaced, instead of running it', async () => {
    const d = mkdtempSync(join(tmpdir(), 'pawl-static-'));
    const src = join(d, 'p.c');
    writeFileSync(src, program('mine'));
    const bin = join(d, 'p');
    await freshStaticBinary(src, bin);
    chmodSync(bin, 0o777);
    await expect(freshStaticBinary(src, bin)).rejects.toThrow(/is not a regular file of root's or this user's that no one else can write/);
    expect(readFileSync(`${bin}.source`, 'utf8')).toMatch(/^[0-9a-f]{64}$/);
  });
});
