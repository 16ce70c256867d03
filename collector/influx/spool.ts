// The disk spool: batches of line protocol that InfluxDB could not take yet,
// one file per batch, named so that name order is arrival order. A batch is
// on disk (written, fsynced, renamed) before the writer forgets it, so a
// crash or a restart loses nothing the spool accepted. Bounded: past
// max_bytes the oldest batches are dropped, and counted.
import { mkdir, readdir, readFile, rename, rm, stat, open } from 'node:fs/promises';
import { join } from 'node:path';

export interface SpoolStats {
  files: number;
  bytes: number;
  /** Lines dropped because the spool was full, since start. */
  droppedLines: number;
}

interface Entry {
  name: string;
  bytes: number;
  lines: number;
}

const NAME = /^(\d{16})-(\d+)\.lp$/;

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  private entries: Entry[] = [];
  private seq = 0;
  private bytes = 0;
  private dropped = 0;
  private ready: Promise<void> | undefined;

  constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = maxBytes;
  }

  /** Reads what an earlier run left behind; called once, before anything else. */
  open(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      const names = (await readdir(this.dir)).sort();
      for (const name of names) {
        const m = NAME.exec(name);
        if (!m) {
          if (name.endsWith('.tmp')) await rm(join(this.dir, name), { force: true }); // a write cut by a crash
          continue;
        }
        const bytes = (await stat(join(this.dir, name))).size;
        this.entries.push({ name, bytes, lines: Number(m[2]) });
        this.bytes += bytes;
        this.seq = Math.max(this.seq, Number(m[1]));
      }
    })();
    return this.ready;
  }

  get stats(): SpoolStats {
    return { files: this.entries.length, bytes: this.bytes, droppedLines: this.dropped };
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  get lines(): number {
    return this.entries.reduce((n, e) => n + e.lines, 0);
  }

  /** Appends one batch. Returns the number of older lines dropped to make room. */
  async append(lines: readonly string[]): Promise<number> {
    await this.open();
    const body = lines.join('\n') + '\n';
    const bytes = Buffer.byteLength(body);
    let droppedNow = 0;
    while (this.entries.length > 0 && this.bytes + bytes > this.maxBytes) {
      const oldest = this.entries.shift()!;
      await rm(join(this.dir, oldest.name), { force: true });
      this.bytes -= oldest.bytes;
      droppedNow += oldest.lines;
    }
    if (bytes > this.maxBytes) {
      // A single batch larger than the whole spool cannot be kept.
      this.dropped += droppedNow + lines.length;
      return droppedNow + lines.length;
    }
    const name = `${String(++this.seq).padStart(16, '0')}-${lines.length}.lp`;
    const tmp = join(this.dir, name + '.tmp');
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, name));
    this.entries.push({ name, bytes, lines: lines.length });
    this.bytes += bytes;
    this.dropped += droppedNow;
    return droppedNow;
  }

  /** The oldest batch, without removing it. */
  async peek(): Promise<{ name: string; body: string; lines: number } | undefined> {
    await this.open();
    const e = this.entries[0];
    if (!e) return undefined;
    return { name: e.name, body: await readFile(join(this.dir, e.name), 'utf8'), lines: e.lines };
  }

  /** Removes the oldest batch once InfluxDB has taken it. */
  async remove(name: string): Promise<void> {
    const i = this.entries.findIndex((e) => e.name === name);
    if (i < 0) return;
    const [e] = this.entries.splice(i, 1);
    this.bytes -= e!.bytes;
    await rm(join(this.dir, name), { force: true });
  }
}
