// Fuzzing syslog parsing and TCP framing (fast-check, fixed seed, bounded;
// more runs with KW_FUZZ_RUNS=N). Parsing: parseLogLine over arbitrary text,
// over the real fixture lines mutated (pieces repeated, cut, the characters
// the patterns look for inserted) and over the hostile inputs of
// test/fixtures/hostile/syslog, up to 64 KB: it never throws, keeps the
// message whole in raw, and stays fast. Framing: any sequence of valid frames
// (octet-counted with and without a priority, newline- and NUL-ended, mixed)
// cut into any chunks gives exactly those messages; arbitrary bytes never
// throw and never make the framer hold more than max_message and a count.
import { describe, it, expect } from 'vitest';
import { fc } from '@fast-check/vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseLogLine } from '../../archive/parsers.ts';
import { SyslogFramer } from '../../archive/framer.ts';
import { FLAG_CUT } from '../../archive/record.ts';
import { PROJECT } from '../../sim/area.ts';

const SEED = 1313;
const RUNS = Number(process.env.KW_FUZZ_RUNS ?? 0) || undefined;
const runs = (ci: number) => ({ seed: SEED, numRuns: RUNS ?? ci, endOnFailure: true });
/** A generous bound for one parse on a loaded machine; the strict 5 ms is asserted on the median of repeats below. */
const CALL_MS = 100;
const ctx = { exporter: '127.0.0.1', recvMs: Date.UTC(2026, 10, 24, 3), utcOffsetMinutes: 420 };

const logs = join(PROJECT, 'test', 'fixtures', 'logs');
const fixtureLines = readdirSync(logs)
  .filter((f) => f.endsWith('.log'))
  .flatMap((f) => readFileSync(join(logs, f), 'utf8').split('\n').filter(Boolean));
const hostileDir = join(PROJECT, 'test', 'fixtures', 'hostile', 'syslog');
const hostile = readdirSync(hostileDir)
  .filter((f) => f.endsWith('.txt'))
  .map((f) => readFileSync(join(hostileDir, f), 'utf8'));

/** What the patterns look for: inserted and repeated, they make the worst inputs. */
const TOKENS = ['[', ']', '(', ')', '<', '>', ':', ': ', '->', ', ', '=', '"', '\\', '\n', '\t', ' ', '1.', 'a:', 'in:', ' out:', 'proto ', 'NAT (', 'assigned ', '): ', 'logged in', 'DHCP4_LEASE_ALLOC ', '[hwtype=1 ', '00:11:22:33:44:55', 'lease ', ' for ', 'Login OK: [', '(from client ', ' port ', ' cli ', 'Acct-Status-Type = ', 'client=', 'from ', 'to=<', '%ASA-6-302013: ', 'Built inbound TCP connection 1 for ', '] "GET ', ',match,', 'ค'];

/** A fixture line with pieces of it or of the tokens inserted, repeated up to 64 KB, or cut. */
const mutated = fc
  .tuple(
    fc.constantFrom(...fixtureLines),
    fc.array(fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 })), fc.integer({ min: 1, max: 4000 })), { maxLength: 4 }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([line, edits, cut]) => {
    let s = line;
    for (const [at, piece, times] of edits) {
      const p = at % (s.length + 1);
      s = s.slice(0, p) + piece.repeat(Math.min(times, Math.floor(65_536 / Math.max(1, piece.length)))) + s.slice(p);
      if (s.length > 65_536) s = s.slice(0, 65_536);
    }
    return cut === undefined ? s : s.slice(0, cut % (s.length + 1));
  });

function timedParse(line: string) {
  const t0 = performance.now();
  const r = parseLogLine(line, ctx);
  return { r, ms: performance.now() - t0 };
}

/** The median of 5 parses after a warm-up: what the 5 ms bound is checked on. */
function medianMs(line: string): number {
  parseLogLine(line, ctx);
  const t: number[] = [];
  for (let k = 0; k < 5; k++) t.push(timedParse(line).ms);
  return t.sort((a, b) => a - b)[2]!;
}

