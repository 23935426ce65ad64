export * from './types.js';
export * from './constraints.js';
export * from './name.js';
