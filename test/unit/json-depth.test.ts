// The depth check every task reply and service body goes through (a reply nests at most 100 deep).
import { describe, expect, it } from 'vitest';
import { jsonDepth } from '../../src/util/json-depth.js';

describe('jsonDepth', () => {
  it('counts containers, not values', () => {
    expect([jsonDepth(1), jsonDepth(null), jsonDepth('x'), jsonDepth([]), jsonDepth({}), jsonDepth([1, 2, [3]]), jsonDepth({ a: { b: [{}] } })]).toEqual([0, 0, 0, 1, 1, 2, 4]);
    expect(jsonDepth(JSON.parse('{"__proto__": {"a": []}}'))).toBe(3);
  });

  it('walks deep values without recursion, and stops once past stopAt', () => {
    let deep: unknown = 0;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(jsonDepth(deep)).toBe(200_000);
    expect(jsonDepth(deep, 100)).toBe(101);
  });

  it('a wide reply of millions of numbers is one container deep', () => {
    const wide = JSON.parse(`[${'0,'.repeat(2_000_000)}0]`) as unknown;
    expect(jsonDepth({ output: wide })).toBe(2);
  });
});
