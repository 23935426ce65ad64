/**
 * A template declares its optional values and their defaults in a leading
 * Handlebars comment holding YAML:
 *
 *   {{!-- fleetx-defaults:
 *     tag: latest
 *     ports: []
 *   --}}
 *
 * Values given by the user are merged over these (objects deeply, anything
 * else replaced). A value without a default is required.
 */
import { parse as parseYaml } from 'yaml';
import { invalidError } from '../errors/errors.js';
import type {} from 'handlebars';

const MARKER = 'fleetx-defaults:';

export function templateDefaults(ast: hbs.AST.Program, templateName: string): Record<string, unknown> {
  for (const s of ast.body) {
    if (s.type !== 'CommentStatement') continue;
    const text = (s as hbs.AST.CommentStatement).value.trim();
    if (!text.startsWith(MARKER)) continue;
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      throw invalidError(`template ${templateName}: its fleetx-defaults comment is not valid YAML: ${(e as Error).message}`);
    }
    const d = (doc as Record<string, unknown>)['fleetx-defaults'];
    if (d === null || d === undefined) return {};
    if (typeof d !== 'object' || Array.isArray(d)) throw invalidError(`template ${templateName}: fleetx-defaults must be a mapping`);
    return d as Record<string, unknown>;
  }
  return {};
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `over` wins; nested objects merge; arrays and scalars are replaced. */
export function mergeValues(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? mergeValues(b, v) : v;
  }
  return out;
}

/**
 * A default also fixes a value's shape: where the template expects a list or
 * a map, `{{#each}}` would silently skip a string (`--set ports=80:80`), and
 * where it expects a boolean, `--set flag=false` (a string) would be truthy,
 * so "true" / "false" are turned into booleans here (values is the merged
 * copy made for this render).
 */
export function checkShapes(defaults: Record<string, unknown>, values: Record<string, unknown>, templateName: string, path = ''): void {
  for (const [k, d] of Object.entries(defaults)) {
    const v = values[k];
    if (v === undefined || v === null) continue;
    const p = path ? `${path}.${k}` : k;
    if (typeof d === 'boolean' && typeof v !== 'boolean') {
      if (v !== 'true' && v !== 'false') throw invalidError(`template ${templateName}: value ${p} must be true or false, got "${String(v)}"`);
      values[k] = v === 'true';
      continue;
    }
    if (Array.isArray(d) && !Array.isArray(v)) {
      throw invalidError(`template ${templateName}: value ${p} must be a list`, `e.g. --set ${p}[0]=... or a YAML list`);
    }
    if (isPlainObject(d)) {
      if (!isPlainObject(v)) throw invalidError(`template ${templateName}: value ${p} must be a mapping`, `e.g. --set ${p}.NAME=... or a YAML mapping`);
      checkShapes(d, v, templateName, p);
    }
  }
}
