// The archive's manifest: an append-only, hash-chained, signed list of what
// happened to the archive. Each line is one JSON entry; each entry holds the
// previous entry's hash, its own hash (SHA-256 of the entry without `hash`
// and `sig`) and an Ed25519 signature of that hash. Sealed segments, legal
// holds, purges and retention changes are all entries, so the chain shows
// every change and `verify` can prove nothing else happened.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { appendFile, open, readFile, readdir, stat, unlink } from 'node:fs/promises';
import { existsSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface EntryBase {
  seq: number;
  type: string;
  /** When the entry was written (UTC ms). */
  at: number;
  /** Who caused it: "klaiwatch" for sealing, the officer's name for holds and purges. */
  by: string;
  prev: string;
  hash: string;
  sig: string;
}

export interface GenesisEntry extends EntryBase {
  type: 'genesis';
  /** The signing key's public half (raw Ed25519, base64). */
  public_key: string;
  retention_days: number;
}

export interface SegmentEntry extends EntryBase {
  type: 'segment';
  file: string;
  sha256: string;
  bytes: number;
  rows: number;
  /** Ingest times of the first and last record (UTC ms): retention counts from these. */
  first_recv: number;
  last_recv: number;
  /**
   * The devices' own times of its records (UTC ms; the earliest and latest
   * dev_ms), null when none gave one. A device whose clock is far off puts
   * these far from first_recv/last_recv; a query by time reads a segment if
   * either range meets it. Absent in entries written before they were kept:
   * such a segment is always read.
   */
  first_dev?: number | null;
  last_dev?: number | null;
  /** The collector's clock offset against NTP when the segment was sealed (ms), or null when not measured. */
  clock_offset_ms: number | null;
  /** The addresses its records came from (legal holds name sources by them). */
  exporters: string[];
  /** The write-ahead log file it was sealed from, and that file's inode (a reader of the log knows by it what the segment holds). */
  wal: string;
  wal_inode: number;
  /** How the file lays out the columns (layout.ts); absent in the entries of the first segments, which are layout 1. */
  layout?: number;
  /**
   * The Merkle root (RFC 6962, hex) over the hashes of its rows in the order
   * the file stores them (merkle.ts: the row hash and the tree): an evidence
   * package proves a row is in the segment with it. Absent in entries
   * sealed before roots were kept.
   */
  merkle_root?: string;
  /**
   * Set on a segment made by merging earlier ones (a day's hourly seals into
   * one file, archive.ts compact): what it was made from. Those files are
   * then removed; their entries stay in the chain.
   */
  merged_from?: MergedSegment[];
}

export interface MergedSegment {
  file: string;
  seq: number;
  sha256: string;
  rows: number;
  clock_offset_ms: number | null;
}

export interface HoldEntry extends EntryBase {
  type: 'hold';
  id: string;
  from: number;
  to: number;
  sources: string[];
  until: number;
  reason: string;
}

export interface PurgeEntry extends EntryBase {
  type: 'purge';
  files: string[];
  retention_days: number;
}

/** A hold lifted before its date (the official's order withdrawn, the case closed). */
export interface ReleaseEntry extends EntryBase {
  type: 'release';
  hold: string;
  reason: string;
}

/**
 * Bytes cut from the end of a file when the archive opened: the manifest's
 * own last line torn by a crash mid-append, or a write-ahead log's tail past
 * its last good frame (a crash mid-write, a flipped bit). The chain says
 * what was cut, and `verify` reports it.
 */
export interface RecoveryEntry extends EntryBase {
  type: 'recovery';
  /** The file cut, relative to the archive's folder (manifest.jsonl, wal/current.wal). */
  file: string;
  /** Where the cut began, how many bytes were cut, and their SHA-256. */
  offset: number;
  bytes: number;
  sha256: string;
  /** Write-ahead log: the records its frames' headers name in the cut bytes (a lower bound when `counted` is false); null for the manifest. */
  records: number | null;
  counted: boolean;
  /** Where the cut bytes were kept (relative to the archive's folder), or null, and `note` says why. */
  kept: string | null;
  note: string;
}

/**
 * The access journal's head (journal.ts) at a seal or an export: how many
 * rows it held, the last row's id and hash. `verify` finds that row again,
 * so rows deleted from the end, the file deleted or the journal re-chained
 * is named. `error`: the journal could not be read then (and why).
 */
export interface JournalEntry extends EntryBase {
  type: 'journal';
  /** What wrote it: a seal, or an export (with the export's journal row). */
  reason: 'seal' | 'export';
  rows: number;
  last_id: number;
  head: string;
  error?: string;
}

export type Entry = GenesisEntry | SegmentEntry | HoldEntry | PurgeEntry | ReleaseEntry | RecoveryEntry | JournalEntry;
type Unsigned<E extends Entry> = Omit<E, 'seq' | 'prev' | 'hash' | 'sig' | 'at'> & { at?: number };

/** Files no longer in the archive by rule: purged, or merged into a later segment. */
export function goneSegments(entries: readonly Entry[]): { purged: Set<string>; merged: Map<string, SegmentEntry> } {
  const purged = new Set<string>();
  const merged = new Map<string, SegmentEntry>();
  for (const e of entries) {
    if (e.type === 'purge') for (const f of e.files) purged.add(f);
    else if (e.type === 'segment') for (const m of e.merged_from ?? []) merged.set(m.file, e);
  }
  return { purged, merged };
}

export function liveSegments(entries: readonly Entry[]): SegmentEntry[] {
  const { purged, merged } = goneSegments(entries);
  return entries.filter((e): e is SegmentEntry => e.type === 'segment' && !purged.has(e.file) && !merged.has(e.file));
}

export const GENESIS_PREV = '0'.repeat(64);

/** An exclusive lock file; one left by a process that died is taken over after 30 s. */
async function lock(path: string): Promise<() => Promise<void>> {
  for (let i = 0; ; i++) {
    try {
      const fh = await open(path, 'wx', 0o640);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => unlink(path).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(path).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 30_000) await unlink(path).catch(() => undefined);
      else await new Promise((r) => setTimeout(r, Math.min(5 + i * 5, 100)));
    }
  }
}

