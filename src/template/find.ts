/**
 * Finding a template: a path to a `.hbs` file, or a name (`app`, `app@`,
 * `app@.service`, `td-agent.service`) looked up in ./units of the working
 * directory first, then in fleetx's own units/ folder.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { notFoundError } from '../errors/errors.js';

export const BUILTIN_UNITS_DIR = fileURLToPath(new URL('../../units/', import.meta.url));

export interface FoundTemplate {
  /** Absolute path of the .hbs file. */
  path: string;
  /** The unit name it renders (`app@.service`): the file name without `.hbs`. */
  unitName: string;
}

function candidates(name: string): string[] {
  if (/\.[a-z]+$/.test(name)) return [`${name}.hbs`]; // app@.service, td-agent.service
  if (name.endsWith('@')) return [`${name}.service.hbs`];
  return [`${name}.service.hbs`, `${name}@.service.hbs`];
}

/** Throws 'not-found' naming the places searched and the templates available. */
export function findTemplate(nameOrPath: string, cwd: string): FoundTemplate {
  const found = (path: string): FoundTemplate => ({ path, unitName: basename(path).replace(/\.hbs$/, '') });
  if (nameOrPath.includes('/') || nameOrPath.endsWith('.hbs') || isAbsolute(nameOrPath)) {
    const p = resolve(cwd, nameOrPath);
    if (!existsSync(p) || !statSync(p).isFile()) throw notFoundError(`template file ${nameOrPath} does not exist`);
    return found(p);
  }
  const dirs = [resolve(cwd, 'units'), BUILTIN_UNITS_DIR];
  for (const dir of dirs) {
    for (const c of candidates(nameOrPath)) {
      const p = resolve(dir, c);
      if (existsSync(p)) return found(p);
    }
  }
  const available = dirs.flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.hbs')) : []));
  throw notFoundError(
    `no template named ${nameOrPath} (looked for ${candidates(nameOrPath).join(' or ')} in ${dirs.join(' and ')})`,
    available.length > 0 ? `available: ${[...new Set(available)].map((f) => f.replace(/\.hbs$/, '')).join(', ')}` : undefined,
  );
}
