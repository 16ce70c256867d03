// The access journal: every search, "who had", export and verification of
// the traffic archive, and every attempt that was refused or failed (with
// the reason), with who ran it, when, what was asked, how it ended and how
// many rows it gave. SQLite (node:sqlite, WAL), each row hash-chained to the
// one before and signed with the archive's Ed25519 key, so a removed, edited
// or forged row shows. The journal's head (rows, last id and hash) goes into
// the signed manifest at every seal and every export (a `journal` entry), so
// rows deleted from the end, the file deleted or the whole journal
// re-chained are named too: `klaiwatch archive journal --verify` and
// `klaiwatch archive verify` check it.
import { DatabaseSync } from 'node:sqlite';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, sign, verify as verifySig, type KeyObject } from 'node:crypto';
import { userInfo, hostname } from 'node:os';
import type { Entry, JournalEntry, Manifest } from './manifest.ts';

export interface JournalRow {
  id: number;
  at: number;
  /** The name the person stated (--as; for the API, the token's identity), or '' when none. */
  auditor: string;
  /** The system account that ran the command (os.userInfo()). */
  os_user: string;
  /** The account that ran it through sudo (SUDO_USER, as sudo set it), or null. */
  sudo_user: string | null;
  host: string;
  action: string;
  /** What was asked: the query's parameters, as JSON. */
  params: string;
  rows: number;
  /** "ok", "no records", "refused: <why>" or "failed: <why>"; null in rows written before outcomes were kept. */
  outcome: string | null;
  /** SHA-256 of what was handed over (an export file), or null. */
  result_sha256: string | null;
  prev: string;
  hash: string;
  /** Ed25519 signature of `hash` with the archive's key (base64); null: not signed. */
  sig: string | null;
}

/** Who did it: the account the operating system names (and the one behind sudo). */
export interface Identity {
  account: string;
  sudo: string | null;
}

export function systemIdentity(): Identity {
  let account: string;
  try {
    account = userInfo().username;
  } catch {
    account = `uid ${process.getuid?.() ?? '?'}`;
  }
  const sudo = process.env.SUDO_USER?.trim();
  return { account, sudo: sudo ? sudo.slice(0, 64) : null };
}

export const JOURNAL_GENESIS = '0'.repeat(64);
export const JOURNAL_FILE = 'journal.sqlite';

type Unhashed = Omit<JournalRow, 'hash' | 'sig'>;

/** Rows written before outcomes and signatures (no outcome, no sig): hashed as they were then. */
function legacyHash(r: Unhashed): string {
  return createHash('sha256')
    .update(JSON.stringify([r.id, r.at, r.auditor, r.os_user, r.host, r.action, r.params, r.rows, r.result_sha256, r.prev]))
    .digest('hex');
}

export function rowHash(r: Unhashed): string {
  if (r.outcome === null) return legacyHash(r);
  return createHash('sha256')
    .update(JSON.stringify(['v2', r.id, r.at, r.auditor, r.os_user, r.sudo_user, r.host, r.action, r.params, r.rows, r.outcome, r.result_sha256, r.prev]))
    .digest('hex');
}

export interface JournalHead {
  rows: number;
  last_id: number;
  hash: string;
}

export interface RecordRequest {
  auditor: string;
  action: string;
  params: unknown;
  rows: number;
  /** "ok" unless said. */
  outcome?: string;
  resultSha256?: string;
  at?: number;
  identity?: Identity;
}

