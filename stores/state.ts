// Device states and incidents in SQLite (node:sqlite, WAL), so that an
// outage open when the collector stops is the same outage after it starts
// again: states are saved after every round, in one transaction with the
// incidents they open, update or close. A maintenance window does not end an
// outage: an incident open when its device goes into maintenance stays open
// (down → maintenance → down is one outage, not two and a repair).
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Device } from '../config/load.ts';
import { type DeviceState, type State, type Transition } from './model.ts';

export interface Incident {
  id: number;
  device: string;
  /** '' for the device itself (reachability), else the check (snmp, uplink, receiver.lock ...). */
  check: string;
  school: string;
  kind: string;
  /** down: the device itself failed; unreachable: `cause` (a parent) failed. */
  state: 'down' | 'unreachable';
  cause: string;
  startedAt: number;
  endedAt: number | null;
  durationS: number | null;
}

const OUTAGE = new Set<State>(['down', 'unreachable']);

/** An outage that went on through a maintenance window or unjudged time and is failing again: no new incident. */
export interface Continued {
  subject: string;
  incident: Incident;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS device_state (
     device TEXT PRIMARY KEY, state TEXT NOT NULL, since INTEGER NOT NULL, raw TEXT, streak INTEGER NOT NULL,
     cause TEXT, judged INTEGER NOT NULL, flapping INTEGER NOT NULL, changes TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS incidents (
     id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, check_name TEXT NOT NULL DEFAULT '', school TEXT NOT NULL, kind TEXT NOT NULL,
     state TEXT NOT NULL, cause TEXT NOT NULL, detail TEXT, started_at INTEGER NOT NULL, ended_at INTEGER, duration_s INTEGER)`,
  'CREATE INDEX IF NOT EXISTS incidents_open ON incidents (device, check_name) WHERE ended_at IS NULL',
  'CREATE INDEX IF NOT EXISTS incidents_time ON incidents (started_at)',
  // When each device was first judged: before it, klaiwatch did not watch it.
  'CREATE TABLE IF NOT EXISTS monitoring (device TEXT PRIMARY KEY, first_seen INTEGER NOT NULL)',
  // Runs of consecutive rounds, [start, end_at): a round at t covers [t, t + its interval). The gaps are time no collector watched.
  'CREATE TABLE IF NOT EXISTS rounds (start INTEGER PRIMARY KEY, end_at INTEGER NOT NULL)',
];

/** At most this many runs of rounds are kept (the oldest go first): a collector restarted every hour for ten years. */
export const MAX_ROUND_RUNS = 100_000;

/** What the collector watched: each device's first round, and the runs of rounds. */
export interface Monitoring {
  firstSeen: Map<string, number>;
  /** Sorted, merged [start, end) in ms. */
  runs: [number, number][];
}

/** The monitoring record overlapping [from, to) (the report opens the database read-only; a database from before the record has empty tables or none). */
export function monitoringBetween(db: DatabaseSync, from: number, to: number): Monitoring {
  const has = (t: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;
  const firstSeen = new Map<string, number>();
  const runs: [number, number][] = [];
  if (!has('monitoring') || !has('rounds')) return { firstSeen, runs };
  for (const r of db.prepare('SELECT device, first_seen FROM monitoring WHERE first_seen < ?').all(to) as { device: string; first_seen: number }[]) firstSeen.set(r.device, r.first_seen);
  for (const r of db.prepare('SELECT start, end_at FROM rounds WHERE start < ? AND end_at > ? ORDER BY start LIMIT ?').all(to, from, MAX_ROUND_RUNS) as { start: number; end_at: number }[]) {
    const last = runs[runs.length - 1];
    if (last && r.start <= last[1]) last[1] = Math.max(last[1], r.end_at);
    else runs.push([r.start, r.end_at]);
  }
  return { firstSeen, runs };
}

/** A row of the incidents table as SQLite gives it. */
export interface IncidentRow {
  id: number;
  device: string;
  check_name: string;
  school: string;
  kind: string;
  state: string;
  cause: string;
  detail: string | null;
  started_at: number;
  ended_at: number | null;
  duration_s: number | null;
}

export const toIncident = (r: IncidentRow): Incident => ({
  id: r.id,
  device: r.device,
  check: r.check_name,
  school: r.school,
  kind: r.kind,
  state: r.state as Incident['state'],
  cause: r.cause,
  startedAt: r.started_at,
  endedAt: r.ended_at,
  durationS: r.duration_s,
});

/** Incidents that overlap [from, to), oldest first, from an open state database (the report opens it read-only). */
export function incidentsBetween(db: DatabaseSync, from: number, to: number): Incident[] {
  return (db.prepare('SELECT * FROM incidents WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?) ORDER BY started_at, id').all(to, from) as unknown as IncidentRow[]).map(toIncident);
}

/**
 * When an outage held open through a maintenance window ended: the first good
 * result of the run of good results that ended it, which may lie inside the
 * window (the engine polls through it), never before the outage began nor
 * after the round that decided it. Without such a run (the subject is not
 * judged after the window), the deciding transition's time, as for any
 * outage that ends in "unknown".
 */
function recoveredAt(open: IncidentRow, t: Transition, s: DeviceState | undefined): number {
  if (s?.raw !== 'up' || s.rawSince === undefined) return t.at;
  return Math.max(open.started_at, Math.min(s.rawSince, t.at));
}

export class StateStore {
  /** Shared with the outbox, whose table lives in the same file. */
  readonly db: DatabaseSync;

  /** At most this many runs of rounds kept (MAX_ROUND_RUNS; smaller in tests). */
  private readonly maxRoundRuns: number;

  constructor(path: string, opts: { maxRoundRuns?: number } = {}) {
    this.maxRoundRuns = opts.maxRoundRuns ?? MAX_ROUND_RUNS;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    for (const sql of SCHEMA) this.db.exec(sql);
  }

  loadStates(): Map<string, DeviceState> {
    const out = new Map<string, DeviceState>();
    for (const r of this.db.prepare('SELECT * FROM device_state').all() as Record<string, string | number | null>[]) {
      const s: DeviceState = {
        state: r.state as State,
        since: Number(r.since),
        streak: Number(r.streak),
        judged: r.judged === 1,
        flapping: r.flapping === 1,
        changes: JSON.parse(String(r.changes)) as number[],
      };
      if (r.raw) s.raw = r.raw as DeviceState['raw'];
      if (r.cause) s.cause = String(r.cause);
      out.set(String(r.device), s);
    }
    return out;
  }

  /** Saves the states that changed this round (devices and checks) and turns the changes into incident rows; returns what was opened and closed. */
  apply(devices: readonly Device[], states: ReadonlyMap<string, DeviceState>, transitions: readonly Transition[]): { opened: Incident[]; closed: Incident[]; continued: Continued[] } {
    const opened: Incident[] = [];
    const closed: Incident[] = [];
    const continued: Continued[] = [];
    const sinceOf = this.db.prepare('UPDATE device_state SET since = ? WHERE device = ?');
    const upsert = this.db.prepare(
      `INSERT INTO device_state (device, state, since, raw, streak, cause, judged, flapping, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (device) DO UPDATE SET state = excluded.state, since = excluded.since, raw = excluded.raw, streak = excluded.streak,
         cause = excluded.cause, judged = excluded.judged, flapping = excluded.flapping, changes = excluded.changes`,
    );
    const openOf = this.db.prepare('SELECT * FROM incidents WHERE device = ? AND check_name = ? AND ended_at IS NULL');
    const insert = this.db.prepare('INSERT INTO incidents (device, check_name, school, kind, state, cause, detail, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *');
    const update = this.db.prepare('UPDATE incidents SET state = ?, cause = ? WHERE id = ?');
    const finish = this.db.prepare('UPDATE incidents SET ended_at = ?, duration_s = ? WHERE id = ? RETURNING *');
    const byId = new Map(devices.map((d) => [d.id, d]));
    this.db.exec('BEGIN');
    try {
      // Only what changed state is written: a restart keeps every state, cause
      // and flap history, and starts counting repeated results afresh.
      for (const t of transitions) {
        const s = states.get(t.subject);
        if (s) upsert.run(t.subject, s.state, s.since, s.raw ?? null, s.streak, s.cause ?? null, s.judged ? 1 : 0, s.flapping ? 1 : 0, JSON.stringify(s.changes));
      }
      for (const t of transitions) {
        const d = byId.get(t.device);
        if (!d) continue;
        const check = t.check ?? '';
        const open = openOf.get(t.device, check) as IncidentRow | undefined;
        if (OUTAGE.has(t.to)) {
          if (open) {
            update.run(t.to, t.cause ?? t.device, open.id);
            // Failing again after a maintenance window or a time the schedule did not judge: the same outage
            // goes on. Its state keeps the outage's start, and the collector sends no second "down" notice.
            if (t.from === 'maintenance' || t.from === 'unknown') {
              sinceOf.run(open.started_at, t.subject);
              const st = states.get(t.subject);
              if (st) st.since = open.started_at;
              continued.push({ subject: t.subject, incident: toIncident(open) });
            }
          }
          else opened.push(toIncident(insert.get(d.id, check, d.school.code, d.kind, t.to, t.cause ?? d.id, t.detail ?? null, t.at) as unknown as IncidentRow));
        } else if (open) {
          // A maintenance window laid over an outage does not repair it: the
          // incident stays open through the window, goes on if the subject is
          // still failing after it, and ends only when it is seen good.
          // Nor does the schedule: a subject no longer judged (a DLTV receiver
          // after the day's broadcast) was not seen good; its outage stays open
          // until it is judged again and seen good (or goes on, still failing).
          if (t.to === 'maintenance') continue;
          const next = states.get(t.subject);
          if (t.to === 'unknown' && next !== undefined && !next.judged) continue;
          const end = t.from === 'maintenance' || t.from === 'unknown' ? recoveredAt(open, t, next) : t.at;
          closed.push(toIncident(finish.get(end, Math.round((end - open.started_at) / 1000), open.id) as unknown as IncidentRow));
        }
      }
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    return { opened, closed, continued };
  }

  private seen: Set<string> | undefined;
  private lastRun: { start: number; end: number } | null | undefined;

  /**
   * One round of `intervalMs` judged at `at` for `devices` (their ids): the
   * devices' first round is kept, and the round extends the current run
   * when it comes no later than one interval after the run's end (a slow
   * round is not a gap), else starts a new one. Bounded: MAX_ROUND_RUNS runs.
   */
  recordRound(at: number, intervalMs: number, devices: Iterable<string>): void {
    if (!Number.isFinite(at) || !(intervalMs > 0)) return;
    if (!this.seen) this.seen = new Set((this.db.prepare('SELECT device FROM monitoring').all() as { device: string }[]).map((r) => r.device));
    if (this.lastRun === undefined) {
      const r = this.db.prepare('SELECT start, end_at FROM rounds ORDER BY start DESC LIMIT 1').get() as { start: number; end_at: number } | undefined;
      this.lastRun = r ? { start: r.start, end: r.end_at } : null;
    }
    const end = at + intervalMs;
    this.db.exec('BEGIN');
    try {
      const insertSeen = this.db.prepare('INSERT OR IGNORE INTO monitoring (device, first_seen) VALUES (?, ?)');
      const added: string[] = [];
      for (const id of devices) {
        if (this.seen.has(id)) continue;
        insertSeen.run(id, at);
        added.push(id);
      }
      const run = this.lastRun;
      let next: { start: number; end: number };
      if (run && at <= run.end + intervalMs && at >= run.start) {
        next = { start: run.start, end: Math.max(run.end, end) };
        if (next.end !== run.end) this.db.prepare('UPDATE rounds SET end_at = ? WHERE start = ?').run(next.end, run.start);
      } else {
        // A clock stepped back before the run began also starts a new run.
        next = { start: at, end };
        this.db.prepare('INSERT INTO rounds (start, end_at) VALUES (?, ?) ON CONFLICT (start) DO UPDATE SET end_at = max(end_at, excluded.end_at)').run(at, end);
        // The oldest other runs go (never the one this round is in, even when the clock stepped back before them).
        this.db.prepare('DELETE FROM rounds WHERE start IN (SELECT start FROM rounds WHERE start != ? ORDER BY start LIMIT max(0, (SELECT count(*) FROM rounds) - ?))').run(at, this.maxRoundRuns);
      }
      this.db.exec('COMMIT');
      for (const id of added) this.seen.add(id);
      this.lastRun = next;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** What the collector watched overlapping [from, to). */
  monitoring(from = 0, to = Number.MAX_SAFE_INTEGER): Monitoring {
    return monitoringBetween(this.db, from, to);
  }

  openIncidents(): Incident[] {
    return (this.db.prepare('SELECT * FROM incidents WHERE ended_at IS NULL ORDER BY started_at').all() as unknown as IncidentRow[]).map(toIncident);
  }

  /** Incidents that overlap [from, to), oldest first. */
  incidents(from = 0, to = Number.MAX_SAFE_INTEGER): Incident[] {
    return incidentsBetween(this.db, from, to);
  }

  close(): void {
    this.db.close();
  }
}
