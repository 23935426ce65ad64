import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { Message, MessageType, sessionBus, type MessageBus } from 'dbus-next';
import { FleetxError } from '../errors/errors.js';
import { toFleetxError } from './errors.js';

/**
 * One self-healing D-Bus connection to systemd. dbus-next neither times out
 * calls nor reconnects, and its removeMatch leaks rules, so this class:
 * - bounds every call with a timeout and fails pending calls as soon as the
 *   socket dies;
 * - rebuilds the connection when it errors or closes: the next call does it
 *   at once, a background retry (with backoff) does it otherwise, so signal
 *   listeners keep working without anyone calling;
 * - adds fixed match rules per connection (the systemd signals the adapter
 *   reads, and systemd's bus name changing hands) and never removes any;
 * - calls Manager.Subscribe() on every new connection and whenever systemd
 *   re-executes (new bus name owner), then reports `onRestored` so users
 *   resync what they may have missed.
 */
export interface CallSpec {
  path: string;
  iface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

export interface LinkOptions {
  busAddress: string;
  callTimeoutMs: number;
  /** Signals sent by systemd itself (sender checked against the current owner of its name). */
  onSignal: (msg: Message) => void;
  /** After a reconnect or a systemd re-exec (not after the first connect). */
  onRestored: () => void;
}

export const SYSTEMD = 'org.freedesktop.systemd1';
export const MANAGER_PATH = '/org/freedesktop/systemd1';
export const MANAGER_IFACE = 'org.freedesktop.systemd1.Manager';
const DBUS = 'org.freedesktop.DBus';

/** dbus-next internals we rely on: its bus does not surface stream closure, and timed-out calls leave handlers behind. */
interface BusInternals {
  _connection: EventEmitter & { stream: Duplex };
  _methodReturnHandlers: Record<number, unknown>;
}
const internals = (bus: MessageBus) => bus as unknown as BusInternals;

/**
 * The systemd signals the adapter reads, as match rules (the bus daemon
 * drops the rest before they reach us). Each unit start makes systemd send
 * some ten signals (UnitNew, JobNew, the job's and the unit's
 * PropertiesChanged for every interface it has, JobRemoved …), and dbus-next
 * parses every message it receives in JavaScript: when 40 units start at
 * once, that parsing is much of the agent's CPU and delays its view of the
 * jobs it waits for. Only these are used: the states (Unit interface) and
 * MainPID (Service interface) of units, JobRemoved, UnitRemoved, Reloading.
 */
const SYSTEMD_SIGNALS = [
  `interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='${MANAGER_PATH}/unit',arg0='org.freedesktop.systemd1.Unit'`,
  `interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='${MANAGER_PATH}/unit',arg0='org.freedesktop.systemd1.Service'`,
  ...['JobRemoved', 'UnitRemoved', 'Reloading'].map((member) => `interface='${MANAGER_IFACE}',member='${member}',path='${MANAGER_PATH}'`),
];

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

export class BusLink {
  private bus?: MessageBus;
  private ready?: Promise<MessageBus>;
  private systemdOwner?: string;
  private everUp = false;
  private closed = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer?: NodeJS.Timeout;
  /** Rejecters of calls in flight, per connection, failed at once when it dies. */
  private readonly pending = new Map<MessageBus, Set<(e: Error) => void>>();

  constructor(private readonly opts: LinkOptions) {}

  /** Calls a systemd method; throws FleetxError (see types.ts). */
  async call(spec: CallSpec, timeoutMs = this.opts.callTimeoutMs): Promise<unknown[]> {
    const what = `${spec.member}(${(spec.body ?? []).map((b) => JSON.stringify(b)).join(', ')})`;
    try {
      const bus = await this.connected();
      return await this.rawCall(bus, SYSTEMD, spec, timeoutMs);
    } catch (e) {
      throw toFleetxError(e, what);
    }
  }

  /** Connects if needed; throws 'usage' after close(). */
  connected(): Promise<MessageBus> {
    if (this.closed) return Promise.reject(new FleetxError('usage', 'systemd adapter used after close()'));
    if (this.ready) return this.ready;
    const ready = this.open().catch((e: unknown) => {
      if (this.ready === ready) this.ready = undefined;
      this.scheduleRetry();
      throw toFleetxError(e, `connecting to ${this.opts.busAddress}`);
    });
    this.ready = ready;
    return ready;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const bus = this.bus;
    if (bus) await this.drop(bus, new FleetxError('usage', 'systemd adapter closed'));
  }

