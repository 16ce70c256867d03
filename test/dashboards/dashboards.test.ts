// Every panel's query, run against a real InfluxDB (1.6, Debian) that a run
// of the simulated area filled: real snmpsimd agents serving recorded
// devices, real fping, one router paused and resumed so that an outage opens
// and closes, a real chronyd for the clock offset. No Grafana server can be
// installed here, so this is how each panel is known to work: its InfluxQL,
// with Grafana's macros and the template variables substituted, must parse,
// run and return series. The run happens on a school day inside a DLTV
// broadcast period (the test's Date is set there: the collector runs in this
// process), with the calendar's real schedule, so the DLTV panels are filled
// by what a school day gives them, not by a schedule of "always".
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import pino from 'pino';
import { buildSimArea, startRouterAgent, DEFAULT_SILENT, type SimArea } from '../../sim/area.ts';
import { startSnmpsim, type Snmpsim } from '../../sim/snmpsim.ts';
import { loadConfig, type Config } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import { TrafficService } from '../../archive/service.ts';
import { buildDashboards, writeDashboards, GRID_COLUMNS } from '../../dashboards/build.ts';
import { areaOf, type DashboardArea } from '../../dashboards/panels.ts';
import { Calendar } from '../../config/calendar.ts';
import { uplinkStats } from '../../stores/uplink.ts';
import { computeReport } from '../../report/figures.ts';
import { renderCsv, renderHtml } from '../../report/render.ts';
import { RAW_RP } from '../../stores/influx/setup.ts';
import { measurements } from '../../config/measurements.ts';
import { DEVICE_KINDS } from '../../config/schema.ts';
import { SNMP_ERROR_TH } from '../../config/thai.ts';
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
let sim: SimArea;
let agents: Snmpsim;
let loner: Snmpsim;
let chrony: Awaited<ReturnType<typeof startChrony>>;
let config: Config;
let area: DashboardArea;
/** The moment the simulated round ran: 09:00 on a school day, inside the first broadcast period. */
let T: number;
const DAY = 86_400_000;
const UPLINK_IF = 'WAN';
/** Points the test writes on the school's uplink before the run: 10 polls at 90 % in, to be counted above 80 %. */
const BUSY_POLLS = 10;

/** 09:00 local of the latest school day in the last 25 days (raw points are kept 30), else of the next one. */
function broadcastMoment(calendars: Calendar[], now: number): number {
  const offsets = [...Array.from({ length: 26 }, (_, i) => -i), ...Array.from({ length: 400 }, (_, i) => i + 1)];
  for (const k of offsets) {
    const t = now + k * DAY;
    const cal = calendars.find((c) => c.covers(t));
    if (!cal) continue;
    const periods = cal.broadcastPeriods(cal.dayStart(t));
    const at = periods[0] ? periods[0].start + 30 * 60_000 : undefined;
    if (at !== undefined && (k !== 0 || at < now)) return at;
  }
  throw new Error('no school day with broadcast periods in config/calendar within a year: add the next year\'s calendar');
}

