// Parsing off the receivers' thread. The sockets and the stream framing stay
// on the main thread; log lines and flow datagrams are packed into batches
// (their bytes copied once, from the socket's chunk, into one shared buffer,
// an index of offsets and flags beside it: one postMessage per batch, not per
// message, and nothing copied or decoded to text on the way) for worker
// threads (ingest-worker.ts) that parse, decode and encode them, and hand
// back write-ahead-log frames.
//
// The receivers never wait on a thread:
// - what waits for the threads is bounded in bytes (max_queue): past it a
//   UDP datagram is dropped (counted) and a TCP/TLS sender paused until the
//   queue has drained to half;
// - a thread that has not answered a batch within the watchdog's time is
//   terminated and started again; the batch it was on is stored raw (log
//   lines, unparsed) or counted as lost (flow datagrams: without their thread
//   the templates are gone too); the batches behind it go to the new thread.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { emptyRecord, FLAG_SLOW, type TrafficRecord } from './record.ts';
import { withoutEol } from './syslog.ts';
import type { IngestBatch, IngestResult, IngestWorkerData } from './ingest-worker.ts';

export interface IngestStats {
  /** Log lines whose parse took longer than parse_budget: stored as plain syslog records. */
  over_budget: number;
  /** Parsing threads terminated (no answer within the watchdog's time, or crashed) and started again. */
  worker_restarts: number;
  /** Flow datagrams lost with a terminated flow thread. */
  decode_lost: number;
  /** Log lines stored raw because their thread was terminated. */
  stored_raw: number;
  /** UDP datagrams dropped because the queue to the parsing threads was full. */
  queue_dropped: number;
}

export interface IngestOptions {
  schools: Map<string, string>;
  utcOffsetMinutes: number;
  parseBudgetMs: number;
  maxHeld: number;
  maxHeldBytes: number;
  holdMs: number;
  /** Bytes waiting for (or being worked on by) the threads, at most. */
  maxQueueBytes: number;
  /** A thread that has not answered a batch in this long is terminated. */
  watchdogMs?: number;
  /** Threads for log lines (flows always have one: their templates must stay in one place). */
  syslogThreads?: number;
  log: Logger;
  /** Where the counters go (the service's own statistics object; a fresh one when absent). */
  stats?: IngestStats;
  /** A frame of `records` encoded records, to append to the write-ahead log. */
  onFrame(frame: Buffer, records: number): void;
  /** Records made on this thread (log lines of a terminated thread's batch), to append. */
  onRecords(records: TrafficRecord[]): void;
  /** What a thread counted in a batch. */
  onCounts(kind: 'syslog' | 'flow', r: IngestResult): void;
}

const BATCH_BYTES = 128 * 1024;
const BATCH_COUNT = 2048;
/** Numbers per message in a batch's index (ingest-worker.ts IngestBatch). */
const STRIDE = 5;
const INDEX_BYTES = BATCH_COUNT * STRIDE * 8;
/** Pooled batch memories a thread may hold at once (unanswered); past that a batch goes as an exact-size copy. */
const LENT = 8;
/**
 * Batches a thread is given ahead: while it has this many unanswered, the
 * next one is sent when it is full or an answer comes, not at the end of
 * each turn of the event loop (a thread that is behind gets fewer, larger
 * batches: less of its time and ours goes on the passing).
 */
const AHEAD = 2;

/**
 * A batch's memory, shared with the parsing thread (posting it copies
 * nothing): the index first, then the messages' bytes. This thread writes a
 * batch only before it is sent, the parsing thread only reads it. Pooled
 * ones (BATCH_BYTES of data) are used again once their batch is answered, so
 * a steady stream allocates nothing per batch; memory not pooled is an
 * exact-size copy, so what waits stays in proportion to its bytes.
 */
interface Slab {
  sab: SharedArrayBuffer;
  /** Where the bytes start in `sab`. */
  at: number;
  bytes: Buffer;
  numbers: Float64Array;
  pooled: boolean;
}

