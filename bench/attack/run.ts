// Under attack, measured (issue 13 point 9; targets.md "under attack"): the
// simulated area polled every 20 s by `klaiwatch run` (the supervisor, its
// collector and archive children) while the archive's receivers get
// malformed datagrams, the worst syslog lines the fuzzers keep, NetFlow v9
// template floods from many spoofed exporters and idle TCP connections. The
// same run first measures a phase without the attack, so the two columns
// compare like with like. Good traffic (real log lines and real exporters'
// datagrams from test/fixtures) is sent in both phases from inventory
// addresses and counted back out of the archive.
//
// On demand, not in CI:  bash bench/attack/run.sh [--seconds 120] [--interval 20s]
//   [--malformed-rate 10000] [--exporters 1000] [--idle-tcp 500] [--keep]
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { buildSimArea, PROJECT, DEFAULT_SILENT } from '../../sim/area.ts';
import { startSnmpsim } from '../../sim/snmpsim.ts';
import { startInfluxd } from '../../sim/influxd.ts';
import { startMailCatcher } from '../../sim/mailcatcher.ts';
import { generateSigningKey } from '../../archive/manifest.ts';
import { udpPayloads } from '../../archive/pcap.ts';
import { queryArchive } from '../../archive/query.ts';
import { freePort } from '../../test/helpers/peers.ts';
import { table } from '../traffic/measure.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '120' },
    interval: { type: 'string', default: '20s' },
    'malformed-rate': { type: 'string', default: '10000' },
    exporters: { type: 'string', default: '1000' },
    'idle-tcp': { type: 'string', default: '500' },
    'good-syslog-rate': { type: 'string', default: '200' },
    'good-flow-rate': { type: 'string', default: '50' },
    keep: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const INTERVAL_S = Number(/^(\d+)s$/.exec(values.interval!)?.[1] ?? NaN);
if (!Number.isFinite(INTERVAL_S)) throw new Error(`--interval ${values.interval}: expected seconds such as 20s`);
const say = (s: string) => process.stdout.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FIX = join(PROJECT, 'test', 'fixtures');

// ------------------------------------------------------------------ peers
const dir = mkdtempSync(join(tmpdir(), 'kw-attack-'));
const influxPort = await freePort();
const influxd = await startInfluxd(join(dir, 'influxdb'), influxPort);
const mails: number[] = [];
const catcher = await startMailCatcher({ onMail: () => mails.push(Date.now()) });
const [httpPort, syslogPort, flowPort] = [await freePort(), await freePort(), await freePort()];
const signingKey = join(dir, 'signing.pem');
generateSigningKey(signingKey);
const archiveDir = join(dir, 'traffic');
const area = buildSimArea({
  dir,
  influxUrl: influxd.url,
  httpListen: `127.0.0.1:${httpPort}`,
  interval: values.interval,
  octet: 60,
  extraSettings: {
    traffic: { dir: archiveDir, signing_key: signingKey, syslog: { udp: `127.0.0.1:${syslogPort}`, tcp: `127.0.0.1:${syslogPort}` }, flow: { udp: `127.0.0.1:${flowPort}` } },
    mail: { smtp: { host: '127.0.0.1', port: catcher.port, security: 'none' }, from: 'bench <bench@example.org>', officer: ['officer@example.org'] },
  },
});
const agents = await startSnmpsim({ dir, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' });
say(`area: ${area.devices.length} devices (${DEFAULT_SILENT.join(', ')} silent on purpose), polled every ${values.interval}; ${dir}`);

// ------------------------------------------------------------------ klaiwatch run
const logFile = join(dir, 'klaiwatch.log');
const service: ChildProcess = spawn(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'run', '--config', area.settingsPath], { stdio: ['ignore', 'pipe', 'pipe'] });
// Whatever happens to this script (an error included), what it started does not outlive it.
process.on('exit', () => {
  service.kill('SIGKILL');
  agents.process.kill('SIGKILL');
  influxd.process.kill('SIGKILL');
});
const logOut = createWriteStream(logFile);
service.stdout!.pipe(logOut);
service.stderr!.pipe(logOut);
const health = async (): Promise<Record<string, any> | undefined> => {
  try {
    return (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as Record<string, any>;
  } catch {
    return undefined;
  }
};
for (let i = 0; ; i++) {
  const h = await health();
  if (h && JSON.stringify(h).includes(String(flowPort))) break;
  if (i > 120 || service.exitCode !== null) throw new Error(`klaiwatch run did not come up with its archive listening; see ${logFile}`);
  await sleep(500);
}

/** Every process of the service: the supervisor and its descendants. */
function tree(pid: number): number[] {
  const out = [pid];
  for (const t of safeReaddir(`/proc/${pid}/task`)) {
    const kids = safeRead(`/proc/${pid}/task/${t}/children`).trim();
    if (kids) for (const k of kids.split(/\s+/)) out.push(...tree(Number(k)));
  }
  return out;
}
const safeReaddir = (p: string) => (existsSync(p) ? readdirSync(p) : []);
function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
function processName(pid: number): string {
  const args = safeRead(`/proc/${pid}/cmdline`).split('\0');
  const i = args.findIndex((a) => a.endsWith('klaiwatch.ts'));
  return i >= 0 ? args.slice(i + 1, i + 3).filter((a) => !a.startsWith('-')).join(' ') || 'klaiwatch' : (args[0] ?? String(pid));
}
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(safeRead(`/proc/${pid}/status`))?.[1] ?? 0) / 1024;
function udpDrops(): number {
  let drops = 0;
  for (const f of ['/proc/net/udp', '/proc/net/udp6'])
    for (const line of safeRead(f).split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 13) continue;
      const port = parseInt(cols[1]!.slice(cols[1]!.lastIndexOf(':') + 1), 16);
      if (port === syslogPort || port === flowPort) drops += Number(cols[cols.length - 1]) || 0;
    }
  return drops;
}