beforeAll(async () => {
  await requireBinary('fping', 'fping');
  influx = await startTestInflux('dashboards');
  dir = tempDir('dash-area');
  lonerDir = tempDir('dash-loner');
  const ntpPort = 12900 + (process.pid % 800);
  chrony = await startChrony(dir.path, ntpPort);
  sim = buildSimArea({
    dir: dir.path,
    influxUrl: influx.server.url,
    database: 'dash',
    octet: OCTET,
    silent: [...DEFAULT_SILENT, LONER],
    // Watched over SNMP alone: the loner goes down when paused, and school 19's silent router is down throughout.
    snmpOnly: [LONER, '1036090119-router'],
    extraSettings: {
      ntp: { server: '127.0.0.1', port: ntpPort },
      // The calendar's own schedule: receivers are judged because the run is inside a broadcast period.
      alerts: { state_db: join(dir.path, 'state.sqlite') },
      // The traffic archive runs too, so the health dashboard's ingest panels have figures.
      traffic: { dir: join(dir.path, 'traffic'), signing_key: join(dir.path, 'signing.pem'), syslog: { udp: '127.0.0.1:0' } },
    },
  });
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  [agents, loner] = await Promise.all([
    startSnmpsim({ dir: dir.path, dataDir: sim.dataDir, endpoints: sim.endpoints, probeCommunity: 'router' }),
    startRouterAgent(lonerDir.path, `${sim.devices.find((d) => d.id === LONER)!.address}:${sim.snmpPort}`),
  ]);
  // Every school router's uplink is its WAN port (the inventory's uplink_if).
  const schoolsFile = join(dir.path, 'schools.yaml');
  const inv = parse(readFileSync(schoolsFile, 'utf8')) as { schools: { devices: { kind: string; uplink_if?: string }[] }[] };
  for (const s of inv.schools) for (const d of s.devices) if (d.kind === 'router') d.uplink_if = UPLINK_IF;
  writeFileSync(schoolsFile, stringify(inv, { lineWidth: 0 }));
  config = loadConfig(sim.settingsPath);
  area = areaOf(config);
  T = broadcastMoment(config.calendars.map((c) => new Calendar(c)), Date.now());
  // The test's clock (the collector runs in this process) at 09:00 of a school day; it moves on in real time.
  vi.useFakeTimers({ toFake: ['Date'], now: T, shouldAdvanceTime: true });
  const collector = new Collector(config, pino({ level: 'silent' }));
  await collector.prepare();
  // A busy half hour before the run (into the raw retention policy the collector set up): the school's uplink at 90 % in (100 Mbit/s port).
  const router = config.deviceById.get(`${SCHOOL}-router`)!;
  const esc = (v: string) => v.replace(/[,= ]/g, (c) => `\\${c}`);
  const busy = Array.from({ length: BUSY_POLLS }, (_, i) => `interface,school=${SCHOOL},school_name=${esc(router.school.name_th)},district=${esc(router.school.district)},device=${router.id},kind=router,ifname=${UPLINK_IF} in_bps=90000000,out_bps=1000000,speed_bps=100000000 ${(T - 30 * 60_000 + i * 30_000) * 1e6}`);
  const w = await fetch(`${influx.server.url}/write?db=dash&rp=${RAW_RP}`, { method: 'POST', body: busy.join('\n') });
  expect(w.status).toBe(204);
  await collector.checkClock();
  const round = () => collector.runRound(config.devices, 4000, { jitter: false });
  const traffic = new TrafficService(config, pino({ level: 'silent' }), () => collector.clockOffsetMs());
  await traffic.start();
  const trafficPoint = async () => collector.writePoints([{ measurement: 'traffic', tags: { instance: 'sim' }, fields: Object.fromEntries(Object.entries(await traffic.refreshStats()).filter(([k]) => Object.hasOwn(measurements.traffic.fields, k))), time: Date.now() }]);
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
    vi.useRealTimers();
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
  /** In a row that starts collapsed: figures only some devices of the kind have. */
  collapsed: boolean;
  query: InfluxQLQuery;
}

type AnyPanel = { type?: string; title?: string; collapsed?: boolean; gridPos?: { x: number; y: number; w: number; h: number }; panels?: AnyPanel[]; targets?: InfluxQLQuery[]; fieldConfig?: { defaults?: { links?: { url: string }[] }; overrides?: { matcher: { options: string }; properties: { id: string; value: unknown }[] }[] } };

/** Every panel, those inside collapsed rows too, with whether it is in one. */
function allPanels(d: { panels?: unknown[] }): { panel: AnyPanel; collapsed: boolean }[] {
  const out: { panel: AnyPanel; collapsed: boolean }[] = [];
  for (const p of (d.panels ?? []) as AnyPanel[]) {
    out.push({ panel: p, collapsed: false });
    for (const inner of p.panels ?? []) out.push({ panel: inner, collapsed: p.collapsed === true });
  }
  return out;
}

function panelQueries(): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const [name, d] of Object.entries(buildDashboards(area))) {
    for (const { panel: p, collapsed } of allPanels(d)) {
      if (p.type === 'row') continue;
      for (const query of p.targets ?? []) out.push({ dashboard: name, panel: p.title ?? '?', collapsed, query });
    }
  }
  return out;
}

