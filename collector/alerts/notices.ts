// What to tell whom, in Thai with an English line. A notice goes out when a
// device itself fails (down) and when it is back up, never for what is only
// unreachable behind it (the parent's notice says how much sits behind) and
// never for a flapping device. One notice per school per round to the
// school's contacts, and the same to the officer, unless many schools fail
// at once: then the officer gets one area-wide notice instead.
import type { Config, Device, School } from '../../config/load.ts';
import type { DeviceKind } from '../../config/schema.ts';
import type { Transition } from './state.ts';
import type { Incident } from './store.ts';

export interface Notice {
  to: string[];
  subject: string;
  text: string;
  html: string;
  /** School code, or "area" for an area-wide summary. */
  school: string;
  incidents: number[];
}

interface Event {
  device: Device;
  kind: 'down' | 'up';
  /** For a check of a device that is itself up. */
  check?: string;
  detail?: string;
  at: number;
  incident?: Incident;
  behind: { devices: number; schools: number };
}

const LABEL: Record<DeviceKind, [string, string]> = {
  router: ['เราเตอร์', 'Router'],
  'dltv-receiver': ['เครื่องรับสัญญาณ DLTV', 'DLTV receiver'],
  server: ['เครื่องแม่ข่าย', 'Server'],
  switch: ['สวิตช์', 'Switch'],
  'access-point': ['จุดกระจายสัญญาณไร้สาย', 'Access point'],
  uplink: ['วงจรอินเทอร์เน็ตหลัก', 'Uplink'],
  other: ['อุปกรณ์', 'Device'],
};

/** What to check first, by kind: the questions an officer asks on the phone. */
const FIRST_CHECK: Record<DeviceKind, string> = {
  router: 'ตรวจสอบไฟเลี้ยงของเราเตอร์ และไฟสถานะสายจากผู้ให้บริการอินเทอร์เน็ต (ONU/โมเด็ม) ก่อน',
  'dltv-receiver': 'ตรวจสอบว่าเปิดเครื่องรับสัญญาณและโทรทัศน์ในห้องเรียนแล้ว และสายจากจานดาวเทียมแน่นดี',
  server: 'ตรวจสอบไฟเลี้ยงและสายเครือข่ายของเครื่องแม่ข่าย',
  switch: 'ตรวจสอบไฟเลี้ยงของสวิตช์และสายที่ต่อไปยังเราเตอร์',
  'access-point': 'ตรวจสอบไฟเลี้ยง (PoE) และสายที่ต่อไปยังสวิตช์',
  uplink: 'ตรวจสอบวงจรกับผู้ให้บริการ (ISP) และอุปกรณ์ต้นทางของสำนักงานเขต',
  other: 'ตรวจสอบไฟเลี้ยงและสายเครือข่ายของอุปกรณ์',
};

/** A check's name in Thai and English, by the part before ":" (storage.used_pct:/ → storage.used_pct). */
const CHECK_LABEL: Record<string, [string, string]> = {
  snmp: ['ระบบ SNMP ไม่ตอบ แม้อุปกรณ์ยังตอบ ping', 'SNMP agent not answering'],
  uplink: ['พอร์ตขาเข้าอินเทอร์เน็ตไม่ทำงาน', 'uplink interface down'],
  'receiver.lock': ['เครื่องรับไม่ล็อกสัญญาณดาวเทียม', 'receiver not locked'],
  'storage.used_pct': ['พื้นที่ดิสก์ใกล้เต็ม', 'disk nearly full'],
  'system.mem_used_pct': ['หน่วยความจำใกล้เต็ม', 'memory nearly full'],
  'system.cpu_pct': ['CPU ทำงานหนักต่อเนื่อง', 'CPU busy'],
};
const checkLabel = (check: string): [string, string] => CHECK_LABEL[check.split(':')[0]!] ?? ['ค่าที่ตรวจวัดเกินเกณฑ์', `${check} beyond its threshold`];

const thaiTime = new Intl.DateTimeFormat('th-TH-u-ca-buddhist', { timeZone: 'Asia/Bangkok', dateStyle: 'long', timeStyle: 'short' });
/** "24 พฤศจิกายน 2569 เวลา 10:03 น." (Buddhist Era, Asia/Bangkok). */
export const formatThaiTime = (t: number) => `${thaiTime.format(t)} น.`;
/** "2026-11-24 10:03 (Asia/Bangkok)" */
export const formatEnglishTime = (t: number) => `${new Date(t + 7 * 3_600_000).toISOString().slice(0, 16).replace('T', ' ')} (Asia/Bangkok)`;

