// The ICMP prober against real fping and ping: loopback addresses answer; a
// host in a network namespace of our own answers, then is unplugged.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { FpingProber, SystemPingProber, chooseProber, parseFpingLine, summarize } from '../../../collector/icmp/probe.ts';
import { requireBinary } from '../../helpers/peers.ts';
import { createTestHost, type TestHost } from '../../helpers/netns.ts';

const opts = { count: 3, periodMs: 100, spacingMs: 1, timeoutMs: 300 };
let host: TestHost;
let fping: string;
beforeAll(async () => {
  fping = await requireBinary('fping', 'fping');
  await requireBinary('ping', 'iputils-ping');
  host = createTestHost(41);
});
afterAll(() => host?.remove());

describe('fping output', () => {
  it('parses answered and lost probes', () => {
    expect(parseFpingLine('10.0.0.1 : 0.51 - 0.48')).toEqual({ address: '10.0.0.1', sent: 3, rtts: [0.51, 0.48] });
    expect(parseFpingLine('10.0.0.2 : - - -')).toEqual({ address: '10.0.0.2', sent: 3, rtts: [] });
    expect(parseFpingLine('fping: option requires an argument')).toBeUndefined();
  });
  it('summarises loss, min, mean, max and jitter', () => {
    expect(summarize('h', 4, [1, 3, 2])).toEqual({ address: 'h', sent: 4, received: 3, lossPct: 25, rtts: [1, 3, 2], min: 1, max: 3, avg: 2, jitter: 1.5 });
    expect(summarize('h', 3, [])).toEqual({ address: 'h', sent: 3, received: 0, lossPct: 100, rtts: [] });
  });
});

describe.each([
  ['fping, one process for all hosts', () => new FpingProber(fping)],
  ['system ping through the npm ping package (fallback)', () => new SystemPingProber(8)],
])('%s', (_name, make) => {
  it('reports every host: loopback and a live namespace host answer all probes', async () => {
    const res = await make().probe(['127.0.0.1', '127.41.0.7', host.address, '127.0.0.1'], opts);
    expect([...res.keys()].sort()).toEqual(['10.254.41.2', '127.0.0.1', '127.41.0.7']);
    for (const r of res.values()) {
      expect(r).toMatchObject({ sent: 3, received: 3, lossPct: 0 });
      expect(r.avg!).toBeGreaterThan(0);
      expect(r.jitter!).toBeGreaterThanOrEqual(0);
    }
  });

  it('an unplugged host loses every probe; the others are unaffected', async () => {
    host.unplug();
    try {
      const res = await make().probe(['127.0.0.1', host.address], opts);
      expect(res.get(host.address)).toMatchObject({ sent: 3, received: 0, lossPct: 100 });
      expect(res.get(host.address)!.avg).toBeUndefined();
      expect(res.get('127.0.0.1')).toMatchObject({ received: 3, lossPct: 0 });
    } finally {
      host.plug();
    }
  });
});

describe('choosing the prober', () => {
  it('uses fping when it can be found, and the system ping when it cannot', async () => {
    expect((await chooseProber('fping')).name).toBe('fping');
    expect((await chooseProber(fping)).name).toBe('fping');
    expect((await chooseProber('/nonexistent/fping')).name).toBe('ping');
  });

  it('a missing fping is an error that names it; an fping that answers nothing counts every host as lost', async () => {
    const silent = await new FpingProber('/bin/false').probe(['127.0.0.1'], opts);
    expect(silent.get('127.0.0.1')).toMatchObject({ sent: 3, received: 0, lossPct: 100 });
    await expect(new FpingProber('/nonexistent/fping').probe(['127.0.0.1'], opts)).rejects.toThrow(/fping \/nonexistent\/fping: spawn \/nonexistent\/fping ENOENT/);
  });
});