function slab(indexBytes: number, dataBytes: number, pooled: boolean): Slab {
  const sab = new SharedArrayBuffer(indexBytes + dataBytes);
  return { sab, at: indexBytes, bytes: Buffer.from(sab, indexBytes, dataBytes), numbers: new Float64Array(sab, 0, indexBytes / 8), pooled };
}

interface Sent {
  id: number;
  slab: Slab;
  count: number;
  exporters: string[];
  bytes: number;
  sentAt: number;
}

/** One thread and the batch being filled for it. */
class Lane {
  worker!: Worker;
  readonly inflight: Sent[] = [];
  private slab: Slab = slab(INDEX_BYTES, BATCH_BYTES, true);
  private readonly spare: Slab[] = [];
  /** Pooled memories sent and not yet answered. */
  private lent = 0;
  private used = 0;
  private count = 0;
  private exporters: string[] = [];
  private exporterNo = new Map<string, number>();
  /** The last exporter added and its number in this batch (-1: none yet): most messages come from the one before's sender. */
  private lastExporter = '';
  private lastNo = -1;
  private scheduled = false;
  private stopped = false;
  private lastAnswer = 0;
  private readonly kind: 'syslog' | 'flow';
  private readonly ingest: Ingest;
  private readonly workerData: IngestWorkerData;

  constructor(kind: 'syslog' | 'flow', ingest: Ingest, workerData: IngestWorkerData) {
    this.kind = kind;
    this.ingest = ingest;
    this.workerData = workerData;
    this.spawn();
  }

  private spawn(): void {
    const w = new Worker(new URL('./ingest-worker.ts', import.meta.url), { workerData: this.workerData });
    this.worker = w;
    this.lastAnswer = Date.now();
    w.on('message', (r: IngestResult) => {
      if (this.worker === w) this.answered(r);
    });
    w.on('error', (err) => {
      if (this.worker === w && !this.stopped) this.restart(`the ${this.kind} parsing thread failed: ${err.message}`);
    });
    w.on('exit', (code) => {
      if (this.worker === w && !this.stopped) this.restart(`the ${this.kind} parsing thread exited (code ${code})`);
    });
  }

  /** A message: the bytes buf[start, end), copied into the batch; `flags` (record.ts FLAG_*) go with it to its record. */
  add(buf: Buffer, start: number, end: number, exporter: string, recvMs: number, flags: number): void {
    const len = end - start;
    if (this.used + len > this.slab.bytes.length) {
      // A batch is never grown (that would copy it): it is sent, and the message starts the next one.
      this.send();
      if (len > this.slab.bytes.length) this.slab = slab(INDEX_BYTES, len, false);
    }
    buf.copy(this.slab.bytes, this.used, start, end);
    let no = this.lastNo;
    if (exporter !== this.lastExporter || no < 0) {
      no = this.exporterNo.get(exporter) ?? -1;
      if (no < 0) {
        no = this.exporters.length;
        this.exporters.push(exporter);
        this.exporterNo.set(exporter, no);
      }
      this.lastExporter = exporter;
      this.lastNo = no;
    }
    const x = this.slab.numbers;
    const i = this.count * STRIDE;
    x[i] = this.used;
    x[i + 1] = len;
    x[i + 2] = recvMs;
    x[i + 3] = no;
    x[i + 4] = flags;
    this.used += len;
    this.count++;
    this.ingest.queuedBytes += len;
    if (this.used >= BATCH_BYTES || this.count >= BATCH_COUNT) this.send();
    else if (this.inflight.length < AHEAD) this.schedule();
  }

  /** Sends the batch being filled at the end of this turn of the event loop. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  /** Sends the batch being filled. */
  send(): void {
    if (this.count === 0) return;
    let sent = this.slab;
    if (!sent.pooled || this.lent < LENT) {
      // This memory goes with the batch; the next batch takes a spare one.
      if (sent.pooled) this.lent++;
      this.slab = this.spare.pop() ?? slab(INDEX_BYTES, BATCH_BYTES, true);
    } else {
      // Enough pooled memory is out: an exact-size copy goes, and this memory takes the next batch.
      const ib = this.count * STRIDE * 8;
      sent = slab(ib, this.used, false);
      sent.numbers.set(this.slab.numbers.subarray(0, this.count * STRIDE));
      this.slab.bytes.copy(sent.bytes, 0, 0, this.used);
    }
    const s: Sent = { id: this.ingest.nextId++, slab: sent, count: this.count, exporters: this.exporters, bytes: this.used, sentAt: Date.now() };
    this.used = 0;
    this.count = 0;
    this.exporters = [];
    this.exporterNo = new Map();
    this.lastNo = -1;
    this.inflight.push(s);
    this.post(s);
  }

