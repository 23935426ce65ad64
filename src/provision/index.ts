export { renderRole } from './provision.js';
export type { ProvisionOptions } from './provision.js';
export { renderUserData, HEADER } from './render.js';
export type { RenderedUserData, UserDataTemplate } from './render.js';
export { parseProvisionValues, SIDECAR_METADATA } from './values.js';
export type { ProvisionValues } from './values.js';
export { derive, envFile, hostMetadata, HOST_PATHS } from './derive.js';
export { findRole, listRoles, BUILTIN_CLOUD_CONFIG_DIR } from './find.js';
