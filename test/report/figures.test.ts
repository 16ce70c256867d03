// The evaluation figures, checked to the second against incident histories
// built by hand: outages across the period's edges, an outage half inside a
// maintenance window, outages of a receiver outside broadcast time, a lock
// failure, and a router outage that left its receivers unreachable. The
// school calendar is the shipped one (config/calendar/2569.yaml): November
// 2026 has 21 school days (the 2nd to the 30th, weekdays, no holiday), six
// one-hour broadcast periods each.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../config/load.ts';
import { Calendar } from '../../collector/alerts/schedule.ts';
import type { Incident } from '../../collector/alerts/store.ts';
import { computeReport } from '../../report/figures.ts';
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

const report = (spec: string, now = at('2026-12-05T12:00')) => computeReport({ config, incidents: INCIDENTS, period: parsePeriod(spec, calendars, now), now });
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
    expect(school(rep, '100').openNow).toBe(1);
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
    expect(device(rep, 'tv1').readiness).toEqual({ periods: 125, ready: 123, excluded: 1, pct: (123 / 125) * 100 });
    expect(device(rep, 'tv2').readiness).toEqual({ periods: 125, ready: 125, excluded: 1, pct: 100 });
    expect(school(rep, '100').readiness).toEqual({ periods: 250, ready: 248, excluded: 2, pct: (248 / 250) * 100 });
    expect(school(rep, '200').readiness.pct).toBeNull();
  });

  it('outages, upstream outages, checks and mean time to repair of a school', () => {
    const s = school(report('2026-11'), '100');
    // Begun in November and touching observed time: router ×4 (10th, 12th, 20th, 30th), server, the receiver's morning outage.
    // Not: the router's of 31 October (begun before), the receiver's on Saturday and after 15:30 (off schedule).
    expect(s.outages).toBe(6);
    expect(s.upstream).toBe(2);
    expect(s.checks).toBe(2);
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
