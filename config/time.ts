// Times as people type them into a query: a date, a date and time, ISO 8601
// with its offset, or Unix milliseconds. A date or a date-time without an
// offset is the area's local time (Asia/Bangkok, +07:00, unless the calendar
// says otherwise), as every page and report shows it; the API's views and
// maintenance list read their from/to with this, like the auditor's routes.

/** The area's offset from UTC when the calendar gives none (Asia/Bangkok). */
export const AREA_OFFSET_MINUTES = 420;

/** How the accepted forms are named in messages. */
export const TIME_FORMS = 'a date (2026-11-29: midnight, Thai time), a date and time (2026-11-29T08:00, Thai time), ISO 8601 with Z or an offset (2026-11-29T08:00:00+07:00) or Unix milliseconds';

// Anchored, no nested repetition: linear in the input (which callers bound to 40 characters).
const LOCAL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/;
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/**
 * `text` as milliseconds since the epoch, or undefined when it is no time of
 * the forms above or names a day or an hour that does not exist (2026-02-30,
 * 24:00, an offset beyond ±14:00). `offsetMinutes`: the area's offset, for
 * the forms without one.
 */
export function parseAreaTime(text: string, offsetMinutes: number = AREA_OFFSET_MINUTES): number | undefined {
  const s = text.trim();
  if (/^\d{1,15}$/.test(s)) {
    const n = Number(s);
    return n <= MAX_MS ? n : undefined;
  }
  const m = LOCAL.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(sec);
  // (Date.UTC reads years below 100 as 19xx: no such year is a time here.)
  if (year < 1970 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  let offset = offsetMinutes;
  if (zone === 'Z') offset = 0;
  else if (zone !== undefined) {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(-2));
    if (oh > 14 || om > 59) return undefined;
    offset = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Number(`${frac}000`.slice(0, 3));
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset * 60_000;
  return t >= 0 && t <= MAX_MS ? t : undefined;
}

/** ISO 8601 in the area's time, with its offset: 2026-06-03T09:41:07.000+07:00 (the calendar's offset; +07:00 by default). */
export function formatAreaTime(t: number, offsetMinutes: number = AREA_OFFSET_MINUTES): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const a = Math.abs(offsetMinutes);
  const off = `${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
  return new Date(t + offsetMinutes * 60_000).toISOString().replace('Z', off);
}
