import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize } from '../../src/config/units.js';

describe('sizes', () => {
  it.each([
    ['128MB', 128 * 1024 ** 2],
    ['64mb', 64 * 1024 ** 2],
    ['1.5GB', 1.5 * 1024 ** 3],
    ['512KiB', 512 * 1024],
    ['100', 100],
    [4096, 4096],
  ])('%s is %d bytes', (input, bytes) => expect(parseSize(input)).toBe(bytes));

  it.each(['12XB', '', 'MB', '-1MB', 'ten', '1e3'])('refuses %j with a message naming it', (input) => {
    expect(() => parseSize(input)).toThrow(/invalid size/);
  });
});

describe('durations', () => {
  it.each([
    ['30s', 30_000],
    ['500ms', 500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['250', 250],
    [1000, 1000],
  ])('%s is %d ms', (input, ms) => expect(parseDuration(input)).toBe(ms));

  it('refuses a negative duration', () => expect(() => parseDuration('-5s')).toThrow(/must not be negative/));
  it.each(['5 parsecs', 's', 'soon'])('refuses %j', (input) => expect(() => parseDuration(input)).toThrow(/invalid duration/));
});
