// The point query at scale (on demand; bash bench/traffic/run.sh --query-flows N
// runs it after the ingest figures): N flows from flows.ts, the same ones
// in both, as
//   - a klaiwatch archive of 90 days: each day's flows, decoded by
//     klaiwatch's own NetFlow decoder, encoded as write-ahead log frames,
//     staged and written as one segment the way a seal does it (stage.ts,
//     archive.ts copySegment), each segment signed into the manifest,
//     receive times spread over the days;
//   - nfcapd 1.7 fed the same flows over UDP by flowgen.ts;
// then "every flow from or to one school host", cold (page cache dropped)
// and warm, through queryArchive beside `nfdump -R dir 'host X'`.
//
// Why not through the live collector: it stamps each flow with the time it
// arrives, and a run of minutes cannot spread receive times over 90 days
// (which is what makes the layout, and the size, realistic).
import { spawn, execFile } from 'node:child_process';
import { promisify, parseArgs } from 'node:util';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, renameSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { Archive, copySegment, duck, segmentName, sha256File } from '../../archive/archive.ts';
import { dirBytes, dropCaches, fmt, klaiwatchHostQuery, nfdumpHostQuery, ratio, table } from './measure.ts';
import { FlowDecoder } from '../../archive/netflow.ts';
import { liveSegments, readManifest } from '../../archive/query.ts';
import { RowEncoder, type TrafficRecord } from '../../archive/record.ts';
import { Stager } from '../../archive/stage.ts';
import { BLOOM_COLUMNS } from '../../archive/bloom.ts';
import { LAYOUT } from '../../archive/layout.ts';
import type { SegmentEntry } from '../../archive/manifest.ts';
import { PROJECT } from '../../sim/area.ts';
import { flowSource, PER, SCHOOLS } from './flows.ts';

const exec = promisify(execFile);
const { values } = parseArgs({
  options: {
    flows: { type: 'string', default: '100000000' },
    days: { type: 'string', default: '90' },
    rate: { type: 'string', default: '500000' },
    host: { type: 'string', default: '10.36.7.23' },
    work: { type: 'string' },
    keep: { type: 'boolean', default: false },
    /** Query the archive and nfcapd files a --keep run left in --work, without building them again. */
    reuse: { type: 'boolean', default: false },
  },
});
const datagrams = Math.floor(Number(values.flows) / PER);
const days = Number(values.days);
const rate = Number(values.rate);
const host = values.host!;
const work = values.work ?? mkdtempSync(join(tmpdir(), 'kw-bench-scale-'));
const say = (s: string) => console.log(s);
const DAY = 86_400_000;

// ------------------------------------------------------------- klaiwatch
const dir = join(work, 'klaiwatch');
mkdirSync(dir, { recursive: true });
// With --reuse the archive is only read (it was begun with a key not kept).
const archive = values.reuse ? null : await Archive.open({ dir, key: generateKeyPairSync('ed25519').privateKey, retentionDays: 90, fsyncIntervalMs: 200, sealInProcess: true });
const source = flowSource('query');
const decoder = new FlowDecoder();
const start = Date.UTC(2026, 7, 26, 17); // 90 days up to 24 November 2026, Bangkok midnights
const encoder = new RowEncoder();
const t0 = Date.now();
let school = 0;
let written = 0;

