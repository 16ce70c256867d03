// bench/api: the API at the area's scale beside Fastify's own hello-world
// route, in the same run on the same machine (issue 17, point 7).
//
//   node bench/api/run.ts [--schools 250] [--per-school 8] [--seconds 5] [--repeats 3] [--connections 10] [--rate 1000]
//
// It writes an inventory of 250 schools × 8 devices (2,000), fills a state
// database as the collector leaves it (a state per device, incidents past and
// open, runs of rounds), starts a real influxd with the last hour of ICMP
// points of one device, then runs in ONE child process (the API's V8 flags,
// as `klaiwatch run` forks it): buildApp() on loopback (request logs off, as
// Fastify's hello-world has none), the same app with the service's request
// logs (pino at info, to /dev/null), and a plain fastify() with
// GET / → { hello: 'world' }. autocannon (this process, the other core)
// measures each: requests/s and p99 at full load (N connections), and p99 at
// a fixed overall rate (1,000 requests/s), in rounds that take every target in
// turn (the machine is shared: medians of the rounds, ratios within a round). Targets of the issue: /v1/status
// ≥ 0.25× hello-world's requests/s; p99 ≤ 5 ms at 1,000 requests/s.
// The API's rate limit is set out of reach (api.rate_limit 1,000,000 a
// minute): the plugin still runs on every request, it only never refuses.
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import autocannon from 'autocannon';
import { loadConfig, type Config } from '../../config/load.ts';
import { StateStore } from '../../stores/state.ts';
import { InfluxClient } from '../../stores/influx/client.ts';
import { setupSchema } from '../../stores/influx/setup.ts';
import { TokenStore } from '../../api/tokens.ts';
import { startInfluxd, type Influxd } from '../../sim/influxd.ts';
import { freePort, tempDir } from '../../test/helpers/peers.ts';
import { API_V8_FLAGS } from '../../collector/runtime.ts';

const HERE = fileURLToPath(import.meta.url);
const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    schools: { type: 'string', default: '250' },
    'per-school': { type: 'string', default: '8' },
    seconds: { type: 'string', default: '5' },
    repeats: { type: 'string', default: '3' },
    connections: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    /** Write a V8 CPU profile of the servers' process into this folder (node --cpu-prof). */
    'cpu-prof': { type: 'string' },
  },
});

// ---------------------------------------------------------------- the servers (child process)

async function serve(settingsPath: string): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const { apiContext } = await import('../../api/context.ts');
  const { buildApp } = await import('../../api/app.ts');
  const { createLogger } = await import('../../config/log.ts');
  const pino = (await import('pino')).default;
  const config = loadConfig(settingsPath);
  const ctx = apiContext(config, async () => ({ status: 'ok' }));
  const s = config.settings.api;
  const opts = { rateLimit: s.rate_limit, bodyLimit: s.body_limit, trustProxy: s.trust_proxy };
  const api = await buildApp(ctx, opts);
  const logged = await buildApp(ctx, { ...opts, logger: createLogger('info', pino.destination({ dest: '/dev/null', sync: false })).child({ part: 'api' }) });
  const hello = Fastify();
  hello.get('/', async () => ({ hello: 'world' }));
  const at = {
    api: await api.listen({ host: '127.0.0.1', port: 0 }),
    logged: await logged.listen({ host: '127.0.0.1', port: 0 }),
    hello: await hello.listen({ host: '127.0.0.1', port: 0 }),
    pid: process.pid,
  };
  process.stdout.write(JSON.stringify(at) + '\n');
  process.on('SIGTERM', () => {
    void Promise.all([api.close(), logged.close(), hello.close()]).then(() => process.exit(0));
  });
}

// ---------------------------------------------------------------- the area and the measurement

const KINDS: { kind: string; profile: string }[] = [
  { kind: 'router', profile: 'auto' },
  { kind: 'switch', profile: 'auto' },
  { kind: 'server', profile: 'auto' },
  { kind: 'dltv-receiver', profile: 'pbi-dch4000p' },
];

