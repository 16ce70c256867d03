// The evaluation figures of ../shared/docs/domain.md, computed to the second
// from the incidents the collector recorded (the state database), the
// school calendar and the maintenance windows. Pure: everything it needs is
// passed in, so the CLI now and an API route later give the same numbers.
//
// Definitions (also printed at the foot of every report):
// - scheduled time: all of the period for most devices; for a kind whose
//   schedule is "broadcast" (DLTV receivers), the calendar's broadcast
//   periods on school days. Only time up to the moment the report is made.
// - maintenance windows are taken out of scheduled time.
// - unreachable time (the device sat behind a failed parent) is not
//   observed: it counts neither for nor against the device; the outage is
//   its parent's.
// - availability = (observed − down) / observed.
// - DLTV readiness: of the classroom-periods (receiver × broadcast period)
//   that ended in the period, untouched by maintenance and observed for at
//   least half their length, the share in which the receiver was up and
//   locked for at least 90 % of the observed time.
// - outages: the device itself down (not unreachable, not a check), counted
//   in the period in which they began; mean time to repair over the outages
//   that ended in the period, with their whole duration. An outage wholly
//   off schedule or inside maintenance is not counted.
import type { Config, Device } from '../config/load.ts';
import type { DeviceKind } from '../config/schema.ts';
import type { Incident } from '../collector/alerts/store.ts';
import { Calendar } from '../collector/alerts/schedule.ts';
import { union, intersect, subtract, total, clip, type Interval } from './intervals.ts';
import type { ReportPeriod } from './period.ts';

export const READY_SHARE = 0.9;
const DAY = 86_400_000;

export interface LinkStats {
  rttMedianMs: number | null;
  rttP95Ms: number | null;
  lossMedianPct: number | null;
  lossP95Pct: number | null;
  samples: number;
  /** Which points they came from: raw polls or 5-minute roll-ups. */
  source: 'raw' | 'rollup_5m';
}

export interface TimeFigures {
  scheduledS: number;
  maintenanceS: number;
  unreachableS: number;
  observedS: number;
  downS: number;
  /** null when nothing was observed. */
  availabilityPct: number | null;
}

export interface Readiness {
  /** Classroom-periods counted. */
  periods: number;
  ready: number;
  /** Left out: maintenance, or not observed for half the period. */
  excluded: number;
  pct: number | null;
}

export interface DeviceFigures extends TimeFigures {
  device: string;
  kind: DeviceKind;
  school: string;
  readiness?: Readiness;
}

export interface OutageFigures {
  /** The device itself down, begun in the period. */
  outages: number;
  /** Devices unreachable behind a failed parent, begun in the period. */
  upstream: number;
  /** Failed checks (receiver lock, disks, uplink, SNMP agent), begun in the period. */
  checks: number;
  /** Outages still open when the report was made. */
  openNow: number;
  /** Outages that ended in the period, and their mean duration. */
  repaired: number;
  mttrS: number | null;
}

export interface GroupFigures extends TimeFigures, OutageFigures {
  byKind: Partial<Record<DeviceKind, TimeFigures>>;
  readiness: Readiness;
}

export interface SchoolFigures extends GroupFigures {
  code: string;
  name: string;
  nameEn?: string;
  district: string;
  office: boolean;
  link: LinkStats | null;
}

export interface IncidentLine {
  id: number;
  device: string;
  kind: string;
  school: string;
  check: string;
  state: Incident['state'];
  cause: string;
  startedAt: number;
  endedAt: number | null;
  durationS: number | null;
}

export interface Report {
  title: string;
  area: { code: string; name: string };
  period: ReportPeriod;
  generatedAt: number;
  /** The end of counted time: the period's end, or the moment the report was made if that is earlier. */
  countedTo: number;
  totals: GroupFigures;
  districts: (GroupFigures & { district: string })[];
  schools: SchoolFigures[];
  devices: DeviceFigures[];
  incidents: IncidentLine[];
}

export interface FigureInput {
  config: Pick<Config, 'schools' | 'devices' | 'calendars' | 'settings'>;
  incidents: readonly Incident[];
  period: ReportPeriod;
  now: number;
  links?: ReadonlyMap<string, LinkStats>;
}

const pct = (num: number, den: number) => (den > 0 ? (num / den) * 100 : null);

