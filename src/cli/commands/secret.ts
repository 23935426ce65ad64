/**
 * secret set / rm / list. The value is read from stdin or a file, so it is
 * never in argv (ps, shell history, CI logs); it is printed nowhere.
 */
import { readFile } from 'node:fs/promises';
import { notFoundError, usageError } from '../../errors/errors.js';
import { checkSecretName, normalizeSecretValue } from '../../secrets/names.js';
import { SecretStore, type SecretRecord } from '../../secrets/store.js';
import type { CommandContext } from '../context.js';
import { formatTable } from '../table.js';

function storeOf(ctx: CommandContext): SecretStore {
  return new SecretStore(ctx.client, ctx.registry.keys, ctx.connection);
}

async function readValue(fromFile: string | undefined, ctx: CommandContext): Promise<string> {
  if (fromFile !== undefined) {
    try {
      return await readFile(fromFile, 'utf8');
    } catch (e) {
      throw usageError(`cannot read --from-file ${fromFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const text = await ctx.io.readStdin?.();
  if (text === undefined) {
    throw usageError('the secret value comes from stdin or --from-file, and stdin is a terminal', 'e.g. fleetx secret set NAME --from-file ./key, or printf %s "$KEY" | fleetx secret set NAME');
  }
  return text;
}

export async function secretSetCommand(opts: { name: string; fromFile?: string; by: string; now: Date }, ctx: CommandContext): Promise<void> {
  checkSecretName(opts.name);
  const value = normalizeSecretValue(await readValue(opts.fromFile, ctx));
  const store = storeOf(ctx);
  const record = await store.set(opts.name, value, { now: opts.now, by: opts.by });
  // A user who can read the values back means etcd is not protecting them.
  const exposed = await store.valuesReadable(opts.name);
  if (ctx.output === 'json') {
    ctx.io.stdout(JSON.stringify({ schema: 'fleetx/secret/v1', ...record, valuesReadableByThisUser: exposed }));
  } else {
    ctx.io.stdout(`secret ${record.name} version ${record.version} stored; units get it at their next start (e.g. fleetx rolling-restart SERVICE)`);
  }
  if (exposed) {
    ctx.io.stderr(
      `fleetx: warning: etcd user ${ctx.connection.username ?? '(none)'} can read secret values: etcd auth is off or this role is too wide. ` +
        `Only the agents' role should read ${ctx.registry.keys.secretValues()} (see docs/SECURITY.md)`,
    );
  }
}

export async function secretRmCommand(opts: { name: string }, ctx: CommandContext): Promise<void> {
  const removed = await storeOf(ctx).remove(opts.name);
  if (!removed) throw notFoundError(`secret ${opts.name} not found`, 'see: fleetx secret list');
  if (ctx.output === 'json') ctx.io.stdout(JSON.stringify({ schema: 'fleetx/secret/v1', ...removed, removed: true }));
  else ctx.io.stdout(`secret ${removed.name} removed (was version ${removed.version}); units that name it cannot start until it is set again`);
}

export async function secretListCommand(opts: { legend: boolean }, ctx: CommandContext): Promise<void> {
  const records = await storeOf(ctx).list();
  if (ctx.output === 'json') {
    ctx.io.stdout(JSON.stringify({ schema: 'fleetx/secrets/v1', secrets: records }));
    return;
  }
  const rows = records.map((r: SecretRecord) => ({ name: r.name, version: String(r.version), updated: r.updatedAt, by: r.updatedBy }));
  const text = formatTable(rows, { fields: ['name', 'version', 'updated', 'by'], legend: opts.legend });
  if (text !== '') ctx.io.stdout(text);
}
