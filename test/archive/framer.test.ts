// The TCP syslog framer (archive/framer.ts): RFC 6587 octet counting with
// and without a priority, newline and NUL framing, decided per message; a
// message longer than max_message is one record, cut and flagged, never
// several; a slow sender costs linear time; what it holds between chunks
// stays under max_message + a count's header. Then real senders over
// loopback TCP: util-linux logger with octet counting, and a socket that
// trickles a 1 MB line. The receive loop's byte path (frames(): ranges of
// the chunk, no text made) gives exactly the bytes sent, invalid UTF-8 too.
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { createServer, connect, type Server } from 'node:net';
import { execFile } from 'node:child_process';
import { SyslogFramer } from '../../archive/framer.ts';
import { FLAG_CUT } from '../../archive/record.ts';
import { requireBinary } from '../helpers/peers.ts';

/** Everything the framer makes of `chunks`, end() included, with flags and counters. */
function frame(max: number, chunks: (string | Buffer)[]) {
  const f = new SyslogFramer(max);
  const msgs: string[] = [];
  const flags: number[] = [];
  let most = 0;
  for (const c of chunks) {
    msgs.push(...f.push(typeof c === 'string' ? Buffer.from(c) : c));
    flags.push(...f.flags);
    most = Math.max(most, f.buffered);
  }
  msgs.push(...f.end());
  flags.push(...f.flags);
  return { msgs, flags, truncated: f.truncated, discarded: f.discarded, malformed: f.malformed, most };
}

/** `s` cut into pieces of `n` bytes. */
const pieces = (s: string | Buffer, n: number) => {
  const b = Buffer.from(s);
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
};

describe('framing rules', () => {
  it('octet counts with and without a priority, newlines and NULs, mixed in one stream', () => {
    const m5424 = '<13>1 2026-11-24T10:00:00+07:00 h app - - - ข้อความ\nสองบรรทัด';
    const stream = `${Buffer.byteLength(m5424)} ${m5424}11 no priority8 <14>next<15>a line\r\n\n<16>nul ended\0` + '2026 is a year, not a count\n9 abc\tdefgh14 back to count!';
    const want = [m5424, 'no priority', '<14>next', '<15>a line', '<16>nul ended', '2026 is a year, not a count', 'abc\tdefgh', 'back to count!'];
    expect(frame(1000, [stream]).msgs).toEqual(want);
    // Any chunking gives the same messages.
    for (const n of [1, 2, 3, 7, 64]) expect(frame(1000, pieces(stream, n)).msgs, `${n}-byte chunks`).toEqual(want);
  });

  it('a count without a priority is a line when a newline falls inside it or no frame follows it', () => {
    expect(frame(1000, ['5 apples and pears\n']).msgs).toEqual(['5 apples and pears']);
    expect(frame(1000, ['3 one two\n9 a\nb c d e\n']).msgs).toEqual(['3 one two', '9 a', 'b c d e']);
    // A count that happens to end where the line does is taken as a count (a newline may follow a counted frame).
    expect(frame(1000, ['3 one\n']).msgs).toEqual(['one']);
    // Larger than max_message: no count can be that long, so a line.
    expect(frame(10, ['20 a b\n']).msgs).toEqual(['20 a b']);
    // Ten digits are not a count.
    expect(frame(1000, ['1234567890 <13>x\n']).msgs).toEqual(['1234567890 <13>x']);
  });

  it('a line over max_message is one record of its first max_message bytes, flagged; the rest up to its newline is dropped and counted', () => {
    const long = `<13>${'x'.repeat(1_000_000)}`;
    for (const n of [1000, 65_536, 2_000_000]) {
      const r = frame(1000, pieces(`${long}\n<14>after\n`, n));
      expect(r.msgs, `${n}-byte chunks`).toEqual([long.slice(0, 1000), '<14>after']);
      expect(r.flags).toEqual([FLAG_CUT, 0]);
      expect(r.truncated).toBe(1);
      expect(r.discarded).toBe(long.length - 1000);
      expect(r.most).toBeLessThanOrEqual(1000 + 10);
    }
    // Exactly max_message (a CR before the newline not counted) is not cut.
    expect(frame(5, ['abcde\r\nabcdef\n'])).toMatchObject({ msgs: ['abcde', 'abcde'], flags: [0, FLAG_CUT], discarded: 1 });
  });

  it('a counted message over max_message is cut and the rest of its count skipped: the next frame is read as one', () => {
    const big = `<13>${'y'.repeat(5000)}`;
    const r = frame(100, pieces(`${big.length} ${big}5 <14>z`, 333));
    expect(r.msgs).toEqual([big.slice(0, 100), '<14>z']);
    expect(r.flags).toEqual([FLAG_CUT, 0]);
    expect(r.discarded).toBe(big.length - 100);
    expect(r.most).toBeLessThanOrEqual(110);
  });

  it('the connection closing inside a count: what came is kept and the frame counted malformed; a last line without newline is a message', () => {
    expect(frame(100, ['20 <13>only part'])).toMatchObject({ msgs: ['<13>only part'], malformed: 1 });
    expect(frame(100, ['<13>no newline at the end\r'])).toMatchObject({ msgs: ['<13>no newline at the end'], malformed: 0 });
    expect(frame(100, ['\n\r\n\0']).msgs).toEqual([]);
  });

  it('a slow sender costs linear time: a 1 MB message in 100-byte chunks costs about what it costs in 64 KB chunks', () => {
    const time = (size: number) => {
      const chunks = pieces(`<13>${'z'.repeat(1_000_000)}\n`, size);
      const t: number[] = [];
      for (let k = 0; k < 3; k++) {
        const f = new SyslogFramer(2_000_000);
        const t0 = performance.now();
        let got = 0;
        for (const c of chunks) got += f.push(c).length;
        t.push(performance.now() - t0);
        expect(got).toBe(1);
      }
      return t.sort((a, b) => a - b)[1]!;
    };
    time(100);
    const whole = time(65_536);
    const trickled = time(100);
    // Joining the chunks at each push (the framer before) took 1.7 s here for the trickle; this takes about 20 ms.
    expect(trickled, `${trickled.toFixed(1)} ms in 100-byte chunks, ${whole.toFixed(1)} ms in 64 KB ones`).toBeLessThan(150 + 10 * whole);
  });
});