/** Grafana's work before the query leaves: macros and template variables. The range is the hour around the run; now() is the run's end (the points are at T). */
function substitute(q: string, vars: Record<string, string>): string {
  const end = T + 10 * 60_000;
  let s = q.replace(/\$timeFilter/g, `time >= ${T - 3_600_000}ms AND time <= ${end}ms`).replace(/\$__interval/g, '5s').replace(/now\(\)/g, `${end}ms`);
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`$${k}`, v);
  if (/\$\w/.test(s)) throw new Error(`unsubstituted variable in: ${s}`);
  return s;
}

interface Answer {
  error?: string;
  series: number;
  columns: string[];
  rows: Record<string, unknown>[];
}

async function run(q: string): Promise<Answer> {
  const url = `${influx.server.url}/query?db=dash&epoch=ms&q=${encodeURIComponent(q)}`;
  const body = (await (await fetch(url)).json()) as { error?: string; results?: { error?: string; series?: { columns: string[]; tags?: Record<string, string>; values: unknown[][] }[] }[] };
  const r = body.results?.[0];
  const error = body.error ?? r?.error;
  const series = r?.series ?? [];
  const rows = series.flatMap((x) => x.values.map((v) => ({ ...x.tags, ...Object.fromEntries(x.columns.map((c, i) => [c, v[i]])) })));
  return { ...(error ? { error } : {}), series: series.length, columns: [...new Set(series.flatMap((x) => [...Object.keys(x.tags ?? {}), ...x.columns]))], rows };
}

type ValueMapping = { type: string; options: { pattern?: string; result?: { text?: string } } };
/** A property of a panel's override for one field (by name). */
function overrideOf(d: { panels?: unknown[] }, title: string, field: string, id: string): unknown {
  const panel = allPanels(d).find(({ panel }) => panel.title === title)?.panel;
  expect(panel, title).toBeDefined();
  return panel!.fieldConfig?.overrides?.find((o) => o.matcher.options === field)?.properties.find((x) => x.id === id)?.value;
}
/** A value's text under regex value mappings, as Grafana gives it: the first pattern (whole value, stringToJsRegex) that matches, its $N filled in. */
function mapped(mappings: ValueMapping[], value: string): string {
  for (const m of mappings) {
    if (m.type !== 'regex' || !m.options.pattern) continue;
    const re = m.options.pattern.startsWith('/') ? new RegExp(m.options.pattern.slice(1, m.options.pattern.lastIndexOf('/'))) : new RegExp(m.options.pattern);
    if (re.test(value)) return value.replace(re, m.options.result?.text ?? '');
  }
  return value;
}

/** Panels that show something only for a school that has it: the office has the failing checks (its disks over 90 %). */
const OPEN_CHECKS = 'ปัญหาที่ยังไม่แก้ไขตอนนี้ (อุปกรณ์ยังใช้งานได้)';
const PANEL_VARS: Record<string, Record<string, string>> = { [`school / ${OPEN_CHECKS}`]: { school: 'office' } };

// A device of each kind the simulated area has: a MikroTik router, a Linux server with LSI disks, a satellite receiver, the office's uplink.
const DEVICE_SAMPLES: Record<string, string> = { router: `${SCHOOL}-router`, server: `${SCHOOL}-server`, 'dltv-receiver': `${SCHOOL}-dltv-1`, uplink: 'office-uplink' };

