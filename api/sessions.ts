// The auditor pages' sessions. Logging in with a token makes a session: a
// random id, kept in this API process's memory (by its SHA-256) with the
// token's principal, for SESSION_MS at most; the browser's kw_session cookie
// holds only that id, never the token. Logging out ends the session on the
// server too; a session whose token was revoked or expired ends with it.
// A restart of the API ends every session (the auditor logs in again).
import { createHash, randomBytes } from 'node:crypto';
import type { Principal, TokenStore } from './tokens.ts';

/** A session lasts this long from its log-in, whatever happens. */
export const SESSION_MS = 8 * 3_600_000;
/** At most this many sessions at once (the oldest ends first). */
const MAX_SESSIONS = 10_000;
const SID_RE = /^[A-Za-z0-9_-]{43}$/;
const keyOf = (sid: string) => createHash('sha256').update(sid).digest('base64');

export class SessionStore {
  private readonly live = new Map<string, { principal: Principal; expiresAt: number }>();
  private readonly tokens: TokenStore;

  constructor(tokens: TokenStore) {
    this.tokens = tokens;
  }

  /** A new session for a principal; returns its id (for the cookie). */
  create(principal: Principal, now: number): string {
    for (const [k, v] of this.live) if (v.expiresAt <= now) this.live.delete(k);
    if (this.live.size >= MAX_SESSIONS) this.live.delete(this.live.keys().next().value!);
    const sid = randomBytes(32).toString('base64url');
    this.live.set(keyOf(sid), { principal, expiresAt: now + SESSION_MS });
    return sid;
  }

  /** The session's principal while the session and its token are good; undefined otherwise (and the session ends). */
  get(sid: string, now: number): Principal | undefined {
    if (!SID_RE.test(sid)) return undefined;
    const key = keyOf(sid);
    const s = this.live.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= now || !this.tokens.active(s.principal.id, now)) {
      this.live.delete(key);
      return undefined;
    }
    return s.principal;
  }

  end(sid: string): void {
    if (SID_RE.test(sid)) this.live.delete(keyOf(sid));
  }

  get size(): number {
    return this.live.size;
  }
}
