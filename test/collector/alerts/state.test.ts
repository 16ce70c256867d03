// States and incidents on the example area, with the real SQLite (node:sqlite).
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../../config/load.ts';
import { Schedule } from '../../../config/calendar.ts';
import { StateEngine } from '../../../collector/alerts/state.ts';
import { type Raw } from '../../../stores/model.ts';
import { StateStore } from '../../../stores/state.ts';
import { tempDir } from '../../helpers/peers.ts';

const dir = tempDir('state');
afterAll(() => dir.remove());
const config = loadConfig('config/examples/klaiwatch.yaml', { env: { KLAIWATCH_SCHOOL_COMMUNITY: 'x' } });
const bangkok = (local: string) => Date.parse(`${local}+07:00`);
const T0 = bangkok('2026-11-24T10:00:00'); // a Tuesday of term 2/2569, period 2
const MIN = 60_000;

function area(cfg: Config = config, file = ':memory:') {
  const store = new StateStore(file);
  const engine = new StateEngine(cfg, new Schedule(cfg.calendars, cfg.settings.alerts), store.loadStates());
  const round = (raws: Record<string, Raw>, t: number, allUp = true) => {
    const m = new Map<string, Raw>(allUp ? cfg.devices.map((d) => [d.id, 'up']) : []);
    for (const [k, v] of Object.entries(raws)) m.set(k, v);
    const transitions = engine.observe(m, t);
    return { transitions, ...store.apply(cfg.devices, engine.states, transitions) };
  };
  return { store, engine, round };
}

describe('device states', () => {
  it('changes state only after the result repeats (confirm 2), and records one incident from the first failed result to the first good one', () => {
    const { engine, store, round } = area();
    round({}, T0);
    round({}, T0 + MIN);
    expect(engine.states.get('1036090101-router')!.state).toBe('up');
    expect(round({ '1036090101-router': 'down' }, T0 + 2 * MIN).transitions.filter((t) => t.device === '1036090101-router')).toEqual([]);
    const second = round({ '1036090101-router': 'down' }, T0 + 3 * MIN);
    // The confirming round (+3 min) decides; the outage began at the first failed poll (+2 min).
    expect(second.transitions.find((t) => t.device === '1036090101-router')).toMatchObject({ from: 'up', to: 'down', cause: '1036090101-router', at: T0 + 2 * MIN, confirmedAt: T0 + 3 * MIN });
    expect(second.opened).toEqual([expect.objectContaining({ device: '1036090101-router', school: '1036090101', state: 'down', startedAt: T0 + 2 * MIN })]);
    expect(engine.states.get('1036090101-router')!.since).toBe(T0 + 2 * MIN);
    round({}, T0 + 4 * MIN);
    const back = round({}, T0 + 5 * MIN);
    expect(back.transitions.find((t) => t.device === '1036090101-router')).toMatchObject({ from: 'down', to: 'up', at: T0 + 4 * MIN, confirmedAt: T0 + 5 * MIN });
    expect(back.closed).toEqual([expect.objectContaining({ device: '1036090101-router', startedAt: T0 + 2 * MIN, endedAt: T0 + 4 * MIN, durationS: 120 })]);
    expect(store.openIncidents()).toEqual([]);
  });

  it('a failed office uplink: it is down, everything behind it is unreachable with the uplink as cause', () => {
    const { engine, round } = area();
    round({}, T0);
    round({}, T0 + MIN);
    const all = Object.fromEntries(config.devices.map((d) => [d.id, 'down' as Raw]));
    round(all, T0 + 2 * MIN);
    const r = round(all, T0 + 3 * MIN);
    expect(engine.states.get('office-uplink')).toMatchObject({ state: 'down', cause: 'office-uplink' });
    const others = config.devices.filter((d) => d.id !== 'office-uplink');
    for (const d of others) expect(engine.states.get(d.id), d.id).toMatchObject({ state: 'unreachable', cause: 'office-uplink' });
    expect(r.opened.filter((i) => i.state === 'down').map((i) => i.device)).toEqual(['office-uplink']);
    expect(engine.behind('office-uplink')).toEqual({ devices: others.length, schools: 21, notJudged: 0 });
    expect(engine.behind('1036090101-router')).toEqual({ devices: 4, schools: 1, notJudged: 0 });
  });

  it('"behind it" is what this round judged unreachable: a server that still answers is not counted, receivers outside broadcast hours are "not judged"', () => {
    const { engine, round } = area();
    const evening = bangkok('2026-11-24T18:00:00'); // receivers are not judged after lessons
    round({}, evening);
    round({}, evening + MIN);
    // The router's agent is silent; the server behind it still answers (another path), the receivers are off.
    const out = { '1036090101-router': 'down' as Raw, '1036090101-dltv-1': 'down' as Raw, '1036090101-dltv-2': 'down' as Raw, '1036090101-dltv-3': 'down' as Raw };
    round(out, evening + 2 * MIN);
    round(out, evening + 3 * MIN);
    expect(engine.states.get('1036090101-router')!.state).toBe('down');
    expect(engine.states.get('1036090101-server')!.state).toBe('up');
    expect(engine.behind('1036090101-router')).toEqual({ devices: 0, schools: 0, notJudged: 3 });
    // In school hours the same outage, server included: all four behind it are unreachable.
    const { engine: day, round: dayRound } = area();
    dayRound({}, T0);
    dayRound({}, T0 + MIN);
    const all = { ...out, '1036090101-server': 'down' as Raw };
    dayRound(all, T0 + 2 * MIN);
    dayRound(all, T0 + 3 * MIN);
    expect(day.behind('1036090101-router')).toEqual({ devices: 4, schools: 1, notJudged: 0 });
  });

  it('a classroom receiver switched off after lessons raises nothing', () => {
    const { engine, round } = area();
    const evening = bangkok('2026-11-24T17:00:00');
    round({}, evening - 2 * MIN);
    const r1 = round({ '1036090101-dltv-1': 'down' }, evening);
    const r2 = round({ '1036090101-dltv-1': 'down' }, evening + MIN);
    expect(engine.states.get('1036090101-dltv-1')).toMatchObject({ state: 'unknown', judged: false });
    expect([...r1.opened, ...r2.opened]).toEqual([]);
    // The next morning, still off once lessons start: now it is down.
    const morning = bangkok('2026-11-25T08:30:00');
    round({ '1036090101-dltv-1': 'down' }, morning);
    expect(engine.states.get('1036090101-dltv-1')!.state).toBe('down');
  });

  it('a device in a maintenance window is "maintenance", and so is what is down behind it', () => {
    const cfg: Config = { ...config, settings: { ...config.settings, alerts: { ...config.settings.alerts, maintenance: [{ devices: ['1036090101-router'], schools: [], start: new Date(T0).toISOString(), end: new Date(T0 + 60 * MIN).toISOString(), reason: 'ย้ายตู้' }] } } };
    const { engine, round } = area(cfg);
    const down = { '1036090101-router': 'down' as Raw, '1036090101-dltv-1': 'down' as Raw };
    round(down, T0 + MIN);
    const r = round(down, T0 + 2 * MIN);
    expect(engine.states.get('1036090101-router')!.state).toBe('maintenance');
    expect(engine.states.get('1036090101-dltv-1')!.state).toBe('maintenance');
    expect(r.opened).toEqual([]);
  });

  it('marks a device that keeps changing as flapping', () => {
    const cfg: Config = { ...config, settings: { ...config.settings, alerts: { ...config.settings.alerts, confirm_default: 1 } } };
    const { engine, round } = area(cfg);
    for (let i = 0; i < 7; i++) round({ '1036090102-router': i % 2 === 0 ? 'down' : 'up' }, T0 + i * MIN);
    expect(engine.states.get('1036090102-router')!.flapping).toBe(true);
    for (let i = 0; i < 3; i++) round({}, T0 + (90 + i) * MIN);
    expect(engine.states.get('1036090102-router')!.flapping).toBe(false);
  });

  it('an outage open when the collector stops is the same outage after it starts again', () => {
    const file = join(dir.path, 'state.sqlite');
    const first = area(config, file);
    first.round({}, T0);
    first.round({}, T0 + MIN);
    first.round({ '1036090103-router': 'down' }, T0 + 2 * MIN);
    expect(first.round({ '1036090103-router': 'down' }, T0 + 3 * MIN).opened).toHaveLength(1);
    first.store.close();

    const second = area(config, file);
    expect(second.engine.states.get('1036090103-router')!.state).toBe('down');
    expect(second.round({ '1036090103-router': 'down' }, T0 + 10 * MIN).opened).toEqual([]);
    second.round({}, T0 + 11 * MIN);
    const closed = second.round({}, T0 + 12 * MIN).closed;
    // Started at the first failed poll (+2 min), ended at the first good one (+11 min).
    expect(closed).toEqual([expect.objectContaining({ device: '1036090103-router', startedAt: T0 + 2 * MIN, endedAt: T0 + 11 * MIN, durationS: 9 * 60 })]);
    expect(second.store.incidents(T0, T0 + 60 * MIN)).toHaveLength(1);
    second.store.close();
  });
});

