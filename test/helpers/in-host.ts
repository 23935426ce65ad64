/**
 * A real systemd to test the D-Bus adapter against: an nspawn test host
 * (src/sandbox/host.ts), reached from the test process itself.
 *
 * The adapter runs in the vitest process and talks to the host's own system
 * bus through /proc/<host PID 1>/root/run/dbus/system_bus_socket, and writes
 * unit files through /proc/<pid>/root/run/systemd/system. nspawn does not
 * map user IDs here, so we are uid 0 on the host's bus too: D-Bus EXTERNAL
 * auth and systemd's root-only methods behave exactly as for an agent
 * running inside. No driver process, no JSON protocol to get wrong.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MessageType, sessionBus, Message, type MessageBus } from 'dbus-next';
import { bootHost, type Host } from '../../src/sandbox/host.js';

export interface SystemdHost {
  host: Host;
  /** D-Bus address of the host's system bus, usable from the test process. */
  busAddress: string;
  /** The host's /run/systemd/system, as a path in the test process. */
  unitDir: string;
  /** Maps an absolute path inside the host to one usable from the test process. */
  outside(p: string): string;
  /** Runs a command in the host; throws when it exits non-zero. */
  sh(argv: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function bootSystemdHost(name: string): Promise<SystemdHost> {
  const stateDir = await mkdtemp(path.join(tmpdir(), `fleetx-${name}-`));
  const host = await bootHost({ name, stateDir });
  const root = `/proc/${host.leaderPid}/root`;
  return {
    host,
    busAddress: `unix:path=${root}/run/dbus/system_bus_socket`,
    unitDir: `${root}/run/systemd/system`,
    outside: (p) => `${root}${p}`,
    async sh(argv) {
      const r = await host.exec(argv, { timeoutMs: 20_000 });
      if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    stop: () => host.stop(),
  };
}

/**
 * Counts systemd's Reloading(true) signals (one per daemon-reload) on an
 * independent connection, so tests measure what systemd actually did.
 */
export async function countReloads(busAddress: string): Promise<{ count(): number; close(): void }> {
  const bus: MessageBus = sessionBus({ busAddress });
  let n = 0;
  bus.on('error', () => undefined);
  bus.on('message', (m) => {
    if (m.type === MessageType.SIGNAL && m.member === 'Reloading' && m.body[0] === true) n++;
  });
  const call = (destination: string, p: string, iface: string, member: string, signature?: string, body: unknown[] = []) =>
    bus.call(new Message({ destination, path: p, interface: iface, member, signature, body }));
  await call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's', [
    "type='signal',interface='org.freedesktop.systemd1.Manager',member='Reloading'",
  ]);
  await call('org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'Subscribe');
  return { count: () => n, close: () => bus.disconnect() };
}
