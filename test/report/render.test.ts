// The report's small formatters: the observed share never reads the same for
// "some" and "none", and the CSV's machine-readable time is Bangkok time.
import { describe, it, expect } from 'vitest';
import { sharePct, bangkokIso, pctCut } from '../../report/render.ts';

describe('report formatting', () => {
  it('the observed share: "—" (empty) for none, "< 0.01" for minutes in a year, cut like every share otherwise', () => {
    expect(sharePct(null)).toBe('');
    expect(sharePct(undefined)).toBe('');
    expect(sharePct(0)).toBe('');
    expect(sharePct(Number.NaN)).toBe('');
    // 5 minutes of a fiscal year: 0.00095 %.
    expect(sharePct(((5 * 60) / (365 * 86_400)) * 100)).toBe('< 0.01');
    expect(sharePct(1e-12)).toBe('< 0.01');
    expect(sharePct(0.01)).toBe('0.01');
    expect(sharePct(42.3456)).toBe('42.34');
    expect(sharePct(100)).toBe('100.00');
    expect(sharePct(99.99999)).toBe(pctCut(99.99999));
  });

  it('ISO 8601 in Bangkok time (+07:00), the same moment as the UTC one', () => {
    const t = Date.parse('2026-11-29T06:58:28.141Z');
    expect(bangkokIso(t)).toBe('2026-11-29T13:58:28+07:00');
    expect(Date.parse(bangkokIso(t))).toBe(t - 141);
    // Across midnight and the year's end.
    expect(bangkokIso(Date.parse('2026-12-31T17:00:00Z'))).toBe('2027-01-01T00:00:00+07:00');
  });
});
