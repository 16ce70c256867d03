// The metrics route's one-second answer cache (api/routes/views/devices.ts): one query in flight per text,
// kept a second, failures never kept, bounded.
import { describe, it, expect } from 'vitest';
import { RecentQueries } from '../../api/routes/views/devices.ts';

describe('RecentQueries', () => {
  it('asks once for the same text within a second; the next second gives the old answer while the new is asked; a failure is not kept', async () => {
    const r = new RecentQueries<number>(1_000, 3);
    let asked = 0;
    const ask = () => Promise.resolve(++asked);
    const same = await Promise.all([r.get('q', 10_000, ask), r.get('q', 10_500, ask), r.get('q', 10_999, ask)]);
    expect(same).toEqual([1, 1, 1]);
    // Past its second: the old answer once more while the next is asked (once), then the new one.
    const stale = [r.get('q', 11_000, ask), r.get('q', 11_050, ask)];
    expect(await Promise.all(stale)).toEqual([1, 1]);
    expect(asked).toBe(2);
    expect(await r.get('q', 11_200, ask)).toBe(2);
    // Older than two seconds: waited for.
    expect(await r.get('q', 14_000, ask)).toBe(3);
    expect(await r.get('other', 14_000, ask)).toBe(4);
    const failing = r.get('bad', 15_000, () => Promise.reject(new Error('influxdb down')));
    await expect(failing).rejects.toThrow('influxdb down');
    expect(await r.get('bad', 15_001, ask)).toBe(5);
    // A clock that went back does not serve an answer from "the future".
    expect(await r.get('q', 9_000, ask)).toBe(6);
  });

  it('keeps at most max texts', async () => {
    const r = new RecentQueries<string>(1_000, 3);
    for (let i = 0; i < 50; i++) await r.get(`q${i}`, 5_000, async () => `a${i}`);
    expect((r as unknown as { kept: Map<string, unknown> }).kept.size).toBeLessThanOrEqual(3);
  });
});