// ------------------------------------------------------------------ traffic
const goodLines = readdirSync(join(FIX, 'logs'))
  .filter((n) => n.endsWith('.log'))
  .flatMap((f) => readFileSync(join(FIX, 'logs', f), 'utf8').split('\n').filter(Boolean));
const goodFlows = udpPayloads(readFileSync(join(FIX, 'netflow', 'nfv5.pcap'))).map((d) => d.payload);
const flowsIn = (b: Buffer) => b.readUInt16BE(2);

async function boundSocket(address: string): Promise<UdpSocket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, address, () => {
      s.off('error', reject);
      resolve();
    });
  });
  s.on('error', () => {});
  return s;
}

/** Good traffic for one phase, from two schools' router addresses (so the archive knows them by school). */
function goodTraffic(syslogFrom: UdpSocket, flowFrom: UdpSocket) {
  const sent = { syslog: 0, flows: 0 };
  const tick = 100;
  const perTickLines = Math.max(1, Math.round((Number(values['good-syslog-rate']) * tick) / 1000));
  const perTickFlows = Math.max(1, Math.round((Number(values['good-flow-rate']) * tick) / 1000));
  let i = 0;
  let j = 0;
  const timer = setInterval(() => {
    for (let k = 0; k < perTickLines; k++) {
      syslogFrom.send(goodLines[i++ % goodLines.length]!, syslogPort, '127.0.0.1');
      sent.syslog++;
    }
    for (let k = 0; k < perTickFlows; k++) {
      const d = goodFlows[j++ % goodFlows.length]!;
      flowFrom.send(d, flowPort, '127.0.0.1');
      sent.flows += flowsIn(d);
    }
  }, tick);
  return { sent, stop: () => clearInterval(timer) };
}

/** A NetFlow v9 datagram holding one template flowset. */
function v9Template(sourceId: number, templateId: number, fields: [number, number][], seq: number): Buffer {
  const set = Buffer.alloc(4 + 4 + fields.length * 4);
  set.writeUInt16BE(0, 0);
  set.writeUInt16BE(set.length, 2);
  set.writeUInt16BE(templateId, 4);
  set.writeUInt16BE(fields.length, 6);
  fields.forEach(([t, l], k) => {
    set.writeUInt16BE(t, 8 + k * 4);
    set.writeUInt16BE(l, 10 + k * 4);
  });
  return Buffer.concat([v9Header(1, seq, sourceId), set]);
}
function v9Header(count: number, seq: number, sourceId: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(9, 0);
  h.writeUInt16BE(count, 2);
  h.writeUInt32BE(1000, 4);
  h.writeUInt32BE(Math.floor(Date.now() / 1000), 8);
  h.writeUInt32BE(seq >>> 0, 12);
  h.writeUInt32BE(sourceId >>> 0, 16);
  return h;
}
function v9Data(sourceId: number, templateId: number, body: Buffer, seq: number): Buffer {
  const set = Buffer.alloc(4);
  set.writeUInt16BE(templateId, 0);
  set.writeUInt16BE(4 + body.length, 2);
  return Buffer.concat([v9Header(1, seq, sourceId), set, body]);
}

