/**
 * What the demo knows about each instance of its service: the unit's state
 * on its machine, its health, what the presence syncer reported and what
 * HAProxy says about its slot. Used to wait until the demo serves, and to
 * say exactly what is missing when it does not.
 */
import type { Etcd3 } from 'etcd3';
import type { HealthRecord } from '../health/types.js';
import { parseShowStat } from '../presence/drivers/haproxy-api.js';
import { slotName } from '../presence/instances.js';
import type { PresenceStatusRecord } from '../presence/types.js';
import type { Keyspace } from '../registry/keys.js';
import type { UnitStateRecord } from '../registry/records.js';
import { haproxyCommand } from './processes.js';

export interface DemoInstance {
  unit: string;
  machine?: string;
  /** systemd's ActiveState on its machine */
  active?: string;
  mainPid?: number;
  hash?: string;
  health?: string;
  /** presence status the syncer reported: in, draining, out */
  presence?: string;
  /** HAProxy's status of its slot: UP, DOWN, MAINT, DRAIN, … */
  lb?: string;
}

/** Pure: in service = active, healthy, reported in, and UP in HAProxy. */
export const inService = (i: DemoInstance): boolean =>
  i.active === 'active' && i.health === 'healthy' && i.presence === 'in' && (i.lb ?? '').startsWith('UP');

/** Pure: one line on an instance, for waits that time out. */
export function describeInstance(i: DemoInstance): string {
  const parts = [
    `unit ${i.active ?? 'not reported by any machine'}`,
    `health ${i.health ?? 'not reported'}`,
    `presence ${i.presence ?? 'not reported (is the syncer running?)'}`,
    `HAProxy slot ${i.lb ?? 'unknown'}`,
  ];
  return `${i.unit}: ${parts.join(', ')}`;
}

export async function readInstances(o: { client: Etcd3; keys: Keyspace; service: string; units: string[]; socket: string; backend: string }): Promise<DemoInstance[]> {
  const [states, healths, statuses, stat] = await Promise.all([
    values<UnitStateRecord>(o.client, o.keys.states()),
    values<HealthRecord>(o.client, o.keys.healths()),
    values<PresenceStatusRecord>(o.client, o.keys.presenceStatuses(o.service)),
    haproxyCommand(o.socket, 'show stat').then((t) => parseShowStat(t, o.backend), () => undefined),
  ]);
  return o.units.map((unit) => {
    const st = states.filter((s) => s.name === unit).sort((a, b) => rank(a) - rank(b))[0];
    const h = healths.filter((r) => r.unit === unit).sort((a, b) => Number(b.machine === st?.machine) - Number(a.machine === st?.machine))[0];
    const p = statuses.find((s) => s.unit === unit);
    return {
      unit,
      ...(st ? { machine: st.machine, active: st.activeState, hash: st.hash, ...(st.mainPid !== undefined ? { mainPid: st.mainPid } : {}) } : {}),
      ...(h ? { health: h.status } : {}),
      ...(p ? { presence: p.state } : {}),
      ...(stat?.get(slotName(unit)) ? { lb: stat.get(slotName(unit))!.status } : {}),
    };
  });
}

const rank = (s: UnitStateRecord) => (s.activeState === 'active' ? 0 : 1);

async function values<T>(client: Etcd3, prefix: string): Promise<T[]> {
  const all = await client.getAll().prefix(prefix).strings();
  return Object.values(all).flatMap((v) => {
    try {
      return [JSON.parse(v) as T];
    } catch {
      return [];
    }
  });
}
