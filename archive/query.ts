// Reading the archive: the sealed segments through DuckDB, and the records
// still in the write-ahead log, so the last minutes are never missing from
// an answer. It opens nothing for writing and can run beside the collector.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isIP } from 'node:net';
import { COLUMNS, decodeFrame, frameLayout, type TrafficRecord } from './record.ts';
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

/**
 * An argument refused (a query's: QueryError; an audited act's: archive/auditor.ts AuditError). The message is the CLI's (`--port 70000 is
 * not …`); `field` and `detail` say the same without the CLI's wording, for
 * callers that name the argument their own way (the API: `querystring.port:
 * 70000 is not …`).
 */
export class ArgumentError extends Error {
  readonly field: string | undefined;
  readonly detail: string | undefined;
  constructor(message: string, arg?: { field: string; detail: string }) {
    super(message);
    this.field = arg?.field;
    this.detail = arg?.detail;
  }
}

/** A query's argument refused (see ArgumentError). */
export class QueryError extends ArgumentError {}

/** A refused argument: the CLI's `--field detail`, with field and detail kept apart. */
const argError = (field: string, detail: string, cli = `--${field} ${detail}`) => new QueryError(cli, { field, detail });

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

function checkAddress(v: string | undefined, field: string): void {
  if (v !== undefined && isIP(v) === 0) throw argError(field, `${JSON.stringify(v)} is not an IPv4 or IPv6 address`);
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
  checkAddress(q.ip, 'ip');
  checkAddress(q.peer, 'peer');
  if (q.port !== undefined && !(Number.isInteger(q.port) && q.port >= 0 && q.port <= 65535)) throw argError('port', `${q.port} is not a port number (0-65535)`);
  if (q.from !== undefined && q.to !== undefined && q.to <= q.from) throw argError('to', 'is not after from', '--to is not after --from');
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

/**
 * WHERE with every condition in parentheses: a condition holding OR (the
 * address variants: "src is it OR dst is it OR nat is it") joined bare with
 * AND would bind only its last alternative to the other filters, so every
 * filter but the address one would fail to apply to the rest.
 */
export const where = (conds: readonly string[]) => {
  const c = conds.filter(Boolean);
  return c.length > 0 ? `WHERE ${c.map((x) => `(${x})`).join(' AND ')}` : '';
};

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
 * How many rows a query has in all (its limit and offset ignored): what a
 * page says when an answer is larger than one download (api.max_rows).
 * Retried once on a new manifest as queryArchive is.
 */
export async function countArchive(dir: string, q: ArchiveQuery): Promise<QueryResult & { count: number }> {
  const all: ArchiveQuery = { ...q };
  delete all.limit;
  delete all.offset;
  const cond = whereClause(all);
  const once = async () => {
    const r = await queryOnce(dir, all, cond, 'count');
    return { ...r, count: r.count ?? 0 };
  };
  try {
    const r = await once();
    return r.missing.length > 0 ? once() : r;
  } catch (err) {
    if (!/No such file|No files found|Cannot open file/i.test((err as Error).message)) throw err;
    return once();
  }
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

/**
 * Whether a record matches the query, in JavaScript: the same conditions
 * as whereClause's SQL (which runs again over what passes, so this may
 * only ever let through more, never less). Used on the write-ahead log's
 * records as they are read, so that a query stages its matches, not the
 * whole log.
 */
export function recordMatches(q: ArchiveQuery): (r: TrafficRecord) => boolean {
  const side = q.side ?? 'either';
  const ip = q.ip || undefined;
  const peer = q.peer || undefined;
  const mac = q.mac ? q.mac.toLowerCase().replace(/-/g, ':') : undefined;
  const round = (v: number | null) => (v === null ? null : Math.round(v));
  const within = (t: number | null) => t !== null && (q.from === undefined || t >= q.from) && (q.to === undefined || t < q.to);
  return (r) => {
    if (ip !== undefined) {
      const hit = side === 'src' ? r.src_ip === ip || r.nat_ip === ip : side === 'dst' ? r.dst_ip === ip : r.src_ip === ip || r.dst_ip === ip || r.nat_ip === ip;
      if (!hit) return false;
    }
    if (peer !== undefined) {
      const hit = ip && side === 'either' ? r.src_ip === peer || r.dst_ip === peer : q.side === 'dst' ? r.src_ip === peer : r.dst_ip === peer;
      if (!hit) return false;
    }
    if (q.port !== undefined && r.src_port !== q.port && r.dst_port !== q.port && r.nat_port !== q.port) return false;
    if (q.proto !== undefined && r.proto !== q.proto) return false;
    if (q.school && r.school !== q.school) return false;
    if (q.user && r.user !== q.user) return false;
    if (mac !== undefined && r.mac !== mac) return false;
    if (q.from !== undefined || q.to !== undefined) {
      const recv = round(r.recv_ms);
      if (!within(round(r.dev_ms) ?? recv) && !within(recv)) return false;
    }
    return true;
  };
}

/** Above this many rows (offset + limit) a query keeps every match of the log rather than track the first ones. */
const TRACKED = 1_000_000;

/** How each column is written in a binary frame (record.ts): 0 double, 1 int32, 2 int16, 3 length-prefixed bytes (text, blob). */
const WIRE = COLUMNS.map(([, t]) => (t === 'BIGINT' ? 0 : t === 'INTEGER' ? 1 : t === 'SMALLINT' ? 2 : 3));
const column = (name: string) => COLUMNS.findIndex(([c]) => c === name);
const C = {
  recv: column('recv_ms'), dev: column('dev_ms'), school: column('school'), src: column('src_ip'), srcPort: column('src_port'), dst: column('dst_ip'), dstPort: column('dst_port'),
  proto: column('proto'), nat: column('nat_ip'), natPort: column('nat_port'), mac: column('mac'), user: column('user'),
};
/** A binary frame's first byte (record.ts ROWS_MAGIC): rows with the frame's column map. */
const ROWS_MAGIC = 0x43;

/**
 * What a query keeps of the write-ahead log: the matching records, and
 * with a limit, only those that can still be among the first offset +
 * limit in the answer's order (event time, then receive time). A binary
 * frame is read in place, each row's fields found by their offsets and
 * compared as bytes, and what matches is copied into a smaller frame of
 * the same encoding (no record is made into an object, so reading a large
 * log makes next to no garbage); frames of the first versions' JSON rows
 * are decoded and tested by recordMatches.
 *
 * With a limit it tracks the offset + limit smallest keys seen (a max-heap
 * of numbers, 16 bytes a row); a record whose key is above the largest of
 * them cannot be in the answer, since that many matches come before it.
 * Records tied with it are kept (paging breaks ties by the whole row, in
 * SQL).
 */
export class WalKeeper {
  private readonly q: ArchiveQuery;
  private readonly match: (r: TrafficRecord) => boolean;
  private readonly k: number;
  /** Heap of [event, receive] keys, largest on top (flat: 2 numbers an entry). */
  private heap: number[] = [];
  private readonly ip: Buffer | null;
  private readonly peer: Buffer | null;
  private readonly school: Buffer | null;
  private readonly user: Buffer | null;
  private readonly mac: Buffer | null;
  /** Where each column's value starts in the row being read (-1: absent). */
  private readonly at = new Int32Array(COLUMNS.length);

  constructor(q: ArchiveQuery) {
    this.q = q;
    this.match = recordMatches(q);
    const k = q.limit !== undefined ? Math.max(0, Math.trunc(q.limit)) + Math.max(0, Math.trunc(q.offset ?? 0)) : Infinity;
    this.k = k <= TRACKED ? k : Infinity;
    const bytes = (v: string | undefined) => (v ? Buffer.from(v, 'utf8') : null);
    this.ip = bytes(q.ip);
    this.peer = bytes(q.peer);
    this.school = bytes(q.school);
    this.user = bytes(q.user);
    this.mac = bytes(q.mac ? q.mac.toLowerCase().replace(/-/g, ':') : undefined);
  }

  /** What to stage of one log frame: a frame of the matching rows, records (JSON frames), or null for nothing. */
  frame(payload: Buffer): Buffer | TrafficRecord[] | null {
    const layout = frameLayout(payload);
    if (!layout) {
      const rows = this.take(decodeFrame(payload));
      return rows.length > 0 ? rows : null;
    }
    const parts: Buffer[] = [];
    let count = 0;
    let o = layout.rowsAt;
    const at = this.at;
    for (let k = 0; k < layout.count; k++) {
      const start = o;
      const map = payload.readUInt32LE(o);
      o += 4;
      for (let i = 0; i < WIRE.length; i++) {
        if (!(map & (1 << i))) {
          at[i] = -1;
          continue;
        }
        at[i] = o;
        const w = WIRE[i]!;
        o += w === 0 ? 8 : w === 1 ? 4 : w === 2 ? 2 : 4 + payload.readUInt32LE(o);
      }
      if (o > payload.length) throw new QueryError(`a write-ahead log frame's row ${k} runs past the frame's end`);
      if (!this.rowMatches(payload)) continue;
      const recv = Math.round(payload.readDoubleLE(at[C.recv]!));
      const ev = at[C.dev]! >= 0 ? Math.round(payload.readDoubleLE(at[C.dev]!)) : recv;
      if (!this.ranked(ev, recv)) continue;
      parts.push(payload.subarray(start, o));
      count++;
    }
    if (count === 0) return null;
    const head = Buffer.alloc(9);
    head[0] = ROWS_MAGIC;
    head.writeUInt32LE(count, 1);
    head.writeUInt32LE(layout.columns, 5);
    return Buffer.concat([head, ...parts]);
  }

  /** The row whose fields `at` holds, against the query (recordMatches' conditions, on the bytes). */
  private rowMatches(b: Buffer): boolean {
    const q = this.q;
    const at = this.at;
    const is = (i: number, v: Buffer) => {
      const p = at[i]!;
      return p >= 0 && b.readUInt32LE(p) === v.length && v.compare(b, p + 4, p + 4 + v.length) === 0;
    };
    const num = (i: number): number | null => {
      const p = at[i]!;
      if (p < 0) return null;
      const w = WIRE[i];
      return w === 0 ? Math.round(b.readDoubleLE(p)) : w === 1 ? b.readInt32LE(p) : b.readInt16LE(p);
    };
    const side = q.side ?? 'either';
    if (this.ip) {
      const hit = side === 'src' ? is(C.src, this.ip) || is(C.nat, this.ip) : side === 'dst' ? is(C.dst, this.ip) : is(C.src, this.ip) || is(C.dst, this.ip) || is(C.nat, this.ip);
      if (!hit) return false;
    }
    if (this.peer) {
      const hit = this.ip && side === 'either' ? is(C.src, this.peer) || is(C.dst, this.peer) : q.side === 'dst' ? is(C.src, this.peer) : is(C.dst, this.peer);
      if (!hit) return false;
    }
    if (q.port !== undefined && num(C.srcPort) !== q.port && num(C.dstPort) !== q.port && num(C.natPort) !== q.port) return false;
    if (q.proto !== undefined && num(C.proto) !== q.proto) return false;
    if (this.school && !is(C.school, this.school)) return false;
    if (this.user && !is(C.user, this.user)) return false;
    if (this.mac && !is(C.mac, this.mac)) return false;
    if (q.from !== undefined || q.to !== undefined) {
      const within = (t: number | null) => t !== null && (q.from === undefined || t >= q.from) && (q.to === undefined || t < q.to);
      const recv = num(C.recv);
      if (!within(num(C.dev) ?? recv) && !within(recv)) return false;
    }
    return true;
  }

  /** The records of a decoded frame to stage. */
  take(records: readonly TrafficRecord[]): TrafficRecord[] {
    return records.filter((r) => this.match(r) && this.ranked(Math.round(r.dev_ms ?? r.recv_ms), Math.round(r.recv_ms)));
  }

  /** Whether a matching record with this key can be in the answer (and, if so, its key is counted). */
  private ranked(ev: number, recv: number): boolean {
    if (this.k === Infinity) return true;
    if (this.k === 0) return false;
    const h = this.heap;
    if (h.length / 2 < this.k) {
      this.push(ev, recv);
      return true;
    }
    if (ev > h[0]! || (ev === h[0]! && recv > h[1]!)) return false;
    // Strictly smaller: it takes the place of the largest key; a tie is kept and changes nothing.
    if (ev < h[0]! || recv < h[1]!) this.replaceTop(ev, recv);
    return true;
  }

  private greater(i: number, j: number): boolean {
    const h = this.heap;
    return h[2 * i]! > h[2 * j]! || (h[2 * i] === h[2 * j] && h[2 * i + 1]! > h[2 * j + 1]!);
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    [h[2 * i], h[2 * j]] = [h[2 * j]!, h[2 * i]!];
    [h[2 * i + 1], h[2 * j + 1]] = [h[2 * j + 1]!, h[2 * i + 1]!];
  }

  private push(ev: number, recv: number): void {
    this.heap.push(ev, recv);
    for (let i = this.heap.length / 2 - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.greater(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private replaceTop(ev: number, recv: number): void {
    this.heap[0] = ev;
    this.heap[1] = recv;
    const n = this.heap.length / 2;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.greater(l, m)) m = l;
      if (r < n && this.greater(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
}

/** Numbers this process's queries: each spills (if it must) into a folder of its own. */
let queries = 0;

async function queryOnce(dir: string, q: ArchiveQuery, cond: ReturnType<typeof whereClause>, sink?: RowSink | 'count'): Promise<QueryResult & { count?: number }> {
  const db = await duck(2, join(dir, 'tmp', `query-${process.pid}-${++queries}`));
  try {
    const cols = COLUMNS.map(([c]) => `"${c}"`).join(', ');
    // What is still in the write-ahead log goes into a table of its own,
    // frame by frame; then the manifest is read, and a segment sealed from a
    // log file read here meanwhile is left out, so nothing is counted twice
    // and nothing sealed in between is missed.
    // Only the records that match are staged (walMatches), and with a
    // limit only those that can still be among the first offset + limit.
    const wal = await Stager.create(db.con, 'w');
    // By inode: the current log is renamed (same inode) when it is sealed.
    const read = new Set<number>();
    const started = Date.now();
    const keep = new WalKeeper(q);
    for (const f of await Wal.files(join(dir, 'wal'))) {
      try {
        const ino = (await stat(f)).ino;
        // One buffer for every frame: each is done with before the next is read (what is kept is copied).
        for await (const payload of walPayloads(f, { validBytes: 0 }, true)) {
          const kept = keep.frame(payload);
          if (kept === null) continue;
          if (Buffer.isBuffer(kept)) await wal.addFrame(kept);
          else await wal.addRecords(kept);
        }
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
    if (sink === 'count') {
      // How many rows the query has (from the log and per segment): no row is made into JSON.
      const reader = await db.con.runAndReadAll(`SELECT _source, count(*)::DOUBLE FROM (${parts.join(' UNION ALL ')}) GROUP BY _source`, cond.params as unknown as never[]);
      let count = 0;
      for (const [src, n] of reader.getRows()) {
        count += Number(n);
        if (src === 'wal') fromWal += Number(n);
        else used.set(basename(String(src)), Number(n));
      }
      const segments = segs.filter((s) => used.has(s.file)).map((s) => ({ file: s.file, seq: s.seq, sha256: s.sha256, rows: used.get(s.file)! }));
      return { rows, segments, fromWal, walRows, segmentsRead: segs.length, missing: [...gone], altered: await alteredSegments(dir, segments), count };
    }
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
