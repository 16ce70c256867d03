// The spool's files against crashes and a garbling disk: real files in a temp
// folder, cut, extended with junk and bit-flipped the way a crash or a bad
// disk leaves them. Seeded fast-check; KW_FUZZ_RUNS=N runs N cases, without
// the time limit.
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { readdirSync, statSync, truncateSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Spool, batchLines } from '../../../collector/influx/spool.ts';
import { tempDir } from '../../helpers/peers.ts';

const SEED = 1404;
const FUZZ_RUNS = Number(process.env.KW_FUZZ_RUNS ?? '') || undefined;
const params = (numRuns: number): fc.Parameters<unknown> => (FUZZ_RUNS ? { seed: SEED, numRuns: FUZZ_RUNS } : { seed: SEED, numRuns, interruptAfterTimeLimit: 4000 });
const LIMIT = FUZZ_RUNS ? FUZZ_RUNS * 3000 : 60_000;

const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => {
  for (const d of dirs) d.remove();
});
function dir(): string {
  const d = tempDir('spool-unit');
  dirs.push(d);
  return d.path;
}
const segments = (path: string) => readdirSync(path).filter((n) => n.endsWith('.seg')).sort();

/** Everything the spool holds, oldest first, acknowledging as it reads; closes it. */
async function drain(spool: Spool): Promise<string[][]> {
  const out: string[][] = [];
  for (let b = await spool.peek(); b; b = await spool.peek()) {
    out.push(batchLines(b));
    await spool.ack(b.seq);
  }
  await spool.close();
  return out;
}

const line = (i: number) => `icmp,device=d${i},school=ร.ร.บ้าน\\ ${i} rtt_avg_ms=${i},error="two\nlines, \\"quoted\\"" ${1_700_000_000_000 + i}`;

