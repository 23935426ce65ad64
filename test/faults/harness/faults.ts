/**
 * The faults the cells inject, each done the way it happens for real: a
 * signal to a process, a host's whole PID namespace killed, packets
 * dropped. Only processes and hosts of the cell's own sandbox are touched.
 */
import type { Host } from '../../../src/sandbox/host.js';
import type { SandboxFixture } from '../../helpers/sandbox.js';

/** SIGKILL of the fleetx agent on a host (systemd restarts it: Restart=always). */
export async function killAgent(host: Host): Promise<void> {
  const r = await host.exec(['systemctl', 'kill', '-s', 'KILL', 'fleetx-agent']);
  if (r.code !== 0) throw new Error(`systemctl kill fleetx-agent on ${host.name}: ${r.stderr}`);
}

/** The host whose agent leads the engine. */
export async function leaderHost(sb: SandboxFixture): Promise<Host> {
  const id = await sb.leader();
  if (!id) throw new Error('no engine leader');
  return sb.hostOfMachine(id);
}

/** The host running `unit` (from systemd), or undefined. */
export async function hostRunning(sb: SandboxFixture, unit: string): Promise<Host | undefined> {
  for (const h of sb.runningHosts()) if ((await sb.runningUnits(h, unit)).includes(unit)) return h;
  return undefined;
}

/** Hard power-off: SIGKILL of the host's whole PID namespace (Host.poweroff). */
export async function powerOff(host: Host): Promise<void> {
  await host.poweroff();
}

/**
 * Cuts a host off etcd only: packets to and from etcd's client port are
 * dropped in the host's own network namespace (iptables there), so its
 * instances keep serving HAProxy while its agent sees nothing. Dropped, not
 * refused: a real partition gives no answer at all.
 */
export async function cutFromEtcd(host: Host, etcdPort = 2379): Promise<void> {
  for (const rule of [['OUTPUT', '--dport'], ['INPUT', '--sport']] as const) {
    const r = await host.exec(['iptables', '-I', rule[0], '-p', 'tcp', rule[1], String(etcdPort), '-j', 'DROP']);
    if (r.code !== 0) throw new Error(`iptables on ${host.name}: ${r.stderr}`);
  }
}

/** Undoes cutFromEtcd. */
export async function healFromEtcd(host: Host, etcdPort = 2379): Promise<void> {
  for (const rule of [['OUTPUT', '--dport'], ['INPUT', '--sport']] as const) {
    await host.exec(['iptables', '-D', rule[0], '-p', 'tcp', rule[1], String(etcdPort), '-j', 'DROP']);
  }
}

/** libfaketime, from Debian's libfaketime package (scripts/setup.sh installs it). */
export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const FAKETIME_FILE = '/run/fleetx-faketime';

/**
 * Prepares a jump of one host's wall clock, as the agent sees it. nspawn
 * hosts share the machine's kernel clock, and time namespaces cannot be
 * entered by a running process (nor do they offset CLOCK_REALTIME), so the
 * agent runs under libfaketime (LD_PRELOAD through a drop-in) reading its
 * offset from a file on every call (FAKETIME_NO_CACHE): starts at +0, and
 * `jumpClock` writes a new offset, which the running agent sees at once.
 * Only the wall clock moves (FAKETIME_DONT_FAKE_MONOTONIC): what an NTP step
 * does to a real host. The agent restarts once here, before the cell.
 */
export async function underFaketime(host: Host): Promise<void> {
  const dropIn = ['[Service]', `Environment=LD_PRELOAD=${LIBFAKETIME}`, `Environment=FAKETIME_TIMESTAMP_FILE=${FAKETIME_FILE}`,
    'Environment=FAKETIME_NO_CACHE=1', 'Environment=FAKETIME_DONT_FAKE_MONOTONIC=1', ''].join('\n');
  await hostSh(host, `mkdir -p /run/systemd/system/fleetx-agent.service.d && printf '%s' "$1" > /run/systemd/system/fleetx-agent.service.d/faketime.conf && echo '+0' > ${FAKETIME_FILE} && systemctl daemon-reload && systemctl restart fleetx-agent`, dropIn);
}

/** Sets the wall-clock offset the faketime'd agent sees (e.g. '+300' seconds, '-5m'). */
export async function jumpClock(host: Host, offset: string): Promise<void> {
  await hostSh(host, `printf '%s\\n' "$1" > ${FAKETIME_FILE}`, offset);
}

/** Back to the plain agent (no preload). */
export async function realClock(host: Host): Promise<void> {
  await hostSh(host, `rm -f /run/systemd/system/fleetx-agent.service.d/faketime.conf ${FAKETIME_FILE} && systemctl daemon-reload && systemctl restart fleetx-agent`);
}

/** A fixed script in the host with values as positional arguments (never interpolated). */
async function hostSh(host: Host, script: string, ...args: string[]): Promise<void> {
  const r = await host.exec(['sh', '-c', script, 'sh', ...args], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${script} on ${host.name} exited ${r.code}: ${r.stderr}`);
}
