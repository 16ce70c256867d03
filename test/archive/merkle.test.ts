// Row hashes and Merkle roots (archive/merkle.ts): the tree is RFC 6962's
// (checked against its recursive definition), every audit path verifies and
// a changed one does not, DuckDB's row hash (what seals compute) equals the
// JavaScript one (what the verifier computes from rows.json) for hostile
// values, and a real seal and a real merge write the root of the rows their
// file stores. Seeded fast-check; KW_FUZZ_RUNS for longer runs.
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { COLUMNS, emptyRecord, type TrafficRecord } from '../../archive/record.ts';
import { inclusionProofs, merkleRoot, rowHash, rowHashSql, segmentLeaves, segmentMerkleRoot, verifyInclusion } from '../../archive/merkle.ts';
import { Archive, mergeSegments } from '../../archive/archive.ts';
import { logical, LAYOUT } from '../../archive/layout.ts';
import { sqlString } from '../../archive/sql.ts';
import { tempDir } from '../helpers/peers.ts';

const RUNS = Number(process.env.KW_FUZZ_RUNS ?? 100);
const SEED = Number(process.env.KW_FUZZ_SEED ?? 1515);
const dir = tempDir('merkle');
afterAll(() => dir.remove());

const h = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
/** RFC 6962 2.1 MTH, as written there (recursive). */
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return h();
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return h(Buffer.from([1]), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

describe('the Merkle tree', () => {
  it('has RFC 6962\'s root, and every audit path leads to it; a changed path, index or leaf does not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 1e9 }), (n, salt) => {
        const leaves = Array.from({ length: n }, (_, i) => h(Buffer.from([0]), Buffer.from(`${salt}-${i}`)));
        const root = merkleRoot(Buffer.concat(leaves));
        expect(root).toBe(mth(leaves).toString('hex'));
        const paths = inclusionProofs(Buffer.concat(leaves), [...leaves.keys()]);
        for (const [i, path] of paths) {
          expect(verifyInclusion(leaves[i]!, i, n, path, root)).toBe(true);
          if (n > 1) {
            expect(verifyInclusion(leaves[(i + 1) % n]!, i, n, path, root)).toBe(false);
            expect(verifyInclusion(leaves[i]!, (i + 1) % n, n, path, root)).toBe(false);
            const bad = [...path];
            bad[0] = bad[0]!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
            expect(verifyInclusion(leaves[i]!, i, n, bad, root)).toBe(false);
          }
        }
      }),
      { seed: SEED, numRuns: Math.max(20, Math.round(RUNS / 5)) },
    );
  });
});

/** Any value a column of its type may hold, hostile text included (NUL, controls, quotes, Thai, emoji, lone-surrogate-free). */
function arbitraryRow(): fc.Arbitrary<TrafficRecord> {
  const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('=HYPERLINK("x")', '\u0000', 'a\nb\r\n', 'ห้องคอม-01', '😀', '', ':s:3:', '\\x0A'));
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [c, t] of COLUMNS) {
    const v: fc.Arbitrary<unknown> = t === 'BIGINT' ? fc.integer({ min: -(2 ** 47), max: 2 ** 47 }) : t === 'INTEGER' ? fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) : t === 'SMALLINT' ? fc.integer({ min: -32768, max: 32767 }) : t === 'BLOB' ? fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) : text;
    fields[c] = c === 'recv_ms' || c === 'kind' ? v : fc.option(v, { nil: null });
  }
  return fc.record(fields) as unknown as fc.Arbitrary<TrafficRecord>;
}

