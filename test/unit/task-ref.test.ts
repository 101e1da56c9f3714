// What pawl serve's operator policies know a path task by: its path below its task root.
import { describe, expect, it } from 'vitest';
import { policyNameIn } from '../../src/service/task-ref.js';

describe('policyNameIn', () => {
  it('is a direct child\'s name, and a deeper task\'s whole path below its root: a subdirectory named like a trusted task is not that task', () => {
    const roots = ['/srv/tasks', '/srv/more/'];
    expect(policyNameIn('/srv/tasks/add', roots)).toBe('add');
    expect(policyNameIn('/srv/tasks/add.js', roots)).toBe('add');
    expect(policyNameIn('/srv/more/legacy-tool', roots)).toBe('legacy-tool');
    expect(policyNameIn('/srv/tasks/user-content/legacy-tool', roots)).toBe('user-content/legacy-tool');
    expect(policyNameIn('/srv/tasks/user-content/legacy-tool.js', roots)).toBe('user-content/legacy-tool');
  });
});
