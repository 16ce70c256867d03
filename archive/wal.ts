// The write-ahead log: every accepted record is appended here, and counts as
// stored only when the fsync that follows it has returned. Appends are
// grouped: records gathered over `fsyncIntervalMs` go out as one frame and
// one fdatasync, so a kill -9 loses at most that interval.
//
// A frame: u32 length, u32 CRC-32 of the payload, payload (binary rows,
// record.ts RowEncoder; the layouts of earlier versions are read too). A
// frame cut short by a crash fails its length
// or its CRC; opening the log cuts it off and counts what was lost (the
// caller writes that into the manifest: Wal.open's `onTornTail`).
//
// A write or fsync that fails (ENOSPC, EIO) leaves part of a frame behind:
// the log is cut back to the end of its last good frame before anything
// else is written, so that nothing acknowledged after it is ever taken for
// a torn tail. Until a retry (every `retryMs`) finds the disk writable
// again, appends are refused with the cause; see `Wal.state`.
import { open, rename, mkdir, readdir, stat, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeFrame, frameLayout, RowEncoder, type TrafficRecord } from './record.ts';

const HEADER = 8;
export const CURRENT = 'current.wal';

export interface WalStats {
  /** Records made durable (fsynced) since start. */
  stored: number;
  /** Frames written. */
  frames: number;
  /** Bytes of the current log file. */
  bytes: number;
  /** Records waiting for the next fsync. */
  pending: number;
  /** Bytes cut from torn tails when the log was opened. */
  recoveredTornBytes: number;
}

export interface WalOpenOptions {
  /** How often a failed log tries its disk again (ms; 5 s). */
  retryMs?: number;
  /**
   * Called for each torn tail found at open, before it is cut: the archive
   * keeps the bytes aside and writes a manifest entry. Throwing stops the
   * open (nothing is cut).
   */
  onTornTail?: (tail: TornTail) => Promise<void>;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * The frames' payloads as they are on disk (for readers that decode them
 * themselves). With `reuse`, every payload is a view of one buffer (grown
 * to the largest frame) that the next one overwrites: for a reader that is
 * done with a frame before it asks for the next (a query over the log),
 * so reading a large log leaves no garbage behind.
 */
export async function* walPayloads(path: string, state: { validBytes: number } = { validBytes: 0 }, reuse = false): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  let scratch = Buffer.alloc(0);
  try {
    const size = (await fh.stat()).size;
    let pos = 0;
    const header = Buffer.alloc(HEADER);
    while (pos + HEADER <= size) {
      await fh.read(header, 0, HEADER, pos);
      const len = header.readUInt32LE(0);
      const sum = header.readUInt32LE(4);
      // Never written (a frame holds at least one record): zeros a crash left at the end.
      if (len === 0 || pos + HEADER + len > size) break;
      if (reuse && scratch.length < len) scratch = Buffer.allocUnsafe(Math.max(len, scratch.length * 2));
      const payload = reuse ? scratch.subarray(0, len) : Buffer.allocUnsafe(len);
      await fh.read(payload, 0, len, pos + HEADER);
      if (crc32(payload) !== sum) break;
      pos += HEADER + len;
      state.validBytes = pos;
      yield payload;
    }
  } finally {
    await fh.close();
  }
}

/** How many records a log file holds (its good frames), counted from the frames' headers. */
export async function walRecordCount(path: string): Promise<number> {
  let n = 0;
  for await (const payload of walPayloads(path)) n += frameLayout(payload)?.count ?? decodeFrame(payload).length;
  return n;
}

/** What waits in the write-ahead log to be sealed: records, and when the oldest was received (null when none). */
export async function walBacklog(dir: string): Promise<{ files: number; records: number; oldestRecv: number | null }> {
  let records = 0;
  let oldestRecv: number | null = null;
  const files = await Wal.files(dir);
  for (const f of files) {
    for await (const payload of walPayloads(f)) {
      // The first frame holds the oldest records (frames are written in the order records arrive); only it is decoded.
      if (oldestRecv === null) for (const r of decodeFrame(payload)) oldestRecv = Math.min(oldestRecv ?? r.recv_ms, r.recv_ms);
      records += frameLayout(payload)?.count ?? decodeFrame(payload).length;
    }
  }
  return { files: files.length, records, oldestRecv };
}

