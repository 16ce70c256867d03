// The evidence package: one file (POSIX tar, readable with `tar -xf` or any
// archive tool) holding the rows (CSV and JSON), the question asked, who
// asked it and when, the segments the rows came from with their SHA-256 and
// chain positions, the manifest entries that vouch for them (signed; with the
// archive's public key anyone can check them), the verification result, and
// a statement of the time zone. Its own SHA-256 is printed and journalled.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { COLUMNS, type TrafficRecord } from './record.ts';
import type { QueryResult, ArchiveQuery } from './query.ts';
import type { Entry } from './manifest.ts';
import type { VerifyResult } from './verify.ts';

function tarEntry(name: string, data: Buffer, mtime: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write(Math.floor(mtime / 1000).toString(8).padStart(11, '0') + '\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}

const csvCell = (v: unknown) => {
  if (v === null || v === undefined) return '';
  // raw_bytes (a message that was not UTF-8): its bytes as base64.
  const s = v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.length).toString('base64') : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** A sampled flow's packets or bytes times its 1-in-N rate (as nfdump shows them); as received when unsampled. */
const scaled = (v: number | null, sampling: number | null) => (v === null ? null : v * (sampling ?? 1));

/** Rows as CSV with a BOM (Excel reads the Thai); times also as ISO-8601 in UTC and in Asia/Bangkok; packets and bytes also scaled by the sampling rate. */
export function rowsCsv(rows: readonly TrafficRecord[]): string {
  const cols = COLUMNS.map(([c]) => c);
  const iso = (ms: number | null, offset: number) => (ms === null ? '' : new Date(ms + offset).toISOString().replace('Z', offset ? '+07:00' : 'Z'));
  const lines = [[...cols, 'recv_utc', 'recv_bangkok', 'dev_utc', 'dev_bangkok', 'packets_scaled', 'bytes_scaled'].join(',')];
  for (const r of rows) lines.push([...cols.map((c) => csvCell(r[c])), iso(r.recv_ms, 0), iso(r.recv_ms, 7 * 3_600_000), iso(r.dev_ms, 0), iso(r.dev_ms, 7 * 3_600_000), csvCell(scaled(r.packets, r.sampling)), csvCell(scaled(r.bytes, r.sampling))].join(','));
  return '\ufeff' + lines.join('\r\n') + '\r\n';
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
}

export async function writeEvidence(path: string, e: EvidenceInput): Promise<{ sha256: string; bytes: number }> {
  const at = e.at ?? Date.now();
  const seqs = new Set(e.result.segments.map((s) => s.seq));
  const vouching = e.manifest.filter((x) => x.seq === 0 || seqs.has(x.seq) || x === e.manifest.at(-1));
  const statement = {
    what: 'Evidence package of the klaiwatch traffic-log archive (พ.ร.บ.ว่าด้วยการกระทำความผิดเกี่ยวกับคอมพิวเตอร์ พ.ศ. 2550 แก้ไข พ.ศ. 2560 มาตรา 26)',
    area: e.area,
    made_at_utc: new Date(at).toISOString(),
    made_at_bangkok: new Date(at + 7 * 3_600_000).toISOString().replace('Z', '+07:00'),
    made_by: e.auditor,
    host: hostname(),
    reference: e.reference,
    query: e.query,
    rows: e.result.rows.length,
    rows_from_unsealed_log: e.result.fromWal,
    segments: e.result.segments,
    chain_head: e.verify.head,
    archive_public_key: e.verify.publicKey,
    verification: { ok: e.verify.ok, faults: e.verify.faults, entries: e.verify.entries, segments: e.verify.segments },
    time_zone:
      'recv_ms, dev_ms, start_ms and end_ms are milliseconds since 1970-01-01 UTC. recv_ms is when klaiwatch received the record (its clock is kept to NTP; each segment records the measured offset). dev_ms is the sending device\'s own time for it, converted to UTC; where the device wrote no zone, +07:00 (Asia/Bangkok) was assumed. The CSV adds both times in UTC and in Asia/Bangkok (UTC+07:00, no daylight saving).',
    how_to_check:
      'Each segment listed is a Parquet file in the archive whose SHA-256 must equal the one given; manifest.jsonl here holds the signed entries that record those hashes (Ed25519 over the SHA-256 of each entry without hash and sig, chained by prev); `klaiwatch archive verify` on the archive rechecks everything. Rows from the unsealed log were not yet in a segment when the package was made.',
  };
  const files: [string, Buffer][] = [
    ['statement.json', Buffer.from(JSON.stringify(statement, null, 2) + '\n')],
    ['rows.csv', Buffer.from(rowsCsv(e.result.rows))],
    ['rows.json', Buffer.from(JSON.stringify(e.result.rows, null, 1) + '\n')],
    ['manifest.jsonl', Buffer.from(vouching.map((x) => JSON.stringify(x)).join('\n') + '\n')],
  ];
  const tar = Buffer.concat([...files.map(([n, d]) => tarEntry(n, d, at)), Buffer.alloc(1024)]);
  await writeFile(path, tar, { flag: 'wx', mode: 0o640 });
  return { sha256: createHash('sha256').update(tar).digest('hex'), bytes: tar.length };
}
