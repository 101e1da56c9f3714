// AppArmor: profiles generated from the policy, loaded and applied by ../apply.ts.
export { apparmorProfile, BLOCKED_DIRS, type AppArmorProfile } from './profile.js';
export { profileName } from './name.js';
export { apparmorEnabled } from './host.js';
export { bwrapSetupProfile } from './setup.js';
