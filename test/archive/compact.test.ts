// Compaction and the address filter: a finished day's hourly segments are
// merged into one (a query over months opens tens of files, not thousands),
// nothing altered is laundered into a new hash, the chain says what each
// merged segment was made from, and a query answers the same before and
// after. The segment's address filter lets a query skip segments for the
// destination and NAT columns without losing a row.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { readFileSync, readdirSync, writeFileSync, copyFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { Archive, planCompaction, localDay } from '../../archive/archive.ts';
import { queryArchive } from '../../archive/query.ts';
import { verifyArchive } from '../../archive/verify.ts';
import { rawPublicKey, type SegmentEntry } from '../../archive/manifest.ts';
import { buildBloom, parseBloom, BLOOM_KEY } from '../../archive/bloom.ts';
import { emptyRecord, type TrafficRecord } from '../../archive/record.ts';
import { prng } from '../helpers/prng.ts';
import { PROJECT } from '../../sim/area.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);
import { tempDir } from '../helpers/peers.ts';

const key = generateKeyPairSync('ed25519').privateKey;
const trusted = rawPublicKey(key);
let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('compact');
});
afterEach(() => dir.remove());

const HOUR = 3_600_000;
/** 2026-11-23 00:00 in Bangkok (UTC+7). */
const DAY0 = Date.UTC(2026, 10, 22, 17);

/** Flows of one hour: school hosts 10.36.S.H to public addresses, a NAT line now and then. */
function hourOfFlows(hourStart: number, n: number, rnd: () => number): TrafficRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const r = emptyRecord('flow', 'netflow-v9', '127.0.0.8', hourStart + Math.floor((i * HOUR) / n));
    r.src_ip = `10.36.${Math.floor(rnd() * 4)}.${1 + Math.floor(rnd() * 20)}`;
    r.dst_ip = `${1 + Math.floor(rnd() * 200)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`;
    r.src_port = 32768 + Math.floor(rnd() * 28000);
    r.dst_port = 443;
    r.proto = 6;
    r.bytes = Math.floor(rnd() * 1e6);
    r.packets = 1 + Math.floor(rnd() * 900);
    if (i % 50 === 0) {
      r.nat_ip = '203.0.113.7';
      r.nat_port = 40000 + i;
    }
    return r;
  });
}

/** With `background`, seals and merges run in the collector's background worker (as in the service), else on this thread. */
async function threeDays(day0 = DAY0, background = false): Promise<{ a: Archive; inbound: string }> {
  const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: !background, clockOffset: () => 2 });
  const rnd = prng(7);
  // Two finished days of four hourly seals each, and two seals of today.
  for (const day of [0, 1, 2]) {
    for (let h = 0; h < (day < 2 ? 4 : 2); h++) {
      await a.append(hourOfFlows(day0 + day * 24 * HOUR + h * HOUR, 500, rnd));
      await a.seal();
    }
  }
  // One inbound flow: a school host as the destination, in day 1 only.
  const inbound = emptyRecord('flow', 'netflow-v9', '127.0.0.8', day0 + 24 * HOUR + 5 * HOUR);
  Object.assign(inbound, { src_ip: '198.51.100.9', dst_ip: '10.36.2.77', src_port: 443, dst_port: 51000, proto: 6 });
  await a.append([inbound]);
  await a.seal();
  return { a, inbound: '10.36.2.77' };
}

const sorted = (rows: TrafficRecord[]) => rows.map((r) => JSON.stringify(r)).sort();

