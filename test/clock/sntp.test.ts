// The collector's clock against a real NTP server (chronyd on loopback).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket } from 'node:dgram';
import { measureClock, measureOffset } from '../../clock/sntp.ts';
import { startChrony } from '../helpers/chrony.ts';
import { tempDir } from '../helpers/peers.ts';

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
