/**
 * The HAProxy driver: moves pre-declared server slots of one backend in and
 * out through the runtime API. The HAProxy config declares one slot per
 * possible instance, named after it (`app@1.service` -> `app-1`, see
 * instances.ts), parked and health-checked:
 *
 *   backend app
 *     option httpchk GET /healthz
 *     default-server inter 1s fall 2 rise 2
 *     server app-1 0.0.0.0:1 disabled check
 *     server app-2 0.0.0.0:1 disabled check
 *
 * Going in:  MAINT -> `state drain` -> `set server addr` -> `health down` ->
 *            `state ready`. HAProxy puts a server leaving maintenance
 *            straight to UP without a check; forcing health down first
 *            (possible only outside maintenance, hence drain) makes it wait
 *            for `rise` good checks, so no request reaches an unchecked
 *            instance. Reported 'in' only once HAProxy says UP.
 * Going out: `state drain` (no new sessions) -> 'draining' while scur > 0
 *            -> `state maint` once scur is 0 -> 'out'.
 *
 * Slots named after instances the syncer did not ask about but that are not
 * in maintenance are reported too, so the next decision takes them out.
 * Slots of other names are never touched. Errors: see PresenceDriver; a
 * missing slot or a command HAProxy rejects is a per-instance error.
 */
import { FleetxError, isFleetxError } from '../../errors/errors.js';
import { slotName, unitOfSlot } from '../instances.js';
import type { Desired, Observed, PresenceDriver } from '../types.js';
import { parseShowStat, parseSocket, runtimeCommand, type ServerStat, type SocketAddress } from './haproxy-api.js';

export interface HaproxyDriverOptions {
  template: string;
  /** unix path, unix@/path or ipv4@host:port */
  socket: string;
  backend: string;
  /** per runtime API command (default 3000) */
  timeoutMs?: number;
}

export class HaproxyDriver implements PresenceDriver {
  readonly kind = 'haproxy';
  private readonly addr: SocketAddress;
  private readonly timeoutMs: number;

  /** @throws FleetxError 'usage' for a malformed socket address. */
  constructor(private readonly opts: HaproxyDriverOptions) {
    this.addr = parseSocket(opts.socket);
    this.timeoutMs = opts.timeoutMs ?? 3000;
  }

  async apply(desired: readonly Desired[]): Promise<Observed[]> {
    let stats = await this.stat();
    const errors = new Map<string, string>();
    let changed = false;
    for (const d of desired) {
      const slot = slotName(d.unit);
      const s = stats.get(slot);
      if (!s) {
        errors.set(d.unit, `backend ${this.opts.backend} has no server slot ${slot} (declare "server ${slot} 0.0.0.0:1 disabled check")`);
        continue;
      }
      try {
        changed = (await this.step(d, slot, s)) || changed;
      } catch (e) {
        if (isFleetxError(e) && e.kind !== 'failed') throw e;
        errors.set(d.unit, e instanceof Error ? e.message : String(e));
        changed = true;
      }
    }
    if (changed) stats = await this.stat();

    const asked = new Set(desired.map((d) => d.unit));
    const out: Observed[] = desired.map((d) => {
      const s = stats.get(slotName(d.unit));
      const err = errors.get(d.unit);
      if (!s) return { unit: d.unit, state: 'unknown', ...(err ? { error: err } : {}) };
      return { ...observe(d.unit, s), ...(err ? { error: err } : {}) };
    });
    for (const s of stats.values()) {
      const unit = unitOfSlot(this.opts.template, s.server);
      if (unit && !asked.has(unit) && !s.status.startsWith('MAINT')) out.push(observe(unit, s));
    }
    return out;
  }

  async close(): Promise<void> {
    // one connection per command: nothing stays open
  }

  /** One step towards `d`; true when a command was sent. */
  private async step(d: Desired, slot: string, s: ServerStat): Promise<boolean> {
    const st = s.status;
    const send = (cmd: string) => this.set(slot, cmd);
    if (d.want === 'out') {
      if (st.startsWith('MAINT')) return false;
      if (!st.startsWith('DRAIN')) await send('state drain');
      if (s.scur === 0) await send('state maint');
      return true;
    }
    const target = hostPort(d.address!, d.port);
    if (s.addr !== target) {
      if (!st.startsWith('DRAIN')) await send('state drain');
      await send(`addr ${d.address} port ${d.port}`);
      await send('health down');
      await send('state ready');
      return true;
    }
    if (st.startsWith('MAINT')) {
      await send('state drain');
      await send('health down');
      await send('state ready');
      return true;
    }
    if (st.startsWith('DRAIN')) {
      await send('state ready');
      return true;
    }
    return false; // UP, or DOWN waiting for its checks
  }

  /** `set server B/S …`; @throws 'failed' when HAProxy rejects it. */
  private async set(slot: string, rest: string): Promise<void> {
    const cmd = `set server ${this.opts.backend}/${slot} ${rest}`;
    const answer = (await runtimeCommand(this.addr, cmd, this.timeoutMs)).trim();
    if (answer === '' || /changed from|no need to change/i.test(answer)) return;
    throw new FleetxError('failed', `HAProxy rejected "${cmd}": ${answer.split('\n')[0]}`);
  }

  private async stat(): Promise<Map<string, ServerStat>> {
    return parseShowStat(await runtimeCommand(this.addr, 'show stat', this.timeoutMs), this.opts.backend);
  }
}

/** What a slot's `show stat` row means for its instance. */
export function observe(unit: string, s: ServerStat): Observed {
  const address = s.addr.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  const base = { unit, sessions: s.scur, ...(address && address !== '0.0.0.0' ? { address } : {}) };
  if (s.status.startsWith('UP') || s.status === 'no check') return { ...base, state: 'in' };
  return { ...base, state: s.scur > 0 ? 'draining' : 'out' };
}

/** How `show stat` writes an address: `10.0.0.1:80`, `[fd00::1]:80`. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