function writeArea(dir: string, influxUrl: string, schools: number, perSchool: number): string {
  const list = [];
  for (let s = 0; s < schools; s++) {
    const code = `10360${String(s).padStart(5, '0')}`;
    const router = `${code}-router`;
    const devices = [];
    for (let k = 0; k < perSchool; k++) {
      const t = k === 0 ? KINDS[0]! : k === 1 ? KINDS[1]! : k === 2 ? KINDS[2]! : KINDS[3]!;
      devices.push({
        id: k === 0 ? router : `${code}-${t.kind}-${k}`,
        kind: t.kind,
        address: `10.${36 + Math.floor(s / 250)}.${s % 250}.${k + 1}`,
        profile: t.profile,
        snmp: 'school',
        ...(k === 0 ? {} : { parent: router }),
        ...(t.kind === 'dltv-receiver' ? { classroom: `ห้องเรียน ${k - 2}` } : {}),
      });
    }
    list.push({ code, name_th: `โรงเรียนทดสอบที่ ${s + 1}`, name_en: `Bench School ${s + 1}`, district: `อำเภอ ${s % 12}`, cluster: `เครือข่าย ${s % 30}`, contacts: [{ name: `ครู ${s}`, email: `ict${s}@bench.example` }], devices: devices });
  }
  writeFileSync(join(dir, 'schools.yaml'), stringify({ schools: list }));
  const file = join(dir, 'bench.yaml');
  writeFileSync(
    file,
    stringify({
      area: { code: 'bench', name_th: 'สพป.ทดสอบ (bench/api)' },
      inventory: 'schools.yaml',
      influx: { url: influxUrl, database: 'benchapi' },
      alerts: { state_db: join(dir, 'state.sqlite') },
      snmp: { credentials: { school: { version: '2c', community: 'bench-not-polled' } } },
      api: { tokens_db: join(dir, 'api.sqlite'), rate_limit: 1_000_000 },
      log: { level: 'warn' },
    }),
  );
  return file;
}

/** The state database as a collector leaves it after a month: states, incidents past and open, runs of rounds. */
function fillState(config: Config, now: number): { incidents: number; open: number } {
  const store = new StateStore(config.settings.alerts.state_db);
  const db = store.db;
  let seed = 2569;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const state = db.prepare('INSERT OR REPLACE INTO device_state (device, state, since, raw, streak, cause, judged, flapping, changes) VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?)');
  const incident = db.prepare('INSERT INTO incidents (device, check_name, school, kind, state, cause, detail, started_at, ended_at, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const monitoring = db.prepare('INSERT OR REPLACE INTO monitoring (device, first_seen) VALUES (?, ?)');
  let incidents = 0;
  let open = 0;
  db.exec('BEGIN');
  for (const school of config.schools) {
    const routerDown = rand() < 0.03;
    for (const d of school.devices) {
      monitoring.run(d.id, now - 30 * 86_400_000);
      let st = 'up';
      let cause: string | null = null;
      if (d.kind === 'router' && routerDown) [st, cause] = ['down', d.id];
      else if (d.kind !== 'router' && routerDown) [st, cause] = ['unreachable', school.devices[0]!.id];
      else if (rand() < 0.02) [st, cause] = ['down', d.id];
      const since = now - Math.floor(rand() * 7 * 86_400_000);
      state.run(d.id, st, since, st, 3, cause, '[]');
      if (st !== 'up') {
        incident.run(d.id, '', school.code, d.kind, st, cause, null, since, null, null);
        open++;
        incidents++;
      }
      for (let k = Math.floor(rand() * 4); k > 0; k--) {
        const start = now - Math.floor(rand() * 30 * 86_400_000);
        const len = Math.round(300 + rand() * 4 * 3600) * 1000;
        incident.run(d.id, '', school.code, d.kind, 'down', d.id, null, start, start + len, Math.round(len / 1000));
        incidents++;
      }
    }
  }
  db.exec('COMMIT');
  const ids = config.devices.map((d) => d.id);
  for (let t = now - 30 * 86_400_000; t <= now; t += 86_400_000) store.recordRound(t, 86_400_000, ids);
  store.close();
  return { incidents, open };
}

/** The last hour of ICMP points of one device (one every 30 s), as the collector writes them. */
async function fillInflux(config: Config, device: string, now: number): Promise<number> {
  const i = config.settings.influx;
  const client = new InfluxClient({ url: i.url, database: i.database, username: i.username, auth: config.influxAuth, timeoutMs: 10_000 });
  const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof setupSchema>[2];
  await setupSchema(client, { rawRetentionMs: 30 * 86_400_000, rollupRetentionMs: 400 * 86_400_000 }, silent);
  const d = config.deviceById.get(device)!;
  const tags = `school=${d.school.code},device=${d.id},kind=${d.kind},district=bench`;
  const lines: string[] = [];
  for (let t = now - 3_600_000 + 30_000; t <= now; t += 30_000) {
    const rtt = 2 + (t / 30_000) % 7;
    lines.push(`icmp,${tags} icmp_up=1i,sent=3i,received=3i,loss_pct=0,rtt_min_ms=${rtt - 0.5},rtt_avg_ms=${rtt},rtt_max_ms=${rtt + 1},jitter_ms=0.4 ${t}`);
  }
  await client.write(lines.join('\n'));
  return lines.length;
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  achieved?: number;
}

async function cannon(url: string, headers: Record<string, string>, o: { seconds: number; connections: number; rate?: number }): Promise<Figures> {
  const r = await autocannon({ url, headers, connections: o.connections, duration: o.seconds, ...(o.rate ? { overallRate: o.rate } : {}) });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts, achieved: r.requests.total / o.seconds };
}

