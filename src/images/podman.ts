/**
 * podman on this machine, for building and pushing the sandbox's images:
 * its own storage under the sandbox state dir (vfs, so it needs nothing of
 * the machine's filesystem), cgroupfs and file events (the machine runs no
 * systemd). It never runs a container here: import, build (COPY only) and
 * push need none.
 */
import { runOk, SYSTEM_PATH, type RunResult } from '../sandbox/run.js';

export interface PodmanStore {
  /** images storage: STATEDIR/images/storage */
  root: string;
  /** runtime state: STATEDIR/images/run */
  runroot: string;
}

/** Pure: the global flags that point podman at the sandbox's own store. */
export function podmanGlobals(s: PodmanStore): string[] {
  return [`--root=${s.root}`, `--runroot=${s.runroot}`, '--storage-driver=vfs', '--cgroup-manager=cgroupfs', '--events-backend=file'];
}

/**
 * Runs `podman GLOBALS argv...` (argv only, no shell).
 * @throws FleetxError 'failed' with podman's message when it exits non-zero.
 */
export function podman(s: PodmanStore, argv: string[], timeoutMs = 300_000): Promise<RunResult> {
  return runOk('/usr/bin/podman', [...podmanGlobals(s), ...argv], { timeoutMs, env: { PATH: SYSTEM_PATH, LANG: 'C.UTF-8', HOME: '/root' } });
}
