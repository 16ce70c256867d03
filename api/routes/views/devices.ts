// GET /v1/devices, /v1/devices/:id: the inventory's facts about each device
// and its state from the state database; never an SNMP credential (the
// answer is built field by field from a list that has none).
// GET /v1/devices/:id/metrics: recent points from InfluxDB. The InfluxQL is
// built here from validated parameters only: the measurement and fields
// from the measurement schema, the device from the inventory, times as
// integers, `every` from a fixed set; every name quoted with ident/literal.
import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import type { App } from '../../app.ts';
import { schoolScope } from '../../app.ts';
import type { ApiContext } from '../../context.ts';
import { ApiError } from '../../errors.ts';
import type { Device } from '../../../config/load.ts';
import { DEVICE_KINDS } from '../../../config/schema.ts';
import { DEVICE_TAGS, measurements, type MeasurementSpec } from '../../../config/measurements.ts';
import { STATES } from '../../../stores/model.ts';
import { ident, literal, InfluxHttpError, type InfluxResult } from '../../../stores/influx/client.ts';
import { RAW_RP, ROLLUP_RP } from '../../../stores/influx/setup.ts';
import type { Snapshot, StateView } from './snapshot.ts';
import { DeviceIdZ, DeviceStateZ, ErrorZ, errors, Iso, isoOrNull, ObservedZ, observedJson, parseTime, areaOffset, SchoolCodeZ, scopedSchool, TimeParamZ } from './common.ts';

const DeviceZ = z.object({
  id: z.string(),
  kind: z.enum(DEVICE_KINDS),
  name: z.string().nullable(),
  school: z.string(),
  address: z.string(),
  profile: z.string(),
  parent: z.string().nullable(),
  classroom: z.string().nullable(),
  uplink_if: z.string().nullable(),
  state: DeviceStateZ,
  since: Iso.nullable().meta({ description: 'when the device entered its state; null: never judged' }),
  cause: z.string().nullable().meta({ description: 'the device whose failure explains the state (itself when down, a parent when unreachable)' }),
  flapping: z.boolean(),
});
const DeviceDetailZ = DeviceZ.extend({
  checks: z.array(z.object({ check: z.string(), state: DeviceStateZ, since: Iso })).meta({ description: 'the checks judged on this device (SNMP agent, uplink, receiver lock, disks ...)' }),
  observed: ObservedZ,
});

function deviceJson(d: Device, snap: Snapshot): z.infer<typeof DeviceZ> {
  const s = snap.devices.get(d.id);
  return {
    id: d.id,
    kind: d.kind,
    name: d.name ?? null,
    school: d.school.code,
    address: d.address,
    profile: d.profile,
    parent: d.parent ?? null,
    classroom: d.classroom ?? null,
    uplink_if: d.uplink_if ?? null,
    state: s?.state ?? 'unknown',
    since: isoOrNull(s?.since),
    cause: s && s.state !== 'up' ? s.cause : null,
    flapping: s?.flapping ?? false,
  };
}

/** The device a request may see: another school's device is answered as if it did not exist (404). */
export function deviceFor(req: FastifyRequest, ctx: ApiContext, id: string, where = 'params.id'): Device {
  const d = ctx.config.deviceById.get(id);
  const scope = schoolScope(req);
  if (!d || (scope !== null && d.school.code !== scope)) throw new ApiError(404, 'not_found', `${where}: no device ${id} in the inventory${scope !== null ? ` of school ${scope}` : ''}`);
  return d;
}

// ---------------------------------------------------------------- metrics

/** Measurements about one device (they carry the `device` tag). */
const DEVICE_MEASUREMENTS = (Object.values(measurements) as MeasurementSpec[]).filter((m) => m.tags.includes('device')).map((m) => m.name);
export const EVERY = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '6h': 21_600_000, '1d': 86_400_000 } as const;
/** The longest time range a request may ask for. */
export const MAX_RANGE_MS = 31 * 86_400_000;
export const DEFAULT_RANGE_MS = 3_600_000;
/** Points per answer, over all series; more are cut (truncated: true). */
export const MAX_POINTS = 5000;
/** Series per answer (interfaces, disks, sensors of one device). */
export const MAX_SERIES = 200;
const MAX_FIELDS = 20;

