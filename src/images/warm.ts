/**
 * Pulls the demo's base image (the machine's node, ~100 MB unpacked) on
 * every host before the first deploy, in parallel, the way production
 * hosts come with their base layers cached in the machine image. A deploy
 * then pulls only the app's own layer (a few kilobytes); without this the
 * first start of each instance unpacks the base under vfs, which on a busy
 * 2-core machine took minutes for three hosts at once.
 */
import { failedError } from '../errors/errors.js';
import { openHost } from '../sandbox/host.js';

/**
 * @throws FleetxError 'failed' naming the host and podman's message when a pull fails
 *         or a host is not running.
 */
export async function warmHosts(hostDirs: string[], ref: string, timeoutMs = 600_000): Promise<void> {
  await Promise.all(
    hostDirs.map(async (dir) => {
      const host = openHost(dir);
      if (!host) throw failedError(`host ${dir} is not running: cannot pull ${ref} there`);
      const r = await host.exec(['/usr/bin/podman', 'pull', '--quiet', ref], { timeoutMs });
      if (r.code !== 0) throw failedError(`host ${host.name}: podman pull ${ref} failed: ${r.stderr.trim()}`);
    }),
  );
}
