// The evaluation figures of ../shared/docs/domain.md, computed to the second
// from the incidents the collector recorded (the state database), the
// school calendar and the maintenance windows. Pure: everything it needs is
// passed in, so the CLI now and an API route later give the same numbers.
//
// Definitions (also printed at the foot of every report):
// - scheduled time: all of the period for most devices; for a kind whose
//   schedule is "broadcast" (DLTV receivers), the calendar's broadcast
//   periods on school days. Only time up to the moment the report is made.
// - monitored time: from the device's first round (table monitoring), in
//   the runs of rounds the collector recorded (table rounds). Scheduled
//   time outside it (before klaiwatch ran, while no collector ran) is not
//   observed: it counts neither for nor against; a period with none shows
//   no figure, never 100 %.
// - maintenance windows are taken out of scheduled time.
// - unreachable time (the device sat behind a failed parent) is not
//   observed: it counts neither for nor against the device; the outage is
//   its parent's.
// - availability = (observed − down) / observed.
// - DLTV readiness: of the classroom-periods (receiver × broadcast period)
//   that ended in the period, untouched by maintenance, watched by the
//   collector and observed for at least half their length (office devices
//   are not classrooms: not counted), the share in which the receiver was up and
//   locked for at least 90 % of the observed time.
// - outages (stores/definitions.ts, shared with the evaluation dashboard):
//   the device itself down (not unreachable, not a check), counted in the
//   period in which they began; mean time to repair over the outages that
//   ended in the period, with their whole duration. An outage wholly off
//   schedule, inside maintenance or outside monitored time is not counted.
//   Open: still open at the end of counted time.
// - checks (receiver lock, disks, uplink, SNMP agent) apart: begun in the
//   period, open at its end, and their time to fix, by the same rules.
import type { Config } from '../config/load.ts';
import type { DeviceKind } from '../config/schema.ts';
import type { Incident, Monitoring } from '../stores/state.ts';
import { isCheck, isOutage, isUpstream, openAt, repairTimeS } from '../stores/definitions.ts';
import { Calendar, settingsWindows, type MaintenanceSpan } from '../config/calendar.ts';
import { union, intersect, subtract, total, clip, type Interval } from './intervals.ts';
import type { ReportPeriod } from './period.ts';
import type { UplinkStats } from '../stores/uplink.ts';

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
  /** Scheduled time no collector watched (before the device's first round, or between runs of rounds). */
  unmonitoredS: number;
  /** Share of scheduled time watched, %; null when nothing was scheduled. */
  coveragePct: number | null;
  /** The first moment in the period that was watched; null when none was. */
  monitoredFrom: number | null;
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
  /** Left out: maintenance, or unreachable for half the period or more. */
  excluded: number;
  /** Left out: not watched by a collector for half the period or more. */
  unobserved: number;
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
  /** Failed checks still open at the end of counted time. */
  checksOpen: number;
  /** Failed checks that ended in the period, and their mean duration (time to fix). */
  checksRepaired: number;
  checksMttrS: number | null;
  /** Outages still open at the end of counted time (the moment the report was made, or the period's end). */
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
  /** The school's uplink use (stores/uplink.ts): p95 in/out % of its speed, time above 80 %; null when its router names no uplink_if or InfluxDB had none. */
  uplink: UplinkStats | null;
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

export interface Signatory {
  name: string;
  position: string;
}

export interface Report {
  title: string;
  area: { code: string; name: string };
  /** The office's heading and signature block (settings `report`). */
  office: { heading: string[]; preparedBy: Signatory | null; approvedBy: Signatory | null };
  period: ReportPeriod;
  generatedAt: number;
  /** The end of counted time: the period's end, or the moment the report was made if that is earlier. */
  countedTo: number;
  totals: GroupFigures;
  /** The total row's label: the whole area's, or under collector.shard the shard's own schools' (its state database holds only theirs). */
  totalLabel: string;
  districts: (GroupFigures & { district: string })[];
  schools: SchoolFigures[];
  devices: DeviceFigures[];
  incidents: IncidentLine[];
}

