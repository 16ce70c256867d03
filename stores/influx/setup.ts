// Creates, idempotently, what klaiwatch needs in InfluxDB 1.x: the database,
// a default retention policy for raw points ("raw", 30 days unless
// configured) and one for 5-minute roll-ups ("rollup_5m", 2 years), and one
// continuous query per measurement that fills the roll-ups under the same
// measurement and field names, so dashboards and reports read them alike.
// 2.x and 3.x have no RPs or CQs (bucket/database retention instead): there
// we check the database answers and say what the operator must set up.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { measurements, type MeasurementSpec } from '../../config/measurements.ts';
import { influxDuration } from '../../config/units.ts';
import { InfluxClient, ident, rows } from './client.ts';

export const RAW_RP = 'raw';
export const ROLLUP_RP = 'rollup_5m';
export const CQ_PREFIX = 'kw_5m_';

export interface SchemaSetup {
  version: string;
  managed: boolean;
  actions: string[];
}

/** The SELECT of the 5-minute roll-up of one measurement, or undefined when nothing in it rolls up. */
export function rollupSelect(db: string, m: MeasurementSpec): string | undefined {
  const parts: string[] = [];
  for (const [name, spec] of Object.entries(m.fields)) {
    if (spec.rollup === 'none' || spec.type === 'string') continue;
    parts.push(`${spec.rollup}(${ident(name)}) AS ${ident(name)}`);
  }
  if (parts.length === 0) return undefined;
  return `SELECT ${parts.join(', ')} INTO ${ident(db)}.${ident(ROLLUP_RP)}.${ident(m.name)} FROM ${ident(db)}.${ident(RAW_RP)}.${ident(m.name)} GROUP BY time(5m), *`;
}

export async function setupSchema(client: InfluxClient, opts: { rawRetentionMs: number; rollupRetentionMs: number }, log: Logger): Promise<SchemaSetup> {
  const version = await client.ping();
  const db = client.target.database;
  const actions: string[] = [];
  if (!version.startsWith('1.')) {
    // Serving the v1 API for compatibility: writes and InfluxQL work; the
    // database (2.x: a bucket with a DBRP mapping) and its retention are
    // the operator's to create.
    await client.query('SHOW MEASUREMENTS LIMIT 1');
    log.info({ version, db }, 'influxdb is not 1.x: retention policies and continuous queries are not managed; see README');
    return { version, managed: false, actions };
  }

  await client.query(`CREATE DATABASE ${ident(db)}`, { db: false });
  const rps = new Map(rows(await client.query(`SHOW RETENTION POLICIES ON ${ident(db)}`, { db: false })).map((r) => [String(r.name), r]));
  const ensureRp = async (name: string, ms: number, makeDefault: boolean) => {
    const want = influxDuration(ms);
    const have = rps.get(name);
    if (!have) {
      await client.query(`CREATE RETENTION POLICY ${ident(name)} ON ${ident(db)} DURATION ${want} REPLICATION 1${makeDefault ? ' DEFAULT' : ''}`, { db: false });
      actions.push(`created retention policy ${name} (${want})`);
      return;
    }
    const haveMs = parseInfluxShowDuration(String(have.duration));
    if (haveMs !== ms || (makeDefault && have.default !== true)) {
      await client.query(`ALTER RETENTION POLICY ${ident(name)} ON ${ident(db)} DURATION ${want}${makeDefault ? ' DEFAULT' : ''}`, { db: false });
      actions.push(`altered retention policy ${name} to ${want}`);
    }
  };
  await ensureRp(RAW_RP, opts.rawRetentionMs, true);
  await ensureRp(ROLLUP_RP, opts.rollupRetentionMs, false);

  // One CQ per measurement, named with a hash of its text: a schema change
  // gives a new name, and the stale query is dropped.
  const existing = rows(await client.query('SHOW CONTINUOUS QUERIES', { db: false }))
    .filter((r) => String(r.name).startsWith(CQ_PREFIX))
    .map((r) => String(r.name));
  // SHOW CONTINUOUS QUERIES groups by database in series names; keep only this db's.
  const ours = new Set<string>();
  for (const s of (await client.query('SHOW CONTINUOUS QUERIES', { db: false }))[0]?.series ?? []) {
    if (s.name !== db) continue;
    for (const v of s.values ?? []) ours.add(String(v[0]));
  }
  const wanted = new Set<string>();
  for (const m of Object.values(measurements) as MeasurementSpec[]) {
    const select = rollupSelect(db, m);
    if (!select) continue;
    const name = `${CQ_PREFIX}${m.name}_${createHash('sha256').update(select).digest('hex').slice(0, 8)}`;
    wanted.add(name);
    if (ours.has(name)) continue;
    await client.query(`CREATE CONTINUOUS QUERY ${ident(name)} ON ${ident(db)} BEGIN ${select} END`, { db: false });
    actions.push(`created continuous query ${name}`);
  }
  for (const name of existing) {
    if (ours.has(name) && !wanted.has(name)) {
      await client.query(`DROP CONTINUOUS QUERY ${ident(name)} ON ${ident(db)}`, { db: false });
      actions.push(`dropped stale continuous query ${name}`);
    }
  }
  if (actions.length > 0) log.info({ version, db, actions }, 'influxdb schema set up');
  return { version, managed: true, actions };
}

/** "720h0m0s" → ms (the form SHOW RETENTION POLICIES prints). */
export function parseInfluxShowDuration(s: string): number {
  if (s === '0s' || s === 'INF') return 0;
  let ms = 0;
  for (const m of s.matchAll(/(\d+)(h|m|s)/g)) ms += Number(m[1]) * (m[2] === 'h' ? 3_600_000 : m[2] === 'm' ? 60_000 : 1000);
  return ms;
}
