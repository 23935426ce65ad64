/**
 * Inputs and outputs of the scheduler. Everything here is plain data: the
 * engine leader reads units, live machines and the schedule keys from etcd,
 * calls schedule(), and writes the result back. See README.md for the words.
 */
import type { TargetState } from '../registry/records.js';
import type { XFleetOptions } from '../unit/types.js';

export interface SchedUnit {
  name: string;
  targetState: TargetState;
  xfleet: XFleetOptions;
}

export interface SchedMachine {
  id: string;
  metadata: Record<string, string>;
}

/** One unit on one machine. A global unit has one assignment per machine. */
export interface Assignment {
  unit: string;
  machine: string;
}

export interface ScheduleInput {
  units: SchedUnit[];
  /** live machines only: a machine missing here is gone */
  machines: SchedMachine[];
  /** what the schedule keys say now */
  current: Assignment[];
}

export interface Decision {
  unit: string;
  machine: string;
  reason: string;
}

export interface Unschedulable {
  unit: string;
  reason: string;
  /** machine id -> "Filter: why it was rejected" */
  machines: Record<string, string>;
}

/** Named buckets, each sorted by unit then machine (unschedulable by unit). */
export interface ScheduleResult {
  place: Decision[];
  unschedule: Decision[];
  keep: Assignment[];
  unschedulable: Unschedulable[];
}

/** The placement filters, in the order they run. The first to reject a machine names the reason. */
export type FilterName = 'MachineID' | 'MachineMetadata' | 'MachineOf' | 'Replaces' | 'Conflicts';

export interface Rejection {
  filter: FilterName;
  reason: string;
}

/** Per unit, each machine's verdict the last time the unit was considered (undefined = accepted). */
export type Trace = Map<string, Map<string, Rejection | undefined>>;

/** What `fleetx why UNIT` prints for one machine. */
export interface MachineVerdict {
  machine: string;
  /** assigned: the unit ends up there; eligible: it could go there; rejected: a filter said no */
  outcome: 'assigned' | 'eligible' | 'rejected';
  filter?: FilterName;
  reason: string;
}

export type UnitStatus = 'kept' | 'placed' | 'moved' | 'unschedulable' | 'inactive';

export interface Explanation {
  unit: string;
  status: UnitStatus;
  /** one line: why the unit is where it is, or why it is nowhere */
  summary: string;
  /** every live machine, sorted by id */
  machines: MachineVerdict[];
}
