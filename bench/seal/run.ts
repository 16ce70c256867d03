// Seal time per million records, and what the Merkle root (archive/merkle.ts)
// costs of it (computed again alone on the file each run wrote): a write-ahead log of N benchmark flows (bench/traffic/flows.ts,
// with a syslog line in every 10 so that text columns count too) is sealed
// the way the worker seals it (writeSegment, in this thread), several times.
//   node bench/seal/run.ts [--records 1000000] [--runs 3] [--keep FILE.parquet]
import { parseArgs } from 'node:util';
import { copyFileSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duck, writeSegment } from '../../archive/archive.ts';
import { merkleRoot, segmentLeaves, segmentMerkleRoot } from '../../archive/merkle.ts';
import { LAYOUT } from '../../archive/layout.ts';
import { Wal } from '../../archive/wal.ts';
import { FlowDecoder } from '../../archive/netflow.ts';
import { parseLogLine } from '../../archive/parsers.ts';
import type { TrafficRecord } from '../../archive/record.ts';
import { flowSource, SCHOOLS } from '../traffic/flows.ts';

const { values } = parseArgs({ options: { records: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '3' }, keep: { type: 'string' } } });
const N = Number(values.records);
const runs = Number(values.runs);
const work = mkdtempSync(join(tmpdir(), 'kw-seal-bench-'));
try {
  const walDir = join(work, 'wal');
  const segDir = join(work, 'segments');
  mkdirSync(segDir, { recursive: true });
  const wal = await Wal.open(walDir, 200);
  const source = flowSource('seal');
  const decoder = new FlowDecoder();
  const start = Date.UTC(2026, 5, 3, 1);
  let n = 0;
  let school = 0;
  let batch: TrafficRecord[] = [];
  while (n < N) {
    const s = school++ % SCHOOLS;
    const recv = start + Math.floor((n * 3_600_000) / N);
    for (const r of decoder.decode(source.datagram(s, recv), `127.60.0.${1 + s}`, recv).flows) {
      if (n >= N) break;
      batch.push(n % 10 === 9 ? parseLogLine(`<134>Jun  3 08:${String(n % 60).padStart(2, '0')}:00 gw firewall,info forward: in:lan out:wan, proto TCP (SYN), 10.36.${s}.${n % 250}:${1024 + (n % 60000)}->1.1.1.1:443, len 60`, { exporter: `127.60.0.${1 + s}`, recvMs: recv, utcOffsetMinutes: 420 }) : r);
      n++;
    }
    if (batch.length >= 20_000) {
      await wal.append(batch);
      batch = [];
    }
  }
  if (batch.length) await wal.append(batch);
  const file = await wal.rotate('bench');
  await wal.close();
  const times: number[] = [];
  const merkle: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const w = await writeSegment(file, segDir, i + 1);
    times.push(performance.now() - t);
    // The root's part of it: the same computation again, alone, on the file just written.
    const db = await duck(1);
    const tm = performance.now();
    const again = await segmentMerkleRoot(db.con, join(segDir, `.tmp-${w!.name}`), LAYOUT);
    merkle.push(performance.now() - tm);
    if (again.root !== w!.merkleRoot) throw new Error('the root computed again differs');
    // Once: the root from the file's row hashes handed over one by one and hashed into a tree in JavaScript (merkle.ts), as an export does.
    if (i === 0) {
      const leaves = await segmentLeaves(db.con, join(segDir, `.tmp-${w!.name}`), LAYOUT, w!.rows);
      if (merkleRoot(leaves) !== w!.merkleRoot) throw new Error('the root from the row hashes in JavaScript differs');
    }
    db.close();
    // --keep FILE: the last segment written is kept there (to measure queries on it).
    if (values.keep && i === runs - 1) copyFileSync(join(segDir, `.tmp-${w!.name}`), values.keep);
    rmSync(join(segDir, `.tmp-${w!.name}`));
    console.log(`run ${i + 1}: ${w!.rows} records sealed in ${(times.at(-1)! / 1000).toFixed(2)} s, of which the Merkle root ${(merkle.at(-1)! / 1000).toFixed(2)} s (${w!.merkleRoot.slice(0, 16)}…)`);
  }
  const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)]! / 1000;
  const all = median(times);
  const root = median(merkle);
  console.log(`median per million records: seal ${((all * 1e6) / N).toFixed(2)} s, of which the Merkle root ${((root * 1e6) / N).toFixed(2)} s; without it ${(((all - root) * 1e6) / N).toFixed(2)} s (${(all / (all - root)).toFixed(2)}x)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