  private post(s: Sent): void {
    s.sentAt = Date.now();
    // Shared memory: the thread reads the batch where it is; it stays here until answered (a terminated thread's batch is stored raw from it).
    const b: IngestBatch = { id: s.id, memory: s.slab.sab, at: s.slab.at, bytes: s.bytes, count: s.count, exporters: s.exporters };
    this.worker.postMessage(b);
  }

  private answered(r: IngestResult): void {
    this.lastAnswer = Date.now();
    const k = this.inflight.findIndex((s) => s.id === r.id);
    if (k < 0) return;
    const [s] = this.inflight.splice(k, 1);
    this.ingest.opts.onCounts(this.kind, r);
    // The frame is handed on before the queue shrinks: a sender waiting for the drain finds it in the log's queue.
    if (r.frame && r.records > 0) this.ingest.opts.onFrame(Buffer.from(r.frame), r.records);
    this.ingest.release(s!.bytes);
    // Its thread is done with it: pooled memory takes a later batch.
    if (s!.slab.pooled) {
      this.lent--;
      if (this.spare.length < LENT) this.spare.push(s!.slab);
    }
    if (this.count > 0 && this.inflight.length < AHEAD) this.schedule();
  }

  /** How long the thread has been on its current batch (ms; since it was sent or since the thread's last answer, whichever is later), 0 when idle. */
  age(now: number): number {
    return this.inflight.length > 0 ? now - Math.max(this.inflight[0]!.sentAt, this.lastAnswer) : 0;
  }

  restart(why: string): void {
    const old = this.worker;
    this.ingest.stats.worker_restarts++;
    const culprit = this.inflight.shift();
    const rest = this.inflight.splice(0);
    let lost = '';
    if (culprit) {
      this.ingest.release(culprit.bytes);
      // Not used again: the terminated thread may still be reading it.
      if (culprit.slab.pooled) this.lent--;
      if (this.kind === 'syslog') {
        this.ingest.opts.onRecords(rawRecords(culprit, this.workerData));
        this.ingest.stats.stored_raw += culprit.count;
        lost = `; its batch of ${culprit.count} log lines stored raw (unparsed)`;
      } else {
        this.ingest.stats.decode_lost += culprit.count;
        lost = `; its batch of ${culprit.count} flow datagrams lost, and the templates it held`;
      }
    }
    this.ingest.opts.log.error({ part: 'archive', thread: this.kind, restarts: this.ingest.stats.worker_restarts }, `${why}${lost}; thread started again`);
    this.spawn();
    void old.terminate().catch(() => undefined);
    for (const s of rest) {
      this.inflight.push(s);
      this.post(s);
    }
    if (this.count > 0 && this.inflight.length < AHEAD) this.schedule();
  }

  async stop(deadline: number): Promise<void> {
    this.send();
    while (this.inflight.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.stopped = true;
    await this.worker.terminate();
  }
}

/** The plain syslog records of a batch (its thread never answered): every line kept whole, flagged as given up (FLAG_SLOW) besides its own flags. */
function rawRecords(s: Sent, wd: IngestWorkerData): TrafficRecord[] {
  const schools = new Map(wd.schools);
  const out: TrafficRecord[] = [];
  const x = s.slab.numbers;
  for (let i = 0; i < s.count; i++) {
    const o = x[i * STRIDE]!;
    const exporter = s.exporters[x[i * STRIDE + 3]!]!;
    const r = emptyRecord('log', 'syslog', exporter, x[i * STRIDE + 2]!);
    r.raw = withoutEol(s.slab.bytes.toString('utf8', o, o + x[i * STRIDE + 1]!));
    r.flags = x[i * STRIDE + 4]! | FLAG_SLOW;
    r.school = schools.get(exporter) ?? null;
    out.push(r);
  }
  return out;
}

export class Ingest {
  readonly stats: IngestStats;
  /** Bytes in batches not yet answered. */
  queuedBytes = 0;
  nextId = 1;
  readonly opts: IngestOptions;
  private readonly syslog: Lane[] = [];
  private readonly flow: Lane;
  private next = 0;
  private readonly watchdog: NodeJS.Timeout;
  private readonly watchdogMs: number;
  private drainWaiters: { bytes: number; resolve: () => void }[] = [];

