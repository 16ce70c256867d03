// The evaluation figures, checked to the second against incident histories
// built by hand: outages across the period's edges, an outage half inside a
// maintenance window, outages of a receiver outside broadcast time, a lock
// failure, and a router outage that left its receivers unreachable. The
// school calendar is the shipped one (config/calendar/2569.yaml): November
// 2026 has 21 school days (the 2nd to the 30th, weekdays, no holiday), six
// one-hour broadcast periods each.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadConfig, type Config } from '../../config/load.ts';
import { Calendar } from '../../config/calendar.ts';
import { StateStore, type Incident, type Monitoring } from '../../stores/state.ts';
import { computeReport, totalLabelOf } from '../../report/figures.ts';
import { parsePeriod, PeriodError } from '../../report/period.ts';
import { tempDir } from '../helpers/peers.ts';

const dir = tempDir('report-figures');
let config: Config;
let calendars: Calendar[];

/** A local (Asia/Bangkok) time. */
const at = (local: string) => Date.parse(`${local}:00+07:00`);
const H = 3600;

let nextId = 1;
function incident(device: string, start: string, end: string | null, o: { state?: 'down' | 'unreachable'; check?: string; cause?: string } = {}): Incident {
  const startedAt = at(start);
  const endedAt = end === null ? null : at(end);
  const kind = device.startsWith('tv') ? 'dltv-receiver' : device === 's' ? 'server' : 'router';
  return { id: nextId++, device, check: o.check ?? '', school: device === 'r2' ? '200' : '100', kind, state: o.state ?? 'down', cause: o.cause ?? device, startedAt, endedAt, durationS: endedAt === null ? null : (endedAt - startedAt) / 1000 };
}

const INCIDENTS: Incident[] = [
  // The router: across the start of November, a plain one, one half inside maintenance, across the end, and one that cut off the receivers.
  incident('r', '2026-10-31T23:00', '2026-11-01T01:00'),
  incident('r', '2026-11-10T10:00', '2026-11-10T10:30:15'.slice(0, 16)),
  incident('r', '2026-11-20T19:00', '2026-11-20T23:00'),
  incident('r', '2026-11-30T22:00', '2026-12-01T02:00'),
  incident('r', '2026-11-12T10:00', '2026-11-12T12:00'),
  // The server: down since the 29th, still open.
  incident('s', '2026-11-29T08:00', null),
  // Receiver 1: down across the start of period 1, down on a Saturday, down after the last period, two lock failures, unreachable behind the router.
  incident('tv1', '2026-11-03T07:00', '2026-11-03T09:00'),
  incident('tv1', '2026-11-07T10:00', '2026-11-07T12:00'),
  incident('tv1', '2026-11-04T15:30', '2026-11-04T16:00'),
  incident('tv1', '2026-11-05T13:30', '2026-11-05T13:45', { check: 'receiver.lock' }),
  incident('tv1', '2026-11-06T09:30', '2026-11-06T09:33', { check: 'receiver.lock' }),
  incident('tv1', '2026-11-12T10:00', '2026-11-12T12:00', { state: 'unreachable', cause: 'r' }),
  incident('tv2', '2026-11-12T10:00', '2026-11-12T12:00', { state: 'unreachable', cause: 'r' }),
];
// The second incident ends at 10:30:15: 1,815 s.
INCIDENTS[1] = { ...INCIDENTS[1]!, endedAt: Date.parse('2026-11-10T10:30:15+07:00'), durationS: 1815 };

