// GET /v1/status, /v1/schools, /v1/schools/:code: the area now, from the
// state database only (they answer while InfluxDB is down), and the
// inventory's facts about each school. A school token sees its own school.
import { z } from 'zod';
import { gzipSync } from 'node:zlib';
import type { App } from '../../app.ts';
import { schoolScope, assertSchool } from '../../app.ts';
import type { ApiContext } from '../../context.ts';
import { ApiError } from '../../errors.ts';
import { SCHOOL_STATES, type SchoolState } from '../../../stores/model.ts';
import { addCounts, emptyCounts, type SchoolView, type Snapshot, type StateView } from './snapshot.ts';
import { CountsZ, DeviceStateZ, errors, Iso, isoOrNull, ObservedZ, observedJson, SchoolCodeZ, SchoolStateZ } from './common.ts';

const SchoolStatusZ = z.object({
  code: z.string(),
  name_th: z.string(),
  office: z.boolean().meta({ description: "true for the area office's own site (not a school)" }),
  state: SchoolStateZ,
  devices: CountsZ,
  problems: z.number().int().meta({ description: 'open incidents: outages and failing checks' }),
});

export const StatusZ = z.object({
  generatedAt: Iso,
  observed: ObservedZ,
  totals: z.object({
    schools: z.number().int(),
    schoolStates: z.object(Object.fromEntries(SCHOOL_STATES.map((s) => [s, z.number().int()])) as Record<SchoolState, z.ZodNumber>),
    devices: CountsZ,
    problems: z.number().int(),
  }),
  schools: z.array(SchoolStatusZ),
});
export type StatusJson = z.infer<typeof StatusZ>;

const ContactZ = z.object({ name: z.string().nullable(), email: z.string(), role: z.string().nullable() });
const SchoolZ = SchoolStatusZ.extend({
  name_en: z.string().nullable(),
  district: z.string(),
  cluster: z.string().nullable(),
  location: z.object({ lat: z.number(), lon: z.number() }).nullable(),
  contacts: z.array(ContactZ).optional().meta({ description: 'personal data: given to officer tokens only' }),
});
const SchoolDetailZ = SchoolZ.extend({
  observed: ObservedZ,
  deviceList: z.array(z.object({ id: z.string(), kind: z.string(), name: z.string().nullable(), state: DeviceStateZ, since: Iso.nullable() })),
});

function schoolStatus(v: SchoolView): z.infer<typeof SchoolStatusZ> {
  const s = v.school;
  return { code: s.code, name_th: s.name_th, office: s.office, state: v.state, devices: v.devices, problems: v.problems };
}

function schoolJson(v: SchoolView, withContacts: boolean): z.infer<typeof SchoolZ> {
  const s = v.school;
  return {
    ...schoolStatus(v),
    name_en: s.name_en ?? null,
    district: s.district,
    cluster: s.cluster ?? null,
    location: s.location ? { lat: s.location.lat, lon: s.location.lon } : null,
    ...(withContacts ? { contacts: s.contacts.map((c) => ({ name: c.name ?? null, email: c.email, role: c.role ?? null })) } : {}),
  };
}

function status(snap: Snapshot, views: readonly SchoolView[], now: number): StatusJson {
  const schoolStates = Object.fromEntries(SCHOOL_STATES.map((s) => [s, 0])) as Record<SchoolState, number>;
  const devices = emptyCounts();
  let problems = 0;
  for (const v of views) {
    schoolStates[v.state]++;
    addCounts(devices, v.devices);
    problems += v.problems;
  }
  return { generatedAt: new Date(now).toISOString(), observed: observedJson(snap, now), totals: { schools: views.length, schoolStates, devices, problems }, schools: views.map(schoolStatus) };
}

/** Whether an Accept-Encoding header takes gzip (not refused with q=0); a header longer than 200 characters is not read. */
export function acceptsGzip(h: string | string[] | undefined): boolean {
  if (typeof h !== 'string' || h.length > 200) return false;
  for (const part of h.split(',', 20)) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (name !== 'gzip' && name !== 'x-gzip' && name !== '*') continue;
    const q = params.map((p) => /^\s*q=([0-9.]{1,5})\s*$/.exec(p)).find(Boolean);
    return !q || Number(q[1]) > 0;
  }
  return false;
}

