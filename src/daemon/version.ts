/** The version an agent reports in its machine record: package.json's, found from this file upwards. */
import { readFile } from 'node:fs/promises';

export async function packageVersion(from: URL = new URL('.', import.meta.url)): Promise<string> {
  // Walk up rather than fix the depth: the file runs from src/ and from a compiled build.
  for (let dir = from; ; ) {
    try {
      const pkg = JSON.parse(await readFile(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'fleetx') return pkg.version ?? '0.0.0';
    } catch {
      // no package.json here: keep looking
    }
    const up = new URL('..', dir);
    if (up.href === dir.href) return '0.0.0';
    dir = up;
  }
}
