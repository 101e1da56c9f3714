// The audit socket's status request: how pawl knows the kernel has sent every queued audit record
// (kauditd sends them asynchronously), so a run's seccomp kills are counted once it has ended
// rather than after a guessed wait. Root only: the request needs CAP_AUDIT_CONTROL.
import { afterAll, expect, it } from 'vitest';
import { drainAuditNetlink, openAuditNetlink, requestAuditStatus, statusReply } from '../../src/seccomp/audit-netlink.js';
import { awaitAuditDelivery, closeSeccompRecords } from '../../src/seccomp/classify.js';

const isRoot = process.geteuid?.() === 0;
afterAll(() => closeSeccompRecords());

it.runIf(isRoot)('the kernel answers a status request on the audit log socket with the length of its queue', async () => {
  expect(openAuditNetlink()).toBe(true);
  const n = requestAuditStatus();
  expect(n).not.toBeNull();
  let backlog: number | null | undefined;
  for (let i = 0; i < 200 && backlog === undefined; i++) {
    drainAuditNetlink();
    backlog = statusReply(n!);
    if (backlog === undefined) await new Promise((r) => setTimeout(r, 5));
  }
  expect(typeof backlog).toBe('number');
  expect(statusReply(n!)).toBeUndefined(); // each reply is taken once
});

it.runIf(isRoot)('awaitAuditDelivery sees the queue empty and says so (false would fall back to timed waits)', async () => {
  expect(await awaitAuditDelivery(2000)).toBe(true);
});

it.runIf(!isRoot)('without root there is no status to ask: awaitAuditDelivery says it cannot know', async () => {
  expect(await awaitAuditDelivery(200)).toBe(false);
});
