/**
 * stop, unload, destroy and restart: lower a unit's target state, remove
 * it, or cycle it. Arguments are unit names or globs over submitted units
 * (`fleetx stop 'app@*'`); a name that matches nothing is an error and
 * nothing is changed.
 */
import picomatch from 'picomatch';
import { notFoundError } from '../../errors/errors.js';
import type { TargetState, UnitRecord } from '../../registry/records.js';
import { parseUnitName } from '../../unit/name.js';
import type { CommandContext } from '../context.js';
import { waitForUnits, type BlockOptions } from '../units/wait.js';

export type TargetAction = 'stop' | 'unload' | 'destroy' | 'restart';

export interface TargetOptions {
  action: TargetAction;
  units: string[];
  block: BlockOptions;
}

export async function targetCommand(opts: TargetOptions, ctx: CommandContext): Promise<void> {
  const { registry, io } = ctx;
  const units = selectUnits(opts.units, await registry.listUnits());
  const log = ctx.output === 'text' ? (l: string) => io.stdout(l) : () => {};
  const changed: string[] = [];

  switch (opts.action) {
    case 'destroy':
      for (const u of units) {
        await registry.destroyUnit(u.name);
        changed.push(u.name);
        if (ctx.output === 'text') io.stdout(`Destroyed ${u.name}`);
      }
      break;
    case 'unload':
      for (const u of units) if (await lower(ctx, u, 'inactive')) changed.push(u.name);
      await waitForUnits(registry, units.map((u) => u.name), 'inactive', opts.block, log);
      break;
    case 'stop': {
      const loaded = units.filter((u) => u.targetState !== 'inactive');
      for (const u of units) if (u.targetState === 'inactive') io.stderr(`Unit ${u.name} is not loaded; nothing to stop`);
      for (const u of loaded) if (await lower(ctx, u, 'loaded')) changed.push(u.name);
      await waitForUnits(registry, loaded.map((u) => u.name), 'loaded', opts.block, log);
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

async function lower(ctx: CommandContext, u: UnitRecord, to: TargetState): Promise<boolean> {
  if (u.targetState === to) return false;
  await ctx.registry.setTargetState(u.name, to);
  if (ctx.output === 'text') ctx.io.stderr(`Unit ${u.name} set to ${to}`);
  return true;
}

/** Expand names and globs against the submitted units, in argument order, without duplicates. */
export function selectUnits(args: string[], units: UnitRecord[]): UnitRecord[] {
  const byName = new Map(units.map((u) => [u.name, u]));
  const picked = new Map<string, UnitRecord>();
  const missing: string[] = [];
  for (const arg of args) {
    if (picomatch.scan(arg).isGlob) {
      const match = picomatch(arg, { dot: true });
      const hits = units.filter((u) => match(u.name));
      if (hits.length === 0) missing.push(arg);
      for (const h of hits) picked.set(h.name, h);
      continue;
    }
    const name = parseUnitName(arg).full;
    const u = byName.get(name);
    if (!u) missing.push(name);
    else picked.set(name, u);
  }
  if (missing.length > 0) {
    throw notFoundError(`no submitted unit matches ${missing.join(', ')}`, 'see: fleetx list-unit-files');
  }
  return [...picked.values()];
}
