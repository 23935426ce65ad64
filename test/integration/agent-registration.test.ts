/**
 * The agent's Registration against a real etcd behind a TCP proxy: a
 * registration that failed while etcd was unreachable waits out its
 * backoff, unless the agent learns etcd answers again (a watch reconnected)
 * and calls retryNow(). Before, an agent re-registered up to 5 s after an
 * etcd outage ended, its records gone meanwhile (fault matrix, quorum lost).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Registration } from '../../src/agent/registration.js';
import { StopSignal } from '../../src/agent/util.js';
import { useEtcd } from '../helpers/etcd-fixture.js';
import { sleep, waitFor as until } from '../helpers/wait.js';

const etcd = useEtcd({ proxy: true });
const ME = 'machine-r';
let stop = new StopSignal();
const loops: Promise<void>[] = [];

afterEach(async () => {
  stop.stop();
  await Promise.all(loops.splice(0));
  await etcd.proxy.restore();
  stop = new StopSignal();
});

describe('registration after etcd was unreachable (real etcd, proxy cut)', () => {
  it('retries at once on retryNow(), not after its backoff', async () => {
    const keys = etcd.freshKeys('reg');
    const events: string[] = [];
    // a backoff far longer than the test: only retryNow() can bring the second attempt
    const reg = new Registration(etcd.viaProxy, keys, { id: ME, ip: '10.0.0.7', hostname: 'r', metadata: {} }, {
      ttlSec: 3, version: 'test', startedAt: new Date().toISOString(), retry: { initialMs: 600_000, maxMs: 600_000 },
    }, {
      registered: (id) => events.push(`registered ${id}`),
      lost: () => events.push('lost'),
      problem: () => events.push('problem'),
    });
    await etcd.proxy.cut();
    loops.push(reg.run(stop));
    await until('the first attempt failed', async () => events.includes('problem') || undefined);

    await etcd.proxy.restore();
    // etcd answers through the proxy again (what a reconnected watch tells the agent)
    await until('etcd answers through the proxy', async () => (await etcd.viaProxy.get(keys.machine(ME)).string().then(() => true, () => undefined)));
    await sleep(1000);
    expect(reg.isLive).toBe(false); // still in its backoff
    expect(await etcd.json(keys.machine(ME))).toBeUndefined();

    reg.retryNow();
    await until('registered', async () => reg.isLive || undefined);
    expect(await etcd.json(keys.machine(ME))).toMatchObject({ id: ME, ip: '10.0.0.7' });
    expect(events.filter((e) => e.startsWith('registered'))).toHaveLength(1);
  });

  it('retryNow() with nothing to retry changes nothing', async () => {
    const keys = etcd.freshKeys('reg');
    const ids: string[] = [];
    const reg = new Registration(etcd.viaProxy, keys, { id: ME, ip: '10.0.0.8', hostname: 'r', metadata: {} }, {
      ttlSec: 3, version: 'test', startedAt: new Date().toISOString(),
    }, { registered: (id) => ids.push(id), lost: () => undefined, problem: () => undefined });
    loops.push(reg.run(stop));
    await until('registered', async () => reg.isLive || undefined);
    reg.retryNow();
    await sleep(500);
    expect(ids).toHaveLength(1);
    expect((await etcd.client.get(keys.machine(ME)).exec()).kvs[0]?.lease).toBe(ids[0]);
  });
});
