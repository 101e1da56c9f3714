/**
 * The nesting depth of a JSON value, without recursion: a task's output may nest deeply enough to
 * overflow the stack. Stops counting once past `stopAt` (the caller only needs to know that).
 * Only containers are stacked, and arrays are walked by index: a 16 MiB reply of 8 million
 * numbers once cost ~780 MB and 4 s here as a pair per element and a copy of every array.
 */
export function jsonDepth(value: unknown, stopAt = Infinity): number {
  if (typeof value !== 'object' || value === null) return 0;
  let max = 0;
  const values: object[] = [value];
  const depths: number[] = [1];
  while (values.length) {
    const v = values.pop()!;
    const d = depths.pop()!;
    if (d > max) max = d;
    if (max > stopAt) return max;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const child: unknown = v[i];
        if (typeof child === 'object' && child !== null) (values.push(child), depths.push(d + 1));
      }
    } else {
      for (const key in v) {
        if (!Object.hasOwn(v, key)) continue;
        const child: unknown = (v as Record<string, unknown>)[key];
        if (typeof child === 'object' && child !== null) (values.push(child), depths.push(d + 1));
      }
    }
  }
  return max;
}