describe('the byte path the receive loop uses (frames, finish)', () => {
  /** Each message's bytes (copied), flags, and whether it was handed as a range of the very chunk pushed. */
  function bytesOf(max: number, chunks: Buffer[]) {
    const f = new SyslogFramer(max);
    const got: { bytes: Buffer; flags: number; inChunk: boolean }[] = [];
    for (const c of chunks) f.frames(c, (buf, start, end, flags) => got.push({ bytes: Buffer.from(buf.subarray(start, end)), flags, inChunk: buf === c }));
    f.finish((buf, start, end, flags) => got.push({ bytes: Buffer.from(buf.subarray(start, end)), flags, inChunk: false }));
    return { got, f };
  }

  it('a message inside one chunk is a range of that chunk (no copy); one across chunks is one joined copy; a cut one is flagged', () => {
    const a = Buffer.from('<13>first\n<14>ส่วนที่สอง\r\n11 <15>counted<16>sp');
    const b = Buffer.from('lit\n<17>');
    const c = Buffer.from(`${'x'.repeat(80)}\n`);
    const { got, f } = bytesOf(64, [a, b, c]);
    expect(got.map((g) => g.bytes.toString())).toEqual(['<13>first', '<14>ส่วนที่สอง', '<15>counted', '<16>split', `<17>${'x'.repeat(60)}`]);
    expect(got.map((g) => g.inChunk)).toEqual([true, true, true, false, false]);
    expect(got.map((g) => g.flags)).toEqual([0, 0, 0, 0, FLAG_CUT]);
    expect([f.truncated, f.discarded]).toEqual([1, 84 - 64]);
  });

  it('any frames of arbitrary bytes, in any chunks: exactly the bytes sent (no UTF-8 round trip), in order, nothing flagged', () => {
    // Lines: any bytes but newline and NUL, not ending in CR, starting with "<"; counted: "<" and any bytes.
    const line = fc.uint8Array({ maxLength: 150 }).map((u) => Buffer.concat([Buffer.from('<13>'), Buffer.from(u.map((x) => (x === 0x0a || x === 0 ? 0x20 : x)))])).map((m) => (m[m.length - 1] === 0x0d ? Buffer.concat([m, Buffer.from('.')]) : m));
    const counted = fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.concat([Buffer.from('<14>'), Buffer.from(u)]));
    const frameArb = fc.oneof(
      line.map((m) => ({ wire: Buffer.concat([m, Buffer.from('\n')]), m })),
      line.map((m) => ({ wire: Buffer.concat([m, Buffer.from('\r\n')]), m })),
      counted.map((m) => ({ wire: Buffer.concat([Buffer.from(`${m.length} `), m]), m })),
    );
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 20 }), (frames, sizes) => {
        const wire = Buffer.concat(frames.map((x) => x.wire));
        const chunks: Buffer[] = [];
        for (let i = 0, k = 0; i < wire.length; k++) {
          const n = sizes[k % sizes.length]!;
          chunks.push(wire.subarray(i, i + n));
          i += n;
        }
        const { got, f } = bytesOf(4096, chunks);
        expect(got.length).toBe(frames.length);
        for (const [i, x] of frames.entries()) expect(got[i]!.bytes.equals(x.m), `message ${i}`).toBe(true);
        expect(got.every((g) => g.flags === 0)).toBe(true);
        expect(f.truncated + f.discarded + f.malformed).toBe(0);
      }),
      { seed: 9191, numRuns: Number(process.env.KW_FUZZ_RUNS ?? 300) },
    );
  });
});

