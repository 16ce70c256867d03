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
import { createReadStream, rmSync } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { keepTail, stamp, Wal, walPayloads, type TornTail } from './wal.ts';
import type { TrafficRecord } from './record.ts';
import { liveSegments, Manifest, type Entry, type MergedSegment, type RecoveryEntry, type SegmentEntry } from './manifest.ts';
import { BLOOM_COLUMNS, BLOOM_KEY, buildBloom } from './bloom.ts';
import { sqlString } from './sql.ts';
import { LAYOUT, LAYOUT_KEY, logical, physical, PHYSICAL, PHYSICAL_ORDER, v4Text } from './layout.ts';
import { Stager } from './stage.ts';
import { segmentMerkleRoot } from './merkle.ts';
import { recordJournalHead } from './journal.ts';

export interface ArchiveOptions {
  dir: string;
  key: KeyObject;
  retentionDays: number;
  fsyncIntervalMs: number;
  /** The collector's measured clock offset (ms), recorded with each segment. */
  clockOffset?: () => number | null;
  /** Seal on this thread instead of a worker (tools that do nothing else meanwhile). */
  sealInProcess?: boolean;
  /** How often a write-ahead log whose writes failed (disk full) tries again (ms; 5 s). */
  walRetryMs?: number;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * A fresh in-memory DuckDB connection (closed with its instance). DuckDB
 * spills to `tempDir` (made 0700, removed on close): a folder inside the
 * archive, never its default `.tmp` in the working directory; without one it
 * does not spill.
 */
export async function duck(threads = 2, tempDir?: string): Promise<{ con: DuckDBConnection; close(): void }> {
  if (tempDir) await mkdir(tempDir, { recursive: true, mode: 0o700 });
  const inst = await DuckDBInstance.create(':memory:', { threads: String(threads), temp_directory: tempDir ?? '' });
  const con = await inst.connect();
  return {
    con,
    close: () => {
      con.closeSync();
      inst.closeSync();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    },
  };
}

export interface WrittenSegment {
  name: string;
  rows: number;
  first: number;
  last: number;
  exporters: string[];
  /** The earliest and latest device time (dev_ms) its records give, or null. */
  firstDev: number | null;
  lastDev: number | null;
  /** The Merkle root over its rows' hashes, in the order the file stores them (merkle.ts). */
  merkleRoot: string;
}

/**
 * The earliest and latest device time (dev_ms) in a segment file of the
 * current layout (dev_ms = recv_ms - dev_off), or null when no record gave
 * one: kept in the segment's entry beside the receive times, so that a
 * query by time finds records of a device whose clock is far off.
 */
export async function deviceTimes(con: DuckDBConnection, path: string): Promise<{ first: number | null; last: number | null }> {
  const r = await con.runAndReadAll(`SELECT min(recv_ms - dev_off)::BIGINT, max(recv_ms - dev_off)::BIGINT FROM read_parquet(${sqlString(path)})`);
  const [[first], [last]] = r.getColumns() as [[bigint | number | null], [bigint | number | null]];
  return { first: first === null || first === undefined ? null : Number(first), last: last === null || last === undefined ? null : Number(last) };
}

export function segmentName(seq: number, first: number): string {
  return `seg-${String(seq).padStart(6, '0')}-${new Date(first).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.parquet`;
}

export { sqlString };

/**
 * Writes the rows of `select` (layout.ts layout 2, already in its order:
 * the reader skips row groups for a source address by their statistics) as
 * one segment file: zstd, with its layout and the address filter of
 * bloom.ts over `addresses` (the destination and NAT addresses it holds) in
 * the footer. A seal writes at zstd level 3 (level 9 takes a quarter longer
 * for 1 % less); a day's merge, which is what stays, at 9.
 */
export async function copySegment(con: DuckDBConnection, select: string, path: string, addresses: readonly string[], level = 9): Promise<void> {
  const bloom = buildBloom(addresses, addresses.length);
  await con.run(
    `COPY (${select}) TO ${sqlString(path)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL ${level}, ROW_GROUP_SIZE 65536, PARQUET_VERSION V2, KV_METADATA {${BLOOM_KEY}: ${sqlString(bloom)}, ${LAYOUT_KEY}: '${LAYOUT}'})`,
  );
  await chmod(path, 0o640); // DuckDB creates it 0666 less the umask
}

/**
 * Segment files (of any layout) as layout-2 rows, in one SELECT, and the
 * destination and NAT addresses they hold: what a merge writes.
 */
export async function segmentRows(con: DuckDBConnection, files: readonly { path: string; layout: number }[]): Promise<{ select: string; addresses: string[] }> {
  const parts: string[] = [];
  const v2 = files.filter((f) => f.layout === LAYOUT).map((f) => sqlString(f.path));
  const cols = PHYSICAL.map(([c]) => `"${c}"`).join(', ');
  if (v2.length > 0) parts.push(`SELECT ${cols} FROM read_parquet([${v2.join(', ')}])`);
  // Older layouts, each read back as COLUMNS by its own logical() and written as the current one.
  for (const layout of new Set(files.map((f) => f.layout).filter((l) => l !== LAYOUT))) {
    const old = files.filter((f) => f.layout === layout).map((f) => sqlString(f.path));
    parts.push(`SELECT ${physical()} FROM (SELECT ${logical(layout)} FROM read_parquet([${old.join(', ')}]${layout === 1 ? ', union_by_name = true' : ''}))`);
  }
  const union = parts.join(' UNION ALL ');
  const found = await con.runAndReadAll(`SELECT DISTINCT a FROM (${BLOOM_COLUMNS.map((c) => `SELECT coalesce(${c}, ${v4Text(c.replace(/_ip$/, '_v4'))}) AS a FROM (${union})`).join(' UNION ALL ')}) WHERE a IS NOT NULL`);
  return { select: `SELECT * FROM (${union}) ORDER BY ${PHYSICAL_ORDER}`, addresses: (found.getColumns()[0] ?? []) as string[] };
}

/**
 * Reads a write-ahead log file frame by frame into DuckDB (stage.ts: a seal
 * of millions of records never holds them as JavaScript objects) and writes
 * them as a segment (layout 2, sorted by source address and time) to
 * `.tmp-<name>` in `segmentDir`; null when the file held nothing.
 */
export async function writeSegment(walFile: string, segmentDir: string, seq: number): Promise<WrittenSegment | null> {
  // One thread: a seal is background work, and its second thread saved only a sixth of its time.
  const db = await duck(1, join(segmentDir, '..', 'tmp', `seal-${seq}-${process.pid}`));
  try {
    const st = await Stager.create(db.con, 's');
    for await (const payload of walPayloads(walFile)) await st.addFrame(payload);
    await st.close();
    if (st.rows === 0) return null;
    const name = segmentName(seq, st.firstRecv);
    await copySegment(db.con, st.segmentSelect, join(segmentDir, `.tmp-${name}`), BLOOM_COLUMNS.flatMap((c) => st.texts(c)), 3);
    const dev = await deviceTimes(db.con, join(segmentDir, `.tmp-${name}`));
    // The rows' hashes as the file stores them (read back: the order is the file's, whatever the sort did with ties).
    const merkle = await segmentMerkleRoot(db.con, join(segmentDir, `.tmp-${name}`), LAYOUT);
    if (merkle.rows !== st.rows) throw new Error(`sealing ${basename(walFile)}: the segment holds ${merkle.rows} records, ${st.rows} were staged`);
    return { name, rows: st.rows, first: st.firstRecv, last: st.lastRecv, exporters: st.exporters(), firstDev: dev.first, lastDev: dev.last, merkleRoot: merkle.root };
  } finally {
    db.close();
  }
}

/**
 * Writes `files` (segments of any layout) as one segment at `out`; returns
 * the records written and their Merkle root (merkle.ts). A merge's DuckDB part, and the background work the
 * worker below runs at nice 10.
 */
export async function writeMerged(files: readonly { path: string; layout: number }[], out: string, workDir: string): Promise<{ rows: number; merkleRoot: string }> {
  const db = await duck(1, workDir);
  try {
    await db.con.run(`SET memory_limit = '512MB'; SET temp_directory = ${sqlString(workDir)}`);
    const { select, addresses } = await segmentRows(db.con, files);
    await copySegment(db.con, select, out, addresses);
    // Read back: the records written, counted as they are hashed in the file's order.
    const merkle = await segmentMerkleRoot(db.con, out, LAYOUT);
    return { rows: merkle.rows, merkleRoot: merkle.root };
  } finally {
    db.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Work the background worker does. */
export type BackgroundJob = { kind: 'seal'; walFile: string; segmentDir: string; seq: number } | { kind: 'merge'; files: { path: string; layout: number }[]; out: string; workDir: string };

/**
 * A seal or a merge in a worker thread at nice 10: a seal's staging is
 * synchronous JavaScript, seconds of it for an hour of an area's flows, and
 * both keep DuckDB busy for seconds; on the receivers' thread, or beside it
 * at the same priority, they would keep it from reading its sockets.
 */
export function inBackground(job: Extract<BackgroundJob, { kind: 'seal' }>): Promise<WrittenSegment | null>;
export function inBackground(job: Extract<BackgroundJob, { kind: 'merge' }>): Promise<{ rows: number; merkleRoot: string }>;
export function inBackground(job: BackgroundJob): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./background-worker.ts', import.meta.url), { workerData: job });
    w.once('message', (m: { ok: true; result: unknown } | { ok: false; error: string }) => (m.ok ? resolve(m.result) : reject(new Error(m.error))));
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the background worker exited with ${code} (${job.kind})`));
    });
  });
}

/** Thailand keeps UTC+7 all year: a local day is a fixed 24 h. */
const BANGKOK_OFFSET_MS = 7 * 3_600_000;
export const localDay = (ms: number) => Math.floor((ms + BANGKOK_OFFSET_MS) / 86_400_000);
/** A merged segment holds at most this many records (DuckDB sorts them in memory, spilling past 512 MB). */
export const MERGE_MAX_ROWS = 5_000_000;

/**
 * What a compaction merges: per local day (Asia/Bangkok), once the day is
 * over, its segments in groups of at most `maxRows` records, oldest first.
 * A group of one is left as it is.
 */
export function planCompaction(segments: readonly SegmentEntry[], now: number, maxRows = MERGE_MAX_ROWS): SegmentEntry[][] {
  const today = localDay(now);
  const byDay = new Map<number, SegmentEntry[]>();
  for (const s of segments) {
    const day = localDay(s.first_recv);
    if (day >= today) continue;
    const list = byDay.get(day) ?? [];
    list.push(s);
    byDay.set(day, list);
  }
  const groups: SegmentEntry[][] = [];
  for (const [, segs] of [...byDay].sort((a, b) => a[0] - b[0])) {
    let group: SegmentEntry[] = [];
    let rows = 0;
    for (const s of segs.sort((a, b) => a.seq - b.seq)) {
      if (group.length > 0 && rows + s.rows > maxRows) {
        groups.push(group);
        group = [];
        rows = 0;
      }
      group.push(s);
      rows += s.rows;
    }
    groups.push(group);
  }
  return groups.filter((g) => g.length >= 2);
}

export interface CompactResult {
  merged: SegmentEntry[];
  /** Groups not merged, each with why (a segment altered or gone). */
  refused: string[];
}

/**
 * Merges each group planCompaction finds, with `merge` (mergeSegments, or
 * Archive.merge to take turns with seals); a refused group does not stop
 * the others.
 */
export async function compactSegments(manifest: Manifest, now: number, maxRows: number, merge: (group: readonly SegmentEntry[]) => Promise<SegmentEntry>): Promise<CompactResult> {
  await manifest.refresh();
  const result: CompactResult = { merged: [], refused: [] };
  for (const group of planCompaction(liveSegments(manifest.entries), now, maxRows)) {
    try {
      result.merged.push(await merge(group));
    } catch (err) {
      result.refused.push((err as Error).message);
    }
  }
  return result;
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
    await mkdir(join(o.dir, 'segments'), { recursive: true, mode: 0o750 });
    const manifest = await Manifest.open(join(o.dir, 'manifest.jsonl'), o.key, o.retentionDays);
    const wal = await Wal.open(join(o.dir, 'wal'), o.fsyncIntervalMs, { retryMs: o.walRetryMs, onTornTail: (t) => recordTornTail(o.dir, manifest, t) });
    const a = new Archive(o, wal, manifest);
    await a.finishInterruptedSeals();
    return a;
  }

  append(records: readonly TrafficRecord[]): Promise<void> {
    return this.wal.append(records);
  }

  segments(): SegmentEntry[] {
    return liveSegments(this.manifest.entries);
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
      const walFile = await this.wal.rotate(`${stamp()}-${process.pid}`);
      // Logs an earlier seal failed on, or the log set aside after a failed write, go too (older first).
      const failed: string[] = [];
      for (const f of await Wal.files(this.walDir)) {
        if (f === walFile || !basename(f).startsWith('sealing-')) continue;
        await this.sealLeftover(f).catch((err: Error) => failed.push(`${basename(f)}: ${err.message}`));
      }
      const entry = await this.sealFile(walFile);
      if (failed.length > 0) throw new Error(`sealed ${basename(walFile)}, but not the older ${failed.join('; ')} (they stay in the write-ahead log; the next seal tries again)`);
      return entry;
    });
    this.nextSeal = next;
    this.sealing = next.catch(() => null);
    return next;
  }

  /**
   * Merges sealed segments into one (a day's hourly seals, so that a query
   * over months opens tens of files, not thousands). Each input's SHA-256 is
   * checked first: nothing altered is carried into a new file under a fresh
   * hash. The new segment's entry names what it was made from; then the
   * inputs are removed. Runs in turn with seals.
   */
  merge(group: readonly SegmentEntry[]): Promise<SegmentEntry> {
    const run = this.sealing.then(() => mergeSegments(this.manifest, this.segmentDir, group, !this.o.sealInProcess));
    this.sealing = run.catch(() => null);
    return run;
  }

  /** Merges each finished day's segments (planCompaction), in turn with seals. */
  compact(now = Date.now(), maxRows = MERGE_MAX_ROWS): Promise<CompactResult> {
    return compactSegments(this.manifest, now, maxRows, (group) => this.merge(group));
  }

  private async sealFile(walFile: string): Promise<SegmentEntry | null> {
    if ((await stat(walFile)).size === 0) {
      await unlink(walFile);
      return null;
    }
    const seq = this.manifest.nextSegmentNumber();
    const written = this.o.sealInProcess ? await writeSegment(walFile, this.segmentDir, seq) : await inBackground({ kind: 'seal', walFile, segmentDir: this.segmentDir, seq });
    if (!written) {
      await unlink(walFile);
      return null;
    }
    const { name, rows, first, last, exporters, firstDev, lastDev, merkleRoot } = written;
    const tmp = join(this.segmentDir, `.tmp-${name}`);
    const final = join(this.segmentDir, name);
    await syncPath(tmp);
    await rename(tmp, final);
    await syncPath(this.segmentDir);
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
      first_dev: firstDev ?? null,
      last_dev: lastDev ?? null,
      clock_offset_ms: this.o.clockOffset?.() ?? null,
      exporters,
      wal: basename(walFile),
      wal_inode: (await stat(walFile)).ino,
      layout: LAYOUT,
      merkle_root: merkleRoot,
    });
    await unlink(walFile);
    // The access journal's head goes into the chain at every seal (when it changed): journal.ts.
    await recordJournalHead(this.o.dir, this.manifest, 'seal').catch(() => undefined);
    return entry;
  }

  private async finishInterruptedSeals(): Promise<void> {
    for (const f of await Wal.files(this.walDir)) if (basename(f).startsWith('sealing-')) await this.sealLeftover(f);
    // A merged segment whose entry was written but whose file still has its
    // temporary name: the merge is finished. Other work files go.
    const listed = new Set(this.manifest.entries.flatMap((e) => (e.type === 'segment' ? [e.file] : [])));
    const names = new Set(await readdir(this.segmentDir));
    for (const n of names) {
      if (!n.startsWith('.tmp-')) continue;
      const file = n.slice('.tmp-'.length);
      if (listed.has(file) && !names.has(file)) await rename(join(this.segmentDir, n), join(this.segmentDir, file));
      else await rm(join(this.segmentDir, n), { recursive: true, force: true });
    }
    await syncPath(this.segmentDir);
    await removeMerged(this.segmentDir, this.manifest.entries);
  }

  /** A log not sealed yet by the seal that closed it: sealed now, or removed if its segment's entry was written before a crash. */
  private async sealLeftover(f: string): Promise<void> {
    const done = this.manifest.entries.some((e) => e.type === 'segment' && e.wal === basename(f));
    if (done) await unlink(f);
    else await this.sealFile(f);
  }

  async close(): Promise<void> {
    await this.sealing.catch(() => null);
    await this.wal.close();
  }
}

/**
 * A write-ahead log's torn tail found when the archive opens: its bytes are
 * kept in DIR/recovered/ and a signed entry says what was cut (bytes,
 * SHA-256, the records its frames name) before the log is cut back. Found
 * again after a crash in between, it is recorded once.
 */
async function recordTornTail(dir: string, manifest: Manifest, t: TornTail): Promise<void> {
  const file = relative(dir, t.path);
  if (manifest.entries.some((e) => e.type === 'recovery' && e.file === file && e.offset === t.offset && e.sha256 === t.sha256)) return;
  const keptDir = join(dir, 'recovered');
  let kept: string | null = join('recovered', `${basename(t.path)}.torn-${stamp()}-at-${t.offset}`);
  let note = 'cut when the archive opened: past the last whole frame (a crash mid-write, or damage)';
  try {
    await mkdir(keptDir, { recursive: true, mode: 0o750 });
    await keepTail(t, join(dir, kept));
    await syncPath(keptDir);
  } catch (err) {
    note += `; the bytes could not be kept (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    await rm(join(dir, kept), { force: true }).catch(() => undefined);
    kept = null;
  }
  await manifest.append<RecoveryEntry>({ type: 'recovery', by: 'klaiwatch', file, offset: t.offset, bytes: t.bytes, sha256: t.sha256, records: t.records, counted: t.counted, kept, note });
}

/**
 * Merges sealed segments into one, sorted like a sealed one, with its own
 * address filter. Each input's SHA-256 is checked first (nothing altered is
 * carried into a new file under a fresh hash), the record count after, and
 * the entry is written only if no input was merged or purged meanwhile (by
 * another process). Then the inputs are removed; their entries stay.
 */
export async function mergeSegments(manifest: Manifest, segmentDir: string, group: readonly SegmentEntry[], background = false): Promise<SegmentEntry> {
  if (group.length < 2) throw new Error('a merge needs at least two segments');
  // Checked before the work, and again under the manifest's lock before the entry.
  const stillLive = (entries: readonly Entry[]) => {
    const live = new Set(liveSegments(entries).map((s) => s.file));
    const gone = group.find((s) => !live.has(s.file));
    if (gone) throw new Error(`segment ${gone.file} (entry ${gone.seq}) is no longer in the archive (purged or merged meanwhile); not merged`);
  };
  await manifest.refresh();
  stillLive(manifest.entries);
  for (const s of group) {
    const actual = await sha256File(join(segmentDir, s.file)).catch((err: NodeJS.ErrnoException) => `unreadable (${err.code})`);
    if (actual !== s.sha256) throw new Error(`segment ${s.file} (entry ${s.seq}) does not match the manifest (SHA-256 ${actual}, the manifest says ${s.sha256}); not merged: run klaiwatch archive verify`);
  }
  const rows = group.reduce((n, s) => n + s.rows, 0);
  const first = Math.min(...group.map((s) => s.first_recv));
  const last = Math.max(...group.map((s) => s.last_recv));
  const seq = manifest.nextSegmentNumber();
  const name = segmentName(seq, first);
  const tmp = join(segmentDir, `.tmp-${name}`);
  let merkleRoot: string;
  try {
    const files = group.map((s) => ({ path: join(segmentDir, s.file), layout: s.layout ?? 1 }));
    const workDir = join(segmentDir, `.tmp-duckdb-${process.pid}`);
    const written = background ? await inBackground({ kind: 'merge', files, out: tmp, workDir }) : await writeMerged(files, tmp, workDir);
    if (written.rows !== rows) throw new Error(`merging ${group.map((s) => s.file).join(', ')}: wrote ${written.rows} records, the segments hold ${rows}; not merged`);
    merkleRoot = written.merkleRoot;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // The file keeps its temporary name until its entry is written: a crash
  // before leaves a work file that opening the archive removes, a crash
  // after leaves one it finishes (Archive.open, finishInterruptedSeals).
  const final = join(segmentDir, name);
  await syncPath(tmp);
  // Device times: from the inputs' entries, or from the file when an input's entry is older than them.
  let dev: { first: number | null; last: number | null };
  if (group.every((s) => s.first_dev !== undefined && s.last_dev !== undefined)) {
    const firsts = group.flatMap((s) => (s.first_dev === null || s.first_dev === undefined ? [] : [s.first_dev]));
    const lasts = group.flatMap((s) => (s.last_dev === null || s.last_dev === undefined ? [] : [s.last_dev]));
    dev = { first: firsts.length ? Math.min(...firsts) : null, last: lasts.length ? Math.max(...lasts) : null };
  } else {
    const db = await duck(1);
    try {
      dev = await deviceTimes(db.con, tmp);
    } finally {
      db.close();
    }
  }
  const entry = await manifest.append<SegmentEntry>({
    type: 'segment',
    by: 'klaiwatch',
    file: name,
    sha256: await sha256File(tmp),
    bytes: (await stat(tmp)).size,
    rows,
    first_recv: first,
    last_recv: last,
    first_dev: dev.first,
    last_dev: dev.last,
    clock_offset_ms: null,
    exporters: [...new Set(group.flatMap((s) => s.exporters))].sort(),
    wal: '',
    wal_inode: 0,
    layout: LAYOUT,
    merkle_root: merkleRoot,
    merged_from: group.map((s): MergedSegment => ({ file: s.file, seq: s.seq, sha256: s.sha256, rows: s.rows, clock_offset_ms: s.clock_offset_ms })),
  }, stillLive).catch(async (err: unknown) => {
    await rm(tmp, { force: true });
    throw err;
  });
  await rename(tmp, final);
  await syncPath(segmentDir);
  await removeMerged(segmentDir, [entry]);
  return entry;
}

/** Removes the inputs of merges whose merged file is in place (never the only copy of the records). */
async function removeMerged(segmentDir: string, entries: readonly Entry[]): Promise<void> {
  for (const e of entries) {
    if (e.type !== 'segment' || !e.merged_from) continue;
    if (!(await stat(join(segmentDir, e.file)).then(() => true, () => false))) continue;
    for (const m of e.merged_from) await unlink(join(segmentDir, m.file)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
  }
}

/** fsync of a file or a folder (a folder: so that renames and removals in it last). */
async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export type { DuckDBValue };
