// What an auditor may do with the archive, each act written to the access
// journal first-hand: search, "who had", export, verify. The CLI calls
// these now; an API route will call the same functions.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Config } from '../config/load.ts';
import { parseAreaTime } from '../config/time.ts';
import { Journal, JOURNAL_FILE, recordJournalHead, systemIdentity, type Identity, type JournalRow } from './journal.ts';
import { ArgumentError, QueryError, queryArchive, readManifest, streamArchive, type ArchiveQuery, type QueryResult, type RowSink } from './query.ts';
import { whoHad, type WhoAnswer } from './identity.ts';
import { verifyArchive, type VerifyResult } from './verify.ts';
import { writeEvidence } from './export.ts';
import { loadPrivateKey, Manifest, rawPublicKey } from './manifest.ts';
import { AnchorError, type SentHead } from './anchor.ts';

/**
 * An audited act refused. The message is the CLI's; `field` and `detail`,
 * when an argument is at fault, say it without the CLI's wording (the API
 * names it `body.reference`, not `--reference`).
 */
export class AuditError extends ArgumentError {}

/** The shortest reference an export accepts (the order's or letter's number and issuer). */
export const MIN_REFERENCE = 3;

export interface AuditContext {
  dir: string;
  area: string;
  /** The name the person stated (--as; the API: the token's identity), or '' when none. */
  auditor: string;
  /** Who the operating system says ran it (the API passes the token's identity instead). */
  identity: Identity;
  journal: Journal;
  /** The public key the archive must carry (from the configured signing key). */
  trustedKey?: string;
  /** The archive's private key when this account can read it: it signs the journal's rows and the export's manifest entry. */
  key: KeyObject | null;
  /** Why the key could not be read, when it could not. */
  keyError?: string;
  keyFile: string;
  retentionDays: number;
  anchors: { tsaCa?: string };
}