const MetricsQueryZ = z.object({
  measurement: z.enum(DEVICE_MEASUREMENTS as [string, ...string[]]).default('icmp').meta({ description: 'a measurement of the schema with a device tag' }),
  fields: z.string().max(600).optional().meta({ description: 'comma-separated fields of the measurement; default its numeric fields' }),
  from: TimeParamZ.optional().meta({ description: 'default: `to` less one hour' }),
  to: TimeParamZ.optional().meta({ description: 'default: now' }),
  every: z.enum(Object.keys(EVERY) as [keyof typeof EVERY, ...(keyof typeof EVERY)[]]).optional().meta({ description: 'aggregate per interval with each field\'s own roll-up (mean, max, sum, last); absent: raw points' }),
});

const MetricsZ = z.object({
  device: z.string(),
  measurement: z.string(),
  fields: z.array(z.string()),
  from: Iso,
  to: Iso,
  every: z.string().nullable(),
  retentionPolicy: z.string().meta({ description: `${RAW_RP} (raw points) or ${ROLLUP_RP} (5-minute roll-ups, for ranges older than the raw retention)` }),
  points: z.array(z.object({ time: Iso, tags: z.record(z.string(), z.string()), values: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])) })),
  truncated: z.boolean().meta({ description: `true when more than ${MAX_POINTS} points (or ${MAX_SERIES} series) matched: narrow the range or choose a longer every` }),
});

/** The InfluxQL of a metrics request: built from the schema's names and numbers only. */
export function metricsQuery(o: { rp: string; m: MeasurementSpec; fields: string[]; device: string; from: number; to: number; every?: number | undefined; everyText?: string | undefined }): string {
  const extraTags = o.m.tags.filter((t) => !(DEVICE_TAGS as readonly string[]).includes(t));
  const from = `${ident(o.rp)}.${ident(o.m.name)}`;
  const where = `${ident('device')} = ${literal(o.device)} AND time >= ${Math.trunc(o.from)}ms AND time < ${Math.trunc(o.to)}ms`;
  if (o.every === undefined) {
    const cols = [...o.fields.map(ident), ...extraTags.map(ident)].join(', ');
    return `SELECT ${cols} FROM ${from} WHERE ${where} ORDER BY time DESC LIMIT ${MAX_POINTS + 1}`;
  }
  const aggs = o.fields.map((f) => {
    const r = o.m.fields[f]!.rollup;
    return `${r === 'none' ? 'last' : r}(${ident(f)}) AS ${ident(f)}`;
  });
  const perSeries = Math.min(MAX_POINTS + 1, Math.ceil((o.to - o.from) / o.every) + 1);
  const group = [`time(${o.everyText})`, ...extraTags.map(ident)].join(', ');
  return `SELECT ${aggs.join(', ')} FROM ${from} WHERE ${where} GROUP BY ${group} fill(none) ORDER BY time DESC LIMIT ${perSeries} SLIMIT ${MAX_SERIES + 1}`;
}

