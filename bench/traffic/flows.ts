// The benchmark's flows (targets.md): 200 schools × 60 hosts talking to
// 50,000 destinations, uniform ephemeral ports, bytes and packets from
// AES-256-CTR keystream (a cryptographic generator: a weak one makes flows
// compress unrealistically well), seeded. The same seed gives the same
// flows in the same order, whatever the clock: flowgen.ts sends them to a
// collector, query-scale.ts writes them into an archive.
import { createCipheriv, createHash } from 'node:crypto';

export const SCHOOLS = 200;
export const HOSTS = 60;
/** Flows per NetFlow v5 datagram. */
export const PER = 30;

export interface FlowSource {
  /** The next datagram of school `s` (0-based), stamped `now`. Call for schools in turn: 0, 1, ..., 199, 0, ... */
  datagram(s: number, now: number): Buffer;
}

export function flowSource(seed: string): FlowSource {
  const key = createHash('sha256').update(`klaiwatch-flowgen-${seed}`).digest();
  const stream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const BLOCK = 4 * 1024 * 1024;
  let rnd = stream.update(Buffer.alloc(BLOCK));
  let ri = 0;
  const r32 = () => {
    if (ri + 4 > rnd.length) {
      rnd = stream.update(Buffer.alloc(BLOCK));
      ri = 0;
    }
    const v = rnd.readUInt32LE(ri);
    ri += 4;
    return v;
  };
  const destinations = Array.from({ length: 50_000 }, () => (((1 + (r32() % 223)) << 24) >>> 0) + (r32() & 0xffffff));
  const seq = new Array<number>(SCHOOLS).fill(0);
  const boot = Date.now() - 3_600_000;
  return {
    datagram(s: number, now: number): Buffer {
      const b = Buffer.alloc(24 + PER * 48);
      const uptime = now - boot;
      b.writeUInt16BE(5, 0);
      b.writeUInt16BE(PER, 2);
      b.writeUInt32BE(uptime >>> 0, 4);
      b.writeUInt32BE(Math.floor(now / 1000), 8);
      b.writeUInt32BE((now % 1000) * 1e6, 12);
      b.writeUInt32BE(seq[s]!, 16);
      seq[s]! += PER;
      for (let i = 0; i < PER; i++) {
        const o = 24 + i * 48;
        const h = 1 + (r32() % HOSTS);
        b.writeUInt32BE(((10 << 24) | (36 << 16) | (s << 8) | h) >>> 0, o);
        b.writeUInt32BE(destinations[r32() % destinations.length]!, o + 4);
        const packets = 1 + (r32() % 200);
        b.writeUInt32BE(packets, o + 16);
        b.writeUInt32BE(packets * (40 + (r32() % 1460)), o + 20);
        const dur = r32() % 120_000;
        b.writeUInt32BE((uptime - dur - (r32() % 5000)) >>> 0, o + 24);
        b.writeUInt32BE((uptime - (r32() % 5000)) >>> 0, o + 28);
        b.writeUInt16BE(32768 + (r32() % 28232), o + 32);
        const p = r32() % 10;
        b.writeUInt16BE(p < 5 ? 443 : p < 7 ? 80 : p < 8 ? 53 : 1024 + (r32() % 64511), o + 34);
        b[o + 37] = 0x18;
        b[o + 38] = p === 7 ? 17 : 6;
      }
      return b;
    },
  };
}
