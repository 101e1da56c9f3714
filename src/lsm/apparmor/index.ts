// AppArmor: profiles generated from the policy (not loaded or applied yet: README).
export { apparmorProfile, BLOCKED_DIRS, type AppArmorProfile } from './profile.js';
export { profileName } from './name.js';
export { apparmorEnabled } from './host.js';
