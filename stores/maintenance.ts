// Maintenance windows kept in the state database (alerts.state_db, the
// SQLite file the collector writes, WAL), beside the settings' own
// (alerts.maintenance). The API creates, lists and ends them (officer only);
// the collector reads the ones in force at each round (one indexed query)
// and the report reads those of its period, so a window stays for the
// reports of the months it touched after it is over.
//
// A window is [start, until): `until` is its effective end, min(end,
// ended_at), kept as a column so "in force at t" and "overlapping a period"
// are one range on an index. Ending a window that has not begun cancels it
// (until ≤ start: it covers nothing and readers skip it).
import type { DatabaseSync } from 'node:sqlite';
import type { MaintenanceSpan } from '../config/calendar.ts';

const DAY = 86_400_000;

/** At most this many windows are kept and read (when full, the oldest that are over go first). */
export const MAX_WINDOWS = 10_000;
/** The longest window. */
export const MAX_SPAN_MS = 31 * DAY;
/** How long before it is made a window may begin (one declared late the same day); it changes figures already reported otherwise. */
export const MAX_BACKDATE_MS = DAY;
/** Schools plus devices named by one window. */
export const MAX_TARGETS = 2_000;
export const MAX_REASON_CHARS = 500;
/** Rows a list answers at most. */
export const MAX_LIST = 1_000;

