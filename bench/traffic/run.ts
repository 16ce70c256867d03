// The traffic-archive benchmark (on demand: bash bench/traffic/run.sh).
// In one run, on this machine, beside the reference tools targets.md names:
//   1. syslog over TCP: loggen (2 connections, 200-byte messages, as fast
//      as it can) into `klaiwatch run`, then into syslog-ng 3.38 writing a
//      file; messages per second until every one is stored, and none lost;
//   2. NetFlow v5 at set rates from bench/traffic/flowgen.ts (200 schools ×
//      60 hosts, 50,000 destinations, OS randomness) into klaiwatch, then
//      into nfcapd 1.7; flows received and lost;
//   3. bytes per flow on disk: klaiwatch's sealed zstd Parquet against
//      nfcapd's LZ4 file of the same flows;
//   4. a point query (an address on either side) over what was stored,
//      cold (page cache dropped, where allowed) and warm, against
//      `nfdump -R dir 'host X'`.
// Prints each figure and the ratio to the reference.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, readFileSync, statSync, rmSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { Archive } from '../../archive/archive.ts';
import { loadPrivateKey } from '../../archive/manifest.ts';
import { dirBytes, dropCaches, fmt, klaiwatchHostQuery, nfdumpHostQuery, ratio, table } from './measure.ts';
import { PROJECT } from '../../sim/area.ts';
import { udpDrops, type TrafficStats } from '../../archive/service.ts';
import { ARCHIVE_V8_FLAGS } from '../../collector/runtime.ts';

