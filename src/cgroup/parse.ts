// Parsers for the kernel's cgroup file formats (Documentation/admin-guide/cgroup-v2.rst "Format").

/** "key value" lines (memory.events, cpu.stat, pids.events, v1 memory.oom_control) as a lookup. */
export function flatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out.set(key, Number(value));
  }
  return out;
}

export function keyedValue(text: string, key: string): number {
  return flatKeyed(text).get(key) ?? 0;
}
