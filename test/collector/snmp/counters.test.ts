import { describe, it, expect } from 'vitest';
import { counterRate } from '../../../collector/snmp/counters.ts';

// Pure arithmetic on recorded samples; the same cases against a live agent are in poll.test.ts.
describe('counter → rate', () => {
  const t0 = 1_700_000_000_000;

  it('gives no rate for the first sample', () => {
    expect(counterRate(undefined, { value: 5n, timeMs: t0 }, 64)).toEqual({ rate: undefined, reason: 'first' });
  });

  it('divides the difference by the seconds between samples', () => {
    expect(counterRate({ value: 1000n, timeMs: t0, uptimeCs: 100 }, { value: 61000n, timeMs: t0 + 60_000, uptimeCs: 6100 }, 64)).toEqual({ rate: 1000, wrapped: false });
  });

  it('adds 2^32 once when a 32-bit counter wraps', () => {
    const r = counterRate({ value: 4_294_967_000n, timeMs: t0, uptimeCs: 100 }, { value: 704n, timeMs: t0 + 10_000, uptimeCs: 1100 }, 32);
    expect(r).toEqual({ rate: 100, wrapped: true });
  });

  it('treats a 64-bit counter going back as a reset: no rate', () => {
    expect(counterRate({ value: 9_000_000n, timeMs: t0 }, { value: 10n, timeMs: t0 + 10_000 }, 64)).toEqual({ rate: undefined, reason: 'reset' });
  });

  it('gives no rate across an agent restart (sysUpTime went back), even where a wrap would look plausible', () => {
    const prev = { value: 4_294_967_000n, timeMs: t0, uptimeCs: 500_000 };
    const cur = { value: 200n, timeMs: t0 + 60_000, uptimeCs: 3_000 };
    expect(counterRate(prev, cur, 32)).toEqual({ rate: undefined, reason: 'restart' });
  });

  it('gives no rate when the agent restarted and already counted past the last uptime', () => {
    // Uptime is higher than before but only 5 s old, while 60 s passed.
    const prev = { value: 100n, timeMs: t0, uptimeCs: 200 };
    const cur = { value: 50n, timeMs: t0 + 60_000, uptimeCs: 500 };
    expect(counterRate(prev, cur, 32)).toEqual({ rate: undefined, reason: 'restart' });
  });

  it('refuses a rate beyond the interface speed (a reset that looks like a wrap)', () => {
    const prev = { value: 1_000_000n, timeMs: t0, uptimeCs: 100 };
    const cur = { value: 10n, timeMs: t0 + 10_000, uptimeCs: 1100 };
    // A "wrap" here means 429 MB/s; a 100 Mbit/s port carries at most 12.5 MB/s.
    expect(counterRate(prev, cur, 32, 12_500_000)).toEqual({ rate: undefined, reason: 'implausible' });
  });

  it('gives no rate when no time passed', () => {
    expect(counterRate({ value: 1n, timeMs: t0 }, { value: 2n, timeMs: t0 }, 64)).toEqual({ rate: undefined, reason: 'no-time' });
  });
});
