/**
 * The unit model shared by every part of fleetx. A unit file is an ordered
 * list of options; sections appear in the order of their first appearance
 * (systemd merges repeated [Section] headers) and repeated keys are kept in
 * order, including empty assignments (`Environment=`) that reset a list.
 * Comments are not part of the model: the normalized form drops them, as
 * fleet did.
 */
export interface UnitOption {
  section: string;
  name: string;
  value: string;
}

export interface UnitFile {
  options: UnitOption[];
}

/** Unit types systemd knows; a unit name must end in one of these. */
export const UNIT_TYPES = [
  'service', 'socket', 'device', 'mount', 'automount', 'swap',
  'target', 'path', 'timer', 'slice', 'scope',
] as const;
export type UnitType = (typeof UNIT_TYPES)[number];

/** A parsed unit name. `app@.service` is a template, `app@1.service` an instance of it. */
export interface UnitName {
  full: string; // app@1.service
  prefix: string; // app   (%p)
  instance?: string; // 1  (%i); '' for a template
  type: UnitType; // service
  isTemplate: boolean; // app@.service
  isInstance: boolean; // app@1.service
  template?: string; // app@.service, for instances
}

/** fleet's [X-Fleet] options, after specifier expansion and validation. */
export interface XFleetOptions {
  conflicts: string[]; // globs of unit names
  machineOf: string[]; // unit names this one must share a machine with
  machineId?: string; // exact machine id (fleet allowed a unique prefix; see unit/xfleet.ts)
  machineMetadata: Record<string, string[]>; // key -> allowed values (keys AND, values OR)
  global: boolean;
  replaces: string[]; // unit names this one displaces from a machine
}
