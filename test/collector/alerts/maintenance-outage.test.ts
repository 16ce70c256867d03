// The engine and the state store (real SQLite) on the example area when a
// maintenance window is laid over an outage already open: the window neither
// ends nor splits it. It goes on after the window while the device is still
// down, and ends at the first good result of the run that brings the device
// back, which may lie inside the window (the collector polls through it).
// A device that fails only inside a window still has no outage for it.
import { describe, it, expect } from 'vitest';
import { loadConfig, type Config } from '../../../config/load.ts';
import { Schedule } from '../../../config/calendar.ts';
import { StateEngine } from '../../../collector/alerts/state.ts';
import { type Raw } from '../../../stores/model.ts';
import { StateStore } from '../../../stores/state.ts';
import { computeReport } from '../../../report/figures.ts';

const base = loadConfig('config/examples/klaiwatch.yaml', { env: { KLAIWATCH_SCHOOL_COMMUNITY: 'x' } });
const T0 = Date.parse('2026-11-24T10:00:00+07:00'); // a Tuesday of term 2/2569
const MIN = 60_000;
const ROUTER = '1036090101-router';

/** The example area with one window over the router, [from, to) minutes after T0. */
function area(from: number, to: number) {
  const cfg: Config = { ...base, settings: { ...base.settings, alerts: { ...base.settings.alerts, maintenance: [{ devices: [ROUTER], schools: [], start: new Date(T0 + from * MIN).toISOString(), end: new Date(T0 + to * MIN).toISOString(), reason: 'งานเครื่องแม่ข่าย' }] } } };
  const store = new StateStore(':memory:');
  const engine = new StateEngine(cfg, new Schedule(cfg.calendars, cfg.settings.alerts), store.loadStates());
  const log = { opened: [] as number[], closed: [] as number[] };
  /** One round a minute, `minute` after T0, with the router's raw result; everything else answers. */
  const round = (minute: number, router: Raw) => {
    const t = T0 + minute * MIN;
    const raws = new Map<string, Raw>(cfg.devices.map((d) => [d.id, 'up']));
    raws.set(ROUTER, router);
    const transitions = engine.observe(raws, t);
    store.recordRound(t, MIN, raws.keys());
    const r = store.apply(cfg.devices, engine.states, transitions);
    log.opened.push(...r.opened.filter((i) => i.device === ROUTER).map((i) => i.id));
    log.closed.push(...r.closed.filter((i) => i.device === ROUTER).map((i) => i.id));
  };
  const outages = () => store.incidents().filter((i) => i.device === ROUTER && i.check === '');
  return { cfg, store, engine, round, log, outages };
}

describe('an outage under a maintenance window', () => {
  it('down → maintenance → down is one incident, still open, and ends when the device is back after the window', () => {
    const a = area(4, 10);
    for (let m = 0; m < 2; m++) a.round(m, 'up');
    for (let m = 2; m < 12; m++) a.round(m, 'down');
    expect(a.engine.states.get(ROUTER)!.state).toBe('down');
    expect(a.outages()).toEqual([expect.objectContaining({ startedAt: T0 + 2 * MIN, endedAt: null, state: 'down' })]);
    expect(a.log).toEqual({ opened: [a.outages()[0]!.id], closed: [] });
    for (let m = 12; m < 14; m++) a.round(m, 'up');
    expect(a.engine.states.get(ROUTER)!.state).toBe('up');
    // Ended at the first good result (+12), its repair time the whole of it, the window too.
    expect(a.outages()).toEqual([expect.objectContaining({ startedAt: T0 + 2 * MIN, endedAt: T0 + 12 * MIN, durationS: 600 })]);
    expect(a.log.closed).toEqual([a.outages()[0]!.id]);

    // The report over it: one outage, repaired once in 10 minutes; down 4 minutes (2–4 and 10–12), the window's 6 not downtime.
    const period = { spec: 'test', kind: 'range' as const, label: 'test', from: T0, to: T0 + 14 * MIN };
    const r = computeReport({ config: a.cfg, incidents: a.store.incidents(), monitoring: a.store.monitoring(), period, now: T0 + 14 * MIN });
    const school = r.schools.find((s) => s.code === '1036090101')!;
    expect({ outages: school.outages, openNow: school.openNow, repaired: school.repaired, mttrS: school.mttrS }).toEqual({ outages: 1, openNow: 0, repaired: 1, mttrS: 600 });
    const dev = r.devices.find((d) => d.device === ROUTER)!;
    expect({ maintenanceS: dev.maintenanceS, downS: dev.downS, observedS: dev.observedS }).toEqual({ maintenanceS: 360, downS: 240, observedS: 14 * 60 - 360 });
  });

  it('a device repaired inside the window: the outage ends at its first good result there, not at the window', () => {
    const a = area(4, 10);
    for (let m = 0; m < 2; m++) a.round(m, 'up');
    for (let m = 2; m < 6; m++) a.round(m, 'down');
    for (let m = 6; m < 12; m++) a.round(m, 'up');
    expect(a.engine.states.get(ROUTER)!.state).toBe('up');
    expect(a.outages()).toEqual([expect.objectContaining({ startedAt: T0 + 2 * MIN, endedAt: T0 + 6 * MIN, durationS: 240 })]);
    expect(a.log.opened).toHaveLength(1);
    expect(a.log.closed).toEqual(a.log.opened);
  });

  it('a device that fails only inside a window has no outage for it; still down after, its outage begins after the window', () => {
    const a = area(4, 10);
    for (let m = 0; m < 5; m++) a.round(m, 'up');
    for (let m = 5; m < 12; m++) a.round(m, 'down');
    expect(a.outages()).toEqual([expect.objectContaining({ startedAt: T0 + 10 * MIN, endedAt: null })]);
    const b = area(4, 10);
    for (let m = 0; m < 5; m++) b.round(m, 'up');
    for (let m = 5; m < 8; m++) b.round(m, 'down');
    for (let m = 8; m < 12; m++) b.round(m, 'up');
    expect(b.outages()).toEqual([]);
  });
});
