import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sidecarUnitText } from '../../src/demo/sidecars.js';
import { datadogContainerfile, fluentdContainerfile } from '../../src/images/sidecar-images.js';
import { loadValues } from '../../src/template/values.js';
import { demoContainerfile } from '../../src/images/demo-images.js';
import { lddPaths } from '../../src/images/rootfs.js';
import { podmanGlobals } from '../../src/images/podman.js';

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
});

const REPO_ROOT = join(import.meta.dirname, '..', '..');

describe('sidecar stand-in images', () => {
  const base = '10.213.0.1:5000/fleetx/node:20';
  it.each([
    ['fluentd', fluentdContainerfile(base)],
    ['datadog', datadogContainerfile(base)],
  ])('the %s stand-in says what it is: label, title and description', (_n, text) => {
    expect(text).toContain(`FROM ${base}\n`);
    expect(text).toMatch(/LABEL fleetx\.stand-in="true" org\.opencontainers\.image\.title="[^"]*STAND-IN\)" org\.opencontainers\.image\.description="NOT /);
  });

  it('the fluentd stand-in runs as fluent, reads FLUENTD_CONF from /fluentd/etc, and brings journalctl', () => {
    const text = fluentdContainerfile(base);
    expect(text).toContain('USER fluent\n');
    expect(text).toContain('ENV FLUENTD_CONF=fluent.conf');
    expect(text).toContain('COPY fluent.conf /fluentd/etc/fluent.conf\n');
    expect(text).toContain('ADD journalctl.tar /\n');
  });

  it.each([
    ['td-agent.service', /\/fluent\/fluentd:v1\.16-debian-1$/],
    ['dd-agent.service', /\/datadog\/agent:7$/],
  ] as const)('%s from the sandbox values runs the stand-in from the sandbox registry with podman', (unit, image) => {
    const name = unit.replace('.service', '');
    const values = loadValues({ files: [`services/${name}.values.yaml`], sets: [], cwd: REPO_ROOT });
    const text = sidecarUnitText(unit, readFileSync(join(REPO_ROOT, 'units', `${unit}.hbs`), 'utf8'), values, '10.213.0.1:5000');
    const exec = text.slice(text.indexOf('ExecStart='), text.indexOf('ExecStop='));
    expect(exec.startsWith('ExecStart=/usr/bin/podman run --name')).toBe(true);
    expect(exec.trim().split(/\s+/).at(-1)).toMatch(new RegExp(`^10\\.213\\.0\\.1:5000${image.source}`));
  });
});
