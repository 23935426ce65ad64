/**
 * Whether systemd can load a unit at all. systemd accepts such a file on
 * disk and then marks the unit `bad-setting`, so a start waits forever while
 * the agent reports a unit that can never run: refuse these before they are
 * stored. Only systemd's own "Refusing." rules are here (an empty file; a
 * service with nothing to execute; a socket with nothing to listen on; a
 * timer with nothing to trigger it); everything else is systemd-analyze's job.
 */
import { invalidError } from '../errors/errors.js';
import { optionValue, optionValues } from './options.js';
import type { UnitFile, UnitType } from './types.js';

const SOCKET_LISTEN = ['ListenStream', 'ListenDatagram', 'ListenSequentialPacket', 'ListenFIFO', 'ListenSpecial', 'ListenNetlink', 'ListenMessageQueue', 'ListenUSBFunction'];
const TIMER_TRIGGERS = ['OnActiveSec', 'OnBootSec', 'OnStartupSec', 'OnUnitActiveSec', 'OnUnitInactiveSec', 'OnCalendar', 'OnClockChange', 'OnTimezoneChange'];

const anyOf = (u: UnitFile, section: string, names: string[]) => names.some((n) => optionValues(u, section, n).length > 0);

/** What keeps systemd from loading the unit, as sentences; empty when nothing does. */
export function unrunnableProblems(u: UnitFile, type: UnitType): string[] {
  if (u.options.length === 0) return ['the unit file is empty: systemd would refuse it (bad-setting)'];
  switch (type) {
    case 'service': {
      if (optionValues(u, 'Service', 'ExecStart').length > 0) return [];
      if ((optionValue(u, 'Service', 'Type') ?? '') !== 'oneshot') {
        return ['[Service] has no ExecStart=, which systemd allows only for Type=oneshot services: it would refuse the unit (bad-setting)'];
      }
      if (!anyOf(u, 'Service', ['ExecStop']) && !anyOf(u, 'Unit', ['SuccessAction'])) {
        return ['[Service] has no ExecStart=, ExecStop= or SuccessAction=: systemd would refuse the unit (bad-setting)'];
      }
      return [];
    }
    case 'socket':
      return anyOf(u, 'Socket', SOCKET_LISTEN) ? [] : [`[Socket] has no Listen setting (${SOCKET_LISTEN.map((n) => `${n}=`).join(', ')}): systemd would refuse the unit (bad-setting)`];
    case 'timer':
      return anyOf(u, 'Timer', TIMER_TRIGGERS) ? [] : [`[Timer] has no trigger (${TIMER_TRIGGERS.map((n) => `${n}=`).join(', ')}): systemd would refuse the unit (bad-setting)`];
    default:
      return [];
  }
}

/** Throws FleetxError 'invalid' naming the unit when systemd could not load it. */
export function checkRunnable(u: UnitFile, name: string, type: UnitType): void {
  const problems = unrunnableProblems(u, type);
  if (problems.length > 0) throw invalidError(`${name}: ${problems.join('; ')}`, 'verify it with: fleetx verify FILE');
}
