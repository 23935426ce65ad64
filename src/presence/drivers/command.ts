/**
 * The command driver: runs an argv (execFile, never a shell) for every
 * change, with the change in its environment:
 *   FLEETX_PRESENCE_SERVICE, FLEETX_PRESENCE_UNIT, FLEETX_PRESENCE_ADDRESS,
 *   FLEETX_PRESENCE_PORT, FLEETX_PRESENCE_STATE (in|out).
 * Values reach the program literally: no word splitting, quotes or `$(…)`.
 * The rest of the environment is the syncer's without its FLEETX_* and
 * FLEETCTL_* settings (they may hold etcd credentials).
 * Exit 0 = applied; any other exit, a signal or the timeout (the process is
 * killed) is a per-instance error, retried. No session counts (changes.ts).
 */
import { execFile } from 'node:child_process';
import { usageError } from '../../errors/errors.js';
import { ChangeDriver, type PresenceChange } from './changes.js';

export interface CommandDriverOptions {
  service: string;
  argv: string[];
  /** per run (default 10000) */
  timeoutMs?: number;
  /** environment the command starts from (default: the syncer's) */
  env?: NodeJS.ProcessEnv;
}

export class CommandDriver extends ChangeDriver {
  readonly kind = 'command';

  /** @throws FleetxError 'usage' for an empty argv. */
  constructor(private readonly opts: CommandDriverOptions) {
    super(opts.service);
    if (opts.argv.length === 0 || opts.argv[0] === '') throw usageError('presence.command must be a non-empty argv list');
  }

  protected send(change: PresenceChange): Promise<void> {
    const [file, ...args] = this.opts.argv as [string, ...string[]];
    const env = {
      ...inherited(this.opts.env ?? process.env),
      FLEETX_PRESENCE_SERVICE: change.service,
      FLEETX_PRESENCE_UNIT: change.unit,
      FLEETX_PRESENCE_ADDRESS: change.address,
      FLEETX_PRESENCE_PORT: String(change.port),
      FLEETX_PRESENCE_STATE: change.state,
    };
    const timeout = this.opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      execFile(file, args, { env, timeout, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
        if (!err) return resolve();
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: number | string };
        const tail = String(stderr).trim().split('\n').slice(-1)[0] ?? '';
        const why =
          typeof e.code === 'string' ? `cannot run ${file} (${e.code})`
          : e.killed ? `${file} killed after ${timeout} ms`
          : e.signal ? `${file} killed by ${e.signal}`
          : `${file} exited ${e.code}${tail ? `: ${tail}` : ''}`;
        reject(new Error(why));
      });
    });
  }
}

/**
 * The syncer's environment minus its own settings: FLEETX_* / FLEETCTL_*
 * may carry etcd credentials (FLEETX_ETCD_PASSWORD), which a hook command
 * has no business seeing.
 */
function inherited(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^(FLEETX|FLEETCTL)_/.test(k)));
}
