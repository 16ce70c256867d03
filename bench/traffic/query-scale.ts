// The point query at scale (on demand; bash bench/traffic/run.sh --query-flows N
// runs it after the ingest figures): N flows from flows.ts, the same ones
// in both, as
//   - a klaiwatch archive of 90 days: each day's flows, decoded by
//     klaiwatch's own NetFlow decoder, written by the segment writer
//     (archive.ts copySegment: what a seal and a day's merge write), each
//     segment signed into the manifest, receive times spread over the days;
//   - nfcapd 1.7 fed the same flows over UDP by flowgen.ts;
// then "every flow from or to one school host", cold (page cache dropped)
// and warm, through queryArchive beside `nfdump -R dir 'host X'`.
//
// Why not through the live collector: a seal works through about 60,000
// records a second, so 100 million flows sent at the ingest figures' rates
// would wait an hour for their seals; the layout queried is the same.
import { spawn, execFile } from 'node:child_process';
import { promisify, parseArgs } from 'node:util';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, renameSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { Archive, copySegment, duck, segmentName, sha256File } from '../../collector/traffic/archive.ts';
import { dirBytes, dropCaches, fmt, klaiwatchHostQuery, nfdumpHostQuery, ratio, table } from './measure.ts';
import { FlowDecoder } from '../../collector/traffic/netflow.ts';
import { COLUMNS, type TrafficRecord } from '../../collector/traffic/record.ts';
import type { SegmentEntry } from '../../collector/traffic/manifest.ts';
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
const archive = await Archive.open({ dir, key: generateKeyPairSync('ed25519').privateKey, retentionDays: 90, fsyncIntervalMs: 200, sealInProcess: true });
const source = flowSource('query');
const decoder = new FlowDecoder();
const start = Date.UTC(2026, 7, 26, 17); // 90 days up to 24 November 2026, Bangkok midnights
const csvCell = (v: unknown) => (v === null || v === undefined ? '' : String(v));
const t0 = Date.now();
let school = 0;
let written = 0;
let pending: Promise<void> = Promise.resolve();

async function segmentOf(csv: string, day: number): Promise<void> {
  const db = await duck();
  try {
    const cols = COLUMNS.map(([c, t]) => `'${c}': '${t}'`).join(', ');
    await db.con.run(`CREATE TABLE s AS SELECT * FROM read_csv('${csv}', header = false, nullstr = '', columns = {${cols}})`);
    const stats = (await db.con.runAndReadAll(`SELECT count(*), min(recv_ms), max(recv_ms) FROM s`)).getRows()[0]!.map(Number);
    const exporters = (await db.con.runAndReadAll(`SELECT DISTINCT exporter FROM s ORDER BY 1`)).getColumns()[0]!.map(String);
    const seq = archive.manifest.entries.filter((e) => e.type === 'segment').length + 1;
    const name = segmentName(seq, stats[1]!);
    const tmp = join(archive.segmentDir, `.tmp-${name}`);
    await copySegment(db.con, `SELECT ${COLUMNS.map(([c]) => `"${c}"`).join(', ')} FROM s`, tmp);
    renameSync(tmp, join(archive.segmentDir, name));
    await archive.manifest.append<SegmentEntry>({
      type: 'segment',
      by: 'bench',
      file: name,
      sha256: await sha256File(join(archive.segmentDir, name)),
      bytes: statSync(join(archive.segmentDir, name)).size,
      rows: stats[0]!,
      first_recv: stats[1]!,
      last_recv: stats[2]!,
      clock_offset_ms: null,
      exporters,
      wal: '',
      wal_inode: 0,
    });
    written += stats[0]!;
    if (day % 10 === 9) say(`  day ${day + 1}: ${fmt(written)} flows in ${seq} segments (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  } finally {
    db.close();
    rmSync(csv, { force: true });
  }
}

say(`point query at scale: ${fmt(datagrams * PER)} flows over ${days} days, work in ${work}`);
for (let d = 0; d < days; d++) {
  const n = Math.floor(((d + 1) * datagrams) / days) - Math.floor((d * datagrams) / days);
  const csv = join(work, `day-${d}.csv`);
  const out = createWriteStream(csv);
  let lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = school++ % SCHOOLS;
    const recv = start + d * DAY + Math.floor((i * DAY) / n);
    const flows: TrafficRecord[] = decoder.decode(source.datagram(s, recv), `127.60.0.${1 + s}`, recv).flows;
    for (const r of flows) lines.push(COLUMNS.map(([c]) => csvCell(r[c])).join(','));
    if (lines.length >= 30_000) {
      if (!out.write(lines.join('\n') + '\n')) await once(out, 'drain');
      lines = [];
    }
  }
  out.end(lines.length ? lines.join('\n') + '\n' : '');
  await once(out, 'close');
  await pending;
  pending = segmentOf(csv, d);
}
await pending;
await archive.close();
const kwBuild = (Date.now() - t0) / 1000;

// ---------------------------------------------------------------- nfcapd
const nq = join(work, 'nfcapd');
mkdirSync(nq);
const port = 39000 + (process.pid % 500);
const nfq = spawn('nfcapd', ['-w', nq, '-p', String(port), '-b', '127.0.0.1', '-y', '-B', String(8 << 20), '-t', '86400'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1000));
const t1 = Date.now();
const sent = JSON.parse((await exec(process.execPath, [join(PROJECT, 'bench', 'traffic', 'flowgen.ts'), String(port), String(rate), String(Math.ceil((datagrams * PER) / rate)), 'query'], { maxBuffer: 1 << 20 })).stdout) as { sent: number };
await new Promise((r) => setTimeout(r, 3000));
nfq.kill('SIGTERM');
await once(nfq, 'exit');
const nfFlows = Number(/^Flows: (\d+)$/m.exec((await exec('nfdump', ['-R', nq, '-I'])).stdout)?.[1]);
say(`  nfcapd: ${fmt(sent.sent)} flows sent at ${fmt(rate)}/s, ${fmt(nfFlows)} stored (${((Date.now() - t1) / 1000).toFixed(0)} s)`);

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
const segs = archive.segments().length;
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
say(`(klaiwatch archive built in ${kwBuild.toFixed(0)} s: decoding, CSV, segment writer, manifest)`);
if (!values.keep) rmSync(work, { recursive: true, force: true });
else say(`kept ${work}`);
