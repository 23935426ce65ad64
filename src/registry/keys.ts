/**
 * The etcd keyspace, in one place. Every key fleetx reads or writes is built
 * here, under a configurable prefix (default "/fleetx").
 *
 *   {p}/unit/{name}                  UnitRecord: a submitted unit and its target state
 *   {p}/body/{hash}                  unit text in normalized form, stored once per hash
 *   {p}/schedule/{machine}/{name}    ScheduleRecord: what one machine must run (engine writes)
 *   {p}/unschedulable/{name}         reason a unit could not be placed (engine writes)
 *   {p}/machine/{machine}            MachineRecord, under the machine's lease (presence)
 *   {p}/machine-meta/{machine}       metadata set with `fleetx set-metadata` (persistent)
 *   {p}/state/{machine}/{name}       UnitStateRecord, under the machine's lease
 *   {p}/engine/leader                leader election of the engine
 *
 * Each agent watches only {p}/schedule/{its id}/ and reads the bodies it
 * needs, so load on etcd grows with the work of a machine, not with the size
 * of the cluster (fleet's agents re-read everything on every change).
 */
export interface Keyspace {
  readonly prefix: string;
  unit(name: string): string;
  units(): string;
  body(hash: string): string;
  bodies(): string;
  schedule(machine: string, name: string): string;
  machineSchedule(machine: string): string;
  schedules(): string;
  unschedulable(name: string): string;
  unschedulables(): string;
  machine(id: string): string;
  machines(): string;
  machineMeta(id: string): string;
  machineMetas(): string;
  state(machine: string, name: string): string;
  machineStates(machine: string): string;
  states(): string;
  leader(): string;
}

export function keyspace(prefix = '/fleetx'): Keyspace {
  const p = prefix.replace(/\/+$/, '');
  return {
    prefix: p,
    unit: (n) => `${p}/unit/${n}`,
    units: () => `${p}/unit/`,
    body: (h) => `${p}/body/${h}`,
    bodies: () => `${p}/body/`,
    schedule: (m, n) => `${p}/schedule/${m}/${n}`,
    machineSchedule: (m) => `${p}/schedule/${m}/`,
    schedules: () => `${p}/schedule/`,
    unschedulable: (n) => `${p}/unschedulable/${n}`,
    unschedulables: () => `${p}/unschedulable/`,
    machine: (id) => `${p}/machine/${id}`,
    machines: () => `${p}/machine/`,
    machineMeta: (id) => `${p}/machine-meta/${id}`,
    machineMetas: () => `${p}/machine-meta/`,
    state: (m, n) => `${p}/state/${m}/${n}`,
    machineStates: (m) => `${p}/state/${m}/`,
    states: () => `${p}/state/`,
    leader: () => `${p}/engine/leader`,
  };
}

/** The last path segment of a key under a known prefix. */
export function lastSegment(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