/** One day's flows as one segment, through the seal's own path: write-ahead log frames (RowEncoder) into a Stager, then copySegment. */
async function daySegment(archive: Archive, day: number, flows: number): Promise<void> {
  const db = await duck();
  try {
    const st = await Stager.create(db.con, 's');
    let batch: TrafficRecord[] = [];
    for (let i = 0; i < flows; i++) {
      const s = school++ % SCHOOLS;
      const recv = start + day * DAY + Math.floor((i * DAY) / flows);
      for (const r of decoder.decode(source.datagram(s, recv), `127.60.0.${1 + s}`, recv).flows) batch.push(r);
      if (batch.length >= 60_000) {
        await st.addFrame(encoder.encode(batch));
        batch = [];
      }
    }
    if (batch.length > 0) await st.addFrame(encoder.encode(batch));
    await st.close();
    const seq = archive.manifest.nextSegmentNumber();
    const name = segmentName(seq, st.firstRecv);
    const tmp = join(archive.segmentDir, `.tmp-${name}`);
    await copySegment(db.con, st.segmentSelect, tmp, BLOOM_COLUMNS.flatMap((c) => st.texts(c)));
    renameSync(tmp, join(archive.segmentDir, name));
    await archive.manifest.append<SegmentEntry>({
      type: 'segment',
      by: 'bench',
      file: name,
      sha256: await sha256File(join(archive.segmentDir, name)),
      bytes: statSync(join(archive.segmentDir, name)).size,
      rows: st.rows,
      first_recv: st.firstRecv,
      last_recv: st.lastRecv,
      clock_offset_ms: null,
      exporters: st.exporters(),
      wal: '',
      wal_inode: 0,
      layout: LAYOUT,
    });
    written += st.rows;
    if (day % 10 === 9) say(`  day ${day + 1}: ${fmt(written)} flows in ${seq} segments (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  } finally {
    db.close();
  }
}

say(`point query at scale: ${fmt(datagrams * PER)} flows over ${days} days, work in ${work}`);
for (let d = 0; archive && d < days; d++) await daySegment(archive, d, Math.floor(((d + 1) * datagrams) / days) - Math.floor((d * datagrams) / days));
await archive?.close();
const segments = liveSegments(await readManifest(dir));
written = segments.reduce((n, s) => n + s.rows, 0);
const kwBuild = (Date.now() - t0) / 1000;

// ---------------------------------------------------------------- nfcapd
const nq = join(work, 'nfcapd');
if (!values.reuse) {
  mkdirSync(nq);
  const port = 39000 + (process.pid % 500);
  const nfq = spawn('nfcapd', ['-w', nq, '-p', String(port), '-b', '127.0.0.1', '-y', '-B', String(8 << 20), '-t', '86400'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
  const t1 = Date.now();
  const sent = JSON.parse((await exec(process.execPath, [join(PROJECT, 'bench', 'traffic', 'flowgen.ts'), String(port), String(rate), String(Math.ceil((datagrams * PER) / rate)), 'query'], { maxBuffer: 1 << 20 })).stdout) as { sent: number };
  await new Promise((r) => setTimeout(r, 3000));
  nfq.kill('SIGTERM');
  await once(nfq, 'exit');
  say(`  nfcapd: ${fmt(sent.sent)} flows sent at ${fmt(rate)}/s (${((Date.now() - t1) / 1000).toFixed(0)} s)`);
}
const nfFlows = Number(/^Flows: (\d+)$/m.exec((await exec('nfdump', ['-R', nq, '-I'])).stdout)?.[1]);
say(`  nfcapd stored ${fmt(nfFlows)} flows`);

// ---------------------------------------------------------------- query
const kq = () => klaiwatchHostQuery(dir, host);
const nqq = () => nfdumpHostQuery(nq, host);
const dropped = await dropCaches();
const kc = await kq();
const kw = await kq();
const kw2 = await kq();
await dropCaches();
const nc = await nqq();
const nw = await nqq();
const nw2 = await nqq();
const segs = segments.length;
const kwBytes = dirBytes(dir);
const nfBytes = dirBytes(nq);
say(`\n## Point query at scale: every flow from or to ${host}\n`);
table([
  ['', `klaiwatch (${segs} segments, ${fmt(written)} flows, queryArchive)`, `nfdump -R (${fmt(nfFlows)} flows)`, 'ratio'],
  ['rows found', fmt(kc.n), fmt(nc.n), ''],
  [`cold${dropped ? ' (page cache dropped)' : ' (page cache could not be dropped)'}`, `${kc.ms.toFixed(0)} ms`, `${nc.ms.toFixed(0)} ms`, ratio(kc.ms, nc.ms)],
  ['warm (best of two)', `${Math.min(kw.ms, kw2.ms).toFixed(0)} ms`, `${Math.min(nw.ms, nw2.ms).toFixed(0)} ms`, ratio(Math.min(kw.ms, kw2.ms), Math.min(nw.ms, nw2.ms))],
  ['bytes on disk', fmt(kwBytes), fmt(nfBytes), ratio(kwBytes, nfBytes)],
  ['bytes per flow', (kwBytes / written).toFixed(1), (nfBytes / nfFlows).toFixed(1), ''],
]);
if (!values.reuse) say(`(klaiwatch archive built in ${kwBuild.toFixed(0)} s: decoding, log frames, staging, segment writer, manifest)`);
if (!values.keep) rmSync(work, { recursive: true, force: true });
else say(`kept ${work}`);
