// The archive's manifest: an append-only, hash-chained, signed list of what
// happened to the archive. Each line is one JSON entry; each entry holds the
// previous entry's hash, its own hash (SHA-256 of the entry without `hash`
// and `sig`) and an Ed25519 signature of that hash. Sealed segments, legal
// holds, purges and retention changes are all entries, so the chain shows
// every change and `verify` can prove nothing else happened.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { appendFile, open, readFile, stat, unlink } from 'node:fs/promises';
import { existsSync, writeFileSync } from 'node:fs';

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

export type Entry = GenesisEntry | SegmentEntry | HoldEntry | PurgeEntry | ReleaseEntry;
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

  /** Opens the manifest (writing its genesis entry when new). Refuses a key other than the one the genesis names. */
  static async open(path: string, key: KeyObject, retentionDays: number): Promise<Manifest> {
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)));
    const entries = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          return JSON.parse(l) as Entry;
        } catch {
          throw new Error(`${path}:${i + 1}: not a manifest entry (run klaiwatch archive verify)`);
        }
      });
    const last = entries.at(-1);
    const m = new Manifest(path, key, last ? { seq: last.seq, hash: last.hash } : { seq: -1, hash: GENESIS_PREV }, entries);
    const pub = rawPublicKey(key);
    if (!last) await m.append<GenesisEntry>({ type: 'genesis', by: 'klaiwatch', public_key: pub, retention_days: retentionDays });
    else {
      const g = entries[0] as GenesisEntry;
      if (g.type !== 'genesis' || g.public_key !== pub) throw new Error(`${path}: the archive was begun with another signing key (${g.public_key}); this one is ${pub}`);
    }
    return m;
  }

  /**
   * Appends one signed entry and fsyncs the manifest before returning it.
   * The collector (seals, purges) and an officer's command (holds) may
   * append at the same time: a lock file serialises them, and the chain's
   * end is read again under the lock.
   */
  /** `precondition` runs on the entries as they are under the lock, and may throw to refuse the append. */
  async append<E extends Entry>(e: Unsigned<E>, precondition?: (entries: readonly Entry[]) => void): Promise<E> {
    const release = await lock(`${this.path}.lock`);
    try {
      await this.refresh();
      precondition?.(this.entries);
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
    } finally {
      await release();
    }
  }

  /** Takes in entries another process appended. */
  async refresh(): Promise<void> {
    const text = await readFile(this.path, 'utf8').catch(() => '');
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    for (const l of lines.slice(this.entries.length)) this.entries.push(JSON.parse(l) as Entry);
    const last = this.entries.at(-1);
    if (last) this.last = { seq: last.seq, hash: last.hash };
  }

  get head(): { seq: number; hash: string } {
    return { ...this.last };
  }

  /** The number the next segment file is named by (segments ever written, plus one). */
  nextSegmentNumber(): number {
    return this.entries.filter((e) => e.type === 'segment').length + 1;
  }
}
