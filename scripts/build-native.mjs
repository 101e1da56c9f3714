// Part of `npm run build`: pawl's two static C programs (util/static-binary.ts), built now so a
// built package has them (a run would build a missing or stale one itself, which a user who
// cannot write dist/ could not).
import { ensureShim } from '../dist/runtime/bwrap/shim.js';
import { landlockRootfsFiles } from '../dist/rootfs/landlock.js';

await ensureShim();
await landlockRootfsFiles();
