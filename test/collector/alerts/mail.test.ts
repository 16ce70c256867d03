// The mails as people read them: exact Thai text (as an area office writes
// to its schools), who gets which, and the recovery threaded under the
// failure. Notices go through the real outbox (SQLite) and nodemailer to a
// real SMTP server on loopback (smtp-server, parsed by mailparser).
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import pino from 'pino';
import { loadConfig } from '../../../config/load.ts';
import { mailSchema, type MailInput } from '../../../config/schema.ts';
import { Schedule } from '../../../config/calendar.ts';
import { StateEngine } from '../../../collector/alerts/state.ts';
import { type Raw, type CheckObservation } from '../../../stores/model.ts';
import { StateStore } from '../../../stores/state.ts';
import { composeNotices } from '../../../collector/alerts/notices.ts';
import { deviceChecks } from '../../../collector/alerts/checks.ts';
import { Outbox, createTransport } from '../../../collector/alerts/outbox.ts';
import { openProblems } from '../../../collector/health.ts';
import { startMailCatcher, type MailCatcher } from '../../../sim/mailcatcher.ts';
import type { PollResult } from '../../../collector/snmp/poll.ts';
import type { ParsedMail } from 'mailparser';

const config = loadConfig('config/examples/klaiwatch.yaml', { env: { KLAIWATCH_SCHOOL_COMMUNITY: 'x' } });
const T0 = Date.parse('2026-11-24T10:00:00+07:00'); // a Tuesday of term 2/2569, in lessons
const MIN = 60_000;
const OFFICER = 'it-officer@example.org';
const TEACHER = 'ict.nongbuadaeng@example.org';