export const MAINTENANCE_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS maintenance_windows (
     id INTEGER PRIMARY KEY AUTOINCREMENT, schools TEXT NOT NULL, devices TEXT NOT NULL,
     start INTEGER NOT NULL, end_at INTEGER NOT NULL, until INTEGER NOT NULL, reason TEXT NOT NULL,
     created_by TEXT NOT NULL, created_by_id TEXT NOT NULL, created_at INTEGER NOT NULL,
     ended_at INTEGER, ended_by TEXT, ended_by_id TEXT)`,
  'CREATE INDEX IF NOT EXISTS maintenance_windows_until ON maintenance_windows (until)',
];

/** Creates the table and its index if they are missing (the collector and the API both call it). */
export function ensureMaintenanceTable(db: DatabaseSync): void {
  for (const sql of MAINTENANCE_SCHEMA) db.exec(sql);
}

export interface Actor {
  /** The token's id. */
  id: string;
  /** The token's name. */
  name: string;
}

export interface MaintenanceWindow {
  id: number;
  schools: string[];
  devices: string[];
  start: number;
  end: number;
  /** The effective end: min(end, endedAt). */
  until: number;
  reason: string;
  createdBy: Actor;
  createdAt: number;
  endedAt: number | null;
  endedBy: Actor | null;
}

export interface NewWindow {
  schools?: readonly string[];
  devices?: readonly string[];
  start: number;
  end: number;
  reason: string;
}

/** What was refused and why; `field` names the input at fault. */
export class MaintenanceError extends Error {
  readonly kind: 'invalid' | 'not_found' | 'conflict' | 'full';
  readonly field: string | undefined;
  constructor(kind: MaintenanceError['kind'], message: string, field?: string) {
    super(message);
    this.kind = kind;
    this.field = field;
  }
}

/** What a window may name: the inventory's school codes and device ids. */
export interface Inventory {
  schools: readonly { code: string }[];
  deviceById: ReadonlyMap<string, unknown>;
}

interface Row {
  id: number;
  schools: string;
  devices: string;
  start: number;
  end_at: number;
  until: number;
  reason: string;
  created_by: string;
  created_by_id: string;
  created_at: number;
  ended_at: number | null;
  ended_by: string | null;
  ended_by_id: string | null;
}

/** A JSON list of codes as written by create(); anything else (an edited file) reads as empty. */
function codes(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.slice(0, MAX_TARGETS).filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function toWindow(r: Row): MaintenanceWindow {
  return {
    id: Number(r.id),
    schools: codes(r.schools),
    devices: codes(r.devices),
    start: Number(r.start),
    end: Number(r.end_at),
    until: Number(r.until),
    reason: r.reason,
    createdBy: { id: r.created_by_id, name: r.created_by },
    createdAt: Number(r.created_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    endedBy: r.ended_at === null ? null : { id: r.ended_by_id ?? '', name: r.ended_by ?? '' },
  };
}

const iso = (t: number) => new Date(t).toISOString();
const isTime = (t: unknown): t is number => typeof t === 'number' && Number.isSafeInteger(t) && t >= 0 && t <= 253_402_300_799_999;

/** The names in `list` (field `field`) that are well formed and known, or an error naming the first that is not. */
function checkTargets(list: readonly string[] | undefined, field: 'schools' | 'devices', known: (x: string) => boolean): string[] {
  const noun = field === 'schools' ? 'school' : 'device';
  const what = field === 'schools' ? 'school code' : 'device id';
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new MaintenanceError('invalid', `${field}: must be a list of ${what}s`, field);
  if (list.length > MAX_TARGETS) throw new MaintenanceError('invalid', `${field}: ${list.length} entries; at most ${MAX_TARGETS}`, field);
  const out = new Set<string>();
  list.forEach((x, i) => {
    if (typeof x !== 'string' || x.length === 0 || x.length > 100) throw new MaintenanceError('invalid', `${field}[${i}]: must be a ${what} (1 to 100 characters)`, `${field}.${i}`);
    if (!known(x)) throw new MaintenanceError('invalid', `${field}[${i}]: no ${noun} ${JSON.stringify(x)} in the inventory`, `${field}.${i}`);
    out.add(x);
  });
  return [...out];
}

/**
 * Checks and stores a new window: end after start, at most MAX_SPAN_MS long,
 * beginning no more than MAX_BACKDATE_MS before `now`, at least one school or
 * device, every one of them in the inventory, a reason. Throws
 * MaintenanceError naming the field at fault; `fmt` writes the times in
 * its messages (ISO 8601 in UTC unless given).
 */
export function createWindow(db: DatabaseSync, inventory: Inventory, input: NewWindow, by: Actor, now: number, fmt: (t: number) => string = iso): MaintenanceWindow {
  const codesKnown = new Set(inventory.schools.map((s) => s.code));
  const schools = checkTargets(input.schools, 'schools', (c) => codesKnown.has(c));
  const devices = checkTargets(input.devices, 'devices', (d) => inventory.deviceById.has(d));
  if (schools.length + devices.length === 0) throw new MaintenanceError('invalid', 'schools: a maintenance window needs at least one school or device', 'schools');
  if (schools.length + devices.length > MAX_TARGETS) throw new MaintenanceError('invalid', `schools: ${schools.length} schools and ${devices.length} devices; at most ${MAX_TARGETS} together`, 'schools');
  const { start, end } = input;
  if (!isTime(start)) throw new MaintenanceError('invalid', 'start: not a time', 'start');
  if (!isTime(end)) throw new MaintenanceError('invalid', 'end: not a time', 'end');
  if (end <= start) throw new MaintenanceError('invalid', `end: ${fmt(end)} is not after start ${fmt(start)}`, 'end');
  if (end - start > MAX_SPAN_MS) throw new MaintenanceError('invalid', `end: the window would last ${((end - start) / DAY).toFixed(1)} days; at most ${MAX_SPAN_MS / DAY}`, 'end');
  if (start < now - MAX_BACKDATE_MS) throw new MaintenanceError('invalid', `start: ${fmt(start)} is more than ${MAX_BACKDATE_MS / 3_600_000} hours ago; a window may be declared late by a day at most (it would change figures already reported)`, 'start');
  const reason = typeof input.reason === 'string' ? input.reason.trim() : '';
  if (reason.length === 0) throw new MaintenanceError('invalid', 'reason: must say why (the reports and the officer read it)', 'reason');
  if (reason.length > MAX_REASON_CHARS) throw new MaintenanceError('invalid', `reason: ${reason.length} characters; at most ${MAX_REASON_CHARS}`, 'reason');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(reason)) throw new MaintenanceError('invalid', 'reason: must be one line without control characters', 'reason');
  ensureMaintenanceTable(db);
  db.exec('BEGIN IMMEDIATE');
  try {
    const count = Number((db.prepare('SELECT count(*) AS n FROM maintenance_windows').get() as { n: number }).n);
    if (count >= MAX_WINDOWS) {
      // Make room: the oldest windows that are over go first; never one in force or to come.
      db.prepare('DELETE FROM maintenance_windows WHERE id IN (SELECT id FROM maintenance_windows WHERE until <= ? ORDER BY until, id LIMIT ?)').run(now, count - MAX_WINDOWS + 1);
      const left = Number((db.prepare('SELECT count(*) AS n FROM maintenance_windows').get() as { n: number }).n);
      if (left >= MAX_WINDOWS) throw new MaintenanceError('full', `${left} windows are in force or to come (at most ${MAX_WINDOWS} are kept); end some first`);
    }
    const row = db
      .prepare('INSERT INTO maintenance_windows (schools, devices, start, end_at, until, reason, created_by, created_by_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *')
      .get(JSON.stringify(schools), JSON.stringify(devices), start, end, end, reason, by.name, by.id, now) as unknown as Row;
    db.exec('COMMIT');
    return toWindow(row);
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

export interface WindowFilter {
  /** Only windows in force at this instant. */
  active?: number;
  /** Only windows overlapping [from, to). */
  from?: number;
  to?: number;
  /** At most this many, newest start first (default 100, at most MAX_LIST). */
  limit?: number;
}

const hasTable = (db: DatabaseSync) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'maintenance_windows'").get() !== undefined;

/** Windows matching the filter, newest start first (cancelled ones too: they show who ended them). */
export function listWindows(db: DatabaseSync, f: WindowFilter = {}): MaintenanceWindow[] {
  if (!hasTable(db)) return [];
  const where: string[] = [];
  const args: number[] = [];
  if (f.active !== undefined) {
    where.push('start <= ? AND until > ?');
    args.push(f.active, f.active);
  }
  if (f.from !== undefined) {
    where.push('until > ?');
    args.push(f.from);
  }
  if (f.to !== undefined) {
    where.push('start < ?');
    args.push(f.to);
  }
  const limit = Math.max(1, Math.min(MAX_LIST, Math.floor(f.limit ?? 100)));
  const sql = `SELECT * FROM maintenance_windows${where.length ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY start DESC, id DESC LIMIT ?`;
  return (db.prepare(sql).all(...args, limit) as unknown as Row[]).map(toWindow);
}

export function getWindow(db: DatabaseSync, id: number): MaintenanceWindow | undefined {
  if (!hasTable(db)) return undefined;
  const r = db.prepare('SELECT * FROM maintenance_windows WHERE id = ?').get(id) as unknown as Row | undefined;
  return r ? toWindow(r) : undefined;
}

/**
 * Ends a window now: its effective end becomes min(end, now). A window not
 * yet begun is cancelled. Refused (conflict) when it is already over or was
 * ended before; not_found for an unknown id.
 */
export function endWindow(db: DatabaseSync, id: number, by: Actor, now: number, fmt: (t: number) => string = iso): MaintenanceWindow {
  ensureMaintenanceTable(db);
  db.exec('BEGIN IMMEDIATE');
  try {
    const r = db.prepare('SELECT * FROM maintenance_windows WHERE id = ?').get(id) as unknown as Row | undefined;
    if (!r) throw new MaintenanceError('not_found', `no maintenance window ${id}`);
    const w = toWindow(r);
    if (w.endedAt !== null) throw new MaintenanceError('conflict', `maintenance window ${id} was already ended at ${fmt(w.endedAt)} by ${w.endedBy!.name}`);
    if (w.until <= now) throw new MaintenanceError('conflict', `maintenance window ${id} is already over: it ended at ${fmt(w.until)}`);
    const row = db.prepare('UPDATE maintenance_windows SET ended_at = ?, ended_by = ?, ended_by_id = ?, until = min(end_at, ?) WHERE id = ? RETURNING *').get(now, by.name, by.id, now, id) as unknown as Row;
    db.exec('COMMIT');
    return toWindow(row);
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * The windows in force at some time in [from, to), for the collector (at a
 * round: [now, now + 1)) and the report (its period). A database without the
 * table (no window ever made, or older than it) has none. Bounded: MAX_WINDOWS.
 */
export function windowsBetween(db: DatabaseSync, from: number, to: number): MaintenanceSpan[] {
  let rows: Pick<Row, 'schools' | 'devices' | 'start' | 'until' | 'reason'>[];
  try {
    rows = db.prepare('SELECT schools, devices, start, until, reason FROM maintenance_windows WHERE until > ? AND start < ? AND until > start ORDER BY start LIMIT ?').all(from, to, MAX_WINDOWS) as unknown as typeof rows;
  } catch (err) {
    if (/no such table/.test((err as Error).message)) return [];
    throw err;
  }
  return rows.map((r) => ({ schools: codes(r.schools), devices: codes(r.devices), start: Number(r.start), end: Number(r.until), reason: r.reason }));
}
