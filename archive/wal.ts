// The write-ahead log: every accepted record is appended here, and counts as
// stored only when the fsync that follows it has returned. Appends are
// grouped: records gathered over `fsyncIntervalMs` go out as one frame and
// one fdatasync, so a kill -9 loses at most that interval.
//
// A frame: u32 length, u32 CRC-32 of the payload, payload (binary rows,
// record.ts RowEncoder; the layouts of earlier versions are read too). A
// frame cut short by a crash fails its length
// or its CRC; opening the log cuts it off and counts what was lost.
import { open, rename, mkdir, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
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
  /** Bytes cut from a torn tail when the log was opened. */
  recoveredTornBytes: number;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/** The frames' payloads as they are on disk (for readers that decode them themselves). */
export async function* walPayloads(path: string, state: { validBytes: number } = { validBytes: 0 }): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let pos = 0;
    const header = Buffer.alloc(HEADER);
    while (pos + HEADER <= size) {
      await fh.read(header, 0, HEADER, pos);
      const len = header.readUInt32LE(0);
      const sum = header.readUInt32LE(4);
      if (pos + HEADER + len > size) break;
      const payload = Buffer.allocUnsafe(len);
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

  readonly dir: string;
  private readonly fsyncIntervalMs: number;

  private constructor(dir: string, fsyncIntervalMs: number) {
    this.dir = dir;
    this.fsyncIntervalMs = fsyncIntervalMs;
  }

  /** Opens (or creates) dir/current.wal, cutting off a torn tail left by a crash. */
  static async open(dir: string, fsyncIntervalMs: number): Promise<Wal> {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const w = new Wal(dir, fsyncIntervalMs);
    const path = join(dir, CURRENT);
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    if (exists) {
      // Frames checked by length and CRC only: decoding an hour of records here would hold up the start.
      const state = { validBytes: 0 };
      for await (const payload of walPayloads(path, state)) void payload;
      const validBytes = state.validBytes;
      const tornBytes = (await stat(path)).size - validBytes;
      if (tornBytes > 0) {
        const fh = await open(path, 'r+');
        await fh.truncate(validBytes);
        await fh.datasync();
        await fh.close();
        w.stats.recoveredTornBytes = tornBytes;
      }
      w.stats.bytes = validBytes;
    }
    w.fh = await open(path, 'a', 0o640);
    return w;
  }

  /** Appends records; resolves when they are on disk (after the grouped fsync). */
  append(records: readonly TrafficRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the write-ahead log is closed'));
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
    this.writing = this.writing.then(async () => {
      try {
        await this.fh.writev(bufs);
        await this.fh.datasync();
        this.stats.bytes += bytes;
        this.stats.frames += bufs.length / 2;
        this.stats.stored += records;
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err as Error);
      }
    });
    return this.writing;
  }

  /** Rough size of what waits for the next fsync: the receivers pause reading above a limit. */
  get pendingBytes(): number {
    return this.pendingBytesEstimate;
  }

  /** Writes and fsyncs what is queued now; resolves when it is durable. */
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
    this.writing = this.writing.then(async () => {
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
        await this.fh.writev([header, payload]);
        await this.fh.datasync();
        this.stats.bytes += HEADER + payload.length;
        this.stats.frames++;
        this.stats.stored += rows.length;
        this.stats.pending = this.queue.length;
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err as Error);
      }
    });
    return this.writing;
  }

  /**
   * Closes the current file under a new name (`sealing-<name>.wal`) and starts
   * an empty one; returns the closed file's path. What was queued is flushed
   * into the closed file first.
   */
  async rotate(name: string): Promise<string> {
    await this.flush();
    const to = join(this.dir, `sealing-${name}.wal`);
    this.writing = this.writing.then(async () => {
      await this.fh.close();
      await rename(join(this.dir, CURRENT), to);
      this.fh = await open(join(this.dir, CURRENT), 'a', 0o640);
      this.stats.bytes = 0;
    });
    await this.writing;
    return to;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.writing;
    await this.fh.close();
  }

  /** Log files not yet sealed: those left mid-seal by a crash, then the current one. */
  static async files(dir: string): Promise<string[]> {
    const names = await readdir(dir).catch(() => [] as string[]);
    return [...names.filter((n) => n.startsWith('sealing-') && n.endsWith('.wal')).sort(), ...(names.includes(CURRENT) ? [CURRENT] : [])].map((n) => join(dir, n));
  }
}
