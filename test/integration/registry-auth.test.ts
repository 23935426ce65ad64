import { beforeAll, describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { resolveConnection, type ConnectionOptions } from '../../src/registry/connection.js';
import { etcd3 } from '../../src/registry/libraries.js';
import { openRegistry } from '../../src/registry/open.js';
import type { Registry } from '../../src/registry/registry.js';
import { etcdctlOn, type EtcdServer } from '../helpers/etcd.js';
import { rejection } from '../helpers/errors.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitFor } from '../helpers/wait.js';

const fixture = useEtcd({ auth: true });
let etcd: EtcdServer;

beforeAll(async () => {
  etcd = fixture.server;
  // a user that may only read fleetx's keys
  await etcdctlOn(etcd, ['role', 'add', 'reader']);
  await etcdctlOn(etcd, ['role', 'grant-permission', 'reader', 'read', '/fleetx/', '--prefix']);
  await etcdctlOn(etcd, ['user', 'add', 'reader', '--new-user-password=readpw']);
  await etcdctlOn(etcd, ['user', 'grant-role', 'reader', 'reader']);
});

function conn(env: NodeJS.ProcessEnv): ConnectionOptions {
  return resolveConnection({ endpoint: etcd.endpoints[0], 'request-timeout': '3' }, env);
}

async function using<T>(c: ConnectionOptions, fn: (r: Registry) => Promise<T>): Promise<T> {
  const { registry, close } = openRegistry(c, () => new Date(0));
  try {
    return await fn(registry);
  } finally {
    close();
  }
}

const fleetx = () => conn({ FLEETX_ETCD_USERNAME: etcd.username, FLEETX_ETCD_PASSWORD: etcd.password });

describe('etcd with authentication', () => {
  it('works with the fleetx user', async () => {
    await using(fleetx(), async (r) => {
      await r.createUnit({ name: 'auth.service', hash: 'h', targetState: 'inactive' }, 'A', { replace: false });
      await r.setTargetState('auth.service', 'launched');
      expect(await r.getUnit('auth.service')).toMatchObject({ hash: 'h', targetState: 'launched' });
    });
  });

  it('a wrong password is a usage error naming the user', async () => {
    const e = await using(conn({ FLEETX_ETCD_USERNAME: 'fleetx', FLEETX_ETCD_PASSWORD: 'wrong' }), (r) => rejection(r.listUnits()));
    expect(e.kind).toBe('usage');
    expect(e.retryable).toBe(false);
    expect(e.message).toBe('etcd rejected the credentials for user fleetx');
    expect(e.hint).toMatch(/--etcd-password/);
  });

  it('no credentials at all says authentication is required', async () => {
    const e = await using(conn({}), (r) => rejection(r.listUnits()));
    expect(e.kind).toBe('usage');
    expect(e.message).toBe(`etcd at ${etcd.endpoints[0]} requires authentication`);
  });

  it('a user without write permission gets a permission error and changes nothing', async () => {
    const before = await using(fleetx(), (r) => r.snapshot());
    const reader = conn({ FLEETX_ETCD_USERNAME: 'reader', FLEETX_ETCD_PASSWORD: 'readpw' });
    const e = await using(reader, (r) => rejection(r.createUnit({ name: 'x.service', hash: 'x', targetState: 'inactive' }, 'X', { replace: false })));
    expect(e.kind).toBe('usage');
    expect(e.message).toBe('etcd user reader may not access keys under /fleetx (permission denied)');
    expect(await using(fleetx(), (r) => r.snapshot())).toEqual(before);
    // reading is allowed
    expect((await using(reader, (r) => r.listUnits())).map((u) => u.name)).toEqual(['auth.service']);
  });

  it('a watch created after etcd dropped the user\'s tokens (its password was set) is served on a fresh token, not cancelled for ever', async () => {
    const hosts = etcd.endpoints;
    const client = new etcd3.Etcd3({ hosts, auth: { username: etcd.username!, password: etcd.password! } });
    const root = new etcd3.Etcd3({ hosts, auth: { username: 'root', password: etcd.rootPassword! } });
    try {
      const first = await client.watch().prefix('/fleetx/tok-a/').create(); // the stream, on the first token
      await root.user(etcd.username!).setPassword(etcd.password!); // same password: etcd still drops the tokens
      const seen: string[] = [];
      const errors: string[] = [];
      const second = client.watch().prefix('/fleetx/tok-b/').watcher();
      second.on('put', (kv) => seen.push(kv.key.toString()));
      second.on('error', (e) => errors.push(String(e)));
      await new Promise<void>((done) => second.once('connected', () => done()));
      await client.put('/fleetx/tok-b/x').value('1');
      await waitFor('the put seen by the new watch', () => seen.includes('/fleetx/tok-b/x'), 10_000);
      expect(errors).toEqual([]);
      await Promise.all([first.cancel(), second.cancel()]);
    } finally {
      client.close();
      root.close();
    }
  });
});