beforeAll(() => {
  writeFileSync(
    join(dir.path, 'schools.yaml'),
    [
      'schools:',
      '  - code: "100"',
      '    name_th: โรงเรียนบ้านทดสอบ',
      '    district: ภูเขียว',
      '    devices:',
      '      - { id: r, kind: router, address: 127.0.0.1, profile: icmp-only }',
      '      - { id: s, kind: server, address: 127.0.0.2, profile: icmp-only, parent: r }',
      '      - { id: tv1, kind: dltv-receiver, address: 127.0.0.3, profile: icmp-only, parent: r }',
      '      - { id: tv2, kind: dltv-receiver, address: 127.0.0.4, profile: icmp-only, parent: r }',
      '  - code: "200"',
      '    name_th: โรงเรียนบ้านเงียบ',
      '    district: ภักดีชุมพล',
      '    devices:',
      '      - { id: r2, kind: router, address: 127.0.0.5, profile: icmp-only }',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir.path, 'area.yaml'),
    [
      'area: { code: t, name_th: สพป.ทดสอบ }',
      'inventory: schools.yaml',
      'influx: { url: "http://127.0.0.1:9" }',
      'alerts:',
      '  maintenance:',
      '    - { schools: ["100"], start: "2026-11-20T18:00:00+07:00", end: "2026-11-20T22:00:00+07:00", reason: เปลี่ยนสายไฟเบอร์ }',
      '',
    ].join('\n'),
  );
  config = loadConfig(join(dir.path, 'area.yaml'));
  calendars = config.calendars.map((c) => new Calendar(c));
});

afterAll(() => dir.remove());

/** Watched throughout: every device from before the period, one run of rounds. */
const ALWAYS: Monitoring = { firstSeen: new Map(['r', 's', 'tv1', 'tv2', 'r2'].map((d) => [d, at('2026-01-01T00:00')])), runs: [[at('2026-01-01T00:00'), at('2027-12-31T00:00')]] };
const report = (spec: string, now = at('2026-12-05T12:00'), monitoring = ALWAYS) => computeReport({ config, incidents: INCIDENTS, monitoring, period: parsePeriod(spec, calendars, now), now });
const device = (r: ReturnType<typeof report>, id: string) => r.devices.find((d) => d.device === id)!;
const school = (r: ReturnType<typeof report>, code: string) => r.schools.find((s) => s.code === code)!;