/** At most this much of a parameter or reason is kept (the rest is cut, and said so). */
const MAX_TEXT = 4096;
const cut = (s: string) => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}… (${s.length} characters, cut)` : s);

export class Journal {
  private readonly db: DatabaseSync;
  readonly path: string;
  /** The archive's private key, or null when this account cannot read it (rows are then written unsigned, and verify says so). */
  private readonly key: KeyObject | null;

  /**
   * `busyTimeoutMs`: how long a write waits for another writer's lock, blocking
   * this thread (node:sqlite is synchronous). The CLI waits 10 s; the API
   * waits briefly and retries without blocking (api/routes/auditor/traffic.ts),
   * so a locked journal does not freeze its other requests.
   */
  constructor(path: string, key: KeyObject | null = null, opts: { busyTimeoutMs?: number } = {}) {
    this.path = path;
    this.key = key;
    // Created 0640 before SQLite opens it (SQLite would make it 0644 less the
    // umask); its -wal and -shm files take the same mode.
    closeSync(openSync(path, 'a', 0o640));
    this.db = new DatabaseSync(path);
    this.db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 10_000))}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS access (
      id INTEGER PRIMARY KEY, at INTEGER NOT NULL, auditor TEXT NOT NULL, os_user TEXT NOT NULL, host TEXT NOT NULL,
      action TEXT NOT NULL, params TEXT NOT NULL, rows INTEGER NOT NULL, result_sha256 TEXT, prev TEXT NOT NULL, hash TEXT NOT NULL)`);
    // Journals begun before outcomes and signatures get the columns (their old rows keep null there).
    const have = new Set((this.db.prepare('PRAGMA table_info(access)').all() as { name: string }[]).map((c) => c.name));
    for (const c of ['sudo_user', 'outcome', 'sig']) if (!have.has(c)) this.db.exec(`ALTER TABLE access ADD COLUMN ${c} TEXT`);
  }

  get signing(): boolean {
    return this.key !== null;
  }

  record(e: RecordRequest): JournalRow {
    const who = e.identity ?? systemIdentity();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const last = this.db.prepare('SELECT id, hash FROM access ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined;
      const row: Unhashed = {
        id: (last?.id ?? 0) + 1,
        at: e.at ?? Date.now(),
        auditor: cut(e.auditor),
        os_user: who.account,
        sudo_user: who.sudo,
        host: hostname(),
        action: e.action,
        params: cut(JSON.stringify(e.params) ?? 'null'),
        rows: e.rows,
        outcome: cut(e.outcome ?? 'ok'),
        result_sha256: e.resultSha256 ?? null,
        prev: last?.hash ?? JOURNAL_GENESIS,
      };
      const hash = rowHash(row);
      const full: JournalRow = { ...row, hash, sig: this.key ? sign(null, Buffer.from(hash, 'hex'), this.key).toString('base64') : null };
      this.db
        .prepare('INSERT INTO access (id, at, auditor, os_user, sudo_user, host, action, params, rows, outcome, result_sha256, prev, hash, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(full.id, full.at, full.auditor, full.os_user, full.sudo_user, full.host, full.action, full.params, full.rows, full.outcome, full.result_sha256, full.prev, full.hash, full.sig);
      this.db.exec('COMMIT');
      return full;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  list(): JournalRow[] {
    return readRows(this.db);
  }

  head(): JournalHead {
    return headOf(this.db);
  }

  /**
   * Walks the chain; names each row altered, each gap where rows were
   * removed, each row not signed by `key` (the archive's public key), and
   * each head the manifest recorded (`anchors`: its journal entries) that
   * the journal no longer holds.
   */
  verify(key?: KeyObject | null, anchors: readonly JournalEntry[] = []): JournalVerdict {
    return verifyRows(this.list(), key ?? null, anchors);
  }

  close(): void {
    this.db.close();
  }
}

function readRows(db: DatabaseSync): JournalRow[] {
  return (db.prepare('SELECT * FROM access ORDER BY id').all() as unknown as JournalRow[]).map((r) => ({ ...r, sudo_user: r.sudo_user ?? null, outcome: r.outcome ?? null, sig: r.sig ?? null }));
}

function headOf(db: DatabaseSync): JournalHead {
  const last = db.prepare('SELECT id, hash FROM access ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined;
  const n = db.prepare('SELECT count(*) AS n FROM access').get() as { n: number };
  return { rows: Number(n.n), last_id: last?.id ?? 0, hash: last?.hash ?? JOURNAL_GENESIS };
}

export interface JournalVerdict {
  ok: boolean;
  faults: string[];
  rows: number;
  /** Rows from before rows were signed (kept as they were; they precede every signed row). */
  unsignedLegacy: number;
}

const utc = (t: number) => new Date(t).toISOString();

export function verifyRows(rows: readonly JournalRow[], key: KeyObject | null, anchors: readonly JournalEntry[]): JournalVerdict {
  const faults: string[] = [];
  let prev = JOURNAL_GENESIS;
  let expect = 1;
  let legacy = 0;
  let signedSeen = false;
  for (const r of rows) {
    if (r.id !== expect) faults.push(`journal row ${r.id}: rows ${expect}–${r.id - 1} are missing (removed)`);
    const { hash, sig: _sig, ...rest } = r;
    if (rowHash(rest) !== hash) faults.push(`journal row ${r.id}: its content does not match its hash (altered)`);
    else if (r.outcome === null && r.sig === null) {
      // Written before rows were signed: only before the first signed row.
      if (signedSeen) faults.push(`journal row ${r.id}: in the old unsigned form after signed rows (forged or re-chained)`);
      else legacy++;
    } else if (r.sig === null) faults.push(`journal row ${r.id}: not signed (written by account ${r.os_user}, which could not read the archive's signing key): nothing vouches for it`);
    else if (key) {
      let good = false;
      try {
        good = verifySig(null, Buffer.from(hash, 'hex'), key, Buffer.from(r.sig, 'base64'));
      } catch {
        good = false;
      }
      if (!good) faults.push(`journal row ${r.id}: the signature is not valid for the archive's key (forged or re-chained)`);
      signedSeen = true;
    } else signedSeen = true;
    if (r.prev !== prev) faults.push(`journal row ${r.id}: does not follow the row before it (a row before was removed or altered)`);
    prev = hash;
    expect = r.id + 1;
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const a of anchors) {
    if (a.error !== undefined || a.last_id === 0) continue;
    const where = `journal head in manifest entry ${a.seq} (${a.reason}, ${utc(a.at)}: ${a.rows} rows, row ${a.last_id} ${a.head.slice(0, 16)}…)`;
    const r = byId.get(a.last_id);
    if (rows.length === 0) faults.push(`${where}: the journal is empty or missing (the file was deleted or begun anew)`);
    else if (!r) faults.push(`${where}: the journal holds no row ${a.last_id} (${rows.length} rows, the last ${rows.at(-1)!.id}): rows were deleted from the end, or the file deleted and begun anew`);
    else if (r.hash !== a.head) faults.push(`${where}: row ${a.last_id} now has hash ${r.hash.slice(0, 16)}… (the journal was rewritten and re-chained)`);
    else if (rows.filter((x) => x.id <= a.last_id).length !== a.rows) faults.push(`${where}: the journal now holds ${rows.filter((x) => x.id <= a.last_id).length} rows up to it (rows were removed)`);
  }
  return { ok: faults.length === 0, faults, rows: rows.length, unsignedLegacy: legacy };
}

/**
 * `read(db)` on the journal's file opened read-only, or `empty` when it has
 * no access table yet; null when there is no file.
 */
function readJournal<T>(dir: string, empty: T, read: (db: DatabaseSync) => T): T | null {
  const path = join(dir, JOURNAL_FILE);
  if (!existsSync(path)) return null;
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec('PRAGMA busy_timeout = 10000;');
    const t = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'access'").get();
    return t ? read(db) : empty;
  } finally {
    db.close();
  }
}

/** The journal's head read from its file (read-only), or null when there is no file. */
export function readJournalHead(dir: string): JournalHead | null {
  return readJournal<JournalHead>(dir, { rows: 0, last_id: 0, hash: JOURNAL_GENESIS }, headOf);
}

/** The journal's rows read from its file (read-only), or null when there is no file. */
export function readJournalRows(dir: string): JournalRow[] | null {
  return readJournal<JournalRow[]>(dir, [], (db) => {
    const have = new Set((db.prepare('PRAGMA table_info(access)').all() as { name: string }[]).map((c) => c.name));
    if (!have.has('sig')) return (db.prepare('SELECT * FROM access ORDER BY id').all() as unknown as JournalRow[]).map((r) => ({ ...r, sudo_user: null, outcome: null, sig: null }));
    return readRows(db);
  });
}

/**
 * One page of the journal's rows (read-only), oldest first: ids after
 * `afterId`, written in [from, to), at most `limit` (the API's journal
 * route); null when there is no file.
 */
export function readJournalPage(dir: string, o: { from?: number; to?: number; afterId?: number; limit: number }): JournalRow[] | null {
  return readJournal<JournalRow[]>(dir, [], (db) => {
    const have = new Set((db.prepare('PRAGMA table_info(access)').all() as { name: string }[]).map((c) => c.name));
    const where: string[] = ['id > ?'];
    const args: number[] = [o.afterId ?? 0];
    if (o.from !== undefined) (where.push('at >= ?'), args.push(o.from));
    if (o.to !== undefined) (where.push('at < ?'), args.push(o.to));
    const rows = db.prepare(`SELECT * FROM access WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`).all(...args, Math.max(0, Math.trunc(o.limit))) as unknown as JournalRow[];
    return rows.map((r) => (have.has('sig') ? { ...r, sudo_user: r.sudo_user ?? null, outcome: r.outcome ?? null, sig: r.sig ?? null } : { ...r, sudo_user: null, outcome: null, sig: null }));
  });
}

export const journalEntries = (entries: readonly Entry[]): JournalEntry[] => entries.filter((e): e is JournalEntry => e.type === 'journal');

/**
 * Writes the journal's head into the manifest (a `journal` entry) when it
 * differs from the last one recorded: at every seal and every export. A
 * journal that cannot be read is recorded as such (`error`). Returns the
 * entry written, or null when nothing changed.
 */
export async function recordJournalHead(dir: string, manifest: Manifest, reason: JournalEntry['reason']): Promise<JournalEntry | null> {
  let head: JournalHead | null;
  let error: string | undefined;
  try {
    head = readJournalHead(dir);
  } catch (err) {
    head = null;
    error = `${JOURNAL_FILE} could not be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  await manifest.refresh();
  const last = journalEntries(manifest.entries).at(-1);
  const now = head ?? { rows: 0, last_id: 0, hash: JOURNAL_GENESIS };
  if (!last && !error && now.rows === 0) return null;
  if (last && reason === 'seal' && last.rows === now.rows && last.last_id === now.last_id && last.head === now.hash && last.error === error) return null;
  return manifest.append<JournalEntry>({ type: 'journal', by: 'klaiwatch', reason, rows: now.rows, last_id: now.last_id, head: now.hash, ...(error !== undefined ? { error } : {}) });
}
