/**
 * Where a role's user-data comes from: `<dir>/<role>.yaml.hbs`, its values
 * `<dir>/values/<role>.yaml` (optional), the partials `<dir>/partials/*.hbs`,
 * with `<dir>` = ./cloud-config of the working directory when it has the
 * role, else fleetx's own cloud-config/ folder. The agent's unit template
 * comes from units/ the same way as for `fleetx render`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { notFoundError } from '../errors/errors.js';
import { findTemplate } from '../template/find.js';
import type { UserDataTemplate } from './render.js';

export const BUILTIN_CLOUD_CONFIG_DIR = fileURLToPath(new URL('../../cloud-config/', import.meta.url));
const ROLE_RE = /^[a-z][a-z0-9-]{0,62}$/;

export interface RoleSources {
  template: UserDataTemplate;
  /** Path of the role's values file, when there is one. */
  valuesFile?: string;
  /** units/fleetx-agent.service.hbs */
  agentTemplate: string;
  /** The armored key NodeSource signs its apt repository with. */
  nodesourceKey: string;
}

/** Throws 'not-found' naming the roles available. */
export function findRole(role: string, cwd: string): RoleSources {
  const dirs = [...new Set([resolve(cwd, 'cloud-config'), resolve(BUILTIN_CLOUD_CONFIG_DIR)])];
  const dir = ROLE_RE.test(role) ? dirs.find((d) => existsSync(resolve(d, `${role}.yaml.hbs`))) : undefined;
  if (!dir) {
    const roles = [...new Set(dirs.flatMap(listRoles))].sort();
    throw notFoundError(`no cloud-config role ${JSON.stringify(role)} (looked for ${role}.yaml.hbs in ${dirs.join(' and ')})`, `roles: ${roles.join(', ') || 'none'}`);
  }
  const read = (p: string) => readFileSync(p, 'utf8');
  const partialsDir = resolve(dir, 'partials');
  const partials = Object.fromEntries(
    (existsSync(partialsDir) ? readdirSync(partialsDir) : []).filter((f) => f.endsWith('.hbs')).sort().map((f) => [f.replace(/\.hbs$/, ''), read(resolve(partialsDir, f))]),
  );
  const valuesFile = resolve(dir, 'values', `${role}.yaml`);
  const keyFile = [resolve(dir, 'nodesource-key.asc'), resolve(BUILTIN_CLOUD_CONFIG_DIR, 'nodesource-key.asc')].find(existsSync)!;
  return {
    template: { name: `${role}.yaml.hbs`, source: read(resolve(dir, `${role}.yaml.hbs`)), partials },
    valuesFile: existsSync(valuesFile) ? valuesFile : undefined,
    agentTemplate: read(findTemplate('fleetx-agent.service', cwd).path),
    nodesourceKey: read(keyFile),
  };
}

export function listRoles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml.hbs')).map((f) => f.replace(/\.yaml\.hbs$/, '')) : [];
}