describe('parseLogLine under fuzzing', () => {
  it('arbitrary text, up to 64 KB: never throws, raw whole, quick', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 2000 }), fc.tuple(fc.string({ unit: fc.constantFrom(...TOKENS), minLength: 1, maxLength: 12 }), fc.string({ maxLength: 40 })).map(([unit, head]) => (head + unit.repeat(Math.ceil(65_536 / unit.length))).slice(0, 65_536))), (s) => {
        const { r, ms } = timedParse(s);
        expect(r.raw).toBe(s.replace(/[\r\n]+$/, ''));
        expect(ms).toBeLessThan(CALL_MS);
      }),
      runs(300),
    );
  });

  it('mutated fixture lines and the hostile inputs: never throw, raw whole, median under 5 ms', () => {
    let worst = { ms: 0, line: '' };
    fc.assert(
      fc.property(fc.oneof(mutated, fc.tuple(fc.constantFrom(...hostile), fc.nat(), fc.constantFrom(...TOKENS)).map(([h, at, t]) => h.slice(0, at % h.length) + t + h.slice(at % h.length, 65_535 - t.length))), (s) => {
        const { r, ms } = timedParse(s);
        expect(r.raw).toBe(s.replace(/[\r\n]+$/, ''));
        expect(ms).toBeLessThan(CALL_MS);
        if (ms > worst.ms) worst = { ms, line: s };
      }),
      runs(400),
    );
    // The slowest input seen, measured properly.
    expect(medianMs(worst.line), `slowest input (${worst.line.length} characters) ${JSON.stringify(worst.line.slice(0, 80))}`).toBeLessThan(5);
  });
});

/** A frame and the message it carries. */
interface Frame {
  bytes: Buffer;
  msg: string;
}

// Messages a line may carry: no newline or NUL, not ending in CR, not empty; they start with a priority.
const lineText = fc.string({ maxLength: 120 }).map((s) => `<13>${s.replace(/[\n\0]/g, ' ').replace(/\r+$/, '')}`);
// Counted with a priority: anything at all after it.
const countedText = fc.string({ unit: 'binary', maxLength: 200 }).map((s) => `<14>${s}`);
// Counted without a priority: no newline in it (that would make it a line), not starting with "<".
const barePieces = fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }).map((s) => s.replace(/\n/g, ' ').replace(/^</, '('));

const frameArb: fc.Arbitrary<Frame & { bare: boolean }> = fc.oneof(
  lineText.map((m) => ({ bytes: Buffer.from(`${m}\n`), msg: m, bare: false })),
  lineText.map((m) => ({ bytes: Buffer.from(`${m}\r\n`), msg: m, bare: false })),
  lineText.map((m) => ({ bytes: Buffer.from(`${m}\0`), msg: m, bare: false })),
  countedText.map((m) => ({ bytes: Buffer.from(`${Buffer.byteLength(m)} ${m}`), msg: m, bare: false })),
  barePieces.map((m) => ({ bytes: Buffer.from(`${Buffer.byteLength(m)} ${m}`), msg: m, bare: true })),
);

/** Cut points for a buffer: any chunking. */
const cuts = fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 40 });

function chunked(b: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  for (let k = 0; i < b.length; k++) {
    const n = sizes[k % sizes.length]!;
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}

describe('SyslogFramer under fuzzing', () => {
  it('any sequence of valid frames, in any chunks, gives exactly its messages', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 25 }), cuts, (frames, sizes) => {
        const stream = Buffer.concat(frames.map((f) => f.bytes));
        const f = new SyslogFramer(4096);
        const got: string[] = [];
        for (const c of chunked(stream, sizes)) {
          got.push(...f.push(c));
          expect(f.flags.every((x) => x === 0)).toBe(true);
        }
        got.push(...f.end());
        // The text of a message as bytes and back (binary strings are not all valid UTF-8).
        expect(got).toEqual(frames.map((fr) => Buffer.from(fr.msg).toString('utf8')));
        expect(f.truncated + f.discarded + f.malformed).toBe(0);
      }),
      runs(500),
    );
  });

  it('arbitrary bytes in arbitrary chunks: never throws, never holds more than max_message and a count, every cut flagged', () => {
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.constantFrom('1', '9', ' ', '<', '\n', '\r', '\0', 'a', '12 ', '99999 '), { maxLength: 800 }).map((a) => Buffer.from(a.join(''))));
    fc.assert(
      fc.property(bytes, cuts, fc.integer({ min: 1, max: 300 }), (data, sizes, max) => {
        const f = new SyslogFramer(max);
        let out = 0;
        for (const c of chunked(Buffer.from(data), sizes)) {
          const msgs = f.push(c);
          expect(f.flags).toHaveLength(msgs.length);
          for (const [i, m] of msgs.entries()) {
            expect(Buffer.byteLength(m)).toBeLessThanOrEqual(max * 3); // a cut UTF-8 sequence decodes to U+FFFD (3 bytes)
            if (f.flags[i] === FLAG_CUT) out++;
          }
          expect(f.buffered).toBeLessThanOrEqual(max + 10);
        }
        f.end();
        expect(out).toBe(f.truncated);
      }),
      runs(500),
    );
  });
});
