// Moved to util/libc.ts (the lower layers use it too); kept for runtime/'s own imports until core moves them.
export * from '../util/libc.js';