async function main(): Promise<void> {
  const schools = Number(values.schools);
  const perSchool = Number(values['per-school']);
  const seconds = Number(values.seconds);
  const repeats = Number(values.repeats);
  const connections = Number(values.connections);
  const rate = Number(values.rate);
  const dir = tempDir('bench-api');
  let influxd: Influxd | undefined;
  let child: ChildProcess | undefined;
  try {
    const now = Date.now();
    influxd = await startInfluxd(join(dir.path, 'influx'), await freePort());
    const file = writeArea(dir.path, influxd.url, schools, perSchool);
    const config = loadConfig(file);
    const filled = fillState(config, now);
    const device = config.schools[0]!.devices[0]!.id;
    const points = await fillInflux(config, device, now);
    const tokens = new TokenStore(config.settings.api.tokens_db);
    const officer = tokens.create({ role: 'officer', name: 'bench/api officer' }).token;
    tokens.close();
    console.log(`area: ${config.schools.length} schools, ${config.devices.length} devices; state database: ${filled.incidents} incidents (${filled.open} open), 31 days of rounds; InfluxDB: ${points} ICMP points of ${device} in the last hour`);

    const prof = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
    child = spawn(process.execPath, [...API_V8_FLAGS, ...prof, HERE, '--serve', file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const first = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child!.stdout! });
      rl.once('line', resolve);
      child!.once('exit', (code) => reject(new Error(`the servers' process ended (${code}) before listening`)));
    });
    const at = JSON.parse(first) as { api: string; logged: string; hello: string };
    const auth = { authorization: `Bearer ${officer}` };
    const targets: { name: string; url: string; headers: Record<string, string> }[] = [
      { name: 'hello-world (fastify, GET /)', url: `${at.hello}/`, headers: {} },
      { name: 'GET /v1/status', url: `${at.api}/v1/status`, headers: auth },
      { name: 'GET /v1/status, request logs on', url: `${at.logged}/v1/status`, headers: auth },
      { name: `GET /v1/devices/${device}/metrics`, url: `${at.api}/v1/devices/${encodeURIComponent(device)}/metrics`, headers: auth },
    ];
    // Each answers what it should before it is measured.
    for (const t of targets) {
      const res = await fetch(t.url, { headers: t.headers });
      const body = await res.text();
      if (res.status !== 200) throw new Error(`${t.name}: ${res.status} ${body.slice(0, 300)}`);
      console.log(`${t.name}: 200, ${body.length} bytes`);
    }
    // Rounds, each measuring every target in turn: on a shared machine the load of others drifts, so
    // hello-world and the API are measured next to each other in every round, and the medians are reported.
    const runs: { full: Figures; fixed: Figures }[][] = targets.map(() => []);
    for (const t of targets) await cannon(t.url, t.headers, { seconds: 2, connections }); // warm-up (JIT, caches)
    for (let round = 0; round < repeats; round++) {
      for (const [i, t] of targets.entries()) {
        const full = await cannon(t.url, t.headers, { seconds, connections });
        const fixed = await cannon(t.url, t.headers, { seconds, connections, rate });
        runs[i]!.push({ full, fixed });
      }
      console.log(`round ${round + 1} of ${repeats}: ${targets.map((t, i) => `${t.name} ${Math.round(runs[i]![round]!.full.rps)} req/s`).join(', ')}`);
    }
    const median = (xs: number[]) => {
      const v = [...xs].sort((x, y) => x - y);
      return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
    };
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
    const rows = targets.map((t, i) => {
      const r = runs[i]!;
      return {
        name: t.name,
        rps: median(r.map((x) => x.full.rps)),
        rpsAll: r.map((x) => Math.round(x.full.rps)),
        ratio: median(r.map((x, k) => x.full.rps / runs[0]![k]!.full.rps)),
        p99Full: median(r.map((x) => x.full.p99)),
        p50Fixed: median(r.map((x) => x.fixed.p50)),
        p99Fixed: median(r.map((x) => x.fixed.p99)),
        p99FixedAll: r.map((x) => x.fixed.p99),
        achieved: median(r.map((x) => x.fixed.achieved ?? 0)),
        bad: sum(r.map((x) => x.full.non2xx + x.fixed.non2xx + x.full.errors + x.fixed.errors)),
      };
    });
    const f = (x: number, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
    console.log('');
    console.log(`Medians of ${repeats} rounds (${connections} connections, ${seconds} s a measurement; latencies in autocannon's 1 ms steps):`);
    console.log('');
    console.log(`| route | req/s at full load (each round) | × hello-world (same round) | p99 at full load | p50 / p99 at ${f(rate)} req/s (each round's p99) | achieved req/s | non-2xx + errors |`);
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) {
      console.log(`| ${r.name} | ${f(r.rps)} (${r.rpsAll.map((x) => f(x)).join(', ')}) | ${f(r.ratio, 2)} | ${f(r.p99Full)} ms | ${f(r.p50Fixed)} / ${f(r.p99Fixed)} ms (${r.p99FixedAll.join(', ')}) | ${f(r.achieved)} | ${r.bad} |`);
    }
    const status = rows[1]!;
    console.log('');
    console.log(`target /v1/status ≥ 0.25× hello-world req/s: ${f(status.ratio, 2)}× → ${status.ratio >= 0.25 ? 'holds' : 'NOT MET'}`);
    for (const r of rows.slice(1)) console.log(`target p99 ≤ 5 ms at ${f(rate)} req/s, ${r.name}: ${f(r.p99Fixed)} ms → ${r.p99Fixed <= 5 && r.achieved >= rate * 0.95 ? 'holds' : 'NOT MET'}${r.achieved < rate * 0.95 ? ` (only ${f(r.achieved)} req/s reached)` : ''}`);
    const bad = rows.filter((r) => r.bad > 0);
    if (bad.length > 0) console.log(`WARNING: answers other than 200 under load: ${bad.map((r) => r.name).join(', ')}`);
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await influxd?.stop();
    dir.remove();
  }
}

// Last: the constants above are initialised by now.
if (values.serve) await serve(values.serve);
else await main();
