// The harness reply is untrusted: the task can write fd 4 itself.
import { describe, expect, it } from 'vitest';
import { parseReply } from '../../src/task/reply.js';

describe('parseReply', () => {
  it('accepts what the harness sends', () => {
    expect(parseReply('{"ok":true,"output":{"sum":3},"violations":[]}')).toEqual({ reply: { ok: true, output: { sum: 3 }, violations: [] } });
    const err = '{"ok":false,"stage":"run","error":{"name":"Error","message":"m"},"violations":[{"kind":"network","detail":"x"}]}';
    expect(parseReply(err)).toHaveProperty('reply.error.message', 'm');
  });

  it.each([
    ['{"ok":false}', /malformed/],
    ['{"ok":false,"stage":"run","violations":[]}', /malformed/],
    ['{"ok":true,"output":1,"violations":5}', /malformed/],
    ['{"ok":true,"output":1,"violations":["abc"]}', /malformed/],
    ['{"ok":"yes"}', /malformed/],
    ['not json', /not valid JSON/],
  ])('refuses %s', (text, problem) => {
    expect(parseReply(text)).toEqual({ problem: expect.stringMatching(problem) });
  });

  it('refuses output nested too deep to serialise again', () => {
    const deep = `{"ok":true,"violations":[],"output":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    expect(parseReply(deep)).toEqual({ problem: expect.stringMatching(/nests deeper than 100 levels/) });
  });
});