describe('evaluation figures, to the second', () => {
  it('router: outages across both edges of the month, one half in maintenance, one that cut off its receivers', () => {
    const r = device(report('2026-11'), 'r');
    expect(r.scheduledS).toBe(30 * 24 * H);
    expect(r.maintenanceS).toBe(4 * H);
    expect(r.observedS).toBe(30 * 24 * H - 4 * H);
    // 00:00–01:00 on the 1st, 1,815 s on the 10th, 22:00–23:00 on the 20th (after maintenance), 22:00–24:00 on the 30th, 2 h on the 12th.
    expect(r.downS).toBe(H + 1815 + H + 2 * H + 2 * H);
    expect(r.availabilityPct).toBeCloseTo(((2_577_600 - 23_415) / 2_577_600) * 100, 10);
  });

  it('server: an outage still open is counted up to the end of the period, and is open now', () => {
    const rep = report('2026-11');
    expect(device(rep, 's').downS).toBe(40 * H);
    // Open at the end of November: the server's, and the router's that ended on 1 December.
    expect(school(rep, '100').openNow).toBe(2);
    expect(school(report('2026-12'), '100').openNow).toBe(1);
  });

  it('receiver: only broadcast time counts; unreachable time is neither up nor down', () => {
    const tv1 = device(report('2026-11'), 'tv1');
    expect(tv1.scheduledS).toBe(21 * 6 * H);
    expect(tv1.maintenanceS).toBe(0); // the window was in the evening
    // Behind the failed router on the 12th, 10:00–11:30 of broadcast time (the break starts at 11:30).
    expect(tv1.unreachableS).toBe(1.5 * H);
    expect(tv1.observedS).toBe(21 * 6 * H - 1.5 * H);
    // Only 08:30–09:00 of the morning outage on the 3rd; nothing of the Saturday or of after 15:30.
    expect(tv1.downS).toBe(1800);
    expect(tv1.availabilityPct).toBeCloseTo(((448_200 - 1800) / 448_200) * 100, 10);
  });

  it('DLTV readiness: classroom-periods up and locked, the unobserved one left out', () => {
    const rep = report('2026-11');
    // 126 periods; period 3 of the 12th was wholly unreachable (left out); period 2 half (kept, and ready).
    // Not ready: period 1 of the 3rd (down half of it), period 5 of the 5th (unlocked 15 min of 60).
    // Ready: period 2 of the 6th (unlocked 3 min of 60: under the 10 % allowed).
    expect(device(rep, 'tv1').readiness).toEqual({ periods: 125, ready: 123, excluded: 1, unobserved: 0, pct: (123 / 125) * 100 });
    expect(device(rep, 'tv2').readiness).toEqual({ periods: 125, ready: 125, excluded: 1, unobserved: 0, pct: 100 });
    expect(school(rep, '100').readiness).toEqual({ periods: 250, ready: 248, excluded: 2, unobserved: 0, pct: (248 / 250) * 100 });
    expect(school(rep, '200').readiness.pct).toBeNull();
  });

  it('outages, upstream outages, checks and mean time to repair of a school', () => {
    const s = school(report('2026-11'), '100');
    // Begun in November and touching observed time: router ×4 (10th, 12th, 20th, 30th), server, the receiver's morning outage.
    // Not: the router's of 31 October (begun before), the receiver's on Saturday and after 15:30 (off schedule).
    expect(s.outages).toBe(6);
    expect(s.upstream).toBe(2);
    // The lock failures are checks, in their own figures: 15 and 3 minutes, both fixed.
    expect(s.checks).toBe(2);
    expect(s.checksOpen).toBe(0);
    expect(s.checksRepaired).toBe(2);
    expect(s.checksMttrS).toBe((900 + 180) / 2);
    // Ended in November: the router's of the 1st (7,200 s whole), 10th (1,815), 12th (7,200), 20th (14,400); the receiver's of the 3rd (7,200).
    expect(s.repaired).toBe(5);
    expect(s.mttrS).toBe((7200 + 1815 + 7200 + 14400 + 7200) / 5);
    const observed = 2_577_600 * 2 + 448_200 * 2;
    expect(s.observedS).toBe(observed);
    expect(s.downS).toBe(23_415 + 40 * H + 1800);
    expect(s.availabilityPct).toBeCloseTo(((observed - s.downS) / observed) * 100, 10);
    expect(s.byKind.router!.availabilityPct).toBeCloseTo(((2_577_600 - 23_415) / 2_577_600) * 100, 10);
    expect(s.byKind['dltv-receiver']!.downS).toBe(1800);
  });

  it('the months either side take their share of the outages that crossed into them', () => {
    const oct = report('2026-10');
    expect(device(oct, 'r').downS).toBe(H); // 23:00–24:00 on the 31st
    expect(school(oct, '100').outages).toBe(1);
    expect(school(oct, '100').repaired).toBe(0); // it ended in November
    const dec = report('2026-12', at('2026-12-01T06:00'));
    expect(dec.countedTo).toBe(at('2026-12-01T06:00')); // the report is made before the month ends
    expect(device(dec, 'r').scheduledS).toBe(6 * H);
    expect(device(dec, 'r').downS).toBe(2 * H);
    expect(school(dec, '100').outages).toBe(0); // begun in November
    expect(school(dec, '100').repaired).toBe(1);
    expect(school(dec, '100').mttrS).toBe(4 * H);
  });

  it('area and district totals are the sums of their schools', () => {
    const rep = report('2026-11');
    expect(rep.totals.outages).toBe(6);
    expect(rep.totals.observedS).toBe(2_577_600 * 2 + 448_200 * 2 + 30 * 24 * H);
    expect(rep.totals.mttrS).toBe((7200 + 1815 + 7200 + 14400 + 7200) / 5);
    expect(rep.districts.map((d) => d.district)).toEqual(['ภักดีชุมพล', 'ภูเขียว']);
    expect(rep.districts[0]!.availabilityPct).toBe(100);
  });
});

