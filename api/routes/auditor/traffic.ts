// What the auditor's API routes (api/routes/auditor.ts) and Thai pages
// (api/routes/pages.ts) share: the query's parameters turned into an
// ArchiveQuery with errors naming the field, the audit context of a token,
// the journal-first rule, the streamed search, the verification (cached),
// the evidence package in a temporary file, and the journal's pages.
//
// Journal first: every request writes a row (outcome "requested", the
// token's id, name and role as the account) before anything is read from
// the archive; if that row cannot be written the request is answered 503
// and nothing else. The act's own row (rows given, "ok", "no records",
// "refused: …", "failed: …") follows, as the CLI writes it.
import { setTimeout as sleep } from 'node:timers/promises';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { isIP } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import { formatAreaTime } from '../../../config/time.ts';
import type { ApiContext } from '../../context.ts';
import { auditContext, auditedExport, auditedQuery, auditedStream, auditedVerify, auditedWho, journalRefusal, journalRequest, parseTime, type AuditContext } from '../../../archive/auditor.ts';
import { ArgumentError, countArchive, queryArchive, whereClause, QueryError, type ArchiveQuery } from '../../../archive/query.ts';
import { protoNumber, type TrafficRecord } from '../../../archive/record.ts';
import { jsonRow, rowsCsv } from '../../../archive/export.ts';
import { readJournalPage, type JournalRow } from '../../../archive/journal.ts';
import type { VerifyResult } from '../../../archive/verify.ts';
import type { Binding, WhoAnswer } from '../../../archive/identity.ts';

/** The search's filters as given (query string or form): text, bounded by the route's schema. */
export interface SearchInput {
  from?: string | undefined;
  to?: string | undefined;
  ip?: string | undefined;
  side?: string | undefined;
  peer?: string | undefined;
  port?: string | number | undefined;
  proto?: string | undefined;
  school?: string | undefined;
  user?: string | undefined;
  mac?: string | undefined;
}

export const SEARCH_FIELDS = ['from', 'to', 'ip', 'side', 'peer', 'port', 'proto', 'school', 'user', 'mac'] as const;

const bad = (where: string, field: string, msg: string) => new ApiError(400, 'bad_request', `${where}.${field}: ${msg}`);
const given = (v: string | number | undefined): v is string | number => v !== undefined && String(v).trim() !== '';

/** A time parameter: 2026-06-03T09:41 (Asia/Bangkok), 2026-06-03, or ISO-8601 with a zone; the error names the field. */
export function timeParam(v: string, where: string, field: string): number {
  try {
    return parseTime(v, field);
  } catch (err) {
    throw bad(where, field, (err as Error).message.replace(/^\S+ /, ''));
  }
}

/** The filters as an ArchiveQuery (without limit and offset); each error names its field (`querystring.port: …`). */
/**
 * An address as the archive stores it: an IPv4-mapped IPv6 address
 * (::ffff:125.25.69.110) is the IPv4 address it maps (records keep IPv4 as
 * IPv4); a zone index (fe80::1%eth0) is refused, no record carries one.
 * Undefined when it is no address at all.
 */
export function archiveAddress(v: string): string | undefined {
  const t = v.trim();
  if (t.includes('%')) return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(t);
  if (mapped && isIP(mapped[1]!) === 4) return mapped[1]!;
  return isIP(t) === 0 ? undefined : t;
}

