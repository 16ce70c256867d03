// The metrics route's one-second answer cache (api/routes/views/devices.ts): one query in flight per text,
// kept a second, failures never kept, bounded.
import { describe, it, expect } from 'vitest';
import { RecentQueries } from '../../api/routes/views/devices.ts';

describe('RecentQueries', () => {
  it('asks once for the same text within a second, again after it; a failure is not kept', async () => {
    const r = new RecentQueries<number>(1_000, 3);
    let asked = 0;
    const ask = () => Promise.resolve(++asked);
    const same = await Promise.all([r.get('q', 10_000, ask), r.get('q', 10_500, ask), r.get('q', 10_999, ask)]);
    expect(same).toEqual([1, 1, 1]);
    expect(await r.get('q', 11_000, ask)).toBe(2);
    expect(await r.get('other', 11_000, ask)).toBe(3);
    const failing = r.get('bad', 12_000, () => Promise.reject(new Error('influxdb down')));
    await expect(failing).rejects.toThrow('influxdb down');
    expect(await r.get('bad', 12_001, ask)).toBe(4);
    // A clock that went back does not serve an answer from "the future".
    expect(await r.get('q', 9_000, ask)).toBe(5);
  });

  it('keeps at most max texts', async () => {
    const r = new RecentQueries<string>(1_000, 3);
    for (let i = 0; i < 50; i++) await r.get(`q${i}`, 5_000, async () => `a${i}`);
    expect((r as unknown as { kept: Map<string, unknown> }).kept.size).toBeLessThanOrEqual(3);
  });
});
