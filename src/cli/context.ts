/**
 * Opens the registry for one command from the global flags and environment,
 * and always closes the etcd client afterwards.
 */
import { readFile } from 'node:fs/promises';
import type { Etcd3 } from 'etcd3';
import type { DeployStore } from '../deploy/store.js';
import { usageError } from '../errors/errors.js';
import { checkConnectionFiles, resolveConnection, type ConnectionOptions } from '../registry/connection.js';
import type { Registry } from '../registry/registry.js';
import type { Io } from './io.js';
import type { GlobalFlags } from './program/flags.js';

export interface CommandContext {
  registry: Registry;
  /** the registry's etcd client, for the few commands that read through a library (why) */
  client: Etcd3;
  connection: ConnectionOptions;
  io: Io;
  output: GlobalFlags['output'];
}

/** What deploy, plan, rolling-restart and rollout commands get: the deploy store instead of the registry. */
export interface DeployContext {
  store: DeployStore;
  io: Io;
  output: GlobalFlags['output'];
}

export async function connectionFrom(flags: GlobalFlags, io: Io): Promise<ConnectionOptions> {
  let password: string | undefined;
  // --etcd-password-file, else FLEETX_ETCD_PASSWORD, else FLEETX_ETCD_PASSWORD_FILE (what the sandbox's env file sets)
  const envFile = io.env.FLEETX_ETCD_PASSWORD ? undefined : io.env.FLEETX_ETCD_PASSWORD_FILE || undefined;
  const file = flags.etcdPasswordFile ?? envFile;
  if (file) {
    const source = flags.etcdPasswordFile ? '--etcd-password-file' : 'FLEETX_ETCD_PASSWORD_FILE';
    try {
      password = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch {
      throw usageError(`cannot read ${source} ${file}`);
    }
  }
  const connection = resolveConnection(
    {
      endpoint: flags.endpoint,
      caFile: flags.caFile,
      certFile: flags.certFile,
      keyFile: flags.keyFile,
      etcdUsername: flags.etcdUsername,
      etcdPassword: password,
      etcdKeyPrefix: flags.etcdKeyPrefix,
      requestTimeout: flags.requestTimeout,
    },
    io.env,
  );
  await checkConnectionFiles(connection);
  return connection;
}

export async function withRegistry<T>(flags: GlobalFlags, io: Io, fn: (ctx: CommandContext) => Promise<T>): Promise<T> {
  const connection = await connectionFrom(flags, io);
  // Loaded here, not at the top: the etcd client (gRPC, protobuf) is most of
  // the CLI's start-up, and `--version`, `render`, `verify` never need it.
  const { openRegistry } = await import('../registry/open.js');
  const { registry, client, close } = openRegistry(connection);
  try {
    return await fn({ registry, client, connection, io, output: flags.output });
  } finally {
    close();
  }
}
