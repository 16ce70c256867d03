// Maintenance windows kept in the state database (stores/maintenance.ts):
// the store's rules on a real SQLite file (validation naming the field,
// ending, bounds, hostile rows), a property that what the collector reads at
// an instant is exactly the windows in force then, and a real collector on a
// simulated area (snmpsimd, fping, influxd on 127.173.0.0/16) that puts
// devices into "maintenance" during a window created in the store by another
// connection, as the API does, and back out when the window is ended.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { createWindow, endWindow, listWindows, getWindow, windowsBetween, ensureMaintenanceTable, MaintenanceError, MAX_WINDOWS, MAX_SPAN_MS, MAX_BACKDATE_MS, type Inventory, type NewWindow } from '../../stores/maintenance.ts';
import { Schedule } from '../../config/calendar.ts';
import type { Device, Settings, Config } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import type { TestInflux } from '../helpers/influx.ts';
import { tempDir } from '../helpers/peers.ts';
import { startCollectorArea, type CollectorArea } from '../helpers/collector-area.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.parse('2026-12-01T09:00:00+07:00');
const SEED = 20261201;
const FUZZ_RUNS = Number(process.env.KW_FUZZ_RUNS ?? '') || undefined;
const params = (numRuns: number): fc.Parameters<unknown> => (FUZZ_RUNS ? { seed: SEED, numRuns: FUZZ_RUNS } : { seed: SEED, numRuns, interruptAfterTimeLimit: 4000 });

/** A small inventory: three schools, a router each. */
const INVENTORY: Inventory = {
  schools: [{ code: 'S1' }, { code: 'S2' }, { code: 'S3' }],
  deviceById: new Map(['S1-router', 'S2-router', 'S3-router'].map((id) => [id, {}])),
};
const OFFICER = { id: 'tok-1', name: 'เจ้าหน้าที่ไอที' };

function freshDb(dir: string, name: string): DatabaseSync {
  const db = new DatabaseSync(join(dir, name));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  return db;
}

/** The MaintenanceError a call throws (the test fails when it throws nothing or something else). */
function refusal(f: () => unknown): MaintenanceError {
  try {
    f();
  } catch (err) {
    if (err instanceof MaintenanceError) return err;
    throw err;
  }
  throw new Error('expected a MaintenanceError, nothing was thrown');
}