export function toQuery(i: SearchInput, where: 'querystring' | 'body'): ArchiveQuery {
  const q: ArchiveQuery = {};
  const s = (v: string | number | undefined) => String(v).trim();
  if (given(i.ip)) {
    const ip = archiveAddress(s(i.ip));
    if (ip === undefined) throw bad(where, 'ip', `${JSON.stringify(s(i.ip))} is not an IPv4 or IPv6 address (without a zone index)`);
    q.ip = ip;
  }
  if (given(i.side)) {
    if (!['src', 'dst', 'either'].includes(s(i.side))) throw bad(where, 'side', `${JSON.stringify(s(i.side))}: expected src, dst or either`);
    q.side = s(i.side) as ArchiveQuery['side'];
  }
  if (given(i.peer)) {
    const peer = archiveAddress(s(i.peer));
    if (peer === undefined) throw bad(where, 'peer', `${JSON.stringify(s(i.peer))} is not an IPv4 or IPv6 address (without a zone index)`);
    q.peer = peer;
  }
  if (given(i.port)) {
    // Digits only: Number() would also take "0x1bb", "1e3" and " 1".
    const n = /^\d{1,5}$/.test(s(i.port)) ? Number(s(i.port)) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw bad(where, 'port', `${JSON.stringify(s(i.port))}: expected a port number from 0 to 65535`);
    q.port = n;
  }
  if (given(i.proto)) {
    const n = protoNumber(s(i.proto));
    if (n === null) throw bad(where, 'proto', `${JSON.stringify(s(i.proto))}: expected tcp, udp, icmp or a protocol number`);
    q.proto = n;
  }
  if (given(i.school)) q.school = s(i.school);
  if (given(i.user)) q.user = s(i.user);
  if (given(i.mac)) {
    if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(s(i.mac))) throw bad(where, 'mac', `${JSON.stringify(s(i.mac))}: expected a MAC address such as aa:bb:cc:dd:ee:01`);
    q.mac = s(i.mac);
  }
  if (given(i.from)) q.from = timeParam(s(i.from), where, 'from');
  if (given(i.to)) q.to = timeParam(s(i.to), where, 'to');
  if (q.from !== undefined && q.to !== undefined && q.to <= q.from) throw bad(where, 'to', 'is not after from');
  if (!q.ip && q.port === undefined && !q.school && !q.user && !q.mac && q.from === undefined) throw new ApiError(400, 'bad_request', `${where}: say what to look for: ip, port, school, user, mac or a time range (from/to)`);
  try {
    whereClause(q);
  } catch (err) {
    if (err instanceof QueryError) throw archiveError(err, where);
    throw err;
  }
  return q;
}

/** Whether any filter was given (a page shows just its form otherwise). */
export const anyFilter = (i: SearchInput) => SEARCH_FIELDS.some((f) => f !== 'side' && given(i[f]));

/** The account a token's journal rows name: its id, name and role. */
export const tokenAccount = (req: FastifyRequest) => {
  const p = req.principal!;
  return `api token ${p.id} (${p.name}, ${p.role})`;
};

/** The archive's folder must be configured; else every traffic route says so. */
function requireArchive(api: ApiContext): void {
  if (!api.config.settings.traffic) throw new ApiError(503, 'unavailable', `the traffic-log archive is not configured on this server (${api.config.file} has no traffic section)`);
}

/** The request as its journal row gives it: method, route, the client's address, and what was asked. */
const requestParams = (req: FastifyRequest, params: unknown) => ({ request: `${req.method} ${req.routeOptions.url ?? ''}`, client: req.ip, ...(params && typeof params === 'object' ? params : { params }) });

/**
 * The audit context of the token that asks, with this request's row
 * written first. Throws 503 when the journal cannot be written (nothing is
 * read then). The caller closes ctx.journal when the answer is done.
 */
