import { describe, it, expect } from 'vitest';
import { loadConfig, type Config } from '../../../config/load.ts';
import { Schedule } from '../../../config/calendar.ts';
import { StateEngine } from '../../../collector/alerts/state.ts';
import { type Raw } from '../../../stores/model.ts';
import { StateStore } from '../../../stores/state.ts';
import { composeNotices } from '../../../collector/alerts/notices.ts';
import { formatThaiDuration, formatThaiTime } from '../../../config/thai.ts';

const config = loadConfig('config/examples/klaiwatch.yaml', { env: { KLAIWATCH_SCHOOL_COMMUNITY: 'x' } });
const T0 = Date.parse('2026-11-24T10:00:00+07:00');
const MIN = 60_000;
const OFFICER = ['it-officer@example.org'];

function run(rounds: Record<string, Raw>[], cfg: Config = config) {
  const store = new StateStore(':memory:');
  const engine = new StateEngine(cfg, new Schedule(cfg.calendars, cfg.settings.alerts));
  const all = [];
  for (const [i, r] of rounds.entries()) {
    const m = new Map<string, Raw>(cfg.devices.map((d) => [d.id, 'up']));
    for (const [k, v] of Object.entries(r)) m.set(k, v);
    const transitions = engine.observe(m, T0 + i * MIN);
    const { opened, closed } = store.apply(cfg.devices, engine.states, transitions);
    all.push(composeNotices({ config: cfg, transitions, opened, closed, behind: (id) => engine.behind(id), officer: OFFICER, areaSchools: 5 }));
  }
  return all;
}

describe('notices', () => {
  it('formats Thai dates in the Buddhist Era, Bangkok time, and durations in words', () => {
    expect(formatThaiTime(Date.parse('2026-11-24T03:05:00Z'))).toBe('24 พฤศจิกายน 2569 เวลา 10:05 น.');
    expect(formatThaiDuration(3 * 3600 + 7 * 60)).toBe('3 ชั่วโมง 7 นาที');
    expect(formatThaiDuration(2 * 86_400 + 60)).toBe('2 วัน 1 นาที');
    expect(formatThaiDuration(42)).toBe('42 วินาที');
  });

  it("the office uplink down: one notice, to the officer, saying what sits behind it; none for the schools' devices", () => {
    const all = Object.fromEntries(config.devices.map((d) => [d.id, 'down' as Raw]));
    const notices = run([{}, {}, all, all]).flat();
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ to: OFFICER, school: 'office', subject: expect.stringContaining('วงจรอินเทอร์เน็ตหลักใช้งานไม่ได้') });
    expect(notices[0]!.text).toContain(`อุปกรณ์ที่ใช้งานผ่านวงจรอินเทอร์เน็ตหลักนี้ติดต่อไม่ได้ไปด้วย ${config.devices.length - 1} เครื่อง ใน 21 โรงเรียน`);
    // The office is named, not given a school code ("รหัส office").
    expect(notices[0]!.text.split('\n')[0]).toBe('สำนักงานเขตพื้นที่การศึกษาประถมศึกษาชัยภูมิ เขต 9 (ตัวอย่าง) (Example Primary Educational Service Area Office) อำเภอเทพสถิต');
  });

  it('devices behind a failed router not watched at this hour: "ยังมีอีก" only after a line that counted some, never "more" with nothing before it', () => {
    const router = '1036090101-router';
    const said = (behind: { devices: number; schools: number; notJudged: number }) => {
      const store = new StateStore(':memory:');
      const engine = new StateEngine(config, new Schedule(config.calendars, config.settings.alerts));
      const out = [];
      for (let i = 0; i < 4; i++) {
        const m = new Map<string, Raw>(config.devices.map((d) => [d.id, i >= 2 && d.id === router ? 'down' : 'up']));
        const transitions = engine.observe(m, T0 + i * MIN);
        const { opened, closed } = store.apply(config.devices, engine.states, transitions);
        out.push(...composeNotices({ config, transitions, opened, closed, behind: () => behind, officer: OFFICER, areaSchools: 5 }));
      }
      return out.find((n) => n.text.includes('ใช้งานไม่ได้'))!.text;
    };
    const alone = said({ devices: 0, schools: 0, notJudged: 3 });
    expect(alone).toContain('\n  อุปกรณ์ที่ใช้งานผ่านเราเตอร์นี้ 3 เครื่องอยู่นอกเวลาที่เฝ้าระวัง (เช่น เครื่องรับ DLTV นอกเวลาออกอากาศ) จึงยังไม่ได้ตรวจ\n');
    expect(alone).not.toContain('อีก');
    expect(alone).toContain('; 3 behind it not watched at this hour.');
    expect(alone).not.toContain(' more ');
    const after = said({ devices: 1, schools: 1, notJudged: 3 });
    expect(after).toContain('\n  อุปกรณ์ที่ใช้งานผ่านเราเตอร์นี้ติดต่อไม่ได้ไปด้วย 1 เครื่อง\n  ยังมีอีก 3 เครื่องที่ใช้งานผ่านเราเตอร์นี้ ซึ่งอยู่นอกเวลาที่เฝ้าระวัง');
    expect(after).toContain('1 device behind it found unreachable; 3 more behind it not watched at this hour.');
  });

  it('many schools failing at once: each school is told, the officer gets one area-wide notice', () => {
    const routers = config.devices.filter((d) => d.kind === 'router').slice(0, 6);
    const down = Object.fromEntries(routers.map((d) => [d.id, 'down' as Raw]));
    const notices = run([{}, {}, down, down]).flat();
    expect(notices.filter((n) => n.to[0] === OFFICER[0])).toHaveLength(1);
    expect(notices.find((n) => n.school === 'area')!.subject).toMatch(/6 โรงเรียนใช้งานไม่ได้พร้อมกัน$/);
    expect(notices.filter((n) => n.school !== 'area').map((n) => n.school).sort()).toEqual(routers.map((d) => d.school.code).sort());
  });

  it('a flapping device is not announced', () => {
    const cfg: Config = { ...config, settings: { ...config.settings, alerts: { ...config.settings.alerts, confirm_default: 1, flap_changes: 3 } } };
    const down: Record<string, Raw> = { '1036090102-router': 'down' };
    const rounds = Array.from({ length: 8 }, (_, i): Record<string, Raw> => (i % 2 === 0 ? down : {}));
    const perRound = run([{}, ...rounds], cfg);
    const later = perRound.slice(4).flat();
    expect(perRound.slice(1, 3).flat().length).toBeGreaterThan(0);
    expect(later).toEqual([]);
  });

  it('a school with several failures in one round gets one notice listing them', () => {
    const notices = run([{}, {}, { '1036090101-dltv-1': 'down', '1036090101-dltv-2': 'down' }, { '1036090101-dltv-1': 'down', '1036090101-dltv-2': 'down' }]).flat();
    const school = notices.filter((n) => n.to[0] === 'ict.nongbuadaeng@example.org');
    expect(school).toHaveLength(1);
    expect(school[0]!.subject).toBe('[klaiwatch] โรงเรียนบ้านหนองบัวแดง: อุปกรณ์ใช้งานไม่ได้ 2 เครื่อง');
    expect(school[0]!.text).toContain('ห้องเรียน 1');
    expect(school[0]!.text).toContain('ห้องเรียน 2');
  });
});

