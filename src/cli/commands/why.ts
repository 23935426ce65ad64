/**
 * why: where a unit is, what the leader recorded when it could not place it,
 * and machine by machine the scheduler's verdict on the current state
 * (engine/why.ts runs `scheduler/explain.ts` on the leader's own pass input).
 */
import { whyUnit } from '../../engine/why.js';
import { notFoundError } from '../../errors/errors.js';
import { toFleetxError } from '../../registry/errors.js';
import { parseUnitName } from '../../unit/name.js';
import type { CommandContext } from '../context.js';
import { shortMachine } from '../table.js';
import { refusal, refusedBySystemd } from '../units/wait.js';

export async function whyCommand(opts: { unit: string; full: boolean }, ctx: CommandContext): Promise<void> {
  const name = parseUnitName(opts.unit).full;
  const { io } = ctx;
  const answer = await whyUnit(ctx.client, ctx.registry.keys, name, (e) => toFleetxError(e, ctx.connection));
  if (!answer) throw notFoundError(`unit ${name} not found`, 'see: fleetx list-unit-files');
  const { unit, scheduledOn: placed, unschedulable: record, explanation } = answer;
  const ips = new Map(answer.machines.map((m) => [m.id, m.ip]));
  // what the agents report: a unit systemd refused to load never starts, wherever it is placed
  const refused = (await ctx.registry.listStates()).filter((s) => s.name === name && refusedBySystemd(s.loadState));
  const where = (m: string) => `${shortMachine(m, opts.full)}/${ips.get(m) ?? '-'}`;

  if (ctx.output === 'json') {
    io.stdout(JSON.stringify({
      schema: 'fleetx/why/v1', unit: name, targetState: unit.targetState, machines: placed, unschedulable: record ?? null,
      explanation: explanation ?? null, refused: refused.map((s) => ({ machine: s.machine, loadState: s.loadState })),
      ...(answer.unreadable !== undefined ? { unreadable: answer.unreadable } : {}),
    }));
    return;
  }
  if (unit.targetState === 'inactive') {
    io.stdout(`${name} is not scheduled: its target state is inactive (fleetx load or start it)`);
    return;
  }
  if (placed.length > 0) io.stdout(`${name} is scheduled to ${placed.map(where).join(', ')}`);
  for (const s of refused) io.stdout(`${name} ${refusal(s)} (fleetx verify FILE says why)`);
  if (record) io.stdout(`${name} cannot be placed: ${record.reason}`);
  if (answer.unreadable !== undefined) {
    io.stdout(`${name} cannot be scheduled: ${answer.unreadable}`);
    return;
  }
  if (!explanation) return;
  if (explanation.status === 'placed' || explanation.status === 'moved') {
    io.stdout(`The engine's next pass: ${explanation.summary} (no agent running, or a pass is under way)`);
  } else if (explanation.status === 'unschedulable' && !record) {
    io.stdout(`${name} cannot be placed: ${explanation.summary} (not recorded by the engine yet)`);
  }
  for (const v of explanation.machines) {
    const verdict = v.outcome === 'rejected' ? `rejected by ${v.filter}: ${v.reason}` : `${v.outcome}: ${v.reason}`;
    io.stdout(`  ${where(v.machine)}: ${verdict}`);
  }
  if (explanation.machines.length === 0) io.stdout('  no live machines (is an agent running?)');
}