/** The hash of an entry: SHA-256 of its JSON without `hash` and `sig`, keys in the order written. */
export function entryHash(e: Record<string, unknown>): string {
  const { hash: _h, sig: _s, ...rest } = e;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

export function generateSigningKey(path: string): { publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  if (existsSync(path)) throw new Error(`${path} exists: a signing key is never overwritten`);
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o400, flag: 'wx' });
  return { publicKey: rawPublicKey(publicKey) };
}

export function loadPrivateKey(pem: string): KeyObject {
  const k = createPrivateKey(pem);
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`the signing key is ${k.asymmetricKeyType}, not Ed25519`);
  return k;
}

export function rawPublicKey(k: KeyObject): string {
  const pub = k.type === 'private' ? createPublicKey(k) : k;
  // The raw 32 bytes are the last 32 of the SPKI DER encoding.
  return (pub.export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32).toString('base64');
}

export function publicKeyFromRaw(raw: string): KeyObject {
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(raw, 'base64')]);
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

export function signatureValid(e: Entry, key: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(e.hash, 'hex'), key, Buffer.from(e.sig, 'base64'));
  } catch {
    return false;
  }
}

/** A manifest file as its complete lines (with their numbers in the file) and the bytes after its last newline. */
interface ManifestText {
  lines: { text: string; line: number }[];
  /** What follows the last newline: an append torn by a crash, or one under way in another process. */
  tail: Buffer;
  tailAt: number;
}

async function readManifestText(path: string): Promise<ManifestText> {
  const buf = await readFile(path).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? Buffer.alloc(0) : Promise.reject(err)));
  const end = buf.lastIndexOf(0x0a) + 1;
  const lines: ManifestText['lines'] = [];
  buf
    .subarray(0, end)
    .toString('utf8')
    .split('\n')
    .forEach((text, i) => {
      if (text.trim() !== '') lines.push({ text, line: i + 1 });
    });
  return { lines, tail: buf.subarray(end), tailAt: end };
}

function parseLine(path: string, l: { text: string; line: number }): Entry {
  let e: unknown;
  try {
    e = JSON.parse(l.text);
  } catch {
    e = null;
  }
  if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new Error(`${path}:${l.line}: not a manifest entry (not valid JSON; run klaiwatch archive verify)`);
  return e as Entry;
}