describe('report periods', () => {
  const now = at('2026-11-24T10:00');
  it('months in either era, fiscal years, terms and ranges, with Thai names', () => {
    expect(parsePeriod('2569-11', calendars, now)).toMatchObject({ kind: 'month', label: 'เดือนพฤศจิกายน 2569', from: at('2026-11-01T00:00'), to: at('2026-12-01T00:00') });
    expect(parsePeriod('fy2570', calendars, now)).toMatchObject({ kind: 'fiscal-year', from: at('2026-10-01T00:00'), to: at('2027-10-01T00:00') });
    expect(parsePeriod('fy2027', calendars, now).from).toBe(at('2026-10-01T00:00'));
    expect(parsePeriod('term', calendars, now)).toMatchObject({ kind: 'term', label: 'ภาคเรียนที่ 2/2569', from: at('2026-11-01T00:00'), to: at('2027-04-01T00:00') });
    expect(parsePeriod('term:1/2569', calendars, now)).toMatchObject({ from: at('2026-05-16T00:00'), to: at('2026-10-11T00:00') });
    // Between the terms, "term" is the one that ended last.
    expect(parsePeriod('term', calendars, at('2026-10-20T10:00')).label).toBe('ภาคเรียนที่ 1/2569');
    expect(parsePeriod('2026-11-01..2026-11-07', calendars, now)).toMatchObject({ kind: 'range', from: at('2026-11-01T00:00'), to: at('2026-11-08T00:00') });
  });

  it('refuses what it cannot read, saying what it expected', () => {
    expect(() => parsePeriod('2026-13', calendars, now)).toThrow(/no month 13/);
    expect(() => parsePeriod('term:3/2569', calendars, now)).toThrow(/no such term; the calendars have ภาคเรียนที่ 1\/2569, ภาคเรียนที่ 2\/2569/);
    expect(() => parsePeriod('2026-02-30..2026-03-01', calendars, now)).toThrow(/not a day of the calendar/);
    expect(() => parsePeriod('last month', calendars, now)).toThrow(PeriodError);
  });
});