let seed = 0x9e3779b9;
const rnd = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
function malformed(n: number): Buffer {
  switch (n % 5) {
    case 0: {
      // The 48-byte kill of issue 13: a template whose only field has length 0, then its data.
      return n % 10 === 0 ? v9Template(7, 300, [[8, 0]], n) : v9Data(7, 300, Buffer.alloc(4), n);
    }
    case 1: {
      const b = Buffer.alloc(20 + Math.floor(rnd() * 1400));
      for (let i = 0; i < b.length; i++) b[i] = rnd() * 256;
      b.writeUInt16BE([5, 9, 10][n % 3]!, 0);
      return b;
    }
    case 2: {
      const d = goodFlows[n % goodFlows.length]!;
      return d.subarray(0, Math.floor(rnd() * d.length));
    }
    case 3: {
      const d = Buffer.from(goodFlows[n % goodFlows.length]!);
      for (let k = 0; k < 8; k++) { const at = Math.floor(rnd() * d.length); d[at] = d[at]! ^ (1 << Math.floor(rnd() * 8)); }
      return d;
    }
    default: {
      // IPFIX with a set length that points past the datagram.
      const b = Buffer.alloc(40);
      b.writeUInt16BE(10, 0);
      b.writeUInt16BE(40, 2);
      b.writeUInt16BE(2, 16);
      b.writeUInt16BE(60_000, 18);
      return b;
    }
  }
}

const hostileDir = join(FIX, 'hostile', 'syslog');
// Cut to what one UDP datagram can carry (65,507 bytes): a longer one is never sent.
const hostileLines = existsSync(hostileDir) ? readdirSync(hostileDir).filter((f) => !f.endsWith('.md') && !f.endsWith('.ts')).map((f) => readFileSync(join(hostileDir, f)).subarray(0, 65_000)) : [];
if (hostileLines.length === 0) {
  // Without the fuzzers' corpus: the backtracking shapes named in issue 13, 60 KB each.
  const run = 'a'.repeat(60_000);
  hostileLines.push(Buffer.from(`<134>Nov 29 10:00:00 ros firewall,info ${'input: in:'.repeat(6000)}`), Buffer.from(`<134>Nov 29 10:00:00 ros dhcp,info ${run} assigned `), Buffer.from(`<134>Nov 29 10:00:00 radius Login OK: [${run}`), Buffer.from(`<134>Nov 29 10:00:00 host app[${run}`));
}

