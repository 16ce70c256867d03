// A maintenance window laid over an outage that is already open (issue 17's
// review: down → maintenance → down read as two outages and a repair). A real
// collector on a simulated area (snmpsimd, fping, influxd on 127.186.0.0/16):
// school 2's router is watched over SNMP only and its agent is silent, so it
// is down; a window is made over it in the state database by another
// connection (as the API does) and ended early; the outage must stay ONE
// incident, still open, with no repair, in the state database, in InfluxDB's
// incident points and in the report's figures (which take the window's time
// out of observed time, so it is not downtime).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { createWindow, endWindow } from '../../stores/maintenance.ts';
import type { Config } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import { makeReport } from '../../report/report.ts';
import { renderHtml } from '../../report/render.ts';
import type { TestInflux } from '../helpers/influx.ts';
import { tempDir } from '../helpers/peers.ts';
import { startCollectorArea, type CollectorArea } from '../helpers/collector-area.ts';

const MIN = 60_000;
const DAY = 86_400_000;
const OCTET = 186;
const DOWN_SCHOOL = '1036090102';
const DOWN_ROUTER = `${DOWN_SCHOOL}-router`;
const OFFICER = { id: 'tok-1', name: 'เจ้าหน้าที่ไอที' };
/** A Bangkok calendar day, `days` from now, as the report's range wants it. */
const bangkokDay = (days: number) => new Date(Date.now() + 7 * 3_600_000 + days * DAY).toISOString().slice(0, 10);

describe('an outage under a maintenance window laid over it', () => {
  let ca: CollectorArea | undefined;
  let influx: TestInflux | undefined;
  let dir: ReturnType<typeof tempDir> | undefined;
  let config: Config;
  let collector: Collector | undefined;
  // The API's own connection to the state database the collector made.
  let api: DatabaseSync | undefined;

  beforeAll(async () => {
    ca = await startCollectorArea({ octet: OCTET, name: 'maintout', schools: 3, downRouter: DOWN_ROUTER });
    ({ influx, dir, config, collector, api } = ca);
  }, 120_000);

  afterAll(async () => {
    await ca?.close();
  });

  const round = () => collector!.runRound(config.devices, 30_000, { jitter: false });
  const stateOf = (id: string) => collector!.engine!.states.get(id)?.state;
  const outagesOf = (id: string) => collector!.store!.incidents().filter((i) => i.device === id && i.check === '');

  it('stays one open incident through the window and after it, with no repair in the store, InfluxDB or the report', async () => {
    const confirm = config.settings.alerts.confirm_default;
    const touched: { opened: number[]; closed: number[] } = { opened: [], closed: [] };
    const keep = (r: Awaited<ReturnType<typeof round>>) => {
      touched.opened.push(...r.opened.filter((i) => i.device === DOWN_ROUTER).map((i) => i.id));
      touched.closed.push(...r.closed.filter((i) => i.device === DOWN_ROUTER).map((i) => i.id));
    };
    for (let i = 0; i < confirm; i++) keep(await round());
    expect(stateOf(DOWN_ROUTER)).toBe('down');
    const [first, ...none] = outagesOf(DOWN_ROUTER);
    expect(none).toEqual([]);
    expect(first).toMatchObject({ state: 'down', endedAt: null });

    // The reviewer's steps: a window from now for 20 minutes, ended early.
    const start = Date.now();
    const w = createWindow(api!, config, { devices: [DOWN_ROUTER], start, end: start + 20 * MIN, reason: 'server work' }, OFFICER, start);
    for (let i = 0; i < confirm; i++) keep(await round());
    expect(stateOf(DOWN_ROUTER)).toBe('maintenance');
    // The window did not repair it: the same incident, still open.
    expect(outagesOf(DOWN_ROUTER)).toEqual([first]);
    const ended = endWindow(api!, w.id, OFFICER, Date.now());
    const after: string[] = [];
    for (let i = 0; i < confirm; i++) {
      const r = await round();
      keep(r);
      after.push(...r.notices.filter((n) => n.text.includes(DOWN_ROUTER)).map((n) => n.subject));
    }
    expect(stateOf(DOWN_ROUTER)).toBe('down');
    // No second "down" notice for the outage that went on (the second review saw one, dated the window's end),
    // and the device's state keeps the outage's start.
    expect(after).toEqual([]);
    expect(collector!.engine!.states.get(DOWN_ROUTER)!.since).toBe(first!.startedAt);
    // Still the one outage: not closed at the window's start, no second one after it.
    expect(outagesOf(DOWN_ROUTER)).toEqual([first]);
    expect(touched).toEqual({ opened: [first!.id], closed: [] });

    // The dashboard counts InfluxDB's incident points: one opened, none closed.
    await collector!.writer.flush();
    const pts = await influx!.query('maintout', `SELECT sum("opened") AS opened, sum("closed") AS closed FROM "incident" WHERE "device" = '${DOWN_ROUTER}'`);
    expect(Number(pts[0]?.opened ?? 0)).toBe(1);
    expect(Number(pts[0]?.closed ?? 0)).toBe(0);

    // The report: one outage, open, no repair time; the window out of observed time, all the rest of it down.
    const { report } = await makeReport(config, { period: `${bangkokDay(-1)}..${bangkokDay(1)}`, noInflux: true, stateDb: join(dir!.path, 'state.sqlite') });
    const school = report.schools.find((s) => s.code === DOWN_SCHOOL)!;
    expect({ outages: school.outages, openNow: school.openNow, repaired: school.repaired, mttrS: school.mttrS }).toEqual({ outages: 1, openNow: 1, repaired: 0, mttrS: null });
    const device = report.devices.find((d) => d.device === DOWN_ROUTER)!;
    expect(device.maintenanceS).toBeCloseTo((ended.until - ended.start) / 1000, 3);
    expect(device.observedS).toBeGreaterThan(0);
    expect(device.downS).toBeCloseTo(device.observedS, 3);
    expect(device.availabilityPct).toBe(0);
    const html = renderHtml(report);
    const rows = html.match(new RegExp(`<tr data-incident="\\d+"><td>[^<]*</td><td>${DOWN_ROUTER}</td>.*?</tr>`, 'g')) ?? [];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain('ยังไม่แก้ไข');
  }, 180_000);
});
