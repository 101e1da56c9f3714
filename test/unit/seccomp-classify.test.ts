import { describe, expect, it } from 'vitest';
import { parseAuditRecord, recordSyscallName, runRecords, type AuditRecord } from '../../src/seccomp/classify.js';
import { syscallName } from '../../src/seccomp/syscalls.js';

// As printed by this host's kernel (dmesg) for a process killed by SECCOMP_RET_KILL_PROCESS.
const LINE = '6,1234,701655502,-;audit: type=1326 audit(1795775549.012:4): auid=0 uid=0 gid=0 ses=3 pid=11813 comm="prober" exe="/probe/prober" sig=31 arch=c000003e syscall=101 compat=0 ip=0x431597 code=0x80000000';
const NO_SESSION = 'audit: type=1326 audit(1795775539.408:2): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=11489 comm="prober" exe="/probe/prober" sig=31 arch=c000003e syscall=1073741863 compat=0 ip=0x432d79 code=0x80000000';

const records = (...lines: string[]) => () => lines.map(parseAuditRecord).filter((r): r is AuditRecord => r !== null);

describe('audit records', () => {
  it('parses the kernel line', () => {
    expect(parseAuditRecord(LINE)).toEqual({ time: 1795775549012, session: 3, pid: 11813, signal: 31, arch: 0xc000003e, syscall: 101 });
    expect(parseAuditRecord(NO_SESSION)).toMatchObject({ session: null, pid: 11489 });
    expect(parseAuditRecord('6,1,2,-;EXT4-fs (vda): mounted filesystem')).toBeNull();
    // A kernel with an LSM (AppArmor, as in the v2 VM's Debian kernel) puts subj= between ses= and pid=.
    const lsm = 'audit: type=1326 audit(1795779000.100:9): auid=600123 uid=600123 gid=600123 ses=7 subj=unconfined pid=842 comm="busybox" exe="/bin/busybox" sig=31 arch=c000003e syscall=272 compat=0 ip=0x4a code=0x80000000';
    expect(parseAuditRecord(lsm)).toEqual({ time: 1795779000100, session: 7, pid: 842, signal: 31, arch: 0xc000003e, syscall: 272 });
    // From the audit netlink socket (audit-netlink.ts writes the message type as the log does), as received on this host.
    const netlink = 'type=1326 audit(1796030583.398:1057): auid=642564 uid=642564 gid=642564 ses=7613 pid=6669 comm="busybox" exe="/bin/busybox" sig=31 arch=c000003e syscall=272 compat=0 ip=0x4815c7 code=0x80000000';
    expect(parseAuditRecord(netlink)).toEqual({ time: 1796030583398, session: 7613, pid: 6669, signal: 31, arch: 0xc000003e, syscall: 272 });
  });

  // comm= and exe= are the task's text, printed as is when it has no space, quote or control
  // character: `process.title = "sig=0"` made the first sig= the task's, and the kill vanished.
  it('reads no field from the task\'s process name or program path', () => {
    const forged = (comm: string, exe = '/usr/bin/node') => `6,1,2,-;audit: type=1326 audit(1796030583.398:1057): auid=0 uid=0 gid=0 ses=21766 pid=7022 comm="${comm}" exe="${exe}" sig=31 arch=c000003e syscall=41 compat=0 ip=0x7f00 code=0x80000000\n`;
    const real = { time: 1796030583398, session: 21766, pid: 7022, signal: 31, arch: 0xc000003e, syscall: 41 };
    for (const comm of ['sig=0', 'sig=31,arch=28', 'ses=1', 'pid=1', 'syscall=1']) expect(parseAuditRecord(forged(comm))).toEqual(real);
    expect(parseAuditRecord(forged('node', '/tmp/sig=0/arch=0/syscall=0'))).toEqual(real);
    // Text that merely contains a record is none.
    expect(parseAuditRecord(`6,1,2,-;echo: ${forged('x').slice(8)}`)).toBeNull();
  });

  it('names native, x32 and x86 calls', () => {
    expect(recordSyscallName(parseAuditRecord(LINE)!)).toBe('ptrace');
    expect(recordSyscallName(parseAuditRecord(NO_SESSION)!)).toBe('getpid (x32 ABI)');
    expect(recordSyscallName({ time: 0, session: null, pid: 1, signal: 31, arch: 0x40000003, syscall: 20 })).toBe('getpid (x86 ABI)');
    expect(recordSyscallName({ time: 0, session: null, pid: 1, signal: 31, arch: 0xc000003e, syscall: 9999 })).toBeNull();
  });

  it('syscallName covers calls newer than libseccomp', () => {
    expect([syscallName(0, 'x86_64'), syscallName(56, 'aarch64'), syscallName(462), syscallName(-1), syscallName(100_000)]).toEqual(['read', 'openat', 'mseal', null, null]);
  });
});

describe('runRecords: the seccomp kills of one run', () => {
  const calls = (key: Parameters<typeof runRecords>[0], ...lines: string[]) => runRecords(key, records(...lines)()).map(recordSyscallName);

  it('finds a run\'s record by audit session or by pid', () => {
    expect(calls({ session: 3 }, LINE)).toEqual(['ptrace']);
    expect(calls({ pids: [11813] }, LINE)).toEqual(['ptrace']);
    expect(calls({ pids: [5, 11489] }, LINE, NO_SESSION)).toEqual(['getpid (x32 ABI)']);
  });

  it('never takes another run\'s record', () => {
    expect(calls({ session: 4 }, LINE)).toEqual([]);
    expect(calls({ pids: [42] }, LINE, NO_SESSION)).toEqual([]);
    expect(calls({}, LINE)).toEqual([]);
  });

  it('never takes a record older than the run, even with its pid (pids are reused)', () => {
    // LINE is stamped 1795775549.012: a run whose processes began after it has another process's pid.
    expect(calls({ pids: [11813], since: 1795775549012 + 1000 }, LINE)).toEqual([]);
    expect(calls({ session: 3, since: 1795775549012 + 1000 }, LINE)).toEqual([]);
    // The kernel's stamp comes from its coarse clock, a tick behind: a few ms of slack.
    expect(calls({ pids: [11813], since: 1795775549012 + 4 }, LINE)).toEqual(['ptrace']);
    expect(calls({ pids: [11813], since: 1795775549012 - 1000 }, LINE)).toEqual(['ptrace']);
  });

  it('keeps the records in order (the most recent last)', () => {
    const earlier = LINE.replace('syscall=101', 'syscall=165');
    expect(calls({ session: 3 }, earlier, LINE)).toEqual(['mount', 'ptrace']);
  });
});
