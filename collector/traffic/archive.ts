// The traffic archive on disk:
//   DIR/wal/current.wal          records as they arrive (write-ahead log)
//   DIR/wal/sealing-*.wal        a log being turned into a segment
//   DIR/segments/seg-*.parquet   sealed segments: zstd Parquet, never rewritten
//   DIR/manifest.jsonl           the hash-chained, signed list of what happened
//
// Sealing (hourly, or every N records): the current log is closed under a
// new name, its records are written, sorted by source address and time, as
// one Parquet segment through DuckDB; the file is fsynced and renamed into
// place, its SHA-256 goes into the manifest, and only then is the log
// removed. A crash at any step leaves either the log or the segment and its
// entry; opening the archive finishes the work.
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { BINARY_MAGIC, COLUMNS, decodeRecords, type TrafficRecord } from './record.ts';
import { Wal, walPayloads } from './wal.ts';
import { Manifest, type SegmentEntry } from './manifest.ts';

export interface ArchiveOptions {
  dir: string;
  key: KeyObject;
  retentionDays: number;
  fsyncIntervalMs: number;
  /** The collector's measured clock offset (ms), recorded with each segment. */
  clockOffset?: () => number | null;
  /** Seal on this thread instead of a worker (tools that do nothing else meanwhile). */
  sealInProcess?: boolean;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * The staging table records are appended to: BIGINT columns staged as
 * DOUBLE (exact for milliseconds and byte counts below 2^53), because the
 * appender takes a JavaScript number as a DOUBLE four times faster than it
 * takes a BigInt; the COPY casts them back.
 */
export const STAGING_COLUMNS = COLUMNS.map(([c, t]) => `"${c}" ${t === 'BIGINT' ? 'DOUBLE' : t}`).join(', ');
/** SELECT list that turns staged rows into the archive's types. */
export const TYPED_SELECT = COLUMNS.map(([c, t]) => (t === 'BIGINT' ? `CAST("${c}" AS BIGINT) AS "${c}"` : `"${c}"`)).join(', ');

const NAMES = COLUMNS.map(([c]) => c);
const TYPES = COLUMNS.map(([, t]) => t);
const EXPORTER = NAMES.indexOf('exporter');

/**
 * Appends one write-ahead log frame straight from its bytes (the binary
 * layout of record.ts encodeRecords), without making objects: what a seal
 * spends its time on. Calls `seen(recvMs, exporter)` per row.
 */
export function appendFrame(app: Awaited<ReturnType<DuckDBConnection['createAppender']>>, payload: Buffer, seen?: (recvMs: number, exporter: string) => void): number {
  if (payload[0] !== BINARY_MAGIC) {
    const records = decodeRecords(payload);
    appendRecords(app, records);
    if (seen) for (const r of records) seen(r.recv_ms, r.exporter);
    return records.length;
  }
  let o = 1;
  const count = payload.readUInt32LE(o);
  o += 4;
  for (let k = 0; k < count; k++) {
    const map = payload.readUInt32LE(o);
    o += 4;
    let recv = 0;
    let exporter = '';
    for (let i = 0; i < TYPES.length; i++) {
      if (!(map & (1 << i))) {
        app.appendNull();
        continue;
      }
      const t = TYPES[i];
      if (t === 'BIGINT') {
        const v = payload.readDoubleLE(o);
        if (i === 0) recv = v;
        app.appendDouble(v);
        o += 8;
      } else if (t === 'INTEGER') {
        app.appendInteger(payload.readInt32LE(o));
        o += 4;
      } else if (t === 'SMALLINT') {
        app.appendSmallInt(payload.readInt16LE(o));
        o += 2;
      } else {
        const n = payload.readUInt32LE(o);
        const v = payload.toString('utf8', o + 4, o + 4 + n);
        if (i === EXPORTER) exporter = v;
        app.appendVarchar(v);
        o += 4 + n;
      }
    }
    app.endRow();
    seen?.(recv, exporter);
  }
  return count;
}

export function appendRecords(app: Awaited<ReturnType<DuckDBConnection['createAppender']>>, records: readonly TrafficRecord[]): void {
  for (const r of records) {
    for (let i = 0; i < NAMES.length; i++) {
      const v = r[NAMES[i]!];
      if (v === null || v === undefined) app.appendNull();
      else if (TYPES[i] === 'BIGINT') app.appendDouble(v as number);
      else if (TYPES[i] === 'INTEGER') app.appendInteger(v as number);
      else if (TYPES[i] === 'SMALLINT') app.appendSmallInt(v as number);
      else app.appendVarchar(v as string);
    }
    app.endRow();
  }
}

/** A fresh in-memory DuckDB connection with the archive's table shape. */
export async function duck(): Promise<{ con: DuckDBConnection; close(): void }> {
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const con = await inst.connect();
  return {
    con,
    close: () => {
      con.closeSync();
      inst.closeSync();
    },
  };
}

export interface WrittenSegment {
  name: string;
  rows: number;
  first: number;
  last: number;
  exporters: string[];
}

/**
 * Reads a write-ahead log file frame by frame into DuckDB (a seal of
 * millions of records never holds them as JavaScript objects) and writes
 * them, sorted by source address and time, as zstd Parquet to
 * `.tmp-<name>` in `segmentDir`; null when the file held nothing.
 */
export async function writeSegment(walFile: string, segmentDir: string, seq: number): Promise<WrittenSegment | null> {
  let first = Infinity;
  let last = -Infinity;
  let rows = 0;
  const exporters = new Set<string>();
  const db = await duck();
  try {
    await db.con.run(`CREATE TABLE s (${STAGING_COLUMNS})`);
    const app = await db.con.createAppender('s');
    const seen = (recv: number, exporter: string) => {
      if (recv < first) first = recv;
      if (recv > last) last = recv;
      exporters.add(exporter);
    };
    for await (const payload of walPayloads(walFile)) rows += appendFrame(app, payload, seen);
    app.closeSync();
    if (rows === 0) return null;
    const name = `seg-${String(seq).padStart(6, '0')}-${new Date(first).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.parquet`;
    const tmp = join(segmentDir, `.tmp-${name}`);
    await db.con.run(`COPY (SELECT ${TYPED_SELECT} FROM s ORDER BY src_ip, recv_ms) TO '${tmp.replace(/'/g, "''")}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 100000)`);
    return { name, rows, first, last, exporters: [...exporters].sort() };
  } finally {
    db.close();
  }
}

/**
 * writeSegment in a worker thread: a seal's appending is synchronous
 * JavaScript, seconds of it for an hour of an area's flows, and on the main
 * thread it would keep the receivers from reading their sockets.
 */
export function writeSegmentInWorker(walFile: string, segmentDir: string, seq: number): Promise<WrittenSegment | null> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./seal-worker.ts', import.meta.url), { workerData: { walFile, segmentDir, seq } });
    w.once('message', (m: { ok: true; result: WrittenSegment | null } | { ok: false; error: string }) => (m.ok ? resolve(m.result) : reject(new Error(m.error))));
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the seal worker exited with ${code}`));
    });
  });
}

export class Archive {
  readonly walDir: string;
  readonly segmentDir: string;
  private sealing: Promise<SegmentEntry | null> = Promise.resolve(null);
  private nextSeal: Promise<SegmentEntry | null> | undefined;

  readonly o: ArchiveOptions;
  readonly wal: Wal;
  readonly manifest: Manifest;

  private constructor(o: ArchiveOptions, wal: Wal, manifest: Manifest) {
    this.o = o;
    this.wal = wal;
    this.manifest = manifest;
    this.walDir = join(o.dir, 'wal');
    this.segmentDir = join(o.dir, 'segments');
  }

  static async open(o: ArchiveOptions): Promise<Archive> {
    await mkdir(join(o.dir, 'segments'), { recursive: true });
    const manifest = await Manifest.open(join(o.dir, 'manifest.jsonl'), o.key, o.retentionDays);
    const wal = await Wal.open(join(o.dir, 'wal'), o.fsyncIntervalMs);
    const a = new Archive(o, wal, manifest);
    await a.finishInterruptedSeals();
    return a;
  }

  append(records: readonly TrafficRecord[]): Promise<void> {
    return this.wal.append(records);
  }

  segments(): SegmentEntry[] {
    const purged = new Set(this.manifest.entries.flatMap((e) => (e.type === 'purge' ? e.files : [])));
    return this.manifest.entries.filter((e): e is SegmentEntry => e.type === 'segment' && !purged.has(e.file));
  }

  /**
   * Seals what the log holds into a segment; null when it held nothing. One
   * seal at a time; a request made while one waits to start joins it (a
   * burst that asks for a seal every few thousand records would otherwise
   * queue thousands of them).
   */
  seal(): Promise<SegmentEntry | null> {
    if (this.nextSeal) return this.nextSeal;
    const next = this.sealing.then(async () => {
      this.nextSeal = undefined;
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      const walFile = await this.wal.rotate(`${stamp}-${process.pid}`);
      return this.sealFile(walFile);
    });
    this.nextSeal = next;
    this.sealing = next.catch(() => null);
    return next;
  }

  private async sealFile(walFile: string): Promise<SegmentEntry | null> {
    if ((await stat(walFile)).size === 0) {
      await unlink(walFile);
      return null;
    }
    const seq = this.manifest.entries.filter((e) => e.type === 'segment').length + 1;
    const written = this.o.sealInProcess ? await writeSegment(walFile, this.segmentDir, seq) : await writeSegmentInWorker(walFile, this.segmentDir, seq);
    if (!written) {
      await unlink(walFile);
      return null;
    }
    const { name, rows, first, last, exporters } = written;
    const tmp = join(this.segmentDir, `.tmp-${name}`);
    const final = join(this.segmentDir, name);
    const fh = await open(tmp, 'r');
    await fh.sync();
    await fh.close();
    await rename(tmp, final);
    await syncDir(this.segmentDir);
    const { size } = await stat(final);
    const entry = await this.manifest.append<SegmentEntry>({
      type: 'segment',
      by: 'klaiwatch',
      file: name,
      sha256: await sha256File(final),
      bytes: size,
      rows,
      first_recv: first,
      last_recv: last,
      clock_offset_ms: this.o.clockOffset?.() ?? null,
      exporters,
      wal: basename(walFile),
      wal_inode: (await stat(walFile)).ino,
    });
    await unlink(walFile);
    return entry;
  }

  private async finishInterruptedSeals(): Promise<void> {
    for (const f of await Wal.files(this.walDir)) {
      if (!basename(f).startsWith('sealing-')) continue;
      const done = this.manifest.entries.some((e) => e.type === 'segment' && e.wal === basename(f));
      if (done) await unlink(f);
      else await this.sealFile(f);
    }
    for (const n of await readdir(this.segmentDir)) if (n.startsWith('.tmp-')) await rm(join(this.segmentDir, n));
  }

  async close(): Promise<void> {
    await this.sealing.catch(() => null);
    await this.wal.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export type { DuckDBValue };
