// Every Thai word of the notices (collector/alerts/notices.ts), in one
// place, so the mails read as one office wrote them and a Thai speaker can
// review them all here. Written as an area office writes to its schools:
// polite, plain, what happened, since when, what to look at first.
// Nothing here comes from the wire: values from devices (a mount point, an
// interface name) are passed in and shown as they are.
import type { DeviceKind } from './schema.ts';

/** A device kind as a school's teacher names it. */
export const KIND_TH: Record<DeviceKind, string> = {
  router: 'เราเตอร์',
  'dltv-receiver': 'เครื่องรับสัญญาณ DLTV',
  server: 'เครื่องแม่ข่าย',
  switch: 'สวิตช์',
  'access-point': 'จุดกระจายสัญญาณไร้สาย',
  uplink: 'วงจรอินเทอร์เน็ตหลัก',
  other: 'อุปกรณ์',
};

/** What to do first when a whole device stops answering, by its kind (each a phrase that starts with its verb). */
export const DEVICE_FIRST_CHECK: Record<DeviceKind, string> = {
  router: 'ตรวจดูไฟเลี้ยงของเราเตอร์ และไฟสถานะของอุปกรณ์จากผู้ให้บริการอินเทอร์เน็ต (ONU/โมเด็ม)',
  'dltv-receiver': 'ดูว่าเปิดเครื่องรับสัญญาณและโทรทัศน์ในห้องเรียนแล้ว และสายจากจานดาวเทียมต่อแน่นดี',
  server: 'ตรวจดูไฟเลี้ยงและสายแลนของเครื่องแม่ข่าย',
  switch: 'ตรวจดูไฟเลี้ยงของสวิตช์ และสายที่ต่อไปยังเราเตอร์',
  'access-point': 'ตรวจดูไฟเลี้ยง (PoE) และสายที่ต่อไปยังสวิตช์',
  uplink: 'ติดต่อผู้ให้บริการอินเทอร์เน็ต (ISP) เรื่องวงจร และตรวจดูอุปกรณ์ต้นทางของสำนักงานเขต',
  other: 'ตรวจดูไฟเลี้ยงและสายแลนของอุปกรณ์',
};

/** The stable codes of collector/snmp/errors.ts as an officer reads them. */
export const SNMP_ERROR_TH: Record<string, string> = {
  timeout: 'ส่งคำขอไปแล้วไม่มีคำตอบกลับภายในเวลาที่กำหนด',
  undecodable_reply: 'ได้รับคำตอบที่อ่านไม่ออก',
  truncated_reply: 'ได้รับคำตอบไม่ครบ (ถูกตัดกลางทาง)',
  unmatched_reply: 'ได้รับคำตอบที่ไม่ตรงกับคำขอ',
  invalid_reply: 'ได้รับคำตอบที่ไม่ถูกต้องตามมาตรฐาน SNMP',
  wrong_community: 'ชื่อ community ไม่ตรงกับที่ตั้งไว้ในอุปกรณ์',
  wrong_version: 'รุ่นของ SNMP ไม่ตรงกับที่อุปกรณ์ใช้',
  auth_failed: 'ยืนยันตัวตน SNMPv3 ไม่ผ่าน (ชื่อผู้ใช้หรือรหัสผ่านไม่ตรงกัน)',
  agent_error: 'อุปกรณ์ตอบกลับมาว่าเกิดข้อผิดพลาด',
  oid_not_increasing: 'อุปกรณ์ส่งข้อมูลมาผิดลำดับ',
  wrong_type: 'อุปกรณ์ส่งค่ามาผิดชนิด',
  no_such_object: 'อุปกรณ์ไม่มีข้อมูลที่ขอ',
  no_such_instance: 'อุปกรณ์ไม่มีข้อมูลที่ขอ',
  end_of_mib_view: 'อุปกรณ์ไม่มีข้อมูลที่ขอ',
  walk_too_long: 'ตารางข้อมูลของอุปกรณ์ยาวเกินกำหนด',
  local_error: 'เครื่องเฝ้าระวังเองส่งคำขอไม่ได้',
};
export const snmpErrorTh = (code: string | undefined): string => (code && SNMP_ERROR_TH[code]) || 'ไม่ทราบสาเหตุ';

/** One kind of check: its problem in a few words, and what to do first (values filled in by the caller). */
export interface CheckText {
  /** For the subject line: short, no values. */
  title: string;
  /** The problem with what was seen, e.g. "พื้นที่ดิสก์ / ใช้ไปแล้ว 93.1% (เกณฑ์ 90%)". */
  problem: (v: CheckValues) => string;
  /** What to do first: a phrase that starts with its verb. */
  first: (v: CheckValues) => string;
}
export interface CheckValues {
  /** The table row: a mount point, an interface name. */
  index?: string;
  /** The value seen, already rounded for people ("93.1"). */
  value?: string;
  /** The threshold ("90"). */
  limit?: string;
  /** SNMP: why the agent did not answer, in Thai. */
  reason?: string;
}

