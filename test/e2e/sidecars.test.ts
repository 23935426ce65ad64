/**
 * The sidecars on the demo sandbox: td-agent and dd-agent as global
 * container units on every host, and on a host that joins later
 * (`sandbox up --demo --hosts 4`), doing their jobs with the STAND-IN images
 * (src/images/sidecar-images.ts) through the wiring production uses:
 *  - a line the app logs (the demo's app@ instances are containers; their
 *    output goes to the host's journal through podman's journald log
 *    driver) is found in td-agent's output, /var/lib/td-agent/containers.log;
 *  - dd-agent has scraped the fleetx agent's /metrics on 127.0.0.1:9170
 *    (/var/lib/dd-agent/openmetrics.json on the host, and its log lines).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { demoUp } from '../../src/demo/demo.js';
import { sidecarStates, SIDECAR_UNITS } from '../../src/demo/sidecars.js';
import { REPO } from '../helpers/cli.js';
import { useDemo } from '../helpers/demo.js';

const demo = useDemo({ tag: 'side', hosts: 3 });

/** Waits until both sidecars are active on every registered machine; returns the machines. */
async function sidecarsEverywhere(machines: number, timeoutMs: number): Promise<string[]> {
  return demo.sb.until(`td-agent and dd-agent active on ${machines} machines`, async () => {
    const s = await sidecarStates(demo.sb.etcd(), demo.sb.keys);
    const ok = SIDECAR_UNITS.every((u) => s[u].active.length === machines && s[u].missing.length === 0);
    return ok ? s['td-agent.service'].active : undefined;
  }, timeoutMs, 500);
}

interface FluentEvent {
  tag: string;
  record: Record<string, string>;
}

async function shipped(host: string): Promise<FluentEvent[]> {
  const r = await demo.sb.host(host).exec(['cat', '/var/lib/td-agent/containers.log']);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as FluentEvent);
}

describe('sidecars on the demo sandbox', () => {
  it('td-agent and dd-agent run on every host, as containers of the stand-in images, fluentd as user fluent', async () => {
    const machines = await sidecarsEverywhere(3, 300_000);
    expect(machines).toHaveLength(3);
    for (const name of demo.sb.hostNames()) {
      const h = demo.sb.host(name);
      // running containers, not a unit between restarts
      const ps = await demo.sb.until(`both sidecar containers up on ${name}`, async () => {
        const out = (await h.exec(['podman', 'ps', '--filter', 'status=running', '--format', '{{.Names}} {{.Image}} {{.Labels}}'])).stdout;
        return /^td-agent /m.test(out) && /^dd-agent /m.test(out) ? out : undefined;
      }, 60_000, 500);
      expect(ps).toMatch(/^td-agent \S+\/fluent\/fluentd:v1\.16-debian-1 .*fleetx\.stand-in:true/m);
      expect(ps).toMatch(/^dd-agent \S+\/datadog\/agent:7 .*fleetx\.stand-in:true/m);
    }
    // fluent (uid 999), in the journal's group so it may read it
    const h = demo.sb.host(demo.sb.hostNames()[0]!);
    const journalGid = (await h.exec(['stat', '-c', '%g', '/var/log/journal'])).stdout.trim();
    const [uid, groups] = (await h.exec(['podman', 'exec', 'td-agent', '/usr/bin/node', '-p', 'process.getuid() + " " + process.getgroups().join(",")'])).stdout.trim().split(' ');
    expect(uid).toBe('999');
    expect(groups!.split(',')).toContain(journalGid);
  }, 420_000);

  it('a line the app logs reaches td-agent\'s output through the journal', async () => {
    // the demo's app instances are containers (units/app@, podman, named app-N); web.mjs says it listens when it starts
    const found = await demo.sb.until('an app container\'s line in containers.log', async () => {
      for (const host of demo.sb.hostNames()) {
        const ev = (await shipped(host)).find((e) => /^app-\d+$/.test(e.record.CONTAINER_NAME ?? '') && /^web v1 listening on :8080/.test(e.record.MESSAGE ?? ''));
        if (ev) return ev;
      }
      return undefined;
    }, 60_000, 500);
    expect(found.tag).toBe('containers');
    expect(found.record._COMM).toBe('conmon');
    // dd-agent's own output is a container's output too: shipped the same way
    const host = demo.sb.hostNames()[0]!;
    expect((await shipped(host)).some((e) => e.record.CONTAINER_NAME === 'dd-agent' && /STAND-IN/.test(e.record.MESSAGE ?? ''))).toBe(true);
  }, 120_000);

  it('dd-agent has scraped the fleetx agent\'s metrics on 127.0.0.1:9170', async () => {
    const host = demo.sb.hostNames()[2]!;
    const last = await demo.sb.until('a successful scrape in openmetrics.json', async () => {
      const r = await demo.sb.host(host).exec(['cat', '/var/lib/dd-agent/openmetrics.json']).catch(() => undefined);
      if (!r) return undefined;
      const scrape = (JSON.parse(r.stdout) as Record<string, { ok: boolean; values?: { metric: string; value: number }[] }>)['http://127.0.0.1:9170/metrics'];
      return scrape?.ok ? scrape : undefined;
    }, 60_000, 500);
    const metric = (name: string) => last.values!.find((v) => v.metric === name)?.value;
    // this host runs both sidecars: the agent counts them active
    expect(metric('fleetx.fleetx_agent_units{state="active"}')).toBeGreaterThanOrEqual(2);
    expect(metric('fleetx.fleetx_agent_schedule_watch_up')).toBe(1);
    expect(last.values!.some((v) => v.metric.startsWith('fleetx.fleetx_etcd_request_duration_seconds_count{'))).toBe(true);
    const journal = (await demo.sb.host(host).exec(['journalctl', '-o', 'cat', 'CONTAINER_NAME=dd-agent'])).stdout;
    expect(journal).toMatch(/openmetrics check: scraped http:\/\/127\.0\.0\.1:9170\/metrics: \d+ samples/);
    // the key (a fleetx secret; the sandbox's is a random placeholder) reached the container by name only
    expect(journal).toMatch(/api key set/);
    const key = readFileSync(join(demo.sb.stateDir, 'demo', 'dd-api-key'), 'utf8').trim();
    expect(key).toMatch(/^sandbox-not-a-datadog-key-/);
    const cat = await demo.sb.cliOk(['cat', 'dd-agent.service']);
    expect(cat.stdout).toContain('DD_API_KEY=dd-api-key');
    expect(cat.stdout).not.toContain(key);
    const everything = (await demo.sb.host(host).exec(['journalctl', '-o', 'cat', '--no-pager'])).stdout;
    expect(everything).not.toContain(key);
    const ps = (await demo.sb.host(host).exec(['ps', '-eo', 'args'])).stdout;
    expect(ps).not.toContain(key);
  }, 120_000);

  it('sandbox up --demo --hosts 4: the sidecars start on the new host', async () => {
    const status = await demo.sb.up(4);
    await demoUp(status, { repoRoot: REPO.replace(/\/$/, ''), timeoutMs: 180_000 });
    const machines = await sidecarsEverywhere(4, 240_000);
    const added = status.hosts.find((h) => h.name === demo.sb.hostNames()[3])!;
    expect(machines).toContain(added.machineId);
  }, 500_000);
});
