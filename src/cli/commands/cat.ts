/** cat: print a submitted unit's body (the normalized form fleetx stores). */
import { notFoundError } from '../../errors/errors.js';
import { parseUnitName } from '../../unit/name.js';
import type { CommandContext } from '../context.js';

export async function catCommand(opts: { unit: string }, ctx: CommandContext): Promise<void> {
  const name = parseUnitName(opts.unit).full;
  const unit = await ctx.registry.getUnit(name);
  if (!unit) throw notFoundError(`unit ${name} not found`, 'see: fleetx list-unit-files');
  const body = await ctx.registry.getBody(unit.hash);
  if (body === undefined) throw notFoundError(`the body of unit ${name} (hash ${unit.hash.slice(0, 7)}) is missing from the registry`);
  if (ctx.output === 'json') ctx.io.stdout(JSON.stringify({ schema: 'fleetx/unit/v1', ...unit, body }));
  else ctx.io.stdout(body.replace(/\n$/, ''));
}
