/** why: explain where a unit is, or why the engine could not place it. */
import { notFoundError } from '../../errors/errors.js';
import { parseUnitName } from '../../unit/name.js';
import type { CommandContext } from '../context.js';
import { shortMachine } from '../table.js';

export async function whyCommand(opts: { unit: string; full: boolean }, ctx: CommandContext): Promise<void> {
  const name = parseUnitName(opts.unit).full;
  const { registry, io } = ctx;
  const unit = await registry.getUnit(name);
  if (!unit) throw notFoundError(`unit ${name} not found`, 'see: fleetx list-unit-files');
  const [schedules, unschedulable, machines] = await Promise.all([
    registry.listSchedules(), registry.listUnschedulable(), registry.listMachines(),
  ]);
  const placed = schedules.filter((s) => s.name === name).map((s) => s.machine);
  const record = unschedulable.find((u) => u.name === name);
  const ips = new Map(machines.map((m) => [m.id, m.ip]));

  if (ctx.output === 'json') {
    io.stdout(JSON.stringify({ unit: name, targetState: unit.targetState, machines: placed, unschedulable: record ?? null }));
    return;
  }
  if (unit.targetState === 'inactive') {
    io.stdout(`${name} is not scheduled: its target state is inactive (fleetx load or start it)`);
    return;
  }
  if (placed.length > 0) {
    io.stdout(`${name} is scheduled to ${placed.map((m) => `${shortMachine(m, opts.full)}/${ips.get(m) ?? '-'}`).join(', ')}`);
  }
  if (record) {
    io.stdout(`${name} cannot be placed: ${record.reason}`);
    for (const [m, why] of Object.entries(record.machines).sort(([a], [b]) => a.localeCompare(b))) {
      io.stdout(`  ${shortMachine(m, opts.full)}/${ips.get(m) ?? '-'}: ${why}`);
    }
  } else if (placed.length === 0) {
    io.stdout(`${name} is waiting for the engine to place it (no decision recorded yet; is an agent running?)`);
  }
}
