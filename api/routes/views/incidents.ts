// GET /v1/problems: what is wrong now (open outages and failing checks),
// with the Thai and English words the notices use. GET /v1/incidents: the
// incident record with filters, newest first, paged. Both from the state
// database. A school token's answers are limited to its own school.
import { z } from 'zod';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { App } from '../../app.ts';
import { schoolScope } from '../../app.ts';
import { StoreMissing, type ApiContext } from '../../context.ts';
import { ApiError } from '../../errors.ts';
import { DEVICE_KINDS, type DeviceKind } from '../../../config/schema.ts';
import { checkTh, DEVICE_FIRST_CHECK, formatEnglishTime, formatThaiTime, KIND_TH, TH } from '../../../config/thai.ts';
import type { OpenIncident, StateView } from './snapshot.ts';
import type { IncidentRow } from '../../../stores/state.ts';
import { DeviceIdZ, errors, Iso, isoOrNull, ObservedZ, observedJson, parseTime, areaOffset, SchoolCodeZ, scopedSchool, TimeParamZ } from './common.ts';
import { deviceFor } from './devices.ts';

export const MAX_LIMIT = 1000;
export const MAX_OFFSET = 1_000_000;

const TextZ = z.object({ title: z.string(), text: z.string(), first: z.string().nullable() });
const ProblemZ = z.object({
  incident: z.number().int(),
  type: z.enum(['outage', 'unreachable', 'check']).meta({ description: 'outage: the device itself down; unreachable: behind a failed parent (cause); check: the device answers but a check fails' }),
  school: z.string(),
  schoolName: z.string().nullable(),
  device: z.string(),
  deviceName: z.string().nullable(),
  kind: z.string(),
  check: z.string().nullable(),
  cause: z.string(),
  detail: z.string().nullable().meta({ description: 'what a check saw, as the collector wrote it' }),
  since: Iso,
  th: TextZ,
  en: TextZ,
});

const IncidentZ = z.object({
  id: z.number().int(),
  device: z.string(),
  check: z.string().nullable().meta({ description: 'null for the device itself (reachability), else the check' }),
  school: z.string(),
  kind: z.string(),
  state: z.enum(['down', 'unreachable']),
  cause: z.string(),
  detail: z.string().nullable(),
  startedAt: Iso,
  endedAt: Iso.nullable(),
  durationS: z.number().int().nullable(),
  open: z.boolean(),
});

const kindTh = (k: string) => KIND_TH[k as DeviceKind] ?? k;

function problemJson(i: OpenIncident, ctx: ApiContext, schoolName: string | undefined): z.infer<typeof ProblemZ> {
  const d = ctx.config.deviceById.get(i.device);
  const name = d?.name ?? i.device;
  const since = { th: formatThaiTime(i.startedAt), en: formatEnglishTime(i.startedAt) };
  const base = { incident: i.id, school: i.school, schoolName: schoolName ?? null, device: i.device, deviceName: d?.name ?? null, kind: i.kind, cause: i.cause, detail: i.detail, since: new Date(i.startedAt).toISOString() };
  if (i.check !== '') {
    const t = checkTh(i.check);
    const index = i.check.includes(':') ? i.check.slice(i.check.indexOf(':') + 1) : undefined;
    const v = index !== undefined ? { index } : {};
    return {
      ...base,
      type: 'check',
      check: i.check,
      th: { title: `${kindTh(i.kind)} ${name}: ${t.title}`, text: TH.checkDown(name, t.problem(v), since.th), first: TH.firstCheck(t.first(v)) },
      en: { title: `${i.kind} ${i.device}: check ${i.check} failing`, text: `${i.device}: check ${i.check} failing since ${since.en}${i.detail ? ` (${i.detail})` : ''}`, first: null },
    };
  }
  if (i.state === 'unreachable') {
    return {
      ...base,
      type: 'unreachable',
      check: null,
      th: { title: `${kindTh(i.kind)}ติดต่อไม่ได้`, text: `${name} ติดต่อไม่ได้ เพราะ ${i.cause} ที่อยู่ต้นทางขัดข้อง ตั้งแต่ ${since.th}`, first: TH.firstCheck(`แก้ไขที่ ${i.cause} ก่อน`) },
      en: { title: `${i.kind} unreachable`, text: `${i.device} unreachable behind ${i.cause} since ${since.en}`, first: `repair ${i.cause} first` },
    };
  }
  return {
    ...base,
    type: 'outage',
    check: null,
    th: { title: TH.subjectDown(kindTh(i.kind)), text: TH.deviceDown(name, since.th), first: TH.firstCheck(DEVICE_FIRST_CHECK[i.kind as DeviceKind] ?? DEVICE_FIRST_CHECK.other) },
    en: { title: `${i.kind} down`, text: `${i.device} down since ${since.en}`, first: null },
  };
}

const incidentJson = (r: IncidentRow): z.infer<typeof IncidentZ> => ({
  id: r.id,
  device: r.device,
  check: r.check_name === '' ? null : r.check_name,
  school: r.school,
  kind: r.kind,
  state: r.state === 'unreachable' ? 'unreachable' : 'down',
  cause: r.cause,
  detail: r.detail,
  startedAt: new Date(r.started_at).toISOString(),
  endedAt: isoOrNull(r.ended_at),
  durationS: r.duration_s,
  open: r.ended_at === null,
});

