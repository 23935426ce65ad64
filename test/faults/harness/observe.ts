/**
 * The checker's eyes, each outside fleetx's own code paths, so a bug in
 * fleetx cannot hide itself from the check:
 *   - systemd on each host: its Manager's ListUnitsByPatterns over the
 *     host's own system bus, reached from this process through
 *     /proc/<host PID 1>/root (not the agent, not fleetx's systemd adapter);
 *   - HAProxy: its runtime API over a raw socket (`show servers state`);
 *   - etcd: the etcd3 library directly, reading fleetx's keys as JSON by
 *     their documented layout (docs/ARCHITECTURE.md, src/registry/keys.ts's
 *     comment), not through fleetx's registry code.
 */
import { connect } from 'node:net';
import { Message, sessionBus, type MessageBus } from 'dbus-next';
import { Etcd3 } from 'etcd3';

/** A host as the checker sees it: a name, its machine id, and the pid to nsenter. */
export interface ObservedHost {
  name: string;
  machineId: string;
  leaderPid: number;
}

const ACTIVE = ['active', 'activating', 'deactivating', 'reloading'];

/**
 * One D-Bus connection per host (by PID 1: a rebooted host gets a new one),
 * kept open between samples so a sample costs one call, not a process.
 */
export class SystemdEyes {
  private readonly buses = new Map<string, MessageBus>();

  /**
   * Units matching `patterns` that have processes on the host (active,
   * activating, deactivating, reloading), or undefined when the host cannot
   * be read (powered off, dying, its bus not answering in time).
   */
  async units(host: ObservedHost, patterns: string[], timeoutMs = 3_000): Promise<string[] | undefined> {
    const key = `${host.name}/${host.leaderPid}`;
    let bus = this.buses.get(key);
    try {
      if (!bus) {
        bus = sessionBus({ busAddress: `unix:path=/proc/${host.leaderPid}/root/run/dbus/system_bus_socket` });
        bus.on('error', () => this.drop(key));
        this.buses.set(key, bus);
      }
      const call = bus.call(new Message({
        destination: 'org.freedesktop.systemd1', path: '/org/freedesktop/systemd1', interface: 'org.freedesktop.systemd1.Manager',
        member: 'ListUnitsByPatterns', signature: 'asas', body: [ACTIVE, patterns],
      }));
      let timer: NodeJS.Timeout | undefined;
      const reply = await Promise.race([call, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs)))]);
      clearTimeout(timer);
      if (!reply) throw new Error('timeout');
      return (reply.body[0] as Array<[string]>).map((u) => u[0]).filter((u) => u.endsWith('.service')).sort();
    } catch {
      this.drop(key);
      return undefined;
    }
  }

  close(): void {
    for (const key of [...this.buses.keys()]) this.drop(key);
  }

  private drop(key: string): void {
    const bus = this.buses.get(key);
    this.buses.delete(key);
    try {
      bus?.disconnect();
    } catch {
      // already gone
    }
  }
}

/** One HAProxy server slot as `show servers state` reports it. */
export interface ServerState {
  backend: string;
  name: string;
  addr: string;
  port: number;
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping */
  opState: number;
  /** srv_admin_state bits: 0x01 forced maint, 0x02 inherited maint, 0x04 config maint, 0x08 forced drain, 0x10 inherited drain, 0x20 resolver maint, 0x40 hostname maint */
  adminState: number;
}

/**
 * A slot takes new requests: running and neither in maintenance nor
 * draining. The config-maintenance bit (0x04, the slot was declared
 * `disabled`) stays set in this dump after `set server … state ready`
 * (HAProxy 2.6), so it does not count: forced maintenance (0x01) does.
 */
export const serving = (s: ServerState): boolean => s.opState === 2 && (s.adminState & 0x7b) === 0;
/** Held out by an operator or the presence driver: forced maintenance or forced drain. */
export const heldOut = (s: ServerState): boolean => (s.adminState & (0x01 | 0x08)) !== 0;

/** One runtime API command over a raw unix socket; HAProxy answers and closes. */
export function haproxyAsk(socket: string, command: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let text = '';
    s.setEncoding('utf8');
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`HAProxy ${socket}: no answer to "${command}" in ${timeoutMs} ms`)));
    s.on('connect', () => s.write(`${command}\n`));
    s.on('data', (d: string) => (text += d));
    s.on('error', reject);
    s.on('close', () => resolve(text));
  });
}

/** `show servers state BACKEND`, parsed by its header line (the format's columns are named there). */
export async function serversState(socket: string, backend: string): Promise<ServerState[]> {
  const text = await haproxyAsk(socket, `show servers state ${backend}`);
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.find((l) => l.startsWith('# be_id'));
  if (!header) throw new Error(`show servers state ${backend}: no header in ${JSON.stringify(text.slice(0, 200))}`);
  const cols = header.replace(/^# /, '').split(' ');
  const at = (f: string[], c: string) => f[cols.indexOf(c)] ?? '';
  return lines.filter((l) => !l.startsWith('#') && /^\d/.test(l)).map((l) => {
    const f = l.split(' ');
    return {
      backend: at(f, 'be_name'),
      name: at(f, 'srv_name'),
      addr: at(f, 'srv_addr'),
      port: Number(at(f, 'srv_port')),
      opState: Number(at(f, 'srv_op_state')),
      adminState: Number(at(f, 'srv_admin_state')),
    };
  });
}

/** What etcd holds, read raw: key (prefix stripped) -> parsed JSON (or the string when not JSON). */
export class RawEtcd {
  private readonly client: Etcd3;

  constructor(endpoints: string[], private readonly prefix = '/fleetx', auth?: { username: string; password: string }) {
    this.client = new Etcd3({ hosts: endpoints, ...(auth ? { auth } : {}), dialTimeout: 2_000, defaultCallOptions: () => ({ deadline: Date.now() + 2_000 }) });
  }

  /** Every key under `{prefix}/{sub}` -> value; undefined when etcd does not answer (itself a fault under test, not a violation). */
  async under(sub: string): Promise<Record<string, unknown> | undefined> {
    try {
      const all = await this.client.getAll().prefix(`${this.prefix}/${sub}`).strings();
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(all)) out[k.slice(this.prefix.length + 1)] = parse(v);
      return out;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.client.close();
  }
}

function parse(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
