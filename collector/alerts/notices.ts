// What to tell whom, in Thai with an English line. A notice goes out when a
// device itself fails (down) and when it is back up, never for what is only
// unreachable behind it (the parent's notice says how much this round found
// unreachable behind it) and never for a flapping device. One notice per
// school per round to the school's contacts, and one to the officer, unless
// many schools fail at once: then the officer gets one area-wide notice
// instead. Who gets what, per check kind: a silent SNMP agent (the device
// itself answers ping) is the officer's alone, as is everything about the
// office's own devices; a school's contacts get what they can act on. Every
// Thai word comes from thai.ts; error codes are put in Thai there, the code
// itself stays in a "รายละเอียดทางเทคนิค" line of the officer's copy.
import type { Config, Device, School } from '../../config/load.ts';
import type { DeviceKind } from '../../config/schema.ts';
import { type Behind, type CheckFacts, type Transition } from '../../stores/model.ts';
import type { Incident } from '../../stores/state.ts';
import { KIND_TH, DEVICE_FIRST_CHECK, TH, checkTh, snmpErrorTh, formatThaiTime, formatEnglishTime, formatThaiDuration, formatEnglishDuration, type CheckValues } from '../../config/thai.ts';

export interface Notice {
  to: string[];
  subject: string;
  text: string;
  html: string;
  /** School code, or "area" for an area-wide summary. */
  school: string;
  /** Every incident it tells of. */
  incidents: number[];
  /** Incidents it announces (the outbox keeps its Message-ID with each, for the recovery to reply to). */
  opens: number[];
  /** Incidents it says are over (its In-Reply-To and References: the mails that announced them). */
  closes: number[];
}

interface Event {
  device: Device;
  kind: 'down' | 'up';
  /** For a check of a device that is itself up. */
  check?: string;
  detail?: string;
  facts?: CheckFacts;
  /** When it began (down) or ended (up): the first failed (first good) result. */
  at: number;
  incident?: Incident;
  behind: Behind;
}

type Audience = 'school' | 'officer';

const LABEL_EN: Record<DeviceKind, string> = {
  router: 'Router',
  'dltv-receiver': 'DLTV receiver',
  server: 'Server',
  switch: 'Switch',
  'access-point': 'Access point',
  uplink: 'Uplink',
  other: 'Device',
};

const CHECK_EN: Record<string, string> = {
  snmp: 'SNMP agent not answering (the device answers ping)',
  uplink: 'uplink interface down',
  'receiver.lock': 'receiver not locked',
  'storage.used_pct': 'disk nearly full',
  'system.mem_used_pct': 'memory nearly full',
  'system.cpu_pct': 'CPU busy',
};
const checkEn = (check: string) => CHECK_EN[check.split(':')[0]!] ?? `${check} beyond its threshold`;

/** Checks whose notices go to the officer only: an SNMP agent is the officer's to fix, not a teacher's. */
const OFFICER_ONLY = new Set(['snmp']);
const officerOnly = (e: Event) => e.device.school.office || (e.check !== undefined && OFFICER_ONLY.has(e.check.split(':')[0]!));

/** A number for people: at most one decimal, no trailing ".0". */
const num = (v: number) => String(Math.round(v * 10) / 10);

function valuesOf(f: CheckFacts | undefined): CheckValues {
  if (!f) return {};
  const limit = f.limit?.above ?? f.limit?.below;
  return {
    ...(f.index !== undefined ? { index: f.index } : {}),
    ...(f.value !== undefined ? { value: num(f.value) } : {}),
    ...(limit !== undefined ? { limit: num(limit) } : {}),
    ...(f.code !== undefined ? { reason: snmpErrorTh(f.code) } : {}),
  };
}

/** The technical line: the SNMP error's code, or the check's name and what it saw ("storage.used_pct:/ = 93.1 (> 90)"). */
function technical(e: Event): string {
  const f = e.facts;
  if (f?.code) return `snmp ${f.code}`;
  if (f?.value !== undefined) {
    const limit = f.limit?.above !== undefined ? ` (> ${num(f.limit.above)})` : f.limit?.below !== undefined ? ` (< ${num(f.limit.below)})` : '';
    return `${e.check} = ${num(f.value)}${limit}`;
  }
  return e.detail ? `${e.check}: ${e.detail}` : (e.check ?? '');
}

