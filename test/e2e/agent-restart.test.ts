/**
 * The agent is not the workload: SIGKILL it (systemd restarts it, as on a
 * real host) and the units it started keep their processes. And the CLI's
 * stop / start / destroy reach systemd on the host quickly: CLI -> etcd ->
 * engine (schedule key) -> agent -> systemd. The figures are printed; the
 * bounds asserted are loose on purpose (shared, noisy 2-core machine).
 */
import { describe, expect, it } from 'vitest';
import type { Host } from '../../src/sandbox/host.js';
import type { MachineRecord } from '../../src/registry/records.js';
import { sleep, useSandbox } from '../helpers/sandbox.js';

const sb = useSandbox({ tag: 'ars', hosts: 3 });

const UNIT = ['[Unit]', 'Description=e2e restart %i', '[Service]', 'ExecStart=/bin/sleep infinity', ''].join('\n');
const UNITS = ['r@1.service', 'r@2.service', 'r@3.service', 'r@4.service', 'r@5.service', 'r@6.service'];
const BOUND_MS = 3_000;

/** unit -> { host, MainPID } for every r@ unit running anywhere. */
async function mainPids(): Promise<Record<string, { host: string; pid: string }>> {
  const out: Record<string, { host: string; pid: string }> = {};
  for (const h of sb.runningHosts()) {
    for (const u of await sb.runningUnits(h, 'r@*')) out[u] = { host: h.name, pid: (await sb.show(h, u, ['MainPID'])).MainPID! };
  }
  return out;
}

async function activeState(h: Host, unit: string): Promise<string> {
  return (await sb.show(h, unit, ['ActiveState'])).ActiveState!;
}

/** Runs a CLI command and polls systemd on `host` every 25 ms until `reached`; returns the elapsed ms. */
async function timeToHost(argv: string[], host: Host, reached: () => Promise<boolean>): Promise<{ ms: number; cliMs: number }> {
  const t0 = Date.now();
  await sb.cliOk(argv);
  const cliMs = Date.now() - t0;
  await sb.until(`${argv.join(' ')} seen on ${host.name}`, async () => reached(), 15_000, 25);
  return { ms: Date.now() - t0, cliMs };
}

describe('agent restart and CLI latency on real hosts', () => {
  it('SIGKILL of the agent (the engine leader\'s): systemd restarts it, no workload restarts', async () => {
    sb.writeUnit('r@.service', UNIT);
    await sb.cliOk(['start', '--no-block', ...UNITS]);
    await sb.until('six units running', async () => Object.keys(await mainPids()).length === UNITS.length, 30_000);
    const before = await mainPids();

    // The worst case: the agent that also leads the engine.
    const leaderId = (await sb.leader())!;
    const host = sb.hostOfMachine(leaderId);
    const agentBefore = await sb.show(host, 'fleetx-agent', ['MainPID', 'NRestarts']);
    const recordBefore = (await sb.etcd().get(sb.keys.machine(host.machineId)).json()) as MachineRecord;
    const t0 = Date.now();
    const kill = await host.exec(['systemctl', 'kill', '-s', 'KILL', 'fleetx-agent']);
    expect(kill.code, kill.stderr).toBe(0);

    // Restarted by systemd (RestartSec=2), and registered again.
    await sb.until('agent restarted', async () => {
      const now = await sb.show(host, 'fleetx-agent', ['MainPID', 'NRestarts', 'ActiveState']);
      return now.ActiveState === 'active' && now.MainPID !== agentBefore.MainPID && Number(now.NRestarts) > Number(agentBefore.NRestarts);
    }, 20_000);
    await sb.until('agent registered again', async () => {
      const rec = (await sb.etcd().get(sb.keys.machine(host.machineId)).json()) as MachineRecord | null;
      return rec !== null && rec.startedAt !== recordBefore.startedAt;
    }, 30_000);
    const registeredMs = Date.now() - t0;

    // New work is placed and run again (the engine has a leader, the new agent acts).
    await sb.cliOk(['start', '--no-block', 'r@7.service']);
    await sb.until('r@7 running', async () => 'r@7.service' in (await mainPids()), 30_000);
    console.log(`agent SIGKILLed on ${host.name} (engine leader): registered again after ${registeredMs} ms, new work running after ${Date.now() - t0} ms; leader now ${(await sb.leader())?.slice(0, 8)}`);

    await sleep(2_000); // a wrong restart by the new agent would show by now
    const after = await mainPids();
    delete after['r@7.service'];
    expect(after).toEqual(before);
  }, 90_000);

  it('stop / start / destroy through the CLI show in systemctl on the host within a second or so', async () => {
    const where = await mainPids();
    const figures: Record<string, number[]> = { stop: [], start: [], 'destroy (stopped)': [], 'destroy (file gone)': [] };
    const cli: Record<string, number[]> = { stop: [], start: [], destroy: [] };
    for (const unit of ['r@1.service', 'r@2.service', 'r@3.service']) {
      const host = sb.host(where[unit]!.host);
      const stop = await timeToHost(['stop', '--no-block', unit], host, async () => (await activeState(host, unit)) === 'inactive');
      const start = await timeToHost(['start', '--no-block', unit], host, async () => (await activeState(host, unit)) === 'active');
      const destroyed = timeToHost(['destroy', unit], host, async () => (await activeState(host, unit)) === 'inactive');
      // then its file is removed and systemd reloaded: systemd no longer finds it
      const t0 = Date.now();
      const stopped = await destroyed;
      await sb.until(`${unit} gone`, async () => (await sb.show(host, unit, ['LoadState'])).LoadState === 'not-found', 15_000, 25);
      figures.stop!.push(stop.ms);
      figures.start!.push(start.ms);
      figures['destroy (stopped)']!.push(stopped.ms);
      figures['destroy (file gone)']!.push(Date.now() - t0);
      cli.stop!.push(stop.cliMs);
      cli.start!.push(start.cliMs);
      cli.destroy!.push(stopped.cliMs);
    }
    console.log(`CLI command -> seen in systemctl on the host, ms: ${JSON.stringify(figures)}; of which the CLI call itself: ${JSON.stringify(cli)}`);
    for (const ms of Object.values(figures).flat()) expect(ms).toBeLessThan(BOUND_MS);
    // The other units were not touched.
    const rest = await mainPids();
    for (const u of ['r@4.service', 'r@5.service', 'r@6.service']) expect(rest[u]).toEqual(where[u]);
  }, 90_000);
});
