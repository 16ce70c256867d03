// Reading the archive: the sealed segments through DuckDB, and the records
// still in the write-ahead log, so the last minutes are never missing from
// an answer. It opens nothing for writing and can run beside the collector.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isIP } from 'node:net';
import { COLUMNS, type TrafficRecord } from './record.ts';
import { Wal, walPayloads } from './wal.ts';
import { goneSegments, liveSegments, type Entry, type SegmentEntry } from './manifest.ts';
import { duck, sha256File, sqlString } from './archive.ts';
import { Stager } from './stage.ts';
import { addressIs, logical } from './layout.ts';
import { BLOOM_COLUMNS, BLOOM_KEY, parseBloom } from './bloom.ts';
import type { DuckDBConnection } from '@duckdb/node-api';

export interface ArchiveQuery {
  /** An address on either side (or the side named), or its NAT translation. */
  ip?: string;
  side?: 'src' | 'dst' | 'either';
  /** The other end (with `ip`: "from this address to that one"). */
  peer?: string;
  /** A port on either side. */
  port?: number;
  proto?: number;
  school?: string;
  user?: string;
  mac?: string;
  /**
   * Time, UTC ms, half-open: a record matches if its event time (the
   * device's, else the receive time) or its receive time falls in it, so a
   * device whose clock is far off is found at the time it was received.
   */
  from?: number;
  to?: number;
  limit?: number;
  /**
   * Rows skipped before the first one given (paging). With it, ties in time
   * are broken by every column, so that pages asked one after another
   * neither overlap nor leave a row out.
   */
  offset?: number;
}

/** Takes a streamed answer's rows as they come (streamArchive), a chunk at a time; `wal[i]`: row i came from the write-ahead log. */
export type RowSink = (rows: TrafficRecord[], wal: boolean[]) => Promise<void> | void;

export interface SourceSegment {
  file: string;
  seq: number;
  sha256: string;
  rows: number;
}

export interface QueryResult {
  rows: TrafficRecord[];
  /** Sealed segments the rows came from, with their hashes and chain positions. */
  segments: SourceSegment[];
  /** Rows that came from the write-ahead log (not yet sealed). */
  fromWal: number;
  /** Per row: whether it came from the write-ahead log (else from a segment in `segments`). */
  walRows: boolean[];
  /**
   * Segment files the manifest lists as live that are not there: skipped,
   * so the answer may lack their rows (`archive verify` names the fault).
   */
  missing: string[];
  /**
   * Segments that gave rows but whose file no longer matches its signed
   * SHA-256: their rows are not evidence. Only segments with rows are
   * hashed (a point query stays cheap).
   */
  altered: string[];
  /** How many segments were read (after pruning by time). */
  segmentsRead: number;
}

export class QueryError extends Error {}

/**
 * Whether a segment may hold records of [from, to): its receive times meet
 * it, or its device times do; a segment whose entry predates device times
 * (no first_dev/last_dev) is always read.
 */
export function segmentMeets(s: SegmentEntry, from: number | undefined, to: number | undefined): boolean {
  const meets = (lo: number, hi: number) => (from === undefined || hi >= from) && (to === undefined || lo < to);
  if (meets(s.first_recv, s.last_recv)) return true;
  if (s.first_dev === undefined || s.last_dev === undefined) return true;
  return s.first_dev !== null && s.last_dev !== null && meets(s.first_dev, s.last_dev);
}

