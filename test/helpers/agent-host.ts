/**
 * One booted nspawn host running `fleetx agent` as a systemd service, on a
 * test bridge, against a sandbox etcd on the machine that listens only on
 * the bridge address. For tests of the agent on real systemd.
 *
 *   const h = await startAgentHost({ tag: 'pause', name: 'fxt-pause', agentArgs: ['--ttl', '3'] });
 *   ... h.host, h.etcd (a client), h.etcdSpec, h.journal() ...
 *   expect(await h.stop()).toEqual([]);   // what was left behind
 */
import { rm } from 'node:fs/promises';
import type { Etcd3 } from 'etcd3';
import { connect } from '../../src/registry/client.js';
import { etcdPids, startEtcd, stopEtcd, type EtcdSpec } from '../../src/sandbox/etcd.js';
import { bootHost, type Host } from '../../src/sandbox/host.js';
import { createBridge, deleteBridge } from '../../src/sandbox/network.js';
import { leftovers, testNet, testStateDir } from './hosts.js';

export interface AgentHost {
  host: Host;
  etcd: Etcd3;
  etcdSpec: EtcdSpec;
  /** the agent's last journal lines */
  journal(lines?: number): Promise<string>;
  /** Stops host, etcd and bridge (resuming a frozen etcd first); returns what was left behind. */
  stop(): Promise<string[]>;
}

export async function startAgentHost(o: { tag: string; name: string; agentArgs: string[] }): Promise<AgentHost> {
  const net = testNet();
  const base = testStateDir(o.tag);
  const etcdUrl = `http://${net.prefix}.1:2379`;
  const etcdSpec = { dataDir: `${base}/etcd`, logFile: `${base}/etcd.log`, clientUrl: etcdUrl, peerUrl: `http://${net.prefix}.1:2380` };
  const agentUnit = [
    '[Unit]',
    'Description=fleetx agent (test)',
    '[Service]',
    `ExecStart=/usr/bin/node ${process.cwd()}/bin/fleetx.mjs --endpoint ${etcdUrl} agent --ip ${net.prefix}.11 ${o.agentArgs.join(' ')}`,
    'Restart=always',
    'RestartSec=1',
    '',
  ].join('\n');
  await createBridge(net.bridge, `${net.prefix}.1/24`);
  await startEtcd(etcdSpec);
  const etcd = connect({ endpoints: [etcdUrl], requestTimeoutMs: 3000, prefix: '/fleetx' });
  let host: Host | undefined;
  const stop = async () => {
    for (const pid of etcdPids(etcdSpec.dataDir)) process.kill(pid, 'SIGCONT');
    etcd.close();
    await host?.stop().catch(() => undefined);
    await stopEtcd(etcdSpec.dataDir);
    await deleteBridge(net.bridge).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
    return leftovers(base, net.bridge, [{ name: o.name, dir: `${base}/host` }]);
  };
  try {
    host = await bootHost({
      name: o.name,
      stateDir: `${base}/host`,
      bridge: { name: net.bridge, address: `${net.prefix}.11/24` },
      files: { '/etc/systemd/system/fleetx-agent.service': agentUnit },
    });
    const started = await host.exec(['systemctl', 'start', 'fleetx-agent']);
    if (started.code !== 0) throw new Error(`fleetx-agent did not start: ${started.stderr}`);
  } catch (e) {
    await stop();
    throw e;
  }
  const h = host;
  return {
    host: h,
    etcd,
    etcdSpec,
    journal: async (lines = 80) => (await h.exec(['journalctl', '-u', 'fleetx-agent', '-n', String(lines), '--no-pager', '-o', 'cat'])).stdout,
    stop,
  };
}
