// What an auditor may do with the archive, each act written to the access
// journal first-hand: search, "who had", export, verify. The CLI calls
// these now; an API route will call the same functions.
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../config/load.ts';
import { Journal } from './journal.ts';
import { queryArchive, readManifest, type ArchiveQuery, type QueryResult } from './query.ts';
import { whoHad, type WhoAnswer } from './identity.ts';
import { verifyArchive, type VerifyResult } from './verify.ts';
import { writeEvidence } from './export.ts';
import { loadPrivateKey, rawPublicKey } from './manifest.ts';

export class AuditError extends Error {}

export interface AuditContext {
  dir: string;
  area: string;
  auditor: string;
  journal: Journal;
  /** The public key the archive must carry (from the configured signing key). */
  trustedKey?: string;
}

export function auditContext(config: Config, auditor: string): AuditContext {
  const t = config.settings.traffic;
  if (!t) throw new AuditError(`${config.file}: has no traffic section: the archive is not configured`);
  const dir = resolve(dirname(config.file), t.dir);
  let trustedKey: string | undefined;
  try {
    trustedKey = rawPublicKey(loadPrivateKey(readFileSync(resolve(dirname(config.file), t.signing_key), 'utf8')));
  } catch {
    // An auditor's machine need not hold the private key; --public-key gives the public half.
  }
  return { dir, area: config.settings.area.name_th, auditor, journal: new Journal(join(dir, 'journal.sqlite')), ...(trustedKey ? { trustedKey } : {}) };
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

const BANGKOK = '+07:00';

/** "2026-06-03T09:41" (Asia/Bangkok), "2026-06-03" (midnight, Bangkok), or ISO-8601 with a zone. */
export function parseTime(v: string, what: string): number {
  const s = v.trim();
  let t: number;
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) t = Date.parse(`${s}T00:00:00${BANGKOK}`);
  else if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) t = Date.parse(`${s.replace(' ', 'T')}${s.length === 16 ? ':00' : ''}${BANGKOK}`);
  else t = /(Z|[+-]\d{2}:\d{2})$/.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(t)) throw new AuditError(`${what} ${JSON.stringify(v)}: expected a time such as 2026-06-03T09:41 (Asia/Bangkok), 2026-06-03, or 2026-06-03T02:41:00Z`);
  return t;
}

export async function auditedQuery(ctx: AuditContext, q: ArchiveQuery): Promise<QueryResult> {
  const result = await queryArchive(ctx.dir, q);
  ctx.journal.record({ auditor: ctx.auditor, action: 'query', params: q, rows: result.rows.length });
  return result;
}

export async function auditedWho(ctx: AuditContext, ip: string, at: number, port?: number): Promise<WhoAnswer> {
  const answer = await whoHad(ctx.dir, ip, at, port);
  ctx.journal.record({ auditor: ctx.auditor, action: 'who', params: { ip, at, port }, rows: answer.leases.length + answer.sessions.length });
  return answer;
}

export async function auditedVerify(ctx: AuditContext, trustedKey?: string): Promise<VerifyResult> {
  const r = await verifyArchive(ctx.dir, trustedKey ?? ctx.trustedKey);
  ctx.journal.record({ auditor: ctx.auditor, action: 'verify', params: { trustedKey: trustedKey ?? ctx.trustedKey ?? null }, rows: r.entries });
  return r;
}

export async function auditedExport(ctx: AuditContext, q: ArchiveQuery, out: string, reference: string): Promise<{ sha256: string; bytes: number; rows: number; verify: VerifyResult }> {
  if (reference.trim().length < 3) throw new AuditError('--reference must name the order or letter the export answers');
  const result = await queryArchive(ctx.dir, q);
  const verify = await verifyArchive(ctx.dir, ctx.trustedKey);
  const file = await writeEvidence(out, { query: q, result, auditor: ctx.auditor, reference, verify, manifest: await readManifest(ctx.dir), area: ctx.area });
  ctx.journal.record({ auditor: ctx.auditor, action: 'export', params: { ...q, reference, file: resolve(out) }, rows: result.rows.length, resultSha256: file.sha256 });
  return { ...file, rows: result.rows.length, verify };
}
