// What a query over the write-ahead log costs in memory (issue 17's hostile
// review: a 34 MB log of 150,000 syslog lines took an API process from
// 174 MB to 613 MB for one NDJSON search, 928 MB for four point queries at
// once). Each scenario runs in a fresh process and reports its peak RSS
// (getrusage maxrss) against the process's RSS before the query.
//
//   node bench/traffic/wal-query-memory.ts [--lines 150000] [--module archive/query.ts]
//
// --module: another build of query.ts to measure (the one before a change,
// copied beside it), so before and after run on the same log.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Archive } from '../../archive/archive.ts';
import { parseLogLine } from '../../archive/parsers.ts';
import type { TrafficRecord } from '../../archive/record.ts';

const exec = promisify(execFile);
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
export const TARGET = '10.36.1.50';

/** A log of `lines` syslog lines (firewall lines of 200 hosts, about 230 bytes each), none sealed. */
export async function fillWal(dir: string, lines: number): Promise<void> {
  const key = generateKeyPairSync('ed25519').privateKey;
  const a = await Archive.open({ dir, key, retentionDays: 3650, fsyncIntervalMs: 5 });
  const t0 = Date.parse('2026-11-29T08:00:00Z');
  for (let done = 0; done < lines; ) {
    const batch: TrafficRecord[] = [];
    for (let i = 0; i < 5000 && done < lines; i++, done++) {
      const host = `10.36.${1 + ((done >> 8) % 3)}.${done % 200}`;
      const text = `<134>Nov 29 15:00:00 gw-school-${done % 40} firewall,info forward: in:bridge-lan out:pppoe-out1, src-mac aa:bb:cc:${(done % 256).toString(16).padStart(2, '0')}:00:01, proto TCP (ACK,PSH), ${host}:${20_000 + (done % 40_000)}->142.250.${done & 255}.${(done >> 8) & 255}:443, NAT (${host}:${20_000 + (done % 40_000)}->125.25.69.110:${30_000 + (done % 30_000)})->142.250.1.1:443, len 1400`;
      batch.push(parseLogLine(text, { exporter: `127.0.0.${5 + (done % 20)}`, recvMs: t0 + done, utcOffsetMinutes: 420 }));
    }
    await a.append(batch);
  }
  await a.close();
}

const rss = () => process.memoryUsage().rss;

/** One scenario in this process: prints {before, peak} in bytes. */
async function child(module: string, dir: string, scenario: string): Promise<void> {
  const m = (await import(pathToFileURL(resolve(module)).href)) as typeof import('../../archive/query.ts');
  // Warm, on an empty archive: DuckDB loaded and one instance made, so "before" is an API process's idle state.
  await m.queryArchive(`${dir}-empty`, { ip: '192.0.2.1', from: 0, to: 1 });
  global.gc?.();
  const before = rss();
  if (scenario === 'ndjson') {
    let n = 0;
    await m.streamArchive(dir, { ip: TARGET, limit: 1000 }, (rows) => void (n += rows.length));
  } else if (scenario === 'point4') {
    await Promise.all([1, 2, 3, 4].map((k) => m.queryArchive(dir, { ip: `10.36.1.${k}`, port: 443 })));
  } else if (scenario === 'range') {
    await m.queryArchive(dir, { from: Date.parse('2026-11-29T08:00:00Z'), limit: 1000 });
  }
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ before, peak }));
}

async function main(): Promise<void> {
  if (process.argv[2] === 'child') return child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
  const lines = Number(arg('--lines', '150000'));
  const module = arg('--module', 'archive/query.ts');
  const base = mkdtempSync(join(tmpdir(), 'kw-walmem-'));
  try {
    const dir = join(base, 'archive');
    await fillWal(dir, lines);
    await fillWal(`${dir}-empty`, 0);
    const walBytes = readdirSync(join(dir, 'wal')).reduce((n, f) => n + statSync(join(dir, 'wal', f)).size, 0);
    console.log(`${lines} lines, write-ahead log ${(walBytes / 1e6).toFixed(1)} MB; module ${module}`);
    for (const s of ['ndjson', 'point4', 'range']) {
      const { stdout } = await exec(process.execPath, ['--expose-gc', import.meta.filename, 'child', module, dir, s], { maxBuffer: 1 << 20 });
      const r = JSON.parse(stdout) as { before: number; peak: number };
      console.log(`${s.padEnd(7)} RSS before ${(r.before / 1e6).toFixed(0)} MB, peak ${(r.peak / 1e6).toFixed(0)} MB (+${((r.peak - r.before) / 1e6).toFixed(0)} MB)`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.filename === resolve(process.argv[1]!)) await main();