describe('only observed time counts (issue 16)', () => {
  // The collector's record, written by the real store: klaiwatch first ran on
  // Sunday 15 November at 14:00, a round every 5 minutes; stopped after the
  // round of Friday the 20th at 10:00 and started again a day later, at
  // 10:05 on Saturday the 21st; r2 was added to the inventory and first
  // polled on the 25th at midnight. A round covers its interval: the first
  // run is [15th 14:00, 20th 10:05), the gap exactly 86,400 s.
  const ROUND = 300_000;
  let monitoring: Monitoring;
  const store = () => new StateStore(join(dir.path, 'rounds.sqlite'));

  beforeAll(() => {
    const st = store();
    const first = ['r', 's', 'tv1', 'tv2'];
    for (let t = at('2026-11-15T14:00'); t <= at('2026-11-20T10:00'); t += ROUND) st.recordRound(t, ROUND, first);
    for (let t = at('2026-11-21T10:05'); t <= at('2026-12-05T11:55'); t += ROUND) st.recordRound(t, ROUND, t >= at('2026-11-25T00:00') ? [...first, 'r2'] : first);
    st.close();
    const ro = store();
    monitoring = ro.monitoring();
    ro.close();
  });

  it('the store keeps each device\'s first round and the runs of rounds', () => {
    expect(monitoring.runs).toEqual([
      [at('2026-11-15T14:00'), at('2026-11-20T10:05')],
      [at('2026-11-21T10:05'), at('2026-12-05T12:00')],
    ]);
    expect(monitoring.firstSeen.get('r')).toBe(at('2026-11-15T14:00'));
    expect(monitoring.firstSeen.get('r2')).toBe(at('2026-11-25T00:00'));
  });

  it('a month begun before klaiwatch and with a day stopped: figures to the second', () => {
    const rep = report('2026-11', at('2026-12-05T12:00'), monitoring);
    const r = device(rep, 'r');
    // Watched: 15th 14:00 – 20th 10:05 (417,900 s) and 21st 10:05 – 1 December 00:00 (827,700 s).
    expect(r.scheduledS).toBe(30 * 24 * H);
    expect(r.unmonitoredS).toBe(30 * 24 * H - 417_900 - 827_700);
    expect(r.coveragePct).toBeCloseTo(((417_900 + 827_700) / (30 * 24 * H)) * 100, 10);
    expect(r.monitoredFrom).toBe(at('2026-11-15T14:00'));
    // The maintenance window (20th, 18:00–22:00) and the router's outage of the 20th fell in the stopped day: neither counts.
    expect(r.maintenanceS).toBe(0);
    expect(r.observedS).toBe(417_900 + 827_700);
    // Only the outage across the month's end was watched: 22:00–24:00 on the 30th.
    expect(r.downS).toBe(2 * H);
    expect(r.availabilityPct).toBeCloseTo(((1_245_600 - 7200) / 1_245_600) * 100, 10);
    // The server, down from the 29th, watched throughout.
    expect(device(rep, 's').downS).toBe(40 * H);

    const s = school(rep, '100');
    // Outages begun in November that touched observed time: the router's of the 30th and the server's; the others before klaiwatch ran.
    expect(s.outages).toBe(2);
    expect(s.repaired).toBe(0);
    expect(s.mttrS).toBeNull();
    expect(s.openNow).toBe(2);
    expect(s.checks).toBe(0); // the lock failures were before klaiwatch ran
    expect(s.monitoredFrom).toBe(at('2026-11-15T14:00'));

    // r2: first polled on the 25th: six days of thirty.
    const r2 = device(rep, 'r2');
    expect(r2.observedS).toBe(6 * 24 * H);
    expect(r2.coveragePct).toBeCloseTo(20, 10);
    expect(school(rep, '200').monitoredFrom).toBe(at('2026-11-25T00:00'));
    expect(rep.totals.monitoredFrom).toBe(at('2026-11-15T14:00'));
  });

  it('DLTV readiness counts only the classroom-periods the collector watched', () => {
    const rep = report('2026-11', at('2026-12-05T12:00'), monitoring);
    // School days watched: 16–19, 23–27 and 30 (10 × 6 periods); on the 20th period 1 whole and period 2 for 35 of 60 minutes (kept), the other 4 not watched.
    expect(device(rep, 'tv1').readiness).toEqual({ periods: 62, ready: 62, excluded: 0, unobserved: 64, pct: 100 });
    const tv1 = device(rep, 'tv1');
    expect(tv1.scheduledS).toBe(21 * 6 * H);
    expect(tv1.observedS).toBe(61 * H + 35 * 60);
    expect(tv1.unmonitoredS).toBe(21 * 6 * H - (61 * H + 35 * 60));
  });

  it('a period with no observed time has no figure, never 100 %', () => {
    const oct = report('2026-10', at('2026-12-05T12:00'), monitoring);
    for (const g of [oct.totals, school(oct, '100'), school(oct, '200'), device(oct, 'r')]) {
      expect(g.observedS).toBe(0);
      expect(g.availabilityPct).toBeNull();
      expect(g.coveragePct).toBe(0);
      expect(g.monitoredFrom).toBeNull();
    }
    expect(oct.totals.readiness.pct).toBeNull();
    expect(oct.totals.readiness.periods).toBe(0);
    expect(oct.totals.outages).toBe(0); // the router's of the 31st: not watched
    // A state database from before the record (no rounds): nothing observed either.
    const none = report('2026-11', at('2026-12-05T12:00'), { firstSeen: new Map(), runs: [] });
    expect(none.totals.availabilityPct).toBeNull();
    expect(none.totals.readiness.periods).toBe(0);
    expect(none.totals.outages).toBe(0);
  });

  it('the fiscal year from 1 October counts only what was watched', () => {
    const now = at('2026-12-05T12:00');
    const fy = report('fy2570', now, monitoring);
    const nov = report('2026-11', now, monitoring);
    const dec = report('2026-12', now, monitoring);
    expect(fy.totals.readiness.periods).toBe(nov.totals.readiness.periods + dec.totals.readiness.periods);
    expect(fy.totals.observedS).toBe(nov.totals.observedS + dec.totals.observedS);
    expect(fy.totals.readiness.periods).toBeLessThan(fy.totals.readiness.periods + fy.totals.readiness.unobserved);
    expect(fy.totals.monitoredFrom).toBe(at('2026-11-15T14:00'));
  });

  it('rounds: a late round is no gap, a gap is one, the clock going back starts a run, and the runs are bounded', () => {
    const st = new StateStore(':memory:', { maxRoundRuns: 3 });
    const t0 = at('2026-11-01T00:00');
    st.recordRound(t0, 60_000, ['a']);
    st.recordRound(t0 + 110_000, 60_000, ['a']); // 50 s late: still one run
    st.recordRound(t0 + 300_000, 60_000, ['a', 'b']); // 130 s after the run's end: a gap
    expect(st.monitoring().runs).toEqual([
      [t0, t0 + 170_000],
      [t0 + 300_000, t0 + 360_000],
    ]);
    expect(st.monitoring().firstSeen).toEqual(new Map([['a', t0], ['b', t0 + 300_000]]));
    for (let k = 1; k <= 3; k++) st.recordRound(t0 + k * 3_600_000, 60_000, ['a']);
    const runs = st.monitoring().runs;
    expect(runs).toHaveLength(3); // the oldest went
    expect(runs[0]).toEqual([t0 + 3_600_000, t0 + 3_660_000]);
    st.recordRound(t0 - 86_400_000, 60_000, ['a']); // the clock stepped back a day: its own run, the oldest other goes
    st.recordRound(t0 - 86_340_000, 60_000, ['a']);
    expect(st.monitoring().runs).toEqual([
      [t0 - 86_400_000, t0 - 86_280_000],
      [t0 + 7_200_000, t0 + 7_260_000],
      [t0 + 10_800_000, t0 + 10_860_000],
    ]);
    st.close();
  });
});

