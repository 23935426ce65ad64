/**
 * End to end, on real systemd hosts: the CLI writes desired state to the
 * sandbox's etcd, the elected engine places units, the agents run them.
 * Conflicts spread instances over distinct hosts (the one that cannot be
 * placed says why), and a global unit runs everywhere, a host added later
 * included.
 */
import { describe, expect, it } from 'vitest';
import type { Host } from '../../src/sandbox/host.js';
import { useSandbox } from '../helpers/sandbox.js';

const sb = useSandbox({ tag: 'plc', hosts: 3 });

const APP = ['[Unit]', 'Description=e2e app %i', '[Service]', 'ExecStart=/bin/sleep infinity', '[X-Fleet]', 'Conflicts=app@*.service', ''].join('\n');
const GLOBAL = ['[Unit]', 'Description=e2e global', '[Service]', 'ExecStart=/bin/sleep infinity', '[X-Fleet]', 'Global=true', ''].join('\n');
const APPS = ['app@1.service', 'app@2.service', 'app@3.service', 'app@4.service'];

/** host name -> app@ instances with processes on it, read from systemd on every running host. */
async function appsPerHost(hosts: Host[] = sb.runningHosts()): Promise<Record<string, string[]>> {
  const lists = await Promise.all(hosts.map((h) => sb.runningUnits(h, 'app@*')));
  return Object.fromEntries(hosts.map((h, i) => [h.name, lists[i]!]));
}

describe('placement on real hosts', () => {
  let placed: Record<string, string[]>;

  it('four conflicting instances on three hosts: three run on three different hosts, the fourth waits', async () => {
    sb.writeUnit('app@.service', APP);
    await sb.cliOk(['start', '--no-block', ...APPS]);
    placed = await sb.until('three app@ instances running', async () => {
      const per = await appsPerHost();
      return Object.values(per).flat().length >= 3 ? per : undefined;
    });
    // Give a wrong fourth placement the time to show up before judging.
    await new Promise((r) => setTimeout(r, 1_500));
    placed = await appsPerHost();
    expect(Object.values(placed).map((units) => units.length)).toEqual([1, 1, 1]);
    // The scheduler walks units by name: the last one is left over.
    expect(Object.values(placed).flat().sort()).toEqual(APPS.slice(0, 3));

    // What machines report matches what systemd runs.
    const listed = JSON.parse((await sb.cliOk(['list-units', '-o', 'json'])).stdout).units as Array<{ name: string; machine: string; activeState: string }>;
    const byMachine = Object.fromEntries(sb.runningHosts().map((h) => [h.machineId, h.name]));
    const reported = listed.filter((u) => u.name.startsWith('app@') && u.activeState === 'active').map((u) => [u.name, byMachine[u.machine]]);
    const truth = Object.entries(placed).map(([host, units]) => [units[0], host]);
    expect(reported.sort()).toEqual(truth.sort());
  }, 60_000);

  it('`why` and `list-unit-files` give the conflict as the reason the fourth is not placed', async () => {
    const why = await sb.cliOk(['why', 'app@4.service']);
    expect(why.stdout).toContain('app@4.service cannot be placed: no machine passes its constraints (rejected by Conflicts on 3)');

    // Per machine: the instance that really runs there (checked in systemd above) is the one named.
    const json = JSON.parse((await sb.cliOk(['why', 'app@4.service', '-o', 'json'])).stdout) as {
      machines: string[];
      unschedulable: { reason: string; machines: Record<string, string> };
    };
    expect(json.machines).toEqual([]);
    const expected = Object.fromEntries(
      sb.runningHosts().map((h) => [h.machineId, `Conflicts: conflicts with ${placed[h.name]![0]}`]),
    );
    expect(json.unschedulable.machines).toEqual(expected);

    const files = await sb.cliOk(['list-unit-files', '--fields', 'unit,reason', '--no-legend']);
    const rows = Object.fromEntries(files.stdout.split('\n').filter(Boolean).map((l) => {
      const [unit, ...reason] = l.split('\t').map((c) => c.trim());
      return [unit, reason.join(' ')];
    }));
    expect(rows).toMatchObject({
      'app@1.service': '-',
      'app@2.service': '-',
      'app@3.service': '-',
      'app@4.service': 'no machine passes its constraints (rejected by Conflicts on 3)',
    });
  });

  it('a global unit runs on every host, and on a host added later within a few seconds', async () => {
    sb.writeUnit('glob.service', GLOBAL);
    await sb.cliOk(['start', '--no-block', 'glob.service']);
    await sb.until('glob.service on all three hosts', async () => {
      const on = await Promise.all(sb.runningHosts().map((h) => sb.runningUnits(h, 'glob.service')));
      return on.every((u) => u.length === 1);
    });
    const mainPids = () => Promise.all(sb.runningHosts().slice(0, 3).map(async (h) => (await sb.show(h, placed[h.name]![0]!, ['MainPID'])).MainPID));
    const pids = await mainPids();

    const t0 = Date.now();
    await sb.up(4); // boots the 4th host and waits until its agent has registered
    const registered = Date.now();
    const fourth = sb.host(`${sb.hostPrefix}-4`);
    await sb.until('glob.service on the new host', async () => (await sb.runningUnits(fourth, 'glob.service')).length === 1, 30_000, 50);
    const globMs = Date.now() - registered;
    // The waiting instance takes the new, conflict-free host.
    await sb.until('app@4 on the new host', async () => (await sb.runningUnits(fourth, 'app@*')).includes('app@4.service'), 30_000, 50);
    const appMs = Date.now() - registered;
    console.log(`host added: up + agent registered ${registered - t0} ms; then global unit active after ${globMs} ms, app@4 after ${appMs} ms`);
    expect(globMs).toBeLessThan(10_000);

    // Nothing that ran moved or restarted (no rebalancing), and every host runs exactly one instance.
    const after = await appsPerHost();
    for (const [host, units] of Object.entries(placed)) expect(after[host]).toEqual(units);
    expect(after[fourth.name]).toEqual(['app@4.service']);
    expect(await mainPids()).toEqual(pids);
    expect((await sb.cliOk(['why', 'app@4.service'])).stdout).toContain('app@4.service is scheduled to');
  }, 300_000); // up boots the host through cloud-init
});
