// The shipped Prometheus alert rules load in promtool, and each alert fires on the series it is
// for (promtool test rules). Without promtool (apt package "prometheus") the test is skipped
// on a developer machine, never in CI.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DIR = join(import.meta.dirname, '..', '..', 'scripts', 'prometheus');
const promtool = await execa('promtool', ['--version'], { reject: false });
const present = promtool.exitCode === 0;
if (!present && process.env.CI) throw new Error('promtool is missing (apt-get install prometheus): CI must check the alert rules');
if (!present) console.warn('alert-rules.test.ts: SKIPPED, promtool is not installed (apt-get install prometheus)');

describe.skipIf(!present)('alert rules', () => {
  it('pass promtool check rules', async () => {
    const r = await execa('promtool', ['check', 'rules', join(DIR, 'pawl-alerts.yml')], { reject: false });
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: 3 rules found/);
    expect(r.exitCode).toBe(0);
  });

  it('fire on the series they are for, and not before (promtool test rules)', async () => {
    const r = await execa('promtool', ['test', 'rules', join(DIR, 'pawl-alerts.test.yml')], { reject: false });
    expect(r.stdout + r.stderr).not.toMatch(/FAILED/);
    expect(r.exitCode).toBe(0);
  });

  it('name only metrics the service exports', () => {
    const rules = readFileSync(join(DIR, 'pawl-alerts.yml'), 'utf8');
    const metrics = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'metrics', 'index.ts'), 'utf8');
    for (const name of new Set(rules.match(/pawl_[a-z_]+/g))) expect(metrics, name).toContain(`'${name}'`);
  });

  it('a broken rule file is caught (the check is not a no-op)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-alerts-'));
    writeFileSync(join(dir, 'bad.yml'), readFileSync(join(DIR, 'pawl-alerts.yml'), 'utf8').replace('> 10', '> > 10'));
    const r = await execa('promtool', ['check', 'rules', join(dir, 'bad.yml')], { reject: false });
    rmSync(dir, { recursive: true, force: true });
    expect(r.exitCode).not.toBe(0);
  });
});