let smtp: MailCatcher;
let mail: MailInput;
beforeAll(async () => {
  smtp = await startMailCatcher();
  mail = mailSchema.parse({ smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', timeout: '5s' }, from: 'klaiwatch <klaiwatch@example.org>', officer: [OFFICER] });
});
afterAll(async () => smtp?.stop());
beforeEach(() => void (smtp.received.length = 0));

async function area() {
  const store = new StateStore(':memory:');
  const engine = new StateEngine(config, new Schedule(config.calendars, config.settings.alerts));
  const outbox = new Outbox(store.db, mail, await createTransport(mail, config.mailAuth), pino({ level: 'silent' }));
  /** One round at T0 + i minutes: every device up but those given, and the checks given. */
  const round = async (i: number, raws: Record<string, Raw> = {}, checks: CheckObservation[] = []) => {
    const m = new Map<string, Raw>(config.devices.map((d) => [d.id, 'up']));
    for (const [k, v] of Object.entries(raws)) m.set(k, v);
    const transitions = engine.observe(m, T0 + i * MIN, checks);
    const { opened, closed } = store.apply(config.devices, engine.states, transitions);
    const notices = composeNotices({ config, transitions, opened, closed, behind: (id) => engine.behind(id), officer: [OFFICER], areaSchools: 5 });
    outbox.enqueue(notices);
    await outbox.idle();
    return notices;
  };
  return { store, engine, outbox, round, close: () => outbox.close().then(() => store.close()) };
}

const to = (m: ParsedMail) => (m.to && !Array.isArray(m.to) ? m.to.text : '');
const body = (m: ParsedMail) => (m.text ?? '').trimEnd();
const refs = (m: ParsedMail) => (m.references === undefined ? [] : Array.isArray(m.references) ? m.references : [m.references]);

describe('mail', () => {
  it('a school router down and back: since the first failed poll, what this round found behind it, the recovery from when to when, threaded under the failure', async () => {
    const a = await area();
    try {
      await a.round(0);
      await a.round(1);
      // The router and everything behind it stop answering at 10:02; the second round (10:03) confirms it.
      const out: Record<string, Raw> = Object.fromEntries(config.schools.find((s) => s.code === '1036090101')!.devices.map((d) => [d.id, 'down' as Raw]));
      await a.round(2, out);
      await a.round(3, out);
      expect(smtp.received.map((m) => [to(m), m.subject])).toEqual([
        [TEACHER, '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: เราเตอร์ใช้งานไม่ได้'],
        [OFFICER, '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: เราเตอร์ใช้งานไม่ได้'],
      ]);
      expect(body(smtp.received[0]!)).toBe(
        [
          'โรงเรียนบ้านหนองบัวแดง (Ban Nong Bua Daeng School) รหัสโรงเรียน 1036090101 อำเภอหนองบัวแดง',
          '',
          '✗ เราเตอร์ 1036090101-router 10.36.1.1 ใช้งานไม่ได้ ตั้งแต่ 24 พฤศจิกายน 2569 เวลา 10:02 น.',
          '  อุปกรณ์ที่ใช้งานผ่านเราเตอร์นี้ติดต่อไม่ได้ไปด้วย 4 เครื่อง',
          '  สิ่งที่ควรทำก่อน: ตรวจดูไฟเลี้ยงของเราเตอร์ และไฟสถานะของอุปกรณ์จากผู้ให้บริการอินเทอร์เน็ต (ONU/โมเด็ม)',
          '',
          'Router 1036090101-router (10.36.1.1) is DOWN since 2026-11-24 10:02 (Asia/Bangkok); 4 devices behind it found unreachable.',
          '',
          '— klaiwatch',
        ].join('\n'),
      );
      const [downTeacher, downOfficer] = smtp.received.map((m) => m.messageId!);
      expect(refs(smtp.received[0]!)).toEqual([]);

      // Back at 10:05 (first good poll), confirmed at 10:06.
      await a.round(5);
      await a.round(6);
      const recovery = smtp.received.slice(2);
      expect(recovery.map((m) => [to(m), m.subject])).toEqual([
        [TEACHER, '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: เราเตอร์กลับมาใช้งานได้แล้ว'],
        [OFFICER, '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: เราเตอร์กลับมาใช้งานได้แล้ว'],
      ]);
      expect(body(recovery[0]!)).toBe(
        [
          'โรงเรียนบ้านหนองบัวแดง (Ban Nong Bua Daeng School) รหัสโรงเรียน 1036090101 อำเภอหนองบัวแดง',
          '',
          '✓ เราเตอร์ 1036090101-router 10.36.1.1 กลับมาใช้งานได้แล้ว เมื่อ 24 พฤศจิกายน 2569 เวลา 10:05 น.',
          '  ใช้งานไม่ได้ตั้งแต่ 24 พฤศจิกายน 2569 เวลา 10:02 น. ถึง 24 พฤศจิกายน 2569 เวลา 10:05 น. รวม 3 นาที',
          '',
          'Router 1036090101-router (10.36.1.1) is UP again at 2026-11-24 10:05 (Asia/Bangkok); down from 2026-11-24 10:02 (Asia/Bangkok), 3 min.',
          '',
          '— klaiwatch',
        ].join('\n'),
      );
      // Each recipient's recovery answers the failure that recipient got.
      expect(recovery[0]!.inReplyTo).toBe(downTeacher);
      expect(refs(recovery[0]!)).toEqual([downTeacher]);
      expect(recovery[1]!.inReplyTo).toBe(downOfficer);
      expect(refs(recovery[1]!)).toEqual([downOfficer]);
      expect(a.outbox.rows().map((r) => r.references)).toEqual([[], [], [downTeacher], [downOfficer]]);
    } finally {
      await a.close();
    }
  });

  it('after school hours the receivers behind a failed router are "not judged", not counted as unreachable', async () => {
    const a = await area();
    try {
      const evening = (T0 - Date.parse('2026-11-24T10:00:00+07:00')) / MIN + 8 * 60; // 18:00
      await a.round(evening);
      await a.round(evening + 1);
      const out: Record<string, Raw> = { '1036090101-router': 'down', '1036090101-dltv-1': 'down', '1036090101-dltv-2': 'down', '1036090101-dltv-3': 'down', '1036090101-server': 'down' };
      await a.round(evening + 2, out);
      await a.round(evening + 3, out);
      const text = body(smtp.received.find((m) => to(m) === TEACHER)!);
      expect(text).toContain('  อุปกรณ์ที่ใช้งานผ่านเราเตอร์นี้ติดต่อไม่ได้ไปด้วย 1 เครื่อง\n  ยังมีอีก 3 เครื่องที่ใช้งานผ่านเราเตอร์นี้ ซึ่งอยู่นอกเวลาที่เฝ้าระวัง (เช่น เครื่องรับ DLTV นอกเวลาออกอากาศ) จึงยังไม่ได้ตรวจ\n');
      expect(text).toContain('1 device behind it found unreachable; 3 more behind it not watched at this hour.');
    } finally {
      await a.close();
    }
  });

  it('check notices say what to do first; a silent SNMP agent and the office disks go to the officer only; pseudo-filesystems are no disks; no English error in the Thai', async () => {
    const a = await area();
    const server = config.deviceById.get('1036090101-server')!;
    const rx = config.deviceById.get('1036090101-dltv-2')!;
    const web = config.deviceById.get('office-web')!;
    const echo = (address: string) => ({ address, sent: 3, received: 3, lossPct: 0, rtts: [1, 1, 1] });
    const FIXED = '1.3.6.1.2.1.25.2.1.4';
    const OTHER = '1.3.6.1.2.1.25.2.1.1';
    const disks = (id: string, rows: [string, string, number][]): PollResult => ({
      device: id,
      ok: true,
      answered: true,
      durationMs: 1,
      pdus: 1,
      timeouts: 0,
      points: rows.map(([storage, type, used_pct]) => ({ measurement: 'storage' as const, tags: { storage }, fields: { used_pct, type }, time: T0 })),
    });
    const full = (t: number) => [
      ...deviceChecks(server, disks(server.id, [['/', FIXED, t], ['/dev/shm', OTHER, 99], ['/run', OTHER, 97], ['/sys/fs/cgroup', OTHER, 100]]), echo(server.address), config.settings.alerts.thresholds),
      ...deviceChecks(web, disks(web.id, [['/var', FIXED, t]]), echo(web.address), config.settings.alerts.thresholds),
    ];
    const agentSilent: PollResult = {
      device: rx.id,
      ok: false,
      answered: false,
      error: `school 1036090101 dltv-receiver ${rx.id} ${rx.address}: wrong_community: get: the agent answered with another community`,
      problems: [{ kind: 'wrong_community', message: 'wrong_community: get: the agent answered with another community', count: 1 }],
      durationMs: 1,
      pdus: 1,
      timeouts: 0,
      points: [],
    };
    // /dev/shm, /run and cgroup (hrStorageOther) are never checked, however full and however named.
    expect(full(93.14).map((c) => c.check).filter((c) => c.startsWith('storage'))).toEqual(['storage.used_pct:/', 'storage.used_pct:/var']);
    try {
      await a.round(0, {}, full(50));
      await a.round(1, {}, full(50));
      await a.round(2, {}, [...full(93.14), ...deviceChecks(rx, agentSilent, echo(rx.address), [])]);
      await a.round(3, {}, [...full(93.14), ...deviceChecks(rx, agentSilent, echo(rx.address), [])]);
      expect(smtp.received.map((m) => [to(m), m.subject])).toEqual([
        [TEACHER, '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: เครื่องแม่ข่าย 1036090101-server: พื้นที่ดิสก์ใกล้เต็ม'],
        [OFFICER, '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: อุปกรณ์มีปัญหา 2 รายการ'],
        [OFFICER, '[klaiwatch] สำนักงานเขตพื้นที่การศึกษาประถมศึกษาชัยภูมิ เขต 9 (ตัวอย่าง): เครื่องแม่ข่าย office-web: พื้นที่ดิสก์ใกล้เต็ม'],
      ]);
      const disk = [
        '! เครื่องแม่ข่าย 1036090101-server 10.36.1.2: พื้นที่ดิสก์ / ใช้ไปแล้ว 93.1% (เกณฑ์ 90%) ตั้งแต่ 24 พฤศจิกายน 2569 เวลา 10:02 น.',
        '  สิ่งที่ควรทำก่อน: ลบหรือย้ายไฟล์ที่ไม่ใช้แล้วออกจาก / เช่น ไฟล์บันทึก (log) และไฟล์สำรองข้อมูลเก่า หากยังไม่พอให้เพิ่มขนาดดิสก์',
      ];
      const intro = 'โรงเรียนบ้านหนองบัวแดง (Ban Nong Bua Daeng School) รหัสโรงเรียน 1036090101 อำเภอหนองบัวแดง';
      // The teacher: the disk (they can clean it up), not the SNMP agent, no technical line.
      expect(body(smtp.received[0]!).split('\n\n').slice(0, 2)).toEqual([intro, disk.join('\n')]);
      // The officer: both, each with its technical line; the agent's trouble in Thai, its code kept.
      expect(body(smtp.received[1]!).split('\n\n').slice(0, 2)).toEqual([
        intro,
        [
          ...disk,
          '  รายละเอียดทางเทคนิค: storage.used_pct:/ = 93.1 (> 90)',
          '! เครื่องรับสัญญาณ DLTV 1036090101-dltv-2 (ห้องเรียน 2) 10.36.1.12: อุปกรณ์ยังเปิดอยู่และตอบ ping แต่ระบบ SNMP ของอุปกรณ์ไม่ตอบ ตั้งแต่ 24 พฤศจิกายน 2569 เวลา 10:02 น.',
          '  สิ่งที่พบ: ชื่อ community ไม่ตรงกับที่ตั้งไว้ในอุปกรณ์',
          '  สิ่งที่ควรทำก่อน: ตรวจดูว่าบริการ SNMP ของอุปกรณ์ยังเปิดอยู่ ค่า community หรือผู้ใช้ SNMPv3 ตรงกับที่ตั้งไว้ในระบบเฝ้าระวัง และไฟร์วอลล์ของอุปกรณ์ยอมให้เครื่องเฝ้าระวังสอบถามได้',
          '  รายละเอียดทางเทคนิค: snmp wrong_community',
        ].join('\n'),
      ]);
      const thaiPart = body(smtp.received[1]!).split('\n\n').slice(0, 2).join('\n');
      expect(thaiPart).not.toMatch(/answered with another community|school 1036090101 dltv-receiver/);
      // The office is named as the office, with no "รหัส office".
      expect(body(smtp.received[2]!).split('\n')[0]).toBe('สำนักงานเขตพื้นที่การศึกษาประถมศึกษาชัยภูมิ เขต 9 (ตัวอย่าง) (Example Primary Educational Service Area Office) อำเภอเทพสถิต');
      expect(body(smtp.received[2]!)).not.toContain('รหัส');

      // Where people look: /healthz lists the three failing checks, since the first round that saw them.
      const problems = openProblems(config, a.engine);
      expect(problems.counts).toEqual({ devices_down: 0, devices_unreachable: 0, checks_failing: 3 });
      expect(problems.checks_failing).toEqual(
        expect.arrayContaining([
          { device: '1036090101-server', school: '1036090101', check: 'storage.used_pct:/', since: new Date(T0 + 2 * MIN).toISOString(), value: 'used_pct / = 93.1 (> 90)', code: null },
          { device: 'office-web', school: 'office', check: 'storage.used_pct:/var', since: new Date(T0 + 2 * MIN).toISOString(), value: 'used_pct /var = 93.1 (> 90)', code: null },
          expect.objectContaining({ device: '1036090101-dltv-2', check: 'snmp', code: 'wrong_community' }),
        ]),
      );

      // Cleaned up at 10:05: the recovery says from when to when, threaded per recipient.
      await a.round(5, {}, [...full(60), ...deviceChecks(rx, { ...agentSilent, ok: true, answered: true }, echo(rx.address), [])]);
      await a.round(6, {}, [...full(60), ...deviceChecks(rx, { ...agentSilent, ok: true, answered: true }, echo(rx.address), [])]);
      const back = smtp.received.slice(3);
      expect(back.map((m) => [to(m), m.subject])).toEqual([
        [TEACHER, '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: เครื่องแม่ข่าย 1036090101-server: พื้นที่ดิสก์ใกล้เต็ม กลับเป็นปกติแล้ว'],
        [OFFICER, '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: ปัญหาหายแล้ว 2 รายการ'],
        [OFFICER, '[klaiwatch] สำนักงานเขตพื้นที่การศึกษาประถมศึกษาชัยภูมิ เขต 9 (ตัวอย่าง): เครื่องแม่ข่าย office-web: พื้นที่ดิสก์ใกล้เต็ม กลับเป็นปกติแล้ว'],
      ]);
      expect(body(back[0]!).split('\n\n')[1]).toBe(
        [
          '✓ เครื่องแม่ข่าย 1036090101-server 10.36.1.2: พื้นที่ดิสก์ใกล้เต็ม กลับเป็นปกติแล้ว เมื่อ 24 พฤศจิกายน 2569 เวลา 10:05 น.',
          '  มีปัญหาตั้งแต่ 24 พฤศจิกายน 2569 เวลา 10:02 น. ถึง 24 พฤศจิกายน 2569 เวลา 10:05 น. รวม 3 นาที',
        ].join('\n'),
      );
      for (const [i, m] of back.entries()) {
        expect(m.inReplyTo, m.subject).toBe(smtp.received[i]!.messageId);
        expect(refs(m)).toEqual([smtp.received[i]!.messageId]);
      }
      expect(openProblems(config, a.engine).counts.checks_failing).toBe(0);
    } finally {
      await a.close();
    }
  });
});