describe('compaction', () => {
  it('in the background worker, as the service runs them, seals and merges give the same answers and an intact chain', async () => {
    const { a, inbound } = await threeDays(DAY0, true);
    const before = await Promise.all([queryArchive(dir.path, { ip: '10.36.1.5' }), queryArchive(dir.path, { ip: inbound }), queryArchive(dir.path, {})]);
    const { merged, refused } = await a.compact(DAY0 + 50 * HOUR);
    expect(refused).toEqual([]);
    expect(merged.map((e) => e.merged_from!.length)).toEqual([4, 5]);
    const after = await Promise.all([queryArchive(dir.path, { ip: '10.36.1.5' }), queryArchive(dir.path, { ip: inbound }), queryArchive(dir.path, {})]);
    after.forEach((q, i) => expect(sorted(q.rows)).toEqual(sorted(before[i]!.rows)));
    expect(after[2]!.rows).toHaveLength(10 * 500 + 1);
    expect(readdirSync(join(dir.path, 'segments')).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    expect(await verifyArchive(dir.path, trusted)).toMatchObject({ ok: true, faults: [] });
    await a.close();
  });

  it('plans one group per finished local day, leaves today and single segments alone', () => {
    const seg = (seq: number, first: number, rows = 10) => ({ seq, first_recv: first, rows }) as SegmentEntry;
    // 23:30 and 00:30 Bangkok time fall on different days though the same UTC date.
    const late = DAY0 + 23.5 * HOUR;
    expect(localDay(late)).toBe(localDay(DAY0));
    expect(localDay(late + HOUR)).toBe(localDay(DAY0) + 1);
    const segs = [seg(1, DAY0), seg(2, DAY0 + HOUR), seg(3, late), seg(4, late + HOUR), seg(5, DAY0 + 48 * HOUR), seg(6, DAY0 + 49 * HOUR)];
    const groups = planCompaction(segs, DAY0 + 49.5 * HOUR);
    expect(groups.map((g) => g.map((s) => s.seq))).toEqual([[1, 2, 3]]);
    // A cap on rows splits a day.
    expect(planCompaction(segs, DAY0 + 49.5 * HOUR, 20).map((g) => g.map((s) => s.seq))).toEqual([[1, 2]]);
  });

  it("merges each finished day into one segment: the same answers, a chain that names the inputs, verify intact", async () => {
    const { a, inbound } = await threeDays();
    const before = a.segments();
    expect(before).toHaveLength(11);
    const host = '10.36.1.5';
    const q1 = await queryArchive(dir.path, { ip: host });
    const q2 = await queryArchive(dir.path, { ip: inbound });
    const q3 = await queryArchive(dir.path, { ip: '203.0.113.7' });
    expect(q1.rows.length).toBeGreaterThan(10);
    expect(q2.rows).toHaveLength(1);
    // One NAT line in 50: ten per hour, ten hours.
    expect(q3.rows).toHaveLength(100);

    const res = await a.compact(DAY0 + 2 * 24 * HOUR + 3 * HOUR);
    expect(res.refused).toEqual([]);
    expect(res.merged).toHaveLength(2);
    const [d0, d1] = res.merged as [SegmentEntry, SegmentEntry];
    expect(d0.merged_from!.map((m) => m.seq)).toEqual(before.slice(0, 4).map((s) => s.seq));
    expect(d1.merged_from!.map((m) => m.seq)).toEqual([...before.slice(4, 8), before[10]!].map((s) => s.seq));
    expect(d0.rows).toBe(2000);
    expect(d1.rows).toBe(2001);
    expect(d0.merged_from![0]!.clock_offset_ms).toBe(2);
    // Today's two segments stay as they are; the inputs are gone from disk.
    expect(a.segments().map((s) => s.file)).toEqual([before[8]!.file, before[9]!.file, d0.file, d1.file]);
    const files = readdirSync(join(dir.path, 'segments')).filter((f) => f.endsWith('.parquet'));
    expect(files.sort()).toEqual(a.segments().map((s) => s.file).sort());

    for (const [q, was] of [[{ ip: host }, q1], [{ ip: inbound }, q2], [{ ip: '203.0.113.7' }, q3]] as const) {
      const now = await queryArchive(dir.path, q);
      expect(sorted(now.rows)).toEqual(sorted(was.rows));
    }
    // Rows now come from the merged segments, named with their chain positions.
    expect((await queryArchive(dir.path, { ip: inbound })).segments).toEqual([{ file: d1.file, seq: d1.seq, sha256: d1.sha256, rows: 1 }]);
    // Merged segments are sorted by source address like sealed ones.
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const order = (await con.runAndReadAll(`SELECT count(*) FROM (SELECT src_ip, lag(src_ip) OVER () p FROM '${join(dir.path, 'segments', d0.file)}') WHERE p > src_ip`)).getColumns()[0]![0];
    expect(Number(order)).toBe(0);
    con.closeSync();
    inst.closeSync();

    // A second compaction finds nothing more to do.
    expect((await a.compact(DAY0 + 2 * 24 * HOUR + 3 * HOUR)).merged).toEqual([]);
    await a.close();
    const v = await verifyArchive(dir.path, trusted);
    expect(v).toMatchObject({ ok: true, faults: [], segments: 4 });
  });

  it('refuses to merge a day with an altered segment, names it, and merges the other days', async () => {
    const { a } = await threeDays();
    const victim = a.segments()[5]!;
    const path = join(dir.path, 'segments', victim.file);
    const bytes = readFileSync(path);
    bytes[200] = bytes[200]! ^ 0xff;
    writeFileSync(path, bytes);
    const res = await a.compact(DAY0 + 2 * 24 * HOUR + 3 * HOUR);
    expect(res.merged).toHaveLength(1);
    expect(res.refused).toHaveLength(1);
    expect(res.refused[0]).toContain(`segment ${victim.file} (entry ${victim.seq}) does not match the manifest`);
    // The altered file is still there for verify to name.
    await a.close();
    const v = await verifyArchive(dir.path, trusted);
    expect(v.ok).toBe(false);
    expect(v.faults).toEqual([expect.stringContaining(`segment ${victim.file} (entry ${victim.seq}): altered`)]);
  });

  it('a merge interrupted after its entry was written is finished when the archive opens; verify names what it left meanwhile', async () => {
    const { a } = await threeDays();
    const day0 = a.segments().slice(0, 4);
    const saved = day0.map((s) => {
      copyFileSync(join(dir.path, 'segments', s.file), join(dir.path, s.file));
      return s.file;
    });
    const { merged } = await a.compact(DAY0 + 24 * HOUR + 3 * HOUR);
    await a.close();
    // As if the process died after the entry, before the file took its name
    // and the inputs went: the merged file under its work name, every input still there.
    const m = merged[0]!;
    renameSync(join(dir.path, 'segments', m.file), join(dir.path, 'segments', `.tmp-${m.file}`));
    for (const f of saved) copyFileSync(join(dir.path, f), join(dir.path, 'segments', f));
    const v = await verifyArchive(dir.path, trusted);
    expect(v.faults).toContain(`segment ${m.file} (entry ${m.seq}): removed (the file is missing)`);
    expect(v.faults).toContain(`segment ${saved[0]} (entry ${day0[0]!.seq}): merged into ${m.file} (entry ${m.seq}) but still present (an interrupted merge: opening the archive removes it)`);
    // Opening the archive finishes the merge.
    const b = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5 });
    await b.close();
    for (const f of saved) expect(existsSync(join(dir.path, 'segments', f))).toBe(false);
    expect(existsSync(join(dir.path, 'segments', m.file))).toBe(true);
    expect(await verifyArchive(dir.path, trusted)).toMatchObject({ ok: true, faults: [] });
    expect((await queryArchive(dir.path, { ip: '203.0.113.7' })).rows).toHaveLength(100);
  });

  it('a merge interrupted before its entry leaves the inputs as they were, and its work file is removed', async () => {
    const { a } = await threeDays();
    const before = a.segments();
    await a.close();
    writeFileSync(join(dir.path, 'segments', '.tmp-seg-000099-20261123T000000Z.parquet'), 'half a merge');
    const b = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5 });
    expect(b.segments()).toEqual(before);
    await b.close();
    expect(readdirSync(join(dir.path, 'segments')).filter((f) => f.startsWith('.'))).toEqual([]);
    expect((await verifyArchive(dir.path, trusted)).ok).toBe(true);
  });

  it('verify names a merged segment whose entry claims inputs the chain does not hold', async () => {
    const { a } = await threeDays();
    await a.compact(DAY0 + 2 * 24 * HOUR + 3 * HOUR);
    // A forged entry, properly signed with the archive's own key: it says it
    // was made from a segment that was never sealed, with more records.
    const merged = a.segments().at(-1)!;
    const { seq: _seq, prev: _prev, hash: _hash, sig: _sig, at: _at, ...fields } = merged;
    await a.manifest.append<SegmentEntry>({ ...fields, file: 'seg-999999-forged.parquet', rows: merged.rows + 1, merged_from: [...merged.merged_from!, { file: 'seg-000000-nothing.parquet', seq: 1, sha256: '0'.repeat(64), rows: 1, clock_offset_ms: null }] } as never);
    await a.close();
    const v = await verifyArchive(dir.path, trusted);
    expect(v.faults).toContain(`segment seg-999999-forged.parquet (entry ${merged.seq + 1}): says it was merged from seg-000000-nothing.parquet (entry 1), which the chain does not hold as such`);
    expect(v.faults).toContain(`segment seg-999999-forged.parquet (entry ${merged.seq + 1}): removed (the file is missing)`);
  });
});

