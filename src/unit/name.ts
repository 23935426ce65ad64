/**
 * Unit names as fleet accepted them: `prefix[@instance].type`, characters
 * from [a-zA-Z0-9:_.@-], ending in a type systemd knows, and at most 255
 * characters: systemd's own limit (its UNIT_NAME_MAX of 256 counts the
 * terminating NUL) and the longest file name Linux can write. fleet allowed
 * 256, a name no host could ever write.
 */
import { invalidError } from '../errors/errors.js';
import { UNIT_TYPES, type UnitName, type UnitType } from './types.js';

export const UNIT_NAME_MAX = 255;
const VALID_CHARS = /^[a-zA-Z0-9:_.@-]*$/;
const ALLOWED = 'letters, digits and ":_.@-"';

function fail(name: string, why: string): never {
  throw invalidError(
    `invalid unit name ${JSON.stringify(name)}: ${why}`,
    `a unit name is prefix[@instance].type using ${ALLOWED}, at most ${UNIT_NAME_MAX} characters, type one of ${UNIT_TYPES.join(', ')}`,
  );
}

function isUnitType(s: string): s is UnitType {
  return (UNIT_TYPES as readonly string[]).includes(s);
}

/** Parse and validate a unit name. Throws FleetxError 'invalid' saying what is wrong. */
export function parseUnitName(name: string): UnitName {
  if (typeof name !== 'string' || name === '') fail(String(name), 'it is empty');
  if (name.length > UNIT_NAME_MAX) fail(name.slice(0, 40) + '…', `it is ${name.length} characters long (at most ${UNIT_NAME_MAX})`);
  if (!VALID_CHARS.test(name)) {
    const bad = [...name].find((c) => !VALID_CHARS.test(c))!;
    fail(name, `character ${JSON.stringify(bad)} is not allowed (only ${ALLOWED})`);
  }
  const dot = name.lastIndexOf('.');
  if (dot < 0) fail(name, `it has no type suffix (one of .${UNIT_TYPES.join(', .')})`);
  const type = name.slice(dot + 1);
  if (!isUnitType(type)) fail(name, `unknown unit type ".${type}" (known: ${UNIT_TYPES.join(', ')})`);
  const stem = name.slice(0, dot);
  if (stem === '') fail(name, 'the name before the type is empty');
  const at = stem.indexOf('@');
  if (at < 0) return { full: name, prefix: stem, type, isTemplate: false, isInstance: false };
  if (stem.indexOf('@', at + 1) >= 0) fail(name, 'it contains more than one "@"');
  const prefix = stem.slice(0, at);
  const instance = stem.slice(at + 1);
  if (prefix === '') fail(name, 'the prefix before "@" is empty');
  if (instance === '') return { full: name, prefix, instance: '', type, isTemplate: true, isInstance: false };
  return { full: name, prefix, instance, type, isTemplate: false, isInstance: true, template: `${prefix}@.${type}` };
}

export function isValidUnitName(name: string): boolean {
  try {
    parseUnitName(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * The template of an instance name: templateOf('app@3.service') === 'app@.service';
 * undefined for a name that is not a valid instance (a template, a plain unit, an invalid name).
 */
export function templateOf(unit: string): string | undefined {
  try {
    return parseUnitName(unit).template;
  } catch {
    return undefined;
  }
}

/**
 * True when `unit` is an instance of `template` (app@1.service of app@.service).
 * A plain unit given as the template has one "instance": itself.
 */
export function isInstanceOf(template: string, unit: string): boolean {
  if (!template.includes('@')) return unit === template;
  return templateOf(unit) === template;
}

/** The instance `instance` of template `template`: instanceOf('app@.service', '1') === 'app@1.service'. */
export function instanceOf(template: string, instance: string): string {
  const t = parseUnitName(template);
  if (!t.isTemplate) throw invalidError(`${JSON.stringify(template)} is not a template unit (expected a name like app@.service)`);
  if (instance === '') throw invalidError(`empty instance name for template ${template}`);
  if (instance.includes('@')) throw invalidError(`instance name ${JSON.stringify(instance)} must not contain "@"`);
  return parseUnitName(`${t.prefix}@${instance}.${t.type}`).full;
}