/** The bytes past a log's last good frame, found when the log is opened (a crash mid-write, a bit flip, a cut file). */
export interface TornTail {
  path: string;
  /** Where the good frames end and the cut begins, and how many bytes follow. */
  offset: number;
  bytes: number;
  /** SHA-256 of the cut bytes. */
  sha256: string;
  /** Frames begun in them and the records those frames' headers name. */
  frames: number;
  records: number;
  /** False when some bytes could not be read as frames: `records` is then a lower bound. */
  counted: boolean;
}

/** Reads the bytes of `path` from `offset` to `size`: hashes them and counts the frames by their length headers where it can. */
export async function inspectTail(path: string, offset: number, size: number): Promise<TornTail> {
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let pos = offset; pos < size; ) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - pos), pos);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
      pos += bytesRead;
    }
    let frames = 0;
    let records = 0;
    let counted = true;
    const head = Buffer.alloc(HEADER + 9);
    // Each step moves past a header (8 bytes at least): the walk ends within the file.
    for (let pos = offset; pos < size; ) {
      if (pos + HEADER > size) {
        counted = false;
        break;
      }
      const { bytesRead } = await fh.read(head, 0, Math.min(head.length, size - pos), pos);
      const len = head.readUInt32LE(0);
      let layout: ReturnType<typeof frameLayout> = null;
      try {
        layout = len > 0 && bytesRead > HEADER ? frameLayout(head.subarray(HEADER, bytesRead)) : null;
      } catch {
        layout = null;
      }
      // Each row holds at least its 4-byte column map: a larger count is not a header of ours.
      if (!layout || layout.count * 4 > len) {
        counted = false;
        break;
      }
      frames++;
      records += layout.count;
      pos += HEADER + len;
    }
    return { path, offset, bytes: size - offset, sha256: hash.digest('hex'), frames, records, counted };
  } finally {
    await fh.close();
  }
}

