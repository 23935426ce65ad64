/**
 * The sidecars of the sandbox demo: td-agent and dd-agent as global units
 * (units/td-agent.service.hbs, units/dd-agent.service.hbs) with the values
 * in services/{td-agent,dd-agent}.values.yaml, running the STAND-IN images
 * built from this machine (src/images/sidecar-images.ts) under the vendors'
 * names in the sandbox registry. Started with the real CLI (`fleetx start`),
 * so a host that joins later gets them from the engine within seconds.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { DATADOG_IMAGE, FLUENTD_IMAGE } from '../images/sidecar-images.js';
import type { Keyspace } from '../registry/keys.js';
import type { MachineRecord, UnitStateRecord } from '../registry/records.js';
import { findTemplate } from '../template/find.js';
import { renderTemplate } from '../template/render.js';
import { loadValues } from '../template/values.js';

export const SIDECAR_UNITS = ['td-agent.service', 'dd-agent.service'] as const;
export type SidecarUnit = (typeof SIDECAR_UNITS)[number];
const IMAGES: Record<SidecarUnit, { repo: string; tag: string }> = { 'td-agent.service': FLUENTD_IMAGE, 'dd-agent.service': DATADOG_IMAGE };

export interface SidecarFilesOptions {
  repoRoot: string;
  /** host:port of the sandbox registry */
  registry: string;
  /** where the rendered units go (STATEDIR/demo) */
  dir: string;
}

/** Pure: the unit text of one sidecar from its template, its values file and the stand-in's image in the registry. */
export function sidecarUnitText(unit: SidecarUnit, template: string, values: Record<string, unknown>, registry: string): string {
  const img = IMAGES[unit];
  return renderTemplate(template, { ...values, image: `${registry}/${img.repo}`, tag: img.tag }, { templateName: unit }).text;
}

/** Writes DIR/td-agent.service and DIR/dd-agent.service; returns their paths. @throws FleetxError 'invalid' for a bad values file */
export function writeSidecarUnits(o: SidecarFilesOptions): string[] {
  return SIDECAR_UNITS.map((unit) => {
    const name = unit.replace('.service', '');
    const values = loadValues({ files: [join('services', `${name}.values.yaml`)], sets: [], cwd: o.repoRoot });
    const template = readFileSync(findTemplate(unit, o.repoRoot).path, 'utf8');
    const file = join(o.dir, unit);
    writeFileSync(file, sidecarUnitText(unit, template, values, o.registry));
    return file;
  });
}

/** Per sidecar, the machines that report it active and those registered that do not (yet). */
export async function sidecarStates(client: Etcd3, keys: Keyspace): Promise<Record<SidecarUnit, { active: string[]; missing: string[] }>> {
  const machines = Object.values(await client.getAll().prefix(keys.machines()).strings()).map((t) => (JSON.parse(t) as MachineRecord).id);
  const states = Object.values(await client.getAll().prefix(keys.states()).strings()).map((t) => JSON.parse(t) as UnitStateRecord);
  const out = {} as Record<SidecarUnit, { active: string[]; missing: string[] }>;
  for (const unit of SIDECAR_UNITS) {
    const active = states.filter((s) => s.name === unit && s.activeState === 'active').map((s) => s.machine).sort();
    out[unit] = { active, missing: machines.filter((m) => !active.includes(m)).sort() };
  }
  return out;
}

/** The sandbox's value of the `dd-api-key` secret: not a Datadog key (the stand-in sends nothing), random so tests can look for leaks. */
export function sandboxApiKey(): string {
  return `sandbox-not-a-datadog-key-${randomBytes(12).toString('hex')}`;
}
