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
 * Services and rollouts (see docs/ROLLOUT.md):
 *   {p}/service/{svc}                ServiceRecord: template, values, health, presence, policy
 *   {p}/revision/{svc}/{n}           RevisionRecord: one rendered version of a service (n zero-padded)
 *   {p}/rollout/{svc}                RolloutRecord of the running rollout; its existence is the deploy lock
 *   {p}/rollout-control/{svc}        pause / resume / abort requested by a user
 *   {p}/rollout-history/{svc}/{id}   finished rollouts
 *   {p}/health/{machine}/{unit}      HealthRecord, under the machine's lease (agent writes)
 *   {p}/presence-hold/{svc}/{unit}   an instance held out of the load balancer by a rollout
 *   {p}/presence-status/{svc}/{unit} what the load balancer does with an instance (presence syncer writes)
 *
 * Secrets (see src/secrets/README.md):
 *   {p}/secret/{name}                SecretRecord: name, version, when, by whom. Never the value.
 *   {p}-secrets/{name}               the value, OUTSIDE {p}/ on purpose: etcd roles grant by key
 *                                    range and cannot subtract, so operators get readwrite on {p}/
 *                                    and write-only here, agents read here.
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
  service(svc: string): string;
  services(): string;
  revision(svc: string, n: number): string;
  revisions(svc: string): string;
  allRevisions(): string;
  rollout(svc: string): string;
  rollouts(): string;
  rolloutControl(svc: string): string;
  rolloutHistory(svc: string, id: string): string;
  rolloutHistories(svc: string): string;
  health(machine: string, unit: string): string;
  machineHealth(machine: string): string;
  healths(): string;
  presenceHold(svc: string, unit: string): string;
  presenceHolds(svc: string): string;
  presenceStatus(svc: string, unit: string): string;
  presenceStatuses(svc: string): string;
  secret(name: string): string;
  secrets(): string;
  secretValue(name: string): string;
  secretValues(): string;
}

/** Revisions sort as strings, so their numbers are zero-padded. */
export const revisionId = (n: number): string => String(n).padStart(8, '0');

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
    service: (s) => `${p}/service/${s}`,
    services: () => `${p}/service/`,
    revision: (s, n) => `${p}/revision/${s}/${revisionId(n)}`,
    revisions: (s) => `${p}/revision/${s}/`,
    allRevisions: () => `${p}/revision/`,
    rollout: (s) => `${p}/rollout/${s}`,
    rollouts: () => `${p}/rollout/`,
    rolloutControl: (s) => `${p}/rollout-control/${s}`,
    rolloutHistory: (s, id) => `${p}/rollout-history/${s}/${id}`,
    rolloutHistories: (s) => `${p}/rollout-history/${s}/`,
    health: (m, u) => `${p}/health/${m}/${u}`,
    machineHealth: (m) => `${p}/health/${m}/`,
    healths: () => `${p}/health/`,
    presenceHold: (s, u) => `${p}/presence-hold/${s}/${u}`,
    presenceHolds: (s) => `${p}/presence-hold/${s}/`,
    presenceStatus: (s, u) => `${p}/presence-status/${s}/${u}`,
    presenceStatuses: (s) => `${p}/presence-status/${s}/`,
    secret: (n) => `${p}/secret/${n}`,
    secrets: () => `${p}/secret/`,
    secretValue: (n) => `${p}-secrets/${n}`,
    secretValues: () => `${p}-secrets/`,
  };
}

/** The last path segment of a key under a known prefix. */
export function lastSegment(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
