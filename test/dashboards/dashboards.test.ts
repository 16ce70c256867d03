// Every panel's query, run against a real InfluxDB (1.6, Debian) that a run
// of the simulated area filled: real snmpsimd agents serving recorded
// devices, real fping, one router paused and resumed so that an outage opens
// and closes, a real chronyd for the clock offset. No Grafana server can be
// installed here, so this is how each panel is known to work: its InfluxQL,
// with Grafana's macros and the template variables substituted, must parse,
// run and return series.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { parse } from 'yaml';
import pino from 'pino';
import { buildSimArea, startRouterAgent, DEFAULT_SILENT, type SimArea } from '../../sim/area.ts';
import { startSnmpsim, type Snmpsim } from '../../sim/snmpsim.ts';
import { loadConfig, type Config } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import { TrafficService } from '../../archive/service.ts';
import { buildDashboards, writeDashboards } from '../../dashboards/build.ts';
import { DATASOURCE, type InfluxQLQuery } from '../../dashboards/influxql.ts';
import { startTestInflux, type TestInflux } from '../helpers/influx.ts';
import { tempDir, requireBinary } from '../helpers/peers.ts';
import { startChrony } from '../helpers/chrony.ts';

const OCTET = 71;
const LONER = '1036090103-router';
const SCHOOL = '1036090101';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const execFileAsync = promisify(execFile);

let influx: TestInflux;
let dir: ReturnType<typeof tempDir>;
let lonerDir: ReturnType<typeof tempDir>;
let area: SimArea;
let agents: Snmpsim;
let loner: Snmpsim;
let chrony: Awaited<ReturnType<typeof startChrony>>;
let config: Config;

beforeAll(async () => {
  await requireBinary('fping', 'fping');
  influx = await startTestInflux('dashboards');
  dir = tempDir('dash-area');
  lonerDir = tempDir('dash-loner');
  const ntpPort = 12900 + (process.pid % 800);
  chrony = await startChrony(dir.path, ntpPort);
  area = buildSimArea({
    dir: dir.path,
    influxUrl: influx.server.url,
    database: 'dash',
    octet: OCTET,
    silent: [...DEFAULT_SILENT, LONER],
    // Watched over SNMP alone: the loner goes down when paused, and school 19's silent router is down throughout.
    snmpOnly: [LONER, '1036090119-router'],
    extraSettings: {
      ntp: { server: '127.0.0.1', port: ntpPort },
      // Receivers judged whatever the hour the suite runs at, so DLTV panels have judged points.
      alerts: { state_db: join(dir.path, 'state.sqlite'), schedule: { 'dltv-receiver': 'always' } },
      // The traffic archive runs too, so the health dashboard's ingest panels have figures.
      traffic: { dir: join(dir.path, 'traffic'), signing_key: join(dir.path, 'signing.pem'), syslog: { udp: '127.0.0.1:0' } },
    },
  });
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  [agents, loner] = await Promise.all([
    startSnmpsim({ dir: dir.path, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' }),
    startRouterAgent(lonerDir.path, `${area.devices.find((d) => d.id === LONER)!.address}:${area.snmpPort}`),
  ]);
  config = loadConfig(area.settingsPath);
  const collector = new Collector(config, pino({ level: 'silent' }));
  await collector.prepare();
  await collector.checkClock();
  const round = () => collector.runRound(config.devices, 4000, { jitter: false });
  const traffic = new TrafficService(config, pino({ level: 'silent' }), () => collector.clockOffsetMs());
  await traffic.start();
  const trafficPoint = async () => collector.writePoints([{ measurement: 'traffic', tags: { instance: 'sim' }, fields: { ...(await traffic.refreshStats()) }, time: Date.now() }]);
  const udpPort = Number(traffic.bound['syslog-udp']!.split(':').pop());
  const sendLogs = () => execFileAsync('logger', ['--server', '127.0.0.1', '--port', String(udpPort), '--udp', '-t', 'dhcpd', 'DHCPACK on 10.36.1.50 to aa:bb:cc:00:11:22 via eth0']);
  try {
    // Two rounds for rates and confirmed states; two with one router silent
    // (an outage opens); two with it back (the outage closes, with a duration).
    await round();
    await sendLogs();
    await trafficPoint();
    await sleep(4000);
    await round();
    await sendLogs();
    await traffic.seal();
    await trafficPoint();
    loner.pause();
    await round();
    await round();
    loner.resume();
    await sleep(1000);
    await round();
    await round();
    await sleep(2000);
    await collector.checkClock();
    await sendLogs();
    await sleep(200);
    await trafficPoint();
  } finally {
    loner.resume();
    await traffic.stop();
    await collector.stop();
  }
}, 300_000);

afterAll(async () => {
  await agents?.stop();
  await loner?.stop();
  await chrony?.stop();
  await influx?.close();
  dir?.remove();
  lonerDir?.remove();
});

interface PanelQuery {
  dashboard: string;
  panel: string;
  query: InfluxQLQuery;
}

function panelQueries(): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const [name, d] of Object.entries(buildDashboards())) {
    for (const p of d.panels ?? []) {
      if (p.type === 'row') continue;
      const targets = ((p as { targets?: InfluxQLQuery[] }).targets ?? []) as InfluxQLQuery[];
      for (const query of targets) out.push({ dashboard: name, panel: (p as { title?: string }).title ?? '?', query });
    }
  }
  return out;
}

