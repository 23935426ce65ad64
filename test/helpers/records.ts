/**
 * Cluster records a test writes into a real etcd, the way the CLI and the
 * agents write them, for tests that play those parts around an engine.
 */
import type { Etcd3, Lease } from 'etcd3';
import type { Keyspace } from '../../src/registry/keys.js';
import type { MachineRecord, UnitRecord } from '../../src/registry/records.js';
import { unitHash } from '../../src/unit/hash.js';
import { parseUnit } from '../../src/unit/parse.js';

/** Submits a unit as the CLI does: its body under its hash, then its unit record. Returns the hash. */
export async function submitUnit(client: Etcd3, keys: Keyspace, name: string, text: string, targetState: UnitRecord['targetState'] = 'launched'): Promise<string> {
  const hash = unitHash(parseUnit(text));
  await client.put(keys.body(hash)).value(text).exec();
  const rec: UnitRecord = { name, hash, targetState };
  await client.put(keys.unit(name)).value(JSON.stringify(rec)).exec();
  return hash;
}

/** An agent's presence: its machine record under a lease of its own. Revoke the lease to kill the machine. */
export async function announceMachine(client: Etcd3, keys: Keyspace, id: string, o: { metadata?: Record<string, string>; ttl?: number } = {}): Promise<Lease> {
  const lease = client.lease(o.ttl ?? 30);
  const rec: MachineRecord = { id, ip: '127.0.0.1', metadata: o.metadata ?? {}, version: 'test', startedAt: '' };
  await lease.put(keys.machine(id)).value(JSON.stringify(rec)).exec();
  return lease;
}