/** Copies a torn tail's bytes to `dest` (a new file, fsynced) before the log is cut. */
export async function keepTail(tail: TornTail, dest: string): Promise<void> {
  const from = await open(tail.path, 'r');
  try {
    const to = await open(dest, 'wx', 0o640);
    try {
      const chunk = Buffer.allocUnsafe(1 << 20);
      for (let pos = tail.offset; pos < tail.offset + tail.bytes; ) {
        const { bytesRead } = await from.read(chunk, 0, Math.min(chunk.length, tail.offset + tail.bytes - pos), pos);
        if (bytesRead === 0) throw new Error(`${tail.path}: ended at ${pos} while its torn tail was copied`);
        await to.write(chunk, 0, bytesRead);
        pos += bytesRead;
      }
      await to.sync();
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

/** The state of the log's disk: what /healthz shows and what makes the receivers pause their TCP senders. */
export interface WalState {
  /** False while writes fail: appends are refused until a retry finds the disk writable. */
  ok: boolean;
  /** What failed: the file and the cause (ENOSPC: "disk full at DIR"). */
  error?: string;
  /** When the log stopped accepting records (UTC ms). */
  since?: number;
  /** Writes or fsyncs that have failed since start. */
  failures: number;
}

/** Refusal of an append while the log cannot write (Wal.state.ok false). */
export class WalError extends Error {
  readonly code = 'KW_WAL_FAILED';
}

const MIN_PROBE = 64 * 1024;
const MAX_PROBE = 8 * 1024 * 1024;

function cause(err: unknown, dir: string): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOSPC':
      return `disk full at ${dir} (ENOSPC)`;
    case 'EDQUOT':
      return `disk quota used up at ${dir} (EDQUOT)`;
    case 'EIO':
      return `input/output error on the disk of ${dir} (EIO)`;
    case 'EROFS':
      return `${dir} is on a read-only file system (EROFS)`;
    default:
      return e?.code ? `${e.code} (${e.message})` : String(e?.message ?? e);
  }
}

/** UTC now as 20260603T024100Z (names of files). */
export function stamp(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** What is left of `bufs` after their first `n` bytes. */
function rest(bufs: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (n >= b.length) n -= b.length;
    else {
      out.push(n > 0 ? b.subarray(n) : b);
      n = 0;
    }
  }
  return out;
}

export class Wal {
  readonly stats: WalStats = { stored: 0, frames: 0, bytes: 0, pending: 0, recoveredTornBytes: 0 };
  private fh!: FileHandle;
  private queue: TrafficRecord[] = [];
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  private pendingBytesEstimate = 0;
  private readonly encoder = new RowEncoder();

  /**
   * Whether the log can write now. Changes are announced to the functions
   * given to onStateChange: { ok: false, error, since, failures } when a
   * write or fsync fails (appends are refused from then on, with WalError
   * naming the file and the cause), { ok: true, failures } when a retry
   * (every retryMs) has cut the log back to its last good frame and written
   * and fsynced a frame's worth of bytes past it.
   */
  state: WalState = { ok: true, failures: 0 };
  private readonly listeners = new Set<(s: WalState) => void>();
  private refusal: WalError | null = null;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Bytes past the last good frame may be on disk (a failed write not yet cut off). */
  private tailDirty = false;
  /** current.wal could not be opened again after a rotation: the handle is the old file's. */
  private needsOpen = false;
  private probeBytes = MIN_PROBE;

  readonly dir: string;
  private readonly fsyncIntervalMs: number;
  private readonly retryMs: number;
  readonly tornTails: TornTail[] = [];

  private constructor(dir: string, fsyncIntervalMs: number, retryMs: number) {
    this.dir = dir;
    this.fsyncIntervalMs = fsyncIntervalMs;
    this.retryMs = retryMs;
  }

  /**
   * Opens (or creates) dir/current.wal. Every log file's tail past its last
   * good frame (a crash mid-write) is given to `onTornTail` and then cut off.
   */
  static async open(dir: string, fsyncIntervalMs: number, o: WalOpenOptions = {}): Promise<Wal> {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const w = new Wal(dir, fsyncIntervalMs, o.retryMs ?? 5000);
    for (const path of await Wal.files(dir)) {
      // Frames checked by length and CRC only: decoding an hour of records here would hold up the start.
      const state = { validBytes: 0 };
      for await (const payload of walPayloads(path, state)) void payload;
      const size = (await stat(path)).size;
      if (size > state.validBytes) {
        const tail = await inspectTail(path, state.validBytes, size);
        // Recorded before it is cut: a crash in between finds the same tail again.
        await o.onTornTail?.(tail);
        const fh = await open(path, 'r+');
        try {
          await fh.truncate(state.validBytes);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        w.stats.recoveredTornBytes += tail.bytes;
        w.tornTails.push(tail);
      }
      if (basename(path) === CURRENT) w.stats.bytes = state.validBytes;
    }
    w.fh = await open(join(dir, CURRENT), 'a', 0o640);
    return w;
  }

  /** The log file being written. */
  get path(): string {
    return join(this.dir, CURRENT);
  }

  /** Calls `fn` on every change of `state`; returns a function that stops it. */
  onStateChange(fn: (s: WalState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private setState(s: WalState): void {
    this.state = s;
    this.refusal = s.ok ? null : new WalError(`write-ahead log not writable: ${s.error}; records not stored (failing since ${new Date(s.since ?? Date.now()).toISOString()}, retried every ${this.retryMs / 1000} s)`);
    for (const fn of this.listeners) {
      try {
        fn({ ...s });
      } catch {
        // A listener's fault is its own: the log goes on.
      }
    }
  }

  /**
   * Runs `op` after every operation queued before it. Its failure goes to
   * its own caller: the chain never holds a rejection, so one failed
   * rotation or write cannot stop the writes after it.
   */
  private chain<T>(op: () => Promise<T>): Promise<T> {
    const run = this.writing.then(op);
    this.writing = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Writes frames (headers and payloads, `bytes` in all) and fsyncs them:
   * one writev and one fdatasync, as before any failure. A failure cuts the
   * log back to its last good frame, turns the state to failed and throws
   * the refusal (so the callers' waiters see the cause).
   */
  private async writeFrames(bufs: Buffer[], bytes: number): Promise<void> {
    if (this.refusal) throw this.refusal;
    try {
      let written = (await this.fh.writev(bufs)).bytesWritten;
      // A short write (the disk filling up mid-frame): the rest, which then fails with the cause.
      while (written < bytes) {
        const n = (await this.fh.writev(rest(bufs, written))).bytesWritten;
        if (n === 0) throw new Error(`short write: ${written} of ${bytes} bytes`);
        written += n;
      }
      await this.fh.datasync();
    } catch (err) {
      this.tailDirty = true;
      this.probeBytes = Math.min(Math.max(bytes, MIN_PROBE), MAX_PROBE);
      this.setState({ ok: false, error: `${this.path}: ${cause(err, this.dir)}`, since: this.state.since ?? Date.now(), failures: this.state.failures + 1 });
      await this.cut();
      this.scheduleRetry();
      throw this.refusal!;
    }
    this.stats.bytes += bytes;
  }

  /** Cuts the log back to the end of its last good frame; false when that fails too. */
  private async cut(): Promise<boolean> {
    if (this.needsOpen) return false;
    try {
      await this.fh.truncate(this.stats.bytes);
      await this.fh.datasync();
      this.tailDirty = false;
      return true;
    } catch {
      return false;
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.chain(() => this.retry()).catch(() => this.scheduleRetry());
    }, this.retryMs);
    this.retryTimer.unref();
  }

  /** A failed log's retry: cut back (or, if the cut fails, go on in a new file), then try a frame's worth of bytes. */
  private async retry(): Promise<void> {
    if (this.closed || this.state.ok) return;
    if (this.needsOpen) {
      try {
        const fresh = await open(this.path, 'a', 0o640);
        await this.fh.close().catch(() => undefined);
        this.fh = fresh;
        this.stats.bytes = (await fresh.stat()).size;
        this.needsOpen = false;
      } catch {
        return this.scheduleRetry();
      }
    }
    if (this.tailDirty && !(await this.cut())) {
      // The good frames stay in a file the next seal takes (its bad tail unread); the log goes on in a new one.
      try {
        await this.moveTo(`${stamp()}-${process.pid}-cut`);
      } catch {
        return this.scheduleRetry();
      }
    }
    try {
      // Past the last good frame, fsynced, and cut off again: 0xff bytes read as a torn frame if a crash comes between.
      const probe = Buffer.alloc(this.probeBytes, 0xff);
      this.tailDirty = true;
      const { bytesWritten } = await this.fh.write(probe);
      if (bytesWritten !== probe.length) throw new Error('short write');
      await this.fh.datasync();
    } catch {
      await this.cut();
      return this.scheduleRetry();
    }
    if (!(await this.cut())) return this.scheduleRetry();
    this.setState({ ok: true, failures: this.state.failures });
  }

  /** Renames current.wal to a new sealing-*.wal and opens an empty current.wal; returns the new name. */
  private async moveTo(name: string): Promise<string> {
    let to = join(this.dir, `sealing-${name}.wal`);
    // Never over a log not yet sealed (two seals in one second, a seal that failed).
    for (let i = 1; await stat(to).then(() => true, () => false); i++) {
      if (i > 1000) throw new Error(`${to}: a thousand log files of that name wait to be sealed`);
      to = join(this.dir, `sealing-${name}-${i}.wal`);
    }
    await rename(this.path, to);
    let fresh: FileHandle;
    try {
      fresh = await open(this.path, 'a', 0o640);
    } catch (err) {
      // Writing on would go into the file being sealed: refused until a retry opens current.wal.
      this.needsOpen = true;
      this.setState({ ok: false, error: `${this.path}: cannot be opened again after its rotation: ${cause(err, this.dir)}`, since: this.state.since ?? Date.now(), failures: this.state.failures + 1 });
      this.scheduleRetry();
      throw err;
    }
    const old = this.fh;
    this.fh = fresh;
    this.stats.bytes = 0;
    this.tailDirty = false;
    // Its frames were fsynced; a failing close loses nothing.
    await old.close().catch(() => undefined);
    return to;
  }

  /** Appends records; resolves when they are on disk (after the grouped fsync). */
  append(records: readonly TrafficRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the write-ahead log is closed'));
    if (this.refusal) return Promise.reject(this.refusal);
    for (const r of records) {
      this.queue.push(r);
      this.pendingBytesEstimate += 120 + (r.raw?.length ?? 0);
    }
    this.stats.pending = this.queue.length;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.fsyncIntervalMs);
    return done;
  }

  // Frames encoded elsewhere (the receivers' parsing threads, ingest.ts):
  // written as they are, grouped into one fdatasync per fsyncIntervalMs like append().
  private frameQueue: Buffer[] = [];
  private frameRecords = 0;
  private frameBytes = 0;
  private frameWaiters: Waiter[] = [];
  private frameTimer: NodeJS.Timeout | undefined;

  /** Appends one already-encoded frame payload (record.ts RowEncoder) of `records` records; resolves when it is on disk. */
  appendFrame(payload: Buffer, records: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the write-ahead log is closed'));
    if (this.refusal) return Promise.reject(this.refusal);
    const header = Buffer.alloc(HEADER);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt32LE(crc32(payload), 4);
    this.frameQueue.push(header, payload);
    this.frameRecords += records;
    this.frameBytes += HEADER + payload.length;
    const done = new Promise<void>((resolve, reject) => this.frameWaiters.push({ resolve, reject }));
    this.frameTimer ??= setTimeout(() => {
      this.frameTimer = undefined;
      void this.flushFrames();
    }, this.fsyncIntervalMs);
    return done;
  }

  /** Bytes of frames (appendFrame) waiting for their fsync. */
  get pendingFrameBytes(): number {
    return this.frameBytes;
  }

  /** Writes and fsyncs the frames queued by appendFrame now. */
  flushFrames(): Promise<void> {
    if (this.frameTimer) {
      clearTimeout(this.frameTimer);
      this.frameTimer = undefined;
    }
    const bufs = this.frameQueue;
    const waiters = this.frameWaiters;
    const records = this.frameRecords;
    const bytes = this.frameBytes;
    this.frameQueue = [];
    this.frameWaiters = [];
    this.frameRecords = 0;
    this.frameBytes = 0;
    if (bufs.length === 0) return this.writing;
    // Never rejects: a failure goes to each waiter (writeFrames).
    return this.chain(async () => {
      try {
        await this.writeFrames(bufs, bytes);
        this.stats.frames += bufs.length / 2;
        this.stats.stored += records;
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err as Error);
      }
    });
  }

  /** Rough size of what waits for the next fsync: the receivers pause reading above a limit. */
  get pendingBytes(): number {
    return this.pendingBytesEstimate;
  }

  /**
   * Writes and fsyncs what is queued now; resolves when that is done. It
   * never rejects: a failure goes to the promise each append returned.
   */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const rows = this.queue;
    const waiters = this.waiters;
    this.queue = [];
    this.waiters = [];
    this.pendingBytesEstimate = 0;
    return this.chain(async () => {
      if (rows.length === 0) {
        for (const w of waiters) w.resolve();
        return;
      }
      try {
        // Written before the next frame is encoded: the writes are chained.
        const payload = this.encoder.encode(rows);
        const header = Buffer.alloc(HEADER);
        header.writeUInt32LE(payload.length, 0);
        header.writeUInt32LE(crc32(payload), 4);
        await this.writeFrames([header, payload], HEADER + payload.length);
        this.stats.frames++;
        this.stats.stored += rows.length;
        this.stats.pending = this.queue.length;
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err as Error);
      }
    });
  }

  /**
   * Closes the current file under a new name (`sealing-<name>.wal`, or
   * `sealing-<name>-N.wal` if that one waits to be sealed) and starts an
   * empty one; returns the closed file's path. What was queued is flushed
   * into the closed file first. A failure rejects this call only.
   */
  async rotate(name: string): Promise<string> {
    await this.flush();
    await this.flushFrames();
    return this.chain(async () => {
      if (this.needsOpen) throw new Error(`${this.path}: missing since a rotation could not open it again; retried every ${this.retryMs / 1000} s`);
      return this.moveTo(name);
    });
  }

  async close(): Promise<void> {
    await this.flush();
    await this.flushFrames();
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.chain(() => this.fh.close());
  }

  /** Log files not yet sealed: those left mid-seal by a crash, then the current one. */
  static async files(dir: string): Promise<string[]> {
    const names = await readdir(dir).catch(() => [] as string[]);
    return [...names.filter((n) => n.startsWith('sealing-') && n.endsWith('.wal')).sort(), ...(names.includes(CURRENT) ? [CURRENT] : [])].map((n) => join(dir, n));
  }
}