export function formatThaiDuration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const parts = [d && `${d} วัน`, h && `${h} ชั่วโมง`, m && `${m} นาที`].filter(Boolean);
  return parts.length > 0 ? parts.join(' ') : `${seconds} วินาที`;
}

export function formatEnglishDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min` : `${seconds} s`;
}

function eventLines(e: Event): { thai: string[]; english: string } {
  const [th, en] = LABEL[e.device.kind];
  const name = `${th} ${e.device.name ?? e.device.id}${e.device.classroom ? ` (${e.device.classroom})` : ''} ${e.device.address}`;
  if (e.check) {
    const [cth, cen] = checkLabel(e.check);
    if (e.kind === 'down') {
      return {
        thai: [`! ${name}: ${cth} ตั้งแต่ ${formatThaiTime(e.incident?.startedAt ?? e.at)} (${e.detail ?? e.check})`],
        english: `${en} ${e.device.id} (${e.device.address}): ${cen} since ${formatEnglishTime(e.incident?.startedAt ?? e.at)} (${e.detail ?? e.check}).`,
      };
    }
    const secs = e.incident?.durationS ?? 0;
    return {
      thai: [`✓ ${name}: ${cth} หายแล้ว เมื่อ ${formatThaiTime(e.at)} รวม ${formatThaiDuration(secs)} (${e.detail ?? e.check})`],
      english: `${en} ${e.device.id} (${e.device.address}): ${cen} cleared at ${formatEnglishTime(e.at)} after ${formatEnglishDuration(secs)}.`,
    };
  }
  if (e.kind === 'down') {
    const thai = [`✗ ${name} ใช้งานไม่ได้ ตั้งแต่ ${formatThaiTime(e.incident?.startedAt ?? e.at)}`];
    if (e.behind.devices > 0) thai.push(`  อุปกรณ์ที่ใช้งานผ่าน${th}นี้ติดต่อไม่ได้ไปด้วย ${e.behind.devices} เครื่อง ใน ${e.behind.schools} แห่ง`);
    thai.push(`  สิ่งที่ควรตรวจสอบก่อน: ${FIRST_CHECK[e.device.kind]}`);
    return { thai, english: `${en} ${e.device.id} (${e.device.address}) is DOWN since ${formatEnglishTime(e.incident?.startedAt ?? e.at)}${e.behind.devices > 0 ? `; ${e.behind.devices} devices behind it are unreachable` : ''}.` };
  }
  const secs = e.incident?.durationS ?? 0;
  return {
    thai: [`✓ ${name} กลับมาใช้งานได้แล้ว เมื่อ ${formatThaiTime(e.at)} รวมเวลาที่ใช้งานไม่ได้ ${formatThaiDuration(secs)}`],
    english: `${en} ${e.device.id} (${e.device.address}) is UP again at ${formatEnglishTime(e.at)} after ${formatEnglishDuration(secs)}.`,
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function render(title: string, events: Event[], intro: string): Pick<Notice, 'text' | 'html'> {
  const lines = events.map(eventLines);
  const text = [intro, '', ...lines.flatMap((l) => l.thai), '', ...lines.map((l) => l.english), '', '— klaiwatch'].join('\n');
  const html = [
    '<!doctype html><html lang="th"><head><meta charset="utf-8"></head><body style="font-family: Sarabun, Tahoma, sans-serif">',
    `<h2>${escapeHtml(title)}</h2>`,
    `<p>${escapeHtml(intro)}</p>`,
    '<ul>',
    ...lines.map((l) => `<li>${l.thai.map(escapeHtml).join('<br>')}</li>`),
    '</ul>',
    `<p lang="en" style="color:#555">${lines.map((l) => escapeHtml(l.english)).join('<br>')}</p>`,
    '<p style="color:#888">— klaiwatch</p></body></html>',
  ].join('\n');
  return { text, html };
}

function subjectFor(school: School, events: Event[]): string {
  const down = events.filter((e) => e.kind === 'down');
  const up = events.filter((e) => e.kind === 'up');
  const one = (e: Event, thai: string) => (e.check ? `${LABEL[e.device.kind][0]} ${e.device.id}: ${checkLabel(e.check)[0]}${e.kind === 'up' ? ' หายแล้ว' : ''}` : `${LABEL[e.device.kind][0]}${thai}`);
  // Whole devices are counted in เครื่อง; once checks are among them, in รายการ.
  const count = (es: Event[], devices: string, mixed: string) => (es.some((e) => e.check) ? `${mixed} ${es.length} รายการ` : `${devices} ${es.length} เครื่อง`);
  let what: string;
  if (up.length === 0) what = down.length === 1 ? one(down[0]!, 'ใช้งานไม่ได้') : count(down, 'อุปกรณ์ใช้งานไม่ได้', 'อุปกรณ์มีปัญหา');
  else if (down.length === 0) what = up.length === 1 ? one(up[0]!, 'กลับมาใช้งานได้แล้ว') : count(up, 'อุปกรณ์กลับมาใช้งานได้', 'ปัญหาหายแล้ว');
  else what = `${count(down, 'อุปกรณ์ใช้งานไม่ได้', 'อุปกรณ์มีปัญหา')} ${count(up, 'กลับมาใช้งานได้', 'หายแล้ว')}`;
  return `[klaiwatch] ${school.name_th}: ${what}`;
}

export interface ComposeInput {
  config: Config;
  transitions: readonly Transition[];
  opened: readonly Incident[];
  closed: readonly Incident[];
  behind: (id: string) => { devices: number; schools: number };
  officer: readonly string[];
  areaSchools: number;
}

export function composeNotices(i: ComposeInput): Notice[] {
  const events: Event[] = [];
  for (const t of i.transitions) {
    if (t.flapping) continue;
    const device = i.config.deviceById.get(t.device);
    if (!device) continue;
    const same = (x: Incident) => x.device === t.device && x.check === (t.check ?? '');
    const check = t.check ? { check: t.check, ...(t.detail ? { detail: t.detail } : {}) } : {};
    if (t.to === 'down') {
      const incident = i.opened.find(same);
      events.push({ device, kind: 'down', at: t.at, behind: t.check ? { devices: 0, schools: 0 } : i.behind(device.id), ...check, ...(incident ? { incident } : {}) });
    } else if (t.from === 'down' && t.to === 'up') {
      const incident = i.closed.find(same);
      events.push({ device, kind: 'up', at: t.at, behind: { devices: 0, schools: 0 }, ...check, ...(incident ? { incident } : {}) });
    }
  }
  const bySchool = new Map<School, Event[]>();
  for (const e of events) bySchool.set(e.device.school, [...(bySchool.get(e.device.school) ?? []), e]);

  const notices: Notice[] = [];
  const failingSchools = [...bySchool.entries()].filter(([s, es]) => !s.office && es.some((e) => e.kind === 'down' && !e.check)).length;
  const areaWide = failingSchools >= i.areaSchools;
  for (const [school, es] of bySchool) {
    const subject = subjectFor(school, es);
    const ids = es.flatMap((e) => (e.incident ? [e.incident.id] : []));
    const body = render(subject.replace('[klaiwatch] ', ''), es, `${school.name_th}${school.name_en ? ` (${school.name_en})` : ''} รหัส ${school.code} อำเภอ${school.district}`);
    const contacts = school.contacts.map((c) => c.email);
    if (contacts.length > 0 && !school.office) notices.push({ to: contacts, subject, ...body, school: school.code, incidents: ids });
    if (!areaWide || school.office) notices.push({ to: [...i.officer], subject, ...body, school: school.code, incidents: ids });
  }
  if (areaWide) {
    const es = [...bySchool.entries()].filter(([s]) => !s.office).flatMap(([, e]) => e);
    const down = es.filter((e) => e.kind === 'down' && !e.check);
    const subject = `[klaiwatch] ${i.config.settings.area.name_th}: ${new Set(down.map((e) => e.device.school.code)).size} โรงเรียนใช้งานไม่ได้พร้อมกัน`;
    const body = render(subject.replace('[klaiwatch] ', ''), es, 'หลายโรงเรียนมีปัญหาในรอบการตรวจเดียวกัน ควรตรวจสอบวงจรหรืออุปกรณ์ส่วนกลางที่ใช้ร่วมกันก่อน');
    notices.push({ to: [...i.officer], subject, ...body, school: 'area', incidents: es.flatMap((e) => (e.incident ? [e.incident.id] : [])) });
  }
  return notices;
}
