// Collector shards end to end: two `klaiwatch collector` processes (shard 1/2
// and 2/2 of the same inventory) and a third with no shard as the reference,
// against real snmpsimd agents, one real influxd and one mail catcher. The
// office uplink has an agent of its own so that it alone can be paused.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { buildSimArea, startRouterAgent, PROJECT, type SimArea } from '../../sim/area.ts';
import { startSnmpsim, type Snmpsim } from '../../sim/snmpsim.ts';
import { startMailCatcher, type MailCatcher } from '../../sim/mailcatcher.ts';
import { loadConfig, type Config } from '../../config/load.ts';
import { fnv1a32, planShard, shardOf } from '../../config/shard.ts';
import { areaTotals } from '../../dashboards/dashboards.ts';
import { startTestInflux, type TestInflux } from '../helpers/influx.ts';
import { freePort, requireBinary, tempDir } from '../helpers/peers.ts';

const run = promisify(execFile);
const OCTET = 63;
const UPLINK = 'office-uplink';
const OFFICER = 'it-officer@example.org';
const INTERVAL_S = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let influx: TestInflux;
let smtp: MailCatcher;
let dir: ReturnType<typeof tempDir>;
let uplinkDir: ReturnType<typeof tempDir>;
let area: SimArea;
let agents: Snmpsim;
let uplink: Snmpsim;
const files: Record<'a' | 'b' | 'all', string> = { a: '', b: '', all: '' };
const procs = new Map<string, { child: ChildProcess; output: string[] }>();
let configA: Config;
let configB: Config;

/** The sim area's settings as one collector of several: its own instance, shard, state, spool, listen address, database. */
async function writeSettings(name: string, extra: { shard?: string | string[]; database: string; mail: boolean }): Promise<string> {
  const s = parse(readFileSync(area.settingsPath, 'utf8')) as Record<string, any>;
  s.instance = `shard-${name}`;
  if (extra.shard) s.collector = { shard: extra.shard };
  s.influx.database = extra.database;
  s.spool = { dir: join(dir.path, `spool-${name}`) };
  s.http = { listen: `127.0.0.1:${await freePort()}` };
  s.log = { level: 'info' };
  // SNMP alone says up or down (loopback always answers ping); receivers judged all day; no threshold checks in the way.
  s.icmp = { enabled: false };
  s.polling = { ...s.polling, interval: `${INTERVAL_S}s` };
  s.alerts = { state_db: join(dir.path, `state-${name}.sqlite`), schedule: { 'dltv-receiver': 'always' }, thresholds: [], confirm_default: 2 };
  if (extra.mail) s.mail = { smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', timeout: '2s' }, from: 'klaiwatch <klaiwatch@example.org>', officer: [OFFICER], min_backoff: '200ms', max_backoff: '400ms' };
  const file = join(dir.path, `${name}.yaml`);
  writeFileSync(file, stringify(s, { lineWidth: 0 }));
  return file;
}

function startCollector(name: string, file: string): Promise<void> {
  const child = spawn(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'collector', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  procs.set(name, { child, output });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`collector ${name} did not say 'collector running' in 30 s: ${output.join('').slice(-2000)}`)), 30_000);
    const take = (b: Buffer) => {
      output.push(b.toString());
      if (output.length > 2000) output.splice(0, 1000); // bounded: only the tail matters for a failure message
      if (output.join('').includes('collector running')) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`collector ${name} exited with ${code}: ${output.join('').slice(-2000)}`));
    });
  });
}

async function stopCollector(name: string): Promise<void> {
  const p = procs.get(name);
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([exited, sleep(20_000).then(() => p.child.kill('SIGKILL'))]);
}

