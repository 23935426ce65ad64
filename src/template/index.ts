export { renderTemplate } from './render.js';
export type { RenderOptions, Rendered } from './render.js';
export { loadValues, parseSetPath } from './values.js';
export type { LoadValuesOptions } from './values.js';
export { findTemplate, BUILTIN_UNITS_DIR } from './find.js';
export type { FoundTemplate } from './find.js';
export { SECRET_NAME_RE, SECRETS_DIR } from './validate.js';