const onIndex = (v: CheckValues) => (v.index ? ` ${v.index}` : '');
const seen = (v: CheckValues, unit: string) => (v.value !== undefined ? ` ${v.value}${unit}` : '');
const limitOf = (v: CheckValues, unit: string) => (v.limit !== undefined ? ` (เกณฑ์ ${v.limit}${unit})` : '');

/** By the part of a check's name before ":" (storage.used_pct:/ → storage.used_pct). */
export const CHECK_TH: Record<string, CheckText> = {
  snmp: {
    title: 'SNMP ไม่ตอบ (อุปกรณ์ยังตอบ ping)',
    problem: () => 'อุปกรณ์ยังเปิดอยู่และตอบ ping แต่ระบบ SNMP ของอุปกรณ์ไม่ตอบ',
    first: () => 'ตรวจดูว่าบริการ SNMP ของอุปกรณ์ยังเปิดอยู่ ค่า community หรือผู้ใช้ SNMPv3 ตรงกับที่ตั้งไว้ในระบบเฝ้าระวัง และไฟร์วอลล์ของอุปกรณ์ยอมให้เครื่องเฝ้าระวังสอบถามได้',
  },
  uplink: {
    title: 'พอร์ตที่ต่อกับอินเทอร์เน็ตไม่ทำงาน',
    problem: (v) => `พอร์ต${onIndex(v)} ที่ต่อกับอินเทอร์เน็ตไม่ทำงาน`,
    first: (v) => `ตรวจดูสายที่ต่อพอร์ต${onIndex(v)} กับอุปกรณ์ของผู้ให้บริการ และไฟสถานะของพอร์ตนั้น`,
  },
  'receiver.lock': {
    title: 'เครื่องรับไม่ล็อกสัญญาณดาวเทียม',
    problem: () => 'เครื่องรับเปิดอยู่ แต่รับสัญญาณดาวเทียมไม่ได้ (ไม่ล็อกสัญญาณ)',
    first: () => 'ตรวจดูจานดาวเทียมว่าไม่เอียงหรือมีสิ่งบัง สาย LNB ที่ต่อเข้าเครื่องรับแน่นดี แล้วเปิดเมนูสัญญาณ (Signal) ของเครื่องรับดูความแรงและคุณภาพของสัญญาณ',
  },
  'storage.used_pct': {
    title: 'พื้นที่ดิสก์ใกล้เต็ม',
    problem: (v) => `พื้นที่ดิสก์${onIndex(v)} ใช้ไปแล้ว${seen(v, '%')}${limitOf(v, '%')}`,
    first: (v) => `ลบหรือย้ายไฟล์ที่ไม่ใช้แล้วออกจาก${onIndex(v) || 'ดิสก์'} เช่น ไฟล์บันทึก (log) และไฟล์สำรองข้อมูลเก่า หากยังไม่พอให้เพิ่มขนาดดิสก์`,
  },
  'system.mem_used_pct': {
    title: 'หน่วยความจำใกล้เต็ม',
    problem: (v) => `หน่วยความจำถูกใช้ไปแล้ว${seen(v, '%')}${limitOf(v, '%')}`,
    first: () => 'ดูว่าโปรแกรมหรือบริการใดใช้หน่วยความจำมากผิดปกติ แล้วเริ่มบริการนั้นใหม่ หากเกิดซ้ำบ่อยควรเพิ่มหน่วยความจำ',
  },
  'system.cpu_pct': {
    title: 'CPU ทำงานหนักต่อเนื่อง',
    problem: (v) => `CPU ทำงานอยู่ที่${seen(v, '%')}${limitOf(v, '%')}`,
    first: () => 'ดูว่าโปรแกรมหรือบริการใดใช้ CPU มากผิดปกติ',
  },
};
const OTHER_CHECK: CheckText = {
  title: 'ค่าที่ตรวจวัดเกินเกณฑ์',
  problem: (v) => `ค่าที่ตรวจวัด${onIndex(v)} อยู่ที่${seen(v, '')}${limitOf(v, '')}`,
  first: () => 'ตรวจดูค่าที่ตั้งเป็นเกณฑ์ในระบบเฝ้าระวัง และสภาพของอุปกรณ์',
};
export const checkTh = (check: string): CheckText => CHECK_TH[check.split(':')[0]!] ?? OTHER_CHECK;

