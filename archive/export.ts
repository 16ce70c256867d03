// The evidence package: one file (POSIX tar, readable with `tar -xf` or any
// archive tool) that a recipient can check with the archive's public key
// alone (README "What the evidence package proves"):
//   statement.json  what was asked, by whom, when; the SHA-256 of every other
//                   file; how rows are hashed; the chain head
//   statement.sig   Ed25519 signature (the archive's key) of the SHA-256 of
//                   statement.json's bytes, base64
//   rows.json       the rows exactly as the archive holds them (raw_bytes as base64)
//   rows.csv        the same rows for spreadsheets: a text cell beginning
//                   with = + - @ TAB or CR gets a ' in front (OWASP CSV injection)
//   proofs.json     per row: its hash and its inclusion proof in a sealed
//                   segment's Merkle tree (merkle.ts), or "whole file" for a
//                   segment sealed before roots were kept (the file is in
//                   segments/), or "unsealed" (still in the write-ahead log)
//   manifest.jsonl  the signed manifest entries from the oldest segment the
//                   rows came from to the head, contiguous
//   segments/       segment files sealed before Merkle roots (their rows' proof)
//   verify.mjs, README-en.md, README-th.md   the verifier (archive/verifier/)
// Its own SHA-256 is printed and journalled.
import { createHash, sign, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { COLUMNS, type TrafficRecord } from './record.ts';
import type { QueryResult, ArchiveQuery } from './query.ts';
import type { Entry, SegmentEntry } from './manifest.ts';
import type { VerifyResult } from './verify.ts';
import { duck } from './archive.ts';
import { inclusionProofs, rowHash, ROW_HASH_VERSION, segmentLeaves } from './merkle.ts';

/** A ustar header for `name` (at most 100 bytes: the package's names are short). */
function tarHeader(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`${name}: a name longer than 100 bytes does not fit a tar header`);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write(Math.floor(mtime / 1000).toString(8).padStart(11, '0') + '\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

const tarPad = (size: number) => Buffer.alloc((512 - (size % 512)) % 512);

/** First characters a spreadsheet takes for a formula (or that hide one): OWASP's list. */
const FORMULA_START = /^[=+\-@\t\r]/;

/** A text cell as a spreadsheet must not run it: a ' in front when it begins like a formula. */
export function neutralise(s: string): string {
  return FORMULA_START.test(s) ? `'${s}` : s;
}

const csvCell = (v: unknown) => {
  if (v === null || v === undefined) return '';
  // Our own numbers are numbers; text (and bytes, as base64) came from the network.
  if (typeof v === 'number') return String(v);
  const s = v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.length).toString('base64') : neutralise(String(v));
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/**
 * Rows as CSV for spreadsheets, with a BOM (Excel reads the Thai); times
 * also as ISO-8601 in UTC and in Asia/Bangkok. A text cell that begins
 * with = + - @ TAB or CR is prefixed with ' (it would otherwise run as a
 * formula: `=HYPERLINK(...)` in a URL or a user name); raw_bytes is base64.
 * rows.json keeps every value exactly.
 */
export function rowsCsv(rows: readonly TrafficRecord[]): string {
  const cols = COLUMNS.map(([c]) => c);
  const iso = (ms: number | null, offset: number) => (ms === null ? '' : new Date(ms + offset).toISOString().replace('Z', offset ? '+07:00' : 'Z'));
  // A sampled flow's packets and bytes also times its 1-in-N rate (as nfdump shows them); as received when unsampled.
  const scaled = (v: number | null, sampling: number | null) => (v === null ? null : v * (sampling ?? 1));
  const lines = [[...cols, 'recv_utc', 'recv_bangkok', 'dev_utc', 'dev_bangkok', 'packets_scaled', 'bytes_scaled'].join(',')];
  for (const r of rows) lines.push([...cols.map((c) => csvCell(r[c])), iso(r.recv_ms, 0), iso(r.recv_ms, 7 * 3_600_000), iso(r.dev_ms, 0), iso(r.dev_ms, 7 * 3_600_000), csvCell(scaled(r.packets, r.sampling)), csvCell(scaled(r.bytes, r.sampling))].join(','));
  return '\ufeff' + lines.join('\r\n') + '\r\n';
}

/**
 * A row with its bytes (raw_bytes) as base64 text, for JSON. Converted
 * before JSON.stringify: a replacer sees a Buffer only after its toJSON
 * has made it {type:'Buffer',data:[…]}, which the verifier refuses.
 */
export function jsonRow(r: TrafficRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { ...r };
  for (const [k, v] of Object.entries(out)) if (v instanceof Uint8Array) out[k] = Buffer.from(v.buffer, v.byteOffset, v.length).toString('base64');
  return out;
}

/** Rows as rows.json: every value as the archive holds it; bytes (raw_bytes) as base64 text. */
export function rowsJson(rows: readonly TrafficRecord[]): string {
  return JSON.stringify(rows.map(jsonRow), null, 1) + '\n';
}

export interface EvidenceInput {
  query: ArchiveQuery;
  result: QueryResult;
  auditor: string;
  /** The order or letter the export answers (หนังสือ/คำสั่ง). */
  reference: string;
  verify: VerifyResult;
  manifest: readonly Entry[];
  area: string;
  at?: number;
  /** The archive's folder (its segments are read for the rows' proofs) and signing key (the statement is signed). */
  dir?: string;
  key?: KeyObject | null;
}

export class EvidenceError extends Error {}

/** One row's proof in proofs.json. */
export type RowProof =
  | { row: number; row_hash: string; proof: 'merkle'; segment: string; seq: number; index: number; tree_size: number; path: string[] }
  | { row: number; row_hash: string; proof: 'whole-file'; segment: string; seq: number; file: string }
  | { row: number; row_hash: string; proof: 'unsealed' };

const VERIFIER = ['verify.mjs', 'README-en.md', 'README-th.md'] as const;

/**
 * Each row's proof: the row's hash is looked up among the hashes of the
 * segments the query read it from (identical rows share a hash; any of
 * them proves it). A row in none of them came from the write-ahead log.
 */
async function proofsOf(dir: string, rows: readonly TrafficRecord[], segments: readonly SegmentEntry[], walRows: readonly boolean[]): Promise<RowProof[]> {
  const hashes = rows.map((r) => rowHash(r as unknown as Record<string, unknown>));
  const proofs: (RowProof | null)[] = rows.map(() => null);
  if (segments.length > 0) {
    const db = await duck(1, join(dir, 'tmp', `export-${process.pid}`));
    try {
      for (const s of segments) {
        let leaves: Buffer;
        try {
          leaves = await segmentLeaves(db.con, join(dir, 'segments', s.file), s.layout ?? 1, s.rows);
        } catch (err) {
          throw new EvidenceError(`segment ${s.file} (entry ${s.seq}) could not be read for the rows' proofs: ${(err as Error).message} (merged or purged meanwhile? export again; else run klaiwatch archive verify)`);
        }
        // The rows still without a proof, by hash (a segment may hold millions of rows: only these are looked for).
        const open = new Map<string, number[]>();
        hashes.forEach((h, row) => {
          if (proofs[row]) return;
          const k = h.toString('hex');
          open.set(k, [...(open.get(k) ?? []), row]);
        });
        const wanted = new Map<number, number>();
        for (let i = 0; i < leaves.length / 32 && open.size > 0; i++) {
          const k = leaves.toString('hex', i * 32, i * 32 + 32);
          const rowsOfIt = open.get(k);
          if (!rowsOfIt) continue;
          open.delete(k);
          for (const row of rowsOfIt) {
            wanted.set(row, i);
            proofs[row] = { row, row_hash: k, proof: 'unsealed' }; // placeholder, filled below
          }
        }
        if (s.merkle_root) {
          const paths = inclusionProofs(leaves, [...new Set(wanted.values())], true);
          for (const [row, i] of wanted) proofs[row] = { row, row_hash: hashes[row]!.toString('hex'), proof: 'merkle', segment: s.file, seq: s.seq, index: i, tree_size: s.rows, path: paths.get(i)! };
        } else for (const [row] of wanted) proofs[row] = { row, row_hash: hashes[row]!.toString('hex'), proof: 'whole-file', segment: s.file, seq: s.seq, file: `segments/${s.file}` };
      }
    } finally {
      db.close();
    }
  }
  // Only a row the query read from the write-ahead log may go without a proof.
  const row = proofs.findIndex((p, i) => p === null && walRows[i] !== true);
  if (row >= 0) throw new EvidenceError(`row ${row} of the answer came from a segment but matches no row of it: the package was not made (run klaiwatch archive verify)`);
  return proofs.map((p, row) => p ?? { row, row_hash: hashes[row]!.toString('hex'), proof: 'unsealed' });
}

export async function writeEvidence(path: string, e: EvidenceInput): Promise<{ sha256: string; bytes: number }> {
  if (!e.key || !e.dir) throw new EvidenceError("the evidence package is signed with the archive's key: export needs the signing key and the archive's folder");
  const at = e.at ?? Date.now();
  const head = e.manifest.at(-1);
  if (!head) throw new EvidenceError('the manifest is empty: nothing vouches for the archive');
  const bySeq = new Map(e.manifest.map((x) => [x.seq, x]));
  const used = e.result.segments.map((s) => {
    const entry = bySeq.get(s.seq);
    if (!entry || entry.type !== 'segment' || entry.file !== s.file) throw new EvidenceError(`segment ${s.file}: its entry ${s.seq} is not in the manifest read`);
    return entry;
  });
  const proofs = await proofsOf(e.dir, e.result.rows, used, e.result.walRows);
  // The newest seal goes into the package: the verifier checks that no row marked unsealed was received at or before it.
  const newestSeal = e.manifest.filter((x): x is SegmentEntry => x.type === 'segment').reduce<SegmentEntry | null>((a, x) => (a === null || x.last_recv > a.last_recv ? x : a), null);
  const late = proofs.find((p) => p.proof === 'unsealed' && newestSeal !== null && e.result.rows[p.row]!.recv_ms <= newestSeal.last_recv);
  if (late && newestSeal) throw new EvidenceError(`row ${late.row} of the answer is still in the write-ahead log but was received (${new Date(e.result.rows[late.row]!.recv_ms).toISOString()}) before the newest seal's last record (segment ${newestSeal.file}, ${new Date(newestSeal.last_recv).toISOString()}): the package's verifier would refuse it; export again after the next seal`);
  const wholeFiles = used.filter((s) => !s.merkle_root && proofs.some((p) => p.proof === 'whole-file' && p.seq === s.seq));
  // Contiguous, from the oldest segment's entry to the head: each link checks with the public key.
  const fromSeq = Math.min(head.seq, ...used.map((s) => s.seq), ...(newestSeal ? [newestSeal.seq] : []));
  const chain = e.manifest.filter((x) => x.seq >= fromSeq);
  const count = (k: RowProof['proof']) => proofs.filter((p) => p.proof === k).length;

  const data = new Map<string, Buffer>([
    ['rows.json', Buffer.from(rowsJson(e.result.rows))],
    ['rows.csv', Buffer.from(rowsCsv(e.result.rows))],
    ['proofs.json', Buffer.from(JSON.stringify({ rows: proofs }, null, 1) + '\n')],
    ['manifest.jsonl', Buffer.from(chain.map((x) => JSON.stringify(x)).join('\n') + '\n')],
  ]);
  for (const f of VERIFIER) data.set(f, await readFile(new URL(`./verifier/${f}`, import.meta.url)));
  const files: Record<string, { sha256: string; bytes: number }> = {};
  for (const [name, d] of data) files[name] = { sha256: createHash('sha256').update(d).digest('hex'), bytes: d.length };
  for (const s of wholeFiles) files[`segments/${s.file}`] = { sha256: s.sha256, bytes: s.bytes };

  const statement = {
    what: 'Evidence package of the klaiwatch traffic-log archive (พ.ร.บ.ว่าด้วยการกระทำความผิดเกี่ยวกับคอมพิวเตอร์ พ.ศ. 2550 แก้ไข พ.ศ. 2560 มาตรา 26)',
    format: 2,
    area: e.area,
    made_at_utc: new Date(at).toISOString(),
    made_at_bangkok: new Date(at + 7 * 3_600_000).toISOString().replace('Z', '+07:00'),
    made_by: e.auditor,
    host: hostname(),
    reference: e.reference,
    query: e.query,
    rows: e.result.rows.length,
    rows_proven_by_merkle_proof: count('merkle'),
    rows_proven_by_whole_segment_file: count('whole-file'),
    rows_from_unsealed_log: count('unsealed'),
    missing_segments:
      e.result.missing.length === 0
        ? 'none'
        : { files: e.result.missing, note: `${e.result.missing.length} segment files the manifest lists were missing when the package was made and were skipped: rows of theirs that match the query are not in this package (klaiwatch archive verify names the fault)` },
    segments: used.map((s) => ({ file: s.file, seq: s.seq, sha256: s.sha256, rows_in_segment: s.rows, merkle_root: s.merkle_root ?? null, rows_here: proofs.filter((p) => p.proof !== 'unsealed' && p.seq === s.seq).length, included: wholeFiles.includes(s) ? `segments/${s.file}` : null })),
    chain: { from_seq: fromSeq, head: { seq: head.seq, hash: head.hash } },
    archive_public_key: e.verify.publicKey,
    verification: { ok: e.verify.ok, faults: e.verify.faults, entries: e.verify.entries, segments: e.verify.segments },
    files,
    row_hash: {
      version: ROW_HASH_VERSION,
      definition:
        'row hash = SHA-256(0x00 || canonical bytes). Canonical bytes: for each column whose value is not null, in ascending byte order of the column names: an integer column as <name>":i:"<decimal>"\\n"; a text column as <name>":s:"<UTF-8 byte length>":"<UTF-8 bytes>"\\n"; a bytes column (base64 in rows.json) as <name>":b:"<byte length>":"<bytes>"\\n". Every column counts, flags included.',
      bytes_columns: COLUMNS.filter(([, t]) => t === 'BLOB').map(([c]) => c),
      merkle_tree: 'RFC 6962 (RFC 9162 2.1): leaves are the row hashes in the order the segment file stores its rows; an inner node is SHA-256(0x01 || left || right). Each sealed or merged segment\'s root is in its signed manifest entry (merkle_root); proofs.json holds each row\'s audit path.',
    },
    unsealed_rows:
      count('unsealed') === 0
        ? 'none: every row is in a sealed segment'
        : `${count('unsealed')} rows were still in the write-ahead log (not yet sealed into a segment) when the package was made: nothing signed vouches for them yet; they carry no proof (proof "unsealed" in proofs.json), and only the archive's file system protected them until their seal. The only check on them: each was received after the newest seal in manifest.jsonl (its last_recv), as a row not yet sealed must be.`,
    whole_segment_files:
      wholeFiles.length === 0
        ? 'none'
        : `${wholeFiles.length} segments were sealed before Merkle roots were kept: their files are included in segments/ whole; the SHA-256 of each is in its signed manifest entry. verify.mjs checks the file; that a row is in it is checked by reading the Parquet file (README-en.md says how).`,
    csv:
      "rows.csv is for spreadsheets: a text cell that begins with =, +, -, @, TAB or CR has a single quote (') put in front of it, so that a spreadsheet shows it rather than runs it as a formula (OWASP, CSV injection); raw_bytes is base64. rows.json holds every value exactly as archived, and is what the row hashes are computed from.",
    time_zone:
      "recv_ms, dev_ms, start_ms and end_ms are milliseconds since 1970-01-01 UTC. recv_ms is when klaiwatch received the record (its clock is kept to NTP; each segment records the measured offset). dev_ms is the sending device's own time for it, converted to UTC; where the device wrote no zone, +07:00 (Asia/Bangkok) was assumed. The CSV adds both times in UTC and in Asia/Bangkok (UTC+07:00, no daylight saving).",
    how_to_check:
      'Unpack the package and run: node verify.mjs --public-key <the archive\'s public key, as given to you apart from this package> (Node.js 18 or later, nothing else). It checks this statement\'s signature, every file\'s SHA-256 against this statement, every row\'s hash and its proof against its segment\'s Merkle root, and every manifest entry\'s hash, signature and link up to the head. README-en.md and README-th.md say what each failure means.',
  };
  const st = Buffer.from(JSON.stringify(statement, null, 2) + '\n');
  const sig = Buffer.from(sign(null, createHash('sha256').update(st).digest(), e.key).toString('base64') + '\n');

  // Written as it goes (a whole segment file may be large); its SHA-256 as it is written.
  const tarHash = createHash('sha256');
  let bytes = 0;
  const fh = await open(path, 'wx', 0o640);
  const put = async (b: Buffer) => {
    tarHash.update(b);
    bytes += b.length;
    await fh.write(b);
  };
  try {
    for (const [name, d] of [['statement.json', st], ['statement.sig', sig], ...data] as [string, Buffer][]) {
      await put(tarHeader(name, d.length, at));
      await put(d);
      await put(tarPad(d.length));
    }
    for (const s of wholeFiles) {
      const p = join(e.dir, 'segments', s.file);
      const size = (await stat(p)).size;
      if (size !== s.bytes) throw new EvidenceError(`segment ${s.file} (entry ${s.seq}): ${size} bytes, its entry says ${s.bytes} (run klaiwatch archive verify)`);
      await put(tarHeader(`segments/${s.file}`, size, at));
      const h = createHash('sha256');
      for await (const chunk of createReadStream(p)) {
        h.update(chunk as Buffer);
        await put(chunk as Buffer);
      }
      if (h.digest('hex') !== s.sha256) throw new EvidenceError(`segment ${s.file} (entry ${s.seq}) does not match its SHA-256 in the manifest (run klaiwatch archive verify)`);
      await put(tarPad(size));
    }
    await put(Buffer.alloc(1024));
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(path, { force: true });
    throw err;
  }
  await fh.close();
  return { sha256: tarHash.digest('hex'), bytes };
}
