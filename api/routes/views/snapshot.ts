// What the views read from the collector's state database, read once per
// change: the database is read again only when something committed to it
// (PRAGMA data_version moves when another connection, the collector,
// commits; total_changes() when this process did, the maintenance routes),
// and that is asked at most every CHECK_EVERY_MS. A burst of /v1/status
// requests between two rounds therefore costs no database access at all,
// not a scan of every device's state each.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Config, Device, School } from '../../../config/load.ts';
import { schoolState, type SchoolState, type State, STATES } from '../../../stores/model.ts';
import { StoreMissing, type ApiContext } from '../../context.ts';
import type { Incident } from '../../../stores/state.ts';

/**
 * The database's version is asked at most this often: a burst of requests
 * between two rounds reads one cached snapshot (a round comes every 10 s at
 * the most; a change shows within this time).
 */
export const CHECK_EVERY_MS = 200;

/** At most this many open incidents are read (a database with more is broken; the answer says it was cut). */
export const MAX_OPEN = 20_000;

export interface DeviceRow {
  state: State;
  since: number;
  cause: string | null;
  judged: boolean;
  flapping: boolean;
}

export interface CheckRow {
  check: string;
  state: State;
  since: number;
}

/** An incident of the state store while it is open, with what was seen (detail). */
export type OpenIncident = Omit<Incident, 'endedAt' | 'durationS'> & { detail: string | null };

export interface Counts {
  total: number;
  up: number;
  down: number;
  unreachable: number;
  maintenance: number;
  unknown: number;
}

export interface SchoolView {
  school: School;
  state: SchoolState;
  devices: Counts;
  /** Open incidents (outages and failing checks) of the school's devices. */
  problems: number;
}

export interface Observed {
  /** When the collector's last recorded round was judged: rounds.end_at less the polling interval. */
  lastRoundAt: number | null;
  /** The end of the time the last recorded round covers (rounds.end_at); past it, the next round is late. */
  coveredUntil: number | null;
  /** Start of the current run of consecutive rounds. */
  runSince: number | null;
  /** Why there is no figure ("not measured"), or null. */
  reason: string | null;
}

export interface Snapshot {
  key: string;
  devices: Map<string, DeviceRow>;
  checks: Map<string, CheckRow[]>;
  /** Open incidents, oldest first. */
  open: OpenIncident[];
  openTruncated: boolean;
  openBySchool: Map<string, number>;
  observed: Observed;
  /** Every site (schools and the office) in inventory order, with its state. */
  schools: SchoolView[];
  schoolByCode: Map<string, SchoolView>;
}

interface Statements {
  version: StatementSync;
  tables: StatementSync;
  states: StatementSync;
  open: StatementSync;
  lastRun: StatementSync;
}

const emptyCounts = (): Counts => ({ total: 0, up: 0, down: 0, unreachable: 0, maintenance: 0, unknown: 0 });
const isState = (s: unknown): s is State => typeof s === 'string' && (STATES as readonly string[]).includes(s);

/** The state database's views for one configuration; one per registered app. */
export class StateView {
  readonly config: Config;
  private readonly ctx: ApiContext;
  private readonly statements = new WeakMap<DatabaseSync, Statements>();
  private current: Snapshot | undefined;
  private checkedAt = -Infinity;
  private readonly interval: number;

  constructor(ctx: ApiContext) {
    this.ctx = ctx;
    this.config = ctx.config;
    const p = ctx.config.settings.polling;
    const first = ctx.config.devices[0];
    // The collector records a round with its first device's interval (collector.ts judge()).
    this.interval = (first ? p.intervals[first.kind] : undefined) ?? p.interval;
  }

  private prepared(db: DatabaseSync): Statements {
    let s = this.statements.get(db);
    if (!s) {
      s = {
        version: db.prepare('SELECT (SELECT data_version FROM pragma_data_version) AS v, total_changes() AS c'),
        tables: db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('device_state', 'incidents', 'rounds')"),
        states: db.prepare('SELECT device, state, since, cause, judged, flapping FROM device_state'),
        open: db.prepare('SELECT id, device, check_name, school, kind, state, cause, detail, started_at FROM incidents WHERE ended_at IS NULL ORDER BY started_at, id LIMIT ?'),
        lastRun: db.prepare('SELECT start, end_at FROM rounds ORDER BY start DESC LIMIT 1'),
      };
      this.statements.set(db, s);
    }
    return s;
  }

