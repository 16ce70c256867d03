// /healthz as the API serves it: the parts' own health (collector, archive)
// and, from the stores, the mail outbox and the open incidents and failing
// checks. Under `klaiwatch run` the supervisor relays its view of every part
// over IPC; `klaiwatch api` alone asks each part's own /healthz when the part
// listens on an address of its own (the collector on http.listen, the
// archive on traffic.http), with a short timeout. The store figures are read
// from SQLite, so /healthz answers while InfluxDB is down.
import type { DatabaseSync } from 'node:sqlite';
import type { Config } from '../config/load.ts';

/** At most this many open problems are listed (the counts say how many there are). */
const MAX_LISTED = 50;
/** A relay from the supervisor older than this no longer counts: the parts show as "not reported". */
const RELAY_STALE_MS = 15_000;

export interface StoreFacts {
  status: 'ok' | 'degraded';
  [k: string]: unknown;
}

const has = (db: DatabaseSync, t: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;

/** Open incidents and failing checks, the outbox, the last round: from the state database. */
export function storeFacts(stateDb: () => DatabaseSync, now: number): StoreFacts {
  let db: DatabaseSync;
  try {
    db = stateDb();
  } catch (err) {
    return { status: 'degraded', state_db: { error: (err as Error).message } };
  }
  try {
    const open = has(db, 'incidents')
      ? (db.prepare(`SELECT device, check_name AS "check", school, kind, state, cause, detail, started_at FROM incidents WHERE ended_at IS NULL ORDER BY started_at DESC LIMIT ?`).all(MAX_LISTED * 4) as {
          device: string;
          check: string;
          school: string;
          kind: string;
          state: string;
          cause: string;
          detail: string | null;
          started_at: number;
        }[])
      : [];
    const counts = has(db, 'incidents')
      ? (db.prepare(`SELECT SUM(check_name = '' AND state = 'down') AS down, SUM(check_name = '' AND state = 'unreachable') AS unreachable, SUM(check_name != '') AS checks FROM incidents WHERE ended_at IS NULL`).get() as { down: number | null; unreachable: number | null; checks: number | null })
      : { down: 0, unreachable: 0, checks: 0 };
    const outbox = has(db, 'outbox')
      ? (db.prepare(`SELECT SUM(status = 'pending') AS pending, SUM(status = 'failed') AS failed, MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest FROM outbox`).get() as { pending: number | null; failed: number | null; oldest: number | null })
      : null;
    const round = has(db, 'rounds') ? (db.prepare('SELECT MAX(end_at) AS end_at FROM rounds').get() as { end_at: number | null }) : { end_at: null };
    const iso = (t: number) => new Date(t).toISOString();
    return {
      status: 'ok',
      incidents_open: { devices_down: counts.down ?? 0, unreachable_behind: counts.unreachable ?? 0, checks_failing: counts.checks ?? 0 },
      problems: open
        .filter((r) => r.check !== '' || r.state === 'down')
        .slice(0, MAX_LISTED)
        .map((r) => ({ device: r.device, school: r.school, kind: r.kind, ...(r.check ? { check: r.check, detail: r.detail } : { state: r.state }), since: iso(r.started_at) })),
      outbox: outbox ? { pending: outbox.pending ?? 0, failed: outbox.failed ?? 0, oldest_pending_at: outbox.oldest === null ? null : iso(outbox.oldest) } : { note: 'no outbox yet (mail not configured, or no collector has run)' },
      // A round's coverage ends where its interval does: past it with no new round, the collector is not running (or not this shard).
      last_round_covers_until: round.end_at === null ? null : iso(round.end_at),
      rounds_stale: round.end_at === null ? null : now > round.end_at + 60_000,
    };
  } catch (err) {
    return { status: 'degraded', state_db: { error: (err as Error).message } };
  }
}

/** The parts' health as `klaiwatch api` alone finds it: each part's own /healthz, asked with a short timeout. */
export async function probeParts(config: Config, timeoutMs = 1_500): Promise<Record<string, unknown>> {
  const s = config.settings;
  const targets: [string, string][] = [];
  const apiAddress = s.api.listen ?? s.http.listen;
  if (apiAddress !== s.http.listen) targets.push(['collector', s.http.listen]);
  if (s.traffic) targets.push(['archive', s.traffic.http]);
  const parts: Record<string, unknown> = {};
  await Promise.all(
    targets.map(async ([name, listen]) => {
      const url = `http://${listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:')}/healthz`;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        const text = await res.text();
        const body = text.length <= 1_000_000 ? (JSON.parse(text) as Record<string, unknown>) : { status: 'unreadable' };
        parts[name] = { ...body, status: typeof body.status === 'string' ? body.status : 'unreadable', asked: url };
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
        parts[name] = { status: 'not reachable', asked: url, error: cause };
      }
    }),
  );
  if (apiAddress === s.http.listen) parts.collector = { status: 'not known', note: 'klaiwatch api serves http.listen itself: run the collector under `klaiwatch run`, or give api.listen an address of its own so that the collector alone can serve its /healthz on http.listen' };
  return parts;
}

/** The health source of an API process: a supervisor's relay when one arrives, else the parts' own /healthz. */
export class HealthSource {
  private relay: { health: Record<string, unknown>; at: number } | undefined;
  private readonly config: Config;
  private readonly stateDb: () => DatabaseSync;
  private readonly supervised: boolean;

  constructor(config: Config, stateDb: () => DatabaseSync, supervised: boolean) {
    this.config = config;
    this.stateDb = stateDb;
    this.supervised = supervised;
  }

  /** The supervisor's view of every part (bin/supervisor.ts health()). */
  relayed(health: Record<string, unknown>, at = Date.now()): void {
    this.relay = { health, at };
  }

  async health(now = Date.now()): Promise<Record<string, unknown>> {
    const store = storeFacts(this.stateDb, now);
    let parts: Record<string, unknown>;
    let supervisor: unknown;
    if (this.supervised) {
      if (this.relay && now - this.relay.at < RELAY_STALE_MS) {
        parts = { ...((this.relay.health.parts as Record<string, unknown>) ?? {}) };
        supervisor = this.relay.health.supervisor;
      } else parts = { supervisor: { status: 'not reported', note: 'no word from the supervisor for 15 s' } };
    } else parts = await probeParts(this.config);
    const bad = Object.entries(parts).filter(([, p]) => {
      const st = (p as { status?: unknown }).status;
      return st !== 'ok' && st !== 'not known';
    });
    const { status: storeStatus, ...facts } = store;
    return {
      status: bad.length === 0 && storeStatus === 'ok' ? 'ok' : 'degraded',
      ...(supervisor ? { supervisor } : {}),
      parts,
      store: storeStatus,
      ...facts,
    };
  }
}