beforeAll(async () => {
  await requireBinary('snmpsimd', 'snmpsim');
  [influx, smtp] = await Promise.all([startTestInflux('shard'), startMailCatcher()]);
  dir = tempDir('shard');
  uplinkDir = tempDir('shard-uplink');
  area = buildSimArea({ dir: dir.path, influxUrl: influx.server.url, database: 'area', octet: OCTET, silent: [UPLINK] });
  [agents, uplink] = await Promise.all([
    startSnmpsim({ dir: dir.path, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' }),
    startRouterAgent(uplinkDir.path, `${area.devices.find((d) => d.id === UPLINK)!.address}:${area.snmpPort}`),
  ]);
  files.a = await writeSettings('a', { shard: '1/2', database: 'area', mail: true });
  files.b = await writeSettings('b', { shard: '2/2', database: 'area', mail: true });
  files.all = await writeSettings('all', { database: 'single', mail: false });
  configA = loadConfig(files.a);
  configB = loadConfig(files.b);
  await Promise.all([startCollector('a', files.a), startCollector('b', files.b), startCollector('all', files.all)]);
}, 120_000);

afterAll(async () => {
  uplink?.resume();
  agents?.resume();
  await Promise.all([...procs.keys()].map(stopCollector));
  await Promise.all([agents?.stop(), uplink?.stop(), smtp?.stop(), influx?.close()]);
  dir?.remove();
  uplinkDir?.remove();
}, 60_000);

const AREA_FIELDS = ['devices_up', 'devices_down', 'devices_unreachable', 'devices_unknown', 'devices_maintenance', 'incidents_open', 'schools_up', 'schools_degraded', 'schools_down', 'schools_unreachable', 'schools_unknown'] as const;

/** The dashboards' own area query (last per instance, then the sum) over the last minute. */
async function areaFigures(database: string): Promise<Record<string, number>> {
  const q = areaTotals(AREA_FIELDS).replace(/\$timeFilter/g, 'time >= now() - 1m');
  const [row] = await influx.query(database, q);
  return Object.fromEntries(AREA_FIELDS.map((f) => [f, Number(row?.[f] ?? NaN)]));
}

/** Waits until the two shards' summed figures equal the single collector's and `ready` holds; returns them. */
async function agreeing(ready: (f: Record<string, number>) => boolean, what: string, ms = 90_000): Promise<Record<string, number>> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const [shards, single] = await Promise.all([areaFigures('area'), areaFigures('single')]);
    if (ready(single) && ready(shards) && JSON.stringify(shards) === JSON.stringify(single)) return shards;
    last = { shards, single };
    if (Date.now() > end) throw new Error(`${what}: not reached in ${ms / 1000} s; last seen ${JSON.stringify(last)}`);
    await sleep(1000);
  }
}

const officeOwner = () => shardOf('office', 2);

