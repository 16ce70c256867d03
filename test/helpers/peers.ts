// Real peers for the tests: a missing one is a failure that names the Debian
// package and the set-up command, never a skipped test.
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '../../collector/icmp/probe.ts';

export async function requireBinary(name: string, debianPackage: string): Promise<string> {
  const path = await findExecutable(name);
  if (!path) throw new Error(`${name} is not installed: it comes with the Debian package ${debianPackage}; run \`bash scripts/test.sh\` (it installs it) or \`apt-get install ${debianPackage}\``);
  return path;
}

/** A TCP port free now on 127.0.0.1, with the next one free too (influxd binds PORT and PORT+1). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    if (port >= 65000) continue;
    const nextFree = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port + 1, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (nextFree) return port;
  }
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `kw-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A unique 127.x.y.0/24 block per test file so parallel files never share an agent address. */
export function loopbackBlock(seed: string): string {
  let h = 0;
  for (const c of seed) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `127.${100 + (h % 100)}.${(h >>> 8) % 250}`;
}