async function attack() {
  const stats = { malformed: 0, templates: 0, hostile: 0, idle: 0, idleClosed: 0, seconds: 0 };
  const exporters = Number(values.exporters);
  say(`  binding ${exporters} spoofed exporters' sockets, opening ${values['idle-tcp']} idle TCP connections ...`);
  const spoofed: UdpSocket[] = [];
  for (let i = 0; i < exporters; i++) spoofed.push(await boundSocket(`127.78.${Math.floor(i / 250)}.${(i % 250) + 1}`));
  const noise = await Promise.all(Array.from({ length: 16 }, (_, k) => boundSocket(`127.77.0.${k + 1}`)));
  let running = true;
  const idle: Socket[] = [];
  for (let i = 0; i < Number(values['idle-tcp']); i++) {
    const s = connect(syslogPort, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => {
      if (running) stats.idleClosed++;
    });
    idle.push(s);
    stats.idle++;
  }
  say('  attacking');
  // Paced by the clock, not by a timer per batch: each turn sends what the
  // rates ask for since the start (at most a burst's worth), then yields, so
  // a sender that cannot keep up sends less (and says so) instead of queueing
  // without bound in its own process.
  const rate = Number(values['malformed-rate']);
  const t0 = performance.now();
  let n = 0;
  let t = 0;
  const pump = async () => {
    while (running) {
      const s = (performance.now() - t0) / 1000;
      const want = Math.min(Math.floor(s * rate) - n, 500);
      for (let k = 0; k < want; k++) {
        noise[n % noise.length]!.send(malformed(n), flowPort, '127.0.0.1');
        n++;
        stats.malformed++;
      }
      // Template floods: 2,000 new random templates a second from the spoofed exporters.
      const wantT = Math.min(Math.floor(s * 2000) - t, 100);
      for (let k = 0; k < wantT; k++) {
        const e = t % exporters;
        const fields: [number, number][] = Array.from({ length: 1 + Math.floor(rnd() * 20) }, () => [1 + Math.floor(rnd() * 300), 1 + Math.floor(rnd() * 16)]);
        spoofed[e]!.send(v9Template(Math.floor(rnd() * 2 ** 32), 256 + Math.floor(rnd() * 60_000), fields, t), flowPort, '127.0.0.1');
        t++;
        stats.templates++;
      }
      // The worst syslog lines: 200 a second.
      const wantH = Math.min(Math.floor(s * 200) - stats.hostile, 20);
      for (let k = 0; k < wantH; k++) {
        noise[0]!.send(hostileLines[stats.hostile % hostileLines.length]!, syslogPort, '127.0.0.1');
        stats.hostile++;
      }
      await sleep(want + wantT + wantH > 0 ? 1 : 5);
    }
  };
  const done = pump();
  return {
    stats,
    stop: async () => {
      running = false;
      await done;
      stats.seconds = (performance.now() - t0) / 1000;
      for (const s of [...spoofed, ...noise]) s.close();
      for (const s of idle) s.destroy();
    },
  };
}

// ------------------------------------------------------------------ phases
interface Phase {
  name: string;
  from: number;
  to: number;
  sent: { syslog: number; flows: number };
  school: { syslog: string; flows: string };
  rss: Map<string, number>;
  drops: number;
  attack?: Awaited<ReturnType<typeof attack>>['stats'];
  health?: Record<string, any>;
}

const schoolOf = (address: string) => {
  const text = readFileSync(join(dir, 'schools.yaml'), 'utf8');
  const i = text.indexOf(`address: ${address}\n`);
  const code = [...text.slice(0, i).matchAll(/code: "?(\d+)"?/g)].pop()?.[1];
  if (!code) throw new Error(`no school has ${address}`);
  return code;
};

async function runPhase(name: string, syslogAddr: string, flowAddr: string, withAttack: boolean): Promise<Phase> {
  say(`phase "${name}": ${SECONDS} s${withAttack ? ' under attack' : ''} ...`);
  const rss = new Map<string, number>();
  const drops0 = udpDrops();
  const [a, b] = [await boundSocket(syslogAddr), await boundSocket(flowAddr)];
  const from = Date.now();
  const good = goodTraffic(a, b);
  const att = withAttack ? await attack() : undefined;
  const end = from + SECONDS * 1000;
  let next = from + 15_000;
  while (Date.now() < end) {
    if (Date.now() >= next) {
      next += 15_000;
      say(`  ${Math.round((Date.now() - from) / 1000)} s${att ? `: ${att.stats.malformed} malformed, ${att.stats.templates} templates, ${att.stats.hostile} crafted lines sent` : ''}`);
    }
    for (const pid of tree(service.pid!)) {
      const k = processName(pid);
      rss.set(k, Math.max(rss.get(k) ?? 0, rssMb(pid)));
    }
    await sleep(1000);
  }
  good.stop();
  await att?.stop();
  const to = Date.now();
  await sleep(3000);
  a.close();
  b.close();
  return { name, from, to, sent: good.sent, school: { syslog: schoolOf(syslogAddr), flows: schoolOf(flowAddr) }, rss, drops: udpDrops() - drops0, ...(att ? { attack: att.stats } : {}), health: await health() };
}

async function influx(q: string): Promise<any[][]> {
  const r = await fetch(`${influxd.url}/query?db=klaiwatch&epoch=ms&q=${encodeURIComponent(q)}`);
  const j = (await r.json()) as { results: { series?: { values: any[][] }[] }[] };
  return j.results[0]?.series?.[0]?.values ?? [];
}