describe('ownership', () => {
  it('"N/M" is FNV-1a 32 of the school code: stable, the published test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(shardOf('1036090101', 2)).toBe((fnv1a32('1036090101') % 2) + 1);
  });

  it('two shards split the devices with no gap and no overlap; the one without the office probes its uplink for dependency only', () => {
    const a = planShard(configA);
    const b = planShard(configB);
    const all = configA.devices.map((d) => d.id).sort();
    expect([...a.owned, ...b.owned].sort()).toEqual(all);
    expect([...a.owned].filter((id) => b.owned.has(id))).toEqual([]);
    // Both own schools (the example's 20 codes hash to both halves).
    expect(a.schools.size).toBeGreaterThan(1);
    expect(b.schools.size).toBeGreaterThan(1);
    const [owner, other] = officeOwner() === 1 ? [a, b] : [b, a];
    expect(owner.schools.has('office')).toBe(true);
    expect(owner.owned.has(UPLINK)).toBe(true);
    expect(owner.dependencies.size).toBe(0);
    // Every school router hangs from the uplink: it is the other shard's only dependency.
    expect([...other.dependencies]).toEqual([UPLINK]);
  });

  it('/healthz counts the devices this collector owns, and apart the ones it probes for dependency only', async () => {
    const health = async (file: string) => {
      const listen = (parse(readFileSync(file, 'utf8')) as { http: { listen: string } }).http.listen;
      return (await (await fetch(`http://${listen}/healthz`)).json()) as { devices: number; dependency_probes: number };
    };
    const a = planShard(configA);
    const b = planShard(configB);
    expect(await health(files.a)).toMatchObject({ devices: a.owned.size, dependency_probes: a.dependencies.size });
    expect(await health(files.b)).toMatchObject({ devices: b.owned.size, dependency_probes: b.dependencies.size });
    // Shares, not the inventory's total; the single collector owns all of it.
    expect(a.owned.size + b.owned.size).toBe(65);
    expect(Math.max(a.owned.size, b.owned.size)).toBeLessThan(65);
    expect(a.dependencies.size + b.dependencies.size).toBe(1);
    expect(await health(files.all)).toMatchObject({ devices: 65, dependency_probes: 0 });
  });

  it('check-config says what this collector owns and what it probes for dependency; a shard list naming nothing known is refused with its place', async () => {
    const other = officeOwner() === 1 ? files.b : files.a;
    const { stdout } = await run(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'check-config', '--no-listen', '--config', other]);
    expect(stdout).toMatch(/shard [12]\/2 \(instance shard-[ab]\): owns \d+ of 20 schools \(.*\); the office \(office\) is another shard's, \d+ of 65 devices polled, written and alerted here; probes 1 for dependency only \(office-uplink\)/);

    const s = parse(readFileSync(files.a, 'utf8')) as Record<string, any>;
    s.collector = { shard: ['หนองบัวแดง', 'Nong Bua Daeng'] };
    const bad = join(dir.path, 'bad-list.yaml');
    writeFileSync(bad, stringify(s, { lineWidth: 0 }));
    const e1 = await run(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'check-config', '--no-listen', '--config', bad]).then(() => ({ code: 0, stderr: "" }), (e: { code: number; stderr: string }) => e);
    expect(e1.code).toBe(1);
    expect(e1.stderr).toMatch(/bad-list\.yaml:\d+: collector\.shard\[1\]: "Nong Bua Daeng" is no school code and no district in the inventory/);
    expect(e1.stderr).not.toMatch(/\n\s+at /); // no stack trace

    s.collector = { shard: '3/2' };
    writeFileSync(bad, stringify(s, { lineWidth: 0 }));
    const e2 = await run(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'check-config', '--no-listen', '--config', bad]).then(() => ({ code: 0, stderr: "" }), (e: { code: number; stderr: string }) => e);
    expect(e2.code).toBe(1);
    expect(e2.stderr).toContain('collector.shard must be "N/M" with 1 <= N <= M <= 1000 (such as "1/2"), or a list of districts or school codes; got "3/2"');
  });
});

