// Batches points for InfluxDB through the disk spool, an outbox: a batch is
// appended to the spool and fsynced before it is sent, and leaves the spool
// when InfluxDB has taken it. So a crash (kill -9, power cut) loses no point
// the spool took; the next start sends what was not acknowledged, and a batch
// sent twice overwrites itself (same series, same timestamps).
//
// Group commit: the points of one flush interval (or one batch_size) become
// one append and one fsync, and the collector commits at the end of every
// round, so a round's points are on disk before it reports itself done.
// Appending never waits for InfluxDB: a slow or dead server holds up only the
// sending, which goes oldest first, one batch at a time, with exponential
// backoff after a failure. While a write has failed, new batches wait behind
// the old ones, so InfluxDB receives points in the order they were measured.
import type { Logger } from 'pino';
import { InfluxClient, InfluxHttpError } from '../../stores/influx/client.ts';
import { Spool, batchLines, type SpooledBatch } from './spool.ts';

export interface WriterOptions {
  batchSize: number;
  flushIntervalMs: number;
  /** First wait after a failed write; doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface WriterStats {
  written: number;
  /** Points that waited in the spool because a write to InfluxDB failed, since start. */
  spooled: number;
  dropped: number;
  rejected: number;
  writeErrors: number;
  /** Bytes and lines held back by a failed write (0 while InfluxDB takes every batch). */
  spoolBytes: number;
  spoolLines: number;
  /** Lines in the spool not yet acknowledged by InfluxDB, being sent or held back. */
  pendingLines: number;
  /** Appends to the spool (each one fsync), since start. */
  commits: number;
  lastError?: string;
  lastWriteAt?: number;
}

export class InfluxWriter {
  private readonly client: InfluxClient;
  private readonly spool: Spool;
  private readonly log: Logger;
  private readonly opts: Required<WriterOptions>;
  private buffer: string[] = [];
  /** Batches the disk did not take (it failed): kept in memory, bounded, tried again with the next append. */
  private unspooled: string[][] = [];
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private appending: Promise<void> = Promise.resolve();
  private sending: Promise<void> | undefined;
  /** A write failed and the spool has not drained since. */
  private failing = false;
  private closed = false;
  readonly stats: WriterStats = { written: 0, spooled: 0, dropped: 0, rejected: 0, writeErrors: 0, spoolBytes: 0, spoolLines: 0, pendingLines: 0, commits: 0 };

  constructor(client: InfluxClient, spool: Spool, log: Logger, opts: WriterOptions) {
    this.client = client;
    this.spool = spool;
    this.log = log;
    this.opts = { minBackoffMs: 1000, maxBackoffMs: 60_000, ...opts };
    this.backoffMs = this.opts.minBackoffMs;
  }

  /** Opens the spool; batches an earlier run left there are sent first. */
  async start(): Promise<void> {
    const report = await this.spool.open();
    for (const c of report.cut) {
      this.log.warn({ file: c.file, offset: c.offset, bytes_cut: c.bytes, reason: c.reason }, 'disk spool: cut a torn tail (an append a crash interrupted); the batches before it are kept');
    }
    if (report.migrated > 0) this.log.info({ batches: report.migrated, dir: this.spool.dir }, 'disk spool: batches from the older one-file-per-batch spool taken over');
    if (!this.spool.empty) {
      // Held back by an earlier run: not delivered yet, as after a failed write.
      this.failing = true;
      this.log.info({ spool_lines: this.spool.lines, spool_bytes: this.spool.stats.bytes }, 'spool holds batches from an earlier run; sending them first');
    }
    this.refreshSpoolStats();
    this.kick();
  }

  write(lines: readonly string[]): void {
    if (this.closed) throw new Error('influx writer is closed');
    for (const l of lines) this.buffer.push(l);
    if (this.buffer.length >= this.opts.batchSize) void this.cut();
    else this.timer ??= setTimeout(() => void this.cut(), this.opts.flushIntervalMs);
  }

  /** Makes what is buffered durable (one append, one fsync); resolves when it is on disk. Does not wait for InfluxDB. */
  commit(): Promise<void> {
    return this.cut();
  }

  /** Commits what is buffered and waits for it to be sent (and for the spool to drain, unless InfluxDB is backed off). */
  async flush(): Promise<void> {
    await this.commit();
    this.kick();
    while (this.sending) await this.sending;
  }