describe('a shard\'s report says its total is the shard\'s, not the area\'s', () => {
  const run = promisify(execFile);
  const NOW = '2026-12-05T12:00:00+07:00';
  /** `klaiwatch report` in each format against settings with `extra` appended: the total row's label as each format gives it. */
  async function totals(name: string, extra: string): Promise<{ csv: string; json: string; html: string }> {
    const settings = join(dir.path, `${name}.yaml`);
    const base = readFileSync(join(dir.path, 'area.yaml'), 'utf8');
    writeFileSync(settings, `${base}${extra}`.replace('alerts:\n', `alerts:\n  state_db: ${name}.sqlite\n`));
    const st = new StateStore(join(dir.path, `${name}.sqlite`));
    for (let t = at('2026-11-01T00:00'); t < at('2026-11-02T00:00'); t += 300_000) st.recordRound(t, 300_000, ['r', 's', 'tv1', 'tv2', 'r2']);
    st.close();
    const out: Record<string, string> = {};
    for (const format of ['csv', 'json', 'html']) {
      const { stdout } = await run(process.execPath, ['bin/klaiwatch.ts', 'report', '--config', settings, '--period', '2026-11', '--now', NOW, '--no-influx', '--format', format]);
      out[format] = stdout;
    }
    const csv = out.csv!.slice(1).trimEnd().split('\r\n').at(-1)!.split(',')[1]!;
    const json = (JSON.parse(out.json!) as { totalLabel: string }).totalLabel;
    const html = /<tr data-school="total">.*?<td data-figure="name">([^<]*)<\/td>/s.exec(out.html!)![1]!;
    return { csv, json, html };
  }

  it('under collector.shard the total row is labelled as the shard\'s in HTML, CSV and JSON; without it, the whole area\'s', async () => {
    const shard = await totals('shard-1-2', 'collector: { shard: "1/2" }\n');
    const label = 'รวม (เฉพาะโรงเรียนของ collector นี้: shard 1/2)';
    expect(shard).toEqual({ csv: `${label} (สพป.ทดสอบ)`, json: label, html: label });
    const whole = await totals('whole', '');
    expect(whole).toEqual({ csv: 'รวมทั้งเขต (สพป.ทดสอบ)', json: 'รวมทั้งเขต', html: 'รวมทั้งเขต' });
  }, 60_000);

  it('a listed shard names its first five entries and how many more', () => {
    expect(totalLabelOf({ kind: 'list', names: ['ภูเขียว', '100'] })).toBe('รวม (เฉพาะโรงเรียนของ collector นี้: shard ภูเขียว, 100)');
    const many = Array.from({ length: 1000 }, (_, i) => String(1000 + i));
    expect(totalLabelOf({ kind: 'list', names: many })).toBe('รวม (เฉพาะโรงเรียนของ collector นี้: shard 1000, 1001, 1002, 1003, 1004 และอีก 995)');
    expect(totalLabelOf(undefined)).toBe('รวมทั้งเขต');
  });
});
