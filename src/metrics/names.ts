/**
 * The metrics the host daemon serves, one place for their names, help and
 * labels (docs/METRICS.md lists them for users; the unit tests pin them).
 * Every name starts with `fleetx_`; durations are seconds, counters end in
 * `_total`, as Prometheus' naming rules ask.
 */
export const METRIC = {
  units: { name: 'fleetx_agent_units', help: 'Units fleetx manages on this host, by systemd active state', labels: ['state'] },
  passes: { name: 'fleetx_agent_reconcile_passes_total', help: 'Reconcile passes of the agent, by outcome (ok, failed, skipped)', labels: ['outcome'] },
  passSeconds: { name: 'fleetx_agent_reconcile_pass_duration_seconds', help: 'Time one reconcile pass took (read, plan, run the tasks)', labels: [] },
  tasks: { name: 'fleetx_agent_tasks_total', help: 'Tasks the agent carried out on systemd, by type', labels: ['type'] },
  scheduleWatch: { name: 'fleetx_agent_schedule_watch_up', help: '1 while the watch on this machine\'s schedule is live, else 0 (units are left alone)', labels: [] },
  machinePresence: { name: 'fleetx_machine_presence_changes_total', help: 'This machine\'s presence in the cluster: leases granted (registered) and lost (lease_lost)', labels: ['change'] },
  etcdSeconds: { name: 'fleetx_etcd_request_duration_seconds', help: 'Unary etcd requests of this process, by gRPC method', labels: ['method'] },
  etcdErrors: { name: 'fleetx_etcd_request_errors_total', help: 'Unary etcd requests that failed, by gRPC method and status code name', labels: ['method', 'code'] },
  leader: { name: 'fleetx_engine_leader', help: '1 while this host\'s engine is the elected leader, else 0', labels: [] },
  controllerPasses: { name: 'fleetx_rollout_controller_passes_total', help: 'Passes of the rollout controller (only on the engine leader)', labels: [] },
  controllerSeconds: { name: 'fleetx_rollout_controller_pass_duration_seconds', help: 'Time one rollout controller pass took', labels: [] },
  phaseSeconds: { name: 'fleetx_rollout_phase_duration_seconds', help: 'Time rollout instances spent in a phase, observed when they leave it (engine leader)', labels: ['service', 'phase'] },
  rolloutsFinished: { name: 'fleetx_rollouts_finished_total', help: 'Rollouts finished by this leader, by service and final state', labels: ['service', 'state'] },
  presenceChanges: { name: 'fleetx_presence_changes_total', help: 'Load-balancer presence statuses written by the presence syncer, by service and state', labels: ['service', 'state'] },
} as const;

/** Buckets for things that take milliseconds to seconds (etcd calls, passes). */
export const FAST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Buckets for rollout phases: a drain or a start takes seconds to minutes. */
export const PHASE_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];
