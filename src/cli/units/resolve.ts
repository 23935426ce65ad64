/**
 * Turns the unit arguments of submit / load / start into validated units,
 * as fleetctl did: an argument is a unit file path, or the name of a unit
 * already in the registry, or an instance (app@1.service) whose template is
 * found next to the user (./app@.service) or in the registry. Every argument
 * is checked before anything is written, so one bad file changes nothing.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { FleetxError, invalidError, notFoundError } from '../../errors/errors.js';
import type { Registry } from '../../registry/registry.js';
import type { UnitRecord } from '../../registry/records.js';
import { parseUnit } from '../../unit/parse.js';
import { serializeUnit } from '../../unit/serialize.js';
import { unitHash } from '../../unit/hash.js';
import { parseUnitName } from '../../unit/name.js';
import { parseXFleet } from '../../unit/xfleet.js';

export interface ResolvedUnit {
  name: string;
  /** normalized body; undefined when the unit is used as it stands in the registry */
  text?: string;
  hash: string;
  template?: string;
  /** where the body came from, for messages */
  source: string;
  existing?: UnitRecord;
}

export async function resolveUnits(args: string[], registry: Registry, cwd: string): Promise<ResolvedUnit[]> {
  const problems: string[] = [];
  const out: ResolvedUnit[] = [];
  const seen = new Set<string>();
  for (const arg of args) {
    try {
      const u = await resolveOne(arg, registry, cwd);
      if (seen.has(u.name)) throw invalidError(`unit ${u.name} is named twice`);
      seen.add(u.name);
      out.push(u);
    } catch (e) {
      if (!(e instanceof FleetxError) || (e.kind !== 'invalid' && e.kind !== 'not-found')) throw e;
      problems.push(e.message);
    }
  }
  if (problems.length === 1) throw invalidError(problems[0]!, 'nothing was changed');
  if (problems.length > 1) throw invalidError(`${problems.length} units are invalid:\n  ${problems.join('\n  ')}`, 'nothing was changed');
  return out;
}

async function resolveOne(arg: string, registry: Registry, cwd: string): Promise<ResolvedUnit> {
  const path = resolve(cwd, arg);
  if (await isFile(path)) return fromText(basename(path), await readFile(path, 'utf8'), arg, registry);

  const name = parseUnitName(arg).full;
  const existing = await registry.getUnit(name);
  if (existing) return { name, hash: existing.hash, template: existing.template, source: 'registry', existing };

  const parsed = parseUnitName(name);
  if (parsed.isTemplate) throw notFoundError(`template ${name} is neither a file here nor in the registry`);
  if (!parsed.isInstance || !parsed.template) {
    throw notFoundError(`unit ${name} is neither a file here nor in the registry`);
  }
  const templatePath = resolve(cwd, parsed.template);
  if (await isFile(templatePath)) {
    const u = await fromText(name, await readFile(templatePath, 'utf8'), parsed.template, registry);
    return { ...u, template: parsed.template };
  }
  const template = await registry.getUnit(parsed.template);
  if (!template) {
    throw notFoundError(`unit ${name} not found: neither ${name} nor its template ${parsed.template} is a file here or in the registry`);
  }
  const body = await registry.getBody(template.hash);
  if (body === undefined) throw notFoundError(`the body of template ${parsed.template} is missing from the registry`);
  // Validate the instance's own X-Fleet options (specifiers expand per instance).
  parseXFleet(parseUnit(body, parsed.template), name);
  return { name, hash: template.hash, template: parsed.template, source: `template ${parsed.template} in the registry` };
}

async function fromText(name: string, text: string, source: string, registry: Registry): Promise<ResolvedUnit> {
  const parsedName = parseUnitName(name);
  const unit = parseUnit(text, source);
  parseXFleet(unit, parsedName.full);
  const normalized = serializeUnit(unit);
  const existing = await registry.getUnit(name);
  return { name, text: normalized, hash: unitHash(unit), source, existing };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