export interface FigureInput {
  config: Pick<Config, 'schools' | 'devices' | 'calendars' | 'settings'>;
  incidents: readonly Incident[];
  /** What the collector watched (the state database's monitoring record). */
  monitoring: Monitoring;
  period: ReportPeriod;
  now: number;
  links?: ReadonlyMap<string, LinkStats>;
  /** Per school code, its uplink's use (stores/uplink.ts). */
  uplinks?: ReadonlyMap<string, UplinkStats>;
  /** Maintenance windows kept in the state database (stores/maintenance.ts), beside the settings' alerts.maintenance. */
  windows?: readonly MaintenanceSpan[];
}

/** At most this many of a shard's listed districts or schools are named in the total row's label. */
const LABEL_NAMES = 5;

/** "รวมทั้งเขต", or under a shard "รวม (เฉพาะโรงเรียนของ collector นี้: shard 1/2)": a shard's report holds only its own schools. */
export function totalLabelOf(shard: Config['settings']['collector']['shard']): string {
  if (!shard) return 'รวมทั้งเขต';
  const which = shard.kind === 'hash' ? `${shard.index}/${shard.of}` : `${shard.names.slice(0, LABEL_NAMES).join(', ')}${shard.names.length > LABEL_NAMES ? ` และอีก ${shard.names.length - LABEL_NAMES}` : ''}`;
  return `รวม (เฉพาะโรงเรียนของ collector นี้: shard ${which})`;
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

/** Scheduled time splits into unmonitored + maintenance + unreachable + observed (each taken from what is left). */
function timeFigures(scheduled: Interval[], monitored: Interval[], maintenance: Interval[], unreachable: Interval[], down: Interval[]): TimeFigures & { observed: Interval[]; watched: Interval[] } {
  const watched = intersect(scheduled, monitored);
  const inWindow = subtract(watched, maintenance);
  const observed = subtract(inWindow, unreachable);
  const scheduledS = total(scheduled) / 1000;
  const watchedS = total(watched) / 1000;
  const observedS = total(observed) / 1000;
  const downS = total(intersect(observed, down)) / 1000;
  return {
    scheduledS,
    unmonitoredS: scheduledS - watchedS,
    coveragePct: pct(watchedS, scheduledS),
    monitoredFrom: watched[0]?.[0] ?? null,
    maintenanceS: watchedS - total(inWindow) / 1000,
    unreachableS: total(intersect(inWindow, unreachable)) / 1000,
    observedS,
    downS,
    availabilityPct: pct(observedS - downS, observedS),
    observed,
    watched,
  };
}

function addTime(into: TimeFigures, x: TimeFigures): void {
  into.scheduledS += x.scheduledS;
  into.unmonitoredS += x.unmonitoredS;
  into.coveragePct = pct(into.scheduledS - into.unmonitoredS, into.scheduledS);
  if (x.monitoredFrom !== null && (into.monitoredFrom === null || x.monitoredFrom < into.monitoredFrom)) into.monitoredFrom = x.monitoredFrom;
  into.maintenanceS += x.maintenanceS;
  into.unreachableS += x.unreachableS;
  into.observedS += x.observedS;
  into.downS += x.downS;
  into.availabilityPct = pct(into.observedS - into.downS, into.observedS);
}

const zeroTime = (): TimeFigures => ({ scheduledS: 0, unmonitoredS: 0, coveragePct: null, monitoredFrom: null, maintenanceS: 0, unreachableS: 0, observedS: 0, downS: 0, availabilityPct: null });
const zeroGroup = (): GroupFigures => ({ ...zeroTime(), outages: 0, upstream: 0, checks: 0, checksOpen: 0, checksRepaired: 0, checksMttrS: null, openNow: 0, repaired: 0, mttrS: null, byKind: {}, readiness: { periods: 0, ready: 0, excluded: 0, unobserved: 0, pct: null } });

export function computeReport(input: FigureInput, meta: { title?: string } = {}): Report {
  const { config, period, now } = input;
  const countedTo = Math.min(period.to, now);
  const from = period.from;
  const calendars = config.calendars.map((c) => new Calendar(c));
  const broadcast = broadcastPeriods(calendars, from, countedTo);
  // Days no calendar covers are judged all day (as the collector does).
  const broadcastSchedule = union([...broadcast.periods, ...subtract([[from, countedTo]], broadcast.covered)]);
  const alerts = config.settings.alerts;
  const maintenance = [...settingsWindows(alerts), ...(input.windows ?? [])].map((m) => ({ devices: new Set(m.devices), schools: new Set(m.schools), iv: [m.start, m.end] as Interval }));
  const runs = clip(union(input.monitoring.runs), from, countedTo);

  const byDevice = new Map<string, Incident[]>();
  for (const i of input.incidents) {
    const list = byDevice.get(i.device) ?? [];
    list.push(i);
    byDevice.set(i.device, list);
  }
  const span = (i: Incident): Interval => [i.startedAt, i.endedAt ?? countedTo];

  const devices: DeviceFigures[] = [];
  const counted = new Set<number>();
  for (const d of config.devices) {
    const incs = byDevice.get(d.id) ?? [];
    const scheduled = (alerts.schedule[d.kind] ?? 'always') === 'broadcast' ? broadcastSchedule : clip([[from, countedTo]], from, countedTo);
    const firstSeen = input.monitoring.firstSeen.get(d.id);
    const monitored = firstSeen === undefined ? [] : clip(runs, firstSeen, countedTo);
    const maint = union(maintenance.filter((m) => m.devices.has(d.id) || m.schools.has(d.school.code)).map((m) => m.iv));
    const own = incs.filter((i) => !isCheck(i));
    const down = union(own.filter(isOutage).map(span));
    const unreachable = union(own.filter(isUpstream).map(span));
    const { observed, watched, ...times } = timeFigures(scheduled, monitored, maint, unreachable, down);
    const f: DeviceFigures = { device: d.id, kind: d.kind, school: d.school.code, ...times };
    // An outage counts when it touched observed time: not one wholly off
    // schedule (a receiver off at night), inside a maintenance window or
    // while no collector watched.
    for (const i of own) if (isOutage(i) && total(intersect(observed, [span(i)])) > 0) counted.add(i.id);
    // A check counts when it touched watched scheduled time outside maintenance.
    const checkable = subtract(watched, maint);
    for (const i of incs) if (isCheck(i) && total(intersect(checkable, [span(i)])) > 0) counted.add(i.id);
    // The office's receivers (a meeting room) are not classrooms.
    if (d.kind === 'dltv-receiver' && !d.school.office) {
      const lock = union(incs.filter((i) => i.check.startsWith('receiver.lock')).map(span));
      f.readiness = readiness(broadcast.periods, monitored, maint, unreachable, union([...down, ...lock]));
    }
    devices.push(f);
  }

  const deviceById = new Map(config.devices.map((d) => [d.id, d]));
  const repairs = new Map<GroupFigures, { outage: number; check: number }>();
  const outagesOf = (g: GroupFigures, i: Incident) => {
    const begun = i.startedAt >= from && i.startedAt < countedTo;
    if (isUpstream(i)) {
      if (begun) g.upstream++;
      return;
    }
    if (!counted.has(i.id)) return;
    const check = isCheck(i);
    if (begun) check ? g.checks++ : g.outages++;
    if (openAt(i, countedTo)) check ? g.checksOpen++ : g.openNow++;
    const fixed = repairTimeS(i);
    if (fixed !== null && i.endedAt! >= from && i.endedAt! < countedTo) {
      const sum = repairs.get(g) ?? { outage: 0, check: 0 };
      if (check) {
        g.checksRepaired++;
        sum.check += fixed;
      } else {
        g.repaired++;
        sum.outage += fixed;
      }
      repairs.set(g, sum);
    }
  };
  const mean = (g: GroupFigures) => {
    const sum = repairs.get(g);
    g.mttrS = g.repaired > 0 ? sum!.outage / g.repaired : null;
    g.checksMttrS = g.checksRepaired > 0 ? sum!.check / g.checksRepaired : null;
  };

  const totals = zeroGroup();
  const districts = new Map<string, GroupFigures & { district: string }>();
  const schools: SchoolFigures[] = [];
  const figuresOf = new Map(devices.map((f) => [f.device, f]));
  for (const s of config.schools) {
    const g: SchoolFigures = { code: s.code, name: s.name_th, ...(s.name_en ? { nameEn: s.name_en } : {}), district: s.district, office: s.office, link: input.links?.get(s.code) ?? null, uplink: input.uplinks?.get(s.code) ?? null, ...zeroGroup() };
    for (const d of s.devices) {
      const f = figuresOf.get(d.id)!;
      addTime(g, f);
      addTime((g.byKind[d.kind] ??= zeroTime()), f);
      if (f.readiness) addReadiness(g.readiness, f.readiness);
      for (const i of byDevice.get(d.id) ?? []) outagesOf(g, i);
    }
    mean(g);
    schools.push(g);
    for (const target of [totals, district(districts, s.district)]) {
      mergeGroup(target, g);
      const into = repairs.get(target) ?? { outage: 0, check: 0 };
      const mine = repairs.get(g);
      if (mine) {
        into.outage += mine.outage;
        into.check += mine.check;
      }
      repairs.set(target, into);
    }
  }
  for (const target of [totals, ...districts.values()]) mean(target);

  const incidents: IncidentLine[] = input.incidents
    .filter((i) => deviceById.has(i.device) && i.startedAt < countedTo && (i.endedAt === null || i.endedAt > from))
    .map((i) => ({ id: i.id, device: i.device, kind: i.kind, school: i.school, check: i.check, state: i.state, cause: i.cause, startedAt: i.startedAt, endedAt: i.endedAt, durationS: i.durationS }));

  const rs = config.settings.report;
  return {
    title: meta.title ?? rs.title ?? 'รายงานผลการติดตามประเมินผลระบบเครือข่ายและ DLTV',
    area: { code: config.settings.area.code, name: config.settings.area.name_th },
    office: { heading: rs.heading.length > 0 ? rs.heading : [config.settings.area.name_th], preparedBy: rs.prepared_by ?? null, approvedBy: rs.approved_by ?? null },
    period,
    generatedAt: now,
    countedTo,
    totals,
    totalLabel: totalLabelOf(config.settings.collector.shard),
    districts: [...districts.values()].sort((a, b) => a.district.localeCompare(b.district, 'th')),
    schools,
    devices,
    incidents,
  };
}

function readiness(periods: Interval[], monitored: Interval[], maint: Interval[], unreachable: Interval[], bad: Interval[]): Readiness {
  const r: Readiness = { periods: 0, ready: 0, excluded: 0, unobserved: 0, pct: null };
  for (const p of periods) {
    const P: Interval[] = [p];
    const len = p[1] - p[0];
    const watched = intersect(P, monitored);
    // Not watched for half of it: neither ready nor not (before klaiwatch ran, or while it was stopped).
    if (total(watched) * 2 < len || total(watched) === 0) {
      r.unobserved++;
      continue;
    }
    if (total(intersect(P, maint)) > 0) {
      r.excluded++;
      continue;
    }
    const observed = subtract(watched, unreachable);
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
  into.unobserved += x.unobserved;
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
  into.checksOpen += g.checksOpen;
  into.checksRepaired += g.checksRepaired;
  into.openNow += g.openNow;
  into.repaired += g.repaired;
}