describe('the maintenance window store', () => {
  let dir: ReturnType<typeof tempDir>;
  let db: DatabaseSync;
  beforeAll(() => {
    dir = tempDir('maint-store');
    db = freshDb(dir.path, 'state.sqlite');
  });
  afterAll(() => {
    db?.close();
    dir?.remove();
  });

  const ok = (w: Partial<NewWindow> = {}, now = T0) => createWindow(db, INVENTORY, { schools: ['S1'], start: T0, end: T0 + HOUR, reason: 'เปลี่ยนสวิตช์', ...w }, OFFICER, now);

  it('stores a window with who made it and reads it back', () => {
    const w = ok({ devices: ['S2-router', 'S2-router'], reason: '  ย้ายตู้แร็ค  ' }, T0 - MIN);
    expect(w).toMatchObject({ schools: ['S1'], devices: ['S2-router'], start: T0, end: T0 + HOUR, until: T0 + HOUR, reason: 'ย้ายตู้แร็ค', createdBy: OFFICER, createdAt: T0 - MIN, endedAt: null, endedBy: null });
    expect(getWindow(db, w.id)).toEqual(w);
    // Another connection (the collector's) sees it.
    const other = new DatabaseSync(join(dir.path, 'state.sqlite'), { readOnly: true });
    try {
      expect(windowsBetween(other, T0 + 10 * MIN, T0 + 10 * MIN + 1)).toContainEqual({ schools: ['S1'], devices: ['S2-router'], start: T0, end: T0 + HOUR, reason: 'ย้ายตู้แร็ค' });
    } finally {
      other.close();
    }
  });

  it('refuses bad windows naming the field and what is wrong', () => {
    const cases: [Partial<NewWindow>, string, RegExp][] = [
      [{ schools: [], devices: [] }, 'schools', /at least one school or device/],
      [{ schools: ['S1', 'S9'] }, 'schools.1', /schools\[1\]: no school "S9" in the inventory/],
      [{ devices: ['S1-router', 'nope-router'] }, 'devices.1', /devices\[1\]: no device "nope-router"/],
      [{ schools: [''] }, 'schools.0', /schools\[0\]: must be a school code/],
      [{ schools: ['x'.repeat(101)] }, 'schools.0', /1 to 100 characters/],
      [{ end: T0 }, 'end', /end: .* is not after start/],
      [{ end: T0 - 1 }, 'end', /is not after start/],
      [{ end: T0 + MAX_SPAN_MS + 1 }, 'end', /at most 31/],
      [{ start: T0 - MAX_BACKDATE_MS - 1 }, 'start', /more than 24 hours ago/],
      [{ start: Number.NaN }, 'start', /not a time/],
      [{ end: 1.5 }, 'end', /not a time/],
      [{ reason: '   ' }, 'reason', /must say why/],
      [{ reason: 'a'.repeat(501) }, 'reason', /501 characters; at most 500/],
      [{ reason: 'line one\nline two' }, 'reason', /control characters/],
      [{ schools: 'S1' as unknown as string[] }, 'schools', /must be a list/],
      [{ schools: Array.from({ length: 2001 }, () => 'S1') }, 'schools', /2001 entries; at most 2000/],
    ];
    const before = listWindows(db, { limit: 1000 }).length;
    for (const [w, field, message] of cases) {
      const e = refusal(() => ok(w));
      expect({ kind: e.kind, field: e.field }, JSON.stringify(w).slice(0, 80)).toEqual({ kind: 'invalid', field });
      expect(e.message).toMatch(message);
    }
    // Nothing refused was stored.
    expect(listWindows(db, { limit: 1000 })).toHaveLength(before);
  });

  it('ends a window: its effective end is the earlier of end and now; ending again or after it is over is a conflict', () => {
    const w = ok({ schools: ['S3'] });
    const ended = endWindow(db, w.id, { id: 'tok-2', name: 'หัวหน้า' }, T0 + 20 * MIN);
    expect(ended).toMatchObject({ id: w.id, end: T0 + HOUR, until: T0 + 20 * MIN, endedAt: T0 + 20 * MIN, endedBy: { id: 'tok-2', name: 'หัวหน้า' } });
    const again = refusal(() => endWindow(db, w.id, OFFICER, T0 + 30 * MIN));
    expect(again.kind).toBe('conflict');
    expect(again.message).toMatch(new RegExp(`window ${w.id} was already ended at .* by หัวหน้า`));
    const past = ok({ schools: ['S3'], start: T0, end: T0 + HOUR });
    const over = refusal(() => endWindow(db, past.id, OFFICER, T0 + HOUR));
    expect(over.kind).toBe('conflict');
    expect(over.message).toMatch(/is already over: it ended at 2026-12-01T03:00:00.000Z/);
    expect(getWindow(db, past.id)!.endedAt).toBeNull();
    const unknown = refusal(() => endWindow(db, 999_999, OFFICER, T0));
    expect(unknown).toMatchObject({ kind: 'not_found', message: 'no maintenance window 999999' });
  });

  it('cancels a window ended before it begins: readers skip it, the list still shows it', () => {
    const w = ok({ schools: ['S2'], start: T0 + 5 * HOUR, end: T0 + 6 * HOUR }, T0);
    const c = endWindow(db, w.id, OFFICER, T0 + HOUR);
    expect(c.until).toBeLessThan(c.start);
    expect(windowsBetween(db, T0, T0 + 24 * HOUR).some((x) => x.start === T0 + 5 * HOUR && x.schools.includes('S2'))).toBe(false);
    expect(listWindows(db, { limit: 1000 }).map((x) => x.id)).toContain(w.id);
  });

  it('lists by instant, by period and with a limit, newest start first', () => {
    const db2 = freshDb(dir.path, 'list.sqlite');
    try {
      expect(listWindows(db2)).toEqual([]); // no table yet: no window, no error
      const a = createWindow(db2, INVENTORY, { schools: ['S1'], start: T0, end: T0 + HOUR, reason: 'a' }, OFFICER, T0);
      const b = createWindow(db2, INVENTORY, { schools: ['S2'], start: T0 + 2 * HOUR, end: T0 + 3 * HOUR, reason: 'b' }, OFFICER, T0);
      const c = createWindow(db2, INVENTORY, { devices: ['S3-router'], start: T0 + 30 * MIN, end: T0 + 150 * MIN, reason: 'c' }, OFFICER, T0);
      expect(listWindows(db2).map((w) => w.id)).toEqual([b.id, c.id, a.id]);
      expect(listWindows(db2, { active: T0 + 45 * MIN }).map((w) => w.id)).toEqual([c.id, a.id]);
      expect(listWindows(db2, { active: T0 + HOUR }).map((w) => w.id)).toEqual([c.id]); // end is exclusive
      expect(listWindows(db2, { from: T0 + HOUR, to: T0 + 2 * HOUR }).map((w) => w.id)).toEqual([c.id]);
      expect(listWindows(db2, { from: T0 + 3 * HOUR })).toEqual([]);
      expect(listWindows(db2, { limit: 1 }).map((w) => w.id)).toEqual([b.id]);
      expect(listWindows(db2, { limit: 1e9 })).toHaveLength(3);
    } finally {
      db2.close();
    }
  });

  it('keeps at most MAX_WINDOWS: the oldest that are over make room; refuses when all are in force or to come', () => {
    const db3 = freshDb(dir.path, 'full.sqlite');
    try {
      ensureMaintenanceTable(db3);
      const fill = (start: number) => {
        const ins = db3.prepare("INSERT INTO maintenance_windows (schools, devices, start, end_at, until, reason, created_by, created_by_id, created_at) VALUES ('[\"S1\"]', '[]', ?, ?, ?, 'fill', 'x', 'x', 0)");
        db3.exec('BEGIN');
        for (let i = 0; i < MAX_WINDOWS; i++) ins.run(start + i, start + i + MIN, start + i + MIN);
        db3.exec('COMMIT');
      };
      fill(T0 - 10 * HOUR); // all over by T0
      const w = createWindow(db3, INVENTORY, { schools: ['S1'], start: T0, end: T0 + HOUR, reason: 'new' }, OFFICER, T0);
      const n = () => Number((db3.prepare('SELECT count(*) AS n FROM maintenance_windows').get() as { n: number }).n);
      expect(n()).toBe(MAX_WINDOWS);
      expect(db3.prepare('SELECT min(start) AS s FROM maintenance_windows').get()).toEqual({ s: T0 - 10 * HOUR + 1 }); // the oldest went
      expect(getWindow(db3, w.id)?.reason).toBe('new');
      expect(windowsBetween(db3, 0, T0 + 2 * HOUR)).toHaveLength(MAX_WINDOWS); // the readers' bound
      db3.exec('DELETE FROM maintenance_windows');
      fill(T0 + HOUR); // all to come
      const full = refusal(() => createWindow(db3, INVENTORY, { schools: ['S1'], start: T0, end: T0 + HOUR, reason: 'one more' }, OFFICER, T0));
      expect(full.kind).toBe('full');
      expect(full.message).toMatch(/10000 windows are in force or to come \(at most 10000 are kept\); end some first/);
      expect(n()).toBe(MAX_WINDOWS);
    } finally {
      db3.close();
    }
  });

  it('reads a row edited by hand (not a JSON list) as naming nothing, and a database without the table as having no windows', () => {
    const db4 = freshDb(dir.path, 'edited.sqlite');
    try {
      expect(windowsBetween(db4, 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
      ensureMaintenanceTable(db4);
      db4.exec("INSERT INTO maintenance_windows (schools, devices, start, end_at, until, reason, created_by, created_by_id, created_at) VALUES ('{not json', '[1, \"S1-router\", null]', 0, 10, 10, 'x', 'x', 'x', 0)");
      expect(windowsBetween(db4, 0, 10)).toEqual([{ schools: [], devices: ['S1-router'], start: 0, end: 10, reason: 'x' }]);
    } finally {
      db4.close();
    }
  });

  it('property: the schedule given windowsBetween(t, t + 1) puts a device in maintenance exactly when a stored window in force at t names it or its school', () => {
    const alerts = { schedule: {}, maintenance: [] } as unknown as Settings['alerts'];
    const devices = ['S1', 'S2', 'S3'].map((s) => ({ id: `${s}-router`, school: { code: s } }) as unknown as Device);
    let n = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            schools: fc.subarray(['S1', 'S2', 'S3']),
            devices: fc.subarray(['S1-router', 'S2-router', 'S3-router']),
            start: fc.integer({ min: 0, max: 20 }),
            len: fc.integer({ min: 1, max: 10 }),
            endAt: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
          }),
          { maxLength: 8 },
        ),
        fc.array(fc.integer({ min: -2, max: 32 }), { minLength: 1, maxLength: 10 }),
        (specs, instants) => {
          const pdb = new DatabaseSync(':memory:');
          try {
            const unit = MIN;
            for (const s of specs) {
              if (s.schools.length + s.devices.length === 0) continue;
              const w = createWindow(pdb, INVENTORY, { schools: s.schools, devices: s.devices, start: T0 + s.start * unit, end: T0 + (s.start + s.len) * unit, reason: 'p' }, OFFICER, T0);
              if (s.endAt !== undefined && T0 + s.endAt * unit < w.end) endWindow(pdb, w.id, OFFICER, T0 + s.endAt * unit);
            }
            const all = listWindows(pdb, { limit: 1000 });
            const schedule = new Schedule([], alerts);
            for (const k of instants) {
              const t = T0 + k * unit;
              schedule.setWindows(windowsBetween(pdb, t, t + 1));
              for (const d of devices) {
                const expected = all.some((w) => w.start <= t && t < w.until && (w.devices.includes(d.id) || w.schools.includes(d.school.code)));
                expect(schedule.maintenanceOf(d, t) !== undefined).toBe(expected);
                n++;
              }
            }
          } finally {
            pdb.close();
          }
        },
      ),
      params(200),
    );
    expect(n).toBeGreaterThan(0);
  });
});

