import type { Variant } from 'dbus-next';
import type { UnitStatus } from './types.js';

export const UNIT_IFACE = 'org.freedesktop.systemd1.Unit';
export const SERVICE_IFACE = 'org.freedesktop.systemd1.Service';
const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit/';

/**
 * The unit name behind a unit's object path, undoing systemd's
 * bus_label_escape (every byte outside [A-Za-z0-9] becomes _xx).
 * Undefined for paths that are not unit objects.
 */
export function unitNameOfPath(objectPath: string): string | undefined {
  if (!objectPath.startsWith(UNIT_PATH_PREFIX)) return undefined;
  const label = objectPath.slice(UNIT_PATH_PREFIX.length);
  if (label === '' || label.includes('/')) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < label.length; i++) {
    if (label[i] === '_' && /^[0-9a-f]{2}$/i.test(label.slice(i + 1, i + 3))) {
      bytes.push(parseInt(label.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(label.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** A unit's object path: systemd's bus_label_escape (every byte outside [A-Za-z0-9] becomes _xx). */
export function unitPathOf(name: string): string {
  let label = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    label += /[A-Za-z0-9]/.test(c) ? c : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return UNIT_PATH_PREFIX + (label || '_');
}

/** A D-Bus property value without its Variant, 64-bit integers as numbers (PIDs and such fit). */
export function plain(v: unknown): unknown {
  const raw = v !== null && typeof v === 'object' && 'signature' in v && 'value' in v ? (v as Variant).value : v;
  return typeof raw === 'bigint' ? Number(raw) : raw;
}

type Props = Record<string, unknown>;

/** The fields of UnitStatus found in a property map (a GetAll result or a PropertiesChanged body). */
export function statusFields(props: Props): Partial<UnitStatus> {
  const out: Partial<UnitStatus> = {};
  const str = (k: string) => {
    const v = plain(props[k]);
    return typeof v === 'string' ? v : undefined;
  };
  if (str('LoadState') !== undefined) out.loadState = str('LoadState');
  if (str('ActiveState') !== undefined) out.activeState = str('ActiveState');
  if (str('SubState') !== undefined) out.subState = str('SubState');
  const frag = str('FragmentPath');
  if (frag) out.fragmentPath = frag;
  if ('MainPID' in props) out.mainPid = Number(plain(props.MainPID)) || 0; // 0: no main process
  return out;
}

/** Makes a complete status, or undefined if a state is missing; mainPid 0 means none. */
export function completeStatus(name: string, f: Partial<UnitStatus>): UnitStatus | undefined {
  if (f.loadState === undefined || f.activeState === undefined || f.subState === undefined) return undefined;
  const s: UnitStatus = { name, loadState: f.loadState, activeState: f.activeState, subState: f.subState };
  if (f.mainPid) s.mainPid = f.mainPid;
  if (f.fragmentPath) s.fragmentPath = f.fragmentPath;
  return s;
}

/**
 * Turns systemd's PropertiesChanged signals into one UnitStatus per real
 * change. systemd sends the Service interface (MainPID) and the Unit
 * interface (states) as two signals per transition; merging them and
 * flushing on the next macrotask reports one change instead of two.
 * LoadState is a "const" property in systemd's bus API, never signalled:
 * it is fetched once per unit (and again after each daemon-reload).
 */
export class UnitChanges {
  private readonly known = new Map<string, Partial<UnitStatus> & { path: string }>();
  private readonly emitted = new Map<string, string>();
  private readonly fetching = new Set<string>();
  private readonly dirty = new Set<string>();
  private flushing = false;

  constructor(
    private readonly emit: (s: UnitStatus) => void,
    private readonly loadStateOf: (objectPath: string) => Promise<string>,
  ) {}

  propertiesChanged(objectPath: string, iface: string, changed: Props): void {
    if (iface !== UNIT_IFACE && iface !== SERVICE_IFACE) return;
    const name = unitNameOfPath(objectPath);
    if (name === undefined) return;
    const { fragmentPath: _ignored, loadState: _notSignalled, ...fields } = statusFields(changed);
    if (Object.keys(fields).length === 0) return;
    this.known.set(name, { ...this.known.get(name), ...fields, path: objectPath });
    // systemd follows every Service-interface signal with a Unit-interface
    // one for the same transition: report once, when the states arrive.
    if (iface === UNIT_IFACE) this.markDirty(name);
  }

  /** UnitRemoved: systemd unloaded the unit; report what is pending, then forget it so memory stays bounded. */
  unitRemoved(name: string): void {
    if (this.dirty.delete(name)) this.flushOne(name);
    this.known.delete(name);
    this.emitted.delete(name);
  }

  /**
   * The main PID last signalled for a unit whose signalled active state is
   * `activeState` (0: none), or undefined when signals have not told (a unit
   * not seen changing since we connected, or in another state by now).
   * Saves one D-Bus call per running unit in every listUnits().
   */
  signalledMainPid(name: string, activeState: string): number | undefined {
    const k = this.known.get(name);
    return k?.activeState === activeState ? k.mainPid : undefined;
  }

  /**
   * systemd accepted a start or restart job of the unit, so it has the unit
   * loaded: LoadState (never signalled) need not be asked for. Saves a D-Bus
   * call per started unit before its first state is reported, one that
   * waited behind systemd's other jobs when many units start at once; known
   * at the job's enqueue, the unit's `active` is reported as soon as it is
   * signalled rather than after the job's JobRemoved.
   */
  loadedByJob(name: string): void {
    const k = this.known.get(name);
    if (!k) {
      this.known.set(name, { loadState: 'loaded', path: unitPathOf(name) });
      return;
    }
    if (k.loadState !== undefined) return;
    k.loadState = 'loaded';
    this.markDirty(name); // a change may be waiting for it
  }

  /** After a reconnect signals may have been missed: forget what they said. */
  forget(): void {
    this.known.clear();
    this.emitted.clear();
  }

  /** After a daemon-reload load states may differ: fetch them again when next needed. */
  reloaded(): void {
    for (const k of this.known.values()) delete k.loadState;
  }

  private markDirty(name: string): void {
    this.dirty.add(name);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = false;
    const names = [...this.dirty];
    this.dirty.clear();
    for (const name of names) this.flushOne(name);
  }

  private flushOne(name: string): void {
    const k = this.known.get(name);
    if (!k) return;
    if (k.loadState === undefined) {
      // Rare gap: when a unit's first signals and its removal arrive together,
      // the fetch fails and that change is not reported (listUnits() still tells).
      this.fetchLoadState(name, k.path);
      return;
    }
    const s = completeStatus(name, k);
    if (!s) return;
    const key = `${s.loadState}/${s.activeState}/${s.subState}/${s.mainPid ?? 0}`;
    if (this.emitted.get(name) === key) return;
    this.emitted.set(name, key);
    this.emit({ name: s.name, loadState: s.loadState, activeState: s.activeState, subState: s.subState, ...(s.mainPid ? { mainPid: s.mainPid } : {}) });
  }

  private fetchLoadState(name: string, path: string): void {
    if (this.fetching.has(name)) return;
    this.fetching.add(name);
    this.loadStateOf(path).then(
      (loadState) => {
        this.fetching.delete(name);
        const k = this.known.get(name);
        if (!k) return;
        k.loadState = loadState;
        this.markDirty(name);
      },
      () => this.fetching.delete(name), // unit gone or bus down: the next signal tries again
    );
  }
}
