/**
 * A unit's image pull step (src/unit/pull.ts): what the agent runs ahead of
 * a restart, and when it finds nothing to run.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseUnit } from '../../src/unit/parse.js';
import { execWords, pullStep } from '../../src/unit/pull.js';

const unit = (...pre: string[]) => parseUnit(`[Service]\n${pre.map((l) => `ExecStartPre=${l}`).join('\n')}\nExecStart=/usr/bin/podman run x\n`);

describe('pullStep', () => {
  it.each<[string, string[], string[] | undefined]>([
    ['the seed template\'s line, podman', ['-/usr/bin/podman rm -f app-%i', '/usr/bin/podman pull reg:5000/fleetx/demo-web:v2'], ['/usr/bin/podman', 'pull', 'reg:5000/fleetx/demo-web:v2']],
    ['docker, with the "-" prefix (failure ignored by systemd)', ['-/usr/bin/docker pull busybox'], ['/usr/bin/docker', 'pull', 'busybox']],
    ['options before the image are kept', ['/usr/bin/podman pull --quiet reg/app:1'], ['/usr/bin/podman', 'pull', '--quiet', 'reg/app:1']],
    ['specifiers are expanded for the instance', ['/usr/bin/podman pull reg/%p:%i'], ['/usr/bin/podman', 'pull', 'reg/app:3']],
    ['quoted words', ['/usr/bin/podman pull "reg/app:v 1"'], ['/usr/bin/podman', 'pull', 'reg/app:v 1']],
    ['no pull line', ['/usr/bin/podman rm -f app-%i'], undefined],
    ['a relative binary is not recognised', ['podman pull reg/app:1'], undefined],
    ['another binary named like a runtime is not', ['/usr/bin/mypodman pull reg/app:1'], undefined],
    ['an environment variable is systemd\'s to expand: not pre-pulled', ['/usr/bin/podman pull ${IMAGE}'], undefined],
    ['pull without an image', ['/usr/bin/podman pull'], undefined],
    ['a shell wrapper is not run', ['/bin/sh -c "podman pull x"'], undefined],
  ])('%s', (_d, lines, argv) => {
    const step = pullStep(unit(...lines), 'app@3.service');
    expect(step?.argv).toEqual(argv);
    if (argv) expect(step!.image).toBe(argv.at(-1));
  });
});

describe('execWords', () => {
  it.each<[string, string[] | undefined]>([
    ['a b  c', ['a', 'b', 'c']],
    ['a "b c" \'d e\'', ['a', 'b c', 'd e']],
    ['a\\ b', ['a b']],
    ['a ""', ['a', '']],
    ['a "b', undefined],
  ])('%j', (line, words) => {
    expect(execWords(line)).toEqual(words);
  });

  it('words without quotes, backslashes or spaces come back as they were', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9:/._@%=-]{1,12}$/);
    fc.assert(fc.property(fc.array(word, { minLength: 1, maxLength: 6 }), (ws) => {
      expect(execWords(ws.join(' '))).toEqual(ws);
    }));
  });
});
