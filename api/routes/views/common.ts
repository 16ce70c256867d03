// Pieces the view routes share: zod schemas of states and counts, time
// parameters, and the school scope of a request.
import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import { SCHOOL_STATES, STATES } from '../../../stores/model.ts';
import { ApiError } from '../../errors.ts';
import { AREA_OFFSET_MINUTES, parseAreaTime, TIME_FORMS } from '../../../config/time.ts';
import { ErrorZ } from '../../app.ts';
import type { Snapshot } from './snapshot.ts';

export const iso = (t: number) => new Date(t).toISOString();
export const isoOrNull = (t: number | null | undefined) => (t === null || t === undefined || !Number.isFinite(t) ? null : iso(t));

export const Iso = z.string().meta({ description: 'ISO 8601 time, UTC', example: '2026-11-29T01:00:00.000Z' });
export const DeviceStateZ = z.enum(STATES);
export const SchoolStateZ = z.enum(SCHOOL_STATES);
export const CountsZ = z.object({
  total: z.number().int(),
  up: z.number().int(),
  down: z.number().int(),
  unreachable: z.number().int(),
  maintenance: z.number().int(),
  unknown: z.number().int(),
});

export const ObservedZ = z
  .object({
    lastRoundAt: Iso.nullable().meta({ description: "When the collector's last recorded round was judged (rounds.end_at less the polling interval); null: not measured" }),
    coveredUntil: Iso.nullable().meta({ description: 'End of the time the last recorded round covers; after it the next round is late' }),
    runSince: Iso.nullable().meta({ description: 'Start of the current run of consecutive rounds' }),
    ageS: z.number().int().nullable().meta({ description: 'Seconds since lastRoundAt' }),
    stale: z.boolean().nullable().meta({ description: 'true when now is past coveredUntil: no round was recorded for longer than one interval' }),
    reason: z.string().nullable().meta({ description: 'Why the fields above are null (not measured)' }),
  })
  .meta({ description: "How fresh the states are: from the state database's record of rounds" });
export type ObservedJson = z.infer<typeof ObservedZ>;

export function observedJson(s: Snapshot, now: number): ObservedJson {
  const o = s.observed;
  return {
    lastRoundAt: isoOrNull(o.lastRoundAt),
    coveredUntil: isoOrNull(o.coveredUntil),
    runSince: isoOrNull(o.runSince),
    ageS: o.lastRoundAt === null ? null : Math.max(0, Math.round((now - o.lastRoundAt) / 1000)),
    stale: o.coveredUntil === null ? null : now > o.coveredUntil,
    reason: o.reason,
  };
}

export { ErrorZ };
/** Error answers a view may give, for the OpenAPI document. */
export const errors = { 400: ErrorZ, 401: ErrorZ, 403: ErrorZ, 404: ErrorZ } as const;

/** A school code as a parameter: the inventory's own rule, bounded. */
export const SchoolCodeZ = z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/, 'a school code holds letters, digits and "-"');
/** A device id as a parameter: the inventory's own rule, bounded. */
export const DeviceIdZ = z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a device id holds letters, digits, ".", "_" and "-"');

/**
 * The school a request's answer is limited to: a school token's own school
 * (asking for another one by `?school=` is refused with 403), else the one
 * asked for, else none (all).
 */
export function scopedSchool(req: FastifyRequest, asked: string | undefined, scope: string | null): string | undefined {
  if (scope !== null) {
    if (asked !== undefined && asked !== scope) throw new ApiError(403, 'forbidden', `querystring.school: this token sees school ${scope} only`);
    return scope;
  }
  void req;
  return asked;
}

/**
 * A from/to parameter → ms: a date or a date and time without an offset is the
 * area's local time (Asia/Bangkok unless the calendar says otherwise), as the
 * auditor's routes read it; ISO 8601 with Z or an offset; Unix milliseconds.
 * 400 naming the field otherwise.
 */
export function parseTime(text: string, field: string, offsetMinutes: number = AREA_OFFSET_MINUTES): number {
  const t = parseAreaTime(text, offsetMinutes);
  if (t === undefined) throw new ApiError(400, 'bad_request', `${field}: ${JSON.stringify(text.slice(0, 40))} is not a time: give ${TIME_FORMS}`);
  return t;
}

/** The area's offset from UTC in minutes: the calendar's, else Asia/Bangkok's (as the maintenance routes write times). */
export const areaOffset = (ctx: { config: { calendars: readonly { utc_offset_minutes?: number }[] } }): number => ctx.config.calendars[0]?.utc_offset_minutes ?? AREA_OFFSET_MINUTES;

export const TimeParamZ = z.string().min(1).max(40).meta({ description: `${TIME_FORMS}; without an offset, the area's local time (Asia/Bangkok)`, example: '2026-11-29' });
