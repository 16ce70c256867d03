// Uplink saturation, spelled once for the dashboards and the report: which
// interface of which device is a school's uplink (inventory `uplink_if`),
// its in/out use as a percentage of its speed per point (InfluxQL cannot
// take the 95th percentile of a ratio, so the ratio is computed per point in
// a sub-query), and whether a point is "busy": in or out above 80 %.
import type { Config } from '../config/load.ts';
import { InfluxClient, ident, rows } from './influx/client.ts';
import { RAW_RP, ROLLUP_RP } from './influx/setup.ts';

/** A point is busy when its in or out use is above this share of the interface's speed. */
export const UPLINK_BUSY_PCT = 80;

export interface Uplink {
  school: string;
  device: string;
  ifname: string;
}

/** The devices whose inventory names an uplink interface (`uplink_if`): a school's router, the office's uplink. */
export function uplinksOf(devices: readonly { id: string; uplink_if?: string | undefined; school: { code: string } }[]): Uplink[] {
  return devices.filter((d) => d.uplink_if !== undefined && d.uplink_if !== '').map((d) => ({ school: d.school.code, device: d.id, ifname: d.uplink_if! }));
}

const literal = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const regexPart = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');

/**
 * InfluxQL condition matching exactly the uplink interfaces' points: one
 * clause per interface name (most schools' routers name it alike), each
 * with the devices that use it. `undefined` when no device names one.
 */
export function uplinkCondition(uplinks: readonly Uplink[]): string | undefined {
  if (uplinks.length === 0) return undefined;
  const byName = new Map<string, string[]>();
  for (const u of uplinks) byName.set(u.ifname, [...(byName.get(u.ifname) ?? []), u.device]);
  const clauses = [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([ifname, devices]) => `("ifname" = ${literal(ifname)} AND "device" =~ /^(${devices.map(regexPart).join('|')})$/)`);
  return `(${clauses.join(' OR ')})`;
}

const pctOf = (f: 'in_bps' | 'out_bps') => `"${f}" / "speed_bps" * 100`;
// 1 when the share is above the limit, 0 when not: ceil of (share − limit) / 10^15 (a share is below 4 × 10^13 %: 400 Gbit/s on a 1 bit/s port).
const above = (f: 'in_bps' | 'out_bps') => `ceil((${pctOf(f)} - ${UPLINK_BUSY_PCT}) / 1000000000000000)`;

/**
 * The sub-query: per point of an uplink interface, `in_pct`, `out_pct` (use
 * as % of its speed) and `busy` (1 when either is above 80 %). Points with
 * no speed (0: the agent does not know it) are left out. `from` is the
 * measurement with its retention policy; `time` the time condition.
 */
export function uplinkUseQuery(from: string, condition: string, time: string, groupBy = '"school", "school_name", "device", "ifname"'): string {
  const a = above('in_bps');
  const b = above('out_bps');
  return `SELECT ${pctOf('in_bps')} AS "in_pct", ${pctOf('out_bps')} AS "out_pct", ${a} + ${b} - ${a} * ${b} AS "busy" FROM ${from} WHERE ${condition} AND "speed_bps" > 0 AND ${time} GROUP BY ${groupBy}`;
}

export interface UplinkStats {
  device: string;
  ifname: string;
  /** 95th percentile of the use in and out, % of the interface's speed. */
  inP95Pct: number | null;
  outP95Pct: number | null;
  /** Time in or out above 80 %: busy points × the time each stands for (the poll interval; 5 minutes for roll-ups). */
  hoursBusy: number;
  /** Share of the points that were busy, %. */
  busyPct: number | null;
  samples: number;
  source: 'raw' | 'rollup_5m';
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Per school (code), its uplink's figures over [from, to): raw points when the period starts within their retention, else the 5-minute roll-ups. */
export async function uplinkStats(config: Pick<Config, 'devices' | 'settings' | 'influxAuth'>, from: number, to: number, now: number): Promise<Map<string, UplinkStats>> {
  const out = new Map<string, UplinkStats>();
  const uplinks = uplinksOf(config.devices);
  const condition = uplinkCondition(uplinks);
  if (!condition) return out;
  const s = config.settings.influx;
  const client = new InfluxClient({ url: s.url, database: s.database, username: s.username, auth: config.influxAuth, timeoutMs: s.timeout });
  const source: UplinkStats['source'] = from >= now - s.raw_retention ? 'raw' : 'rollup_5m';
  const rp = source === 'raw' ? RAW_RP : ROLLUP_RP;
  const time = `time >= ${from}ms AND time < ${to}ms`;
  const q = `SELECT percentile("in_pct", 95) AS "in_p95", percentile("out_pct", 95) AS "out_p95", sum("busy") AS "busy", count("busy") AS "samples" FROM (${uplinkUseQuery(`${ident(rp)}."interface"`, condition, time)}) WHERE ${time} GROUP BY "school", "device", "ifname"`;
  const kindOf = new Map(config.devices.map((d) => [d.id, d.kind]));
  const p = config.settings.polling;
  for (const r of rows(await client.query(q))) {
    const device = String(r.device);
    const stepMs = source === 'raw' ? (p.intervals[kindOf.get(device)!] ?? p.interval) : 300_000;
    const samples = num(r.samples) ?? 0;
    const busy = num(r.busy) ?? 0;
    out.set(String(r.school), { device, ifname: String(r.ifname), inP95Pct: num(r.in_p95), outP95Pct: num(r.out_p95), hoursBusy: (busy * stepMs) / 3_600_000, busyPct: samples > 0 ? (busy / samples) * 100 : null, samples, source });
  }
  return out;
}
