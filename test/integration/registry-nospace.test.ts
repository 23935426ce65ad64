/**
 * etcd's NOSPACE alarm (a member's backend over its quota: every write is
 * refused cluster-wide until an operator frees space and disarms it), on a
 * real etcd whose quota is 1 byte. fleetx names it and says what to do,
 * exits 6 (unavailable: retry later), and a long-running client keeps
 * reading: refused writes must not open the client's per-endpoint circuit
 * breaker (etcd3's default counts every "recoverable" gRPC error, so three
 * refused writes made reads fail as "unreachable" for 5 s at a time).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Etcd3 } from 'etcd3';
import { connect } from '../../src/registry/client.js';
import { toFleetxError } from '../../src/registry/errors.js';
import { fleetx } from '../helpers/cli.js';
import { etcdctlOn, startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let etcd: EtcdServer;
let client: Etcd3;
const dir = mkdtempSync(join(tmpdir(), 'fx-nospace-'));
const opts = () => ({ endpoints: etcd.endpoints, requestTimeoutMs: 3_000, prefix: '/fleetx' });

beforeAll(async () => {
  etcd = await startEtcd({ quotaBackendBytes: 1 });
  client = connect(opts());
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('etcd out of space (NOSPACE alarm)', () => {
  it('a write is refused with the alarm named and the way out; the CLI exits 6 and writes nothing', async () => {
    writeFileSync(join(dir, 'probe.service'), '[Service]\nExecStart=/bin/sleep infinity\n');
    const env = { FLEETX_ENDPOINT: etcd.endpoints[0]!, FLEETX_USER: 'tester', FLEETX_REQUEST_TIMEOUT: '3' };
    const r = await fleetx(['submit', 'probe.service'], env, dir);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain(`etcd at ${etcd.endpoints[0]} refuses writes: it is out of space (NOSPACE alarm: etcdserver: mvcc: database space exceeded)`);
    expect(r.stderr).toContain('etcdctl alarm disarm');
    expect(await etcdctlOn(etcd, ['alarm', 'list'])).toContain('alarm:NOSPACE');
    // Reads still work: the operator can look around.
    const listed = await fleetx(['list-unit-files', '--no-legend'], env, dir);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.trim()).toBe('');
  });

  it('refused writes do not cut a long-running client off its reads', async () => {
    const errors: string[] = [];
    for (let i = 0; i < 5; i++) {
      const e = await client.put(`/fleetx/probe/${i}`).value('x').then(() => undefined, (x: unknown) => toFleetxError(x, opts()));
      errors.push(e?.message ?? 'written');
    }
    expect(new Set(errors).size, errors.join('\n')).toBe(1);
    expect(errors[0]).toMatch(/out of space \(NOSPACE alarm/);
    expect(await client.get('/fleetx/probe/0').string()).toBeNull();
  });
});
