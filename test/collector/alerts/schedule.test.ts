import { describe, it, expect } from 'vitest';
import { loadConfig } from '../../../config/load.ts';
import { Calendar, Schedule } from '../../../config/calendar.ts';

const config = loadConfig('config/examples/klaiwatch.yaml', { env: { KLAIWATCH_SCHOOL_COMMUNITY: 'x' } });
const bangkok = (local: string) => Date.parse(`${local}+07:00`);

describe('the school calendar (config/calendar/2569.yaml)', () => {
  const cal = new Calendar(config.calendars.find((c) => c.year_be === 2569)!);

  it('knows school days, weekends, holidays and the break between terms', () => {
    expect(cal.schoolDay(bangkok('2026-11-24T10:00:00'))).toEqual({ term: 'ภาคเรียนที่ 2/2569' });
    expect(cal.schoolDay(bangkok('2026-11-28T10:00:00'))).toEqual({ not: 'weekend' });
    expect(cal.schoolDay(bangkok('2026-12-10T10:00:00'))).toEqual({ not: 'holiday', name: 'วันรัฐธรรมนูญ' });
    expect(cal.schoolDay(bangkok('2026-10-20T10:00:00'))).toEqual({ not: 'between terms' });
  });

  it('is on the air inside a period, in Bangkok time, and not at noon, after 15:30 or before 08:30', () => {
    expect(cal.broadcast(bangkok('2026-11-24T08:30:00'))?.name).toBe('คาบที่ 1');
    expect(cal.broadcast(bangkok('2026-11-24T08:29:59'))).toBeUndefined();
    expect(cal.broadcast(bangkok('2026-11-24T12:00:00'))).toBeUndefined();
    expect(cal.broadcast(bangkok('2026-11-24T15:29:00'))?.name).toBe('คาบที่ 6');
    expect(cal.broadcast(bangkok('2026-11-24T15:30:00'))).toBeUndefined();
    // 01:30 UTC is 08:30 in Bangkok.
    expect(cal.broadcast(Date.parse('2026-11-24T01:30:00Z'))?.name).toBe('คาบที่ 1');
  });
});

describe('what is judged when', () => {
  const receiver = config.deviceById.get('1036090101-dltv-1')!;
  const router = config.deviceById.get('1036090101-router')!;

  it('judges classroom receivers only while DLTV is on the air, routers always', () => {
    const s = new Schedule(config.calendars, config.settings.alerts);
    expect(s.judged(receiver, bangkok('2026-11-24T10:00:00'))).toBe(true);
    expect(s.judged(receiver, bangkok('2026-11-24T17:00:00'))).toBe(false);
    expect(s.judged(receiver, bangkok('2026-12-05T10:00:00'))).toBe(false);
    expect(s.judged(router, bangkok('2026-11-24T17:00:00'))).toBe(true);
    // A date no calendar covers: judged, rather than silent on a year nobody configured.
    expect(s.judged(receiver, bangkok('2030-01-08T17:00:00'))).toBe(true);
  });

  it('puts devices in a maintenance window, by device or by school', () => {
    const s = new Schedule(config.calendars, {
      ...config.settings.alerts,
      maintenance: [{ devices: [], schools: ['1036090101'], start: '2026-11-24T09:00:00+07:00', end: '2026-11-24T11:00:00+07:00', reason: 'เปลี่ยนสายไฟเบอร์' }],
    });
    expect(s.maintenanceOf(router, bangkok('2026-11-24T10:00:00'))).toBe('เปลี่ยนสายไฟเบอร์');
    expect(s.maintenanceOf(router, bangkok('2026-11-24T11:00:00'))).toBeUndefined();
    expect(s.maintenanceOf(config.deviceById.get('1036090102-router')!, bangkok('2026-11-24T10:00:00'))).toBeUndefined();
  });
});