/** Broadcast periods of every day in [from, to) that a calendar covers; days no calendar covers have none. */
function broadcastPeriods(calendars: readonly Calendar[], from: number, to: number): { covered: Interval[]; periods: Interval[] } {
  const periods: Interval[] = [];
  const covered: Interval[] = [];
  const ref = calendars[0];
  if (!ref) return { covered, periods };
  for (let day = ref.dayStart(from); day < to; day += DAY) {
    const cal = calendars.find((c) => c.covers(day + DAY / 2));
    if (!cal) continue;
    covered.push([day, day + DAY]);
    for (const p of cal.broadcastPeriods(day)) periods.push([p.start, p.end]);
  }
  return { covered: union(covered), periods: clip(periods, from, to) };
}

function timeFigures(scheduled: Interval[], maintenance: Interval[], unreachable: Interval[], down: Interval[]): TimeFigures & { observed: Interval[] } {
  const inWindow = subtract(scheduled, maintenance);
  const observed = subtract(inWindow, unreachable);
  const scheduledS = total(scheduled) / 1000;
  const observedS = total(observed) / 1000;
  const downS = total(intersect(observed, down)) / 1000;
  return {
    scheduledS,
    maintenanceS: scheduledS - total(inWindow) / 1000,
    unreachableS: total(intersect(inWindow, unreachable)) / 1000,
    observedS,
    downS,
    availabilityPct: pct(observedS - downS, observedS),
    observed,
  };
}

function addTime(into: TimeFigures, x: TimeFigures): void {
  into.scheduledS += x.scheduledS;
  into.maintenanceS += x.maintenanceS;
  into.unreachableS += x.unreachableS;
  into.observedS += x.observedS;
  into.downS += x.downS;
  into.availabilityPct = pct(into.observedS - into.downS, into.observedS);
}

const zeroTime = (): TimeFigures => ({ scheduledS: 0, maintenanceS: 0, unreachableS: 0, observedS: 0, downS: 0, availabilityPct: null });
const zeroGroup = (): GroupFigures => ({ ...zeroTime(), outages: 0, upstream: 0, checks: 0, openNow: 0, repaired: 0, mttrS: null, byKind: {}, readiness: { periods: 0, ready: 0, excluded: 0, pct: null } });

