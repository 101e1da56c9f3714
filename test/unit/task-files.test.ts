// Issue 10.1, written as the attacks: a task directory whose files are links to a root-only file,
// a linked directory, /dev/zero, a FIFO or a huge file. pawl (usually root) must refuse each as
// InvalidTask, naming the file and the reason, without blocking and without quoting a byte of it.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTask } from '../../src/task/load.js';
import { PawlError } from '../../src/errors.js';

const CANARY = 'CANARY-5e1d0c: root only, never to be read by pawl';
const secretDir = mkdtempSync(join(tmpdir(), 'pawl-canary-'));
chmodSync(secretDir, 0o700);
const canary = join(secretDir, 'secret.txt');
writeFileSync(canary, `${CANARY}\n`, { mode: 0o600 });
writeFileSync(join(secretDir, 'leak.json'), `${CANARY}\n`, { mode: 0o600 });
const made: string[] = [secretDir];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function taskDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pawl-task-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** The load fails as InvalidTask, with `reason` in the message, and the canary nowhere in it. */
async function refused(dir: string, reason: RegExp): Promise<void> {
  const err = await loadTask(dir).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'the task loaded').toBeInstanceOf(Error);
  expect((err as Error).message).not.toContain('CANARY');
  expect((err as PawlError).kind).toBe('InvalidTask');
  expect((err as PawlError).message).toMatch(reason);
}

