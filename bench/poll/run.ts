// bench/poll: one polling round of N simulated routers (system group +
// ifXTable of a 12-interface MikroTik recording, ICMP 3 probes), written to
// a real influxd, against prometheus-snmp-exporter 0.21 scraping the same
// agents for the same OIDs in the same run.
//
//   bash bench/poll/run.sh [--devices 1000] [--agents 4] [--rounds 3]
//
// Figures: wall seconds per round, CPU seconds per 1,000 devices (collector
// in-process, fping as its child, the agents apart), peak RSS, points/s, and
// the ratio of klaiwatch's SNMP CPU to snmp_exporter's.
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import pino from 'pino';
import { recordings } from '../../sim/area.ts';
import { startSnmpsim, writeRecording, type Snmpsim } from '../../sim/snmpsim.ts';
import { startInfluxd, waitFor } from '../../sim/influxd.ts';
import { loadConfig } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import { findExecutable } from '../../collector/icmp/probe.ts';
import { freePort, tempDir } from '../../test/helpers/peers.ts';
import { execWithServiceFlags } from '../../collector/runtime.ts';

// Measure the collector as `klaiwatch run` runs it: with the service's V8 heap settings.
execWithServiceFlags();
const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    agents: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '128' },
    'no-reference': { type: 'boolean', default: false },
  },
});
const N = Number(values.devices);
const AGENTS = Number(values.agents);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const TICK = 100; // /proc clock ticks per second (sysconf CLK_TCK on Linux x86_64)

/** utime+stime of a process, and of its waited-for children, in seconds. */
function procCpu(pid: number | 'self'): { own: number; children: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  // Fields from 3 (state): utime is 14, stime 15, cutime 16, cstime 17 → indices 11..14 here.
  return { own: (Number(rest[11]) + Number(rest[12])) / TICK, children: (Number(rest[13]) + Number(rest[14])) / TICK };
}
const mem = () => {

  const m = process.memoryUsage();
  return `rss ${(m.rss / 2 ** 20).toFixed(0)} MB (heap ${(m.heapUsed / 2 ** 20).toFixed(0)}/${(m.heapTotal / 2 ** 20).toFixed(0)}, external ${(m.external / 2 ** 20).toFixed(0)})`;
};
const fmt = (n: number, d = 2) => n.toFixed(d);
const agentsCpu = (agents: Snmpsim[]) => agents.reduce((s, a) => s + procCpu(a.pid()).own, 0);

const address = (i: number) => `127.${40 + Math.floor(i / 250)}.0.${(i % 250) + 1}`;

const dir = tempDir('bench-poll');
const out: string[] = [];
const say = (s: string) => {
  out.push(s);
  process.stdout.write(s + '\n');
};