const exec = promisify(execFile);
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rates: { type: 'string', default: '100000,200000,300000' },
    keep: { type: 'boolean', default: false },
    /** Also: a point query over this many flows in a 90-day archive, beside nfdump over the same flows (query-scale.ts). */
    'query-flows': { type: 'string', default: '0' },
    'query-rate': { type: 'string', default: '500000' },
  },
});
const seconds = Number(values.seconds);
const rates = values.rates!.split(',').map(Number);
const work = mkdtempSync(join(tmpdir(), 'kw-bench-traffic-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => console.log(s);
const tools = join(PROJECT, '.tools', 'syslog-ng', 'usr');
const sngEnv = { ...process.env, SYSLOGNG_PREFIX: tools, LD_LIBRARY_PATH: join(tools, 'lib', 'syslog-ng') };
let port = 31000 + (process.pid % 1000) * 8;
const nextPort = () => port++;

/**
 * Watches the threads of `pid` every 100 ms until stopped: the most seen at
 * once at a nice value above 0 (the seal's worker and DuckDB's threads
 * should be at 10) and their CPU seconds, against the rest of the process.
 */
function niceWatch(pid: number): () => { niced: number; nicedCpu: number; nice: number[] } {
  const seen = new Map<string, { nice: number; cpu: number }>();
  let most = 0;
  const look = () => {
    let now = 0;
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      try {
        const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        const nice = Number(f[16]);
        if (nice > 0) {
          now++;
          seen.set(tid, { nice, cpu: (Number(f[11]) + Number(f[12])) / 100 });
        }
      } catch {
        // The thread ended.
      }
    }
    most = Math.max(most, now);
  };
  const timer = setInterval(look, 100);
  return () => {
    clearInterval(timer);
    return { niced: most, nicedCpu: [...seen.values()].reduce((n, t) => n + t.cpu, 0), nice: [...new Set([...seen.values()].map((t) => t.nice))] };
  };
}

/** Sealed segment files in an archive folder. */
function segmentFiles(dir: string): number {
  try {
    return readdirSync(join(dir, 'segments'), { recursive: true }).filter((f) => String(f).endsWith('.parquet')).length;
  } catch {
    return 0;
  }
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface Service {
  proc: ChildProcess;
  http: string;
  dir: string;
  key: string;
  health(): Promise<TrafficStats>;
  stop(): Promise<void>;
}

async function startKlaiwatch(name: string, o: { syslog?: number; flow?: number; sealRecords?: number }): Promise<Service> {
  const dir = join(work, name);
  mkdirSync(dir);
  const key = join(dir, 'signing.pem');
  writeFileSync(key, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  // An inventory must hold a device; this one is never polled (the archive part runs alone).
  writeFileSync(join(dir, 'schools.yaml'), 'schools:\n  - code: "1"\n    name_th: x\n    devices:\n      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }\n');
  const http = `127.0.0.1:${nextPort()}`;
  writeFileSync(
    join(dir, 'area.yaml'),
    [
      'area: { code: bench, name_th: เขตทดสอบ }',
      'inventory: schools.yaml',
      'influx: { url: "http://127.0.0.1:9", timeout: 1s }',
      `http: { listen: "${http}" }`,
      'icmp: { enabled: false }',
      'log: { level: warn }',
      'traffic:',
      '  dir: archive',
      `  http: "${http}"`,
      '  signing_key: signing.pem',
      '  fsync_interval: 200ms',
      `  seal_records: ${o.sealRecords ?? 2000000}`,
      o.syslog ? `  syslog: { tcp: "127.0.0.1:${o.syslog}" }` : '',
      o.flow ? `  flow: { udp: "127.0.0.1:${o.flow}" }` : '',
      '',
    ].join('\n'),
  );
  // The archive part alone (what `klaiwatch run` forks, with its flags): its /healthz on traffic.http is fresh at every request.
  const proc = spawn(process.execPath, [...ARCHIVE_V8_FLAGS, join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', 'serve', '--config', join(dir, 'area.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const health = async () => ((await (await fetch(`http://${http}/healthz`)).json()) as { traffic: TrafficStats }).traffic;
  for (let i = 0; ; i++) {
    try {
      await health();
      break;
    } catch {
      if (i > 300) throw new Error('klaiwatch did not start');
      await sleep(100);
    }
  }
  return {
    proc,
    http,
    dir: join(dir, 'archive'),
    key,
    health,
    stop: async () => {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function loggenRun(target: number): Promise<number> {
  const { stderr, stdout } = await exec(join(tools, 'bin', 'loggen'), ['-i', '-S', '-s', '200', '--active-connections=2', '-I', String(seconds), '-r', '10000000', '127.0.0.1', String(target)], { env: sngEnv, maxBuffer: 1 << 26 });
  // Its last line: "average rate = ..., count=N, ...".
  const m = [...(stderr + stdout).matchAll(/count=(\d+)/g)].at(-1);
  if (!m) throw new Error(`loggen said: ${stderr}`);
  return Number(m[1]);
}

async function waitFor(test: () => Promise<boolean>, ms: number): Promise<number> {
  const end = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > end) return NaN;
    await sleep(20);
  }
  return Date.now();
}

say(`klaiwatch traffic benchmark: ${new Date().toISOString()}, node ${process.version}, ${seconds} s per run, work in ${work}`);

// ------------------------------------------------------------------ syslog
const sysPort = nextPort();
const k1 = await startKlaiwatch('syslog', { syslog: sysPort });
const cpu1 = cpuSeconds(k1.proc.pid!);
const t1 = Date.now();
const sentK = await loggenRun(sysPort);
const doneK = await waitFor(async () => (await k1.health()).stored >= sentK, 120_000);
const hk = await k1.health();
const cpuK = cpuSeconds(k1.proc.pid!) - cpu1;
await k1.stop();
const rateK = sentK / ((doneK - t1) / 1000);

const sngDir = join(work, 'syslog-ng');
mkdirSync(sngDir);
const sngPort = nextPort();
writeFileSync(
  join(sngDir, 's.conf'),
  `@version: 3.38\noptions { keep-hostname(yes); };\nsource s { network(transport("tcp") port(${sngPort}) ip("127.0.0.1") max-connections(10) log-iw-size(20000)); };\ndestination d { file("${sngDir}/out.log"); };\nlog { source(s); destination(d); };\n`,
);
const sng = spawn(join(tools, 'sbin', 'syslog-ng'), ['-F', '-f', join(sngDir, 's.conf'), `--module-path=${join(tools, 'lib', 'syslog-ng', '3.38')}`, '-R', join(sngDir, 'persist'), '-p', join(sngDir, 'pid'), '-c', join(sngDir, 'ctl'), '--no-caps'], { env: sngEnv, stdio: 'ignore' });
await sleep(1500);
const cpu2 = cpuSeconds(sng.pid!);
const t2 = Date.now();
const sentS = await loggenRun(sngPort);
const lines = async () => {
  try {
    return (await exec('wc', ['-l', join(sngDir, 'out.log')])).stdout.trim().split(' ')[0];
  } catch {
    return '0';
  }
};
const doneS = await waitFor(async () => Number(await lines()) >= sentS, 120_000);
const cpuS = cpuSeconds(sng.pid!) - cpu2;
const gotS = Number(await lines());
sng.kill('SIGTERM');
const rateS = sentS / ((doneS - t2) / 1000);

say('\n## syslog over TCP (loggen -S -s 200 --active-connections=2, as fast as it sends)\n');
table([
  ['', 'klaiwatch (parsed, WAL, fsync)', 'syslog-ng 3.38 (file)', 'ratio'],
  ['messages sent', fmt(sentK), fmt(sentS), ''],
  ['stored', fmt(hk.stored), fmt(gotS), ''],
  ['lost', fmt(sentK - hk.stored), fmt(sentS - gotS), ''],
  ['messages/s until all stored', fmt(rateK), fmt(rateS), ratio(rateK, rateS)],
  ['CPU-s per 100k messages', (cpuK / (sentK / 1e5)).toFixed(2), (cpuS / (sentS / 1e5)).toFixed(2), ratio(cpuK / sentK, cpuS / sentS)],
]);

// ------------------------------------------------------------------- flows
const flowPort = nextPort();
const k2 = await startKlaiwatch('flows', { flow: flowPort });
const nfDir = join(work, 'nfcapd');
mkdirSync(nfDir);
const nfPort = nextPort();
const nfcapd = spawn('nfcapd', ['-w', nfDir, '-p', String(nfPort), '-b', '127.0.0.1', '-y', '-B', String(8 << 20), '-t', '86400'], { stdio: 'ignore' });
await sleep(1000);
const flowRows: string[][] = [['rate (flows/s)', 'sent', 'klaiwatch received', 'lost', 'kernel drops', 'CPU-s per 1M flows', 'segments sealed during it', 'threads at nice > 0 (most at once; their CPU-s)', 'nfcapd received (sent separately, same rate)', 'lost']];
let nfTotal = 0;
for (const rate of rates) {
  const before = await k2.health();
  // The service reads kernel drops and segments every 30 s: read here, fresh.
  const drops0 = await udpDrops(flowPort);
  const segs0 = segmentFiles(k2.dir);
  const c0 = cpuSeconds(k2.proc.pid!);
  const watch = niceWatch(k2.proc.pid!);
  const g = JSON.parse((await exec(process.execPath, [join(PROJECT, 'bench', 'traffic', 'flowgen.ts'), String(flowPort), String(rate), String(seconds)])).stdout) as { sent: number };
  await waitFor(async () => {
    const h = await k2.health();
    return h.stored >= h.flows_received && h.flows_received >= before.flows_received + g.sent;
  }, 30_000);
  await sleep(500);
  const after = await k2.health();
  const cpu = cpuSeconds(k2.proc.pid!) - c0;
  const w = watch();
  const got = after.flows_received - before.flows_received;
  const g2 = JSON.parse((await exec(process.execPath, [join(PROJECT, 'bench', 'traffic', 'flowgen.ts'), String(nfPort), String(rate), String(seconds)])).stdout) as { sent: number };
  nfTotal += g2.sent;
  flowRows.push([fmt(rate), fmt(g.sent), fmt(got), fmt(g.sent - got), fmt((await udpDrops(flowPort)) - drops0), (cpu / (got / 1e6)).toFixed(2), fmt(segmentFiles(k2.dir) - segs0), w.niced ? `${w.niced} at nice ${w.nice.join('/')} (${w.nicedCpu.toFixed(2)} s)` : '0', '(below)', '']);
}
await sleep(1500);
nfcapd.kill('SIGTERM');
await sleep(1500);
const nfStat = (await exec('nfdump', ['-R', nfDir, '-I'])).stdout;
const nfFlows = Number(/^Flows: (\d+)$/m.exec(nfStat)?.[1]);
const hf = await k2.health();
const hfDrops = await udpDrops(flowPort);
await k2.stop();
say('\n## NetFlow v5 ingest (bench/traffic/flowgen.ts: 200 schools × 60 hosts → 50,000 destinations)\n');
table(flowRows);
say(`\nnfcapd 1.7 (LZ4), the same rates in turn: sent ${fmt(nfTotal)}, stored ${fmt(nfFlows)}, lost ${fmt(nfTotal - nfFlows)}`);
say(`klaiwatch in all: received ${fmt(hf.flows_received)}, stored ${fmt(hf.stored)}, kernel drops ${fmt(hfDrops)}, write failures ${fmt(hf.write_failed)}`);

// --------------------------------------------------------- bytes per flow
const ts = Date.now();
const archive = await Archive.open({ dir: k2.dir, key: loadPrivateKey(readFileSync(k2.key, 'utf8')), retentionDays: 90, fsyncIntervalMs: 200 });
await archive.seal();
const sealMs = Date.now() - ts;
const segs = archive.segments();
await archive.close();
const rows = segs.reduce((n, s) => n + s.rows, 0);
const kwBytes = segs.reduce((n, s) => n + s.bytes, 0);
const nfBytes = dirBytes(nfDir);
say('\n## Bytes per flow on disk\n');
table([
  ['', 'klaiwatch (zstd Parquet + manifest)', 'nfcapd LZ4', 'ratio'],
  ['flows', fmt(rows), fmt(nfFlows), ''],
  ['bytes', fmt(kwBytes + statSync(join(k2.dir, 'manifest.jsonl')).size), fmt(nfBytes), ''],
  ['bytes per flow', ((kwBytes + statSync(join(k2.dir, 'manifest.jsonl')).size) / rows).toFixed(1), (nfBytes / nfFlows).toFixed(1), ratio((kwBytes + statSync(join(k2.dir, 'manifest.jsonl')).size) / rows, nfBytes / nfFlows)],
]);
say(`(${segs.length} segments; the last seal of ${fmt(segs.at(-1)?.rows ?? 0)} records took ${fmt(sealMs)} ms)`);

// ------------------------------------------------------------ point query
const host = '10.36.7.23';
const kwQuery = () => klaiwatchHostQuery(k2.dir, host);
const nfQuery = () => nfdumpHostQuery(nfDir, host);
const dropped = await dropCaches();
const kwCold = await kwQuery();
const kwWarm = await kwQuery();
await dropCaches();
const nfCold = await nfQuery();
const nfWarm = await nfQuery();
say(`\n## Point query: every flow from or to ${host} (${fmt(rows)} flows in klaiwatch, ${fmt(nfFlows)} in nfcapd)\n`);
table([
  ['', 'klaiwatch (DuckDB over the segments)', 'nfdump -R', 'ratio'],
  ['rows found', fmt(kwCold.n), fmt(nfCold.n), ''],
  [`cold${dropped ? ' (page cache dropped)' : ' (first run; page cache could not be dropped)'}`, `${kwCold.ms.toFixed(0)} ms`, `${nfCold.ms.toFixed(0)} ms`, ratio(kwCold.ms, nfCold.ms)],
  ['warm', `${kwWarm.ms.toFixed(0)} ms`, `${nfWarm.ms.toFixed(0)} ms`, ratio(kwWarm.ms, nfWarm.ms)],
]);

// ------------------------------------------------- point query at scale
// In its own script (query-scale.ts): the same flows into a 90-day archive
// and into nfcapd, then the query beside nfdump.
const qFlows = Number(values['query-flows']);
if (qFlows > 0) {
  const child = spawn(process.execPath, [join(PROJECT, 'bench', 'traffic', 'query-scale.ts'), '--flows', String(qFlows), '--rate', values['query-rate']!, '--work', join(work, 'scale')], { stdio: 'inherit' });
  await new Promise((r) => child.once('exit', r));
}

if (!values.keep) rmSync(work, { recursive: true, force: true });
else say(`\nkept ${work}`);