describe('task files are hostile (issue 10.1)', () => {
  it.each(['main.js', 'metadata.json', 'input.schema.json', 'output.schema.json', 'tests/t.json'])('refuses %s as a link to a root-only file outside the task', async (name) => {
    const dir = taskDir(name === 'main.js' ? {} : { 'main.js': 'function(i) { return i }' });
    mkdirSync(join(dir, 'tests'), { recursive: true });
    symlinkSync(canary, join(dir, name));
    await refused(dir, new RegExp(`${name.replace('.', '\\.')}: a symbolic link`));
  });

  it('refuses meta.yaml and security.yaml as links', async () => {
    const a = taskDir({ 'task.js': 'function main() {}' });
    symlinkSync(canary, join(a, 'meta.yaml'));
    await refused(a, /meta\.yaml: a symbolic link/);
    const b = taskDir({ 'main.js': 'function main() {}' });
    symlinkSync(canary, join(b, 'security.yaml'));
    await refused(b, /security\.yaml: a symbolic link/);
  });

  it('refuses a tests directory that is a link to a directory outside', async () => {
    const dir = taskDir({ 'main.js': 'function(i) { return i }' });
    symlinkSync(secretDir, join(dir, 'tests'));
    await refused(dir, /tests: a symbolic link/);
  });

  it('refuses a file reached through a linked directory on its path', async () => {
    // meta.yaml's entrypoint names lib/run.js, where lib is a link out of the tree.
    const dir = taskDir({ 'meta.yaml': 'entrypoint: lib/secret.txt.js\n' });
    const outside = mkdtempSync(join(tmpdir(), 'pawl-outside-'));
    made.push(outside);
    writeFileSync(join(outside, 'secret.txt.js'), `${CANARY}\n`);
    symlinkSync(outside, join(dir, 'lib'));
    await refused(dir, /lib\/secret\.txt\.js: reached through a symbolic link/);
  });

  it('refuses a link even when it points inside the task (pawl follows no links)', async () => {
    const dir = taskDir({ 'real.js': 'function(i) { return i }' });
    symlinkSync('real.js', join(dir, 'main.js'));
    await refused(dir, /main\.js: a symbolic link/);
  });

  it('refuses a link to /dev/zero without reading it', async () => {
    const dir = taskDir({ 'main.js': 'function(i) { return i }' });
    symlinkSync('/dev/zero', join(dir, 'input.schema.json'));
    await refused(dir, /input\.schema\.json: a symbolic link/);
  });

  it.each(['main.js', 'metadata.json'])('refuses %s as a hard link to a root-only file (same filesystem)', async (name) => {
    const dir = taskDir(name === 'main.js' ? {} : { 'main.js': 'function(i) { return i }' });
    linkSync(canary, join(dir, name));
    await refused(dir, new RegExp(`${name.replace('.', '\\.')}: has \\d+ hard links`));
  });

  it('a path the caller resolved (pawl serve, below a task root) is refused if a link appears on it', async () => {
    const dir = taskDir({ 'main.js': 'function(i) { return i }' });
    await expect(loadTask(dir, { tests: false, resolved: true })).resolves.toMatchObject({ source: 'function(i) { return i }', dir });
    // The checked path's parent swapped for a link (here: a link named like it) after the check.
    const link = `${dir}-link`;
    symlinkSync(dir, link);
    made.push(link);
    const err = await loadTask(link, { tests: false, resolved: true }).then(() => null, (e: unknown) => e);
    expect((err as PawlError).kind).toBe('InvalidTask');
    expect((err as Error).message).toMatch(/changed while it was checked: a link appeared on its path/);
  });

  it('refuses a FIFO without blocking on it', async () => {
    const dir = taskDir({ 'metadata.json': '{}' });
    execFileSync('mkfifo', [join(dir, 'main.js')]);
    await refused(dir, /main\.js: a FIFO, not a regular file/);
  }, 5000);

  it('refuses a device node inside the task without opening it', async () => {
    const dir = taskDir({ 'main.js': 'function(i) { return i }' });
    execFileSync('mknod', [join(dir, 'output.schema.json'), 'c', '1', '5']); // /dev/zero's numbers
    await refused(dir, /output\.schema\.json: a device, not a regular file/);
  });

  it('refuses files over their size cap, and the caps are configurable', async () => {
    const dir = taskDir({ 'main.js': 'function(i) { return i }', 'output.schema.json': `{"type": "object"${' '.repeat(300 * 1024)}}` });
    await refused(dir, /output\.schema\.json: \d+ bytes, over the limit of 262144 bytes/);
    const small = taskDir({ 'main.js': 'function(i) { return i } // twenty-plus bytes' });
    await expect(loadTask(small, { limits: { files: { sourceBytes: 16 } } })).rejects.toThrow(/main\.js: \d+ bytes, over the limit of 16 bytes/);
    expect((await loadTask(small)).source).toContain('function');
  });

  it('bounds the tests together, and a run reads none of them', async () => {
    // Each file under its own cap, together over 8 MiB: 1000 such files took a root supervisor to
    // V8's heap limit (4.3 GB), on every run of the task.
    const big = `{"input": [${Array.from({ length: 1000 }, () => '{}').join(',')}]}`.padEnd(1000 * 1024, ' ');
    const files: Record<string, string> = { 'main.js': 'function(i) { return i }' };
    for (let i = 0; i < 9; i++) files[`tests/t${i}.json`] = big;
    const dir = taskDir(files);
    await refused(dir, /tests\/\*\.json hold more than 8388608 bytes together/);
    const run = await loadTask(dir, { tests: false });
    expect(run.tests).toEqual([]);
    expect((await loadTask(dir, { limits: { files: { testTotalBytes: '16MB' } } })).tests).toHaveLength(9);
  });

  it.each([
    ['metadata.json', `{"label": ${CANARY}}`, /metadata\.json: not valid JSON/],
    ['meta.yaml', `label: [${CANARY}\n  - {`, /meta\.yaml: not valid YAML \(line \d+\)/],
    ['tests/a.json', `[${CANARY}]`, /tests\/a\.json: not valid JSON/],
    ['input.schema.json', `{"type": ${CANARY}`, /input\.schema\.json: not valid JSON/],
  ])('parse errors of %s name the file, never its content', async (name, text, reason) => {
    const files: Record<string, string> = { [name]: text };
    if (name !== 'meta.yaml') files['main.js'] = 'function(i) { return i }';
    else files['task.js'] = 'function main() {}';
    await refused(taskDir(files), reason);
  });

  it('YAML warnings, which quote the text, are not printed', async () => {
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      await loadTask(taskDir({ 'meta.yaml': `label: !strange ${CANARY.split(':')[0]}\n`, 'task.js': 'function main() {}' }));
      expect(warn.mock.calls.flat().join(' ')).not.toContain('CANARY');
    } finally {
      warn.mockRestore();
    }
  });

  it('a single-file task given by a link is the operator\'s choice, but a FIFO is still refused', async () => {
    const dir = taskDir({ 'real.js': 'function(i) { return i }' });
    symlinkSync(join(dir, 'real.js'), join(dir, 'link.js'));
    expect((await loadTask(join(dir, 'link.js'))).source).toContain('function');
    execFileSync('mkfifo', [join(dir, 'pipe.js')]);
    await expect(loadTask(join(dir, 'pipe.js'))).rejects.toThrow(/must be a directory or a \.js file/);
  }, 5000);
});
