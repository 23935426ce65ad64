/** list-machines and set-metadata. */
import { notFoundError, usageError } from '../../errors/errors.js';
import type { CommandContext } from '../context.js';
import { formatTable, parseFields, shortMachine, type ListOptions } from '../table.js';

const FIELDS = ['machine', 'ip', 'metadata', 'hostname', 'version', 'units'] as const;
const DEFAULT = ['machine', 'ip', 'metadata'] as const;

export async function listMachinesCommand(opts: ListOptions, ctx: CommandContext): Promise<void> {
  const fields = parseFields(opts.fields, FIELDS, DEFAULT);
  const [machines, schedules] = await Promise.all([ctx.registry.listMachines(), ctx.registry.listSchedules()]);
  const counts = new Map<string, number>();
  for (const s of schedules) counts.set(s.machine, (counts.get(s.machine) ?? 0) + 1);
  if (ctx.output === 'json') {
    ctx.io.stdout(JSON.stringify({ schema: 'fleetx/list-machines/v1', machines: machines.map((m) => ({ ...m, units: counts.get(m.id) ?? 0 })) }));
    return;
  }
  const rows = machines.map((m) => ({
    machine: shortMachine(m.id, opts.full),
    ip: m.ip,
    metadata: formatMetadata(m.metadata),
    hostname: m.hostname ?? '-',
    version: m.version,
    units: String(counts.get(m.id) ?? 0),
  }));
  const text = formatTable(rows, { fields, legend: opts.legend });
  if (text) ctx.io.stdout(text);
}

export function formatMetadata(md: Record<string, string>): string {
  const entries = Object.entries(md).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** Parse `key=value` pairs; an empty value (`key=`) means: remove the key. */
export function parseMetadataArgs(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const m = /^([A-Za-z0-9_.-]+)=([^\s,=]*)$/.exec(p);
    if (!m) throw usageError(`metadata must be key=value with no spaces, commas or extra '=': "${p}"`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

export async function setMetadataCommand(opts: { machine: string; pairs: string[] }, ctx: CommandContext): Promise<void> {
  const changes = parseMetadataArgs(opts.pairs);
  const machines = await ctx.registry.listMachines();
  const hits = machines.filter((m) => m.id.startsWith(opts.machine));
  if (hits.length === 0) throw notFoundError(`no live machine has an ID starting with "${opts.machine}"`, 'see: fleetx list-machines --full');
  if (hits.length > 1) throw usageError(`"${opts.machine}" matches ${hits.length} machines; give more of the ID`);
  const m = hits[0]!;
  // Overrides are kept apart from what the agent reports; `key=` is stored
  // as an empty override, which removes the key even if the agent reports it.
  const overrides = { ...(await ctx.registry.getMachineMetadata(m.id)), ...changes };
  await ctx.registry.setMachineMetadata(m.id, overrides);
  const merged = (await ctx.registry.listMachines()).find((x) => x.id === m.id)?.metadata ?? {};
  if (ctx.output === 'json') ctx.io.stdout(JSON.stringify({ schema: 'fleetx/set-metadata/v1', machine: m.id, metadata: merged }));
  else ctx.io.stdout(`Machine ${shortMachine(m.id, false)} metadata: ${formatMetadata(merged)}`);
}