/** Torn bytes kept aside: <manifest>.torn-<UTC time>-at-<offset> (the offset lets a crash before their entry be finished). */
const KEPT = /\.torn-[0-9TZ.]+-at-(\d{1,15})$/;

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class Manifest {
  private last: { seq: number; hash: string };
  readonly path: string;
  private readonly key: KeyObject;
  readonly entries: Entry[];

  private constructor(path: string, key: KeyObject, last: { seq: number; hash: string }, entries: Entry[]) {
    this.path = path;
    this.key = key;
    this.last = last;
    this.entries = entries;
  }

  /**
   * Opens the manifest (writing its genesis entry when new). Refuses a key
   * other than the one the genesis names, and a complete line that is not a
   * valid entry of the chain (naming its line: `verify` says more). A torn
   * last line (a crash mid-append) is kept aside, cut off, and recorded in
   * a recovery entry.
   */
  static async open(path: string, key: KeyObject, retentionDays: number): Promise<Manifest> {
    const read = await readManifestText(path);
    const entries = read.lines.map((l) => parseLine(path, l));
    const last = entries.at(-1);
    const m = new Manifest(path, key, last ? { seq: last.seq, hash: last.hash } : { seq: -1, hash: GENESIS_PREV }, entries);
    const pub = rawPublicKey(key);
    if (last) {
      const g = entries[0] as GenesisEntry;
      if (g.type !== 'genesis' || g.public_key !== pub) throw new Error(`${path}: the archive was begun with another signing key (${g.public_key}); this one is ${pub}`);
      checkChain(path, read.lines, entries, key);
    }
    const orphans = (await readdir(dirname(path)).catch(() => [] as string[])).filter((n) => n.startsWith(`${basename(path)}.torn-`) && KEPT.test(n));
    if (!last || read.tail.length > 0 || orphans.length > 0) {
      const release = await lock(`${path}.lock`);
      try {
        const now = await m.refresh();
        const torn = await m.cutTornTail(now);
        if (m.entries.length === 0) await m.write<GenesisEntry>({ type: 'genesis', by: 'klaiwatch', public_key: pub, retention_days: retentionDays });
        if (torn) await m.write(torn);
        await m.recordOrphans();
      } finally {
        await release();
      }
    }
    return m;
  }

  /**
   * Appends one signed entry and fsyncs the manifest before returning it.
   * The collector (seals, purges) and an officer's command (holds) may
   * append at the same time: a lock file serialises them, and the chain's
   * end is read again under the lock (a torn line a dead writer left is
   * cut off and recorded first).
   */
  /** `precondition` runs on the entries as they are under the lock, and may throw to refuse the append. */
  async append<E extends Entry>(e: Unsigned<E>, precondition?: (entries: readonly Entry[]) => void): Promise<E> {
    const release = await lock(`${this.path}.lock`);
    try {
      const torn = await this.cutTornTail(await this.refresh());
      if (torn) await this.write(torn);
      precondition?.(this.entries);
      return await this.write(e);
    } finally {
      await release();
    }
  }

  /** Signs and appends one entry; the caller holds the lock and has read the chain's end. */
  private async write<E extends Entry>(e: Unsigned<E>): Promise<E> {
    const { at, ...fields } = e;
    const entry = { seq: this.last.seq + 1, at: at ?? Date.now(), ...fields, prev: this.last.hash } as Record<string, unknown>;
    entry.hash = entryHash(entry);
    entry.sig = sign(null, Buffer.from(entry.hash as string, 'hex'), this.key).toString('base64');
    const fh = await open(this.path, 'a', 0o640);
    try {
      await appendFile(fh, JSON.stringify(entry) + '\n');
      await fh.datasync();
    } finally {
      await fh.close();
    }
    this.last = { seq: entry.seq as number, hash: entry.hash as string };
    this.entries.push(entry as unknown as Entry);
    return entry as unknown as E;
  }

  /**
   * Under the lock: bytes after the last newline are an append a crash cut
   * short. An entry that lacks only its newline (whole, next in the chain,
   * signed with this key) is finished; anything else is kept aside in
   * <manifest>.torn-<time>-at-<offset>, cut off, and returned as the
   * recovery entry to write. Refuses (cutting nothing) if the bytes cannot
   * be kept.
   */
  private async cutTornTail(read: ManifestText): Promise<Unsigned<RecoveryEntry> | null> {
    const { tail, tailAt } = read;
    if (tail.length === 0) return null;
    const whole = this.wholeEntry(tail);
    if (whole) {
      await appendFile(this.path, '\n', { mode: 0o640 });
      const fh = await open(this.path, 'r+');
      await fh.datasync().finally(() => fh.close());
      this.entries.push(whole);
      this.last = { seq: whole.seq, hash: whole.hash };
      return null;
    }
    const kept = `${basename(this.path)}.torn-${new Date().toISOString().replace(/[-:]/g, '')}-at-${tailAt}`;
    try {
      const out = await open(join(dirname(this.path), kept), 'wx', 0o640);
      try {
        await out.writeFile(tail);
        await out.sync();
      } finally {
        await out.close();
      }
      await syncDir(dirname(this.path));
    } catch (err) {
      throw new Error(`${this.path}: ends in a torn line of ${tail.length} bytes at byte ${tailAt} (a crash mid-append); it could not be kept aside as ${kept} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}), so it was not cut`);
    }
    const fh = await open(this.path, 'r+');
    try {
      await fh.truncate(tailAt);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    return recoveryOf(basename(this.path), tailAt, tail, kept);
  }

  /** Torn bytes kept aside whose recovery entry a crash prevented: recorded now. */
  private async recordOrphans(): Promise<void> {
    const dir = dirname(this.path);
    const named = new Set(this.entries.flatMap((e) => (e.type === 'recovery' && e.kept ? [e.kept] : [])));
    const names = (await readdir(dir)).filter((n) => n.startsWith(`${basename(this.path)}.torn-`) && !named.has(n)).sort();
    for (const n of names) {
      const at = KEPT.exec(n);
      if (!at) continue;
      const bytes = await readFile(join(dir, n));
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      // A crash after the copy and before the cut: the same bytes were cut and recorded later.
      if (this.entries.some((e) => e.type === 'recovery' && e.offset === Number(at[1]) && e.sha256 === sha256)) continue;
      await this.write(recoveryOf(basename(this.path), Number(at[1]), bytes, n, ' (recorded at the next start: the process stopped between the cut and its entry)'));
    }
  }

  private wholeEntry(tail: Buffer): Entry | null {
    try {
      const e = JSON.parse(tail.toString('utf8')) as Entry;
      if (e.seq === this.last.seq + 1 && e.prev === this.last.hash && entryHash(e as unknown as Record<string, unknown>) === e.hash && signatureValid(e, this.key)) return e;
    } catch {
      // Not whole.
    }
    return null;
  }

  /** Takes in entries another process appended (complete lines only: one may be appending now); returns what was read. */
  async refresh(): Promise<ManifestText> {
    const read = await readManifestText(this.path);
    for (const l of read.lines.slice(this.entries.length)) this.entries.push(parseLine(this.path, l));
    const last = this.entries.at(-1);
    if (last) this.last = { seq: last.seq, hash: last.hash };
    return read;
  }

  get head(): { seq: number; hash: string } {
    return { ...this.last };
  }

  /** The number the next segment file is named by (segments ever written, plus one). */
  nextSegmentNumber(): number {
    return this.entries.filter((e) => e.type === 'segment').length + 1;
  }
}

function recoveryOf(file: string, offset: number, bytes: Buffer, kept: string, more = ''): Unsigned<RecoveryEntry> {
  return {
    type: 'recovery',
    by: 'klaiwatch',
    file,
    offset,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    records: null,
    counted: true,
    kept,
    note: `an append a crash cut short: the unfinished line was kept aside and cut off${more}`,
  };
}

/**
 * Every complete entry must be whole (its hash), signed with the archive's
 * key, and follow the one before it: a line that is not is never repaired,
 * and the archive does not start (`verify` names every fault).
 */
function checkChain(path: string, lines: readonly { line: number }[], entries: readonly Entry[], key: KeyObject): void {
  let prev = GENESIS_PREV;
  entries.forEach((e, i) => {
    const where = `${path}:${lines[i]!.line} (entry ${e.seq}, ${e.type})`;
    if (e.seq !== i) throw new Error(`${where}: expected entry ${i} here (entries removed or reordered; run klaiwatch archive verify)`);
    if (e.prev !== prev) throw new Error(`${where}: does not follow the entry before it (run klaiwatch archive verify)`);
    if (entryHash(e as unknown as Record<string, unknown>) !== e.hash) throw new Error(`${where}: its content does not match its hash (altered; run klaiwatch archive verify)`);
    if (!signatureValid(e, key)) throw new Error(`${where}: the signature is not valid for the archive's key (run klaiwatch archive verify)`);
    prev = e.hash;
  });
}