describe('after a parent comes back', () => {
  it('a device behind it that still fails is unknown until it has failed twice with its parent up: no false "down" from failures counted while unreachable', () => {
    const { engine, round } = area();
    round({}, T0);
    round({}, T0 + MIN);
    const both = { '1036090101-router': 'down' as Raw, '1036090101-dltv-1': 'down' as Raw };
    round(both, T0 + 2 * MIN);
    round(both, T0 + 3 * MIN);
    expect(engine.states.get('1036090101-dltv-1')!.state).toBe('unreachable');
    // The router answers again; the receiver not yet (its link is slower).
    round({ '1036090101-router': 'up', '1036090101-dltv-1': 'down' }, T0 + 4 * MIN);
    const back = round({ '1036090101-router': 'up', '1036090101-dltv-1': 'down' }, T0 + 5 * MIN);
    expect(engine.states.get('1036090101-router')!.state).toBe('up');
    expect(back.transitions.find((t) => t.device === '1036090101-dltv-1')).toMatchObject({ from: 'unreachable', to: 'unknown' });
    expect(back.closed.map((i) => i.device).sort()).toEqual(['1036090101-dltv-1', '1036090101-router']);
    // Still failing with its router up (at +5 min and +6 min): now it is down on its own.
    const own = round({ '1036090101-dltv-1': 'down' }, T0 + 6 * MIN);
    expect(own.opened).toEqual([expect.objectContaining({ device: '1036090101-dltv-1', state: 'down', cause: '1036090101-dltv-1' })]);
  });
});
