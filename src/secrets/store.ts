/**
 * Secrets in etcd. Two keys per secret (see registry/keys.ts):
 *
 *   {p}/secret/{name}    SecretRecord (name, version, updatedAt, updatedBy): what operators list
 *   {p}-secrets/{name}   the value: only the agents' etcd role may read it
 *
 * Both change in one transaction, guarded by the record's revision, so the
 * index and the value never disagree and two concurrent `set`s each get their
 * own version. The operator writes the value without ever reading it (etcd's
 * write permission is enough for a put and a delete without prev_kv).
 *
 * Errors: FleetxError from registry/errors.ts; a permission refusal on the
 * value key is 'usage' naming the role rule to add.
 */
import type { Etcd3 } from 'etcd3';
import { conflictError, FleetxError, usageError } from '../errors/errors.js';
import { decode, decodeKv, encode } from '../registry/codec.js';
import { toFleetxError, type ErrorContext } from '../registry/errors.js';
import type { Keyspace } from '../registry/keys.js';
import { etcd3 } from '../registry/libraries.js';
import { checkSecretName } from './names.js';

export interface SecretRecord {
  name: string;
  /** 1 on the first set, +1 on each set after it */
  version: number;
  updatedAt: string;
  /** who set it (FLEETX_USER or the login name, as for deploys) */
  updatedBy: string;
}

export interface SetContext {
  now: Date;
  by: string;
}

/** What the agent asks for: values by name; a value it may not read is an error, a missing one is just absent. */
export interface SecretValues {
  values(names: readonly string[]): Promise<Map<string, string>>;
}

export class SecretStore implements SecretValues {
  constructor(
    private readonly client: Etcd3,
    private readonly keys: Keyspace,
    private readonly connection: ErrorContext,
  ) {}

  /** Stores a new version. @throws 'invalid' (name), 'usage' (permission), 'conflict' (busy) */
  async set(name: string, value: string, ctx: SetContext): Promise<SecretRecord> {
    checkSecretName(name);
    return this.run('write', async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const res = await this.client.get(this.keys.secret(name)).exec();
        const kv = res.kvs[0];
        const prev = kv ? decode<SecretRecord>(this.keys.secret(name), kv.value.toString()) : undefined;
        const record: SecretRecord = { name, version: (prev?.version ?? 0) + 1, updatedAt: ctx.now.toISOString(), updatedBy: ctx.by };
        const txn = this.client.if(this.keys.secret(name), 'Mod', '==', kv ? kv.mod_revision : 0);
        const done = await txn
          .then(this.client.put(this.keys.secretValue(name)).value(value), this.client.put(this.keys.secret(name)).value(encode(record)))
          .commit();
        if (done.succeeded) return record;
      }
      throw conflictError(`secret ${name} is being set by others at the same time; try again`);
    });
  }

  /** Deletes value and record. Returns the record that was there, if any. */
  async remove(name: string): Promise<SecretRecord | undefined> {
    checkSecretName(name);
    return this.run('write', async () => {
      const res = await this.client.get(this.keys.secret(name)).exec();
      const kv = res.kvs[0];
      // the value goes even when the record is gone (a half-removed secret is removed again)
      const done = await this.client
        .if(this.keys.secret(name), 'Mod', '==', kv ? kv.mod_revision : 0)
        .then(this.client.delete().key(this.keys.secretValue(name)), this.client.delete().key(this.keys.secret(name)))
        .commit();
      if (!done.succeeded) throw conflictError(`secret ${name} was set by someone else just now; nothing removed`, 'look with fleetx secret list, then try again');
      return kv ? decodeKv<SecretRecord>(kv) : undefined;
    });
  }

  /** Every secret's record, by name. Never reads a value. */
  async list(): Promise<SecretRecord[]> {
    return this.run('list', async () => {
      const kvs = await this.client.getAll().prefix(this.keys.secrets()).exec();
      return kvs.kvs.map((kv) => decodeKv<SecretRecord>(kv)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  async get(name: string): Promise<SecretRecord | undefined> {
    checkSecretName(name);
    return this.run('list', async () => {
      const text = await this.client.get(this.keys.secret(name)).string();
      return text === null ? undefined : decode<SecretRecord>(this.keys.secret(name), text);
    });
  }

  /** The values of these secrets (the agents' side). @throws 'usage' when this etcd user may not read them. */
  async values(names: readonly string[]): Promise<Map<string, string>> {
    return this.run('read', async () => {
      const out = new Map<string, string>();
      await Promise.all(
        names.map(async (n) => {
          const v = await this.client.get(this.keys.secretValue(n)).string();
          if (v !== null) out.set(n, v);
        }),
      );
      return out;
    });
  }

  /**
   * Whether this etcd user can read secret values: true means the cluster is
   * not protecting them from whoever holds these credentials (auth off, or a
   * role that grants read on the values' range). The CLI warns about it.
   */
  async valuesReadable(name: string): Promise<boolean> {
    try {
      await this.client.get(this.keys.secretValue(name)).exec();
      return true;
    } catch (e) {
      if (e instanceof etcd3.EtcdPermissionDeniedError) return false;
      throw toFleetxError(e, this.connection);
    }
  }

  private async run<T>(what: 'write' | 'read' | 'list', fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof FleetxError) throw e;
      if (e instanceof etcd3.EtcdPermissionDeniedError) throw permissionError(what, this.keys, this.connection);
      throw toFleetxError(e, this.connection);
    }
  }
}

function permissionError(what: 'write' | 'read' | 'list', keys: Keyspace, c: ErrorContext): FleetxError {
  const user = c.username ?? '(none)';
  if (what === 'read') {
    return usageError(
      `etcd user ${user} may not read secret values (keys under ${keys.secretValues()})`,
      `only the agents' role reads them: grant it read on ${keys.secretValues()} (see docs/SECURITY.md)`,
    );
  }
  if (what === 'write') {
    return usageError(
      `etcd user ${user} may not store secrets (keys under ${keys.secrets()} and ${keys.secretValues()})`,
      `grant the operators' role readwrite on ${keys.prefix}/ and write (not read) on ${keys.secretValues()} (see docs/SECURITY.md)`,
    );
  }
  return usageError(`etcd user ${user} may not list secrets (keys under ${keys.secrets()})`, `grant the role read on ${keys.prefix}/`);
}
