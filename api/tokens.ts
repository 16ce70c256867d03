// API tokens in SQLite (node:sqlite): only the SHA-256 of a token is kept;
// the token itself is shown once, when it is made. A token carries a role
// (officer, auditor, school, viewer), a school for the school role, a label
// (who holds it: it is the identity the access journal records), an expiry,
// and the time it was last used.
import { DatabaseSync } from 'node:sqlite';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export const ROLES = ['officer', 'auditor', 'school', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** Who made a request: the token's row without its hash. */
export interface Principal {
  id: string;
  name: string;
  role: Role;
  /** The school code a school token is bound to; null for the other roles. */
  school: string | null;
}

export interface TokenRow extends Principal {
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export class TokenError extends Error {}

/**
 * "kw_", an id of 6 random bytes (8 characters, base64url), then a secret of
 * 32 random bytes (43 characters): 54 characters. The id is public (token
 * list, the journal, a window's creator) and is drawn apart from the secret,
 * so showing it tells nothing of the secret.
 */
const TOKEN_RE = /^kw_[A-Za-z0-9_-]{51}$/;
/** The token's public id: the 8 characters after "kw_". */
const idOf = (token: string) => token.slice(3, 11);
const hashOf = (token: string) => createHash('sha256').update(token).digest();

/** last_used_at is written at most this often per token (a busy script must not turn every GET into a write). */
const TOUCH_EVERY_MS = 60_000;

const SCHEMA = `CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY, hash BLOB NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL, school TEXT,
  created_at INTEGER NOT NULL, expires_at INTEGER, last_used_at INTEGER, revoked_at INTEGER)`;

interface Row {
  id: string;
  hash: Uint8Array;
  name: string;
  role: Role;
  school: string | null;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

const toRow = (r: Row): TokenRow => ({ id: r.id, name: r.name, role: r.role, school: r.school, createdAt: r.created_at, expiresAt: r.expires_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at });

/** A token found good is trusted this long without asking the database again (a revoke from the CLI takes effect within it). */
export const CHECK_CACHE_MS = 2_000;
const MAX_CACHED = 10_000;

export class TokenStore {
  private readonly db: DatabaseSync;
  private readonly touched = new Map<string, number>();
  /** Recent good checks by token (kept hashed): principal, expiry, when checked. */
  private readonly cache = new Map<string, { principal: Principal; expiresAt: number | null; at: number }>();
  private readonly activeCache = new Map<string, { ok: boolean; at: number }>();
  private readonly byId: ReturnType<DatabaseSync['prepare']>;
  private readonly touch: ReturnType<DatabaseSync['prepare']>;

  readonly file: string;

  constructor(file: string) {
    this.file = file;
    mkdirSync(dirname(file), { recursive: true, mode: 0o750 });
    this.db = new DatabaseSync(file);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(SCHEMA);
    this.byId = this.db.prepare('SELECT * FROM tokens WHERE id = ?');
    this.touch = this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?');
  }

  /** Makes a token; returns it (shown once) and its row. */
  create(o: { role: Role; name: string; school?: string | null; expiresAt?: number | null; now?: number }): { token: string; row: TokenRow } {
    if (!ROLES.includes(o.role)) throw new TokenError(`--role must be one of ${ROLES.join(', ')}; got ${JSON.stringify(o.role)}`);
    const name = o.name.trim();
    if (name.length < 2 || name.length > 120) throw new TokenError('--name must say who holds the token (2 to 120 characters): it is the identity the access journal records');
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) throw new TokenError('--name must be one line without control characters: it is the identity the access journal records');
    if (o.role === 'school' && !o.school) throw new TokenError('--role school needs --school CODE (a school token sees that school only)');
    if (o.role !== 'school' && o.school) throw new TokenError(`--school applies to --role school only; a ${o.role} token is not bound to a school`);
    const now = o.now ?? Date.now();
    if (o.expiresAt !== undefined && o.expiresAt !== null && o.expiresAt <= now) throw new TokenError('--expires must be in the future');
    for (let i = 0; i < 5; i++) {
      const token = 'kw_' + randomBytes(6).toString('base64url') + randomBytes(32).toString('base64url');
      const id = idOf(token);
      if (this.db.prepare('SELECT 1 FROM tokens WHERE id = ?').get(id)) continue;
      this.db.prepare('INSERT INTO tokens (id, hash, name, role, school, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(id, hashOf(token), name, o.role, o.school ?? null, now, o.expiresAt ?? null);
      return { token, row: this.get(id)! };
    }
    throw new TokenError('could not draw an unused token id (5 tries)');
  }

  get(id: string): TokenRow | undefined {
    const r = this.db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as Row | undefined;
    return r ? toRow(r) : undefined;
  }

  list(): TokenRow[] {
    return (this.db.prepare('SELECT * FROM tokens ORDER BY created_at, id').all() as unknown as Row[]).map(toRow);
  }

  /** Revokes by id (or by the whole token); false when no such token. */
  revoke(idOrToken: string, now = Date.now()): boolean {
    const id = TOKEN_RE.test(idOrToken) ? idOf(idOrToken) : idOrToken;
    for (const [k, v] of this.cache) if (v.principal.id === id) this.cache.delete(k);
    this.activeCache.delete(id);
    return Number(this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes) > 0;
  }

  /**
   * The principal a presented token stands for, or why not: "malformed",
   * "unknown", "revoked", "expired". Compares hashes in constant time.
   */
  check(token: string, now = Date.now()): { principal: Principal } | { refused: 'malformed' | 'unknown' | 'revoked' | 'expired' } {
    if (!TOKEN_RE.test(token)) return { refused: 'malformed' };
    const given = hashOf(token);
    const key = given.toString('base64');
    const hit = this.cache.get(key);
    if (hit && now - hit.at < CHECK_CACHE_MS && now >= hit.at) {
      if (hit.expiresAt !== null && hit.expiresAt <= now) return { refused: 'expired' };
      return { principal: hit.principal };
    }
    const r = this.byId.get(idOf(token)) as Row | undefined;
    if (!r) return { refused: 'unknown' };
    const stored = Buffer.from(r.hash);
    if (stored.length !== given.length || !timingSafeEqual(stored, given)) return { refused: 'unknown' };
    if (r.revoked_at !== null) return { refused: 'revoked' };
    if (r.expires_at !== null && r.expires_at <= now) return { refused: 'expired' };
    const last = this.touched.get(r.id) ?? r.last_used_at ?? 0;
    if (now - last >= TOUCH_EVERY_MS) {
      this.touched.set(r.id, now);
      try {
        this.touch.run(now, r.id);
      } catch {
        // A busy database must not refuse a valid token; the next use writes it.
      }
    }
    const principal: Principal = { id: r.id, name: r.name, role: r.role, school: r.school };
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { principal, expiresAt: r.expires_at, at: now });
    return { principal };
  }

  /** Whether the token with this id is still good (not revoked, not expired): sessions made with it end with it. Cached like check(). */
  active(id: string, now = Date.now()): boolean {
    const hit = this.activeCache.get(id);
    if (hit && now - hit.at < CHECK_CACHE_MS && now >= hit.at) return hit.ok;
    const r = this.byId.get(id) as Row | undefined;
    const ok = r !== undefined && r.revoked_at === null && (r.expires_at === null || r.expires_at > now);
    if (this.activeCache.size >= MAX_CACHED) this.activeCache.delete(this.activeCache.keys().next().value!);
    this.activeCache.set(id, { ok, at: now });
    return ok;
  }

  close(): void {
    this.db.close();
  }
}

/** "90d", "12h", "2026-12-31": when a token made now ends. */
export function parseExpiry(v: string, now = Date.now()): number {
  const m = /^(\d{1,5})([dhw])$/.exec(v.trim());
  if (m) return now + Number(m[1]) * { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }[m[2] as 'h' | 'd' | 'w'];
  const t = /^\d{4}-\d{2}-\d{2}$/.test(v.trim()) ? Date.parse(`${v.trim()}T23:59:59+07:00`) : NaN;
  if (Number.isNaN(t)) throw new TokenError(`--expires ${JSON.stringify(v)}: give a duration such as 90d, 12h or 4w, or a date such as 2027-03-31 (end of that day, Asia/Bangkok)`);
  return t;
}