export async function beginAudit(api: ApiContext, req: FastifyRequest, action: string, params: unknown): Promise<AuditContext> {
  requireArchive(api);
  const p = req.principal;
  if (!p) throw new ApiError(401, 'unauthorized', 'this route needs a token');
  // A journal locked by another writer is waited for without blocking the API's other requests: each try
  // waits at most JOURNAL_TRY_MS inside SQLite, then the request sleeps and tries again, up to JOURNAL_WAIT_MS.
  const until = Date.now() + JOURNAL_WAIT_MS;
  for (;;) {
    let ctx: AuditContext | undefined;
    try {
      ctx = auditContext(api.config, p.name, { account: tokenAccount(req), sudo: null }, { journalBusyMs: JOURNAL_TRY_MS });
      journalRequest(ctx, action, requestParams(req, params));
      return ctx;
    } catch (err) {
      try {
        ctx?.journal.close();
      } catch {
        // closing a journal that failed: nothing more to say
      }
      const e = err as NodeJS.ErrnoException & { errcode?: number };
      const busy = e.errcode === 5 || e.errcode === 6 || /database is locked|database table is locked|SQLITE_BUSY/i.test(e.message);
      if (busy && Date.now() < until) {
        await sleep(JOURNAL_RETRY_MS);
        continue;
      }
      req.log.warn({ code: e.code, msg: e.message }, 'access journal not writable');
      throw new ApiError(503, 'unavailable', `the access journal cannot be written: ${journalReason(e)}`);
    }
  }
}

/** Each try at the journal waits this long for a lock inside SQLite (blocking), ... */
const JOURNAL_TRY_MS = 25;
/** ... then the request sleeps this long (not blocking) ... */
const JOURNAL_RETRY_MS = 100;
/** ... for at most this long in all, then 503. */
const JOURNAL_WAIT_MS = 10_000;

/** Why the journal could not be written, without the server's paths. */
function journalReason(e: Error): string {
  return e.message.replace(/'?\/[^\s']+'?/g, '(the journal file)');
}

/** Journals a refusal (bad parameters) as the CLI does: after the request's row, before the error is answered. */
export function refuse(ctx: AuditContext, action: string, params: unknown, err: unknown): never {
  journalRefusal(ctx, action, params, err, 'refused');
  throw err;
}

export const closeAudit = (ctx: AuditContext) => {
  try {
    ctx.journal.close();
  } catch {
    // already closed
  }
};

/** Asia/Bangkok, ISO-8601: 2026-06-03T09:41:07.000+07:00. */
export const bangkokIso = (t: number) => formatAreaTime(t);

/** "no records: …": what an empty search answers (as the CLI says it). */
export const noRecords = (segmentsRead: number) => `no records: nothing in the archive matches (${segmentsRead} segments and the write-ahead log read)`;
export const NOBODY = 'nobody known: no DHCP lease, RADIUS or hotspot session in the archive covers that moment';

export interface PageResult {
  rows: TrafficRecord[];
  truncated: boolean;
  nextOffset: number | null;
  segmentsRead: number;
  fromWal: number;
  missing: string[];
  altered: string[];
}

/** Whether a row lies beyond `offset + limit` (the answer was cut): one row asked for. */
async function more(dir: string, q: ArchiveQuery, offset: number, limit: number): Promise<boolean> {
  return (await queryArchive(dir, { ...q, limit: 1, offset: offset + limit })).rows.length > 0;
}

/**
 * One page held in memory (the pages' table: small), journalled as a
 * query, and how many rows the whole answer has (`total`: the page says
 * where it is, and splits a download larger than api.max_rows into parts).
 */
export async function searchPage(ctx: AuditContext, q: ArchiveQuery, limit: number, offset: number): Promise<PageResult & { total: number }> {
  return withTurn(ctx, 'query', q, async () => {
    const r = await auditedQuery(ctx, { ...q, limit, offset });
    const total = (await countArchive(ctx.dir, q)).count;
    const truncated = offset + r.rows.length < total;
    return { rows: r.rows, truncated, nextOffset: truncated ? offset + limit : null, segmentsRead: r.segmentsRead, fromWal: r.fromWal, missing: r.missing, altered: r.altered, total };
  });
}

export type Format = 'json' | 'ndjson' | 'csv';
export const CONTENT_TYPE: Record<Format, string> = { json: 'application/json; charset=utf-8', ndjson: 'application/x-ndjson; charset=utf-8', csv: 'text/csv; charset=utf-8' };

export interface Streamed {
  /** Sent as the answer once its first rows are ready (or the query has ended). */
  body: PassThrough;
  headers: Record<string, string>;
}