let influxd: Awaited<ReturnType<typeof startInfluxd>> | undefined;
let exporter: ChildProcess | undefined;
const agents: Snmpsim[] = [];
// Ctrl-C or a time limit must not leave agents and influxd running behind us.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    exporter?.kill('SIGTERM');
    for (const a of agents) a.process.kill('SIGKILL');
    influxd?.process.kill('SIGKILL');
    dir.remove();
    process.exit(130);
  });
}
try {
  chmodSync(dir.path, 0o755); // snmpsimd runs as nobody when started as root
  const data = join(dir.path, 'recordings');
  writeRecording(data, 'router', recordings().router!);
  const addresses = Array.from({ length: N }, (_, i) => address(i));
  say(`bench/poll: ${N} routers (routeros recording, 12 interfaces) on ${AGENTS} snmpsimd processes, ${ROUNDS} rounds, concurrency ${CONCURRENCY}; node ${process.version}`);
  const per = Math.ceil(N / AGENTS);
  for (let a = 0; a < AGENTS; a++) {
    const part = addresses.slice(a * per, (a + 1) * per);
    if (part.length === 0) continue;
    const d = join(dir.path, `agent${a}`);
    mkdirSync(d);
    agents.push(await startSnmpsim({ dir: d, dataDir: data, endpoints: part.map((x) => `${x}:1161`), probeCommunity: 'router' }));
  }
  const influxPort = await freePort();
  influxd = await startInfluxd(join(dir.path, 'influx'), influxPort);

  // The inventory: 5 routers per "school", all with the bench profile.
  const schools = [];
  for (let s = 0; s * 5 < N; s++) {
    schools.push({
      code: `B${String(s).padStart(4, '0')}`,
      name_th: `โรงเรียนทดสอบ ${s}`,
      devices: addresses.slice(s * 5, s * 5 + 5).map((a, k) => ({ id: `b${s}-${k}`, kind: 'router', address: a, port: 1161, profile: 'bench-router', snmp: 'router' })),
    });
  }
  writeFileSync(join(dir.path, 'schools.yaml'), stringify({ schools }));
  writeFileSync(
    join(dir.path, 'bench.yaml'),
    stringify({
      area: { code: 'bench', name_th: 'ทดสอบ' },
      inventory: 'schools.yaml',
      profile_dirs: [join(here, 'profiles')],
      influx: { url: `http://127.0.0.1:${influxPort}`, database: 'bench', batch_size: 5000 },
      spool: { dir: join(dir.path, 'spool') },
      alerts: { state_db: join(dir.path, 'state.sqlite') },
      polling: { interval: '60s', timeout: '5s', retries: 1, concurrency: CONCURRENCY },
      snmp: { credentials: { router: { version: '2c', community: 'router' } } },
      icmp: { count: 3, period: '200ms', timeout: '500ms' },
      log: { level: 'warn' },
    }),
  );
  const config = loadConfig(join(dir.path, 'bench.yaml'));
  const collector = new Collector(config, pino({ level: 'warn' }));
  await collector.prepare();

  const rows: string[] = [];
  let kwSnmpCpuPerK = 0;
  // Round 0 fills the counters' first samples; it is measured but not counted.
  for (let r = 0; r <= ROUNDS; r++) {
    for (const mode of ['snmp', 'full'] as const) {
      const c0 = process.cpuUsage();
      const ch0 = procCpu('self').children;
      const a0 = agentsCpu(agents);
      const w0 = collector.writer.stats.written;
      const t0 = performance.now();
      const report = await collector.runRound(config.devices, 60_000, { jitter: false, icmp: mode === 'full' });
      await collector.writer.flush();
      const wall = (performance.now() - t0) / 1000;
      const c1 = process.cpuUsage(c0);
      const own = (c1.user + c1.system) / 1e6;
      const fping = procCpu('self').children - ch0;
      const agentCpu = agentsCpu(agents) - a0;
      const points = collector.writer.stats.written - w0;
      const line = `${r === 0 ? 'warm-up' : `round ${r}`} ${mode === 'snmp' ? 'SNMP only ' : 'SNMP+ICMP '} wall ${fmt(wall)} s | klaiwatch CPU ${fmt((own * 1000) / N, 3)} s/1k dev (+fping ${fmt((fping * 1000) / N, 3)}) | agents CPU ${fmt(agentCpu)} s | ${report.polled}/${N} answered, ${report.failed} failed | ${points} points, ${fmt(points / wall, 0)} points/s | RSS peak ${fmt(process.resourceUsage().maxRSS / 1024, 0)} MB, now ${mem()}`;
      say(line);
      if (r > 0 && mode === 'snmp') {
        rows.push(line);
        kwSnmpCpuPerK += (own * 1000) / N / ROUNDS;
      }
    }
  }

  await collector.stop();
  // Before the reference runs: its scraping (in this process) would count against us.
  const rss = `Peak RSS of the collector: ${fmt(process.resourceUsage().maxRSS / 1024, 0)} MB (target < 200 MB)`;
  if (!values['no-reference']) {
    const exCpuPerK = await runReference(addresses);
    say('');
    say(`SNMP CPU per 1,000 devices: klaiwatch ${fmt(kwSnmpCpuPerK, 3)} s, prometheus-snmp-exporter ${fmt(exCpuPerK, 3)} s: ratio ${fmt(kwSnmpCpuPerK / exCpuPerK, 2)} (target ≤ 0.5)`);
  }
  say(rss);
} finally {
  exporter?.kill('SIGTERM');
  for (const a of agents) await a.stop();
  await influxd?.stop();
  dir.remove();
}

/** The reference: prometheus-snmp-exporter scraping the same agents for the same OIDs. Returns its CPU s per 1,000 devices. */
async function runReference(addresses: string[]): Promise<number> {
  const bin = (await findExecutable('prometheus-snmp-exporter')) ?? (await findExecutable('snmp_exporter'));
  if (!bin) throw new Error('prometheus-snmp-exporter not found: bash bench/poll/run.sh installs the Debian package prometheus-snmp-exporter');
  const exporterPort = await freePort();
  exporter = spawn(bin, [`--config.file=${join(here, 'snmp_exporter.yml')}`, `--web.listen-address=127.0.0.1:${exporterPort}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor('snmp_exporter', async () => (await fetch(`http://127.0.0.1:${exporterPort}/`)).ok, 15_000);
  let exCpuPerK = 0;
  for (let r = 0; r <= ROUNDS; r++) {
    const e0 = procCpu(exporter.pid!).own;
    const a0 = agentsCpu(agents);
    const t0 = performance.now();
    let next = 0;
    let ok = 0;
    let samples = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < N) {
          const target = addresses[next++]!;
          const body = await (await fetch(`http://127.0.0.1:${exporterPort}/snmp?module=bench&target=${target}:1161`)).text();
          if (body.includes('ifHCInOctets{')) ok++;
          samples += body.split('\n').filter((l) => l && !l.startsWith('#')).length;
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const ex = procCpu(exporter.pid!).own - e0;
    const agentCpu = agentsCpu(agents) - a0;
    say(`${r === 0 ? 'warm-up' : `round ${r}`} snmp_exporter wall ${fmt(wall)} s | exporter CPU ${fmt((ex * 1000) / N, 3)} s/1k dev | agents CPU ${fmt(agentCpu)} s | ${ok}/${N} answered | ${samples} samples`);
    if (r > 0) exCpuPerK += (ex * 1000) / N / ROUNDS;
  }
  return exCpuPerK;
}