export function computeReport(input: FigureInput, meta: { title?: string } = {}): Report {
  const { config, period, now } = input;
  const countedTo = Math.min(period.to, now);
  const from = period.from;
  const calendars = config.calendars.map((c) => new Calendar(c));
  const broadcast = broadcastPeriods(calendars, from, countedTo);
  // Days no calendar covers are judged all day (as the collector does).
  const broadcastSchedule = union([...broadcast.periods, ...subtract([[from, countedTo]], broadcast.covered)]);
  const alerts = config.settings.alerts;
  const maintenance = alerts.maintenance.map((m) => ({ devices: new Set(m.devices), schools: new Set(m.schools), iv: [Date.parse(m.start), Date.parse(m.end)] as Interval }));

  const byDevice = new Map<string, Incident[]>();
  for (const i of input.incidents) {
    const list = byDevice.get(i.device) ?? [];
    list.push(i);
    byDevice.set(i.device, list);
  }
  const span = (i: Incident): Interval => [i.startedAt, i.endedAt ?? countedTo];

  const devices: DeviceFigures[] = [];
  const counted = new Set<number>();
  const repairs = new Map<string, number[]>();
  for (const d of config.devices) {
    const incs = byDevice.get(d.id) ?? [];
    const scheduled = (alerts.schedule[d.kind] ?? 'always') === 'broadcast' ? broadcastSchedule : clip([[from, countedTo]], from, countedTo);
    const maint = union(maintenance.filter((m) => m.devices.has(d.id) || m.schools.has(d.school.code)).map((m) => m.iv));
    const own = incs.filter((i) => i.check === '');
    const down = union(own.filter((i) => i.state === 'down').map(span));
    const unreachable = union(own.filter((i) => i.state === 'unreachable').map(span));
    const { observed, ...times } = timeFigures(scheduled, maint, unreachable, down);
    const f: DeviceFigures = { device: d.id, kind: d.kind, school: d.school.code, ...times };
    // An outage counts when it touched observed time: not one wholly off
    // schedule (a receiver off at night) or inside a maintenance window.
    for (const i of own) if (i.state === 'down' && total(intersect(observed, [span(i)])) > 0) counted.add(i.id);
    if (d.kind === 'dltv-receiver') {
      const lock = union(incs.filter((i) => i.check.startsWith('receiver.lock')).map(span));
      f.readiness = readiness(broadcast.periods, maint, unreachable, union([...down, ...lock]));
    }
    devices.push(f);
  }

  const deviceById = new Map(config.devices.map((d) => [d.id, d]));
  const outagesOf = (g: OutageFigures, i: Incident, d: Device) => {
    const begun = i.startedAt >= from && i.startedAt < countedTo;
    if (i.check !== '') {
      if (begun) g.checks++;
      return;
    }
    if (i.state === 'unreachable') {
      if (begun) g.upstream++;
      return;
    }
    if (!counted.has(i.id)) return;
    if (begun) g.outages++;
    if (i.endedAt === null && i.startedAt < countedTo) g.openNow++;
    if (i.endedAt !== null && i.endedAt >= from && i.endedAt < countedTo) {
      const key = d.school.code;
      const list = repairs.get(key) ?? [];
      list.push((i.endedAt - i.startedAt) / 1000);
      repairs.set(key, list);
    }
  };

  const totals = zeroGroup();
  const districts = new Map<string, GroupFigures & { district: string }>();
  const schools: SchoolFigures[] = [];
  const figuresOf = new Map(devices.map((f) => [f.device, f]));
  const repairSums = new Map<GroupFigures, number>();
  for (const s of config.schools) {
    const g: SchoolFigures = { code: s.code, name: s.name_th, ...(s.name_en ? { nameEn: s.name_en } : {}), district: s.district, office: s.office, link: input.links?.get(s.code) ?? null, ...zeroGroup() };
    for (const d of s.devices) {
      const f = figuresOf.get(d.id)!;
      addTime(g, f);
      addTime((g.byKind[d.kind] ??= zeroTime()), f);
      if (f.readiness) addReadiness(g.readiness, f.readiness);
      for (const i of byDevice.get(d.id) ?? []) outagesOf(g, i, d);
    }
    const r = repairs.get(s.code) ?? [];
    g.repaired = r.length;
    g.mttrS = r.length > 0 ? r.reduce((a, b) => a + b, 0) / r.length : null;
    schools.push(g);
    for (const target of [totals, district(districts, s.district)]) {
      mergeGroup(target, g);
      repairSums.set(target, (repairSums.get(target) ?? 0) + r.reduce((a, b) => a + b, 0));
    }
  }
  for (const target of [totals, ...districts.values()]) target.mttrS = target.repaired > 0 ? repairSums.get(target)! / target.repaired : null;

  const incidents: IncidentLine[] = input.incidents
    .filter((i) => deviceById.has(i.device) && i.startedAt < countedTo && (i.endedAt === null || i.endedAt > from))
    .map((i) => ({ id: i.id, device: i.device, kind: i.kind, school: i.school, check: i.check, state: i.state, cause: i.cause, startedAt: i.startedAt, endedAt: i.endedAt, durationS: i.durationS }));

  return {
    title: meta.title ?? 'รายงานผลการติดตามประเมินผลระบบเครือข่ายและ DLTV',
    area: { code: config.settings.area.code, name: config.settings.area.name_th },
    period,
    generatedAt: now,
    countedTo,
    totals,
    districts: [...districts.values()].sort((a, b) => a.district.localeCompare(b.district, 'th')),
    schools,
    devices,
    incidents,
  };
}

function readiness(periods: Interval[], maint: Interval[], unreachable: Interval[], bad: Interval[]): Readiness {
  const r: Readiness = { periods: 0, ready: 0, excluded: 0, pct: null };
  for (const p of periods) {
    const P: Interval[] = [p];
    const len = p[1] - p[0];
    if (total(intersect(P, maint)) > 0) {
      r.excluded++;
      continue;
    }
    const observed = subtract(P, unreachable);
    const seen = total(observed);
    if (seen * 2 < len || seen === 0) {
      r.excluded++;
      continue;
    }
    r.periods++;
    if (seen - total(intersect(observed, bad)) >= READY_SHARE * seen) r.ready++;
  }
  r.pct = pct(r.ready, r.periods);
  return r;
}

function addReadiness(into: Readiness, x: Readiness): void {
  into.periods += x.periods;
  into.ready += x.ready;
  into.excluded += x.excluded;
  into.pct = pct(into.ready, into.periods);
}

function district(map: Map<string, GroupFigures & { district: string }>, name: string): GroupFigures & { district: string } {
  let g = map.get(name);
  if (!g) map.set(name, (g = { district: name, ...zeroGroup() }));
  return g;
}

function mergeGroup(into: GroupFigures, g: GroupFigures): void {
  addTime(into, g);
  for (const [k, t] of Object.entries(g.byKind) as [DeviceKind, TimeFigures][]) addTime((into.byKind[k] ??= zeroTime()), t);
  addReadiness(into.readiness, g.readiness);
  into.outages += g.outages;
  into.upstream += g.upstream;
  into.checks += g.checks;
  into.openNow += g.openNow;
  into.repaired += g.repaired;
}
