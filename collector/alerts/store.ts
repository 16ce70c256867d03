// Device states and incidents in SQLite (node:sqlite, WAL), so that an
// outage open when the collector stops is the same outage after it starts
// again: states are saved after every round, in one transaction with the
// incidents they open, update or close.
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Device } from '../../config/load.ts';
import type { DeviceState, State, Transition } from './state.ts';

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

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS device_state (
     device TEXT PRIMARY KEY, state TEXT NOT NULL, since INTEGER NOT NULL, raw TEXT, streak INTEGER NOT NULL,
     cause TEXT, judged INTEGER NOT NULL, flapping INTEGER NOT NULL, changes TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS incidents (
     id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, check_name TEXT NOT NULL DEFAULT '', school TEXT NOT NULL, kind TEXT NOT NULL,
     state TEXT NOT NULL, cause TEXT NOT NULL, detail TEXT, started_at INTEGER NOT NULL, ended_at INTEGER, duration_s INTEGER)`,
  'CREATE INDEX IF NOT EXISTS incidents_open ON incidents (device, check_name) WHERE ended_at IS NULL',
  'CREATE INDEX IF NOT EXISTS incidents_time ON incidents (started_at)',
];

export interface IncidentRow {
  id: number;
  device: string;
  check_name: string;
  school: string;
  kind: string;
  state: string;
  cause: string;
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

export class StateStore {
  /** Shared with the outbox, whose table lives in the same file. */
  readonly db: DatabaseSync;

  constructor(path: string) {
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
  apply(devices: readonly Device[], states: ReadonlyMap<string, DeviceState>, transitions: readonly Transition[]): { opened: Incident[]; closed: Incident[] } {
    const opened: Incident[] = [];
    const closed: Incident[] = [];
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
          if (open) update.run(t.to, t.cause ?? t.device, open.id);
          else opened.push(toIncident(insert.get(d.id, check, d.school.code, d.kind, t.to, t.cause ?? d.id, t.detail ?? null, t.at) as unknown as IncidentRow));
        } else if (open) {
          closed.push(toIncident(finish.get(t.at, Math.round((t.at - open.started_at) / 1000), open.id) as unknown as IncidentRow));
        }
      }
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    return { opened, closed };
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