  private async open(): Promise<MessageBus> {
    const bus = sessionBus({ busAddress: this.opts.busAddress });
    this.bus = bus;
    this.pending.set(bus, new Set());
    const conn = internals(bus)._connection;
    const lost = (e: unknown) => void this.lose(bus, e);
    bus.on('error', lost);
    conn.on('end', () => lost(new Error('connection closed by the bus')));
    conn.stream.on('close', () => lost(new Error('socket closed')));
    bus.on('message', (msg) => this.dispatch(bus, msg));

    try {
      await this.setUp(bus);
    } catch (e) {
      await this.drop(bus, toFleetxError(e, 'setting up the D-Bus connection'));
      throw e;
    }
    this.retryMs = RETRY_MIN_MS;
    if (this.everUp) this.opts.onRestored();
    this.everUp = true;
    return bus;
  }

  /** Handshake, match rules, Subscribe(): everything a fresh connection needs. */
  private async setUp(bus: MessageBus): Promise<void> {
    await this.withTimeout(
      new Promise<void>((resolve, reject) => {
        bus.once('connect', resolve);
        bus.once('error', reject);
      }),
      this.opts.callTimeoutMs,
      'D-Bus handshake',
    );
    const [owner] = await this.rawCall(bus, DBUS, { path: '/org/freedesktop/DBus', iface: DBUS, member: 'GetNameOwner', signature: 's', body: [SYSTEMD] });
    this.systemdOwner = owner as string;
    for (const rule of [
      ...SYSTEMD_SIGNALS.map((match) => `type='signal',sender='${SYSTEMD}',${match}`),
      `type='signal',sender='${DBUS}',interface='${DBUS}',member='NameOwnerChanged',arg0='${SYSTEMD}'`,
    ]) {
      await this.rawCall(bus, DBUS, { path: '/org/freedesktop/DBus', iface: DBUS, member: 'AddMatch', signature: 's', body: [rule] });
    }
    await this.rawCall(bus, SYSTEMD, { path: MANAGER_PATH, iface: MANAGER_IFACE, member: 'Subscribe' });
    if (this.bus !== bus) throw new Error('connection lost while setting up');
  }

  private dispatch(bus: MessageBus, msg: Message): void {
    if (bus !== this.bus || msg.type !== MessageType.SIGNAL) return;
    if (msg.sender === DBUS && msg.member === 'NameOwnerChanged' && msg.body[0] === SYSTEMD) {
      const owner = msg.body[2] as string;
      if (owner === '' || owner === this.systemdOwner) return;
      // systemd re-executed and came back on a new connection: our Subscribe() went with the old one.
      this.systemdOwner = owner;
      this.rawCall(bus, SYSTEMD, { path: MANAGER_PATH, iface: MANAGER_IFACE, member: 'Subscribe' }).then(
        () => this.opts.onRestored(),
        (e: unknown) => this.lose(bus, e),
      );
      return;
    }
    if (msg.sender !== this.systemdOwner || !msg.path?.startsWith(MANAGER_PATH)) return;
    this.opts.onSignal(msg);
  }

  private rawCall(bus: MessageBus, destination: string, spec: CallSpec, timeoutMs = this.opts.callTimeoutMs): Promise<unknown[]> {
    const msg = new Message({
      destination,
      path: spec.path,
      interface: spec.iface,
      member: spec.member,
      signature: spec.signature,
      body: spec.body ?? [],
    });
    return new Promise<unknown[]>((resolve, reject) => {
      const pending = this.pending.get(bus);
      if (!pending) return reject(new FleetxError('unavailable', `${spec.member}: the D-Bus connection is closed`));
      const fail = (e: Error) => {
        clearTimeout(timer);
        pending.delete(fail);
        reject(e);
      };
      const timer = setTimeout(() => {
        if (msg.serial !== null) delete internals(bus)._methodReturnHandlers[msg.serial];
        fail(new FleetxError('unavailable', `${spec.member}: no reply from systemd within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.add(fail);
      bus.call(msg).then(
        (reply) => {
          clearTimeout(timer);
          pending.delete(fail);
          resolve(reply?.body ?? []);
        },
        (e: Error) => fail(e),
      );
    });
  }

  private withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FleetxError('unavailable', `${what}: no answer within ${ms} ms`)), ms);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  /** The connection died: fail its calls, forget it, and reconnect in the background. */
  private async lose(bus: MessageBus, e: unknown): Promise<void> {
    const current = bus === this.bus;
    await this.drop(bus, toFleetxError(e, 'systemd D-Bus connection'));
    if (current) this.scheduleRetry();
  }

  /** Closes a connection (current or a stale one) and fails its calls. */
  private async drop(bus: MessageBus, reason: Error): Promise<void> {
    if (this.bus === bus) {
      this.bus = undefined;
      this.ready = undefined;
    }
    for (const fail of [...(this.pending.get(bus) ?? [])]) fail(reason);
    this.pending.delete(bus);
    const stream = internals(bus)._connection.stream;
    if (stream.destroyed) return;
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    bus.disconnect();
    const timer = setTimeout(() => stream.destroy(), 1_000);
    await closed;
    clearTimeout(timer);
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed || this.ready) return;
      this.connected().catch(() => undefined); // failure schedules the next retry
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
