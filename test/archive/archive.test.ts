// The archive's own promises: records are durable once appended, sealed
// into Parquet segments recorded in a signed hash chain, readable while
// still in the write-ahead log, and `verify` names every kind of tampering:
// a flipped byte, a deleted segment, two segments swapped, an added file, an
// edited manifest entry, a removed entry.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { readFileSync, writeFileSync, renameSync, unlinkSync, copyFileSync, readdirSync, appendFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { Archive } from '../../archive/archive.ts';
import { queryArchive, QueryError } from '../../archive/query.ts';
import { verifyArchive } from '../../archive/verify.ts';
import { rawPublicKey } from '../../archive/manifest.ts';
import { parseLogLine } from '../../archive/parsers.ts';
import { FlowDecoder } from '../../archive/netflow.ts';
import { udpPayloads } from '../../archive/pcap.ts';
import type { TrafficRecord } from '../../archive/record.ts';
import { PROJECT } from '../../sim/area.ts';
import { tempDir } from '../helpers/peers.ts';

const key = generateKeyPairSync('ed25519').privateKey;
const trusted = rawPublicKey(key);
let dir: ReturnType<typeof tempDir>;

beforeEach(() => {
  dir = tempDir('archive');
});
afterEach(() => dir.remove());

const fixture = (name: string) => readFileSync(join(PROJECT, 'test', 'fixtures', name));
const logs = (file: string, recvMs: number): TrafficRecord[] =>
  fixture(`logs/${file}`)
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => parseLogLine(l, { exporter: '127.0.0.9', recvMs, utcOffsetMinutes: 420 }));
function flows(recvMs: number): TrafficRecord[] {
  const d = new FlowDecoder();
  return udpPayloads(fixture('netflow/nfv5.pcap')).flatMap((g) => d.decode(g.payload, '127.0.0.8', recvMs).flows);
}

async function archiveWithSegments(n: number): Promise<Archive> {
  const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5, clockOffset: () => 1.5 });
  for (let i = 0; i < n; i++) {
    await a.append(i % 2 === 0 ? logs('mikrotik-firewall.log', Date.UTC(2026, 10, 24, 3, i)) : flows(Date.UTC(2026, 10, 24, 3, i)));
    await a.seal();
  }
  return a;
}