export function auditContext(config: Config, auditor: string, identity: Identity = systemIdentity(), opts: { journalBusyMs?: number } = {}): AuditContext {
  const t = config.settings.traffic;
  if (!t) throw new AuditError(`${config.file}: has no traffic section: the archive is not configured`);
  const base = dirname(config.file);
  const dir = resolve(base, t.dir);
  const keyFile = resolve(base, t.signing_key);
  let key: KeyObject | null = null;
  let keyError: string | undefined;
  try {
    key = loadPrivateKey(readFileSync(keyFile, 'utf8'));
  } catch (err) {
    // An auditor's machine need not hold the private key; --public-key gives the public half.
    keyError = `${keyFile} cannot be read by account ${identity.account} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  const trustedKey = key ? rawPublicKey(key) : undefined;
  const tsaCa = t.anchors?.tsa_ca ? resolve(base, t.anchors.tsa_ca) : undefined;
  return {
    dir,
    area: config.settings.area.name_th,
    auditor,
    identity,
    journal: new Journal(join(dir, JOURNAL_FILE), key, opts.journalBusyMs === undefined ? {} : { busyTimeoutMs: opts.journalBusyMs }),
    ...(trustedKey ? { trustedKey } : {}),
    key,
    ...(keyError ? { keyError } : {}),
    keyFile,
    retentionDays: Math.round(t.retention / 86_400_000),
    anchors: tsaCa ? { tsaCa } : {},
  };
}

/** What a refused or failed attempt says in the journal: "refused: <why>" for bad arguments, "failed: <why>" for anything else. */
export function outcomeOf(err: unknown, kind?: 'refused' | 'failed'): string {
  const msg = err instanceof Error ? err.message : String(err);
  return `${kind ?? (err instanceof AuditError || err instanceof QueryError || err instanceof AnchorError ? 'refused' : 'failed')}: ${msg}`;
}

/** Journals an attempt that did not get as far as its work (arguments refused); the error goes on to the caller. */
export function journalRefusal(ctx: AuditContext, action: string, params: unknown, err: unknown, kind?: 'refused' | 'failed'): void {
  try {
    ctx.journal.record({ auditor: ctx.auditor, identity: ctx.identity, action, params, rows: 0, outcome: outcomeOf(err, kind) });
  } catch {
    // The journal itself failing must not hide the error being reported.
  }
}

/** Runs `work`; a failure is journalled with its reason before it goes on to the caller. */
async function attempt<T>(ctx: AuditContext, action: string, params: unknown, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    journalRefusal(ctx, action, params, err);
    throw err;
  }
}

/** An Ed25519 public key given as raw base64 or as a PEM file. */
export function publicKeyArg(v: string): string {
  if (/^[A-Za-z0-9+/]{43}=$/.test(v)) return v;
  try {
    return rawPublicKey(createPublicKey(readFileSync(v, 'utf8')));
  } catch (err) {
    throw new AuditError(`--public-key ${v}: neither a raw Ed25519 key (base64) nor a PEM public key file (${(err as Error).message})`);
  }
}

/**
 * "2026-06-03T09:41" (Asia/Bangkok), "2026-06-03" (midnight, Bangkok), ISO-8601
 * with a zone, or Unix milliseconds: config/time.ts, the one reading of times
 * the views use too. A day or an hour that does not exist (2026-02-30, 24:00)
 * is refused, never rolled over to another day (a "who had" answer for the
 * wrong day is the worst answer there is).
 */
export function parseTime(v: string, what: string): number {
  const t = parseAreaTime(v);
  if (t === undefined) throw new AuditError(`${what} ${JSON.stringify(v)}: expected a time such as 2026-06-03T09:41 (Asia/Bangkok), 2026-06-03, or 2026-06-03T02:41:00Z, on a day and at an hour that exist`);
  return t;
}

const rec = (ctx: AuditContext, action: string, params: unknown, rows: number, outcome: string, resultSha256?: string) =>
  ctx.journal.record({ auditor: ctx.auditor, identity: ctx.identity, action, params, rows, outcome, ...(resultSha256 ? { resultSha256 } : {}) });

export async function auditedQuery(ctx: AuditContext, q: ArchiveQuery): Promise<QueryResult> {
  return attempt(ctx, 'query', q, async () => {
    const result = await queryArchive(ctx.dir, q);
    rec(ctx, 'query', q, result.rows.length, result.rows.length === 0 ? 'no records' : 'ok');
    return result;
  });
}

/**
 * The API's rule: a request is journalled before any of its work (outcome
 * "requested"), and when that row cannot be written the error goes to the
 * caller, which must then answer nothing. The act's own row (its outcome
 * and rows) follows as the CLI writes it.
 */
export function journalRequest(ctx: AuditContext, action: string, params: unknown): JournalRow {
  return ctx.journal.record({ auditor: ctx.auditor, identity: ctx.identity, action, params, rows: 0, outcome: 'requested' });
}

/**
 * A query whose rows go to `sink` as they are read (never all held): the
 * API's streamed search. Journalled as auditedQuery is, once the stream
 * ends: the rows handed over, or the failure.
 */
export async function auditedStream(ctx: AuditContext, q: ArchiveQuery, sink: RowSink): Promise<Omit<QueryResult, 'rows' | 'walRows'> & { count: number }> {
  return attempt(ctx, 'query', q, async () => {
    const r = await streamArchive(ctx.dir, q, sink);
    rec(ctx, 'query', q, r.count, r.count === 0 ? 'no records' : 'ok');
    return r;
  });
}

export async function auditedWho(ctx: AuditContext, ip: string, at: number, port?: number): Promise<WhoAnswer> {
  const params = { ip, at, port };
  return attempt(ctx, 'who', params, async () => {
    const answer = await whoHad(ctx.dir, ip, at, port);
    const n = answer.leases.length + answer.sessions.length;
    rec(ctx, 'who', params, n, n === 0 ? 'nobody known' : 'ok');
    return answer;
  });
}

export async function auditedVerify(ctx: AuditContext, trustedKey?: string, anchors?: readonly SentHead[]): Promise<VerifyResult> {
  const params = { trustedKey: trustedKey ?? ctx.trustedKey ?? null, anchors: anchors?.length ?? 0 };
  return attempt(ctx, 'verify', params, async () => {
    const r = await verifyArchive(ctx.dir, trustedKey ?? ctx.trustedKey, { ...(anchors ? { anchors } : {}), ...(ctx.anchors.tsaCa ? { tsaCa: ctx.anchors.tsaCa } : {}) });
    rec(ctx, 'verify', params, r.entries, r.ok ? 'ok' : `not intact: ${r.faults.length} faults`);
    return r;
  });
}

/**
 * The evidence package. Needs the archive's signing key: the export's
 * journal row is signed, and the journal's head (with that row) is written
 * into the manifest, so the export cannot be deleted from the journal
 * unseen. An export whose query matches nothing is made all the same (the
 * package says no records matched) and journalled as such.
 */
export async function auditedExport(
  ctx: AuditContext,
  q: ArchiveQuery,
  out: string,
  reference: string,
  opts: { packageName?: (sha256: string) => string } = {},
): Promise<{ sha256: string; bytes: number; rows: number; verify: VerifyResult; journalEntry: number | null; name: string }> {
  // The CLI's row names the file written; the API's (packageName) names the download and its SHA-256, never a path on the server.
  const params = opts.packageName ? { ...q, reference } : { ...q, reference, file: resolve(out) };
  return attempt(ctx, 'export', params, async () => {
    if (reference.trim().length < MIN_REFERENCE) throw new AuditError('--reference must name the order or letter the export answers', { field: 'reference', detail: `must name the order or letter the export answers (at least ${MIN_REFERENCE} characters)` });
    if (!ctx.key) throw new AuditError(`export needs the archive's signing key (its journal row is signed and its head written into the manifest): ${ctx.keyError ?? ctx.keyFile}`);
    const result = await queryArchive(ctx.dir, q);
    const verify = await verifyArchive(ctx.dir, ctx.trustedKey, ctx.anchors.tsaCa ? { tsaCa: ctx.anchors.tsaCa } : {});
    const file = await writeEvidence(out, { query: q, result, auditor: ctx.auditor || ctx.identity.account, reference, verify, manifest: await readManifest(ctx.dir), area: ctx.area, dir: ctx.dir, key: ctx.key });
    const name = opts.packageName ? opts.packageName(file.sha256) : basename(out);
    rec(ctx, 'export', opts.packageName ? { ...params, package: name, sha256: file.sha256 } : params, result.rows.length, result.rows.length === 0 ? 'no records matched' : 'ok', file.sha256);
    const m = await Manifest.open(join(ctx.dir, 'manifest.jsonl'), ctx.key, ctx.retentionDays);
    const entry = await recordJournalHead(ctx.dir, m, 'export');
    return { ...file, rows: result.rows.length, verify, journalEntry: entry?.seq ?? null, name };
  });
}
