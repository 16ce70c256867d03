// The ICMP prober against real fping and ping: loopback addresses answer; a
// host in a network namespace of our own answers, then is unplugged.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FpingProber, SystemPingProber, chooseProber, parseFpingLine, parsePingLine, probeDeadlineMs, summarize } from '../../../collector/icmp/probe.ts';
import { requireBinary, tempDir } from '../../helpers/peers.ts';
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
  it('parses the system ping\'s replies and summary', () => {
    expect(parsePingLine('64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms')).toEqual({ rtt: 0.045 });
    expect(parsePingLine('3 packets transmitted, 2 received, 33.3333% packet loss, time 404ms')).toEqual({ sent: 3, received: 2 });
    expect(parsePingLine('ping: connect: Network is unreachable')).toBeUndefined();
  });
  it('summarises loss, min, mean, max and jitter', () => {
    expect(summarize('h', 4, [1, 3, 2])).toEqual({ address: 'h', sent: 4, received: 3, lossPct: 25, rtts: [1, 3, 2], min: 1, max: 3, avg: 2, jitter: 1.5 });
    expect(summarize('h', 3, [])).toEqual({ address: 'h', sent: 3, received: 0, lossPct: 100, rtts: [] });
  });
});

describe.each([
  ['fping, one process for all hosts', () => new FpingProber(fping)],
  ['system ping, one process per host (fallback)', () => new SystemPingProber(8)],
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

  it('a missing fping is an error that names it', async () => {
    await expect(new FpingProber('/nonexistent/fping').probe(['127.0.0.1'], opts)).rejects.toThrow(/fping \/nonexistent\/fping: spawn \/nonexistent\/fping ENOENT/);
  });
});

// Broken probe programs: real executable shell scripts in place of fping and
// ping. None of them may make a host "lost": the round, or the host, is unknown.
describe('a broken or hung probe program makes the round unknown, never 100 % lost', () => {
  const bin = tempDir('broken-fping');
  afterAll(() => bin.remove());
  /** Signal 0 tests whether a process exists. */
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const script = (name: string, body: string) => {
    const path = join(bin.path, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return path;
  };

  it('/bin/false (exit 1, no output): unknown, not lost', async () => {
    await expect(new FpingProber('/bin/false').probe(['127.0.0.1'], opts)).rejects.toThrow('fping /bin/false: exit code 1 but no result for any of the 1 hosts; output: (none)');
  });

  it('killed by a signal with nothing printed: unknown, naming the path and the signal', async () => {
    const path = script('fping-killed', 'kill -9 $$');
    await expect(new FpingProber(path).probe(['127.0.0.1', '127.0.0.2'], opts)).rejects.toThrow(`fping ${path}: killed by signal SIGKILL; output: (none)`);
  });

  it('an error exit (3: bad arguments) carries its stderr, on one line', async () => {
    const path = script('fping-exit3', 'echo "fping: invalid option -- \'Z\'" >&2\nprintf "usage:\\tfping [options]\\n" >&2\nexit 3');
    const err = await new FpingProber(path).probe(['127.0.0.1'], opts).then(() => undefined, (e: Error) => e);
    expect(err?.message).toBe(`fping ${path}: exit code 3; output: fping: invalid option -- 'Z' | usage: fping [options]`);
    expect(err?.message).not.toContain('\n');
  });

  it('a host fping did not report is unknown (absent), a reported one keeps its figures; unasked hosts and garbage are ignored', async () => {
    const path = script('fping-partial', ['cat > /dev/null', 'echo "127.0.0.1 : 0.10 0.20 0.30" >&2', 'echo "10.9.9.9 : 0.1 0.1 0.1" >&2', 'head -c 100000 /dev/zero | tr "\\0" x >&2', 'echo >&2', 'exit 1'].join('\n'));
    const res = await new FpingProber(path).probe(['127.0.0.1', '127.0.0.2'], opts);
    expect([...res.keys()]).toEqual(['127.0.0.1']);
    expect(res.get('127.0.0.1')).toMatchObject({ sent: 3, received: 3, lossPct: 0 });
  });

  it('a hung fping is killed at its deadline; the round is unknown', async () => {
    const path = script('fping-hung', 'exec sleep 3600');
    const t0 = performance.now();
    await expect(new FpingProber(path).probe(['127.0.0.1'], { ...opts, deadlineMs: 800 })).rejects.toThrow(`fping ${path}: killed (SIGKILL) at its deadline of 800 ms; output: (none)`);
    // Killed, not waited for: generous for a loaded machine, far below the hour it would sleep.
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('a hung fping whose own child holds its output open: the whole group is killed at the deadline', async () => {
    const pidFile = join(bin.path, 'child.pid');
    const path = script('fping-hung-child', `sleep 3600 &\necho $! > ${pidFile}\nwait`);
    try {
      await expect(new FpingProber(path).probe(['127.0.0.1'], { ...opts, deadlineMs: 800 })).rejects.toThrow(`fping ${path}: killed (SIGKILL) at its deadline of 800 ms`);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      // The sleep it started is gone too (killed, then reaped by init).
      await expect.poll(() => alive(pid), { timeout: 5000 }).toBe(false);
    } finally {
      if (existsSync(pidFile) && alive(Number(readFileSync(pidFile, 'utf8')))) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    }
  });

  it('the default deadline follows count, period, timeout and hosts', () => {
    expect(probeDeadlineMs(1, { count: 3, periodMs: 100, spacingMs: 1, timeoutMs: 300 })).toBe(Math.ceil((3 * 100 + 300) * 1.5) + 5000);
    // 1,000 hosts 10 ms apart: each of the 3 passes takes 10 s, not the period.
    expect(probeDeadlineMs(1000, { count: 3, periodMs: 1000, spacingMs: 10, timeoutMs: 500 })).toBe(Math.ceil((3 * 10_000 + 500) * 1.5) + 5000);
  });

  it('the system-ping fallback: a killed ping or a hung one leaves its host unknown; all unknown rejects', async () => {
    const killed = script('ping-killed', 'kill -9 $$');
    await expect(new SystemPingProber(4, killed).probe(['127.0.0.1'], opts)).rejects.toThrow(`ping ${killed} 127.0.0.1: killed by signal SIGKILL; output: (none)`);
    const hung = script('ping-hung', 'exec sleep 3600');
    await expect(new SystemPingProber(4, hung).probe(['127.0.0.1'], { ...opts, deadlineMs: 800 })).rejects.toThrow(`ping ${hung} 127.0.0.1: killed (SIGKILL) at its deadline of 800 ms`);
    // A ping that works for one host and dies for the other: one known, one unknown.
    const real = await requireBinary('ping', 'iputils-ping');
    const partial = script('ping-partial', `case "$*" in *127.0.0.2*) kill -9 $$ ;; esac\nexec ${real} "$@"`);
    const res = await new SystemPingProber(4, partial).probe(['127.0.0.1', '127.0.0.2'], opts);
    expect([...res.keys()]).toEqual(['127.0.0.1']);
    expect(res.get('127.0.0.1')).toMatchObject({ sent: 3, received: 3, lossPct: 0 });
  });
});