describe('checks of a device that is up', () => {
  it('a receiver that answers but has lost the satellite: a check incident and its own notice, with what was seen', async () => {
    const { deviceChecks } = await import('../../../collector/alerts/checks.ts');
    const rx = config.deviceById.get('1036090101-dltv-1')!;
    const poll = (lock: number) => ({ device: rx.id, ok: true, answered: true, durationMs: 1, pdus: 1, timeouts: 0, points: [{ measurement: 'receiver' as const, tags: {}, fields: { lock, cn_db: 2.1 }, time: T0 }] });
    const echo = { address: rx.address, sent: 3, received: 3, lossPct: 0, rtts: [1, 1, 1] };
    expect(deviceChecks(rx, poll(0), echo, config.settings.alerts.thresholds)).toEqual([
      { device: rx, check: 'snmp', raw: 'up', detail: 'SNMP answers' },
      { device: rx, check: 'receiver.lock', raw: 'down', detail: 'lock = 0 (< 1)', facts: { value: 0, limit: { below: 1 } } },
    ]);

    const store = new StateStore(':memory:');
    const engine = new StateEngine(config, new Schedule(config.calendars, config.settings.alerts));
    const notices = [];
    for (let i = 0; i < 4; i++) {
      const m = new Map<string, Raw>(config.devices.map((d) => [d.id, 'up']));
      const transitions = engine.observe(m, T0 + i * MIN, deviceChecks(rx, poll(i < 2 ? 1 : 0), echo, config.settings.alerts.thresholds));
      const { opened, closed } = store.apply(config.devices, engine.states, transitions);
      notices.push(...composeNotices({ config, transitions, opened, closed, behind: (id) => engine.behind(id), officer: OFFICER, areaSchools: 5 }));
    }
    expect(engine.states.get('1036090101-dltv-1')!.state).toBe('up');
    expect(engine.states.get('1036090101-dltv-1#receiver.lock')!.state).toBe('down');
    expect(store.openIncidents()).toEqual([expect.objectContaining({ device: '1036090101-dltv-1', check: 'receiver.lock', state: 'down' })]);
    expect(notices.map((n) => n.subject)).toEqual([
      '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: เครื่องรับสัญญาณ DLTV 1036090101-dltv-1: เครื่องรับไม่ล็อกสัญญาณดาวเทียม',
      '[klaiwatch] โรงเรียนบ้านหนองบัวแดง: เครื่องรับสัญญาณ DLTV 1036090101-dltv-1: เครื่องรับไม่ล็อกสัญญาณดาวเทียม',
    ]);
    // Since the first round that saw it (10:02), what to check first; the technical line in the officer's copy only.
    expect(notices[0]!.text).toContain('! เครื่องรับสัญญาณ DLTV 1036090101-dltv-1 (ห้องเรียน 1) 10.36.1.11: เครื่องรับเปิดอยู่ แต่รับสัญญาณดาวเทียมไม่ได้ (ไม่ล็อกสัญญาณ) ตั้งแต่ 24 พฤศจิกายน 2569 เวลา 10:02 น.');
    expect(notices[0]!.text).toContain('สิ่งที่ควรทำก่อน: ตรวจดูจานดาวเทียมว่าไม่เอียงหรือมีสิ่งบัง สาย LNB ที่ต่อเข้าเครื่องรับแน่นดี แล้วเปิดเมนูสัญญาณ (Signal) ของเครื่องรับดูความแรงและคุณภาพของสัญญาณ');
    expect(notices[0]!.text).not.toContain('รายละเอียดทางเทคนิค');
    expect(notices[1]!.text).toContain('รายละเอียดทางเทคนิค: receiver.lock = 0 (< 1)');
  });
});