async function measure(p: Phase) {
  const t = `time >= ${p.from}ms AND time < ${p.to}ms`;
  const rounds = await influx(`SELECT round_ms, points_dropped, devices, devices_failed FROM klaiwatch WHERE ${t} AND round_ms > 0`);
  const expected = Math.floor((p.to - p.from) / 1000 / INTERVAL_S);
  const maxRound = Math.max(0, ...rounds.map((r) => Number(r[1])));
  const dropped = rounds.length > 0 ? Number(rounds[rounds.length - 1]![2]) - Number(rounds[0]![2]) : NaN;
  const failed = Math.max(0, ...rounds.map((r) => Number(r[4])));
  const db = new DatabaseSync(join(dir, 'state.sqlite'), { readOnly: true });
  const incidents = (db.prepare('SELECT count(*) AS n FROM incidents WHERE started_at >= ? AND started_at < ?').get(p.from, p.to + 60_000) as { n: number }).n;
  db.close();
  const mailsIn = mails.filter((m) => m >= p.from && m < p.to + 60_000).length;
  const syslog = (await queryArchive(archiveDir, { school: p.school.syslog, limit: 10_000_000 })).rows.length;
  const flows = (await queryArchive(archiveDir, { school: p.school.flows, limit: 10_000_000 })).rows.length;
  return { rounds: rounds.length, expected, maxRound, dropped, failed, incidents, mailsIn, syslog, flows };
}

say(`warming up: two rounds (the silent devices go down, their e-mails are sent) ...`);
await sleep(2 * INTERVAL_S * 1000 + 5000);
const quiet = await runPhase('without attack', '127.60.1.1', '127.60.2.1', false);
const loud = await runPhase('under attack', '127.60.3.1', '127.60.4.1', true);
await sleep(2000);
const [mq, ml] = [await measure(quiet), await measure(loud)];

const procs = [...new Set([...quiet.rss.keys(), ...loud.rss.keys()])];
const parts = (h: Record<string, any> | undefined) => JSON.stringify(h?.parts ? Object.fromEntries(Object.entries(h.parts).map(([k, v]: [string, any]) => [k, { status: v?.status, restarts: v?.restarts }])) : h?.status);
say('');
table([
  ['figure', 'without attack', 'under attack'],
  ['polling rounds (expected)', `${mq.rounds} (${mq.expected})`, `${ml.rounds} (${ml.expected})`],
  ['longest round, ms', mq.maxRound.toFixed(0), ml.maxRound.toFixed(0)],
  ['devices failed in a round, most', String(mq.failed), String(ml.failed)],
  ['incidents opened (false alerts)', String(mq.incidents), String(ml.incidents)],
  ['e-mails sent', String(mq.mailsIn), String(ml.mailsIn)],
  ['points dropped', String(mq.dropped), String(ml.dropped)],
  ['good syslog lines sent / archived', `${quiet.sent.syslog} / ${mq.syslog}`, `${loud.sent.syslog} / ${ml.syslog}`],
  ['good flows sent / archived', `${quiet.sent.flows} / ${mq.flows}`, `${loud.sent.flows} / ${ml.flows}`],
  ['UDP datagrams dropped by the kernel', String(quiet.drops), String(loud.drops)],
  ...procs.map((k) => [`RSS max, MB: ${k}`, (quiet.rss.get(k) ?? 0).toFixed(0), (loud.rss.get(k) ?? 0).toFixed(0)]),
  ['parts at the end', parts(quiet.health), parts(loud.health)],
]);
if (loud.attack) say(`attack sent in ${loud.attack.seconds.toFixed(0)} s: ${loud.attack.malformed} malformed datagrams (${Math.round(loud.attack.malformed / loud.attack.seconds)}/s), ${loud.attack.templates} templates from ${values.exporters} spoofed exporters, ${loud.attack.hostile} crafted syslog lines, ${loud.attack.idle} idle TCP connections (${loud.attack.idleClosed} closed by the server)`);
say(`service log: ${logFile}`);

service.kill('SIGTERM');
await new Promise((r) => service.once('exit', r));
await agents.stop();
await catcher.stop();
await influxd.stop();
if (!values.keep) rmSync(dir, { recursive: true, force: true });
