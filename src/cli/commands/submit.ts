/**
 * submit, load and start: put units into the registry (if not there yet)
 * and raise their target state. fleetctl's rules are kept: submitting an
 * identical unit again is a no-op; a different body under an existing name
 * is refused unless --replace; instances of templates use the template's
 * body.
 */
import { conflictError, usageError } from '../../errors/errors.js';
import type { AppliedChange, UnitChange, UnitSnapshot } from '../../registry/bulk.js';
import type { TargetState, UnitRecord } from '../../registry/records.js';
import { parseUnitName } from '../../unit/name.js';
import type { CommandContext } from '../context.js';
import { resolveUnits, type ResolvedUnit, type UnitLookup } from '../units/resolve.js';
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

/** `reading`: the one read of the state, if the caller sent it already (default: sent here). */
export async function submitCommand(opts: SubmitOptions, ctx: CommandContext, reading: Promise<UnitSnapshot> = ctx.registry.readUnits()): Promise<void> {
  const { registry, io } = ctx;
  // One read of the state; the writes go out in batched transactions
  // (registry/bulk.ts). The unit files are read and checked meanwhile: the
  // command's first etcd call authenticates (etcd's password check alone
  // takes tens of ms).
  const bodies = new Map<string, Promise<string | undefined>>();
  const lookup = reading.then((snapshot): UnitLookup => ({
    unit: (name) => snapshot.units.get(name)?.record,
    body: (hash) => bodies.get(hash) ?? bodies.set(hash, registry.getBody(hash)).get(hash)!,
  }));
  // A bad file is reported even if the read fails later: that failure is then nobody's to report.
  lookup.catch(() => undefined);
  const units = await resolveUnits(opts.units, lookup, io.cwd);
  const snapshot = await reading;
  const known = await lookup;
  const template = opts.target === 'inactive' ? undefined : units.find((u) => parseUnitName(u.name).isTemplate);
  if (template) {
    throw usageError(
      `${template.name} is a template: templates never run, so it cannot be ${opts.target}; nothing was changed`,
      `submit it (fleetx submit ${template.name}) and start instances of it, e.g. fleetx start ${template.name.replace('@.', '@1.')}`,
    );
  }

  // Refuse before writing anything if one body differs without --replace.
  const clashes = units.filter((u) => u.existing && u.text !== undefined && u.existing.hash !== u.hash);
  if (clashes.length > 0 && !opts.replace) {
    throw conflictError(
      clashes.map((u) => `unit ${u.name} already exists in the registry with different contents`).join('\n'),
      'use --replace to update it (running instances are restarted by their agents), or fleetx cat to compare',
    );
  }

  // Instances started from a registry template are stored with its body.
  const texts = new Map<string, string>();
  for (const u of units) texts.set(u.name, u.text ?? (await known.body(u.hash)) ?? '');
  const byName = new Map(units.map((u) => [u.name, u]));
  const updatedAt = opts.now().toISOString();
  const applied = await registry.changeUnits(snapshot, units.map((u) => u.name), (name, current) => {
    const u = byName.get(name)!;
    return decide(u, current, { ...opts, text: texts.get(name)!, updatedAt });
  });

  const done = new Map(applied.map((a) => [a.name, a]));
  const results = units.map((u) => ({ name: u.name, action: describe(done.get(u.name), opts.target) }));
  for (const r of results) if (ctx.output === 'text' && r.action !== 'unchanged') io.stderr(`Unit ${r.name} ${r.action}`);
  for (const a of applied) {
    if (a.before && a.change.type === 'put' && a.before.hash !== a.change.record.hash && parseUnitName(a.name).isTemplate) {
      await followTemplate(a.name, a.before.hash, a.change.record.hash, ctx);
    }
  }
  if (ctx.output === 'json') io.stdout(JSON.stringify({ schema: 'fleetx/units-changed/v1', action: 'submit', units: results }));

  if (opts.target !== 'inactive') {
    const log = ctx.output === 'text' ? (l: string) => io.stdout(l) : () => {};
    await waitForUnits(registry, units.map((u) => u.name), opts.target, opts.block, log);
  }
}

/**
 * fleetctl's rules for one unit, given what the registry holds now: a new
 * unit is created at its target state at once (one write, not
 * create-then-raise); a different body replaces the stored one only with
 * --replace, keeping the unit's target state; a target state is raised,
 * never lowered. undefined: nothing to write.
 */
function decide(
  u: ResolvedUnit,
  current: UnitRecord | undefined,
  o: { target: TargetState; replace: boolean; user: string; text: string; updatedAt: string },
): UnitChange | undefined {
  const body = { hash: u.hash, text: o.text };
  const fresh = { name: u.name, hash: u.hash, ...(u.template ? { template: u.template } : {}), submittedBy: o.user, updatedAt: o.updatedAt };
  if (!current) return { type: 'put', record: { ...fresh, targetState: o.target }, body };
  const targetState = rank(o.target) > rank(current.targetState) ? o.target : current.targetState;
  if (u.text !== undefined && current.hash !== u.hash) {
    if (!o.replace) throw conflictError(`unit ${u.name} already exists with different contents; use --replace to update it`);
    return { type: 'put', record: { ...fresh, targetState }, body };
  }
  if (targetState === current.targetState) return undefined;
  return { type: 'put', record: { ...current, targetState, updatedAt: o.updatedAt } };
}

function describe(a: AppliedChange | undefined, target: TargetState): string {
  if (!a || a.change.type !== 'put') return 'unchanged';
  if (!a.before) return target === 'inactive' ? 'submitted' : `submitted and set to ${target}`;
  if (rank(a.change.record.targetState) > rank(a.before.targetState)) return `set to ${a.change.record.targetState}`;
  return 'replaced';
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
