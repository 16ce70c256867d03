// A DLTV receiver down when the broadcast day ends: outside broadcast hours it is not judged (state
// "unknown"), and that must not read as a repair. The incident stays open overnight, goes on when the
// receiver is judged again and still down, and ends at the first good result of the run that brings it
// back. Before, the end of broadcast closed it (a 10-minute "repair" in the report) and the next morning
// opened a second outage.
import { describe, it, expect } from 'vitest';
import { loadConfig } from '../../../config/load.ts';
import { Schedule } from '../../../config/calendar.ts';
import { StateEngine } from '../../../collector/alerts/state.ts';
import { type Raw } from '../../../stores/model.ts';
import { StateStore } from '../../../stores/state.ts';
import { computeReport } from '../../../report/figures.ts';

const cfg = loadConfig('config/examples/klaiwatch.yaml', { env: { KLAIWATCH_SCHOOL_COMMUNITY: 'x' } });
const RECEIVER = '1036090101-dltv-1';
const MIN = 60_000;
const DAY = Date.parse('2026-11-24T06:00:00+07:00'); // a Tuesday of term 2/2569

describe('an outage across the end of broadcast hours', () => {
  it('is one incident through the night, ended by the first good result the next day; the report shows one outage and its whole repair time', () => {
    const schedule = new Schedule(cfg.calendars, cfg.settings.alerts);
    const receiver = cfg.deviceById.get(RECEIVER)!;
    // The broadcast day's end and the next day's start, from the schedule itself.
    // (the first gap of more than 6 hours between judged times: the night, not a lunch break)
    let end = DAY;
    let next = DAY;
    for (let guard = 0; guard < 10; guard++) {
      while (!schedule.judged(receiver, end)) end += MIN;
      while (schedule.judged(receiver, end)) end += MIN;
      next = end;
      while (!schedule.judged(receiver, next)) next += MIN;
      if (next - end > 6 * 3_600_000) break;
      end = next;
    }
    expect(next - end).toBeGreaterThan(6 * 3_600_000);

    const store = new StateStore(':memory:');
    const engine = new StateEngine(cfg, schedule, store.loadStates());
    const round = (t: number, receiverRaw: Raw) => {
      const raws = new Map<string, Raw>(cfg.devices.map((d) => [d.id, 'up']));
      raws.set(RECEIVER, receiverRaw);
      store.recordRound(t, 5 * MIN, raws.keys());
      store.apply(cfg.devices, engine.states, engine.observe(raws, t));
    };
    const failedAt = end - 30 * MIN;
    const backAt = next + 20 * MIN;
    for (let t = end - 60 * MIN; t < backAt + 15 * MIN; t += 5 * MIN) round(t, t >= failedAt && t < backAt ? 'down' : 'up');

    const outages = store.incidents().filter((i) => i.device === RECEIVER && i.check === '');
    expect(outages).toEqual([expect.objectContaining({ startedAt: failedAt, endedAt: backAt, durationS: (backAt - failedAt) / 1000 })]);
    const period = { spec: 'test', kind: 'range' as const, label: 'test', from: end - 60 * MIN, to: backAt + 15 * MIN };
    const r = computeReport({ config: cfg, incidents: store.incidents(), monitoring: store.monitoring(), period, now: backAt + 15 * MIN });
    const school = r.schools.find((s) => s.code === '1036090101')!;
    expect({ repaired: school.repaired, mttrS: school.mttrS }).toMatchObject({ repaired: 1, mttrS: (backAt - failedAt) / 1000 });
    expect(school.outages).toBe(1);
  });
});
