// What a seal writes must come back as it was received, whatever the record
// holds: every column, empty ones, Thai text, IPv6 and oddly written
// addresses, times out of the usual order. Segments of the first layout (and
// write-ahead logs in the first frame layouts) stay readable and mergeable.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { Archive, sha256File } from '../../archive/archive.ts';
import { queryArchive } from '../../archive/query.ts';
import { verifyArchive } from '../../archive/verify.ts';
import { COLUMNS, emptyRecord, encodeRecords, decodeFrame, FLAG_CUT, FLAG_PARSE_LIMIT, type TrafficRecord } from '../../archive/record.ts';
import { ipv4Number, LAYOUT, LAYOUT_KEY, physical } from '../../archive/layout.ts';
import type { SegmentEntry } from '../../archive/manifest.ts';
import { tempDir } from '../helpers/peers.ts';

const key = generateKeyPairSync('ed25519').privateKey;
let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('layout');
});
afterEach(() => dir.remove());

const T = Date.UTC(2026, 10, 24, 3);

/** Records that use every column in turn, and the odd cases of each. */
function varied(): TrafficRecord[] {
  const full = emptyRecord('log', 'squid', '127.0.0.5', T + 1);
  COLUMNS.forEach(([c, t], i) => {
    if (c === 'kind' || c === 'recv_ms') return;
    (full as unknown as Record<string, unknown>)[c] = t === 'BLOB' ? Buffer.from([0x41, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0xe0, 0xb8]) : t === 'VARCHAR' ? `${c} ค่า ${i}` : t === 'SMALLINT' ? i : t === 'INTEGER' ? 1000 + i : T - 5000 + i * 17;
  });
  full.src_ip = '10.1.2.3';
  full.dst_ip = '2001:db8::1';
  full.nat_ip = '203.0.113.9';
  full.post_nat_dst_ip = '10.9.8.7';
  const flow = emptyRecord('flow', 'netflow-v5', '127.0.0.6', T + 2);
  Object.assign(flow, { src_ip: '192.168.0.1', dst_ip: '8.8.8.8', src_port: 51000, dst_port: 53, proto: 17, bytes: 2 ** 40 + 3, packets: 7, start_ms: T - 60_000, end_ms: T - 1000, dev_ms: T - 1000 });
  // The device's clock ahead of ours, a flow ending "after" its export, no device time at all.
  const ahead = { ...flow, recv_ms: T + 3, dev_ms: T + 86_400_000, end_ms: T + 5, start_ms: T + 9 };
  const noDev = { ...flow, recv_ms: T + 4, dev_ms: null, end_ms: T - 3, start_ms: null };
  // Text that only looks like IPv4, and the extremes of it.
  const odd = { ...emptyRecord('log', 'syslog', '::1', T + 5), src_ip: '010.1.2.3', dst_ip: '0.0.0.0', nat_ip: '255.255.255.255', raw: 'x'.repeat(70_000) + ' ไทย' };
  const v6only = { ...emptyRecord('flow', 'ipfix', '127.0.0.7', T + 6), src_ip: 'fe80::1', dst_ip: '::ffff:1.2.3.4', user: '' };
  return [full, flow, ahead, noDev, odd, v6only];
}

/** The columns added in layout 4: null in what was written before it. */
const BEFORE_4 = { sampling: null, nat_event: null, post_nat_dst_ip: null, post_nat_dst_port: null, raw_bytes: null } as const;
const SINCE_4 = Object.keys(BEFORE_4);

const sorted = (rs: readonly TrafficRecord[]) => [...rs].sort((a, b) => a.recv_ms - b.recv_ms);

