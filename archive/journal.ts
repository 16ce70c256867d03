// The access journal: every search, "who had", export and verification of
// the traffic archive, with who ran it, when, what was asked and how many
// rows it gave. SQLite (node:sqlite, WAL), each row hash-chained to the one
// before, so a removed or edited row shows; `klaiwatch archive journal
// --verify` walks the chain.
import { DatabaseSync } from 'node:sqlite';
import { closeSync, openSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { userInfo, hostname } from 'node:os';

export interface JournalRow {
  id: number;
  at: number;
  /** The person, as they gave their name (--as), and the system account that ran the command. */
  auditor: string;
  os_user: string;
  host: string;
  action: string;
  /** What was asked: the query's parameters, as JSON. */
  params: string;
  rows: number;
  /** SHA-256 of what was handed over (an export file), or null. */
  result_sha256: string | null;
  prev: string;
  hash: string;
}

const GENESIS = '0'.repeat(64);

function rowHash(r: Omit<JournalRow, 'hash'>): string {
  return createHash('sha256')
    .update(JSON.stringify([r.id, r.at, r.auditor, r.os_user, r.host, r.action, r.params, r.rows, r.result_sha256, r.prev]))
    .digest('hex');
}

export class Journal {
  private readonly db: DatabaseSync;

  constructor(path: string) {
    // Created 0640 before SQLite opens it (SQLite would make it 0644 less the
    // umask); its -wal and -shm files take the same mode.
    closeSync(openSync(path, 'a', 0o640));
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;');
    this.db.exec(`CREATE TABLE IF NOT EXISTS access (
      id INTEGER PRIMARY KEY, at INTEGER NOT NULL, auditor TEXT NOT NULL, os_user TEXT NOT NULL, host TEXT NOT NULL,
      action TEXT NOT NULL, params TEXT NOT NULL, rows INTEGER NOT NULL, result_sha256 TEXT, prev TEXT NOT NULL, hash TEXT NOT NULL)`);
  }

  record(e: { auditor: string; action: string; params: unknown; rows: number; resultSha256?: string; at?: number }): JournalRow {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const last = this.db.prepare('SELECT id, hash FROM access ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined;
      const row: Omit<JournalRow, 'hash'> = {
        id: (last?.id ?? 0) + 1,
        at: e.at ?? Date.now(),
        auditor: e.auditor,
        os_user: userInfo().username,
        host: hostname(),
        action: e.action,
        params: JSON.stringify(e.params),
        rows: e.rows,
        result_sha256: e.resultSha256 ?? null,
        prev: last?.hash ?? GENESIS,
      };
      const full: JournalRow = { ...row, hash: rowHash(row) };
      this.db
        .prepare('INSERT INTO access (id, at, auditor, os_user, host, action, params, rows, result_sha256, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(full.id, full.at, full.auditor, full.os_user, full.host, full.action, full.params, full.rows, full.result_sha256, full.prev, full.hash);
      this.db.exec('COMMIT');
      return full;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  list(): JournalRow[] {
    return this.db.prepare('SELECT * FROM access ORDER BY id').all() as unknown as JournalRow[];
  }

  /** Walks the chain; names each row that was altered, and each gap where rows were removed. */
  verify(): { ok: boolean; faults: string[]; rows: number } {
    const faults: string[] = [];
    let prev = GENESIS;
    let expect = 1;
    const rows = this.list();
    for (const r of rows) {
      if (r.id !== expect) faults.push(`journal row ${r.id}: rows ${expect}–${r.id - 1} are missing (removed)`);
      const { hash, ...rest } = r;
      if (rowHash(rest) !== hash) faults.push(`journal row ${r.id}: its content does not match its hash (altered)`);
      if (r.prev !== prev) faults.push(`journal row ${r.id}: does not follow the row before it (a row before was removed or altered)`);
      prev = hash;
      expect = r.id + 1;
    }
    return { ok: faults.length === 0, faults, rows: rows.length };
  }

  close(): void {
    this.db.close();
  }
}