  constructor(opts: IngestOptions) {
    this.opts = opts;
    this.stats = opts.stats ?? { over_budget: 0, worker_restarts: 0, decode_lost: 0, stored_raw: 0, queue_dropped: 0 };
    this.watchdogMs = opts.watchdogMs ?? 3_000;
    const common = {
      schools: [...opts.schools],
      utcOffsetMinutes: opts.utcOffsetMinutes,
      parseBudgetMs: opts.parseBudgetMs,
      maxHeld: opts.maxHeld,
      maxHeldBytes: opts.maxHeldBytes,
      holdMs: opts.holdMs,
      testHook: process.env.KW_TEST_PARSE_HOOK === '1',
    };
    for (let i = 0; i < Math.max(1, opts.syslogThreads ?? 1); i++) this.syslog.push(new Lane('syslog', this, { ...common, kind: 'syslog' }));
    this.flow = new Lane('flow', this, { ...common, kind: 'flow' });
    this.watchdog = setInterval(() => {
      const now = Date.now();
      for (const lane of [...this.syslog, this.flow]) {
        const age = lane.age(now);
        if (age > this.watchdogMs) lane.restart(`a parsing thread did not answer a batch within ${Math.round(age)} ms (limit ${this.watchdogMs} ms)`);
      }
    }, Math.max(50, Math.min(500, this.watchdogMs / 4)));
    this.watchdog.unref();
  }

  /** Full: a UDP datagram is to be dropped, a stream sender paused. */
  get full(): boolean {
    return this.queuedBytes >= this.opts.maxQueueBytes;
  }

  /**
   * A log line: the bytes buf[start, end) (a datagram, or a framed message
   * in a stream's chunk), copied; `flags` (FLAG_CUT) go to its record.
   * False when the queue is full and it was not taken. `force`: taken all
   * the same (a stream's messages already framed; its sender is paused
   * instead).
   */
  addSyslog(buf: Buffer, start: number, end: number, exporter: string, recvMs: number, flags = 0, force = false): boolean {
    if (this.full && !force) return false;
    const lanes = this.syslog;
    const lane = lanes.length === 1 ? lanes[0]! : lanes[this.next++ % lanes.length]!;
    lane.add(buf, start, end, exporter, recvMs, flags);
    return true;
  }

  /** A flow datagram; false when the queue is full and it was not taken. */
  addFlow(msg: Buffer, exporter: string, recvMs: number): boolean {
    if (this.full) return false;
    this.flow.add(msg, 0, msg.length, exporter, recvMs, 0);
    return true;
  }

  /** Resolves once the queue has drained to `bytes` (default: half the limit): a paused stream sender waits for this. */
  drained(bytes = this.opts.maxQueueBytes / 2): Promise<void> {
    if (this.queuedBytes <= bytes) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push({ bytes, resolve }));
  }

  release(bytes: number): void {
    this.queuedBytes -= bytes;
    if (this.drainWaiters.length === 0) return;
    const keep: typeof this.drainWaiters = [];
    for (const w of this.drainWaiters) {
      if (this.queuedBytes <= w.bytes) w.resolve();
      else keep.push(w);
    }
    this.drainWaiters = keep;
  }

  /** Sends what is being batched, waits (up to `ms`) for the threads' answers, and ends the threads. */
  async stop(ms = 5_000): Promise<void> {
    clearInterval(this.watchdog);
    const deadline = Date.now() + ms;
    await Promise.all([...this.syslog, this.flow].map((l) => l.stop(deadline)));
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of ws) w.resolve();
  }
}