function influxReason(err: unknown): string {
  if (err instanceof InfluxHttpError) return `it answered HTTP ${err.status}`;
  const msg = (err as Error).message ?? String(err);
  // "influxdb URL: query: ECONNREFUSED": the last part is the cause.
  const m = /: (?:query(?: "[^"]*")?): (.+)$/.exec(msg);
  return (m?.[1] ?? msg).slice(0, 200);
}

/**
 * InfluxDB answers for at most a second, and one query in flight per text:
 * a dashboard or script asking the same device's recent points many times a
 * second costs InfluxDB one query a second (InfluxDB took ~6 ms a query in
 * bench/api, which capped the route below 1,000 requests/s). Past its second,
 * an answer is still given for one more second while the next one is asked
 * (so no request waits on InfluxDB at each second's turn); older than that,
 * a request waits for the new answer. Points arrive every polling interval
 * (30 s or more), so an answer two seconds old is as recent. A failed query
 * is not kept (its stale answer is dropped too).
 */
export class RecentQueries<T> {
  private readonly kept = new Map<string, { at: number; answer: Promise<T>; refreshing?: boolean }>();
  private readonly ttlMs: number;
  private readonly max: number;
  constructor(ttlMs = 1_000, max = 500) {
    this.ttlMs = ttlMs;
    this.max = max;
  }
  get(key: string, now: number, ask: () => Promise<T>): Promise<T> {
    const hit = this.kept.get(key);
    const age = hit ? now - hit.at : -1;
    if (hit && age >= 0 && age < this.ttlMs) return hit.answer;
    if (hit && age >= 0 && age < 2 * this.ttlMs) {
      // Given once more while the next answer is asked (one refresh at a time).
      if (!hit.refreshing) {
        hit.refreshing = true;
        const answer = ask();
        answer.then(
          () => {
            if (this.kept.get(key) === hit) this.kept.set(key, { at: now, answer });
          },
          () => {
            if (this.kept.get(key) === hit) this.kept.delete(key);
          },
        );
      }
      return hit.answer;
    }
    if (this.kept.size >= this.max) {
      for (const [k, v] of this.kept) if (now - v.at >= 2 * this.ttlMs || now < v.at) this.kept.delete(k);
      if (this.kept.size >= this.max) this.kept.delete(this.kept.keys().next().value!);
    }
    const answer = ask();
    const entry = { at: now, answer };
    this.kept.set(key, entry);
    answer.catch(() => {
      if (this.kept.get(key) === entry) this.kept.delete(key);
    });
    return answer;
  }
}

export async function register(app: App, ctx: ApiContext, view: StateView): Promise<void> {
  const recent = new RecentQueries<Buffer>();
  app.get(
    '/v1/devices',
    {
      config: { roles: ['officer', 'school'] },
      schema: {
        tags: ['views'],
        summary: 'Devices with inventory facts and state (never a credential)',
        description: 'A school token gets its own school\'s devices; asking for another school is refused (403).',
        querystring: z.object({
          school: SchoolCodeZ.optional(),
          kind: z.enum(DEVICE_KINDS).optional(),
          state: z.enum(STATES).optional(),
        }),
        response: { 200: z.object({ observed: ObservedZ, devices: z.array(DeviceZ) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query;
      const school = scopedSchool(req, q.school, schoolScope(req));
      if (school !== undefined && !view.config.schools.some((s) => s.code === school)) throw new ApiError(404, 'not_found', `querystring.school: no school ${school} in the inventory`);
      const snap = view.snapshot();
      const out: z.infer<typeof DeviceZ>[] = [];
      for (const d of view.config.devices) {
        if (school !== undefined && d.school.code !== school) continue;
        if (q.kind !== undefined && d.kind !== q.kind) continue;
        const j = deviceJson(d, snap);
        if (q.state !== undefined && j.state !== q.state) continue;
        out.push(j);
      }
      return { observed: observedJson(snap, ctx.now()), devices: out };
    },
  );

  app.get(
    '/v1/devices/:id',
    {
      config: { roles: ['officer', 'school'] },
      schema: {
        tags: ['views'],
        summary: 'One device: inventory facts, state, its checks',
        description: 'Another school\'s device is answered 404 to a school token, as if it did not exist.',
        params: z.object({ id: DeviceIdZ }),
        response: { 200: DeviceDetailZ, ...errors },
      },
    },
    async (req) => {
      const d = deviceFor(req, ctx, req.params.id);
      const snap = view.snapshot();
      const checks = (snap.checks.get(d.id) ?? []).map((c) => ({ check: c.check, state: c.state, since: new Date(c.since).toISOString() })).sort((a, b) => a.check.localeCompare(b.check));
      return { ...deviceJson(d, snap), checks, observed: observedJson(snap, ctx.now()) };
    },
  );

  app.get(
    '/v1/devices/:id/metrics',
    {
      config: { roles: ['officer', 'school'] },
      schema: {
        tags: ['views'],
        summary: 'Recent metrics of one device from InfluxDB',
        description: `Raw points, or per \`every\` with each field's roll-up; newest first; at most ${MAX_POINTS} points, a range of at most 31 days (default the last hour). InfluxDB not answering: 503.`,
        params: z.object({ id: DeviceIdZ }),
        querystring: MetricsQueryZ,
        response: { 200: MetricsZ, ...errors, 503: ErrorZ },
      },
    },
    async (req, reply) => {
      const d = deviceFor(req, ctx, req.params.id);
      const q = req.query;
      const m = measurements[q.measurement as keyof typeof measurements] as MeasurementSpec;
      let fields: string[];
      if (q.fields === undefined || q.fields.trim() === '') fields = Object.entries(m.fields).filter(([, f]) => f.type !== 'string').map(([n]) => n);
      else {
        fields = [...new Set(q.fields.split(',').map((f) => f.trim()).filter((f) => f !== ''))];
        if (fields.length > MAX_FIELDS) throw new ApiError(400, 'bad_request', `querystring.fields: ${fields.length} fields; at most ${MAX_FIELDS}`);
        for (const f of fields) {
          if (!Object.hasOwn(m.fields, f)) throw new ApiError(400, 'bad_request', `querystring.fields: ${JSON.stringify(f.slice(0, 60))} is not a field of measurement ${m.name} (${Object.keys(m.fields).join(', ')})`);
        }
      }
      if (fields.length === 0) fields = Object.keys(m.fields);
      // "Now" to the second: the same request within a second is the same query, answered once (below).
      const now = Math.floor(ctx.now() / 1000) * 1000;
      const to = q.to === undefined ? now : parseTime(q.to, 'querystring.to', areaOffset(ctx));
      const from = q.from === undefined ? to - DEFAULT_RANGE_MS : parseTime(q.from, 'querystring.from', areaOffset(ctx));
      if (from >= to) throw new ApiError(400, 'bad_request', `querystring.from: ${new Date(from).toISOString()} is not before to (${new Date(to).toISOString()})`);
      if (to - from > MAX_RANGE_MS) throw new ApiError(400, 'bad_request', `querystring.from: the range is ${Math.ceil((to - from) / 86_400_000)} days; at most 31`);
      const every = q.every === undefined ? undefined : EVERY[q.every];
      if (every !== undefined && (to - from) / every > MAX_POINTS) throw new ApiError(400, 'bad_request', `querystring.every: ${q.every} over this range gives ${Math.ceil((to - from) / every)} points per series; at most ${MAX_POINTS}: choose a longer every or a shorter range`);
      const rp = from >= now - ctx.config.settings.influx.raw_retention ? RAW_RP : ROLLUP_RP;
      const text = metricsQuery({ rp, m, fields, device: d.id, from, to, every, everyText: q.every });
      // The answer, as the bytes sent: the same query within a second is answered from them.
      const answer = async (): Promise<Buffer> => {
        let results: InfluxResult[];
        try {
          results = await ctx.influx.query(text);
        } catch (err) {
          const url = new URL(ctx.influx.target.url);
          url.username = '';
          url.password = '';
          req.log.warn({ err: { message: (err as Error).message } }, 'metrics: InfluxDB query failed');
          throw new ApiError(503, 'unavailable', `InfluxDB at ${url.origin} did not answer the metrics query (${influxReason(err)}); device states and incidents are still answered from the state database (/v1/status)`);
        }
        const points: z.infer<typeof MetricsZ>['points'] = [];
        const series = results[0]?.series ?? [];
        let truncated = series.length > MAX_SERIES;
        for (const s of series.slice(0, MAX_SERIES)) {
          const tagCols = new Set(m.tags);
          const timeAt = s.columns.indexOf('time');
          for (const row of s.values ?? []) {
            if (points.length === MAX_POINTS) {
              truncated = true;
              break;
            }
            const tags: Record<string, string> = { ...(s.tags ?? {}) };
            const values: Record<string, number | string | boolean | null> = {};
            s.columns.forEach((c, i) => {
              if (i === timeAt) return;
              const v = row[i];
              if (tagCols.has(c)) {
                if (typeof v === 'string') tags[c] = v;
              } else values[c] = typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' ? v : null;
            });
            points.push({ time: new Date(Number(row[timeAt])).toISOString(), tags, values });
          }
        }
        const json: z.infer<typeof MetricsZ> = { device: d.id, measurement: m.name, fields, from: new Date(from).toISOString(), to: new Date(to).toISOString(), every: q.every ?? null, retentionPolicy: rp, points, truncated };
        return Buffer.from(JSON.stringify(MetricsZ.parse(json)), 'utf8');
      };
      const bytes = await recent.get(text, now, answer);
      return reply.type('application/json; charset=utf-8').send(bytes as unknown as z.infer<typeof MetricsZ>);
    },
  );
}