/** Grafana's work before the query leaves: macros and template variables. */
function substitute(q: string, vars: Record<string, string>): string {
  let s = q.replace(/\$timeFilter/g, 'time >= now() - 1h').replace(/\$__interval/g, '5s');
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`$${k}`, v);
  if (/\$\w/.test(s)) throw new Error(`unsubstituted variable in: ${s}`);
  return s;
}

interface Answer {
  error?: string;
  series: number;
}

async function run(q: string): Promise<Answer> {
  const url = `${influx.server.url}/query?db=dash&epoch=ms&q=${encodeURIComponent(q)}`;
  const body = (await (await fetch(url)).json()) as { error?: string; results?: { error?: string; series?: unknown[] }[] };
  const r = body.results?.[0];
  const error = body.error ?? r?.error;
  return { ...(error ? { error } : {}), series: r?.series?.length ?? 0 };
}

// A MikroTik router, a Linux server with LSI disks, a satellite receiver, and the office's web server (the one whose agent reports memory).
const DEVICE_SAMPLES = [`${SCHOOL}-router`, `${SCHOOL}-server`, `${SCHOOL}-dltv-1`, 'office-web'];

describe('the dashboards', () => {
  it('type-check against the SDK and carry the klaiwatch data source on every query', () => {
    const qs = panelQueries();
    expect(qs.length).toBeGreaterThan(40);
    for (const { query, dashboard, panel } of qs) {
      expect(query.datasource, `${dashboard} / ${panel}`).toEqual(DATASOURCE);
      expect(query.rawQuery).toBe(true);
      expect(query.query).toMatch(/^SELECT /);
    }
    // Panel ids are unique per dashboard.
    for (const d of Object.values(buildDashboards())) {
      const ids = (d.panels ?? []).map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it('every query of the area, school, DLTV, evaluation and health dashboards runs and returns series', async () => {
    const vars: Record<string, Record<string, string>> = {
      area: {},
      school: { school: SCHOOL, ifname: '.*' },
      dltv: { school: '.*' },
      evaluation: { rp: 'raw' },
      health: {},
    };
    const failures: string[] = [];
    let ran = 0;
    for (const { dashboard, panel, query } of panelQueries()) {
      if (dashboard === 'device') continue;
      const text = substitute(query.query, vars[dashboard]!);
      const a = await run(text);
      ran++;
      if (a.error) failures.push(`${dashboard} / ${panel}: ${a.error}\n    ${text}`);
      else if (a.series === 0) failures.push(`${dashboard} / ${panel}: no series\n    ${text}`);
    }
    expect(failures).toEqual([]);
    expect(ran).toBeGreaterThan(25);
  });

  it('every device panel returns series for a router, a server or a satellite receiver of the simulated area', async () => {
    const failures: string[] = [];
    for (const { panel, query } of panelQueries().filter((q) => q.dashboard === 'device')) {
      const answers = await Promise.all(DEVICE_SAMPLES.map((device) => run(substitute(query.query, { school: SCHOOL, device }))));
      const errors = answers.filter((a) => a.error).map((a) => a.error);
      if (errors.length > 0) failures.push(`${panel}: ${errors.join('; ')}`);
      else if (answers.every((a) => a.series === 0)) failures.push(`${panel}: no series for any of ${DEVICE_SAMPLES.join(', ')}`);
    }
    expect(failures).toEqual([]);
  });

  it('the evaluation queries also run on the 5-minute roll-ups', async () => {
    for (const { panel, query } of panelQueries().filter((q) => q.dashboard === 'evaluation')) {
      const a = await run(substitute(query.query, { rp: '"rollup_5m"' }));
      expect(a.error, panel).toBeUndefined();
    }
  });

  it('the template variables list the schools, the devices and the router ports', async () => {
    const all = Object.values(buildDashboards()).flatMap((d) => d.templating?.list ?? []);
    const queries = all.filter((v) => v.type === 'query');
    expect(queries.map((v) => v.name).sort()).toEqual(['device', 'ifname', 'school', 'school', 'school'].sort());
    const values = async (v: (typeof queries)[number]) => {
      const url = `${influx.server.url}/query?db=dash&q=${encodeURIComponent(substitute(String(v.query), { school: SCHOOL }))}`;
      const body = (await (await fetch(url)).json()) as { results: { series?: { values: [string, string][] }[] }[] };
      return (body.results[0]!.series?.[0]?.values ?? []).map((x) => x[1]);
    };
    const byName = new Map(queries.map((v) => [v.name, v]));
    expect((await values(byName.get('school')!)).length).toBe(config.schools.length);
    expect(await values(byName.get('device')!)).toEqual(expect.arrayContaining(DEVICE_SAMPLES.slice(0, 3)));
    expect((await values(byName.get('ifname')!)).length).toBeGreaterThan(0);
  });

  it('the outage of the paused router is counted and timed in the evaluation figures', async () => {
    const closed = await influx.query('dash', `SELECT "duration_s", "cause" FROM "incident" WHERE "device" = '${LONER}' AND "closed" = 1`);
    expect(closed).toHaveLength(1);
    expect(Number(closed[0]!.duration_s)).toBeGreaterThan(0);
    expect(closed[0]!.cause).toBe(LONER);
    const map = await influx.query('dash', `SELECT last("state_code") AS "state_code", last("lat") AS "lat" FROM "school_state" WHERE "school" = '1036090119'`);
    expect(map[0]!.state_code).toBe(3); // its router is silent: the school is down
    expect(map[0]!.lat).toBeTypeOf('number');
  });

  it('`dashboards build` writes the JSON and provisioning files Grafana reads', () => {
    const out = tempDir('dash-out');
    try {
      const { files } = writeDashboards(out.path, { ...config.settings.influx, username: 'grafana', password: 'env:GRAFANA_INFLUX_PASSWORD' });
      expect(files).toHaveLength(8);
      const dashboards = readdirSync(join(out.path, 'dashboards'));
      expect(dashboards.sort()).toEqual(['area', 'device', 'dltv', 'evaluation', 'health', 'school'].map((n) => `klaiwatch-${n}.json`));
      for (const f of dashboards) expect(JSON.parse(readFileSync(join(out.path, 'dashboards', f), 'utf8')).uid).toMatch(/^klaiwatch-/);
      const ds = parse(readFileSync(join(out.path, 'provisioning', 'datasources', 'klaiwatch.yaml'), 'utf8'));
      expect(ds.datasources[0]).toMatchObject({ uid: DATASOURCE.uid, type: 'influxdb', url: influx.server.url, user: 'grafana', jsonData: { dbName: 'dash', version: 'InfluxQL' }, secureJsonData: { password: '$GRAFANA_INFLUX_PASSWORD' } });
      const prov = parse(readFileSync(join(out.path, 'provisioning', 'dashboards', 'klaiwatch.yaml'), 'utf8'));
      expect(prov.providers[0].options.path).toBe(join(out.path, 'dashboards'));
    } finally {
      out.remove();
    }
  });
});
