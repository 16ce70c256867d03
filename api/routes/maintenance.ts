// Maintenance windows over the API (officer only): create, list, end. They
// are kept in the state database (stores/maintenance.ts) beside the
// settings' alerts.maintenance; the collector reads the ones in force at each
// round, the report those of its period, so a window that is over still
// counts in the reports of the time it covered.
import { z } from 'zod';
import type { DatabaseSync } from 'node:sqlite';
import { ErrorZ, type App } from '../app.ts';
import { formatAreaTime } from '../../config/time.ts';
import { StoreMissing, type ApiContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { parseTime, TimeParamZ } from './views/common.ts';
import { TIME_FORMS } from '../../config/time.ts';
import { createWindow, endWindow, listWindows, MaintenanceError, MAX_LIST, MAX_REASON_CHARS, MAX_TARGETS, type MaintenanceWindow } from '../../stores/maintenance.ts';

const OFFICER = ['officer'] as const;

const instant = (what: string) => z.iso.datetime({ offset: true, error: `must be a date and time with its offset, such as "2026-12-01T18:00:00+07:00" (${what})` });
const code = z.string().min(1).max(100);
const actor = z.object({ id: z.string(), name: z.string() });

const windowOut = z.object({
  id: z.number().int(),
  schools: z.array(z.string()),
  devices: z.array(z.string()),
  start: z.string().describe('ISO 8601 in the area\'s local time'),
  end: z.string().describe('the end it was made with'),
  until: z.string().describe('its effective end: the earlier of end and ended_at'),
  reason: z.string(),
  status: z.enum(['planned', 'in_force', 'over', 'cancelled']).describe('at the moment of the answer; cancelled: ended before it began'),
  created_by: actor,
  created_at: z.string(),
  ended_at: z.string().nullable(),
  ended_by: actor.nullable(),
});


export async function register(app: App, ctx: ApiContext): Promise<void> {
  const offsetMin = ctx.config.calendars[0]?.utc_offset_minutes ?? 420;
  const iso = (t: number) => formatAreaTime(t, offsetMin);
  const out = (w: MaintenanceWindow, now: number): z.infer<typeof windowOut> => ({
    id: w.id,
    schools: w.schools,
    devices: w.devices,
    start: iso(w.start),
    end: iso(w.end),
    until: iso(w.until),
    reason: w.reason,
    status: w.until <= w.start ? 'cancelled' : now < w.start ? 'planned' : now < w.until ? 'in_force' : 'over',
    created_by: w.createdBy,
    created_at: iso(w.createdAt),
    ended_at: w.endedAt === null ? null : iso(w.endedAt),
    ended_by: w.endedBy,
  });
  /** The state database, or 503 naming why there is none (no collector has run with these settings). */
  const db = (): DatabaseSync => {
    try {
      return ctx.stateDb();
    } catch (err) {
      if (err instanceof StoreMissing) throw new ApiError(503, 'state_missing', err.message);
      throw err;
    }
  };
  /** The store's refusals as the API answers them; `where` prefixes the field (body, params). */
  const refused = (err: unknown, where: string): never => {
    if (!(err instanceof MaintenanceError)) throw err;
    if (err.kind === 'not_found') throw new ApiError(404, 'not_found', err.message);
    if (err.kind === 'conflict') throw new ApiError(409, 'conflict', err.message);
    if (err.kind === 'full') throw new ApiError(409, 'full', err.message);
    throw new ApiError(400, 'bad_request', `${where}.${err.message}`);
  };

  app.get(
    '/v1/maintenance',
    {
      config: { roles: OFFICER },
      schema: {
        tags: ['maintenance'],
        summary: 'Maintenance windows made over the API, newest first (the settings\' alerts.maintenance are not listed)',
        querystring: z.strictObject({
          active: z.enum(['true', 'false']).optional().describe('true: only those in force now; false: only those not'),
          from: TimeParamZ.optional().describe(`only windows overlapping [from, to): ${TIME_FORMS}; without an offset, the area's local time`),
          to: TimeParamZ.optional(),
          limit: z.coerce.number().int().min(1).max(MAX_LIST).default(100),
        }),
        response: { 200: z.object({ windows: z.array(windowOut), limit: z.number() }), 400: ErrorZ },
      },
    },
    async (req) => {
      const q = req.query;
      // The same forms as the views' from/to (a bare date is midnight in the area's time); creating a window wants an explicit offset.
      const from = q.from === undefined ? undefined : parseTime(q.from, 'querystring.from', offsetMin);
      const to = q.to === undefined ? undefined : parseTime(q.to, 'querystring.to', offsetMin);
      if (from !== undefined && to !== undefined && to <= from) throw new ApiError(400, 'bad_request', `querystring.to: ${iso(to)} is not after from ${iso(from)}`);
      const now = ctx.now();
      let d: DatabaseSync;
      try {
        d = ctx.stateDb();
      } catch (err) {
        if (err instanceof StoreMissing) return { windows: [], limit: q.limit };
        throw err;
      }
      let list = listWindows(d, { ...(q.active === 'true' ? { active: now } : {}), ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), limit: q.active === 'false' ? MAX_LIST : q.limit });
      if (q.active === 'false') list = list.filter((w) => !(w.start <= now && now < w.until)).slice(0, q.limit);
      return { windows: list.map((w) => out(w, now)), limit: q.limit };
    },
  );

  app.post(
    '/v1/maintenance',
    {
      config: { roles: OFFICER },
      schema: {
        tags: ['maintenance'],
        summary: 'Create a maintenance window: its schools and devices are "maintenance" while it is in force, and the reports leave its time out',
        body: z.strictObject({
          schools: z.array(code).max(MAX_TARGETS).optional().describe('school codes (every device of the school)'),
          devices: z.array(code).max(MAX_TARGETS).optional().describe('device ids'),
          start: instant('start'),
          end: instant('end'),
          reason: z.string().min(1).max(MAX_REASON_CHARS),
        }),
        response: { 201: windowOut, 400: ErrorZ, 409: ErrorZ, 503: ErrorZ },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const p = req.principal!;
      const now = ctx.now();
      let w: MaintenanceWindow;
      try {
        w = createWindow(db(), ctx.config, { ...(b.schools ? { schools: b.schools } : {}), ...(b.devices ? { devices: b.devices } : {}), start: Date.parse(b.start), end: Date.parse(b.end), reason: b.reason }, { id: p.id, name: p.name }, now, iso);
      } catch (err) {
        return refused(err, 'body');
      }
      req.log.info({ window: w.id, by: p.id, schools: w.schools.length, devices: w.devices.length }, 'maintenance window created');
      return reply.code(201).header('location', `/v1/maintenance/${w.id}`).send(out(w, now));
    },
  );

  app.post(
    '/v1/maintenance/:id/end',
    {
      config: { roles: OFFICER },
      schema: {
        tags: ['maintenance'],
        summary: 'End a window now (one not yet begun is cancelled); 409 when it is already over or ended',
        params: z.strictObject({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
        response: { 200: windowOut, 400: ErrorZ, 404: ErrorZ, 409: ErrorZ, 503: ErrorZ },
      },
    },
    async (req) => {
      const p = req.principal!;
      const now = ctx.now();
      let w: MaintenanceWindow;
      try {
        w = endWindow(db(), req.params.id, { id: p.id, name: p.name }, now, iso);
      } catch (err) {
        return refused(err, 'params');
      }
      req.log.info({ window: w.id, by: p.id }, 'maintenance window ended');
      return out(w, now);
    },
  );
}
