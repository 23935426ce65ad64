/**
 * Convenience for commands and daemons: connection options in, a Registry
 * and a close() out. close() must be called so the process can exit.
 */
import type { Etcd3 } from 'etcd3';
import type { ConnectionOptions } from './connection.js';
import { connect } from './client.js';
import { keyspace } from './keys.js';
import { Registry } from './registry.js';

export interface OpenRegistry {
  registry: Registry;
  client: Etcd3;
  close(): void;
}

/** @throws FleetxError 'usage' when a TLS file cannot be read. Does not contact etcd. */
export function openRegistry(conn: ConnectionOptions, now: () => Date = () => new Date()): OpenRegistry {
  const client = connect(conn);
  const registry = new Registry(client, keyspace(conn.prefix), { connection: conn, now });
  return { registry, client, close: () => client.close() };
}