describe('two collector processes, one area', () => {
  it('the area totals summed over the two instances equal a single collector\'s, all up', async () => {
    const icmpOnly = configA.devices.filter((d) => !d.snmp).length;
    const f = await agreeing((x) => x.devices_up === 65 - icmpOnly && x.devices_unknown === icmpOnly, 'every SNMP device up in both views');
    expect(f).toMatchObject({ devices_down: 0, devices_unreachable: 0, schools_up: 20, incidents_open: 0 });
    // Each instance wrote its own share, not the whole area.
    const per = await influx.query('area', `SELECT last(devices_up) AS up FROM area_state WHERE time >= now() - 1m GROUP BY instance`);
    expect(per.map((r) => r.instance).sort()).toEqual(['shard-a', 'shard-b']);
    expect(per.every((r) => (r.up as number) > 0 && (r.up as number) < 65 - icmpOnly)).toBe(true);
  }, 120_000);

  it('the uplink\'s agent paused: one e-mail about it for the whole area, the schools behind it unreachable in both shards, no storm; totals still agree', async () => {
    expect(smtp.received).toEqual([]);
    // The uplink stops first, the schools behind it a round later: a round
    // under way when both stop at once could count a school's failure a
    // round ahead of its uplink's (that race is the state engine's, not the shards').
    uplink.pause();
    await sleep(INTERVAL_S * 1000 + 1000);
    agents.pause();
    const icmpOnly = configA.devices.filter((d) => !d.snmp).length;
    const f = await agreeing((x) => x.devices_down === 1 && x.schools_unreachable === 20 && x.devices_unreachable === 65 - icmpOnly - 1, 'the uplink down, everything behind it unreachable');
    expect(f).toMatchObject({ schools_down: 0, schools_up: 0 });
    // Two more rounds: whatever either shard would send has been sent.
    await sleep(2 * INTERVAL_S * 1000 + 3000);
    const mails = smtp.received.map((m) => ({ to: m.to && 'text' in m.to ? m.to.text : '', subject: m.subject, text: m.text ?? '' }));
    expect(mails.map((m) => [m.to, m.subject])).toEqual([[OFFICER, expect.stringMatching(/^\[klaiwatch\] สำนักงานเขตพื้นที่.*: วงจรอินเทอร์เน็ตหลักใช้งานไม่ได้$/)]]);
    expect(mails[0]!.text).toContain(`Uplink ${UPLINK} (`);
    // The notice counts what this shard found unreachable behind the uplink
    // in the round that confirmed it (its own schools; the other shard's it
    // does not observe), never the topology's whole count.
    // (How many depends on where the confirming round fell against the
    // schools' pause a round later: none yet, or some of this shard's.)
    const behind = /(\d+) devices? behind it/.exec(mails[0]!.text);
    if (behind) expect(Number(behind[1])).toBeLessThan(65 - 1);
    expect(mails[0]!.text).not.toMatch(/behind it are unreachable/);
    // Both shards see their schools unreachable (not down) behind the uplink.
    const states = await influx.query('area', `SELECT last(state) AS state FROM school_state WHERE time >= now() - 20s GROUP BY school, instance`);
    expect(states.filter((r) => r.school !== 'office').map((r) => r.state)).toEqual(Array(20).fill('unreachable'));
    expect(new Set(states.map((r) => r.instance))).toEqual(new Set(['shard-a', 'shard-b']));
    uplink.resume();
    agents.resume();
  }, 180_000);

  it('every device was written by exactly one collector: its polls number its owner\'s rounds; each school has one series, its owner\'s', async () => {
    await Promise.all([stopCollector('a'), stopCollector('b')]);
    const owner = (school: string) => (shardOf(school, 2) === 1 ? 'shard-a' : 'shard-b');
    const rounds = new Map(
      (await influx.query('area', `SELECT count(round_ms) AS rounds, sum(overruns) AS overruns FROM klaiwatch GROUP BY instance`)).map((r) => [String(r.instance), { rounds: Number(r.rounds), overruns: Number(r.overruns) }]),
    );
    expect([...rounds.keys()].sort()).toEqual(['shard-a', 'shard-b']);
    const polls = await influx.query('area', `SELECT count(snmp_up) AS polls FROM device GROUP BY device, school`);
    const snmp = configA.devices.filter((d) => d.snmp);
    expect(polls.map((r) => r.device).sort()).toEqual(snmp.map((d) => d.id).sort());
    for (const r of polls) {
      const own = rounds.get(owner(String(r.school)))!;
      // Not written by both (that would be about the sum of the two instances' rounds); the last
      // round may have been cut short by the stop, a device still busy is skipped and counted.
      expect(Number(r.polls), String(r.device)).toBeLessThanOrEqual(own.rounds);
      expect(Number(r.polls), String(r.device)).toBeGreaterThanOrEqual(own.rounds - own.overruns - 1);
    }
    const series = await influx.query('area', `SHOW SERIES FROM school_state`);
    const keys = series.map((r) => String(r.key));
    expect(keys).toHaveLength(21);
    for (const s of configA.schools) {
      const mine = keys.filter((k) => k.includes(`school=${s.code},`) || k.endsWith(`school=${s.code}`));
      expect(mine, s.code).toHaveLength(1);
      expect(mine[0], s.code).toContain(`instance=${owner(s.code)}`);
    }
  }, 120_000);
});
