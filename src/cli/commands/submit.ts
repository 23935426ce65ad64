/**
 * submit, load and start: put units into the registry (if not there yet)
 * and raise their target state. fleetctl's rules are kept: submitting an
 * identical unit again is a no-op; a different body under an existing name
 * is refused unless --replace; instances of templates use the template's
 * body.
 */
import { conflictError } from '../../errors/errors.js';
import type { TargetState, UnitRecord } from '../../registry/records.js';
import { parseUnitName } from '../../unit/name.js';
import type { CommandContext } from '../context.js';
import { resolveUnits, type ResolvedUnit } from '../units/resolve.js';
import { waitForUnits, type BlockOptions } from '../units/wait.js';

export interface SubmitOptions {
  units: string[];
  /** submit keeps a new unit inactive; load and start raise it */
  target: TargetState;
  replace: boolean;
  block: BlockOptions;
  user: string;
  now: () => Date;
}

export async function submitCommand(opts: SubmitOptions, ctx: CommandContext): Promise<void> {
  const { registry, io } = ctx;
  const units = await resolveUnits(opts.units, registry, io.cwd);

  // Refuse before writing anything if one body differs without --replace.
  const clashes = units.filter((u) => u.existing && u.text !== undefined && u.existing.hash !== u.hash);
  if (clashes.length > 0 && !opts.replace) {
    throw conflictError(
      clashes.map((u) => `unit ${u.name} already exists in the registry with different contents`).join('\n'),
      'use --replace to update it (running instances are restarted by their agents), or fleetx cat to compare',
    );
  }

  const results: { name: string; action: string }[] = [];
  for (const u of units) {
    const action = await apply(u, opts, ctx);
    results.push({ name: u.name, action });
    if (ctx.output === 'text' && action !== 'unchanged') io.stderr(`Unit ${u.name} ${action}`);
  }
  if (ctx.output === 'json') io.stdout(JSON.stringify({ schema: 'fleetx/units-changed/v1', action: 'submit', units: results }));

  if (opts.target !== 'inactive') {
    const log = ctx.output === 'text' ? (l: string) => io.stdout(l) : () => {};
    await waitForUnits(registry, units.map((u) => u.name), opts.target, opts.block, log);
  }
}

async function apply(u: ResolvedUnit, opts: SubmitOptions, ctx: CommandContext): Promise<string> {
  const { registry } = ctx;
  const updatedAt = opts.now().toISOString();
  let action = 'unchanged';
  if (!u.existing || (u.text !== undefined && u.existing.hash !== u.hash)) {
    const rec: UnitRecord = {
      name: u.name,
      hash: u.hash,
      // A new unit is created at its target state at once (one transaction
      // instead of create-then-raise); an existing one keeps its own.
      targetState: u.existing?.targetState ?? opts.target,
      ...(u.template ? { template: u.template } : {}),
      submittedBy: opts.user,
      updatedAt,
    };
    // Instances started from a registry template reuse the stored body.
    const text = u.text ?? (await registry.getBody(u.hash)) ?? '';
    await registry.createUnit(rec, text, { replace: opts.replace });
    action = u.existing ? 'replaced' : opts.target === 'inactive' ? 'submitted' : `submitted and set to ${opts.target}`;
    if (u.existing && parseUnitName(u.name).isTemplate) await followTemplate(u.name, u.existing.hash, u.hash, ctx);
  }
  const current = u.existing?.targetState ?? opts.target;
  if (rank(opts.target) > rank(current)) {
    await registry.setTargetState(u.name, opts.target);
    action = opts.target === 'launched' ? 'set to launched' : 'set to loaded';
  }
  return action;
}

/**
 * A replaced template reaches its instances (fleet could not do this):
 * every instance still on the template's old body moves to the new one,
 * and the agents of launched ones restart them on it. All at once, like
 * --replace of a plain unit; `fleetx deploy` does the same a batch at a
 * time, out of the load balancer.
 */
async function followTemplate(template: string, from: string, to: string, ctx: CommandContext): Promise<void> {
  const instances = (await ctx.registry.listUnits()).filter((x) => x.template === template && x.hash === from);
  for (const i of instances) {
    if ((await ctx.registry.switchBody(i.name, from, to)) && ctx.output === 'text') {
      ctx.io.stderr(`Unit ${i.name} follows its template's new body${i.targetState === 'launched' ? ' (its machine restarts it)' : ''}`);
    }
  }
  if (instances.length > 0) await ctx.registry.gcBodies();
}

const rank = (s: TargetState): number => ({ inactive: 0, loaded: 1, launched: 2 })[s];