/** Prepared statements per filter combination (at most 2^8) and database. */
class IncidentQueries {
  private readonly cache = new WeakMap<DatabaseSync, Map<string, { rows: StatementSync; count: StatementSync }>>();
  get(db: DatabaseSync, clauses: string[]): { rows: StatementSync; count: StatementSync } {
    let perDb = this.cache.get(db);
    if (!perDb) this.cache.set(db, (perDb = new Map()));
    const key = clauses.join(' AND ');
    let s = perDb.get(key);
    if (!s) {
      const where = clauses.length > 0 ? `WHERE ${key}` : '';
      s = {
        rows: db.prepare(`SELECT id, device, check_name, school, kind, state, cause, detail, started_at, ended_at, duration_s FROM incidents ${where} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?`),
        count: db.prepare(`SELECT count(*) AS n FROM incidents ${where}`),
      };
      perDb.set(key, s);
    }
    return s;
  }
}

export async function register(app: App, ctx: ApiContext, view: StateView): Promise<void> {
  app.get(
    '/v1/problems',
    {
      config: { roles: ['officer', 'school', 'viewer'] },
      schema: {
        tags: ['views'],
        summary: 'Open problems now: outages, devices unreachable behind them, failing checks',
        description: 'From the state database (answers while InfluxDB is down), oldest first, with Thai and English text. A school token gets its own school.',
        querystring: z.object({ school: SchoolCodeZ.optional() }),
        response: {
          200: z.object({
            observed: ObservedZ,
            counts: z.object({ outages: z.number().int(), unreachable: z.number().int(), checks: z.number().int() }),
            truncated: z.boolean(),
            problems: z.array(ProblemZ),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const school = scopedSchool(req, req.query.school, schoolScope(req));
      const snap = view.snapshot();
      const problems = snap.open.filter((i) => school === undefined || i.school === school).map((i) => problemJson(i, ctx, snap.schoolByCode.get(i.school)?.school.name_th));
      const counts = { outages: 0, unreachable: 0, checks: 0 };
      for (const p of problems) counts[p.type === 'outage' ? 'outages' : p.type === 'unreachable' ? 'unreachable' : 'checks']++;
      return { observed: observedJson(snap, ctx.now()), counts, truncated: snap.openTruncated, problems };
    },
  );

  const queries = new IncidentQueries();
  app.get(
    '/v1/incidents',
    {
      config: { roles: ['officer', 'school'] },
      schema: {
        tags: ['views'],
        summary: 'Incidents (outages and failed checks), newest first, paged',
        description: `Filters combine. from/to: incidents that overlap [from, to). limit at most ${MAX_LIMIT}; \`next\` is the offset of the next page (null on the last). A school token gets its own school.`,
        querystring: z.object({
          school: SchoolCodeZ.optional(),
          device: DeviceIdZ.optional(),
          kind: z.enum(DEVICE_KINDS).optional().meta({ description: 'the device kind' }),
          state: z.enum(['down', 'unreachable']).optional(),
          check: z.string().min(1).max(200).optional().meta({ description: 'a check name ("uplink", "storage.used_pct:/"), or "none" for the device itself' }),
          open: z.enum(['true', 'false']).optional().meta({ description: 'true: still open; false: ended' }),
          from: TimeParamZ.optional(),
          to: TimeParamZ.optional(),
          limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(100),
          offset: z.coerce.number().int().min(0).max(MAX_OFFSET).default(0),
        }),
        response: {
          200: z.object({ total: z.number().int(), limit: z.number().int(), offset: z.number().int(), next: z.number().int().nullable(), incidents: z.array(IncidentZ) }),
          ...errors,
        },
      },
    },
    async (req) => {
      const q = req.query;
      const scope = schoolScope(req);
      const school = scopedSchool(req, q.school, scope);
      if (q.device !== undefined && scope !== null) deviceFor(req, ctx, q.device, 'querystring.device');
      const clauses: string[] = [];
      const args: (string | number)[] = [];
      const add = (clause: string, arg: string | number) => {
        clauses.push(clause);
        args.push(arg);
      };
      if (school !== undefined) add('school = ?', school);
      if (q.device !== undefined) add('device = ?', q.device);
      if (q.kind !== undefined) add('kind = ?', q.kind);
      if (q.state !== undefined) add('state = ?', q.state);
      if (q.check !== undefined) add('check_name = ?', q.check === 'none' ? '' : q.check);
      if (q.open === 'true') clauses.push('ended_at IS NULL');
      if (q.open === 'false') clauses.push('ended_at IS NOT NULL');
      const from = q.from === undefined ? undefined : parseTime(q.from, 'querystring.from', areaOffset(ctx));
      const to = q.to === undefined ? undefined : parseTime(q.to, 'querystring.to', areaOffset(ctx));
      if (from !== undefined && to !== undefined && from >= to) throw new ApiError(400, 'bad_request', `querystring.from: ${new Date(from).toISOString()} is not before to (${new Date(to).toISOString()})`);
      if (to !== undefined) add('started_at < ?', to);
      if (from !== undefined) add('(ended_at IS NULL OR ended_at > ?)', from);
      let db: DatabaseSync;
      try {
        db = ctx.stateDb();
      } catch (err) {
        if (err instanceof StoreMissing) return { total: 0, limit: q.limit, offset: q.offset, next: null, incidents: [] };
        throw err;
      }
      if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'incidents'").get()) return { total: 0, limit: q.limit, offset: q.offset, next: null, incidents: [] };
      const s = queries.get(db, clauses);
      const rows = s.rows.all(...args, q.limit + 1, q.offset) as unknown as IncidentRow[];
      const total = Number((s.count.get(...args) as { n: number }).n);
      const more = rows.length > q.limit;
      return { total, limit: q.limit, offset: q.offset, next: more ? q.offset + q.limit : null, incidents: rows.slice(0, q.limit).map(incidentJson) };
    },
  );
}
