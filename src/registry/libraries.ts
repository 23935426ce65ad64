/**
 * etcd3 and cockatiel, loaded with `require`. Both are CommonJS packages:
 * an ESM `import` of them makes Node scan each of their files for export
 * names (cjs-module-lexer) before running them, about 70 ms of CPU on every
 * CLI call that talks to etcd. Types still come from the packages
 * themselves (`import type`); values come from here.
 */
import { createRequire } from 'node:module';
import type * as Etcd3Package from 'etcd3';
import type * as CockatielPackage from 'cockatiel';

const require = createRequire(import.meta.url);

export const etcd3 = require('etcd3') as typeof Etcd3Package;
export const cockatiel = require('cockatiel') as typeof CockatielPackage;
