// AppArmor enforcement where the kernel has it: the VM's Debian kernel enables AppArmor by default
// (CONFIG_SECURITY_APPARMOR=y, CONFIG_LSM names apparmor), the build machines' kernel does not.
// pawl loads its generated profile (apparmor_parser from the host's /, shared into the guest) and
// the sandboxed program runs under it: /proc/self/attr/current names it, and a socket the
// profile denies (inet in network mode none) fails with EACCES, which the same run without the
// profile creates.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { DIST, NOTHING_LEFT, leftovers, pawl, testHost } from './lib.mjs';

const host = testHost('apparmor');
const { execProgram, resolvePolicy } = pawl;
const { apparmorProfile } = await import(join(DIST, 'lsm', 'apparmor', 'index.js'));

const PROGRAM = `
const fs = require('fs');
let label; try { label = fs.readFileSync('/proc/self/attr/current', 'utf8').trim(); } catch (e) { label = e.code; }
const s = require('dgram').createSocket('udp4');
s.on('error', (e) => { console.log(JSON.stringify({ label, inet: e.code })); process.exit(0); });
s.bind(0, () => { console.log(JSON.stringify({ label, inet: 'created' })); s.close(); });`;

const enabled = readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
let mountedSecurityfs = false;

before(() => {
  assert.ok(enabled, 'this VM kernel was expected to enable AppArmor (Debian default)');
  // The guest's init does not mount securityfs; AppArmor's interface lives there.
  if (!existsSync('/sys/kernel/security/apparmor')) {
    execFileSync('mount', ['-t', 'securityfs', 'securityfs', '/sys/kernel/security']);
    mountedSecurityfs = true;
  }
});

after(async () => {
  if (mountedSecurityfs) execFileSync('umount', ['/sys/kernel/security']);
  assert.deepEqual(await leftovers(host), NOTHING_LEFT);
});

async function probe(policy) {
  const r = await execProgram(['/usr/bin/node', '-e', PROGRAM], { policy: { ...policy, resources: { cpuPercent: 100 } }, host });
  assert.equal(r.status, 'succeeded', JSON.stringify({ error: r.error, stderr: r.stderr }));
  return { ...JSON.parse(r.stdout.trim()), degraded: r.degraded };
}

describe('AppArmor applied (VM kernel with AppArmor)', () => {
  for (const runtime of ['runc', 'crun', 'bwrap']) {
    it(`${runtime}: the program runs under the generated profile, which denies what the sandbox alone allows`, async (t) => {
      const without = await probe({ runtime });
      t.diagnostic(`without: ${JSON.stringify(without)}`);
      assert.equal(without.inet, 'created');
      assert.equal(without.label, 'unconfined');
      const policy = { runtime, security: { apparmor: 'required' } };
      const name = apparmorProfile(resolvePolicy({ overrides: policy })).name;
      const confined = await probe(policy);
      t.diagnostic(`with security.apparmor required: ${JSON.stringify(confined)}`);
      // bwrap: the program's profile is stacked on bwrap's set-up profile (no_new_privs allows only
      // that); the kernel prints the stack sorted.
      assert.equal(confined.label, runtime === 'bwrap' ? `${name}//&${name}-bwrap (enforce)` : `${name} (enforce)`);
      assert.equal(confined.inet, 'EACCES');
      assert.deepEqual(confined.degraded, []);
      assert.match(readFileSync('/sys/kernel/security/apparmor/profiles', 'utf8'), new RegExp(`^${name} \\(enforce\\)$`, 'm'));
    });
  }
});