describe('the dashboards', () => {
  it('type-check against the SDK and carry the klaiwatch data source on every query', () => {
    const qs = panelQueries();
    expect(qs.length).toBeGreaterThan(40);
    for (const { query, dashboard, panel } of qs) {
      expect(query.datasource, `${dashboard} / ${panel}`).toEqual(DATASOURCE);
      expect(query.rawQuery).toBe(true);
      expect(query.query).toMatch(/^SELECT /);
    }
    // Panel ids are unique per dashboard, those in collapsed rows too.
    for (const d of Object.values(buildDashboards(area))) {
      const ids = allPanels(d).map((p) => (p.panel as { id?: number }).id);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it('every panel of every dashboard fits the 24 columns, and no two overlap', () => {
    const problems: string[] = [];
    for (const [name, d] of Object.entries(buildDashboards(area))) {
      const placed = allPanels(d).map((p) => p.panel);
      for (const p of placed) {
        const g = p.gridPos!;
        if (!g || g.x < 0 || g.w < 1 || g.x + g.w > GRID_COLUMNS || g.h < 1) problems.push(`${name} / ${p.title}: ${JSON.stringify(g)}`);
      }
      for (let i = 0; i < placed.length; i++)
        for (let j = i + 1; j < placed.length; j++) {
          const a = placed[i]!.gridPos!;
          const b = placed[j]!.gridPos!;
          if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) problems.push(`${name}: "${placed[i]!.title}" ${JSON.stringify(a)} overlaps "${placed[j]!.title}" ${JSON.stringify(b)}`);
        }
    }
    expect(problems).toEqual([]);
  });

  it('every time series has a legend, a table with last, max and mean where many lines share it', () => {
    for (const [name, d] of Object.entries(buildDashboards(area)))
      for (const { panel } of allPanels(d)) {
        if (panel.type !== 'timeseries') continue;
        const legend = (panel as { options?: { legend?: { showLegend: boolean; displayMode: string; calcs: string[] } } }).options?.legend;
        expect(legend?.showLegend, `${name} / ${panel.title}`).toBe(true);
        if (legend!.displayMode === 'table') expect(legend!.calcs).toEqual(['lastNotNull', 'max', 'mean']);
        else expect(legend!.displayMode).toBe('list');
      }
  });

  it('every query of the area, school, DLTV, evaluation and health dashboards runs and returns series on a school day', async () => {
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
      if (dashboard.startsWith('device-')) continue;
      const text = substitute(query.query, { ...vars[dashboard]!, ...PANEL_VARS[`${dashboard} / ${panel}`] });
      const a = await run(text);
      ran++;
      if (a.error) failures.push(`${dashboard} / ${panel}: ${a.error}\n    ${text}`);
      else if (a.series === 0) failures.push(`${dashboard} / ${panel}: no series\n    ${text}`);
    }
    expect(failures).toEqual([]);
    expect(ran).toBeGreaterThan(25);
  });

  it('each kind\'s device dashboard: every panel outside the collapsed rows returns series for a device of that kind', async () => {
    const failures: string[] = [];
    let ran = 0;
    for (const [kind, device] of Object.entries(DEVICE_SAMPLES)) {
      const school = config.deviceById.get(device)!.school.code;
      for (const { panel, query, collapsed } of panelQueries().filter((q) => q.dashboard === `device-${kind}`)) {
        const a = await run(substitute(query.query, { school, device }));
        ran++;
        if (a.error) failures.push(`${kind} / ${panel}: ${a.error}`);
        else if (a.series === 0 && !collapsed) failures.push(`${kind} / ${panel}: no series for ${device}`);
      }
    }
    expect(failures).toEqual([]);
    expect(ran).toBeGreaterThan(20);
    // The kinds without a sample run their queries without error.
    for (const { panel, query, dashboard } of panelQueries().filter((q) => q.dashboard.startsWith('device-'))) expect((await run(substitute(query.query, { school: SCHOOL, device: 'nothing' }))).error, `${dashboard} / ${panel}`).toBeUndefined();
  });

  it('the evaluation queries also run on the 5-minute roll-ups', async () => {
    for (const { panel, query } of panelQueries().filter((q) => q.dashboard === 'evaluation')) {
      const a = await run(substitute(query.query, { rp: '"rollup_5m"' }));
      expect(a.error, panel).toBeUndefined();
    }
  });

  it('the open checks are listed on the area and school dashboards: the office disks over 90 %, with school, device, check, since and value', async () => {
    const table = (dash: string) => panelQueries().find((q) => q.dashboard === dash && q.panel.startsWith('ปัญหาที่ยังไม่แก้ไขตอนนี้'))!;
    const areaRows = (await run(substitute(table('area').query.query, {}))).rows;
    const disks = areaRows.filter((r) => String(r.check).startsWith('storage.used_pct'));
    expect(disks.length).toBeGreaterThan(0);
    for (const r of disks) {
      expect(Number(r.value)).toBeGreaterThan(90);
      expect(Number(r.since)).toBeGreaterThan(T - 60_000);
      expect(Number(r.since)).toBeLessThan(T + 10 * 60_000);
      expect(r.school_name).toBeTruthy();
      expect(r.device).toBeTruthy();
    }
    // Every row is a check failing in the collector's state database too.
    const states = areaRows.map((r) => `${r.device}#${r.check}`).sort();
    // (Tag values carry "/" for "\\": collector/influx/line.ts.)
    const db = new (await import('node:sqlite')).DatabaseSync(join(dir.path, 'state.sqlite'), { readOnly: true });
    const open = (db.prepare("SELECT device, check_name FROM incidents WHERE ended_at IS NULL AND check_name != ''").all() as { device: string; check_name: string }[]).map((r) => `${r.device}#${r.check_name.replace(/\\/g, '/')}`).sort();
    db.close();
    expect(states).toEqual(open);
    // What each check saw reads in Thai, its technical text kept in brackets (Grafana's regex mapping, as Grafana applies it).
    const detail = overrideOf(buildDashboards(area).area!, OPEN_CHECKS, 'detail', 'mappings') as ValueMapping[];
    for (const r of areaRows) {
      const shown = mapped(detail, String(r.detail));
      expect(shown, String(r.detail)).toMatch(/[\u0E00-\u0E7F]/);
      expect(shown).toContain(String(r.detail));
    }
    // The details the state database above has not: an SNMP error by its code in the mail's words, an uplink port, a value below its limit.
    expect(mapped(detail, 'get scalars: timeout after 2 tries of 1000 ms')).toBe(`SNMP: ${SNMP_ERROR_TH.timeout} (get scalars: timeout after 2 tries of 1000 ms)`);
    expect(mapped(detail, 'school 1036090101 dltv-receiver rx 10.36.1.9: wrong_community: get: the agent answered with another community')).toContain(SNMP_ERROR_TH.wrong_community!);
    expect(mapped(detail, 'ether1 WAN ifOperStatus 2')).toBe('พอร์ต ether1 WAN ไม่ทำงาน (ether1 WAN ifOperStatus 2)');
    expect(mapped(detail, 'lock = 0 (< 1)')).toBe('วัดได้ 0 ต่ำกว่าเกณฑ์ (lock = 0 (< 1))');
    expect(mapped(detail, 'used_pct C:\\ Label:  Serial Number 1a2b = 97.5 (> 90)')).toBe('วัดได้ 97.5 สูงกว่าเกณฑ์ (used_pct C:\\ Label:  Serial Number 1a2b = 97.5 (> 90))');
    expect(mapped(detail, 'SNMP does not answer')).toBe('SNMP ไม่ตอบ (SNMP does not answer)');
    // The school's table lists its own only.
    const office = disks[0]!.school as string;
    const schoolRows = (await run(substitute(table('school').query.query, { school: office }))).rows;
    expect(schoolRows.length).toBe(areaRows.filter((r) => r.school === office).length);
    expect((await run(substitute(table('school').query.query, { school: '1036090102' }))).rows.every((r) => r.school === '1036090102')).toBe(true);
  });

  it('uplink use: the busy half hour counts above 80 % on the school and evaluation dashboards and in the report; other schools sit at 16 %', async () => {
    const q = (dash: string, start: string) => panelQueries().find((x) => x.dashboard === dash && x.panel.startsWith(start))!.query.query;
    const evaluation = (await run(substitute(q('evaluation', 'การใช้ uplink'), { rp: 'raw' }))).rows;
    // Uplinks only: one row per school router, none for its other ports.
    expect(evaluation.every((r) => r.ifname === UPLINK_IF)).toBe(true);
    expect(new Set(evaluation.map((r) => r.school)).size).toBe(evaluation.length);
    const mine = evaluation.find((r) => r.school === SCHOOL)!;
    expect(Number(mine.in_p95)).toBeCloseTo(90, 5);
    expect(Number(mine.busy_pct)).toBeGreaterThan(0);
    const other = evaluation.find((r) => r.school === '1036090102')!;
    // The simulated WAN counts 16 Mbit/s in on a 100 Mbit/s port (a rate
    // between two samples timed on a loaded machine wanders a few points).
    expect(Number(other.in_p95)).toBeGreaterThan(12);
    expect(Number(other.in_p95)).toBeLessThan(30);
    expect(Number(other.busy_pct)).toBe(0);
    const daily = (await run(substitute(q('school', 'uplink รายวัน'), { school: SCHOOL }))).rows.filter((r) => r.busy_h !== null);
    expect(daily.length).toBeGreaterThan(0);
    expect(Number(daily[0]!.busy_h)).toBeGreaterThan(0);
    // The report: BUSY_POLLS points above 80 %, each one polling interval (30 s in the simulation).
    const stats = await uplinkStats(config, T - 3_600_000, T + 10 * 60_000, T + 10 * 60_000);
    expect(stats.get(SCHOOL)).toMatchObject({ device: `${SCHOOL}-router`, ifname: UPLINK_IF, source: 'raw' });
    expect(stats.get(SCHOOL)!.hoursBusy).toBeCloseTo((BUSY_POLLS * 30) / 3600, 6);
    expect(stats.get('1036090102')!.hoursBusy).toBe(0);
    expect(stats.get('1036090102')!.inP95Pct).toBeLessThan(30);
    // The printed report: a row per school with an uplink, and three CSV columns.
    const period = { spec: 'test', kind: 'range' as const, label: 'ช่วงทดสอบ', from: T - 3_600_000, to: T + 10 * 60_000 };
    const report = computeReport({ config, incidents: [], monitoring: { firstSeen: new Map(), runs: [] }, period, now: T + 10 * 60_000, uplinks: stats });
    const html = renderHtml(report);
    const row = new RegExp(`<tr data-uplink="${SCHOOL}">.*?</tr>`).exec(html)?.[0] ?? '';
    expect(row).toContain(`<td>${UPLINK_IF}</td>`);
    expect(/data-figure="uplinkInP95">([\d.]+)</.exec(row)?.[1]).toBe(stats.get(SCHOOL)!.inP95Pct!.toFixed(1));
    expect(/data-figure="uplinkHoursBusy">([\d.]+)</.exec(row)?.[1]).toBe(((BUSY_POLLS * 30) / 3600).toFixed(1));
    expect(html.match(/<tr data-uplink=/g)).toHaveLength(stats.size);
    const csv = renderCsv(report).split('\r\n');
    const header = csv[0]!.split(',');
    const col = header.indexOf('uplink p95 ขาเข้า (% ของความเร็ว)');
    expect(col).toBeGreaterThan(0);
    expect(csv.find((l) => l.startsWith(`${SCHOOL},`))!.split(',')[col]).toBe(stats.get(SCHOOL)!.inP95Pct!.toFixed(1));
  });

  it('series and columns have Thai names, the technical code beside them: the health dashboard, the device error panel, the uplink table', () => {
    const built = buildDashboards(area);
    const thai = /[\u0E00-\u0E7F]/;
    const aliases = (d: { panels?: unknown[] }, title?: string) =>
      allPanels(d)
        .filter(({ panel }) => title === undefined || panel.title === title)
        .flatMap(({ panel }) => (panel.targets ?? []).flatMap((t) => [...String((t as { query?: string }).query ?? '').matchAll(/ AS "([^"]+)"/g)].map((m) => m[1]!)));
    const health = aliases(built.health!);
    expect(health.length).toBeGreaterThan(15);
    for (const a of health) expect(a, `health series ${a}`).toMatch(thai);
    expect(health).toContain('เขียนแล้ว (points_written)');
    const errors = aliases(built['device-router']!, 'ข้อผิดพลาดและการทิ้งแพ็กเก็ต');
    expect(errors).toHaveLength(4);
    for (const a of errors) expect(a).toMatch(/^[\u0E00-\u0E7F].* \((in|out)_(errors|discards)\)$/);
    const uplinkTitle = allPanels(built.evaluation!).find(({ panel }) => panel.title?.startsWith('การใช้ uplink ของโรงเรียน'))!.panel.title!;
    expect(overrideOf(built.evaluation!, uplinkTitle, 'ifname', 'displayName')).toBe('พอร์ต');
  });

  it('data links go from the area map and tables to the school dashboard and from the school to the device dashboards, with fields the queries return', async () => {
    const built = buildDashboards(area);
    const uids = new Set(Object.values(built).map((d) => d.uid));
    const found: { dashboard: string; panel: string; url: string }[] = [];
    for (const [name, d] of Object.entries(built))
      for (const { panel } of allPanels(d)) {
        const links = [...(panel.fieldConfig?.defaults?.links ?? []), ...(panel.fieldConfig?.overrides ?? []).flatMap((o) => o.properties.filter((x) => x.id === 'links').flatMap((x) => x.value as { url: string }[]))];
        for (const l of links) found.push({ dashboard: name, panel: panel.title ?? '?', url: l.url });
        // Grafana substitutes a field's display value into ${__data.fields.NAME}: a field a link reads must have no value mapping
        // (else the Thai kind เราเตอร์ would go into the dashboard's address), unless the link says .raw explicitly.
        // (A panel-wide mapping, such as the map's state colours, maps only the state codes it names, no school code or kind.)
        const mapped = new Set((panel.fieldConfig?.overrides ?? []).filter((o) => o.properties.some((x) => x.id === 'mappings' && Array.isArray(x.value) && x.value.length > 0)).map((o) => o.matcher.options));
        for (const l of links)
          for (const m of l.url.matchAll(/\$\{__data\.fields\.(\w+)(\.raw)?\}/g)) {
            if (m[2]) continue;
            expect(mapped.has(m[1]!), `${name} / ${panel.title}: the link reads ${m[1]}, a field with a value mapping (its display text, not its value): ${l.url}`).toBe(false);
          }
      }
    expect(found.some((l) => l.dashboard === 'area' && l.panel.startsWith('แผนที่') && l.url.startsWith('/d/klaiwatch-school/'))).toBe(true);
    expect(found.filter((l) => l.dashboard === 'area' && l.url.startsWith('/d/klaiwatch-school/')).length).toBeGreaterThanOrEqual(4);
    expect(found.some((l) => l.dashboard === 'school' && l.url.startsWith('/d/klaiwatch-device-'))).toBe(true);
    const queries = panelQueries();
    for (const l of found) {
      const uid = /^\/d\/([^/]+)\//.exec(l.url)?.[1];
      const targets = uid?.includes('${__data.fields.kind_code}') ? DEVICE_KINDS.map((k) => uid.replace('${__data.fields.kind_code}', k)) : [uid];
      for (const t of targets) expect(uids.has(t!), `${l.dashboard} / ${l.panel}: ${l.url}`).toBe(true);
      expect(l.url).toMatch(/[?&]var-school=/);
      if (uid?.startsWith('klaiwatch-device-')) expect(l.url).toMatch(/[?&]var-device=\$\{__data\.fields\.device\}/);
      // Every field the link reads is a column of its panel's answer.
      const fields = [...l.url.matchAll(/\$\{__data\.fields\.(\w+)\}/g)].map((m) => m[1]!);
      const q = queries.find((x) => x.dashboard === l.dashboard && x.panel === l.panel)!;
      const a = await run(substitute(q.query.query, { school: SCHOOL, rp: 'raw', ifname: '.*', device: `${SCHOOL}-router`, ...PANEL_VARS[`${l.dashboard} / ${l.panel}`] }));
      for (const f of fields) expect(a.columns, `${l.dashboard} / ${l.panel} reads ${f}`).toContain(f);
      // The kind a device link reads is the raw code, a dashboard that exists, on every row the panel answers.
      if (fields.includes('kind_code')) {
        expect(a.rows.length, `${l.dashboard} / ${l.panel} has rows`).toBeGreaterThan(0);
        for (const r of a.rows as Record<string, unknown>[]) {
          expect(r.kind_code, `${l.dashboard} / ${l.panel}: ${JSON.stringify(r)}`).toBe(r.kind);
          expect(uids.has(`klaiwatch-device-${String(r.kind_code)}`), `${l.dashboard} / ${l.panel}: ${JSON.stringify(r)}`).toBe(true);
        }
      }
    }
  });

  it('the school picker shows Thai names and carries the codes; the device pickers list the devices of their kind', async () => {
    const built = buildDashboards(area);
    const school = built.school!.templating!.list!.find((v) => v.name === 'school')!;
    expect(school.type).toBe('custom');
    const options = school.options as { text: string; value: string }[];
    expect(options.map((o) => o.value).sort()).toEqual(config.schools.map((s) => s.code).sort());
    for (const o of options) expect(o.text).toBe(config.schools.find((s) => s.code === o.value)!.name_th);
    expect(String(school.query)).toContain(`${config.schools[1]!.name_th} : ${config.schools[1]!.code}`);
    expect(built.dltv!.templating!.list!.find((v) => v.name === 'school')!.includeAll).toBe(true);
    for (const [kind, device] of Object.entries(DEVICE_SAMPLES)) {
      const v = built[`device-${kind}`]!.templating!.list!.find((x) => x.name === 'device')!;
      const school = config.deviceById.get(device)!.school.code;
      const url = `${influx.server.url}/query?db=dash&q=${encodeURIComponent(substitute(String(v.query), { school }))}`;
      const body = (await (await fetch(url)).json()) as { results: { series?: { values: [string, string][] }[] }[] };
      const values = (body.results[0]!.series?.[0]?.values ?? []).map((x) => x[1]);
      expect(values, kind).toContain(device);
      for (const id of values) expect(config.deviceById.get(id)!.kind, id).toBe(kind);
    }
    const ifname = built.school!.templating!.list!.find((v) => v.name === 'ifname')!;
    const r = await run(substitute(String(ifname.query).replace(/^SHOW/, 'SHOW'), { school: SCHOOL }));
    expect(r.error).toBeUndefined();
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
      const { files } = writeDashboards(out.path, { ...config.settings.influx, username: 'grafana', password: 'env:GRAFANA_INFLUX_PASSWORD' }, area);
      const names = ['area', 'school', ...DEVICE_KINDS.map((k) => `device-${k}`), 'dltv', 'evaluation', 'health'];
      expect(files).toHaveLength(names.length + 2);
      const dashboards = readdirSync(join(out.path, 'dashboards'));
      expect(dashboards.sort()).toEqual(names.map((n) => `klaiwatch-${n}.json`).sort());
      for (const f of dashboards) expect(JSON.parse(readFileSync(join(out.path, 'dashboards', f), 'utf8')).uid).toBe(f.replace(/\.json$/, ''));
      const ds = parse(readFileSync(join(out.path, 'provisioning', 'datasources', 'klaiwatch.yaml'), 'utf8'));
      expect(ds.datasources[0]).toMatchObject({ uid: DATASOURCE.uid, type: 'influxdb', url: influx.server.url, user: 'grafana', jsonData: { dbName: 'dash', version: 'InfluxQL' }, secureJsonData: { password: '$GRAFANA_INFLUX_PASSWORD' } });
      const prov = parse(readFileSync(join(out.path, 'provisioning', 'dashboards', 'klaiwatch.yaml'), 'utf8'));
      expect(prov.providers[0].options.path).toBe(join(out.path, 'dashboards'));
    } finally {
      out.remove();
    }
  });
});