  /** The database as it is now, or at most CHECK_EVERY_MS ago (re-read only when it changed). */
  snapshot(): Snapshot {
    const t = performance.now();
    if (this.current && t - this.checkedAt < CHECK_EVERY_MS) return this.current;
    this.checkedAt = t;
    let db: DatabaseSync;
    try {
      db = this.ctx.stateDb();
    } catch (err) {
      if (!(err instanceof StoreMissing)) throw err;
      if (this.current?.key === 'missing') return this.current;
      this.current = this.build('missing', new Map(), new Map(), [], false, null, 'no collector has run yet: the state database does not exist');
      return this.current;
    }
    const st = this.prepared(db);
    const v = st.version.get() as { v: number; c: number };
    const key = `${v.v}:${v.c}`;
    if (this.current?.key === key) return this.current;
    const tables = new Set((st.tables.all() as { name: string }[]).map((r) => r.name));
    const devices = new Map<string, DeviceRow>();
    const checks = new Map<string, CheckRow[]>();
    if (tables.has('device_state')) {
      for (const r of st.states.iterate() as Iterable<{ device: string; state: string; since: number; cause: string | null; judged: number; flapping: number }>) {
        const state: State = isState(r.state) ? r.state : 'unknown';
        const hash = r.device.indexOf('#');
        if (hash < 0) devices.set(r.device, { state, since: Number(r.since), cause: r.cause || null, judged: r.judged === 1, flapping: r.flapping === 1 });
        else {
          const id = r.device.slice(0, hash);
          const list = checks.get(id) ?? [];
          list.push({ check: r.device.slice(hash + 1), state, since: Number(r.since) });
          checks.set(id, list);
        }
      }
    }
    const open: OpenIncident[] = [];
    let truncated = false;
    if (tables.has('incidents')) {
      for (const r of st.open.all(MAX_OPEN + 1) as { id: number; device: string; check_name: string; school: string; kind: string; state: string; cause: string; detail: string | null; started_at: number }[]) {
        if (open.length === MAX_OPEN) {
          truncated = true;
          break;
        }
        open.push({ id: r.id, device: r.device, check: r.check_name, school: r.school, kind: r.kind, state: r.state === 'unreachable' ? 'unreachable' : 'down', cause: r.cause, detail: r.detail, startedAt: Number(r.started_at) });
      }
    }
    const run = tables.has('rounds') ? (st.lastRun.get() as { start: number; end_at: number } | undefined) : undefined;
    this.current = this.build(key, devices, checks, open, truncated, run ?? null, run ? null : 'no collector round is recorded in the state database yet');
    return this.current;
  }

  private build(key: string, devices: Map<string, DeviceRow>, checks: Map<string, CheckRow[]>, open: OpenIncident[], openTruncated: boolean, run: { start: number; end_at: number } | null, reason: string | null): Snapshot {
    const openBySchool = new Map<string, number>();
    for (const i of open) openBySchool.set(i.school, (openBySchool.get(i.school) ?? 0) + 1);
    const stateOf = (id: string) => devices.get(id)?.state;
    const schools: SchoolView[] = [];
    const schoolByCode = new Map<string, SchoolView>();
    for (const school of this.config.schools) {
      const counts = countStates(school.devices, stateOf);
      const view: SchoolView = { school, state: schoolState(school.devices, stateOf).state, devices: counts, problems: openBySchool.get(school.code) ?? 0 };
      schools.push(view);
      schoolByCode.set(school.code, view);
    }
    const observed: Observed = run
      ? { lastRoundAt: Number(run.end_at) - this.interval, coveredUntil: Number(run.end_at), runSince: Number(run.start), reason: null }
      : { lastRoundAt: null, coveredUntil: null, runSince: null, reason };
    return { key, devices, checks, open, openTruncated, openBySchool, observed, schools, schoolByCode };
  }
}

export function countStates(devices: readonly Device[], stateOf: (id: string) => State | undefined): Counts {
  const c = emptyCounts();
  for (const d of devices) {
    c.total++;
    c[stateOf(d.id) ?? 'unknown']++;
  }
  return c;
}

export function addCounts(into: Counts, c: Counts): void {
  into.total += c.total;
  into.up += c.up;
  into.down += c.down;
  into.unreachable += c.unreachable;
  into.maintenance += c.maintenance;
  into.unknown += c.unknown;
}

export { emptyCounts };
