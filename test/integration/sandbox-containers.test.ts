/**
 * Sandbox hosts are container hosts: the registry on the bridge, images
 * built on this machine and pushed there, and a host pulling and running
 * one through /usr/bin/docker, the command the seed's units call (podman-docker;
 * the machine's own /usr/local/bin/docker, seen through the overlay, is another program).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoImages } from '../../src/images/demo-images.js';
import { openHost, type Host } from '../../src/sandbox/host.js';
import { sandboxDown, sandboxUp, type SandboxStatus } from '../../src/sandbox/sandbox.js';
import { sandboxPaths } from '../../src/sandbox/state.js';
import { leftovers, testNet, testStateDir } from '../helpers/hosts.js';

const REPO = process.cwd();

describe('sandbox container hosts', () => {
  const net = testNet();
  const stateDir = testStateDir('ctr');
  let status: SandboxStatus;
  let host: Host;
  let refs: Awaited<ReturnType<typeof ensureDemoImages>>;

  beforeAll(async () => {
    status = await sandboxUp({ hosts: 1, stateDir, repoRoot: REPO, bridge: net.bridge, subnet: net.prefix, hostPrefix: 'fxk' });
    host = openHost(`${stateDir}/hosts/fxk-1`)!;
    refs = await ensureDemoImages({ dir: sandboxPaths(stateDir).images, registry: status.registry!.address, script: `${REPO}/demo/web.mjs` });
  }, 400_000);
  afterAll(async () => {
    await sandboxDown(stateDir);
    expect(await leftovers(stateDir, net.bridge, [{ name: 'fxk-1', dir: `${stateDir}/hosts/fxk-1` }])).toEqual([]);
  });

  it('status names the registry on the bridge address', () => {
    expect(status.healthy).toBe(true);
    expect(status.registry).toMatchObject({ address: `${net.prefix}.1:5000`, url: `http://${net.prefix}.1:5000/`, running: true });
  });

  it('pushed the demo tags, sharing one base layer', async () => {
    expect(Object.keys(refs).sort()).toEqual(['base', 'unhealthy', 'v1', 'v2']);
    const tags = (await (await fetch(`http://${status.registry!.address}/v2/fleetx/demo-web/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags.sort()).toEqual(['unhealthy', 'v1', 'v2']);
    const layers = async (tag: string) => {
      const res = await fetch(`http://${status.registry!.address}/v2/fleetx/demo-web/manifests/${tag}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
      });
      return ((await res.json()) as { layers: Array<{ digest: string }> }).layers.map((l) => l.digest);
    };
    const [v1, v2] = [await layers('v1'), await layers('v2')];
    expect(v1[0]).toBe(v2[0]);
  });

  it('a host uses its own container settings: vfs storage, the sandbox registry', async () => {
    const info = await host.exec(['podman', 'info', '--format', '{{.Store.GraphDriverName}}']);
    expect(info.stdout.trim(), info.stderr).toBe('vfs');
    const conf = await host.exec(['cat', '/etc/containers/registries.conf']);
    expect(conf.stdout).toContain(`location = "${status.registry!.address}"`);
  });

  it('a host pulls and runs an image with docker; --init lets SIGTERM stop it cleanly', async () => {
    const pull = await host.exec(['/usr/bin/docker', 'pull', refs.v1], { timeoutMs: 120_000 });
    expect(pull.code, pull.stderr).toBe(0);
    // From a systemd service, as units run it: services inherit nspawn's seccomp filter, nsenter does not.
    const run = await host.exec(['systemd-run', '--unit=probe-1', '--', '/usr/bin/docker', 'run', '--init', '--name', 'probe-1', refs.v1]);
    expect(run.code, run.stderr).toBe(0);
    let body = '';
    for (let i = 0; i < 80 && !body; i++) {
      await new Promise((r) => setTimeout(r, 250));
      body = await fetch(`http://${net.prefix}.11:8080/`).then((r) => r.text(), () => '');
    }
    const journal = async () => (await host.exec(['journalctl', '--no-pager', '-u', 'probe-1'])).stdout;
    expect(body, await journal()).not.toBe('');
    expect(JSON.parse(body)).toMatchObject({ version: 'v1' });
    const stop = await host.exec(['/usr/bin/docker', 'stop', '-t', '30', 'probe-1'], { timeoutMs: 60_000 });
    expect(stop.code, stop.stderr).toBe(0);
    // web.mjs exits 0 on SIGTERM; a SIGKILL after the timeout would be 137.
    const exit = await host.exec(['/usr/bin/docker', 'inspect', '--format', '{{.State.ExitCode}}', 'probe-1']);
    expect(exit.stdout.trim()).toBe('0');
  });

  it('a missing tag fails the pull with the registry\'s message', async () => {
    const pull = await host.exec(['/usr/bin/docker', 'pull', `${status.registry!.address}/fleetx/demo-web:nope`], { timeoutMs: 60_000 });
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toMatch(/manifest unknown/);
  });
});
