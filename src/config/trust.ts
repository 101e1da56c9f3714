// The four trust levels of the Ratchet isolation plan. Each is a partial policy laid over the
// defaults; "limited" is the defaults themselves.
import type { PolicyInput, TrustLevel } from './policy.js';

export const TRUST_PRESETS: Record<TrustLevel, PolicyInput> = {
  untrusted: {
    resources: { memory: '64MB', cpuPercent: 25, wallTime: '60s', processes: 5, fileDescriptors: 32 },
  },
  limited: {},
  trusted: {
    resources: { memory: '512MB', cpuPercent: 75, wallTime: '600s', processes: 50, fileDescriptors: 256 },
  },
  system: {
    resources: { memory: '2048MB', cpuPercent: 100, wallTime: '3600s', processes: 100, fileDescriptors: 1024 },
  },
};