/**
 * A search answered as it is read: rows go out a chunk at a time (DuckDB's
 * own chunks of about 2,000 rows) and the next is read only when the client
 * has taken the last (backpressure), so memory holds a chunk, not the
 * answer. Whether the answer is cut at `limit` is known first (one row
 * asked for past it), so the headers say it: X-Klaiwatch-Truncated and
 * X-Klaiwatch-Next-Offset; JSON and NDJSON end with the same as fields (the
 * NDJSON's last line is {"_end": {...}}). A failure before the first row is
 * an error answer; after it, the JSON's or NDJSON's end says "error" (the
 * status has gone out) and the CSV ends short. Journalled by auditedStream
 * when it ends; the journal closed then.
 */
export async function streamSearch(ctx: AuditContext, q: ArchiveQuery, format: Format, limit: number, offset: number): Promise<Streamed> {
  // A turn for the whole answer: held until its last row has gone out (or the client has gone).
  const done = await turn(ctx, 'query', q);
  let truncated: boolean;
  try {
    truncated = await more(ctx.dir, q, offset, limit);
  } catch (err) {
    done();
    throw err;
  }
  const body = new PassThrough({ highWaterMark: 256 * 1024 });
  let gone = false;
  body.on('close', () => {
    gone = true;
  });
  const put = async (s: string) => {
    if (gone) throw new Error('the client went away before the answer ended');
    if (!body.write(s)) {
      // A client that stops reading is cut after trafficTimes.stallMs: it must not hold its turn (and the archive) forever.
      const stalled = setTimeout(() => body.destroy(new Error(`the client read nothing for ${trafficTimes.stallMs / 1000} s`)), trafficTimes.stallMs);
      try {
        await Promise.race([once(body, 'drain'), once(body, 'close')]);
      } finally {
        clearTimeout(stalled);
      }
    }
  };
  let first = true;
  let started: () => void = () => undefined;
  const start = new Promise<void>((r) => (started = r));
  const head = format === 'json' ? '{"rows":[' : '';
  const run = auditedStream(ctx, { ...q, limit, offset }, async (rows) => {
    if (first) started();
    let text = '';
    if (format === 'csv') {
      const csv = rowsCsv(rows);
      text = first ? csv : csv.slice(csv.indexOf('\r\n') + 2);
    } else if (format === 'ndjson') text = rows.map((r) => JSON.stringify(jsonRow(r))).join('\n') + '\n';
    else text = (first ? head : ',') + rows.map((r) => JSON.stringify(jsonRow(r))).join(',');
    first = false;
    await put(text);
  });
  const end = (r: { count: number; segmentsRead: number; fromWal: number; missing: string[]; altered: string[] } | null, error?: string) => {
    const tail = {
      rows_returned: r?.count ?? null,
      truncated,
      next_offset: truncated ? offset + limit : null,
      ...(r ? { from_wal: r.fromWal, segments_read: r.segmentsRead, missing_segments: r.missing, altered_segments: r.altered } : {}),
      ...(r && r.count === 0 ? { message: noRecords(r.segmentsRead) } : {}),
      ...(error ? { error: 'failed', message: `the answer broke off: ${error}` } : {}),
    };
    if (format === 'json') return `${first ? head : ''}],${JSON.stringify(tail).slice(1)}\n`;
    if (format === 'ndjson') return `${JSON.stringify({ _end: tail })}\n`;
    return first ? rowsCsv([]) : '';
  };
  const finished = run.then(
    (r) => {
      if (!gone) body.end(end(r));
    },
    (err: Error) => {
      if (first) throw err;
      if (!gone) body.end(end(null, err.message));
    },
  );
  finished
    .finally(() => {
      done();
      closeAudit(ctx);
    })
    .catch(() => undefined);
  // The first rows, or the end: then the answer's status and headers can go.
  await Promise.race([start, finished]);
  return {
    body,
    headers: {
      'content-type': CONTENT_TYPE[format],
      'x-klaiwatch-row-limit': String(limit),
      'x-klaiwatch-truncated': String(truncated),
      ...(truncated ? { 'x-klaiwatch-next-offset': String(offset + limit) } : {}),
      'cache-control': 'no-store',
      ...(format === 'csv' ? { 'content-disposition': `attachment; filename="traffic-${new Date().toISOString().slice(0, 10)}.csv"` } : {}),
    },
  };
}

