/**
 * stop, unload, destroy and restart: lower a unit's target state, remove
 * it, or cycle it. Arguments are unit names or globs over submitted units
 * (`fleetx stop 'app@*'`); a name that matches nothing is an error and
 * nothing is changed, except for destroy, where it is already done.
 */
import picomatch from 'picomatch';
import { notFoundError, usageError } from '../../errors/errors.js';
import type { UnitSnapshot } from '../../registry/bulk.js';
import type { TargetState, UnitRecord } from '../../registry/records.js';
import { parseUnitName } from '../../unit/name.js';
import type { CommandContext } from '../context.js';
import { waitForUnits, type BlockOptions } from '../units/wait.js';

export type TargetAction = 'stop' | 'unload' | 'destroy' | 'restart';

export interface TargetOptions {
  action: TargetAction;
  units: string[];
  block: BlockOptions;
  now: () => Date;
}

export async function targetCommand(opts: TargetOptions, ctx: CommandContext): Promise<void> {
  const { registry, io } = ctx;
  // One read of the state; the changes go out in batched transactions (registry/bulk.ts).
  const snapshot = await registry.readUnits();
  const submitted = [...snapshot.units.values()].map((s) => s.record).sort((a, b) => cmp(a.name, b.name));
  // destroy is idempotent, as fleetctl's was: what is already gone is
  // reported, not refused, so running an interrupted destroy again finishes it.
  let units: UnitRecord[];
  if (opts.action === 'destroy') {
    const { picked, missing } = matchUnits(opts.units, submitted);
    for (const m of missing) io.stderr(`Unit ${m} does not exist; nothing to destroy`);
    units = picked;
  } else units = selectUnits(opts.units, submitted);
  const names = units.map((u) => u.name);
  const template = units.find((u) => parseUnitName(u.name).isTemplate);
  if (template && opts.action === 'restart') {
    throw usageError(`${template.name} is a template: templates never run, so there is nothing to restart`, `restart its instances (fleetx restart '${template.name.replace('@.', '@*.')}') or roll them (fleetx rolling-restart ${template.name})`);
  }
  const log = ctx.output === 'text' ? (l: string) => io.stdout(l) : () => {};
  let changed: string[] = [];

  switch (opts.action) {
    case 'destroy':
      // A unit someone else destroyed meanwhile is gone all the same.
      await registry.changeUnits(snapshot, names, (_name, current) => (current ? { type: 'delete' } : undefined));
      changed = names;
      if (ctx.output === 'text') for (const name of names) io.stdout(`Destroyed ${name}`);
      break;
    case 'unload':
      changed = await lower(ctx, snapshot, names, 'inactive', opts.now);
      await waitForUnits(registry, names, 'inactive', opts.block, log);
      break;
    case 'stop': {
      const loaded = units.filter((u) => u.targetState !== 'inactive').map((u) => u.name);
      for (const u of units) if (u.targetState === 'inactive') io.stderr(`Unit ${u.name} is not loaded; nothing to stop`);
      changed = await lower(ctx, snapshot, loaded, 'loaded', opts.now);
      await waitForUnits(registry, loaded, 'loaded', opts.block, log);
      break;
    }
    case 'restart':
      // fleetctl had no restart; this is the stop-then-start its users
      // scripted by hand, one unit at a time and blocking in between.
      for (const u of units) {
        await registry.setTargetState(u.name, 'loaded');
        await waitForUnits(registry, [u.name], 'loaded', opts.block, log);
        await registry.setTargetState(u.name, 'launched');
        await waitForUnits(registry, [u.name], 'launched', opts.block, log);
        changed.push(u.name);
      }
      break;
  }
  if (ctx.output === 'json') io.stdout(JSON.stringify({ schema: 'fleetx/units-changed/v1', action: opts.action, units: changed }));
}

/**
 * Lowers the target state of units to `to`, all in batched transactions.
 * `stop` (to 'loaded') never raises a unit someone unloaded meanwhile.
 * Returns the names changed, in the order given.
 */
async function lower(ctx: CommandContext, snapshot: UnitSnapshot, names: string[], to: TargetState, now: () => Date): Promise<string[]> {
  const updatedAt = now().toISOString();
  const applied = await ctx.registry.changeUnits(snapshot, names, (name, current) => {
    if (!current) throw notFoundError(`unit ${name} does not exist`, 'it was destroyed meanwhile');
    if (current.targetState === to || (to === 'loaded' && current.targetState === 'inactive')) return undefined;
    return { type: 'put', record: { ...current, targetState: to, updatedAt } };
  });
  const done = new Set(applied.map((a) => a.name));
  const changed = names.filter((n) => done.has(n));
  if (ctx.output === 'text') for (const name of changed) ctx.io.stderr(`Unit ${name} set to ${to}`);
  return changed;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Expand names and globs against the submitted units, in argument order, without duplicates; any miss is an error. */
export function selectUnits(args: string[], units: UnitRecord[]): UnitRecord[] {
  const { picked, missing } = matchUnits(args, units);
  if (missing.length > 0) {
    throw notFoundError(`no submitted unit matches ${missing.join(', ')}`, 'see: fleetx list-unit-files');
  }
  return picked;
}

/** The units names and globs pick, and the names and globs that picked none. */
export function matchUnits(args: string[], units: UnitRecord[]): { picked: UnitRecord[]; missing: string[] } {
  const byName = new Map(units.map((u) => [u.name, u]));
  const picked = new Map<string, UnitRecord>();
  const missing: string[] = [];
  for (const arg of args) {
    if (picomatch.scan(arg).isGlob) {
      const match = picomatch(arg, { dot: true });
      // A glob picks units that run: `web@*.service` means the instances, never
      // the template itself (destroy it by its name).
      const hits = units.filter((u) => match(u.name) && !parseUnitName(u.name).isTemplate);
      if (hits.length === 0) missing.push(arg);
      for (const h of hits) picked.set(h.name, h);
      continue;
    }
    const name = parseUnitName(arg).full;
    const u = byName.get(name);
    if (!u) missing.push(name);
    else picked.set(name, u);
  }
  return { picked: [...picked.values()], missing };
}
