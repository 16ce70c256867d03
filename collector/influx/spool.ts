// The disk spool: an outbox in front of InfluxDB. Every batch is appended
// here, and the append fsynced, before it is sent; it counts as done once
// InfluxDB has answered 2xx (or refused it as data). A kill -9 therefore loses
// nothing the spool accepted: the next start replays what was not
// acknowledged, in order. A batch sent twice (acknowledged in InfluxDB, not
// yet here) is harmless: the same lines, same series and same timestamps,
// overwrite themselves.
//
// On disk: segment files `NNNNNNNNNNNNNNNN.seg`, appended to, never rewritten.
// A frame is a 28-byte header, then its body:
//   u32 magic "KWSP" | u32 body length | u32 CRC-32 of bytes 12.. of the
//   header and the body | u8 type (1 batch, 2 acknowledgement) | 3 zero bytes
//   | u32 lines | u48 sequence number + 2 zero bytes
// A batch's body is a table of its lines' byte lengths (u32 each) and then the
// lines joined by "\n", exactly the /write body (string fields may hold a
// newline, so the table, not "\n", says where a line ends). An
// acknowledgement says "every batch up to this sequence number is done"; it is
// not fsynced (if a crash loses it, the batches are sent again). A segment is
// deleted when all its batches are done, which acknowledges them for good.
//
// Opening reads every frame by its length and CRC. A frame that fails them (a
// crash cut an append short, or the disk garbled it) ends its segment: the
// rest of the file is cut off, and the bytes cut are counted and reported.
//
// Bounded: the segments together stay under max_bytes. To make room, the
// oldest segment goes first, its batches counted as dropped; a segment is at
// most a sixteenth of max_bytes (16 MiB at most), so a full spool drops old
// points a slice at a time.
import { mkdir, readdir, readFile, rm, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

export const FRAME_HEADER = 28;
const MAGIC = 0x5053574b; // "KWSP" read little-endian
const BATCH = 1;
const ACK = 2;
/** A body longer than this is not a frame of ours, whatever its header says. */
const MAX_BODY = 1 << 30;
/** Bodies of batches appended by this process kept in memory for sending, at most. */
const CACHE_BYTES = 16 * 1024 * 1024;
/** An acknowledgement is written at the latest every this many batches. */
const ACK_EVERY = 64;
const SEGMENT = /^(\d{16})\.seg$/;
const LEGACY = /^(\d{16})-(\d+)\.lp$/;

export interface SpoolStats {
  /** Segment files. */
  files: number;
  /** Bytes of batches not yet acknowledged (frames). */
  bytes: number;
  /** Bytes of the segment files (what max_bytes bounds). */
  diskBytes: number;
  /** Lines dropped since start: the spool was full, a batch was larger than the spool, or a frame read back garbled. */
  droppedLines: number;
  /** Bytes cut from segments at open: a torn or garbled tail. */
  tornBytes: number;
}

export interface OpenReport {
  /** Batches an earlier run left unacknowledged. */
  batches: number;
  lines: number;
  /** One entry per segment whose tail was cut, naming the file, where, and how much. */
  cut: { file: string; offset: number; bytes: number; reason: string }[];
  /** Batches taken over from the older one-file-per-batch spool. */
  migrated: number;
}

/** One batch as it waits in the spool. */
export interface SpooledBatch {
  seq: number;
  lines: number;
  /** The /write body: the lines joined by "\n". */
  text: Buffer;
  /** Byte length of each line in text. */
  lengths: Uint32Array;
}

interface Segment {
  no: number;
  path: string;
  size: number;
  /** Highest batch sequence number in the segment (0: none). */
  lastBatch: number;
}

interface Entry {
  seq: number;
  segment: Segment;
  offset: number;
  /** Frame bytes (header and body). */
  bytes: number;
  lines: number;
  crc: number;
  frame?: Buffer;
}

/** The frames for these batches and the spool's room for an acknowledgement: the max_bytes that holds exactly them. */
export function spoolBytesFor(batches: readonly (readonly string[])[]): number {
  return batches.reduce((n, b) => n + batchFrame(b, 0).length, 0) + FRAME_HEADER;
}

function header(type: number, bodyLength: number, lines: number, seq: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(bodyLength, 4);
  h.writeUInt8(type, 12);
  h.writeUInt32LE(lines, 16);
  h.writeUIntLE(seq, 20, 6);
  return h;
}

function seal(frame: Buffer): number {
  const crc = crc32(frame.subarray(FRAME_HEADER), crc32(frame.subarray(12, FRAME_HEADER)));
  frame.writeUInt32LE(crc, 8);
  return crc;
}

function batchFrame(lines: readonly string[], seq: number): Buffer {
  const text = lines.join('\n');
  const table = 4 * lines.length;
  const textBytes = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(FRAME_HEADER + table + textBytes);
  header(BATCH, table + textBytes, lines.length, seq).copy(frame, 0);
  for (let i = 0; i < lines.length; i++) frame.writeUInt32LE(Buffer.byteLength(lines[i]!), FRAME_HEADER + 4 * i);
  frame.write(text, FRAME_HEADER + table, 'utf8');
  seal(frame);
  return frame;
}

function ackFrame(seq: number): Buffer {
  const frame = header(ACK, 0, 0, seq);
  seal(frame);
  return frame;
}

/** A batch's frame as a SpooledBatch; undefined when its line table does not add up. */
function decodeBatch(seq: number, lines: number, frame: Buffer): SpooledBatch | undefined {
  const table = 4 * lines;
  if (FRAME_HEADER + table > frame.length) return undefined;
  const lengths = new Uint32Array(lines);
  let sum = 0;
  for (let i = 0; i < lines; i++) {
    lengths[i] = frame.readUInt32LE(FRAME_HEADER + 4 * i);
    sum += lengths[i]!;
  }
  const text = frame.subarray(FRAME_HEADER + table);
  if (sum + Math.max(0, lines - 1) !== text.length) return undefined;
  return { seq, lines, text, lengths };
}

/** The lines of a spooled batch as strings (for halving a batch InfluxDB refused). */
export function batchLines(b: SpooledBatch): string[] {
  const out: string[] = [];
  let at = 0;
  for (const len of b.lengths) {
    out.push(b.text.toString('utf8', at, at + len));
    at += len + 1;
  }
  return out;
}

const segName = (no: number) => `${String(no).padStart(16, '0')}.seg`;

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  private segments: Segment[] = [];
  private active: FileHandle | undefined;
  /** Unacknowledged batches, oldest first, from `head` on. */
  private queue: Entry[] = [];
  private head = 0;
  private pendingBytes = 0;
  private pendingLines = 0;
  private cachedBytes = 0;
  private nextSeq = 1;
  private acked = 0;
  private ackOnDisk = 0;
  private diskBytes = 0;
  private dropped = 0;
  private torn = 0;
  /** The last append failed and could not be taken back: the next one starts a new segment. */
  private broken = false;
  private lock: Promise<unknown> = Promise.resolve();
  private ready: Promise<OpenReport> | undefined;
  private closed = false;

  constructor(dir: string, maxBytes: number, opts: { segmentBytes?: number } = {}) {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.segmentBytes = opts.segmentBytes ?? Math.max(1, Math.min(16 * 1024 * 1024, Math.floor(maxBytes / 16)));
  }

  /** Operations one at a time: appends, acknowledgements, reads and deletions share the files. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Reads what an earlier run left behind; called once, before anything else (later calls return the same report). */
  open(): Promise<OpenReport> {
    this.ready ??= this.serial(() => this.load());
    return this.ready;
  }

  get stats(): SpoolStats {
    return { files: this.segments.length, bytes: this.pendingBytes, diskBytes: this.diskBytes, droppedLines: this.dropped, tornBytes: this.torn };
  }

  get empty(): boolean {
    return this.head >= this.queue.length;
  }

  /** Lines not yet acknowledged. */
  get lines(): number {
    return this.pendingLines;
  }

  private async load(): Promise<OpenReport> {
    await mkdir(this.dir, { recursive: true });
    const names = (await readdir(this.dir)).sort();
    const report: OpenReport = { batches: 0, lines: 0, cut: [], migrated: 0 };
    const legacy: string[] = [];
    let maxSeq = 0;
    for (const name of names) {
      if (LEGACY.test(name)) legacy.push(name);
      else if (name.endsWith('.lp.tmp')) await rm(join(this.dir, name), { force: true }); // the older spool's write cut by a crash
      const m = SEGMENT.exec(name);
      if (!m) continue;
      const segment: Segment = { no: Number(m[1]), path: join(this.dir, name), size: 0, lastBatch: 0 };
      const fh = await open(segment.path, 'r+');
      try {
        const size = (await fh.stat()).size;
        let at = 0;
        let reason = '';
        const h = Buffer.alloc(FRAME_HEADER);
        while (at < size) {
          if (size - at < FRAME_HEADER) {
            reason = 'a frame header cut short';
            break;
          }
          await fh.read(h, 0, FRAME_HEADER, at);
          const len = h.readUInt32LE(4);
          const type = h.readUInt8(12);
          if (h.readUInt32LE(0) !== MAGIC || (type !== BATCH && type !== ACK) || len > MAX_BODY) {
            reason = 'not a frame header';
            break;
          }
          if (len > size - at - FRAME_HEADER) {
            reason = `a frame of ${len} bytes with ${size - at - FRAME_HEADER} left in the file`;
            break;
          }
          const frame = Buffer.allocUnsafe(FRAME_HEADER + len);
          h.copy(frame, 0);
          if (len > 0) await fh.read(frame, FRAME_HEADER, len, at + FRAME_HEADER);
          const crc = crc32(frame.subarray(FRAME_HEADER), crc32(frame.subarray(12, FRAME_HEADER)));
          if (crc !== h.readUInt32LE(8)) {
            reason = 'a frame whose CRC does not match';
            break;
          }
          const seq = h.readUIntLE(20, 6);
          const lines = h.readUInt32LE(16);
          if (type === BATCH) {
            if (!decodeBatch(seq, lines, frame)) {
              reason = 'a batch whose line table does not match its text';
              break;
            }
            this.queue.push({ seq, segment, offset: at, bytes: frame.length, lines, crc });
            segment.lastBatch = Math.max(segment.lastBatch, seq);
          } else this.acked = Math.max(this.acked, seq);
          maxSeq = Math.max(maxSeq, seq);
          at += frame.length;
        }
        if (at < size) {
          await fh.truncate(at);
          await fh.datasync();
          report.cut.push({ file: segment.path, offset: at, bytes: size - at, reason });
          this.torn += size - at;
        }
        segment.size = at;
      } finally {
        await fh.close();
      }
      this.segments.push(segment);
      this.diskBytes += segment.size;
    }
    this.ackOnDisk = this.acked;
    this.nextSeq = maxSeq + 1;
    this.queue = this.queue.filter((e) => e.seq > this.acked);
    for (const e of this.queue) {
      this.pendingBytes += e.bytes;
      this.pendingLines += e.lines;
    }
    report.batches = this.queue.length;
    report.lines = this.pendingLines;
    // Segments whose batches are all done go; the last one is appended to.
    while (this.segments.length > 1 && this.segments[0]!.lastBatch <= this.acked) await this.deleteOldest();
    const last = this.segments.at(-1);
    if (last) this.active = await open(last.path, 'r+');
    else await this.rotate();
    if (legacy.length > 0) report.migrated = await this.migrate(legacy);
    return report;
  }

  /** The older spool (one `.lp` file per batch): its batches become frames, then its files go. */
  private async migrate(names: string[]): Promise<number> {
    const batches: string[][] = [];
    for (const name of names) {
      const text = await readFile(join(this.dir, name), 'utf8');
      batches.push(text.split('\n').filter((l) => l.length > 0));
    }
    await this.appendLocked(batches);
    for (const name of names) await rm(join(this.dir, name), { force: true });
    return batches.length;
  }

  /** A new empty segment to append to; its directory entry fsynced so a power cut keeps it. */
  private async rotate(): Promise<void> {
    await this.active?.close();
    this.active = undefined;
    const no = (this.segments.at(-1)?.no ?? 0) + 1;
    const segment: Segment = { no, path: join(this.dir, segName(no)), size: 0, lastBatch: 0 };
    this.active = await open(segment.path, 'wx');
    this.segments.push(segment);
    this.broken = false;
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  /** Deletes the oldest segment; its batches not yet done are dropped and counted. Returns the lines dropped. */
  private async deleteOldest(): Promise<number> {
    const segment = this.segments.shift()!;
    if (this.segments.length === 0) {
      await this.active?.close();
      this.active = undefined;
    }
    await rm(segment.path, { force: true });
    this.diskBytes -= segment.size;
    let lines = 0;
    while (this.head < this.queue.length && this.queue[this.head]!.segment === segment) lines += this.forget(this.queue[this.head++]!);
    this.compact();
    this.dropped += lines;
    return lines;
  }

  private forget(e: Entry): number {
    this.pendingBytes -= e.bytes;
    this.pendingLines -= e.lines;
    if (e.frame) this.cachedBytes -= e.frame.length;
    e.frame = undefined;
    return e.lines;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Appends batches as frames, then one fsync for them all: when this
   * resolves they survive a crash. Makes room first (oldest segments go).
   * Returns the lines dropped for room. Throws (naming the file) when the
   * disk does not take them; then nothing of them counts as spooled.
   */
  async append(batches: readonly (readonly string[])[]): Promise<number> {
    await this.open();
    return this.serial(() => this.appendLocked(batches));
  }

  private async appendLocked(batches: readonly (readonly string[])[]): Promise<number> {
    if (this.closed) throw new Error(`disk spool ${this.dir} is closed`);
    // Lines of old segments deleted for room (counted as they go) and of new batches that cannot be kept.
    let dropped = 0;
    let refused = 0;
    let frames: { frame: Buffer; seq: number; lines: number }[] = [];
    for (const b of batches) {
      if (b.length === 0) continue;
      const seq = this.nextSeq++;
      const frame = batchFrame(b, seq);
      if (frame.length + FRAME_HEADER > this.maxBytes) {
        // A single batch larger than the whole spool cannot be kept.
        refused += b.length;
        continue;
      }
      frames.push({ frame, seq, lines: b.length });
    }
    let need = frames.reduce((n, f) => n + f.frame.length, 0);
    // Room for the frames and one acknowledgement after them.
    while (this.diskBytes + need + FRAME_HEADER > this.maxBytes && (this.segments.length > 1 || this.segments[0]!.size > 0)) {
      if (this.segments.length === 1) await this.rotate();
      dropped += await this.deleteOldest();
    }
    while (frames.length > 0 && this.diskBytes + need + FRAME_HEADER > this.maxBytes) {
      // The new batches alone are more than the spool holds: the oldest of them go.
      const f = frames[0]!;
      frames = frames.slice(1);
      need -= f.frame.length;
      refused += f.lines;
    }
    this.dropped += refused;
    dropped += refused;
    if (frames.length === 0) return dropped;
    if (!this.active || this.broken || this.segments.at(-1)!.size >= this.segmentBytes) await this.rotate();
    const segment = this.segments.at(-1)!;
    const start = segment.size;
    const body = frames.length === 1 ? frames[0]!.frame : Buffer.concat(frames.map((f) => f.frame));
    try {
      await this.active!.write(body, 0, body.length, start);
      await this.active!.datasync();
    } catch (err) {
      // Take the partial append back; if even that fails, the next append starts a new segment.
      try {
        await this.active!.truncate(start);
      } catch {
        this.broken = true;
      }
      throw new Error(`disk spool ${segment.path}: append of ${frames.length} batches (${body.length} bytes) failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    segment.size = start + body.length;
    this.diskBytes += body.length;
    let at = start;
    for (const f of frames) {
      const e: Entry = { seq: f.seq, segment, offset: at, bytes: f.frame.length, lines: f.lines, crc: f.frame.readUInt32LE(8) };
      if (this.cachedBytes + f.frame.length <= CACHE_BYTES) {
        e.frame = f.frame;
        this.cachedBytes += f.frame.length;
      }
      this.queue.push(e);
      this.pendingBytes += e.bytes;
      this.pendingLines += e.lines;
      segment.lastBatch = f.seq;
      at += f.frame.length;
    }
    return dropped;
  }

  /**
   * The oldest batch not yet done, without removing it. A frame that reads
   * back different from what was written (the disk garbled it) is dropped,
   * counted, and reported through onLost, and the next one is returned.
   */
  async peek(onLost?: (what: string, lines: number) => void): Promise<SpooledBatch | undefined> {
    await this.open();
    return this.serial(async () => {
      while (this.head < this.queue.length) {
        const e = this.queue[this.head]!;
        let frame = e.frame;
        let problem = '';
        if (!frame) {
          frame = Buffer.allocUnsafe(e.bytes);
          const fh = await open(e.segment.path, 'r');
          try {
            const { bytesRead } = await fh.read(frame, 0, e.bytes, e.offset);
            if (bytesRead !== e.bytes) problem = `${bytesRead} of ${e.bytes} bytes readable`;
          } finally {
            await fh.close();
          }
          if (!problem && crc32(frame.subarray(FRAME_HEADER), crc32(frame.subarray(12, FRAME_HEADER))) !== e.crc) problem = 'CRC does not match';
        }
        const batch = problem ? undefined : decodeBatch(e.seq, e.lines, frame);
        if (batch) return batch;
        this.head++;
        this.dropped += this.forget(e);
        this.compact();
        onLost?.(`disk spool ${e.segment.path} offset ${e.offset}: batch ${e.seq} reads back garbled (${problem || 'line table'})`, e.lines);
      }
      return undefined;
    });
  }

  /**
   * Every batch up to seq is done (InfluxDB took it or refused it as data).
   * Segments holding only done batches are deleted; the acknowledgement is
   * written (not fsynced) when the spool has caught up, or every 64 batches.
   */
  async ack(seq: number): Promise<void> {
    await this.open();
    return this.serial(async () => {
      if (seq <= this.acked) return;
      this.acked = seq;
      while (this.head < this.queue.length && this.queue[this.head]!.seq <= seq) this.forget(this.queue[this.head++]!);
      this.compact();
      while (this.segments.length > 1 && this.segments[0]!.lastBatch <= this.acked) await this.deleteOldest();
      const caughtUp = this.empty;
      if (caughtUp && this.segments.length === 1 && this.segments[0]!.size >= this.segmentBytes) {
        // A full segment with nothing left to send: a fresh one, and deleting the old acknowledges all.
        await this.rotate();
        await this.deleteOldest();
        this.ackOnDisk = this.acked;
        return;
      }
      if (caughtUp || this.acked - this.ackOnDisk >= ACK_EVERY) await this.writeAck();
    });
  }

  /** The acknowledgement, unfsynced; when it cannot be written, after a crash those batches are sent again, which InfluxDB takes as the same points. */
  private async writeAck(): Promise<void> {
    if (!this.active || this.broken || this.acked <= this.ackOnDisk || this.diskBytes + FRAME_HEADER > this.maxBytes) return;
    const segment = this.segments.at(-1)!;
    const frame = ackFrame(this.acked);
    try {
      await this.active.write(frame, 0, frame.length, segment.size);
      segment.size += frame.length;
      this.diskBytes += frame.length;
      this.ackOnDisk = this.acked;
    } catch {
      // see above
    }
  }

  /** Writes the last acknowledgement and closes the segment being appended to; what is not done stays for the next open. */
  async close(): Promise<void> {
    await this.serial(async () => {
      this.closed = true;
      await this.writeAck();
      await this.active?.close();
      this.active = undefined;
    });
  }
}
