// What run.ts and query-scale.ts both measure with: sizes on disk, the page
// cache dropped, a timed call, the same point query through klaiwatch and
// nfdump, and a plain table.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryArchive } from '../../archive/query.ts';

const exec = promisify(execFile);

export function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

/** Drops the page cache (root only); false when it could not, so "cold" is only a first run. */
export async function dropCaches(): Promise<boolean> {
  try {
    await exec('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

export interface Timed {
  ms: number;
  /** Rows found. */
  n: number;
}

async function timeIt(f: () => Promise<number>): Promise<Timed> {
  const t = performance.now();
  const n = await f();
  return { ms: performance.now() - t, n };
}

/** Every flow from or to `host` in a klaiwatch archive. */
export const klaiwatchHostQuery = (dir: string, host: string) => timeIt(async () => (await queryArchive(dir, { ip: host })).rows.length);

/** The same through `nfdump -R dir 'host X'`. */
export const nfdumpHostQuery = (dir: string, host: string) =>
  timeIt(async () => (await exec('nfdump', ['-R', dir, '-q', '-o', 'csv', `host ${host}`], { maxBuffer: 1 << 28 })).stdout.trim().split('\n').filter((l) => /^\d{4}-/.test(l)).length);

export const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
export const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '-');

export function table(rows: string[][]): void {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log('| ' + r.map((c, i) => c.padEnd(w[i]!)).join(' | ') + ' |');
}
