// The collector's clock against a real NTP server (chronyd on loopback).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { measureClock, measureOffset } from '../../clock/sntp.ts';
import { startChrony } from '../helpers/chrony.ts';
import { tempDir } from '../helpers/peers.ts';
import { PROJECT } from '../../sim/area.ts';

let chrony: Awaited<ReturnType<typeof startChrony>>;
const dir = tempDir('ntp');
const PORT = 11100 + (process.pid % 800);
beforeAll(async () => {
  chrony = await startChrony(dir.path, PORT);
});
afterAll(async () => {
  await chrony?.stop();
  dir.remove();
});

describe('clock offset (SNTP)', () => {
  it('measures our offset against chronyd on the same clock: within a few milliseconds of zero', async () => {
    const m = await measureClock('127.0.0.1', PORT, 4);
    expect(m.stratum).toBe(10);
    expect(Math.abs(m.offsetMs)).toBeLessThan(5);
    expect(m.roundTripMs).toBeGreaterThanOrEqual(0);
    expect(m.roundTripMs).toBeLessThan(50);
  });

  it('names the server when nothing answers', async () => {
    await expect(measureOffset('127.0.0.1', PORT + 1, 300)).rejects.toThrow('ntp 127.0.0.1:' + (PORT + 1) + ': no answer within 300 ms');
  });

  it('refuses a reply that does not answer our request', async () => {
    // A server that answers with someone else's originate timestamp.
    const liar = createSocket('udp4');
    await new Promise<void>((r) => liar.bind(0, '127.0.0.1', r));
    liar.on('message', (_msg, rinfo) => {
      const reply = Buffer.alloc(48);
      reply[0] = (4 << 3) | 4;
      reply[1] = 2;
      liar.send(reply, rinfo.port, rinfo.address);
    });
    try {
      await expect(measureOffset('127.0.0.1', (liar.address() as { port: number }).port, 1000)).rejects.toThrow(/reply does not answer our request/);
    } finally {
      liar.close();
    }
  });
});

/** libfaketime (Debian package faketime), the library `faketime` preloads. */
function libfaketime(): string {
  for (const lib of ['/usr/lib', '/usr/lib64']) {
    if (!existsSync(lib)) continue;
    for (const d of [lib, ...readdirSync(lib).map((x) => join(lib, x))]) {
      const so = join(d, 'faketime', 'libfaketime.so.1');
      if (existsSync(so)) return so;
    }
  }
  throw new Error('libfaketime.so.1 not found: it comes with the Debian package faketime; run `bash scripts/test.sh` (it installs it) or `apt-get install faketime`');
}

describe('clock offset after a step of the system clock', () => {
  it('measures against Date.now(), the clock that stamps records: a child whose clock is stepped +2 h, then -45 s, reports those offsets', async () => {
    // The child runs under libfaketime reading its shift from a file at every
    // call, so the shift can change while it runs, as a real clock step does;
    // the monotonic clock is left alone, as a real step leaves it.
    const spec = join(dir.path, 'faketime');
    writeFileSync(spec, '+0\n');
    const script = [
      `import { measureClock } from ${JSON.stringify(join(PROJECT, 'clock', 'sntp.ts'))};`,
      `import { createInterface } from 'node:readline';`,
      `for await (const _ of createInterface({ input: process.stdin })) {`,
      `  const m = await measureClock('127.0.0.1', ${PORT}, 4);`,
      `  console.log(JSON.stringify({ offsetMs: m.offsetMs, dateNow: Date.now() }));`,
      `}`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, LD_PRELOAD: libfaketime(), FAKETIME_TIMESTAMP_FILE: spec, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const measure = async () => {
      child.stdin!.write('go\n');
      const next = await lines.next();
      if (next.done) throw new Error('the measuring child ended without an answer');
      return JSON.parse(next.value) as { offsetMs: number; dateNow: number };
    };
    try {
      const before = await measure();
      expect(Math.abs(before.offsetMs)).toBeLessThan(1000);
      writeFileSync(spec, '+2h\n');
      const ahead = await measure();
      // The step reached the child's Date.now() (else this test proves nothing) ...
      expect(ahead.dateNow - Date.now()).toBeGreaterThan(7_200_000 - 5_000);
      // ... and the offset describes it.
      expect(Math.abs(ahead.offsetMs - 7_200_000)).toBeLessThan(1000);
      writeFileSync(spec, '-45s\n');
      const behind = await measure();
      expect(Math.abs(behind.offsetMs + 45_000)).toBeLessThan(1000);
    } finally {
      child.stdin!.end();
      child.kill();
    }
  }, 30_000);
});