  /** Commits; one more try to send unless InfluxDB is backed off; what it does not take stays in the spool for the next run. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.commit();
    this.closed = true;
    const backedOff = this.retryTimer !== undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!backedOff) this.kick();
    while (this.sending) await this.sending;
    await this.spool.close();
  }

  private cut(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length > 0 && !this.closed) {
      const batches: string[][] = [];
      while (this.buffer.length > 0) batches.push(this.buffer.splice(0, this.opts.batchSize));
      this.appending = this.appending.then(() => this.persist(batches));
    }
    return this.appending;
  }

  /** Appends batches to the spool (one fsync); never rejects. */
  private async persist(batches: string[][]): Promise<void> {
    const all = this.unspooled.length > 0 ? [...this.unspooled, ...batches] : batches;
    const newLines = batches.reduce((n, b) => n + b.length, 0);
    try {
      const dropped = await this.spool.append(all);
      this.stats.commits++;
      this.unspooled = [];
      if (this.failing) this.stats.spooled += newLines;
      if (dropped > 0) {
        this.stats.dropped += dropped;
        this.log.error({ dropped_lines: dropped, spool_max_bytes: this.spool.maxBytes }, 'disk spool full: oldest points dropped');
      }
    } catch (err) {
      // The disk failed (full, read-only, gone): keep the batches in memory, as many as the spool would hold, and send them from there.
      let bytes = 0;
      let dropped = 0;
      const kept: string[][] = [];
      for (let i = all.length - 1; i >= 0; i--) {
        const b = all[i]!;
        const size = b.reduce((n, l) => n + l.length + 1, 0);
        if (bytes + size > this.spool.maxBytes) dropped += b.length;
        else {
          kept.unshift(b);
          bytes += size;
        }
      }
      this.unspooled = kept;
      this.stats.dropped += dropped;
      this.log.error({ err: (err as Error).message, held_in_memory_lines: kept.reduce((n, b) => n + b.length, 0), dropped_lines: dropped }, 'disk spool append failed: points held in memory until the disk or InfluxDB takes them (a crash now would lose them)');
    }
    this.refreshSpoolStats();
    this.kick();
  }

  /** Starts sending unless a send is running or InfluxDB is backed off. */
  private kick(): void {
    if (this.sending || this.retryTimer) return;
    if (this.spool.empty && this.unspooled.length === 0) {
      this.failing = false;
      this.refreshSpoolStats();
      return;
    }
    this.sending = this.pump().finally(() => {
      this.sending = undefined;
      if (!this.closed) this.kick();
    });
  }

  /** Sends the spool oldest first until it is empty or InfluxDB fails; then what the disk did not take. */
  private async pump(): Promise<void> {
    try {
      for (;;) {
        const next = await this.spool.peek((what, lines) => {
          this.stats.dropped += lines;
          this.log.error({ err: what, dropped_lines: lines }, 'disk spool: a batch read back garbled is dropped');
        });
        if (next) {
          await this.postSpooled(next);
          await this.spool.ack(next.seq);
          this.refreshSpoolStats();
          continue;
        }
        const held = this.unspooled[0];
        if (!held) break;
        await this.post(held);
        const i = this.unspooled.indexOf(held);
        if (i >= 0) this.unspooled.splice(i, 1);
      }
      this.failing = false;
    } catch (err) {
      this.onFailure(err);
    }
    this.refreshSpoolStats();
  }

  private async postSpooled(b: SpooledBatch): Promise<void> {
    try {
      await this.client.write(b.text);
    } catch (err) {
      if (!(err instanceof InfluxHttpError) || (err.status !== 400 && err.status !== 413)) throw err;
      // Refused as data: the halving below finds the bad lines.
      await this.refused(err, batchLines(b));
      return;
    }
    this.wrote(b.lines);
  }

  /**
   * Sends one batch. What InfluxDB refuses as data (400: a bad line, a field
   * type conflict) is counted, line by line, and logged here and never
   * retried; only errors that may pass later (network, 5xx, auth) are thrown
   * to the caller.
   */
  private async post(batch: string[]): Promise<void> {
    try {
      await this.client.write(batch.join('\n'));
    } catch (err) {
      if (!(err instanceof InfluxHttpError) || (err.status !== 400 && err.status !== 413)) throw err;
      await this.refused(err, batch);
      return;
    }
    this.wrote(batch.length);
  }

  private async refused(err: InfluxHttpError, batch: string[]): Promise<void> {
    this.stats.writeErrors++;
    this.stats.lastError = err.message;
    if (batch.length > 1) {
      // Halve the batch until the bad lines stand alone: 413 (too large)
      // needs it, a type conflict inside one batch makes 1.x refuse all of
      // it, and a "partial write" names only the first bad line. Lines
      // already stored are stored again unchanged (same series and time).
      const half = Math.ceil(batch.length / 2);
      await this.post(batch.slice(0, half));
      await this.post(batch.slice(half));
      return;
    }
    this.stats.rejected += 1;
    this.stats.dropped += 1;
    this.log.error({ err: err.message, refused: 1, ...(batch[0] ? { line: batch[0].slice(0, 300) } : {}) }, 'influxdb refused points; they are not retried');
  }

  private wrote(lines: number): void {
    this.stats.written += lines;
    this.stats.lastWriteAt = Date.now();
    this.backoffMs = this.opts.minBackoffMs;
  }

  private onFailure(err: unknown): void {
    this.stats.writeErrors++;
    this.stats.lastError = (err as Error).message;
    if (!this.failing) {
      // From now on what waits is held back by the failure.
      this.failing = true;
      this.stats.spooled += this.spool.lines + this.unspooled.reduce((n, b) => n + b.length, 0);
    }
    this.log.warn({ err: (err as Error).message, spool_lines: this.spool.lines, retry_in_ms: this.backoffMs }, 'influxdb write failed; points kept in the disk spool');
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.opts.maxBackoffMs, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, wait);
    this.retryTimer.unref();
  }

  private refreshSpoolStats(): void {
    const memLines = this.unspooled.reduce((n, b) => n + b.length, 0);
    this.stats.pendingLines = this.spool.lines + memLines;
    this.stats.spoolLines = this.failing ? this.stats.pendingLines : 0;
    this.stats.spoolBytes = this.failing ? this.spool.stats.bytes : 0;
  }
}