describe('segment layout', () => {
  it('every column comes back from a sealed segment as it went into the log', async () => {
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    const records = varied();
    await a.append(records);
    const e = (await a.seal())!;
    expect(e.layout).toBe(LAYOUT);
    const back = await queryArchive(dir.path, {});
    expect(back.fromWal).toBe(0);
    expect(sorted(back.rows)).toEqual(sorted(records));
    // The same from the write-ahead log before a seal.
    await a.append(records.map((r) => ({ ...r, recv_ms: r.recv_ms + 3_600_000 })));
    const both = await queryArchive(dir.path, {});
    expect(both.fromWal).toBe(records.length);
    expect(sorted(both.rows).slice(records.length)).toEqual(sorted(records.map((r) => ({ ...r, recv_ms: r.recv_ms + 3_600_000 }))));
    // Each address found on its own side, IPv4 by number and the rest by text.
    for (const ip of ['10.1.2.3', '2001:db8::1', '203.0.113.9', '0.0.0.0', '255.255.255.255', 'fe80::1', '::ffff:1.2.3.4', '8.8.8.8']) {
      const hits = await queryArchive(dir.path, { ip });
      expect(hits.rows.length, ip).toBe(2 * records.filter((r) => [r.src_ip, r.dst_ip, r.nat_ip].includes(ip)).length);
      expect(hits.rows.every((r) => [r.src_ip, r.dst_ip, r.nat_ip].includes(ip)), ip).toBe(true);
    }
    await a.close();
  });

  it('a segment holds IPv4 addresses as numbers, sorted by source, and says its layout in its footer', async () => {
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    const rs: TrafficRecord[] = [];
    for (let i = 0; i < 5000; i++) rs.push({ ...emptyRecord('flow', 'netflow-v5', '127.0.0.6', T + i), src_ip: `10.${i % 7}.${(i * 13) % 256}.${i % 250}`, dst_ip: `1.2.${i % 3}.4` });
    await a.append(rs);
    const e = (await a.seal())!;
    await a.close();
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const f = join(dir.path, 'segments', e.file);
    const kv = (await con.runAndReadAll(`SELECT decode(value) FROM parquet_kv_metadata('${f}') WHERE key = '${LAYOUT_KEY}'::BLOB`)).getRows();
    expect(kv).toEqual([[String(LAYOUT)]]);
    const cols = (await con.runAndReadAll(`SELECT src_v4, src_ip, dst_v4, dst_ip FROM '${f}'`)).getRows();
    expect(cols.every(([s, st, d, dt]) => typeof s === 'number' && st === null && typeof d === 'number' && dt === null)).toBe(true);
    const src = cols.map(([s]) => s as number);
    expect(src).toEqual([...src].sort((x, y) => x - y));
    expect(new Set(src)).toEqual(new Set(rs.map((r) => ipv4Number(r.src_ip!))));
    con.closeSync();
    inst.closeSync();
  });

  it('segments of the first layout are read, merged with new ones and verified', async () => {
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    // The first versions had no flags column: it reads as null from their segments.
    const old = varied().map((r) => ({ ...r, flags: null, ...BEFORE_4 }));
    // A segment as the first versions wrote it: the columns as they are, sorted by source text, no layout in its entry.
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const json = join(dir.path, 'old.json');
    writeFileSync(json, old.map((r) => JSON.stringify(r)).join('\n'));
    const name = 'seg-000001-20261124T030000Z.parquet';
    const file = join(dir.path, 'segments', name);
    const first = COLUMNS.filter(([c]) => c !== 'flags' && !SINCE_4.includes(c));
    await con.run(`COPY (SELECT ${first.map(([c, t]) => `CAST("${c}" AS ${t}) AS "${c}"`).join(', ')} FROM read_json('${json}', columns = {${first.map(([c, t]) => `'${c}': '${t}'`).join(', ')}}) ORDER BY src_ip, recv_ms) TO '${file}' (FORMAT parquet, COMPRESSION zstd)`);
    con.closeSync();
    inst.closeSync();
    await a.manifest.append<SegmentEntry>({ type: 'segment', by: 'klaiwatch', file: name, sha256: await sha256File(file), bytes: 0, rows: old.length, first_recv: T + 1, last_recv: T + 6, clock_offset_ms: null, exporters: [], wal: '', wal_inode: 0 });
    const fresh = old.map((r) => ({ ...r, recv_ms: r.recv_ms + 60_000 }));
    await a.append(fresh);
    await a.seal();
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(sorted([...old, ...fresh]));
    expect((await queryArchive(dir.path, { ip: '2001:db8::1' })).rows.length).toBe(2);
    expect((await queryArchive(dir.path, { ip: '10.1.2.3' })).rows.length).toBe(2);
    const { merged, refused } = await a.compact(Date.UTC(2026, 10, 26));
    expect(refused).toEqual([]);
    expect(merged).toHaveLength(1);
    expect(merged[0]!.layout).toBe(LAYOUT);
    expect(readdirSync(join(dir.path, 'segments')).filter((f) => f.endsWith('.parquet'))).toEqual([merged[0]!.file]);
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(sorted([...old, ...fresh]));
    expect((await queryArchive(dir.path, { ip: '255.255.255.255' })).rows.length).toBe(2);
    // "010.1.2.3" is kept as written, and is not 10.1.2.3.
    expect((await queryArchive(dir.path, { ip: '10.1.2.3' })).rows.map((r) => r.src_ip)).toEqual(['10.1.2.3', '10.1.2.3']);
    expect((await verifyArchive(dir.path)).ok).toBe(true);
    await a.close();
  });

  it('segments of layout 2 (before the flags column) are read with null flags, merged into layout 3 and verified', async () => {
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    const old = varied().map((r) => ({ ...r, flags: null, ...BEFORE_4 }));
    // A layout-2 segment: numbers for IPv4, times as differences, sorted by source; no flags column.
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const json = join(dir.path, 'old.json');
    writeFileSync(json, old.map((r) => JSON.stringify(r)).join('\n'));
    const name = 'seg-000001-20261124T030000Z.parquet';
    const file = join(dir.path, 'segments', name);
    await con.run(`COPY (SELECT * EXCLUDE (flags, ${SINCE_4.join(', ')}, post_nat_dst_v4) FROM (SELECT ${physical()} FROM read_json('${json}', columns = {${COLUMNS.map(([c, t]) => `'${c}': '${t === 'BLOB' ? 'VARCHAR' : t}'`).join(', ')}})) ORDER BY src_v4, src_ip, recv_ms) TO '${file}' (FORMAT parquet, COMPRESSION zstd, KV_METADATA {${LAYOUT_KEY}: '2'})`);
    const cols = (await con.runAndReadAll(`SELECT name FROM parquet_schema('${file}')`)).getRows().map(([n]) => n);
    expect(cols).toContain('src_v4');
    expect(cols).not.toContain('flags');
    con.closeSync();
    inst.closeSync();
    await a.manifest.append<SegmentEntry>({ type: 'segment', by: 'klaiwatch', file: name, sha256: await sha256File(file), bytes: 0, rows: old.length, first_recv: T + 1, last_recv: T + 6, clock_offset_ms: null, exporters: [], wal: '', wal_inode: 0, layout: 2 });
    // New records with flags beside them.
    const fresh = varied().map((r, i) => ({ ...r, recv_ms: r.recv_ms + 60_000, flags: i % 2 ? FLAG_CUT | FLAG_PARSE_LIMIT : null }));
    await a.append(fresh);
    await a.seal();
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(sorted([...old, ...fresh]));
    expect((await queryArchive(dir.path, { ip: '10.1.2.3' })).rows.length).toBe(2);
    const { merged, refused } = await a.compact(Date.UTC(2026, 10, 26));
    expect(refused).toEqual([]);
    expect(merged).toHaveLength(1);
    expect(merged[0]!.layout).toBe(LAYOUT);
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(sorted([...old, ...fresh]));
    expect((await queryArchive(dir.path, { ip: '2001:db8::1' })).rows.length).toBe(2);
    expect((await verifyArchive(dir.path)).ok).toBe(true);
    await a.close();
  });

  it('segments of layout 3 (before sampling, NAT events, post-NAT destinations and raw bytes) read them as null, merge into the current layout and verify', async () => {
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    const old = varied().map((r) => ({ ...r, ...BEFORE_4 }));
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const json = join(dir.path, 'old.json');
    writeFileSync(json, old.map((r) => JSON.stringify(r)).join('\n'));
    const name = 'seg-000001-20261124T030000Z.parquet';
    const file = join(dir.path, 'segments', name);
    // Layout 3 as it was written: layout 2's columns and flags, none of layout 4's.
    await con.run(`COPY (SELECT * EXCLUDE (${SINCE_4.join(', ')}, post_nat_dst_v4) FROM (SELECT ${physical()} FROM read_json('${json}', columns = {${COLUMNS.map(([c, t]) => `'${c}': '${t === 'BLOB' ? 'VARCHAR' : t}'`).join(', ')}})) ORDER BY src_v4, src_ip, recv_ms) TO '${file}' (FORMAT parquet, COMPRESSION zstd, KV_METADATA {${LAYOUT_KEY}: '3'})`);
    const cols = (await con.runAndReadAll(`SELECT name FROM parquet_schema('${file}')`)).getRows().map(([n]) => n);
    expect(cols).toContain('flags');
    expect(cols).not.toContain('sampling');
    expect(cols).not.toContain('raw_bytes');
    con.closeSync();
    inst.closeSync();
    await a.manifest.append<SegmentEntry>({ type: 'segment', by: 'klaiwatch', file: name, sha256: await sha256File(file), bytes: 0, rows: old.length, first_recv: T + 1, last_recv: T + 6, clock_offset_ms: null, exporters: [], wal: '', wal_inode: 0, layout: 3 });
    const fresh = varied().map((r, i) => ({ ...r, recv_ms: r.recv_ms + 60_000, sampling: i % 2 ? 1000 : null, nat_event: i % 3 ? 1 : null }));
    await a.append(fresh);
    await a.seal();
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(sorted([...old, ...fresh]));
    const { merged, refused } = await a.compact(Date.UTC(2026, 10, 26));
    expect(refused).toEqual([]);
    expect(merged[0]!.layout).toBe(LAYOUT);
    const back = sorted((await queryArchive(dir.path, {})).rows);
    expect(back).toEqual(sorted([...old, ...fresh]));
    // The bytes that were not UTF-8 come back exactly.
    expect(back.filter((r) => r.raw_bytes !== null).map((r) => Buffer.from(r.raw_bytes!).toString('hex'))).toEqual(['41fffe00c328e0b8']);
    expect((await queryArchive(dir.path, { ip: '10.1.2.3' })).rows.length).toBe(2);
    expect((await verifyArchive(dir.path)).ok).toBe(true);
    await a.close();
  });

  it('write-ahead log frames written before layout 4 read its columns as null', async () => {
    const records = varied().map((r) => ({ ...r, ...BEFORE_4 }));
    const frame = encodeRecords(records);
    // The layout-3 encoder: maps of 26 columns.
    expect(frame.readUInt32LE(5) >>> 26).toBe(0);
    expect(decodeFrame(frame)).toEqual(records);
    const withThem = varied();
    expect(encodeRecords(withThem).readUInt32LE(5) >>> 26).toBe(31);
    expect(decodeFrame(encodeRecords(withThem))).toEqual(withThem);
  });

  it('write-ahead log frames written before the flags column read it as null', async () => {
    const records = varied().map((r) => ({ ...r, flags: null, ...BEFORE_4 }));
    // The previous encoder: the same frame, with maps of 25 columns (the flags bit never set).
    const frame = encodeRecords(records);
    expect(frame.readUInt32LE(5) & (1 << 25)).toBe(0);
    expect(decodeFrame(frame)).toEqual(records);
    // JSON rows of the first versions had 25 values.
    const json = Buffer.from(JSON.stringify(records.map((r) => COLUMNS.filter(([c]) => c !== 'flags' && !SINCE_4.includes(c)).map(([c]) => r[c]))));
    expect(decodeFrame(json)).toEqual(records);
    const flagged = { ...records[0]!, recv_ms: T + 9, flags: FLAG_CUT };
    const walDir = join(dir.path, 'wal');
    const a0 = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    await a0.close();
    const frames = [frame, json, encodeRecords([flagged])].map((p) => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(p.length, 0);
      h.writeUInt32LE(crc32(p), 4);
      return Buffer.concat([h, p]);
    });
    writeFileSync(join(walDir, 'current.wal'), Buffer.concat(frames));
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    const want = sorted([...records, ...records, flagged]);
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(want);
    await a.seal();
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(want);
    await a.close();
  });

  it('write-ahead logs in the first frame layouts (JSON rows, binary rows without a column map) are sealed alike', async () => {
    // Those versions had no raw_bytes (a BLOB would not survive JSON rows anyway).
    const records = varied().map((r) => ({ ...r, raw_bytes: null }));
    const frame = encodeRecords(records);
    expect(decodeFrame(frame)).toEqual(records);
    // The first binary layout: magic 0x42, the count, then the rows (no column map).
    const v1 = Buffer.concat([Buffer.from([0x42]), frame.subarray(1, 5), frame.subarray(9)]);
    const json = Buffer.from(JSON.stringify(records.map((r) => COLUMNS.map(([c]) => r[c]))));
    expect(decodeFrame(v1)).toEqual(records);
    expect(decodeFrame(json)).toEqual(records);
    const walDir = join(dir.path, 'wal');
    const a0 = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    await a0.close();
    const frames = [v1, json].map((p) => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(p.length, 0);
      h.writeUInt32LE(crc32(p), 4);
      return Buffer.concat([h, p]);
    });
    writeFileSync(join(walDir, 'current.wal'), Buffer.concat(frames));
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(sorted([...records, ...records]));
    const e = (await a.seal())!;
    expect(e.rows).toBe(2 * records.length);
    expect(sorted((await queryArchive(dir.path, {})).rows)).toEqual(sorted([...records, ...records]));
    await a.close();
  });

  it('a seal in the background runs in a thread of its own at nice 10; the receivers\' thread keeps its priority', async () => {
    if (process.platform !== 'linux') return;
    const nice = (task: string) => Number(readFileSync(`/proc/self/task/${task}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const niced = () => readdirSync('/proc/self/task').filter((t) => {
      try {
        return nice(t) === 10;
      } catch {
        return false; // the thread ended meanwhile
      }
    });
    expect(niced()).toEqual([]);
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5 });
    const rs: TrafficRecord[] = [];
    for (let i = 0; i < 200_000; i++) rs.push({ ...emptyRecord('flow', 'netflow-v5', '127.0.0.6', T + i), src_ip: `10.${i % 7}.${(i * 13) % 256}.${i % 250}`, dst_ip: `1.2.${i % 3}.4` });
    await a.append(rs);
    let seen: string[] = [];
    let done = false;
    const sealed = a.seal().finally(() => (done = true));
    while (!done && seen.length === 0) {
      seen = niced();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect((await sealed)!.rows).toBe(rs.length);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen).not.toContain(String(process.pid));
    expect(nice(String(process.pid))).toBe(0);
    await a.close();
  });
});