describe('the traffic archive', () => {
  it('seals the log into zstd Parquet segments in a signed chain, and answers from segments and the log alike', async () => {
    const a = await archiveWithSegments(2);
    // Still in the write-ahead log: the DHCP lines.
    await a.append(logs('isc-dhcpd.log', Date.UTC(2026, 10, 24, 4)));
    expect(a.segments().map((s) => s.rows)).toEqual([8, 29]);
    const seg = a.segments()[0]!;
    expect(seg.clock_offset_ms).toBe(1.5);
    expect(readFileSync(join(dir.path, 'segments', seg.file)).subarray(0, 4).toString()).toBe('PAR1');

    const nat = await queryArchive(dir.path, { ip: '125.25.69.110' });
    expect(nat.rows).toHaveLength(1);
    expect(nat.rows[0]).toMatchObject({ src_ip: '192.168.20.171', src_port: 43996, nat_ip: '125.25.69.110', dst_ip: '47.241.18.42', dst_port: 443, proto: 6, mac: 'b4:0f:b3:1d:63:4b' });
    expect(nat.segments).toEqual([{ file: seg.file, seq: seg.seq, sha256: seg.sha256, rows: 1 }]);

    const flow = await queryArchive(dir.path, { ip: '161.202.212.212', side: 'src' });
    expect(flow.rows.length).toBeGreaterThan(0);
    expect(flow.rows.every((r) => r.src_ip === '161.202.212.212' && r.parser === 'netflow-v5')).toBe(true);

    const recent = await queryArchive(dir.path, { ip: '192.168.0.4' });
    expect(recent.fromWal).toBe(recent.rows.length);
    expect(recent.rows.length).toBeGreaterThan(5);
    expect(recent.rows.every((r) => r.parser === 'isc-dhcp')).toBe(true);

    await a.close();
    expect(await verifyArchive(dir.path, trusted)).toMatchObject({ ok: true, faults: [], segments: 2, entries: 3 });
  });

  it('an address on both sides of one record answers once (the query splits by column for the Parquet reader)', async () => {
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5 });
    const r = logs('squid-access.log', Date.UTC(2026, 10, 24, 6)).slice(0, 3);
    Object.assign(r[0]!, { src_ip: '10.9.9.9', dst_ip: '10.9.9.9', nat_ip: '10.9.9.9' });
    Object.assign(r[1]!, { src_ip: '10.1.1.1', dst_ip: '10.9.9.9', nat_ip: null });
    Object.assign(r[2]!, { src_ip: '10.1.1.1', dst_ip: '10.2.2.2', nat_ip: '10.9.9.9' });
    await a.append(r);
    await a.seal();
    await a.close();
    expect((await queryArchive(dir.path, { ip: '10.9.9.9' })).rows).toHaveLength(3);
    expect((await queryArchive(dir.path, { ip: '10.9.9.9', side: 'src' })).rows).toHaveLength(2);
    expect((await queryArchive(dir.path, { ip: '10.9.9.9', side: 'dst' })).rows).toHaveLength(2);
    // Both addresses in the record, on whichever sides (the third has 10.9.9.9 as its NAT address).
    expect((await queryArchive(dir.path, { ip: '10.9.9.9', peer: '10.1.1.1' })).rows).toHaveLength(2);
    expect((await queryArchive(dir.path, { ip: '10.9.9.9', peer: '10.2.2.2' })).rows).toHaveLength(1);
  });

  it('refuses a query it cannot read, naming the part', async () => {
    await expect(queryArchive(dir.path, { ip: '10.0.0.300' })).rejects.toThrow(QueryError);
    await expect(queryArchive(dir.path, { ip: '10.0.0.300' })).rejects.toThrow(/--ip "10.0.0.300" is not an IPv4 or IPv6 address/);
    await expect(queryArchive(dir.path, { port: 70000 })).rejects.toThrow(/--port 70000/);
  });

  it('verify names a flipped byte, a deleted segment, swapped segments and an added file', async () => {
    const a = await archiveWithSegments(4);
    await a.close();
    const [s1, s2, s3, s4] = a.segments();
    const seg = (f: string) => join(dir.path, 'segments', f);
    // Flip one byte in the middle of segment 1.
    const fd = openSync(seg(s1!.file), 'r+');
    const b = Buffer.alloc(1);
    const at = Math.floor(s1!.bytes / 2);
    b[0] = readFileSync(seg(s1!.file))[at]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    // Delete segment 2; swap 3 and 4; add a file nobody sealed.
    unlinkSync(seg(s2!.file));
    renameSync(seg(s3!.file), seg('x'));
    renameSync(seg(s4!.file), seg(s3!.file));
    renameSync(seg('x'), seg(s4!.file));
    copyFileSync(seg(s4!.file), seg('seg-999999-20261124T0000Z.parquet'));

    const r = await verifyArchive(dir.path, trusted);
    expect(r.ok).toBe(false);
    expect(r.faults).toEqual([
      expect.stringMatching(new RegExp(`^segment ${s1!.file} \\(entry 1\\): altered \\(SHA-256 [0-9a-f]{64}, the manifest says ${s1!.sha256}\\)$`)),
      `segment ${s2!.file} (entry 2): removed (the file is missing)`,
      `segment ${s3!.file} (entry 3): holds the content of ${s4!.file} (entry 4): segments were swapped or reordered`,
      `segment ${s4!.file} (entry 4): holds the content of ${s3!.file} (entry 3): segments were swapped or reordered`,
      'segment seg-999999-20261124T0000Z.parquet: added (a file the manifest does not list)',
    ]);
  });

  it('verify names an edited manifest entry, a removed entry and a manifest signed with another key', async () => {
    const a = await archiveWithSegments(3);
    await a.close();
    const path = join(dir.path, 'manifest.jsonl');
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    // Make segment 1 look smaller; drop entry 2.
    const edited = JSON.parse(lines[1]!);
    edited.rows = 1;
    writeFileSync(path, [lines[0], JSON.stringify(edited), lines[3]].join('\n') + '\n');
    const r = await verifyArchive(dir.path, trusted);
    expect(r.faults).toContain(`manifest line 2 (entry 1, segment ${a.segments()[0]!.file}): its content does not match its hash (the entry was altered)`);
    expect(r.faults).toContain(`manifest line 3 (entry 3, segment ${a.segments()[2]!.file}): expected entry 2 here (entries were removed or reordered)`);
    expect(r.faults).toContain(`segment ${a.segments()[1]!.file}: added (a file the manifest does not list)`);

    const other = rawPublicKey(generateKeyPairSync('ed25519').privateKey);
    writeFileSync(path, lines.join('\n') + '\n');
    const r2 = await verifyArchive(dir.path, other);
    expect(r2.faults[0]).toMatch(/^manifest line 1: the archive is signed with key .*, not the trusted key/);
    expect(r2.faults.filter((f) => f.includes('signature is not valid'))).toHaveLength(4);
  });

  it('a log cut mid-frame by a crash opens with the torn frame cut off and the rest kept', async () => {
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5 });
    await a.append(logs('squid-access.log', Date.UTC(2026, 10, 24, 5)));
    await a.close();
    // A crash in the middle of the next frame's write.
    appendFileSync(join(dir.path, 'wal', 'current.wal'), Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 91, 91]));
    const b = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5 });
    expect(b.wal.stats.recoveredTornBytes).toBe(10);
    const seg = await b.seal();
    expect(seg!.rows).toBe(13);
    await b.close();
    expect(readdirSync(join(dir.path, 'wal'))).toEqual(['current.wal']);
  });

  it('a burst of seal requests makes one seal running and at most one waiting, not one each', async () => {
    const a = await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5 });
    await a.append(flows(Date.UTC(2026, 10, 24, 7)));
    const first = a.seal();
    await a.append(flows(Date.UTC(2026, 10, 24, 7, 1)));
    const asked = Array.from({ length: 50 }, () => a.seal());
    const done = await Promise.all([first, ...asked]);
    // The 51 requests were at most two seals (the one running, and one that waited).
    expect(new Set(done.map((e) => e?.seq ?? null)).size).toBeLessThanOrEqual(2);
    expect(a.segments().reduce((n, s) => n + s.rows, 0)).toBe(58);
    expect(a.segments().length).toBeLessThanOrEqual(2);
    // Again: the requests join the seal that has not started, or wait as one behind it.
    await a.append(flows(Date.UTC(2026, 10, 24, 7, 2)));
    const more = await Promise.all(Array.from({ length: 20 }, () => a.seal()));
    expect(new Set(more.map((e) => e?.seq ?? null)).size).toBeLessThanOrEqual(2);
    expect(a.segments().reduce((n, s) => n + s.rows, 0)).toBe(87);
    expect(a.segments().length).toBeLessThanOrEqual(4);
    await a.close();
  });

  it('opens only with the key it was begun with', async () => {
    await (await Archive.open({ dir: dir.path, key, retentionDays: 90, fsyncIntervalMs: 5 })).close();
    await expect(Archive.open({ dir: dir.path, key: generateKeyPairSync('ed25519').privateKey, retentionDays: 90, fsyncIntervalMs: 5 })).rejects.toThrow(/was begun with another signing key/);
  });
});
