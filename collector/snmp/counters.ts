// Counters into rates, without false spikes. Three things make a counter go
// "backwards" and each needs a different answer (the same rules Cacti, MRTG
// and LibreNMS converged on):
//  - a 32-bit counter wrapped past 2^32: add 2^32, once, but only if the rate
//    that gives is possible for the interface (a reset of a slow counter looks
//    like a wrap too);
//  - the agent restarted (sysUpTime went back, or is younger than the time
//    since our last sample): no rate this time, start again from here;
//  - a 64-bit counter went back: it cannot have wrapped in our lifetime, so
//    it was reset: no rate.

export interface CounterSample {
  value: bigint;
  /** Wall clock of the sample, ms. */
  timeMs: number;
  /** sysUpTime of the agent when sampled, hundredths of a second. */
  uptimeCs?: number;
}

export type RateOutcome =
  | { rate: number; wrapped: boolean }
  | { rate: undefined; reason: 'first' | 'restart' | 'reset' | 'implausible' | 'no-time' };

const TWO_32 = 2n ** 32n;

/**
 * Per-second rate of a counter between two samples. `maxRate` (already in the
 * counter's units per second) rejects impossible results, such as a "wrap"
 * that would mean more traffic than the interface can carry.
 */
export function counterRate(prev: CounterSample | undefined, cur: CounterSample, bits: 32 | 64, maxRate?: number): RateOutcome {
  if (!prev) return { rate: undefined, reason: 'first' };
  const dtMs = cur.timeMs - prev.timeMs;
  if (dtMs <= 0) return { rate: undefined, reason: 'no-time' };
  if (cur.uptimeCs !== undefined && prev.uptimeCs !== undefined) {
    // Agent restart: uptime went back, or it is shorter than the time since
    // the last sample (restarted in between, and already counted past it).
    if (cur.uptimeCs < prev.uptimeCs || cur.uptimeCs * 10 < dtMs) return { rate: undefined, reason: 'restart' };
  }
  let delta = cur.value - prev.value;
  let wrapped = false;
  if (delta < 0n) {
    if (bits === 64) return { rate: undefined, reason: 'reset' };
    delta += TWO_32;
    wrapped = true;
  }
  const rate = Number(delta) / (dtMs / 1000);
  if (maxRate !== undefined && maxRate > 0 && rate > maxRate * 1.05) return { rate: undefined, reason: 'implausible' };
  return { rate, wrapped };
}
