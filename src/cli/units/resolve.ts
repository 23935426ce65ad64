/**
 * Turns the unit arguments of submit / load / start into validated units,
 * as fleetctl did: an argument is a unit file path, or the name of a unit
 * already in the registry, or an instance (app@1.service) whose template is
 * found next to the user (./app@.service) or in the registry. Every argument
 * is checked before anything is written, so one bad file changes nothing.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { FleetxError, invalidError, notFoundError } from '../../errors/errors.js';
import type { UnitRecord } from '../../registry/records.js';
import { secretReferences } from '../../secrets/references.js';
import { parseUnit } from '../../unit/parse.js';
import type { UnitFile } from '../../unit/types.js';
import { serializeUnit } from '../../unit/serialize.js';
import { unitHash } from '../../unit/hash.js';
import { parseUnitName } from '../../unit/name.js';
import { checkRunnable } from '../../unit/runnable.js';
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

/** What resolving needs from the registry: the units as one read saw them, and bodies by hash. */
export interface UnitLookup {
  unit(name: string): UnitRecord | undefined;
  body(hash: string): Promise<string | undefined>;
}

/**
 * `lookup` may still be on its way: unit files are read and checked while
 * the registry is read (a command's first etcd call authenticates, and
 * etcd's password check alone takes tens of ms); only what needs the
 * registry waits for it.
 */
export async function resolveUnits(args: string[], lookup: UnitLookup | Promise<UnitLookup>, cwd: string): Promise<ResolvedUnit[]> {
  const files = new LocalFiles(cwd);
  const registry = Promise.resolve(lookup);
  // Arguments resolve concurrently (1,000 instances of one template read it once); results keep their order.
  const settled = await Promise.allSettled(args.map((arg) => resolveOne(arg, registry, files)));
  const problems: string[] = [];
  let allNotFound = true;
  const out: ResolvedUnit[] = [];
  const seen = new Set<string>();
  for (const r of settled) {
    try {
      if (r.status === 'rejected') throw r.reason;
      const u = r.value;
      if (seen.has(u.name)) throw invalidError(`unit ${u.name} is named twice`);
      seen.add(u.name);
      out.push(u);
    } catch (e) {
      if (!(e instanceof FleetxError) || (e.kind !== 'invalid' && e.kind !== 'not-found')) throw e;
      problems.push(e.message);
      allNotFound &&= e.kind === 'not-found';
    }
  }
  // exit 4 when every problem is a missing file or unit, 3 when any is bad content
  const fail = allNotFound ? notFoundError : invalidError;
  if (problems.length === 1) throw fail(problems[0]!, 'nothing was changed');
  if (problems.length > 1) throw fail(`${problems.length} units are ${allNotFound ? 'missing' : 'invalid'}:\n  ${problems.join('\n  ')}`, 'nothing was changed');
  return out;
}

async function resolveOne(arg: string, registry: Promise<UnitLookup>, files: LocalFiles): Promise<ResolvedUnit> {
  const fromFile = await files.read(arg);
  if (fromFile !== undefined) return withExisting(fromText(basename(arg), files.parsed(fromFile, arg)), await registry);
  // a path (./web.service, units/web.service) names a file, never a unit in the registry
  if (arg.includes('/')) throw notFoundError(`file ${arg} does not exist`);

  const name = parseUnitName(arg).full;
  const parsed = parseUnitName(name);
  // An instance's template file is read and checked while the registry is
  // read; it is used only when the registry has no such unit.
  const local = parsed.isInstance && parsed.template ? fromTemplateFile(name, parsed.template, files) : undefined;
  local?.catch(() => undefined); // its error counts only when it is used (below)
  const lookup = await registry;
  const existing = lookup.unit(name);
  if (existing) return { name, hash: existing.hash, template: existing.template, source: 'registry', existing };

  if (parsed.isTemplate) throw notFoundError(`template ${name} is neither a file here nor in the registry`);
  if (!local || !parsed.template) {
    throw notFoundError(`unit ${name} is neither a file here nor in the registry`);
  }
  const fromTemplate = await local;
  if (fromTemplate !== undefined) return { ...fromTemplate, template: parsed.template };
  const template = lookup.unit(parsed.template);
  if (!template) {
    throw notFoundError(`unit ${name} not found: neither ${name} nor its template ${parsed.template} is a file here or in the registry`);
  }
  const body = await lookup.body(template.hash);
  if (body === undefined) throw notFoundError(`the body of template ${parsed.template} is missing from the registry`);
  // Validate the instance's own X-Fleet options (specifiers expand per instance).
  parseXFleet(parseUnit(body, parsed.template), name);
  return { name, hash: template.hash, template: parsed.template, source: `template ${parsed.template} in the registry` };
}

/** An instance from its template's file next to the user (undefined: no such file). */
async function fromTemplateFile(name: string, template: string, files: LocalFiles): Promise<ResolvedUnit | undefined> {
  const text = await files.read(template);
  return text === undefined ? undefined : fromText(name, files.parsed(text, template));
}

/** A unit from a file's parsed text, checked as `name` (an instance expands its template's specifiers); needs nothing from the registry. */
function fromText(name: string, file: ParsedText): ResolvedUnit {
  const parsedName = parseUnitName(name);
  parseXFleet(file.unit, parsedName.full);
  checkRunnable(file.unit, parsedName.full, parsedName.type);
  secretReferences(file.unit, parsedName.full);
  return { name, text: file.normalized, hash: file.hash, source: file.source };
}

/** A unit file's text parsed, normalized and hashed. */
interface ParsedText {
  unit: UnitFile;
  normalized: string;
  hash: string;
  source: string;
}

function withExisting(u: ResolvedUnit, lookup: UnitLookup): ResolvedUnit {
  const existing = lookup.unit(u.name);
  return existing ? { ...u, existing } : u;
}

/**
 * Unit files next to the user, each read, and each text parsed, once per
 * command: 10,000 instances of a few templates are a few reads and parses.
 * Every argument may name a file (an instance can have one of its own), so
 * each directory is listed once and a name it does not list is no file:
 * one readdir, not 10,000 failed stats.
 */
class LocalFiles {
  private readonly texts = new Map<string, Promise<string | undefined>>();
  private readonly dirs = new Map<string, Promise<Set<string> | undefined>>();
  private readonly parsedTexts = new Map<string, ParsedText>();
  constructor(private readonly cwd: string) {}

  read(arg: string): Promise<string | undefined> {
    const path = resolve(this.cwd, arg);
    let text = this.texts.get(path);
    if (text === undefined) {
      text = this.listed(path)
        .then((maybe) => maybe && isFile(path))
        .then((yes) => (yes ? readFile(path, 'utf8') : undefined));
      this.texts.set(path, text);
    }
    return text;
  }

  /** Parsed once per text and source; a text that does not parse throws each time it is asked for. */
  parsed(text: string, source: string): ParsedText {
    const key = `${source}\0${text}`;
    let p = this.parsedTexts.get(key);
    if (p === undefined) {
      const unit = parseUnit(text, source);
      p = { unit, normalized: serializeUnit(unit), hash: unitHash(unit), source };
      this.parsedTexts.set(key, p);
    }
    return p;
  }

  /** false when the path's directory was listed and does not hold it; true when it does or could not be listed (then stat decides). */
  private async listed(path: string): Promise<boolean> {
    const dir = dirname(path);
    let names = this.dirs.get(dir);
    if (names === undefined) {
      names = readdir(dir).then((n) => new Set(n), () => undefined);
      this.dirs.set(dir, names);
    }
    return (await names)?.has(basename(path)) ?? true;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