export async function readManifest(dir: string): Promise<Entry[]> {
  const text = await readFile(join(dir, 'manifest.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Entry);
}

export { goneSegments, liveSegments };

function checkAddress(v: string | undefined, what: string): void {
  if (v !== undefined && isIP(v) === 0) throw new QueryError(`${what} ${JSON.stringify(v)} is not an IPv4 or IPv6 address`);
}

/**
 * The conditions of a query. `address` (with `ip`) is the address test,
 * split into one variant per address column ("this column is it, and none
 * before it was"): each tests one column for equality, which DuckDB can push
 * into the Parquet reader (row-group statistics) where an OR across columns
 * cannot be pushed, and the variants exclude each other, so their UNION ALL
 * is the same rows, once. `rest` holds every other condition. Both are SQL
 * over the archive's columns (a segment's own layout rewrites the address
 * test: layout.ts addressIs).
 */
export function whereClause(q: ArchiveQuery): { columns: string[]; rest: string[]; params: (string | number)[] } {
  checkAddress(q.ip, '--ip');
  checkAddress(q.peer, '--peer');
  if (q.port !== undefined && !(Number.isInteger(q.port) && q.port >= 0 && q.port <= 65535)) throw new QueryError(`--port ${q.port} is not a port number (0-65535)`);
  if (q.from !== undefined && q.to !== undefined && q.to <= q.from) throw new QueryError('--to is not after --from');
  const w: string[] = [];
  const p: (string | number)[] = [];
  const arg = (v: string | number) => {
    p.push(v);
    return `$${p.length}`;
  };
  const side = q.side ?? 'either';
  const columns = !q.ip ? [] : side === 'src' ? ['src_ip', 'nat_ip'] : side === 'dst' ? ['dst_ip'] : ['src_ip', 'dst_ip', 'nat_ip'];
  if (q.peer) {
    const b = arg(q.peer);
    w.push(q.ip && side === 'either' ? `(src_ip = ${b} OR dst_ip = ${b})` : q.side === 'dst' ? `src_ip = ${b}` : `dst_ip = ${b}`);
  }
  if (q.port !== undefined) {
    const a = arg(q.port);
    w.push(`(src_port = ${a} OR dst_port = ${a} OR nat_port = ${a})`);
  }
  if (q.proto !== undefined) w.push(`proto = ${arg(q.proto)}`);
  if (q.school) w.push(`school = ${arg(q.school)}`);
  if (q.user) w.push(`"user" = ${arg(q.user)}`);
  if (q.mac) w.push(`mac = ${arg(q.mac.toLowerCase().replace(/-/g, ':'))}`);
  // By either clock: the event time (device's, else receive), or the receive time.
  if (q.from !== undefined || q.to !== undefined) {
    const f = q.from !== undefined ? arg(q.from) : null;
    const t = q.to !== undefined ? arg(q.to) : null;
    const within = (x: string) => [f ? `${x} >= ${f}` : '', t ? `${x} < ${t}` : ''].filter(Boolean).join(' AND ');
    w.push(`((${within('COALESCE(dev_ms, recv_ms)')}) OR (${within('recv_ms')}))`);
  }
  return { columns, rest: w, params: p };
}

/** The address variants of a query for a layout: WHERE conditions, one per column (a single empty one without an address). */
function addressVariants(layout: number, ip: string | undefined, columns: readonly string[]): string[] {
  if (!ip) return [''];
  return columns.map((c, i) => [addressIs(layout, c, ip), ...columns.slice(0, i).map((b) => addressIs(layout, b, ip, true))].join(' AND '));
}

const where = (conds: readonly string[]) => (conds.filter(Boolean).length > 0 ? `WHERE ${conds.filter(Boolean).join(' AND ')}` : '');

/**
 * Runs a query. A segment purged or merged between reading the manifest and
 * reading the file makes DuckDB fail to open it: then the query runs once
 * more on the new manifest.
 */
export async function queryArchive(dir: string, q: ArchiveQuery): Promise<QueryResult> {
  const cond = whereClause(q);
  let r: QueryResult;
  try {
    r = await queryOnce(dir, q, cond);
  } catch (err) {
    if (!/No such file|No files found|Cannot open file/i.test((err as Error).message)) throw err;
    return queryOnce(dir, q, cond);
  }
  // A file missing may have been merged or purged just now: once more on the new manifest.
  return r.missing.length > 0 ? queryOnce(dir, q, cond) : r;
}

/**
 * The same query, its rows handed to `sink` a chunk (about 2,000 rows) at a
 * time as DuckDB gives them, never all held at once: for answers larger than
 * memory (the API's streamed search). The result's `rows` and `walRows` are
 * empty; `count` is how many rows went to the sink. Segment files missing
 * are named (not retried: rows may have gone out already).
 */
export async function streamArchive(dir: string, q: ArchiveQuery, sink: RowSink): Promise<QueryResult & { count: number }> {
  const cond = whereClause(q);
  let count = 0;
  const counting: RowSink = async (rows, wal) => {
    count += rows.length;
    await sink(rows, wal);
  };
  try {
    const r = await queryOnce(dir, q, cond, counting);
    return { ...r, count };
  } catch (err) {
    if (count > 0 || !/No such file|No files found|Cannot open file/i.test((err as Error).message)) throw err;
    const r = await queryOnce(dir, q, cond, counting);
    return { ...r, count };
  }
}

/** Which of these segment files are not in the folder (ENOENT); any other error is the caller's. */
async function missingFiles(dir: string, segs: readonly SegmentEntry[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const s of segs) {
    try {
      await stat(join(dir, 'segments', s.file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      out.add(s.file);
    }
  }
  return out;
}

const FILTERED = new Set<string>(BLOOM_COLUMNS);

/** Segments whose address filter (bloom.ts) may hold `ip`: a segment without one is always read. */
async function segmentsMayHold(con: DuckDBConnection, paths: readonly string[], ip: string): Promise<Set<string>> {
  const reader = await con.runAndReadAll(`SELECT file_name, decode(value) FROM parquet_kv_metadata([${paths.map(sqlString).join(', ')}]) WHERE key = '${BLOOM_KEY}'::BLOB`);
  const filters = new Map<string, string>();
  for (const [file, text] of reader.getRows()) filters.set(String(file), String(text));
  return new Set(paths.filter((p) => parseBloom(filters.get(p) ?? '')?.has(ip) ?? true));
}

/** Numbers this process's queries: each spills (if it must) into a folder of its own. */
let queries = 0;

async function queryOnce(dir: string, q: ArchiveQuery, cond: ReturnType<typeof whereClause>, sink?: RowSink): Promise<QueryResult> {
  const db = await duck(2, join(dir, 'tmp', `query-${process.pid}-${++queries}`));
  try {
    const cols = COLUMNS.map(([c]) => `"${c}"`).join(', ');
    // What is still in the write-ahead log goes into a table of its own,
    // frame by frame; then the manifest is read, and a segment sealed from a
    // log file read here meanwhile is left out, so nothing is counted twice
    // and nothing sealed in between is missed.
    const wal = await Stager.create(db.con, 'w');
    // By inode: the current log is renamed (same inode) when it is sealed.
    const read = new Set<number>();
    const started = Date.now();
    for (const f of await Wal.files(join(dir, 'wal'))) {
      try {
        const ino = (await stat(f)).ino;
        for await (const payload of walPayloads(f)) await wal.addFrame(payload);
        read.add(ino);
      } catch (err) {
        // Sealed and removed before it could be opened: its records are in a segment now.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    await wal.close();
    // Inodes are reused once a sealed log is removed: only a segment sealed since this read began can hold what was read.
    const all = liveSegments(await readManifest(dir)).filter((s) => !(read.has(s.wal_inode) && s.at >= started));
    const meeting = all.filter((s) => segmentMeets(s, q.from, q.to));
    const gone = await missingFiles(dir, meeting);
    const segs = meeting.filter((s) => !gone.has(s.file));
    const paths = segs.map((s) => join(dir, 'segments', s.file));
    const layoutOf = new Map(segs.map((s) => [join(dir, 'segments', s.file), s.layout ?? 1]));
    const parts = [`SELECT *, 'wal' AS _source FROM (${wal.select}) ${where([q.ip ? addressVariants(1, q.ip, cond.columns).map((v) => `(${v})`).join(' OR ') : '', ...cond.rest])}`];
    // Segments are sorted by source address: the reader skips row groups for
    // it by their statistics. For the destination and NAT columns the
    // segment's address filter says which segments need reading at all.
    const unsorted = q.ip && cond.columns.some((c) => FILTERED.has(c)) && paths.length > 0 ? await segmentsMayHold(db.con, paths, q.ip) : null;
    for (const layout of new Set(layoutOf.values())) {
      addressVariants(layout, q.ip, cond.columns).forEach((v, i) => {
        const read = paths.filter((p) => layoutOf.get(p) === layout && !(unsorted && FILTERED.has(cond.columns[i]!) && !unsorted.has(p)));
        if (read.length === 0) return;
        // The address test on the layout's own columns (pushed into the reader), the rest on the archive's.
        const scan = `SELECT ${logical(layout)}, filename AS _source FROM read_parquet([${read.map(sqlString).join(', ')}], filename = true${layout === 1 ? ', union_by_name = true' : ''}) ${where([v])}`;
        parts.splice(parts.length - 1, 0, `SELECT ${cols}, _source FROM (${scan}) ${where(cond.rest)}`);
      });
    }
    const limit = `${q.limit !== undefined ? ` LIMIT ${Math.max(0, Math.trunc(q.limit))}` : ''}${q.offset !== undefined ? ` OFFSET ${Math.max(0, Math.trunc(q.offset))}` : ''}`;
    // Each row comes out as one JSON text, parsed here: the client library's
    // conversion of each value took 15 µs a row, this about one.
    // raw_bytes (a BLOB) as base64 in the JSON, back to its bytes below.
    const json = `to_json({${COLUMNS.map(([c, t]) => `"${c}": ${t === 'BLOB' ? `base64("${c}")` : `"${c}"`}`).join(', ')}})`;
    // Paged (offset): ties in time broken by the whole row, so pages are disjoint.
    const sql = `SELECT ${json} AS _row, _source FROM (${parts.join(' UNION ALL ')}) ORDER BY COALESCE(dev_ms, recv_ms), recv_ms${q.offset !== undefined ? ', _row' : ''}${limit}`;
    const decode = (texts: string[]) => {
      const rows = JSON.parse(`[${texts.join(',')}]`) as TrafficRecord[];
      for (const r of rows) if (r.raw_bytes !== null) r.raw_bytes = Buffer.from(r.raw_bytes as unknown as string, 'base64');
      return rows;
    };
    const used = new Map<string, number>();
    let fromWal = 0;
    const tally = (source: readonly string[]) => {
      for (const src of source) {
        if (src === 'wal') fromWal++;
        else used.set(basename(src), (used.get(basename(src)) ?? 0) + 1);
      }
    };
    let rows: TrafficRecord[] = [];
    let walRows: boolean[] = [];
    if (sink) {
      const result = await db.con.stream(sql, cond.params as unknown as never[]);
      for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
        const [texts, source] = chunk.getColumns() as [string[], string[]];
        tally(source);
        await sink(decode(texts), source.map((src) => src === 'wal'));
      }
    } else {
      const reader = await db.con.runAndReadAll(sql, cond.params as unknown as never[]);
      // No rows: DuckDB hands back no columns at all, not two empty ones.
      const [texts = [], source = []] = reader.getColumns() as [string[]?, string[]?];
      rows = decode(texts);
      walRows = source.map((src) => src === 'wal');
      tally(source);
    }
    const segments = segs.filter((s) => used.has(s.file)).map((s) => ({ file: s.file, seq: s.seq, sha256: s.sha256, rows: used.get(s.file)! }));
    // The segments that answered, against their signed hashes (a file changed after its seal is not evidence).
    const altered = await alteredSegments(dir, segments);
    return { rows, segments, fromWal, walRows, segmentsRead: segs.length, missing: [...gone], altered };
  } finally {
    db.close();
  }
}

/**
 * The segments among `segments` whose file no longer matches its signed
 * SHA-256. Hashing every answering segment on every query would read whole
 * files (a point query over 90 days answers from most of them), so a file
 * found intact is remembered by its inode, size, mtime and ctime in
 * DIR/tmp/verified.json and hashed again only when one of them changed: any
 * write, truncation, rename over it or chmod changes ctime, which no user
 * tool can set back. `archive verify` always hashes everything.
 */
async function alteredSegments(dir: string, segments: readonly { file: string; sha256: string }[]): Promise<string[]> {
  const cacheFile = join(dir, 'tmp', 'verified.json');
  let cache: Record<string, { sha256: string; key: string }> = {};
  try {
    cache = JSON.parse(await readFile(cacheFile, 'utf8')) as typeof cache;
  } catch {
    cache = {};
  }
  const altered: string[] = [];
  let changed = false;
  for (const s of segments) {
    const path = join(dir, 'segments', s.file);
    const st = await stat(path, { bigint: true }).catch(() => null);
    const key = st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : '';
    const known = cache[s.file];
    if (st && known && known.key === key && known.sha256 === s.sha256) continue;
    const sha = await sha256File(path).catch(() => null);
    if (sha !== s.sha256) {
      altered.push(s.file);
      if (known) {
        delete cache[s.file];
        changed = true;
      }
      continue;
    }
    cache[s.file] = { sha256: sha, key };
    changed = true;
  }
  if (changed) {
    // Only what is still asked about stays: the cache never outgrows the segments.
    const live = new Set(segments.map((s) => s.file));
    for (const f of Object.keys(cache)) if (!live.has(f) && Object.keys(cache).length > 10_000) delete cache[f];
    try {
      await mkdir(join(dir, 'tmp'), { recursive: true, mode: 0o700 });
      const tmp = `${cacheFile}.${process.pid}`;
      await writeFile(tmp, JSON.stringify(cache), { mode: 0o640 });
      await rename(tmp, cacheFile);
    } catch {
      // A read-only archive (an auditor's copy): every query hashes again, nothing is lost.
    }
  }
  return altered;
}