export async function register(app: App, ctx: ApiContext, view: StateView): Promise<void> {
  // /v1/status is read often (dashboards, scripts, the benchmark): its JSON is
  // kept per snapshot, scope and second as UTF-8 bytes, and gzipped, and sent
  // as they are (no serializing, no encoding per request). At 250 schools the
  // JSON is ~45 KB and writing it is most of a request's cost; gzipped
  // (Accept-Encoding: gzip, as browsers, curl --compressed and Grafana send)
  // it is about a tenth.
  const cache = new Map<string, { key: string; second: number; json: Buffer; gzip: Buffer }>();
  const MAX_CACHED = 2 * (ctx.config.schools.length + 1);

  app.get(
    '/v1/status',
    {
      config: { roles: ['officer', 'school', 'viewer'] },
      schema: {
        tags: ['views'],
        summary: 'The area now: each school\'s state, its devices by state and open problems, and how fresh that is',
        description: 'From the state database only: answers while InfluxDB is down. A school token gets its own school.',
        response: { 200: StatusZ, ...errors },
      },
    },
    async (req, reply) => {
      const scope = schoolScope(req);
      const snap = view.snapshot();
      const now = ctx.now();
      const second = Math.floor(now / 1000);
      const ck = scope ?? '';
      let hit = cache.get(ck);
      if (!hit || hit.key !== snap.key || hit.second !== second) {
        const views = scope === null ? snap.schools : snap.schools.filter((s) => s.school.code === scope);
        if (cache.size >= MAX_CACHED) cache.clear();
        const json = Buffer.from(JSON.stringify(status(snap, views, now)), 'utf8');
        hit = { key: snap.key, second, json, gzip: gzipSync(json, { level: 6 }) };
        cache.set(ck, hit);
      }
      reply.header('cache-control', 'no-store').header('vary', 'accept-encoding').type('application/json; charset=utf-8');
      // The JSON's bytes are sent as they are (a Buffer skips the serializer).
      if (acceptsGzip(req.headers['accept-encoding'])) return reply.header('content-encoding', 'gzip').send(hit.gzip as unknown as StatusJson);
      return reply.send(hit.json as unknown as StatusJson);
    },
  );

  app.get(
    '/v1/schools',
    {
      config: { roles: ['officer', 'school', 'viewer'] },
      schema: {
        tags: ['views'],
        summary: 'Schools (and the office) with inventory facts and state',
        description: 'Contacts (personal data) are given to officer tokens only. A school token gets its own school.',
        response: { 200: z.object({ observed: ObservedZ, schools: z.array(SchoolZ) }), ...errors },
      },
    },
    async (req) => {
      const scope = schoolScope(req);
      const snap = view.snapshot();
      const officer = req.principal?.role === 'officer';
      const views = scope === null ? snap.schools : snap.schools.filter((s) => s.school.code === scope);
      return { observed: observedJson(snap, ctx.now()), schools: views.map((v) => schoolJson(v, officer)) };
    },
  );

  app.get(
    '/v1/schools/:code',
    {
      config: { roles: ['officer', 'school', 'viewer'] },
      schema: {
        tags: ['views'],
        summary: 'One school: inventory facts, state, its devices\' states',
        params: z.object({ code: SchoolCodeZ }),
        response: { 200: SchoolDetailZ, ...errors },
      },
    },
    async (req) => {
      const { code } = req.params;
      assertSchool(req, code);
      const snap = view.snapshot();
      const v = snap.schoolByCode.get(code);
      if (!v) throw new ApiError(404, 'not_found', `params.code: no school ${code} in the inventory`);
      return {
        ...schoolJson(v, req.principal?.role === 'officer'),
        observed: observedJson(snap, ctx.now()),
        deviceList: v.school.devices.map((d) => {
          const s = snap.devices.get(d.id);
          return { id: d.id, kind: d.kind, name: d.name ?? null, state: s?.state ?? 'unknown', since: isoOrNull(s?.since) };
        }),
      };
    },
  );
}