describe('disk spool files', () => {
  it('replays what was not acknowledged, in order, lines with newlines inside intact; acknowledged batches do not come back', async () => {
    const path = dir();
    const a = new Spool(path, 1 << 20, { segmentBytes: 300 });
    await a.open();
    const batches = Array.from({ length: 6 }, (_, b) => Array.from({ length: 3 }, (_, i) => line(b * 10 + i)));
    expect(await a.append(batches.slice(0, 4))).toBe(0);
    expect(await a.append(batches.slice(4))).toBe(0);
    const first = await a.peek();
    expect(batchLines(first!)).toEqual(batches[0]);
    expect(first!.text.toString()).toBe(batches[0]!.join('\n'));
    await a.ack(first!.seq);
    const second = await a.peek();
    await a.ack(second!.seq);
    await a.close();
    // 300-byte segments: one or two batches each; the first one's batches are done and it is gone.
    expect(segments(path).length).toBeGreaterThan(1);
    const b = new Spool(path, 1 << 20, { segmentBytes: 300 });
    const report = await b.open();
    expect(report).toMatchObject({ batches: 4, lines: 12, cut: [] });
    expect(await drain(b)).toEqual(batches.slice(2));
  });

  it('a torn tail (an append cut by a crash) is cut off and counted; the batches before it and later appends survive', async () => {
    const path = dir();
    const a = new Spool(path, 1 << 20);
    await a.open();
    await a.append([[line(1)], [line(2)]]);
    await a.close();
    const [seg] = segments(path);
    const file = join(path, seg!);
    const whole = statSync(file).size;
    truncateSync(file, whole - 5);
    const b = new Spool(path, 1 << 20);
    const report = await b.open();
    expect(report.cut).toHaveLength(1);
    expect(report.cut[0]).toMatchObject({ file, bytes: whole - 5 - report.cut[0]!.offset, reason: expect.stringMatching(/frame of \d+ bytes with \d+ left/) });
    expect(b.stats.tornBytes).toBe(report.cut[0]!.bytes);
    await b.append([[line(3)]]);
    await b.close();
    expect(statSync(file).size).toBeGreaterThan(0);
    expect(await drain(new Spool(path, 1 << 20))).toEqual([[line(1)], [line(3)]]);
  });

  it('a full spool drops its oldest segments and counts them, and stays under max_bytes on disk', async () => {
    const path = dir();
    const lines = Array.from({ length: 20 }, (_, i) => line(i));
    const max = 20_000;
    const s = new Spool(path, max);
    await s.open();
    let dropped = 0;
    for (let i = 0; i < 40; i++) {
      dropped += await s.append([lines]);
      const disk = segments(path).reduce((n, f) => n + statSync(join(path, f)).size, 0);
      expect(disk).toBeLessThanOrEqual(max);
      expect(s.stats.diskBytes).toBe(disk);
    }
    expect(dropped).toBeGreaterThan(0);
    expect(dropped % 20).toBe(0);
    expect(s.stats.droppedLines).toBe(dropped);
    expect(s.lines + dropped).toBe(40 * 20);
    // A batch larger than the whole spool is refused and counted, and nothing else is lost for it.
    const before = s.lines;
    expect(await s.append([Array.from({ length: 400 }, (_, i) => line(i))])).toBe(400);
    expect(s.lines).toBe(before);
    await s.close();
  });

  it('takes over the older one-file-per-batch spool', async () => {
    const path = dir();
    writeFileSync(join(path, '0000000000000001-2.lp'), 'icmp,device=a rtt_avg_ms=1 1700000000000\nicmp,device=a rtt_avg_ms=2 1700000000001\n');
    writeFileSync(join(path, '0000000000000002-1.lp'), 'icmp,device=b rtt_avg_ms=1 1700000000000\n');
    writeFileSync(join(path, '0000000000000003-1.lp.tmp'), 'half');
    const s = new Spool(path, 1 << 20);
    const report = await s.open();
    expect(report.migrated).toBe(2);
    expect(readdirSync(path).filter((n) => !n.endsWith('.seg'))).toEqual([]);
    const got = await drain(s);
    expect(got).toEqual([['icmp,device=a rtt_avg_ms=1 1700000000000', 'icmp,device=a rtt_avg_ms=2 1700000000001'], ['icmp,device=b rtt_avg_ms=1 1700000000000']]);
  });

  it(
    'any cut, junk or flipped byte in the files: opening never throws, never returns a batch that was not appended, keeps order, counts what it cut',
    async () => {
      const lineArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).filter((l) => l.length > 0);
      const batchArb = fc.array(lineArb, { minLength: 1, maxLength: 4 });
      const damageArb = fc.oneof(
        fc.record({ kind: fc.constant('none' as const) }),
        fc.record({ kind: fc.constant('cut' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
        fc.record({ kind: fc.constant('junk' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
        fc.record({ kind: fc.constant('flip' as const), file: fc.nat(), at: fc.double({ min: 0, max: 1, noNaN: true }), bit: fc.integer({ min: 0, max: 7 }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(batchArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }), fc.nat({ max: 8 }), damageArb, async (appends, acks, damage) => {
          const path = dir();
          const a = new Spool(path, 1 << 20, { segmentBytes: 512 });
          await a.open();
          const model: string[][] = [];
          for (const group of appends) {
            await a.append(group);
            model.push(...group);
          }
          for (let i = 0; i < acks; i++) {
            const b = await a.peek();
            if (!b) break;
            expect(batchLines(b)).toEqual(model[0]);
            await a.ack(b.seq);
            model.shift();
          }
          await a.close();
          const files = segments(path);
          let damaged = false;
          if (damage.kind === 'cut') {
            const f = join(path, files.at(-1)!);
            const size = statSync(f).size;
            truncateSync(f, Math.floor(size * damage.at));
            damaged = true;
          } else if (damage.kind === 'junk') {
            appendFileSync(join(path, files.at(-1)!), damage.bytes);
          } else if (damage.kind === 'flip') {
            const f = join(path, files[damage.file % files.length]!);
            const bytes = readFileSync(f);
            if (bytes.length > 0) {
              const at = Math.min(bytes.length - 1, Math.floor(bytes.length * damage.at));
              bytes[at]! ^= 1 << damage.bit;
              writeFileSync(f, bytes);
              damaged = true;
            }
          }
          const b = new Spool(path, 1 << 20, { segmentBytes: 512 });
          const report = await b.open();
          expect(b.stats.tornBytes).toBe(report.cut.reduce((n, c) => n + c.bytes, 0));
          const got = await drain(b);
          if (!damaged) {
            expect(got).toEqual(model);
            if (damage.kind === 'junk') expect(report.cut.reduce((n, c) => n + c.bytes, 0)).toBe(damage.bytes.length);
            else expect(report.cut).toEqual([]);
          } else {
            // What comes back is the model with some batches missing (a flipped acknowledgement may also bring done ones back: sent twice, harmless).
            let at = 0;
            for (const g of got) {
              const i = model.findIndex((m, k) => k >= at && JSON.stringify(m) === JSON.stringify(g));
              if (i < 0) expect(appends.flat()).toContainEqual(g);
              else at = i + 1;
            }
            // Every byte of a frame is checked (magic, length, type, CRC over the rest): a flipped bit anywhere is found and cut.
            if (damage.kind === 'flip') expect(report.cut.length).toBeGreaterThan(0);
          }
        }),
        params(150),
      );
    },
    LIMIT,
  );
});
