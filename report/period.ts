// Report periods as the office names them: a month, a school term, the Thai
// fiscal year (1 October – 30 September, named by the Buddhist-Era year in
// which it ends), or an explicit range of days. All boundaries are local
// midnights in Asia/Bangkok (UTC+7, no daylight saving).
import type { Calendar } from '../config/calendar.ts';

export const BANGKOK_OFFSET_MS = 7 * 3_600_000;
const BE = 543;

export const THAI_MONTHS = ['มกราคม', 'กุมภาพันธ์', 'มีนาคม', 'เมษายน', 'พฤษภาคม', 'มิถุนายน', 'กรกฎาคม', 'สิงหาคม', 'กันยายน', 'ตุลาคม', 'พฤศจิกายน', 'ธันวาคม'];

export interface ReportPeriod {
  /** What was asked for, e.g. "2026-11", "term", "fy2570". */
  spec: string;
  kind: 'month' | 'term' | 'fiscal-year' | 'range';
  /** Thai name, e.g. "เดือนพฤศจิกายน 2569", "ปีงบประมาณ พ.ศ. 2570". */
  label: string;
  /** UTC milliseconds, half-open [from, to). */
  from: number;
  to: number;
}

export class PeriodError extends Error {}

/** UTC instant of local midnight in Bangkok of a Gregorian date. */
const midnight = (y: number, m0: number, d: number) => Date.UTC(y, m0, d) - BANGKOK_OFFSET_MS;

/** "2026-11-01" -> its local midnight. */
function dateStart(text: string, what: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) throw new PeriodError(`${what}: ${JSON.stringify(text)} is not a date (YYYY-MM-DD)`);
  const y = gregorian(Number(m[1]));
  const t = midnight(y, Number(m[2]) - 1, Number(m[3]));
  if (new Date(t + BANGKOK_OFFSET_MS).getUTCDate() !== Number(m[3])) throw new PeriodError(`${what}: ${text} is not a day of the calendar`);
  return t;
}

/** Years above 2400 are Buddhist Era (2569), below are Common Era (2026). */
const gregorian = (y: number) => (y > 2400 ? y - BE : y);

/** A date in Thai with a Buddhist-Era year: "1 พฤศจิกายน 2569". */
export function thaiDate(t: number): string {
  const d = new Date(t + BANGKOK_OFFSET_MS);
  return `${d.getUTCDate()} ${THAI_MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear() + BE}`;
}

/** "1 พฤศจิกายน 2569 เวลา 08:30:00 น." */
export function thaiDateTime(t: number): string {
  const d = new Date(t + BANGKOK_OFFSET_MS);
  return `${thaiDate(t)} เวลา ${d.toISOString().slice(11, 19)} น.`;
}

/**
 * month: "2026-11" or "2569-11"; fiscal year: "fy2570" (BE; "fy2027" is
 * read as CE); term: "term" (the term now, or the last one ended), "term:2/2569"
 * (a term whose name contains that text); range: "2026-11-01..2026-11-30"
 * (both days included).
 */
export function parsePeriod(spec: string, calendars: readonly Calendar[], now: number): ReportPeriod {
  const s = spec.trim();
  let m = /^(\d{4})-(\d{2})$/.exec(s);
  if (m) {
    const y = gregorian(Number(m[1]));
    const mon = Number(m[2]);
    if (mon < 1 || mon > 12) throw new PeriodError(`period ${JSON.stringify(spec)}: there is no month ${mon}`);
    return { spec: s, kind: 'month', label: `เดือน${THAI_MONTHS[mon - 1]} ${y + BE}`, from: midnight(y, mon - 1, 1), to: midnight(y, mon, 1) };
  }
  m = /^fy(\d{4})$/i.exec(s);
  if (m) {
    const be = Number(m[1]) > 2400 ? Number(m[1]) : Number(m[1]) + BE;
    const endYear = be - BE;
    return { spec: s, kind: 'fiscal-year', label: `ปีงบประมาณ พ.ศ. ${be} (1 ตุลาคม ${be - 1} – 30 กันยายน ${be})`, from: midnight(endYear - 1, 9, 1), to: midnight(endYear, 9, 1) };
  }
  m = /^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$/.exec(s);
  if (m) {
    const from = dateStart(m[1]!, `period ${spec}`);
    const to = dateStart(m[2]!, `period ${spec}`) + 86_400_000;
    if (to <= from) throw new PeriodError(`period ${JSON.stringify(spec)}: ends before it starts`);
    return { spec: s, kind: 'range', label: `${thaiDate(from)} – ${thaiDate(to - 1)}`, from, to };
  }
  m = /^term(?::(.+))?$/.exec(s);
  if (m) {
    const terms = calendars.flatMap((c) => c.termList().map((t) => ({ name: t.name, from: dateStart(t.start, `calendar ${c.yearBe} term ${t.name}`), to: dateStart(t.end, `calendar ${c.yearBe} term ${t.name}`) + 86_400_000 })));
    if (terms.length === 0) throw new PeriodError(`period ${JSON.stringify(spec)}: no school calendar is configured (config/calendar/*.yaml)`);
    terms.sort((a, b) => a.from - b.from);
    const want = m[1];
    const t = want
      ? terms.find((x) => x.name.includes(want))
      : (terms.find((x) => now >= x.from && now < x.to) ?? terms.filter((x) => x.to <= now).at(-1));
    if (!t) throw new PeriodError(`period ${JSON.stringify(spec)}: no such term; the calendars have ${terms.map((x) => x.name).join(', ')}`);
    return { spec: s, kind: 'term', label: t.name, from: t.from, to: t.to };
  }
  throw new PeriodError(`period ${JSON.stringify(spec)}: expected a month (2026-11 or 2569-11), "term", "term:2/2569", a fiscal year (fy2570) or a range (2026-11-01..2026-11-30)`);
}
