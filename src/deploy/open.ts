/** A DeployStore on its own etcd client, for one command; close() must be called. */
import { connect } from '../registry/client.js';
import type { ConnectionOptions } from '../registry/connection.js';
import { keyspace } from '../registry/keys.js';
import { DeployStore } from './store.js';

export function openDeployStore(conn: ConnectionOptions): { store: DeployStore; close(): void } {
  const client = connect(conn);
  return { store: new DeployStore(client, keyspace(conn.prefix), conn), close: () => client.close() };
}
