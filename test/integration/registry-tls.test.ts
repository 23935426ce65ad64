import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetxError } from '../../src/errors/errors.js';
import { checkConnectionFiles, resolveConnection, type ConnectionOptions } from '../../src/registry/connection.js';
import { openRegistry } from '../../src/registry/open.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;

beforeAll(async () => {
  etcd = await startEtcd({ tls: true });
});

afterAll(async () => {
  await etcd?.stop();
});

async function attempt(conn: ConnectionOptions): Promise<unknown> {
  const { registry, close } = openRegistry(conn);
  try {
    return await registry.listUnits();
  } catch (e) {
    return e;
  } finally {
    close();
  }
}

describe('etcd with TLS client certificates', () => {
  it('works with CA, client cert and key from fleetctl-style env', async () => {
    const conn = resolveConnection(
      { 'request-timeout': '3' },
      {
        FLEETCTL_ENDPOINT: etcd.endpoints[0],
        FLEETCTL_CA_FILE: etcd.caFile,
        FLEETCTL_CERT_FILE: etcd.certFile,
        FLEETCTL_KEY_FILE: etcd.keyFile,
      },
    );
    expect(conn.endpoints[0]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await checkConnectionFiles(conn);
    const { registry, close } = openRegistry(conn, () => new Date(0));
    try {
      await registry.createUnit({ name: 'tls.service', hash: 'h', targetState: 'loaded' }, 'T', { replace: false });
      expect((await registry.listUnits()).map((u) => u.name)).toEqual(['tls.service']);
      expect(await registry.getBody('h')).toBe('T');
    } finally {
      close();
    }
  });

  it('without a client certificate the handshake is rejected (not timed out), with a TLS hint', async () => {
    const conn = resolveConnection({ endpoint: etcd.endpoints[0], 'ca-file': etcd.caFile, 'request-timeout': '3' }, {});
    const e = await attempt(conn);
    expect(e).toBeInstanceOf(FleetxError);
    expect(e).toMatchObject({ kind: 'unavailable', retryable: false });
    expect((e as FleetxError).message).toMatch(new RegExp(`^etcd at ${etcd.endpoints[0]} rejected the TLS connection: .*bad certificate`));
    expect((e as FleetxError).hint).toMatch(/--cert-file/);
  });

  it('a CA that did not sign the server certificate is a TLS error', async () => {
    // The client certificate is a leaf, not the CA: verification must fail.
    const conn = resolveConnection(
      { endpoint: etcd.endpoints[0], 'ca-file': etcd.certFile, 'cert-file': etcd.certFile, 'key-file': etcd.keyFile },
      {},
    );
    const e = await attempt(conn);
    expect(e).toMatchObject({ kind: 'unavailable', retryable: false });
    expect((e as FleetxError).message).toMatch(/rejected the TLS connection: .*(verify|certificate)/);
  });

  it('plain http against the TLS port is unavailable, not a hang', async () => {
    const conn = resolveConnection({ endpoint: etcd.endpoints[0]!.replace('https:', 'http:'), 'request-timeout': '2' }, {});
    const e = await attempt(conn);
    expect(e).toMatchObject({ kind: 'unavailable' });
  });
});

describe('etcd with TLS and authentication together', () => {
  let both: EtcdServer;
  beforeAll(async () => {
    both = await startEtcd({ tls: true, auth: true });
  });
  afterAll(async () => {
    await both?.stop();
  });

  it('works with client certificate plus the fleetx user', async () => {
    const conn = resolveConnection(
      {
        endpoint: both.endpoints[0],
        'ca-file': both.caFile,
        'cert-file': both.certFile,
        'key-file': both.keyFile,
        'etcd-username': both.username,
        'etcd-password': both.password,
      },
      {},
    );
    const { registry, close } = openRegistry(conn, () => new Date(0));
    try {
      await registry.putBody('b', 'B');
      expect(await registry.getBody('b')).toBe('B');
    } finally {
      close();
    }
  });
});
