/**
 * ServiceChecks against a real etcd reached through a TCP proxy the test can
 * cut: service records are listed, followed, and after a watch that cannot
 * resume (history compacted while cut off) re-listed and watched again,
 * without the uncaught exception etcd3 throws when a failed watcher is
 * cancelled.
 */
import { describe, expect, it } from 'vitest';
import type { ChecksByTemplate } from '../../src/health/monitor.js';
import { checksFrom, ServiceChecks } from '../../src/health/services.js';
import { keyspace } from '../../src/registry/keys.js';
import type { HealthCheck } from '../../src/service/types.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { waitFor } from '../helpers/wait.js';

const keys = keyspace('/hs');
const check = (port: number): HealthCheck => ({ type: 'http', port, path: '/', intervalMs: 1000, timeoutMs: 500, threshold: 1, failureThreshold: 2 });
const svc = (name: string, template: string, health: unknown) => JSON.stringify({ name, template, health });

const etcd = useEtcd({ proxy: true });

const portOf = (c: ChecksByTemplate | undefined, t: string) => c?.get(t)?.port;

describe('checksFrom', () => {
  it.each([
    { why: 'a good record', value: svc('a', 'a@.service', check(80)), ok: true },
    { why: 'not JSON', value: 'nope', ok: false },
    { why: 'no template', value: JSON.stringify({ health: check(80) }), ok: false },
    { why: 'http without port', value: svc('a', 'a@.service', { ...check(80), port: undefined }), ok: false },
    { why: 'command without argv', value: svc('a', 'a@.service', { ...check(80), type: 'command' }), ok: false },
    { why: 'unknown type', value: svc('a', 'a@.service', { ...check(80), type: 'grpc' }), ok: false },
  ])('$why', ({ value, ok }) => {
    const { checks, bad } = checksFrom([{ key: '/p/service/a', value }]);
    expect(bad.length === 0).toBe(ok);
    if (ok) expect(checks.get('a@.service')).toEqual(check(80));
  });

  it('an unusable check maps its template to undefined (instances stay unknown)', () => {
    const { checks } = checksFrom([{ key: '/p/service/a', value: svc('a', 'a@.service', { type: 'http' }) }]);
    expect(checks.has('a@.service')).toBe(true);
    expect(checks.get('a@.service')).toBeUndefined();
  });
});

describe('ServiceChecks', () => {
  it('lists, follows changes, and recovers from a watch that cannot resume after compaction', async () => {
    await etcd.client.put(keys.service('web')).value(svc('web', 'web@.service', check(8080))).exec();
    let latest: ChecksByTemplate | undefined;
    const problems: string[] = [];
    const s = new ServiceChecks(etcd.viaProxy, keys, { changed: (c) => (latest = c), problem: (m) => problems.push(m) }, 200);
    try {
      await s.start();
      await waitFor('listed', () => portOf(latest, 'web@.service') === 8080);
      await etcd.client.put(keys.service('api')).value(svc('api', 'api@.service', check(9000))).exec();
      await waitFor('api seen', () => portOf(latest, 'api@.service') === 9000);

      await etcd.proxy.cut();
      await etcd.client.put(keys.service('web')).value(svc('web', 'web@.service', check(8081))).exec();
      const res = await etcd.client.delete().key(keys.service('api')).exec();
      await etcd.client.put('/hs/other').value('x').exec();
      await etcd.client.put('/hs/other').value('y').exec();
      await etcd.client.kv.compact({ revision: (BigInt(res.header.revision) + 2n).toString(), physical: true });
      await etcd.proxy.restore();

      await waitFor('re-listed after the watch failed', () => portOf(latest, 'web@.service') === 8081 && !latest!.has('api@.service'));
      // and it keeps following
      await etcd.client.put(keys.service('web')).value(svc('web', 'web@.service', check(8082))).exec();
      await waitFor('follows again', () => portOf(latest, 'web@.service') === 8082);
      // (the re-list came either from the watch failing on the compacted revision or from the
      // reconnect probe that gets there first, see registry/watch.ts: both re-list; converging
      // on etcd's content past a compaction is what proves it)
    } finally {
      await s.stop();
    }
    // give etcd3 a moment: a wrongly cancelled watcher would throw (uncaught) about now
    await new Promise((r) => setTimeout(r, 500));
  }, 40_000);
});