export interface WhoResult {
  answer: WhoAnswer;
  message: string | null;
}

export async function who(ctx: AuditContext, ip: string, at: number, port?: number): Promise<WhoResult> {
  const a = await withTurn(ctx, 'who', { ip, at, port }, () => auditedWho(ctx, ip, at, port));
  return { answer: a, message: a.leases.length + a.sessions.length === 0 ? NOBODY : null };
}

/** A lease or session as the API gives it: snake_case, times in UTC ms (`_ms`) and in Asia/Bangkok. */
const bindingJson = (b: Binding) => {
  const { from, to, ...rest } = b;
  return { ...rest, from_ms: from, to_ms: to, from_bangkok: bangkokIso(from), to_bangkok: to === null ? null : bangkokIso(to) };
};

/**
 * who's answer as JSON, in the search answer's words: snake_case, times as
 * `_ms` (UTC) and `_bangkok`, `from_wal`, `missing_segments`,
 * `altered_segments` (the NAT record as a search row).
 */
export const whoJson = (a: WhoAnswer) => ({
  ip: a.ip,
  at_ms: a.at,
  at_bangkok: bangkokIso(a.at),
  ...(a.nat ? { nat: { public: a.nat.public, port: a.nat.port, inside: a.nat.inside, inside_port: a.nat.insidePort, record: jsonRow(a.nat.record) } } : {}),
  leases: a.leases.map(bindingJson),
  sessions: a.sessions.map(bindingJson),
  segments: a.segments,
  from_wal: a.fromWal,
  missing_segments: a.missing,
  altered_segments: a.altered,
});

/** How long a verification is reused: the archive's whole chain and every segment file are read for one. */
export const VERIFY_CACHE_MS = 60_000;
/** At most this many faults, recoveries and notes are listed (the count says how many there were). */
const MAX_LISTED = 200;

interface VerifyCache {
  at: number;
  result: VerifyResult;
}
const verifyCache = new WeakMap<ApiContext, VerifyCache>();
const verifyRunning = new WeakMap<ApiContext, Promise<VerifyCache>>();

export interface VerifyAnswer {
  ok: boolean;
  status: string;
  checked_at: string;
  checked_at_bangkok: string;
  cached: boolean;
  entries: number;
  segments: number;
  head: { seq: number; hash: string } | null;
  public_key: string | null;
  fault_count: number;
  faults: string[];
  recoveries: string[];
  notes: string[];
}

/**
 * The archive's verification: run at most once a minute (VERIFY_CACHE_MS)
 * per API process, one run at a time (requests meanwhile wait for it), each
 * run journalled by auditedVerify; a request answered from the last run is
 * journalled by its own request row.
 */
export async function verifyStatus(api: ApiContext, ctx: AuditContext): Promise<VerifyAnswer> {
  const now = api.now();
  let c = verifyCache.get(api);
  let cached = true;
  if (!c || now - c.at > VERIFY_CACHE_MS) {
    let running = verifyRunning.get(api);
    if (!running) {
      running = auditedVerify(ctx).then((result) => ({ at: api.now(), result }));
      verifyRunning.set(api, running);
      running.then((v) => verifyCache.set(api, v), () => undefined).finally(() => verifyRunning.delete(api));
      cached = false;
    }
    c = await running;
  }
  const r = c.result;
  return {
    ok: r.ok,
    status: r.ok ? `intact${r.recoveries.length ? `, with ${r.recoveries.length} ${r.recoveries.length === 1 ? 'recovery' : 'recoveries'}` : ''}` : `NOT INTACT: ${r.faults.length} faults`,
    checked_at: new Date(c.at).toISOString(),
    checked_at_bangkok: bangkokIso(c.at),
    cached,
    entries: r.entries,
    segments: r.segments,
    head: r.head,
    public_key: r.publicKey,
    fault_count: r.faults.length,
    faults: r.faults.slice(0, MAX_LISTED),
    recoveries: r.recoveries.slice(0, MAX_LISTED),
    notes: r.notes.slice(0, MAX_LISTED),
  };
}