/** The lines and words the notices are made of. */
export const TH = {
  firstCheck: (what: string) => `สิ่งที่ควรทำก่อน: ${what}`,
  /** Why an SNMP agent did not answer, in Thai. */
  found: (what: string) => `สิ่งที่พบ: ${what}`,
  technical: (what: string) => `รายละเอียดทางเทคนิค: ${what}`,
  deviceDown: (name: string, since: string) => `✗ ${name} ใช้งานไม่ได้ ตั้งแต่ ${since}`,
  /** Devices behind the failed one that this round found unreachable too. */
  behind: (kind: string, devices: number, schools: number) => `อุปกรณ์ที่ใช้งานผ่าน${kind}นี้ติดต่อไม่ได้ไปด้วย ${devices} เครื่อง${schools > 1 ? ` ใน ${schools} โรงเรียน` : ''}`,
  /** Devices behind it that are not watched at this hour; "ยังมีอีก" only after the line that counted the unreachable ones. */
  notJudged: (kind: string, devices: number, afterCounted: boolean) =>
    afterCounted
      ? `ยังมีอีก ${devices} เครื่องที่ใช้งานผ่าน${kind}นี้ ซึ่งอยู่นอกเวลาที่เฝ้าระวัง (เช่น เครื่องรับ DLTV นอกเวลาออกอากาศ) จึงยังไม่ได้ตรวจ`
      : `อุปกรณ์ที่ใช้งานผ่าน${kind}นี้ ${devices} เครื่องอยู่นอกเวลาที่เฝ้าระวัง (เช่น เครื่องรับ DLTV นอกเวลาออกอากาศ) จึงยังไม่ได้ตรวจ`,
  deviceUp: (name: string, at: string) => `✓ ${name} กลับมาใช้งานได้แล้ว เมื่อ ${at}`,
  outage: (from: string, to: string, duration: string) => `ใช้งานไม่ได้ตั้งแต่ ${from} ถึง ${to} รวม ${duration}`,
  outageSince: (from: string) => `ใช้งานไม่ได้ตั้งแต่ ${from}`,
  checkDown: (name: string, problem: string, since: string) => `! ${name}: ${problem} ตั้งแต่ ${since}`,
  checkUp: (name: string, title: string, at: string) => `✓ ${name}: ${title} กลับเป็นปกติแล้ว เมื่อ ${at}`,
  checkSpan: (from: string, to: string, duration: string) => `มีปัญหาตั้งแต่ ${from} ถึง ${to} รวม ${duration}`,
  /** The opening line: who the notice is about. */
  school: (name: string, code: string, district: string) => `${name} รหัสโรงเรียน ${code} อำเภอ${district}`,
  office: (name: string, district: string) => `${name} อำเภอ${district}`,
  areaIntro: 'หลายโรงเรียนมีปัญหาในรอบการตรวจเดียวกัน ควรตรวจสอบวงจรหรืออุปกรณ์ส่วนกลางที่ใช้ร่วมกันก่อน',
  // Subjects.
  subjectDown: (kind: string) => `${kind}ใช้งานไม่ได้`,
  subjectUp: (kind: string) => `${kind}กลับมาใช้งานได้แล้ว`,
  subjectCheck: (kind: string, device: string, title: string) => `${kind} ${device}: ${title}`,
  subjectCheckUp: (kind: string, device: string, title: string) => `${kind} ${device}: ${title} กลับเป็นปกติแล้ว`,
  devicesDown: (n: number) => `อุปกรณ์ใช้งานไม่ได้ ${n} เครื่อง`,
  problems: (n: number) => `อุปกรณ์มีปัญหา ${n} รายการ`,
  devicesUp: (n: number) => `อุปกรณ์กลับมาใช้งานได้ ${n} เครื่อง`,
  problemsCleared: (n: number) => `ปัญหาหายแล้ว ${n} รายการ`,
  andUp: (n: number, checks: boolean) => (checks ? `หายแล้ว ${n} รายการ` : `กลับมาใช้งานได้ ${n} เครื่อง`),
  areaDown: (schools: number) => `${schools} โรงเรียนใช้งานไม่ได้พร้อมกัน`,
  // Durations.
  days: (n: number) => `${n} วัน`,
  hours: (n: number) => `${n} ชั่วโมง`,
  minutes: (n: number) => `${n} นาที`,
  seconds: (n: number) => `${n} วินาที`,
  /** Appended to a clock time: "10:03 น.". */
  clock: 'น.',
} as const;

const thaiTime = new Intl.DateTimeFormat('th-TH-u-ca-buddhist', { timeZone: 'Asia/Bangkok', dateStyle: 'long', timeStyle: 'short' });
/** "24 พฤศจิกายน 2569 เวลา 10:03 น." (Buddhist Era, Asia/Bangkok). */
export const formatThaiTime = (t: number) => `${thaiTime.format(t)} ${TH.clock}`;
/** "2026-11-24 10:03 (Asia/Bangkok)" */
export const formatEnglishTime = (t: number) => `${new Date(t + 7 * 3_600_000).toISOString().slice(0, 16).replace('T', ' ')} (Asia/Bangkok)`;

export function formatThaiDuration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const parts = [d && TH.days(d), h && TH.hours(h), m && TH.minutes(m)].filter(Boolean);
  return parts.length > 0 ? parts.join(' ') : TH.seconds(seconds);
}

export function formatEnglishDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min` : `${seconds} s`;
}
