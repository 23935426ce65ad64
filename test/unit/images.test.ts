import { describe, expect, it } from 'vitest';
import { demoContainerfile } from '../../src/images/demo-images.js';
import { lddPaths } from '../../src/images/rootfs.js';
import { podmanGlobals } from '../../src/images/podman.js';
import { containerHostFiles } from '../../src/sandbox/container-host.js';

describe('images', () => {
  it('takes the libraries node needs from ldd output, vdso skipped', () => {
    const ldd = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f6d)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6e)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f6f)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6e)',
    ].join('\n');
    expect(lddPaths(ldd)).toEqual(['/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });

  it.each([
    ['v1', '["--port","8080","--start-delay","1500","--version","v1"]'],
    ['v2', '["--port","8080","--start-delay","1500","--version","v2"]'],
    ['unhealthy', '["--port","8080","--start-delay","1500","--version","unhealthy","--unhealthy"]'],
  ] as const)('the %s image runs demo/web.mjs on the node base with its own arguments', (tag, cmd) => {
    const text = demoContainerfile('10.213.0.1:5000/fleetx/node:20', tag);
    expect(text).toContain('FROM 10.213.0.1:5000/fleetx/node:20\nCOPY web.mjs /app/web.mjs\n');
    expect(text).toContain(`CMD ${cmd}`);
  });

  it('machine podman uses the sandbox store only', () => {
    expect(podmanGlobals({ root: '/s/images/storage', runroot: '/s/images/run' })).toEqual([
      '--root=/s/images/storage',
      '--runroot=/s/images/run',
      '--storage-driver=vfs',
      '--cgroup-manager=cgroupfs',
      '--events-backend=file',
    ]);
  });

  it('a container host: vfs, no cgroups, host network, the one insecure registry', () => {
    const files = containerHostFiles({ registry: '10.213.0.1:5000' });
    expect(Object.keys(files).sort()).toEqual(['/etc/containers/containers.conf', '/etc/containers/nodocker', '/etc/containers/registries.conf', '/etc/containers/storage.conf']);
    expect(files['/etc/containers/storage.conf']).toContain('driver = "vfs"');
    expect(files['/etc/containers/containers.conf']).toMatch(/cgroups = "disabled"\nnetns = "host"\nkeyring = false\n/);
    expect(files['/etc/containers/registries.conf']).toContain('[[registry]]\nlocation = "10.213.0.1:5000"\ninsecure = true\n');
  });
});