describe('klaiwatch archive compact', () => {
  it('shows the plan with --dry-run, then merges the finished days', async () => {
    // Two days before today (Bangkok) and today, whatever the clock says.
    const todayStart = localDay(Date.now()) * 24 * HOUR - 7 * HOUR;
    const { a } = await threeDays(todayStart - 2 * 24 * HOUR);
    await a.close();
    const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeFileSync(join(dir.path, 'signing.pem'), pem);
    writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
    const cfg = join(dir.path, 'area.yaml');
    writeFileSync(cfg, ['area: { code: t, name_th: สพป.ทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9" }', 'traffic: { dir: ".", signing_key: signing.pem }', ''].join('\n'));
    const cli = (...args: string[]) => exec(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', 'compact', ...args, '--config', cfg]);
    const dry = await cli('--dry-run');
    expect(dry.stdout).toMatch(/would merge 4 segments \(2000 records\) of \d{4}-\d\d-\d\d: seg-000001-\S+ seg-000002-\S+ seg-000003-\S+ seg-000004-\S+\n/);
    expect(dry.stdout).toMatch(/would merge 5 segments \(2001 records\)/);
    expect(dry.stdout).toContain('2 merges planned');
    expect(readdirSync(join(dir.path, 'segments'))).toHaveLength(11);
    const done = await cli();
    expect(done.stdout).toMatch(/merged 4 segments into seg-000012-\S+ \(2000 records, \d+ bytes; manifest entry 12\)/);
    expect(done.stdout).toContain('2 merges done');
    expect(readdirSync(join(dir.path, 'segments'))).toHaveLength(4);
    expect(await verifyArchive(dir.path, trusted)).toMatchObject({ ok: true, segments: 4 });
  });
});

describe('the address filter', () => {
  it('never says no for an address it holds, and says no for nearly all others', () => {
    const rnd = prng(11);
    const held = Array.from({ length: 20_000 }, () => `${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`);
    const bloom = parseBloom(buildBloom(held, held.length))!;
    expect(held.every((h) => bloom.has(h))).toBe(true);
    const set = new Set(held);
    let yes = 0;
    let asked = 0;
    for (let i = 0; i < 20_000; i++) {
      const x = `10.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`;
      if (set.has(x)) continue;
      asked++;
      if (bloom.has(x)) yes++;
    }
    // 8 bits and 6 hashes per address: about 2 % false positives.
    expect(yes / asked).toBeLessThan(0.04);
    expect(parseBloom('v2:garbage')).toBeNull();
    expect(parseBloom('v1:6:64:AAAA')).toBeNull();
  });

  it("is in each segment's footer and covers destination and NAT addresses; a query finds the one segment that holds an inbound address", async () => {
    const { a, inbound } = await threeDays();
    const segs = a.segments();
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const kv = await con.runAndReadAll(`SELECT file_name, decode(value) FROM parquet_kv_metadata([${segs.map((s) => `'${join(dir.path, 'segments', s.file)}'`).join(', ')}]) WHERE key = '${BLOOM_KEY}'::BLOB`);
    const filters = kv.getRows().map(([f, v]) => [String(f), parseBloom(String(v))!] as const);
    con.closeSync();
    inst.closeSync();
    expect(filters).toHaveLength(segs.length);
    const holding = filters.filter(([, b]) => b.has(inbound)).map(([f]) => f);
    expect(holding).toContain(join(dir.path, 'segments', segs.at(-1)!.file));
    expect(holding.length).toBeLessThanOrEqual(2);
    // Every hour of flows has NAT lines; the last segment holds only the inbound flow.
    const last = join(dir.path, 'segments', segs.at(-1)!.file);
    expect(filters.filter(([f]) => f !== last).every(([, b]) => b.has('203.0.113.7'))).toBe(true);
    // The one inbound flow is found through the filter, from the one segment that holds it.
    const q = await queryArchive(dir.path, { ip: inbound });
    expect(q.rows.map((r) => [r.src_ip, r.dst_ip])).toEqual([['198.51.100.9', inbound]]);
    await a.close();
  });
});
