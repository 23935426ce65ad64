/** A DeployStore on its own etcd client, for one command; close() must be called. */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { connect } from '../registry/client.js';
import type { ConnectionOptions } from '../registry/connection.js';
import { keyspace } from '../registry/keys.js';
import type { RolloutHolder } from '../rollout/types.js';
import { rolloutId, type ApplyContext } from './plan.js';
import { DeployStore } from './store.js';

export function openDeployStore(conn: ConnectionOptions): { store: DeployStore; close(): void } {
  const client = connect(conn);
  return { store: new DeployStore(client, keyspace(conn.prefix), conn), close: () => client.close() };
}

/** Who holds the lock: FLEETX_USER (or the login name), this host, and Jenkins' BUILD_TAG when set. */
export function holderFrom(env: NodeJS.ProcessEnv): RolloutHolder {
  let user = env.FLEETX_USER;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return { user, host: hostname(), ...(env.BUILD_TAG ? { build: env.BUILD_TAG } : {}) };
}

/** The impure part of a deploy: clock, id, holder. */
export function applyContext(env: NodeJS.ProcessEnv, autoRevert?: boolean, now = new Date()): ApplyContext {
  const holder = holderFrom(env);
  return {
    id: rolloutId(now, randomBytes(3).toString('hex')),
    now: now.toISOString(),
    holder,
    user: `${holder.user}@${holder.host}${holder.build ? ` (${holder.build})` : ''}`,
    ...(autoRevert !== undefined ? { autoRevert } : {}),
  };
}
