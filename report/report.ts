// `klaiwatch report`: gathers what the figures need (the incidents from the
// state database, opened read-only; latency and loss from InfluxDB) and
// hands it to computeReport. One function, `makeReport`, so an API route
// can call exactly what the CLI calls.
import { DatabaseSync } from 'node:sqlite';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/load.ts';
import { incidentsBetween, monitoringBetween, type Incident, type Monitoring } from '../stores/state.ts';
import { Calendar } from '../config/calendar.ts';
import { InfluxClient, ident, rows } from '../stores/influx/client.ts';
import { RAW_RP, ROLLUP_RP } from '../stores/influx/setup.ts';
import { computeReport, type LinkStats, type Report } from './figures.ts';
import { parsePeriod } from './period.ts';
import { uplinkStats, type UplinkStats } from '../stores/uplink.ts';
import { planShard } from '../config/shard.ts';
import { windowsBetween } from '../stores/maintenance.ts';
import type { MaintenanceSpan } from '../config/calendar.ts';

export class ReportError extends Error {}

/** Incidents overlapping [from, to), read from the collector's state database without locking it. */
export function readIncidents(path: string, from: number, to: number): Incident[] {
  if (!existsSync(path)) throw new ReportError(`${path}: no state database (alerts.state_db); has the collector run?`);
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    return incidentsBetween(db, from, to);
  } finally {
    db.close();
  }
}

/** What the collector watched overlapping [from, to): each device's first round and the runs of rounds (empty in a database from before they were recorded). */
export function readMonitoring(path: string, from: number, to: number): Monitoring {
  if (!existsSync(path)) throw new ReportError(`${path}: no state database (alerts.state_db); has the collector run?`);
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    return monitoringBetween(db, from, to);
  } finally {
    db.close();
  }
}

/** The maintenance windows kept in the state database (made over the API) overlapping [from, to); none in a database from before them. */
export function readWindows(path: string, from: number, to: number): MaintenanceSpan[] {
  if (!existsSync(path)) throw new ReportError(`${path}: no state database (alerts.state_db); has the collector run?`);
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    return windowsBetween(db, from, to);
  } finally {
    db.close();
  }
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * Median and 95th percentile of each school router's round-trip time and
 * loss. Raw points when the period starts within their retention, else the
 * 5-minute roll-ups (whose points are 5-minute means: the percentiles are of
 * those means, as the report says).
 */
export async function linkStats(config: Config, from: number, to: number, now: number): Promise<Map<string, LinkStats>> {
  const s = config.settings.influx;
  const client = new InfluxClient({ url: s.url, database: s.database, username: s.username, auth: config.influxAuth, timeoutMs: s.timeout });
  const source: LinkStats['source'] = from >= now - s.raw_retention ? 'raw' : 'rollup_5m';
  const rp = source === 'raw' ? RAW_RP : ROLLUP_RP;
  const q =
    `SELECT median("rtt_avg_ms") AS "rtt_median", percentile("rtt_avg_ms", 95) AS "rtt_p95", median("loss_pct") AS "loss_median", percentile("loss_pct", 95) AS "loss_p95", count("loss_pct") AS "samples" ` +
    `FROM ${ident(rp)}."icmp" WHERE "kind" = 'router' AND time >= ${from}ms AND time < ${to}ms GROUP BY "school"`;
  const out = new Map<string, LinkStats>();
  for (const r of rows(await client.query(q))) {
    out.set(String(r.school), { rttMedianMs: num(r.rtt_median), rttP95Ms: num(r.rtt_p95), lossMedianPct: num(r.loss_median), lossP95Pct: num(r.loss_p95), samples: num(r.samples) ?? 0, source });
  }
  return out;
}

export interface MakeReportOptions {
  period: string;
  now?: number;
  /** Leave out latency and loss (no InfluxDB to ask). */
  noInflux?: boolean;
  /** The state database; default the settings' alerts.state_db. */
  stateDb?: string;
}

export async function makeReport(config: Config, o: MakeReportOptions): Promise<{ report: Report; warnings: string[] }> {
  const now = o.now ?? Date.now();
  const calendars = config.calendars.map((c) => new Calendar(c));
  const period = parsePeriod(o.period, calendars, now);
  if (period.from >= now) throw new ReportError(`period ${o.period} (${period.label}) has not begun`);
  const countedTo = Math.min(period.to, now);
  const warnings: string[] = [];
  const stateDb = o.stateDb ?? resolve(dirname(config.file), config.settings.alerts.state_db);
  const incidents = readIncidents(stateDb, period.from, countedTo);
  const monitoring = readMonitoring(stateDb, period.from, countedTo);
  const windows = readWindows(stateDb, period.from, countedTo);
  if (monitoring.runs.length === 0) warnings.push(`${stateDb}: no collector round recorded from ${period.label}'s start to the end of counted time: no time counts as observed, the figures show "—" (a state database from before klaiwatch recorded its rounds has none)`);
  let links: Map<string, LinkStats> | undefined;
  let uplinks: Map<string, UplinkStats> | undefined;
  if (!o.noInflux) {
    try {
      links = await linkStats(config, period.from, countedTo, now);
      uplinks = await uplinkStats(config, period.from, countedTo, now);
    } catch (err) {
      // The availability figures do not depend on InfluxDB; say what is missing rather than give no report.
      warnings.push(`latency and loss left out: InfluxDB at ${config.settings.influx.url} did not answer: ${(err as Error).message}`);
    }
  }
  // A shard's state database holds its own schools' incidents only: its
  // report is of those schools (the area's is the shards' reports together).
  let scope: Config = config;
  if (config.settings.collector.shard) {
    const plan = planShard(config);
    const schools = config.schools.filter((s) => plan.schools.has(s.code));
    scope = { ...config, schools, devices: config.devices.filter((d) => plan.owned.has(d.id)) };
    warnings.push(`collector.shard is ${plan.label}: this report covers the ${schools.filter((s) => !s.office).length} of ${config.schools.filter((s) => !s.office).length} schools this collector owns (its state database holds only theirs); the area's figures are the shards' reports together`);
  }
  return { report: computeReport({ config: scope, incidents, monitoring, windows, period, now, ...(links ? { links } : {}), ...(uplinks ? { uplinks } : {}) }), warnings };
}