function eventLines(e: Event, audience: Audience): { thai: string[]; english: string } {
  const th = KIND_TH[e.device.kind];
  const en = LABEL_EN[e.device.kind];
  const name = `${th} ${e.device.name ?? e.device.id}${e.device.classroom ? ` (${e.device.classroom})` : ''} ${e.device.address}`;
  const start = e.incident?.startedAt ?? e.at;
  const secs = e.incident?.durationS ?? Math.max(0, Math.round((e.at - start) / 1000));
  if (e.check) {
    const c = checkTh(e.check);
    const v = valuesOf(e.facts);
    const tech = audience === 'officer' ? [`  ${TH.technical(technical(e))}`] : [];
    if (e.kind === 'down') {
      return {
        thai: [TH.checkDown(name, c.problem(v), formatThaiTime(start)), ...(v.reason ? [`  ${TH.found(v.reason)}`] : []), `  ${TH.firstCheck(c.first(v))}`, ...tech],
        english: `${en} ${e.device.id} (${e.device.address}): ${checkEn(e.check)} since ${formatEnglishTime(start)} (${e.facts?.code ?? e.detail ?? e.check}).`,
      };
    }
    return {
      thai: [TH.checkUp(name, c.title, formatThaiTime(e.at)), `  ${TH.checkSpan(formatThaiTime(start), formatThaiTime(e.at), formatThaiDuration(secs))}`, ...tech],
      english: `${en} ${e.device.id} (${e.device.address}): ${checkEn(e.check)} cleared; from ${formatEnglishTime(start)} to ${formatEnglishTime(e.at)}, ${formatEnglishDuration(secs)}.`,
    };
  }
  if (e.kind === 'down') {
    const thai = [TH.deviceDown(name, formatThaiTime(start))];
    if (e.behind.devices > 0) thai.push(`  ${TH.behind(th, e.behind.devices, e.behind.schools)}`);
    if (e.behind.notJudged > 0) thai.push(`  ${TH.notJudged(th, e.behind.notJudged, e.behind.devices > 0)}`);
    thai.push(`  ${TH.firstCheck(DEVICE_FIRST_CHECK[e.device.kind])}`);
    const behind = e.behind.devices > 0 ? `; ${e.behind.devices} device${e.behind.devices > 1 ? 's' : ''} behind it found unreachable` : '';
    const unjudged = e.behind.notJudged > 0 ? `; ${e.behind.notJudged}${e.behind.devices > 0 ? ' more' : ''} behind it not watched at this hour` : '';
    return { thai, english: `${en} ${e.device.id} (${e.device.address}) is DOWN since ${formatEnglishTime(start)}${behind}${unjudged}.` };
  }
  return {
    thai: [TH.deviceUp(name, formatThaiTime(e.at)), `  ${TH.outage(formatThaiTime(start), formatThaiTime(e.at), formatThaiDuration(secs))}`],
    english: `${en} ${e.device.id} (${e.device.address}) is UP again at ${formatEnglishTime(e.at)}; down from ${formatEnglishTime(start)}, ${formatEnglishDuration(secs)}.`,
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function render(title: string, events: Event[], intro: string, audience: Audience): Pick<Notice, 'text' | 'html'> {
  const lines = events.map((e) => eventLines(e, audience));
  const text = [intro, '', ...lines.flatMap((l) => l.thai), '', ...lines.map((l) => l.english), '', '— klaiwatch'].join('\n');
  const html = [
    '<!doctype html><html lang="th"><head><meta charset="utf-8"></head><body style="font-family: Sarabun, Tahoma, sans-serif">',
    `<h2>${escapeHtml(title)}</h2>`,
    `<p>${escapeHtml(intro)}</p>`,
    '<ul>',
    ...lines.map((l) => `<li>${l.thai.map((x) => escapeHtml(x.trim())).join('<br>')}</li>`),
    '</ul>',
    `<p lang="en" style="color:#555">${lines.map((l) => escapeHtml(l.english)).join('<br>')}</p>`,
    '<p style="color:#888">— klaiwatch</p></body></html>',
  ].join('\n');
  return { text, html };
}

function subjectFor(school: School, events: Event[]): string {
  const down = events.filter((e) => e.kind === 'down');
  const up = events.filter((e) => e.kind === 'up');
  const kind = (e: Event) => KIND_TH[e.device.kind];
  const one = (e: Event) =>
    e.check ? (e.kind === 'up' ? TH.subjectCheckUp : TH.subjectCheck)(kind(e), e.device.id, checkTh(e.check).title) : (e.kind === 'up' ? TH.subjectUp : TH.subjectDown)(kind(e));
  // Whole devices are counted in เครื่อง; once checks are among them, in รายการ.
  const mixed = (es: Event[]) => es.some((e) => e.check);
  let what: string;
  if (up.length === 0) what = down.length === 1 ? one(down[0]!) : mixed(down) ? TH.problems(down.length) : TH.devicesDown(down.length);
  else if (down.length === 0) what = up.length === 1 ? one(up[0]!) : mixed(up) ? TH.problemsCleared(up.length) : TH.devicesUp(up.length);
  else what = `${mixed(down) ? TH.problems(down.length) : TH.devicesDown(down.length)} ${TH.andUp(up.length, mixed(up))}`;
  return `[klaiwatch] ${school.name_th}: ${what}`;
}

export interface ComposeInput {
  config: Config;
  transitions: readonly Transition[];
  opened: readonly Incident[];
  closed: readonly Incident[];
  behind: (id: string) => Behind;
  officer: readonly string[];
  areaSchools: number;
}

const NOBODY_BEHIND: Behind = { devices: 0, schools: 0, notJudged: 0 };

function notice(to: readonly string[], subject: string, body: Pick<Notice, 'text' | 'html'>, school: string, es: readonly Event[]): Notice {
  const ids = (kind: Event['kind']) => es.flatMap((e) => (e.incident && e.kind === kind ? [e.incident.id] : []));
  return { to: [...to], subject, ...body, school, incidents: es.flatMap((e) => (e.incident ? [e.incident.id] : [])), opens: ids('down'), closes: ids('up') };
}

export function composeNotices(i: ComposeInput): Notice[] {
  const events: Event[] = [];
  for (const t of i.transitions) {
    if (t.flapping) continue;
    const device = i.config.deviceById.get(t.device);
    if (!device) continue;
    const same = (x: Incident) => x.device === t.device && x.check === (t.check ?? '');
    const check = t.check ? { check: t.check, ...(t.detail ? { detail: t.detail } : {}), ...(t.facts ? { facts: t.facts } : {}) } : {};
    if (t.to === 'down') {
      const incident = i.opened.find(same);
      events.push({ device, kind: 'down', at: t.at, behind: t.check ? NOBODY_BEHIND : i.behind(device.id), ...check, ...(incident ? { incident } : {}) });
    } else if (t.from === 'down' && t.to === 'up') {
      const incident = i.closed.find(same);
      events.push({ device, kind: 'up', at: t.at, behind: NOBODY_BEHIND, ...check, ...(incident ? { incident } : {}) });
    }
  }
  const bySchool = new Map<School, Event[]>();
  for (const e of events) bySchool.set(e.device.school, [...(bySchool.get(e.device.school) ?? []), e]);

  const notices: Notice[] = [];
  const failingSchools = [...bySchool.entries()].filter(([s, es]) => !s.office && es.some((e) => e.kind === 'down' && !e.check)).length;
  const areaWide = failingSchools >= i.areaSchools;
  for (const [school, es] of bySchool) {
    const intro = school.office ? TH.office(`${school.name_th}${school.name_en ? ` (${school.name_en})` : ''}`, school.district) : TH.school(`${school.name_th}${school.name_en ? ` (${school.name_en})` : ''}`, school.code, school.district);
    const contacts = school.contacts.map((c) => c.email);
    const theirs = es.filter((e) => !officerOnly(e));
    if (contacts.length > 0 && theirs.length > 0) {
      const subject = subjectFor(school, theirs);
      notices.push(notice(contacts, subject, render(subject.replace('[klaiwatch] ', ''), theirs, intro, 'school'), school.code, theirs));
    }
    if (!areaWide || school.office) {
      const subject = subjectFor(school, es);
      notices.push(notice(i.officer, subject, render(subject.replace('[klaiwatch] ', ''), es, intro, 'officer'), school.code, es));
    }
  }
  if (areaWide) {
    const es = [...bySchool.entries()].filter(([s]) => !s.office).flatMap(([, e]) => e);
    const down = es.filter((e) => e.kind === 'down' && !e.check);
    const subject = `[klaiwatch] ${i.config.settings.area.name_th}: ${TH.areaDown(new Set(down.map((e) => e.device.school.code)).size)}`;
    notices.push(notice(i.officer, subject, render(subject.replace('[klaiwatch] ', ''), es, TH.areaIntro, 'officer'), 'area', es));
  }
  return notices;
}
