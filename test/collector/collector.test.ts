// The whole spine on the simulated area: snmpsimd agents serving recordings
// on their own loopback addresses, fping, a real influxd, GET /healthz.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { promisify } from 'node:util';
import type { Server } from 'node:http';
import pino from 'pino';
import { buildSimArea, simRate, startRouterAgent, DEFAULT_SILENT, type SimArea } from '../../sim/area.ts';
import { startSnmpsim, type Snmpsim } from '../../sim/snmpsim.ts';
import { loadConfig, type Config } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import { startHealthServer } from '../../bin/health-server.ts';
import { startTestInflux, type TestInflux } from '../helpers/influx.ts';
import { tempDir, freePort, requireBinary } from '../helpers/peers.ts';
import { startChrony } from '../helpers/chrony.ts';

const run = promisify(execFile);
const log = pino({ level: 'silent' });
const OCTET = 61;
// One router gets an agent of its own, so it alone can stop answering mid-run.
const LONER = '1036090103-router';

let influx: TestInflux;
let dir: ReturnType<typeof tempDir>;
let area: SimArea;
let agents: Snmpsim;
let loner: Snmpsim;
let config: Config;
let collector: Collector;
let health: Server;
let healthUrl: string;
let lonerDir: ReturnType<typeof tempDir> | undefined;
let chrony: Awaited<ReturnType<typeof startChrony>> | undefined;

