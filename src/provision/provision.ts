/**
 * `fleetx cloud-config render`'s core: role sources + values -> user-data.
 * Values merge in order: the role's values file, then -f files, then --set.
 */
import { usageError } from '../errors/errors.js';
import { mergeValues } from '../template/defaults.js';
import { loadValues } from '../template/values.js';
import { derive } from './derive.js';
import { findRole } from './find.js';
import { renderUserData, type RenderedUserData } from './render.js';
import { parseProvisionValues, type ProvisionValues } from './values.js';

export interface ProvisionOptions {
  role: string;
  files: string[];
  sets: string[];
  cwd: string;
  /** Merged last (after -f files and --set): values a program computes, e.g. the sandbox's. */
  values?: Record<string, unknown>;
}

/** Throws FleetxError 'not-found' (no such role), 'usage' (unreadable file, bad --set), 'invalid' (bad values). */
export function renderRole(o: ProvisionOptions): RenderedUserData & { values: ProvisionValues } {
  const sources = findRole(o.role, o.cwd);
  const loaded = loadValues({ files: [...(sources.valuesFile ? [sources.valuesFile] : []), ...o.files], sets: o.sets, cwd: o.cwd });
  const raw = o.values ? mergeValues(loaded, o.values) : loaded;
  if (raw.role !== undefined && raw.role !== o.role) throw usageError(`values set role ${JSON.stringify(raw.role)} but --role is ${o.role}`, 'the role comes from --role; remove it from the values');
  const values = parseProvisionValues({ ...raw, role: o.role }, sources.template.name);
  const context = { ...values, ...derive(values, sources.agentTemplate), nodesourceKey: sources.nodesourceKey };
  return { ...renderUserData(sources.template, context), values };
}