describe('real senders over loopback TCP', () => {
  let server: Server;
  const received: { msgs: string[]; flags: number[]; most: number }[] = [];
  const closed: (() => void)[] = [];
  const listening = new Promise<number>((res) => {
    server = createServer((sock) => {
      const f = new SyslogFramer(65_536);
      const got = { msgs: [] as string[], flags: [] as number[], most: 0 };
      received.push(got);
      sock.on('data', (c: Buffer) => {
        got.msgs.push(...f.push(c));
        got.flags.push(...f.flags);
        got.most = Math.max(got.most, f.buffered);
      });
      sock.on('end', () => {
        got.msgs.push(...f.end());
        got.flags.push(...f.flags);
        sock.end();
        closed.shift()?.();
      });
    });
    server.listen(0, '127.0.0.1', () => res((server.address() as { port: number }).port));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const nextClose = () => new Promise<void>((r) => closed.push(r));

  it('logger --tcp --octet-count: every message whole, newlines inside them kept', async () => {
    const logger = await requireBinary('logger', 'bsdutils');
    const port = await listening;
    const done = nextClose();
    const lines = ['first message', 'ข้อความภาษาไทย', 'x'.repeat(3000)];
    // One connection: the messages from standard input, one a line.
    const child = execFile(logger, ['--server', '127.0.0.1', '--port', String(port), '--tcp', '--octet-count', '--rfc5424', '--size', '8192', '-t', 'kw']);
    child.stdin!.end(lines.join('\n') + '\n');
    await new Promise((r) => child.once('exit', r));
    await done;
    const msgs = received.flatMap((r) => r.msgs);
    for (const l of lines) expect(msgs.some((m) => m.startsWith('<') && m.endsWith(` ${l}`)), l.slice(0, 20)).toBe(true);
  });

  it('a 1 MB line trickled in small writes is one cut record; the lines after it arrive intact; the framer holds at most max_message', async () => {
    const port = await listening;
    const before = received.length;
    const done = nextClose();
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const long = `<13>Nov 24 10:00:00 h app: ${'w'.repeat(1_000_000)}\n`;
    for (const c of pieces(long, 1400)) if (!sock.write(c)) await new Promise((r) => sock.once('drain', r));
    sock.end('5 <14>a<15>after the long one\n');
    await done;
    const got = received[before]!;
    expect(got.msgs).toEqual([long.slice(0, 65_536), '<14>a', '<15>after the long one']);
    expect(got.flags).toEqual([FLAG_CUT, 0, 0]);
    expect(got.most).toBeLessThanOrEqual(65_536 + 10);
  });
});
