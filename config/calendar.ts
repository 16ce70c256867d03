// When a device is judged. Most devices all the time; a DLTV classroom
// receiver only while lessons are broadcast: inside a period, on a school
// day, in a term, not on a holiday (config/calendar/). Outside that, a
// receiver that is off is normal. Maintenance windows (settings
// alerts.maintenance, and those made over the API and kept in the state
// database: stores/maintenance.ts, given with setWindows) take a device out
// of judgement for their span.
import type { CalendarInput, MaintenanceInput } from './schema.ts';
import { WEEKDAYS } from './schema.ts';
import type { Device, Settings } from './load.ts';

export interface Period {
  name: string;
  /** Minutes after local midnight. */
  start: number;
  end: number;
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** One academic year's calendar, answering questions in its local time (Asia/Bangkok: UTC+7, no DST). */
export class Calendar {
  readonly yearBe: number;
  private readonly offsetMs: number;
  private readonly days: Set<number>;
  private readonly periods: Period[];
  private readonly terms: { name: string; start: string; end: string }[];
  private readonly holidays: Map<string, string>;

  constructor(c: CalendarInput) {
    this.yearBe = c.year_be;
    this.offsetMs = c.utc_offset_minutes * 60_000;
    this.days = new Set(c.school_days.map((d) => WEEKDAYS.indexOf(d)));
    this.periods = c.periods.map((p) => ({ name: p.name, start: minutes(p.start), end: minutes(p.end) }));
    this.terms = c.terms;
    this.holidays = new Map(c.holidays.map((h) => [h.date, h.name]));
  }

  /** Local date (YYYY-MM-DD), weekday (0 = Sunday) and minute of the day of a UTC instant. */
  local(t: number): { date: string; weekday: number; minute: number } {
    const d = new Date(t + this.offsetMs);
    return { date: d.toISOString().slice(0, 10), weekday: d.getUTCDay(), minute: d.getUTCHours() * 60 + d.getUTCMinutes() };
  }

  /** Whether this calendar says anything about the instant's date (it falls in one of its terms' years). */
  covers(t: number): boolean {
    const { date } = this.local(t);
    const first = this.terms.reduce((m, x) => (x.start < m ? x.start : m), '9999');
    const last = this.terms.reduce((m, x) => (x.end > m ? x.end : m), '0000');
    return date >= first && date <= last;
  }

  /** The term of a school day, or why it is not one. */
  schoolDay(t: number): { term: string } | { not: 'weekend' | 'holiday' | 'between terms'; name?: string } {
    const { date, weekday } = this.local(t);
    if (!this.days.has(weekday)) return { not: 'weekend' };
    const holiday = this.holidays.get(date);
    if (holiday) return { not: 'holiday', name: holiday };
    const term = this.terms.find((x) => date >= x.start && date <= x.end);
    return term ? { term: term.name } : { not: 'between terms' };
  }

  /** UTC instant of the local midnight that begins the day of t. */
  dayStart(t: number): number {
    return Math.floor((t + this.offsetMs) / 86_400_000) * 86_400_000 - this.offsetMs;
  }

  /** The broadcast periods of the local day beginning at `dayStart` (empty when it is no school day), as UTC intervals. */
  broadcastPeriods(dayStart: number): { name: string; start: number; end: number }[] {
    if (!('term' in this.schoolDay(dayStart + 12 * 3_600_000))) return [];
    return this.periods.map((p) => ({ name: p.name, start: dayStart + p.start * 60_000, end: dayStart + p.end * 60_000 }));
  }

  /** The terms, as [first day, last day] local dates. */
  termList(): readonly { name: string; start: string; end: string }[] {
    return this.terms;
  }

  get utcOffsetMs(): number {
    return this.offsetMs;
  }

  /** The broadcast period at an instant, if lessons are on the air then. */
  broadcast(t: number): Period | undefined {
    if (!('term' in this.schoolDay(t))) return undefined;
    const { minute } = this.local(t);
    return this.periods.find((p) => minute >= p.start && minute < p.end);
  }
}

/** A maintenance window in UTC milliseconds, [start, end): the settings' and the state database's alike. */
export interface MaintenanceSpan {
  devices: readonly string[];
  schools: readonly string[];
  start: number;
  end: number;
  reason: string;
}

/** The settings' windows (alerts.maintenance) as spans. */
export function settingsWindows(alerts: Pick<Settings['alerts'], 'maintenance'>): MaintenanceSpan[] {
  return alerts.maintenance.map((m: MaintenanceInput) => ({ devices: m.devices, schools: m.schools, start: Date.parse(m.start), end: Date.parse(m.end), reason: m.reason }));
}

type Window = { devices: Set<string>; schools: Set<string>; start: number; end: number; reason: string };
const compile = (m: MaintenanceSpan): Window => ({ devices: new Set(m.devices), schools: new Set(m.schools), start: m.start, end: m.end, reason: m.reason });

export class Schedule {
  private readonly calendars: Calendar[];
  private readonly kinds: Settings['alerts']['schedule'];
  private readonly maintenance: Window[];
  /** Windows from elsewhere (setWindows): the state database's. */
  private extra: Window[] = [];

  constructor(calendars: CalendarInput[], alerts: Settings['alerts'], windows: readonly MaintenanceSpan[] = []) {
    this.calendars = calendars.map((c) => new Calendar(c));
    this.kinds = alerts.schedule;
    this.maintenance = settingsWindows(alerts).map(compile);
    this.setWindows(windows);
  }

  /** Windows kept outside the settings (the state database's), beside the settings' own; replaces the list given before. */
  setWindows(windows: readonly MaintenanceSpan[]): void {
    this.extra = windows.map(compile);
  }

  /** Whether a device's state counts at instant t (false: off schedule, nothing is raised). */
  judged(device: Device, t: number): boolean {
    if ((this.kinds[device.kind] ?? 'always') === 'always') return true;
    // No calendar for this date: judge rather than stay silent on a year nobody configured.
    const cal = this.calendars.find((c) => c.covers(t));
    return cal ? cal.broadcast(t) !== undefined : true;
  }

  /** The maintenance window a device is in at t, if any. */
  maintenanceOf(device: Device, t: number): string | undefined {
    const hit = (m: Window) => t >= m.start && t < m.end && (m.devices.has(device.id) || m.schools.has(device.school.code));
    return (this.maintenance.find(hit) ?? this.extra.find(hit))?.reason;
  }
}
