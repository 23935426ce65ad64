/**
 * Where the demo layer keeps its files: STATEDIR/demo/, next to the
 * sandbox's own entries (which `sandbox down` removes; demoDown removes
 * this dir first).
 */
import { join } from 'node:path';

export const DEMO_DIR = 'demo';

export const demoPaths = (stateDir: string) => {
  const dir = join(stateDir, DEMO_DIR);
  return {
    dir,
    /** what demoUp made (DemoState) */
    state: join(dir, 'demo.json'),
    haproxyConfig: join(dir, 'haproxy.cfg'),
    /** HAProxy's runtime API (level admin), the service's presence.socket */
    socket: join(dir, 'haproxy.sock'),
    haproxyPid: join(dir, 'haproxy.pid'),
    haproxyLog: join(dir, 'haproxy.log'),
    syncerPid: join(dir, 'presence.pid'),
    syncerLog: join(dir, 'presence.log'),
    /** services/app.yaml with this sandbox's registry and socket */
    serviceFile: join(dir, 'app.yaml'),
  };
};

export type DemoPaths = ReturnType<typeof demoPaths>;
