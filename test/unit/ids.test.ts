// Host ids (issue 10.9): the range is checked against the account database and subordinate id
// ranges, and a run's two ids (its own and its partner) never collide with another live run's.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostConfig } from '../../src/config/host.js';
import { assertHostIds, hostIdConflicts, partnerId, pickHostId, releaseHostId } from '../../src/runtime/ids.js';

const none = async () => '';

describe('host id range checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pawl-ids-'));
  const subuid = join(dir, 'subuid');
  const subgid = join(dir, 'subgid');
  writeFileSync(subuid, 'alice:100000:65536\nbob:630000:65536\n');
  writeFileSync(subgid, 'alice:100000:65536\n');

  it('finds a subuid range that overlaps, and nothing in a free range', async () => {
    expect(await hostIdConflicts(600_000, 65_536, { passwd: none, group: none, subuid, subgid })).toEqual([`${subuid} range of bob (630000-695535)`]);
    expect(await hostIdConflicts(700_000, 65_536, { passwd: none, group: none, subuid, subgid })).toEqual([]);
    // Touching, not overlapping: 600000..665535 ends where a range starting at 665536 begins.
    writeFileSync(join(dir, 'edge'), 'carol:665536:10\ncarol:599990:10\n');
    expect(await hostIdConflicts(600_000, 65_536, { passwd: none, group: none, subuid: join(dir, 'edge'), subgid })).toEqual([]);
  });

  it('finds accounts and groups in the range', async () => {
    const passwd = async () => 'root:x:0:0::/root:/bin/sh\nmallory:x:612345:612345::/home/m:/bin/sh\n';
    const group = async () => 'staff:x:50:\nlabs:x:665535:\n';
    expect(await hostIdConflicts(600_000, 65_536, { passwd, group, subuid: join(dir, 'none'), subgid: join(dir, 'none') })).toEqual([
      'user mallory (uid 612345)',
      'group labs (gid 665535)',
    ]);
  });

  it('refuses an overlapping range by name, with what to do', async () => {
    await expect(assertHostIds(hostConfig(), { passwd: none, group: none, subuid, subgid })).rejects.toThrow(
      /host id range 600000-665535 overlaps .*bob \(630000-695535\): set a free range with PAWL_HOST_IDS=BASE:COUNT/,
    );
    await expect(assertHostIds(hostConfig({ hostIdBase: 700_000 }), { passwd: none, group: none, subuid, subgid })).resolves.toBeUndefined();
  });

  it('PAWL_HOST_IDS sets the range', () => {
    process.env.PAWL_HOST_IDS = '700000:1000';
    try {
      expect(hostConfig()).toMatchObject({ hostIdBase: 700_000, hostIdCount: 1000 });
      process.env.PAWL_HOST_IDS = '700000';
      expect(() => hostConfig()).toThrow(/PAWL_HOST_IDS must be BASE:COUNT/);
      // (uid_t)-1 is "unchanged" to the kernel: a range reaching it ran sandboxes as host root.
      for (const v of ['4294967295:1', '4294967294:2', '4294967000:65536', '2147483000:1000']) {
        process.env.PAWL_HOST_IDS = v;
        expect(() => hostConfig()).toThrow(/hostIdCount: the host id range \(hostIdBase \+ hostIdCount\) must end below 2147483648/);
      }
    } finally {
      delete process.env.PAWL_HOST_IDS;
    }
  });
});

describe('host id pairs', () => {
  it('pairs ids from the base, whatever its parity', () => {
    const odd = hostConfig({ hostIdBase: 600_001, hostIdCount: 4 });
    expect([600_001, 600_002, 600_003, 600_004].map((id) => partnerId(odd, id))).toEqual([600_002, 600_001, 600_004, 600_003]);
  });

  it.runIf(process.geteuid?.() === 0)('two live runs never share an id or a partner, with an odd base', () => {
    const host = hostConfig({ hostIdBase: 600_001, hostIdCount: 4 });
    for (let i = 0; i < 200; i++) {
      const a = pickHostId(host)!;
      const b = pickHostId(host)!;
      const ids = [a, partnerId(host, a), b, partnerId(host, b)];
      expect(new Set(ids).size, `${ids}`).toBe(4);
      expect(ids.every((id) => id >= 600_001 && id <= 600_004)).toBe(true);
      releaseHostId(a);
      releaseHostId(b);
    }
  });
});
