// Batches points for InfluxDB. Nothing accepted here is lost while the disk
// holds out: a batch InfluxDB does not take goes to the disk spool, and while
// the spool holds anything, newer batches queue behind it so that InfluxDB
// receives points in the order they were measured. The spool drains with
// exponential backoff once InfluxDB answers again.
import type { Logger } from 'pino';
import { InfluxClient, InfluxHttpError } from './client.ts';
import { Spool } from './spool.ts';

export interface WriterOptions {
  batchSize: number;
  flushIntervalMs: number;
  /** First wait after a failed write; doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface WriterStats {
  written: number;
  spooled: number;
  dropped: number;
  rejected: number;
  writeErrors: number;
  spoolBytes: number;
  spoolLines: number;
  lastError?: string;
  lastWriteAt?: number;
}

export class InfluxWriter {
  private readonly client: InfluxClient;
  private readonly spool: Spool;
  private readonly log: Logger;
  private readonly opts: Required<WriterOptions>;
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  readonly stats: WriterStats = { written: 0, spooled: 0, dropped: 0, rejected: 0, writeErrors: 0, spoolBytes: 0, spoolLines: 0 };

  constructor(client: InfluxClient, spool: Spool, log: Logger, opts: WriterOptions) {
    this.client = client;
    this.spool = spool;
    this.log = log;
    this.opts = { minBackoffMs: 1000, maxBackoffMs: 60_000, ...opts };
    this.backoffMs = this.opts.minBackoffMs;
  }

  /** Opens the spool; batches an earlier run left there are sent first. */
  async start(): Promise<void> {
    await this.spool.open();
    this.refreshSpoolStats();
    if (!this.spool.empty) {
      this.log.info({ spool_lines: this.spool.lines, spool_bytes: this.spool.stats.bytes }, 'spool holds batches from an earlier run; sending them first');
      this.enqueue(() => this.drain());
    }
  }

  write(lines: readonly string[]): void {
    if (this.closed) throw new Error('influx writer is closed');
    for (const l of lines) this.buffer.push(l);
    if (this.buffer.length >= this.opts.batchSize) this.cut();
    else this.timer ??= setTimeout(() => this.cut(), this.opts.flushIntervalMs);
  }

  /** Sends what is buffered and waits for it (and for the spool to drain, if InfluxDB answers). */
  async flush(): Promise<void> {
    this.cut();
    await this.chain;
  }

  /** Flushes; what InfluxDB does not take now stays in the spool for the next run. */
  async close(): Promise<void> {
    this.cut();
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.chain;
  }

  private cut(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.opts.batchSize);
      this.enqueue(() => this.send(batch));
    }
  }

  private enqueue(job: () => Promise<void>): void {
    this.chain = this.chain.then(job).catch((err) => this.log.error({ err }, 'influx writer job failed'));
  }

  private async send(batch: string[]): Promise<void> {
    if (!this.spool.empty) {
      // Keep order: behind what is already waiting. While a retry is
      // scheduled, InfluxDB has just failed: leave it the backoff, rather
      // than trying again with every new batch.
      await this.toSpool(batch);
      if (!this.retryTimer) await this.drain();
      return;
    }
    try {
      await this.post(batch);
    } catch (err) {
      this.onError(err, batch.length);
      await this.toSpool(batch);
      this.scheduleRetry();
    }
  }

  /**
   * Sends one batch. What InfluxDB refuses as data (400: a bad line, a field
   * type conflict) is counted, line by line, and logged here and never
   * retried; only errors
   * that may pass later (network, 5xx, auth) are thrown to the caller.
   */
  private async post(batch: string[]): Promise<void> {
    try {
      await this.client.write(batch.join('\n'));
    } catch (err) {
      if (!(err instanceof InfluxHttpError) || (err.status !== 400 && err.status !== 413)) throw err;
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
      this.refuse(1, err.message, batch[0]);
      return;
    }
    this.stats.written += batch.length;
    this.stats.lastWriteAt = Date.now();
    this.backoffMs = this.opts.minBackoffMs;
  }

  private refuse(lines: number, message: string, line?: string): void {
    this.stats.rejected += lines;
    this.stats.dropped += lines;
    this.log.error({ err: message, refused: lines, ...(line ? { line: line.slice(0, 300) } : {}) }, 'influxdb refused points; they are not retried');
  }

  private onError(err: unknown, lines: number): void {
    this.stats.writeErrors++;
    this.stats.lastError = (err as Error).message;
    this.log.warn({ err: (err as Error).message, lines, retry_in_ms: this.backoffMs }, 'influxdb write failed; batch kept in the disk spool');
  }

  private async toSpool(batch: string[]): Promise<void> {
    const dropped = await this.spool.append(batch);
    this.stats.spooled += batch.length;
    if (dropped > 0) {
      this.stats.dropped += dropped;
      this.log.error({ dropped_lines: dropped, spool_max_bytes: this.spool.maxBytes }, 'disk spool full: oldest points dropped');
    }
    this.refreshSpoolStats();
  }

  /** Sends spooled batches oldest first until the spool is empty or InfluxDB fails again. */
  private async drain(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (;;) {
      const next = await this.spool.peek();
      if (!next) break;
      const lines = next.body.split('\n').filter((l) => l.length > 0);
      try {
        await this.post(lines);
      } catch (err) {
        this.onError(err, lines.length);
        this.scheduleRetry();
        break;
      }
      await this.spool.remove(next.name);
      this.refreshSpoolStats();
    }
    this.refreshSpoolStats();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.opts.maxBackoffMs, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.enqueue(() => this.drain());
    }, wait);
    this.retryTimer.unref();
  }

  private refreshSpoolStats(): void {
    this.stats.spoolBytes = this.spool.stats.bytes;
    this.stats.spoolLines = this.spool.lines;
  }
}