// A real collector on a simulated area: the first three schools; school 2's
// router is watched over SNMP only and its agent is silent, so it is down.
const OCTET = 173;
const SCHOOL = '1036090101';
const DOWN_ROUTER = '1036090102-router';

describe('the collector reads the windows at each round', () => {
  let ca: CollectorArea | undefined;
  let influx: TestInflux | undefined;
  let config: Config;
  let collector: Collector | undefined;
  // The API's own connection to the state database the collector made.
  let api: DatabaseSync | undefined;

  beforeAll(async () => {
    ca = await startCollectorArea({ octet: OCTET, name: 'maint', schools: 3, downRouter: DOWN_ROUTER });
    ({ influx, config, collector, api } = ca);
  });

  afterAll(async () => {
    await ca?.close();
  });

  const round = () => collector!.runRound(config.devices, 30_000, { jitter: false });
  const stateOf = (id: string) => collector!.engine!.states.get(id)?.state;
  const openIncidentOf = (id: string) => collector!.store!.openIncidents().find((i) => i.device === id && i.check === '');

  it('a school and a device in a window are "maintenance" (no incident for the one that is down), and back after the window is ended', async () => {
    const now = Date.now();
    const w = createWindow(api!, config, { schools: [SCHOOL], devices: [DOWN_ROUTER], start: now - MIN, end: now + 2 * HOUR, reason: 'ย้ายตู้สื่อสาร' }, OFFICER, now);
    const schoolDevices = config.devices.filter((d) => d.school.code === SCHOOL).map((d) => d.id);
    expect(schoolDevices.length).toBeGreaterThan(1);
    const confirm = config.settings.alerts.confirm_default;
    let report;
    for (let i = 0; i < confirm; i++) report = await round();
    for (const id of [...schoolDevices, DOWN_ROUTER]) expect(stateOf(id), id).toBe('maintenance');
    expect(openIncidentOf(DOWN_ROUTER)).toBeUndefined();
    expect(report!.opened.filter((i) => i.device === DOWN_ROUTER)).toEqual([]);
    // A school outside the window is judged as ever.
    expect(stateOf('1036090103-router')).toBe('up');

    const endedAt = Date.now();
    endWindow(api!, w.id, OFFICER, endedAt);
    for (let i = 0; i < confirm; i++) await round();
    // Results kept counting during the window: the verdict is back at the first rounds after it.
    expect(stateOf(`${SCHOOL}-router`)).toBe('up');
    expect(stateOf(`${SCHOOL}-server`)).toBe('up');
    for (const id of schoolDevices) expect(stateOf(id), id).not.toBe('maintenance');
    expect(stateOf(DOWN_ROUTER)).toBe('down');
    const inc = openIncidentOf(DOWN_ROUTER);
    expect(inc).toBeDefined();
    // The outage begins after the window, not with the failed results inside it.
    expect(inc!.startedAt).toBeGreaterThanOrEqual(endedAt);
    // The state points in InfluxDB said "maintenance" while it lasted.
    await collector!.writer.flush();
    const points = await influx!.query('maint', `SELECT count("state_code") AS n FROM "device_state" WHERE "device" = '${DOWN_ROUTER}' AND "state" = 'maintenance'`);
    expect(Number(points[0]?.n ?? 0)).toBe(confirm);
  }, 120_000);
});