beforeAll(async () => {
  await requireBinary('fping', 'fping');
  influx = await startTestInflux('collector');
  dir = tempDir('area');
  const ntpPort = 12100 + (process.pid % 800);
  chrony = await startChrony(dir.path, ntpPort);
  area = buildSimArea({
    dir: dir.path,
    influxUrl: influx.server.url,
    database: 'area',
    octet: OCTET,
    silent: [...DEFAULT_SILENT, LONER],
    httpListen: `127.0.0.1:${await freePort()}`,
    extraSettings: { ntp: { server: '127.0.0.1', port: ntpPort } },
  });
  [agents, loner] = await Promise.all([
    startSnmpsim({ dir: dir.path, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' }),
    (async () => {
      lonerDir = tempDir('loner');
      return startRouterAgent(lonerDir.path, `${area.devices.find((x) => x.id === LONER)!.address}:${area.snmpPort}`);
    })(),
  ]);
  config = loadConfig(area.settingsPath);
  collector = new Collector(config, log);
  await collector.prepare();
  await collector.checkClock();
  health = await startHealthServer(config.settings.http.listen, () => collector.health());
  healthUrl = `http://${config.settings.http.listen}/healthz`;
});

afterAll(async () => {
  health?.close();
  await collector?.stop();
  await agents?.stop();
  await loner?.stop();
  await chrony?.stop();
  await influx?.close();
  dir?.remove();
  lonerDir?.remove();
});

const q = (text: string) => influx.query('area', text);
const snmpDevices = () => config.devices.filter((d) => d.snmp);
const silent = new Set(DEFAULT_SILENT);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a full round of the simulated area', () => {
  it('polls every device once: SNMP answers land in InfluxDB, the silent ones as failures naming the timeout', async () => {
    const first = await collector.runRound(config.devices, 30_000, { jitter: false });
    expect(first.devices).toBe(65);
    expect(first.failed).toBe(silent.size);
    expect(first.polled).toBe(snmpDevices().length - silent.size);
    // Two devices time out (1 s × 2 tries); the round is not the sum of their waits.
    expect(first.durationMs).toBeLessThan(2000 + 1500);
    // Rates come from two samples; 4 s apart, the tens of milliseconds a loaded
    // machine puts between the agent's reading and our clock stay within 5%.
    await sleep(4000);
    const second = await collector.runRound(config.devices, 30_000, { jitter: false });
    expect(second.failed).toBe(silent.size);
    await collector.writer.flush();

    const up = await q(`SELECT last(snmp_up) AS up, last(error) AS error FROM device GROUP BY device`);
    expect(up).toHaveLength(snmpDevices().length);
    for (const row of up) {
      if (silent.has(String(row.device))) {
        expect(row.up).toBe(0);
        expect(String(row.error)).toMatch(/: get scalars: timeout after 2 tries of 1000 ms$/);
      } else expect(row.up, String(row.device)).toBe(1);
    }
  });

  it('writes the expected series: interfaces with rates, receivers, servers, ICMP for every device, its own figures', async () => {
    const wan = await q(`SELECT last(in_bps) AS in_bps FROM interface WHERE ifname = 'WAN' GROUP BY device`);
    const routers = config.devices.filter((d) => (d.kind === 'router' || d.kind === 'uplink') && !silent.has(d.id));
    expect(wan.map((r) => r.device).sort()).toEqual(routers.map((d) => d.id).sort());
    for (const r of wan) {
      expect(r.in_bps as number).toBeGreaterThan(simRate(3).in * 8 * 0.95);
      expect(r.in_bps as number).toBeLessThan(simRate(3).in * 8 * 1.05);
    }
    const receivers = await q(`SELECT last(lock) AS lock, last(signal_dbm) AS level FROM receiver GROUP BY device`);
    const snmpReceivers = config.devices.filter((d) => d.kind === 'dltv-receiver' && d.snmp && !silent.has(d.id));
    expect(receivers).toHaveLength(snmpReceivers.length);
    expect(receivers.every((r) => r.lock === 1 && r.level === -25)).toBe(true);
    const icmp = await q(`SELECT last(icmp_up) AS up, last(loss_pct) AS loss FROM icmp GROUP BY device`);
    expect(icmp).toHaveLength(65);
    expect(icmp.every((r) => r.up === 1 && r.loss === 0)).toBe(true);
    const disks = await q(`SELECT last(used_pct) FROM storage WHERE device = 'office-web' GROUP BY storage`);
    expect(disks.map((r) => r.storage)).toContain('/');
    const self = await q(`SELECT last(devices) AS devices, last(devices_failed) AS failed, last(icmp_hosts) AS hosts, last(clock_offset_ms) AS clock FROM klaiwatch`);
    expect(self[0]).toMatchObject({ devices: 65, failed: silent.size, hosts: 65 });
    expect(Math.abs(self[0]!.clock as number)).toBeLessThan(10);
    // Two rounds confirm every judged device up (the silent ones still answer
    // ping: reachable, their SNMP failing). Classroom receivers are judged only
    // while DLTV is on the air, so off the air (when this test may run) they stay unknown.
    const states = await q(`SELECT last(state) AS state, last(judged) AS judged FROM device_state GROUP BY device`);
    expect(states).toHaveLength(65);
    for (const r of states) {
      const kind = config.deviceById.get(String(r.device))!.kind;
      if (kind !== 'dltv-receiver') expect(r.judged, String(r.device)).toBe(1);
      expect(r.state, String(r.device)).toBe(r.judged === 1 ? 'up' : 'unknown');
    }
    const judged = states.filter((r) => r.judged === 1).length;
    // No device is down; the open incidents are threshold checks on the recorded servers' disks
    // (the Linux recording's /export is 94% full, the Windows one's C: 96%).
    const open = collector.store!.openIncidents();
    expect(open.every((i) => i.check !== '')).toBe(true);
    expect(open.map((i) => `${i.device} ${i.check}`)).toContain('office-web storage.used_pct:/export');
    expect(open.map((i) => `${i.device} ${i.check}`)).not.toContain('office-web storage.used_pct:/');
    const areaState = await q(`SELECT last(devices_up) AS up, last(devices_unknown) AS unknown, last(incidents_open) AS open FROM area_state`);
    expect(areaState[0]).toMatchObject({ up: judged, unknown: 65 - judged, open: open.length });
    const schools = await q(`SHOW TAG VALUES FROM icmp WITH KEY = school_name`);
    expect(schools.map((r) => r.value)).toContain('โรงเรียนบ้านหนองบัวแดง');
  });

  it('serves GET /healthz with its own figures', async () => {
    const res = await fetch(healthUrl);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body).toMatchObject({ status: 'ok', instance: 'sim', devices: 65, icmp: { prober: 'fping' }, influx: { database: 'area', points_dropped: 0, spool_bytes: 0 } });
    expect(body.influx.version).toMatch(/^1\.6/);
    expect(body.clock).toMatchObject({ server: '127.0.0.1', stratum: 10, limit_ms: 10 });
    expect(Math.abs(body.clock.offsetMs)).toBeLessThan(10);
    expect(body.influx.points_written).toBeGreaterThan(500);
    expect(body.rounds['30s']).toMatchObject({ devices: 65, failed: silent.size });
    expect((await fetch(healthUrl.replace('/healthz', '/nothing'))).status).toBe(404);
  });

  it('a device that stops answering mid-run fails alone, without delaying the round', async () => {
    loner.pause();
    try {
      const r = await collector.runRound(config.devices, 30_000, { jitter: false });
      expect(r.results.filter((x) => !x.ok).map((x) => x.device).sort()).toEqual([...silent, LONER].sort());
      expect(r.durationMs).toBeLessThan(2000 + 1500);
      expect(collector.status.get(LONER)!.snmp).toMatchObject({ ok: false, error: expect.stringMatching(/timeout after 2 tries/) });
    } finally {
      loner.resume();
    }
    const back = await collector.runRound(config.devices, 30_000, { jitter: false });
    expect(back.results.find((x) => x.device === LONER)!.ok).toBe(true);
  });

  it('InfluxDB stopped during rounds and restarted: every point arrives, none twice', async () => {
    await collector.writer.flush();
    const [{ count: before }] = (await q(`SELECT count(snmp_up) FROM device`)) as [{ count: number }];
    await influx.server.stop();
    const down1 = await collector.runRound(config.devices, 30_000, { jitter: false });
    const down2 = await collector.runRound(config.devices, 30_000, { jitter: false });
    await collector.writer.flush();
    expect(collector.writer.stats.spoolLines).toBe(down1.points.length + down2.points.length);
    const h = (await (await fetch(healthUrl)).json()) as Record<string, any>;
    expect(h.status).toBe('degraded');
    expect(h.influx.last_error).toMatch(/ECONNREFUSED/);
    await influx.server.start();
    const end = Date.now() + 30_000;
    while (collector.writer.stats.spoolLines > 0 && Date.now() < end) await sleep(200);
    expect(collector.writer.stats.spoolLines).toBe(0);
    const [{ count: after }] = (await q(`SELECT count(snmp_up) FROM device`)) as [{ count: number }];
    expect(after - before).toBe(2 * snmpDevices().length);
    expect(collector.writer.stats.dropped).toBe(0);
  });

  it('klaiwatch poll --once prints what would be written and writes nothing', async () => {
    const [{ count: before }] = (await q(`SELECT count(snmp_up) FROM device`)) as [{ count: number }];
    const { stdout, stderr } = await run(process.execPath, ['bin/klaiwatch.ts', 'poll', '--once', '--config', area.settingsPath, '--device', '1036090101-router', '--device', '1036090101-dltv-1']);
    const lines = stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('interface,')).length).toBe(12);
    expect(lines.some((l) => /^receiver,.*lock=1i,signal_dbm=-25/.test(l))).toBe(true);
    expect(lines.some((l) => /^icmp,.*device=1036090101-router.*icmp_up=1i/.test(l))).toBe(true);
    expect(stderr).toMatch(/# 2 devices: 2 answered SNMP, 0 failed/);
    let code = 0;
    let err = '';
    try {
      await run(process.execPath, ['bin/klaiwatch.ts', 'poll', '--once', '--no-icmp', '--config', area.settingsPath, '--device', DEFAULT_SILENT[0]!]);
    } catch (e) {
      code = (e as { code: number }).code;
      err = (e as { stderr: string }).stderr;
    }
    expect(code).toBe(2);
    expect(err).toMatch(/# school 1036090119 router 1036090119-router 127\.61\.19\.1: get scalars: timeout after 2 tries of 1000 ms/);
    await sleep(1500);
    const [{ count: after }] = (await q(`SELECT count(snmp_up) FROM device`)) as [{ count: number }];
    expect(after).toBe(before);
  });

  it('klaiwatch run: polls on schedule, serves /healthz, and stops cleanly on SIGTERM', async () => {
    const settings = parse(readFileSync(area.settingsPath, 'utf8')) as Record<string, any>;
    const port = await freePort();
    settings.http = { listen: `127.0.0.1:${port}` };
    settings.instance = 'run-test';
    settings.spool = { dir: join(dir.path, 'run-spool') };
    settings.alerts = { state_db: join(dir.path, 'run-state.sqlite') };
    settings.polling.interval = '3s';
    settings.log = { level: 'info' };
    const file = join(dir.path, 'run.yaml');
    writeFileSync(file, stringify(settings));
    const child = spawn(process.execPath, ['bin/klaiwatch.ts', 'run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      let body: Record<string, any> | undefined;
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        body = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.json() as Promise<Record<string, any>>).catch(() => undefined);
        if (body?.parts?.collector?.rounds?.['3s']) break;
        await sleep(250);
      }
      // Under `run` the collector is a part (a process of its own); /healthz shows it under parts.
      expect(body!.parts.collector).toMatchObject({ instance: 'run-test', devices: 65, rounds: { '3s': { devices: 65, failed: silent.size } }, restarts: 0 });
      expect(log).toMatch(/klaiwatch running/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(log).toMatch(/"signal":"SIGTERM".*"msg":"stopping"/);
    const rows = await q(`SELECT count(round_ms) FROM klaiwatch WHERE instance = 'run-test'`);
    expect(rows[0]!.count).toBeGreaterThanOrEqual(1);
  });
});
