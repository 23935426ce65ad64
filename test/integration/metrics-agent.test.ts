/**
 * A real `fleetx agent` in an nspawn host serves its Prometheus metrics:
 * scraped over the bridge (`--metrics-listen :9170`, every address) and from
 * inside the host on 127.0.0.1, where the dd-agent sidecar scrapes it. The
 * values follow what the agent did: a unit started, passes run, etcd calls
 * timed, and etcd going away shows as request errors and a watch down.
 */
import { describe, expect, it } from 'vitest';
import { startEtcd, stopEtcd } from '../../src/sandbox/etcd.js';
import { useAgentHost } from '../helpers/agent-host.js';
import { parseMetrics } from '../helpers/metrics.js';

const agent = useAgentHost({ tag: 'metrics', name: 'fxt-metr', ipSuffix: 11, ttl: 3, agents: { 'fleetx-agent': ['--metrics-listen', ':9170'] } });
const until = agent.waitFor;

const parse = parseMetrics;

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`http://${agent.ip}:9170/metrics`, { signal: AbortSignal.timeout(5_000) });
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

const sum = (m: Map<string, number>, prefix: string) => [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

describe('the agent\'s /metrics', () => {
  it('counts the unit it runs, its passes and tasks, its etcd calls and its registration', async () => {
    await agent.submit('metrics-sleep.service', '[Unit]\nDescription=metrics test\n[Service]\nExecStart=/bin/sleep infinity\n', 'launched');
    const m = await until('the unit counted active', async () => {
      const s = await scrape();
      return s.get('fleetx_agent_units{state="active"}') === 1 ? s : undefined;
    });
    expect(m.get('fleetx_agent_reconcile_passes_total{outcome="ok"}')).toBeGreaterThan(0);
    expect(m.get('fleetx_agent_reconcile_pass_duration_seconds_count')).toBeGreaterThan(0);
    expect(m.get('fleetx_agent_tasks_total{type="start"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('fleetx_agent_schedule_watch_up')).toBe(1);
    expect(m.get('fleetx_machine_presence_changes_total{change="registered"}')).toBe(1);
    expect(m.get('fleetx_etcd_request_duration_seconds_count{method="KV/Range"}')).toBeGreaterThan(0);
    expect(m.get('fleetx_etcd_request_duration_seconds_count{method="Lease/LeaseGrant"}')).toBe(1);
    // --no-engine: this agent never leads
    expect(m.get('fleetx_engine_leader')).toBe(0);
    expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('answers on 127.0.0.1 inside the host, where a sidecar with the host network scrapes', async () => {
    const r = await agent.host.exec(['/usr/bin/node', '-e', 'fetch("http://127.0.0.1:9170/metrics").then((r) => r.text()).then((t) => process.stdout.write(t))']);
    expect(parse(r.stdout).get('fleetx_agent_units{state="active"}')).toBe(1);
    const other = await agent.host.exec(['/usr/bin/node', '-e', 'fetch("http://127.0.0.1:9170/").then((r) => process.stdout.write(String(r.status)))']);
    expect(other.stdout).toBe('404');
  });

  it('etcd gone: failed requests are counted by method and code, the watch is down; back: up again', async () => {
    await stopEtcd(agent.etcdSpec.dataDir);
    try {
      await until('etcd errors counted and the watch down', async () => {
        const s = await scrape();
        return s.get('fleetx_agent_schedule_watch_up') === 0 && sum(s, 'fleetx_etcd_request_errors_total{') > 0 ? s : undefined;
      }, 40_000);
    } finally {
      await startEtcd(agent.etcdSpec);
    }
    const back = await until('watch up again', async () => {
      const s = await scrape();
      return s.get('fleetx_agent_schedule_watch_up') === 1 ? s : undefined;
    }, 40_000);
    const errors = [...back.keys()].filter((k) => k.startsWith('fleetx_etcd_request_errors_total{'));
    for (const k of errors) expect(k).toMatch(/^fleetx_etcd_request_errors_total\{method="\w+\/\w+",code="[A-Z_]+"\}$/);
    // the unit kept running through it
    expect(back.get('fleetx_agent_units{state="active"}')).toBe(1);
  }, 120_000);
});
