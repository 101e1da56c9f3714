// A caller's "policy" may only make a run stricter than the service's: every loosening is
// refused with a 403 naming the field, malformed fields with a 422.
import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import { applyCallerPolicy, parseCallerPolicy } from '../../src/service/caller-policy.js';
import { ApiError } from '../../src/service/errors.js';

const base = resolvePolicy({ trustLevel: 'limited', overrides: { env: { SERVICE: '1' }, network: { mode: 'restricted', allowedHosts: ['example.com'] } } });
const apply = (raw: unknown) => applyCallerPolicy(base, parseCallerPolicy(raw));
const refused = (raw: unknown): ApiError => {
  try {
    apply(raw);
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error(`not refused: ${JSON.stringify(raw)}`);
};

describe('caller policy', () => {
  it('lowers limits', () => {
    const p = apply({ resources: { memory: '32MB', wallTime: '5s', processes: 2 } });
    expect(p.resources).toMatchObject({ memory: 32 * 1024 ** 2, wallTime: 5000, processes: 2 });
    expect(p.resources.cpuPercent).toBe(base.resources.cpuPercent);
    // /tmp (a tmpfs counted as memory) follows a memory limit lowered below it.
    expect(p.resources.tmpSize).toBe(16 * 1024 ** 2);
  });

  it('refuses a higher limit instead of clamping it', () => {
    expect(refused({ resources: { memory: '1GB' } })).toMatchObject({ status: 403, code: 'policy_forbidden', message: expect.stringMatching(/resources\.memory.*above the service's limit/) });
  });

  it('takes a stricter trust level with its preset limits, and refuses a looser one', () => {
    const p = apply({ trustLevel: 'untrusted' });
    expect(p.trustLevel).toBe('untrusted');
    expect(p.resources.memory).toBe(64 * 1024 ** 2);
    expect(refused({ trustLevel: 'trusted' })).toMatchObject({ status: 403, message: expect.stringMatching(/trustLevel.*looser/) });
  });

  it('allows network "none" only', () => {
    expect(apply({ network: { mode: 'none' } }).network).toMatchObject({ mode: 'none', allowedHosts: [] });
    expect(apply({ network: { mode: 'restricted' } }).network).toEqual(base.network);
    expect(refused({ network: { mode: 'full' } })).toMatchObject({ status: 403, message: expect.stringMatching(/network\.mode/) });
    expect(refused({ network: { mode: 'none', allowedHosts: ['evil.com'] } })).toMatchObject({ status: 422 });
  });

  it('adds env variables but never replaces the service\'s', () => {
    expect(apply({ env: { MINE: 'x' } }).env).toEqual({ SERVICE: '1', MINE: 'x' });
    expect(refused({ env: { SERVICE: '0' } })).toMatchObject({ status: 403, message: expect.stringMatching(/SERVICE is set by the service/) });
    // Nor the ones every sandbox gets (PWD is overwritten by the layout anyway: refused, not ignored).
    for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'PWD']) expect(refused({ env: { [name]: '/x' } })).toMatchObject({ status: 403, code: 'policy_forbidden' });
  });

  it.each(['runtime', 'filesystem', 'security', 'storage', 'allowDegraded'])('refuses the operator field %s with 403', (field) => {
    expect(refused({ [field]: {} })).toMatchObject({ status: 403, code: 'policy_forbidden', message: expect.stringContaining(`policy.${field}`) });
  });

  it('refuses unknown and malformed fields with 422', () => {
    expect(refused({ bogus: 1 })).toMatchObject({ status: 422, code: 'invalid_policy' });
    expect(refused({ resources: { memory: '12XB' } })).toMatchObject({ status: 422, message: expect.stringMatching(/invalid size/) });
    expect(refused({ resources: { diskReadBps: 1 } })).toMatchObject({ status: 422 });
    expect(refused('loose')).toMatchObject({ status: 422 });
  });
});