describe('the row hash', () => {
  it('is the same computed by DuckDB (seals) and by JavaScript (the verifier, from rows.json)', async () => {
    const inst = await DuckDBInstance.create(':memory:', { threads: '1' });
    const con = await inst.connect();
    try {
      await con.run(`CREATE TABLE t (${COLUMNS.map(([c, t]) => `"${c}" ${t}`).join(', ')})`);
      const rows = fc.sample(arbitraryRow(), { seed: SEED, numRuns: RUNS * 3 });
      rows.push(emptyRecord('log', 'syslog', '127.0.0.1', 0), { ...emptyRecord('flow', 'netflow-v5', '127.0.0.1', 2 ** 52), bytes: 2 ** 60 });
      const app = await con.createAppender('t');
      for (const r of rows) {
        for (const [c, t] of COLUMNS) {
          const v = r[c] as unknown;
          if (v === null) app.appendNull();
          else if (t === 'VARCHAR') app.appendVarchar(v as string);
          else if (t === 'BLOB') app.appendBlob(new Uint8Array(v as Buffer));
          else if (t === 'BIGINT') app.appendBigInt(BigInt(v as number));
          else if (t === 'SMALLINT') app.appendSmallInt(v as number);
          else app.appendInteger(v as number);
        }
        app.endRow();
      }
      app.closeSync();
      const sql = (await con.runAndReadAll(`SELECT ${rowHashSql()} FROM t`)).getColumns()[0] as string[];
      // As rows.json carries them: DuckDB's JSON of each row, parsed (bytes as base64, decoded).
      const json = (await con.runAndReadAll(`SELECT to_json({${COLUMNS.map(([c, t]) => `"${c}": ${t === 'BLOB' ? `base64("${c}")` : `"${c}"`}`).join(', ')}}) FROM t`)).getColumns()[0] as string[];
      expect(sql).toHaveLength(rows.length);
      rows.forEach((r, i) => {
        const back = JSON.parse(json[i]!) as Record<string, unknown>;
        for (const [c, t] of COLUMNS) if (t === 'BLOB' && back[c] !== null) back[c] = Buffer.from(back[c] as string, 'base64');
        expect(rowHash(back).toString('hex'), `row ${i}: ${JSON.stringify(r)}`).toBe(sql[i]);
        expect(rowHash(r as unknown as Record<string, unknown>).toString('hex')).toBe(sql[i]);
      });
      // Every column counts: a changed flags (or any other) value changes the hash.
      const base = { ...emptyRecord('log', 'syslog', '127.0.0.1', 1), flags: 1 };
      expect(rowHash({ ...base, flags: 2 }).equals(rowHash(base))).toBe(false);
      expect(rowHash({ ...base, flags: null }).equals(rowHash(base))).toBe(false);
    } finally {
      con.closeSync();
      inst.closeSync();
    }
  }, 60_000);
});

describe('seal and merge', () => {
  it('write the Merkle root of the rows in the order their file stores them, in the signed entry', async () => {
    const a = await Archive.open({ dir: join(dir.path, 'archive'), key: generateKeyPairSync('ed25519').privateKey, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    const t0 = Date.UTC(2026, 5, 1, 1);
    const rec = (i: number, src: string): TrafficRecord => ({ ...emptyRecord('flow', 'netflow-v5', '127.0.0.9', t0 + (i % 7) * 1000), src_ip: src, dst_ip: '1.1.1.1', src_port: 1000 + i, dst_port: 443, proto: 6, bytes: 100 + i, packets: 1, flags: i % 3 === 0 ? null : i });
    // Ties in the sort (same source, same time) on purpose: the root follows the file, whatever order they took.
    await a.append(Array.from({ length: 300 }, (_, i) => rec(i, `10.0.${i % 3}.1`)));
    const s1 = (await a.seal())!;
    await a.append(Array.from({ length: 200 }, (_, i) => rec(i + 1000, `10.0.${i % 5}.2`)));
    const s2 = (await a.seal())!;
    const inst = await DuckDBInstance.create(':memory:', { threads: '1' });
    const con = await inst.connect();
    try {
      /** The root from the file's rows read in order and hashed in JavaScript. */
      const jsRoot = async (file: string) => {
        const texts = (await con.runAndReadAll(`SELECT to_json({${COLUMNS.map(([c, t]) => `"${c}": ${t === 'BLOB' ? `base64("${c}")` : `"${c}"`}`).join(', ')}}) FROM (SELECT ${logical(LAYOUT)} FROM read_parquet(${sqlString(join(a.segmentDir, file))}))`)).getColumns()[0] as string[];
        return merkleRoot(Buffer.concat(texts.map((t) => rowHash(JSON.parse(t)))));
      };
      for (const s of [s1, s2]) {
        expect(s.merkle_root).toBe(await jsRoot(s.file));
        expect((await segmentMerkleRoot(con, join(a.segmentDir, s.file), LAYOUT)).root).toBe(s.merkle_root);
      }
      const m = await mergeSegments(a.manifest, a.segmentDir, [s1, s2]);
      expect(m.rows).toBe(500);
      expect(m.merkle_root).toBe(await jsRoot(m.file));
      expect(m.merkle_root).not.toBe(s1.merkle_root);
      const leaves = await segmentLeaves(con, join(a.segmentDir, m.file), LAYOUT, m.rows);
      expect(merkleRoot(leaves)).toBe(m.merkle_root);
      await expect(segmentLeaves(con, join(a.segmentDir, m.file), LAYOUT, m.rows + 1)).rejects.toThrow(/holds 500 rows, its manifest entry says 501/);
      // As the collector seals: in the background worker thread.
      const b = await Archive.open({ dir: join(dir.path, 'worker'), key: generateKeyPairSync('ed25519').privateKey, retentionDays: 90, fsyncIntervalMs: 5 });
      await b.append(Array.from({ length: 100 }, (_, i) => rec(i, '10.0.9.9')));
      const s3 = (await b.seal())!;
      await b.close();
      expect(s3.merkle_root).toMatch(/^[0-9a-f]{64}$/);
      expect((await segmentMerkleRoot(con, join(b.segmentDir, s3.file), LAYOUT)).root).toBe(s3.merkle_root);
    } finally {
      con.closeSync();
      inst.closeSync();
      await a.close();
    }
  }, 60_000);
});