export interface Evidence {
  file: string;
  /** The download's name (evidence-<date>-<sha256's first 12>.tar), as the journal row names it. */
  name: string;
  sha256: string;
  bytes: number;
  rows: number;
  intact: boolean;
  journalEntry: number | null;
  /** Removes the temporary file and its folder. */
  remove(): Promise<void>;
}

/** The evidence package, written into a folder of its own under the archive's tmp/ (removed by `remove`). */
export async function evidence(ctx: AuditContext, q: ArchiveQuery, reference: string, maxRows = Number.POSITIVE_INFINITY): Promise<Evidence> {
  // A package is made in one piece (every row, its proof, hashed and signed): over the API it holds at most
  // api.max_rows rows, counted first, so that one request cannot take the process's memory and time for minutes.
  if (Number.isFinite(maxRows)) {
    const total = (await countArchive(ctx.dir, q)).count;
    if (total > maxRows) throw new ApiError(400, 'bad_request', `body: the query matches ${total} rows; an evidence package made over the API holds at most ${maxRows} (api.max_rows): narrow the time range or the filters, or make it on the server with klaiwatch archive export`);
  }
  await mkdir(join(ctx.dir, 'tmp'), { recursive: true, mode: 0o700 });
  const folder = await mkdtemp(join(ctx.dir, 'tmp', 'evidence-'));
  const remove = () => rm(folder, { recursive: true, force: true });
  try {
    const file = join(folder, 'evidence.tar');
    // The journal row names the package by its download name and SHA-256 (never this server's temporary path).
    const r = await withTurn(ctx, 'export', { ...q, reference }, () => auditedExport(ctx, q, file, reference, { packageName: evidenceName }));
    return { file, name: r.name, sha256: r.sha256, bytes: r.bytes, rows: r.rows, intact: r.verify.ok, journalEntry: r.journalEntry, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

export interface JournalPage {
  rows: JournalRow[];
  truncated: boolean;
  next_after: number | null;
}

/** The access journal, a page: rows after `after` (an id), written in [from, to). */
export function journalPage(ctx: AuditContext, o: { from?: number; to?: number; after?: number; limit: number }): JournalPage {
  const rows = readJournalPage(ctx.dir, { ...(o.from !== undefined ? { from: o.from } : {}), ...(o.to !== undefined ? { to: o.to } : {}), afterId: o.after ?? 0, limit: o.limit + 1 }) ?? [];
  const truncated = rows.length > o.limit;
  const page = rows.slice(0, o.limit);
  return { rows: page, truncated, next_after: truncated ? page.at(-1)!.id : null };
}

/** The download's name of an evidence package: the day and its SHA-256's first 12 hex digits. */
export const evidenceName = (sha256: string) => `evidence-${new Date().toISOString().slice(0, 10)}-${sha256.slice(0, 12)}.tar`;

/**
 * A message in the CLI's words as the API says it: an option (`--reference`,
 * `--to is not after --from`) becomes the request's field (`body.reference`,
 * `querystring.to is not after querystring.from`). The archive's functions
 * are the CLI's too; their arguments' errors carry the field apart
 * (QueryError, AuditError: field, detail), and this catches any other.
 */
export const apiWording = (message: string, where: string) => message.replace(/(^|[\s("'])--([a-z][a-z0-9-]*)/g, (_, pre: string, f: string) => `${pre}${where}.${f.replace(/-/g, '_')}`);

/**
 * An error from the archive's side as the API answers it: bad arguments
 * 400 naming the field where the request gave it (`where`: querystring or
 * body), an evidence conflict 409, the rest as they are.
 */
export function archiveError(err: unknown, where: 'querystring' | 'body' | 'request' = 'request'): unknown {
  if (err instanceof ApiError) return err;
  const e = err as Error & { field?: string; detail?: string };
  const name = e?.constructor?.name;
  if (err instanceof ArgumentError || name === 'EvidenceError' || name === 'AnchorError') {
    const message = e.field && e.detail ? `${where}.${e.field}: ${e.detail}` : apiWording(e.message, where);
    return new ApiError(name === 'EvidenceError' ? 409 : 400, name === 'EvidenceError' ? 'conflict' : 'bad_request', message);
  }
  return err;
}

/** Traffic queries and exports that run at once in one API process (each reads the write-ahead log and runs DuckDB)... */
export const TRAFFIC_RUNNING = 2;
/** ... and how many more may wait for a turn; past them the answer is 503 with Retry-After. */
export const TRAFFIC_WAITING = 8;
/** How long a request waits for its turn (then 503 busy), and how long a streamed answer's client may read nothing (then it is cut and its turn freed). An object, so that tests can shorten them. */
export const trafficTimes = { waitMs: 30_000, stallMs: 30_000 };
/** Retry-After of a busy answer (seconds). */
export const BUSY_RETRY_S = 5;

/** A 503 for a request that found every turn taken and the queue full. */
export class BusyError extends ApiError {
  readonly retryAfter = BUSY_RETRY_S;
  constructor() {
    super(503, 'unavailable', `the traffic archive is busy: ${TRAFFIC_RUNNING} queries or exports are running and ${TRAFFIC_WAITING} waiting; try again in ${BUSY_RETRY_S} s`);
  }
}

/** The turns of this process: a count and the waiting queue (bounded). */
const gate = { running: 0, waiting: [] as (() => void)[] };

/** What the turns are doing now (tests; /healthz could show it). */
export const trafficLoad = () => ({ running: gate.running, waiting: gate.waiting.length });

/**
 * A turn to read the archive: at once if fewer than TRAFFIC_RUNNING run,
 * else after those ahead in the queue; a full queue is a BusyError,
 * journalled as refused. Returns the release (call it once).
 */
export async function turn(ctx: AuditContext, action: string, params: unknown): Promise<() => void> {
  if (gate.running < TRAFFIC_RUNNING) gate.running++;
  else if (gate.waiting.length >= TRAFFIC_WAITING) {
    const err = new BusyError();
    journalRefusal(ctx, action, params, err, 'refused');
    throw err;
  } else {
    // A waiter waits at most trafficTimes.waitMs (one whose client went away leaves the queue by then too).
    let waiter!: () => void;
    const turned = new Promise<void>((resolve) => (waiter = resolve));
    gate.waiting.push(waiter);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), trafficTimes.waitMs)));
    const r = await Promise.race([turned, late]);
    clearTimeout(timer);
    if (r === 'late') {
      const i = gate.waiting.indexOf(waiter);
      if (i >= 0) gate.waiting.splice(i, 1);
      else {
        // The turn came just as the wait ended: hand it on.
        const next = gate.waiting.shift();
        if (next) next();
        else gate.running--;
      }
      const err = new BusyError();
      journalRefusal(ctx, action, params, err, 'refused');
      throw err;
    }
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    // The turn goes to the first waiting, else it is free.
    const next = gate.waiting.shift();
    if (next) next();
    else gate.running--;
  };
}

/** `work` in a turn, released when it ends. */
async function withTurn<T>(ctx: AuditContext, action: string, params: unknown, work: () => Promise<T>): Promise<T> {
  const done = await turn(ctx, action, params);
  try {
    return await work();
  } finally {
    done();
  }
}
