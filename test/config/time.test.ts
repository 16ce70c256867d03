// config/time.ts: the from/to forms of the API's views and maintenance list.
// A date or a date-time without an offset is the area's local time
// (Asia/Bangkok by default); impossible days and hours are refused, not
// rolled over as Date.parse does (2026-02-30 is not 2 March).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { parseAreaTime } from '../../config/time.ts';

const SEED = 20261129;
const FUZZ_RUNS = Number(process.env.KW_FUZZ_RUNS ?? '') || undefined;
const params = (numRuns: number) => (FUZZ_RUNS ? { seed: SEED, numRuns: FUZZ_RUNS } : { seed: SEED, numRuns, interruptAfterTimeLimit: 3000 });
const H = 3_600_000;
const MAX = 253_402_300_799_999;

describe('parseAreaTime', () => {
  it('reads the forms people type, a bare date and a date-time as Thai time', () => {
    expect(parseAreaTime('2026-11-29')).toBe(Date.parse('2026-11-29T00:00:00+07:00'));
    expect(parseAreaTime('2026-11-29T08:00')).toBe(Date.parse('2026-11-29T08:00:00+07:00'));
    expect(parseAreaTime(' 2026-11-29 08:00:05.25 ')).toBe(Date.parse('2026-11-29T08:00:05.250+07:00'));
    expect(parseAreaTime('2026-11-29T08:00:00Z')).toBe(Date.parse('2026-11-29T08:00:00Z'));
    expect(parseAreaTime('2026-11-29T08:00:00-0330')).toBe(Date.parse('2026-11-29T08:00:00-03:30'));
    expect(parseAreaTime('1795971600000')).toBe(1795971600000);
    // Another area's offset for the forms without one.
    expect(parseAreaTime('2026-11-29', 0)).toBe(Date.parse('2026-11-29T00:00:00Z'));
  });

  it('refuses what is no time, or a day or hour that does not exist', () => {
    for (const s of ['', 'yesterday', '2026-02-30', '2026-02-29', '2026-13-01', '2026-00-10', '2026-11-29T24:00', '2026-11-29T08:60', '2026-11-29T08:00:60', '2026-11-29T08:00+15:00', '0099-01-01', '1e12', '-5', '2026-11-29T08', '9'.repeat(16), '2026-11-29T08:00:00+07:00 OR 1=1']) {
      expect(parseAreaTime(s), s).toBeUndefined();
    }
    expect(parseAreaTime('2028-02-29')).toBe(Date.parse('2028-02-29T00:00:00+07:00'));
  });

  it('reads back any instant written in Thai time without an offset, with Z, with +07:00, or as Unix ms', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX - 7 * H }), (t) => {
        const local = new Date(t + 7 * H).toISOString().slice(0, 23);
        expect(parseAreaTime(local)).toBe(t);
        expect(parseAreaTime(new Date(t).toISOString())).toBe(t);
        expect(parseAreaTime(`${local}+07:00`)).toBe(t);
        expect(parseAreaTime(String(t))).toBe(t);
      }),
      params(2000),
    );
  });

  it('never throws and answers fast on any short text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const t = parseAreaTime(s);
        expect(t === undefined || (Number.isSafeInteger(t) && t >= 0 && t <= MAX)).toBe(true);
      }),
      params(2000),
    );
  });
});
