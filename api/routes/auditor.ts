// The auditor's side of the API (issue 17, point 4): the traffic-log
// archive's search (JSON, NDJSON, CSV; streamed, paged, cut at a row limit),
// who had an address at a moment, the archive's verification and the
// evidence package, for tokens of role auditor; the access journal for
// auditors and officers. The same audited functions as `klaiwatch archive`
// (archive/auditor.ts); every request is journalled FIRST with the token's
// id, name and role, and when the journal cannot be written the answer is
// 503 and nothing else (routes/auditor/traffic.ts).
import { createReadStream } from 'node:fs';
import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import { ErrorZ, type App } from '../app.ts';
import type { ApiContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { MIN_REFERENCE, type AuditContext } from '../../archive/auditor.ts';
import { archiveAddress, archiveError, beginAudit, BusyError, closeAudit, evidence, journalPage, refuse, streamSearch, timeParam, toQuery, verifyStatus, who, whoJson, SEARCH_FIELDS, VERIFY_CACHE_MS, type VerifyAnswer } from './auditor/traffic.ts';
import type { JournalRow } from '../../archive/journal.ts';

const error = ErrorZ;
const errors = { 400: error, 401: error, 403: error, 503: error };

/** Text parameters are bounded (the URL as a whole is too: 4096 characters). */
/** A port: digits only (a number coerced by JavaScript would also take "0x1bb", "1e3" and "443.0"). */
const PortZ = z.union([z.number().int(), z.string().regex(/^\d{1,5}$/, 'expected a port number from 0 to 65535 (digits)').transform(Number)]).pipe(z.number().int().min(0).max(65535));

const text = (max: number, what: string) => z.string().max(max).optional().describe(what);

export const filterShape = {
  from: text(40, 'from this time: 2026-06-03T09:41 (Asia/Bangkok), 2026-06-03, or ISO-8601 with a zone'),
  to: text(40, 'before this time (same forms as from)'),
  ip: text(64, 'an address on either side (or the side named), or its NAT translation'),
  side: z.enum(['src', 'dst', 'either']).optional().describe('which side ip is on (default either)'),
  peer: text(64, 'the other end'),
  port: PortZ.optional().describe('a port on either side'),
  proto: text(16, 'tcp, udp, icmp or a protocol number'),
  school: text(64, 'the school code whose devices sent the records'),
  user: text(256, 'a user name (RADIUS, hotspot, VPN)'),
  mac: text(32, 'a MAC address'),
};

/** The journal row's copy of what was asked (only the filters and paging, never headers). */
const asked = (q: Record<string, unknown>): Record<string, unknown> =>
  // A body that is not an object (text/plain, a JSON string) is journalled as what it is, not one key per character.
  q === null || typeof q !== 'object' || Array.isArray(q) ? { body: String(q).slice(0, 500) } : Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined && v !== ''));

/**
 * Journal first, then the parameters: a request whose parameters were
 * refused by the schema (attachValidation) is journalled as refused, and
 * the 400 answered as any other.
 */
async function opened(api: ApiContext, req: FastifyRequest, action: string, params: Record<string, unknown>): Promise<AuditContext> {
  const ctx = await beginAudit(api, req, action, asked(params));
  if (req.validationError) {
    try {
      refuse(ctx, action, asked(params), req.validationError);
    } finally {
      closeAudit(ctx);
    }
  }
  return ctx;
}

/** Runs an audited act; a refusal is journalled, and the journal is closed when the act is done. `where`: what an argument's error names (querystring.port, body.reference). */
async function act<T>(ctx: AuditContext, action: string, params: unknown, work: () => Promise<T> | T, keepOpen = false, where: 'querystring' | 'body' = 'querystring'): Promise<T> {
  try {
    return await work();
  } catch (err) {
    // Parameters refused before the archive was read (ApiError 400): journalled here; the act's own failures are journalled by the act.
    if (err instanceof ApiError && err.status === 400) refuse(ctx, action, params, err);
    throw archiveError(err, where);
  } finally {
    if (!keepOpen) closeAudit(ctx);
  }
}

export async function register(app: App, ctx: ApiContext): Promise<void> {
  const maxRows = ctx.config.settings.api.max_rows;
  // A busy archive (every turn taken, the queue full) says when to come back.
  app.addHook('onError', async (_req, reply, err) => {
    if (err instanceof BusyError) reply.header('retry-after', String(err.retryAfter));
  });
  const auditor = { roles: ['auditor'] as const };

  app.get(
    '/v1/traffic/search',
    {
      config: auditor,
      attachValidation: true,
      schema: {
        tags: ['traffic'],
        summary: 'Search the traffic-log archive (streamed; JSON, NDJSON or CSV)',
        description: `Rows in time order, streamed as they are read. At most \`limit\` rows (≤ ${maxRows}, api.max_rows) from \`offset\`: a cut answer says so in X-Klaiwatch-Truncated and X-Klaiwatch-Next-Offset, and (JSON, NDJSON) in its last fields \`truncated\` and \`next_offset\`. No match: zero rows and a \`message\`. CSV cells that begin like a formula get a ' in front (as the evidence package's rows.csv). Every request is written to the access journal first; 503 when it cannot be.`,
        querystring: z.object({
          ...filterShape,
          limit: z.coerce.number().int().min(1).max(maxRows).optional().describe(`rows at most (default ${Math.min(1000, maxRows)}, at most ${maxRows})`),
          offset: z.coerce.number().int().min(0).max(1_000_000_000).optional().describe('rows skipped (the next page: next_offset)'),
          format: z.enum(['json', 'ndjson', 'csv']).optional().describe('json (default), ndjson or csv'),
        }),
        response: errors,
      },
    },
    async (req, reply) => {
      const qs = req.query as Record<string, string | number | undefined>;
      const audit = await opened(ctx, req, 'query', qs);
      const q = await act(audit, 'query', asked(qs), () => toQuery(qs, 'querystring'), true).catch((err) => {
        closeAudit(audit);
        throw err;
      });
      const limit = Number(qs.limit ?? Math.min(1000, maxRows));
      const offset = Number(qs.offset ?? 0);
      const format = (qs.format as 'json' | 'ndjson' | 'csv' | undefined) ?? 'json';
      let s;
      try {
        s = await streamSearch(audit, q, format, limit, offset);
      } catch (err) {
        closeAudit(audit);
        throw archiveError(err, 'querystring');
      }
      return reply.headers(s.headers).send(s.body as never);
    },
  );

  app.get(
    '/v1/traffic/who',
    {
      config: auditor,
      attachValidation: true,
      schema: {
        tags: ['traffic'],
        summary: 'Who had an address at a moment (DHCP leases, RADIUS, hotspot, VPN; through NAT with port)',
        querystring: z.object({
          ip: z.string().max(64).describe('the address (with port: a public NAT address)'),
          at: z.string().max(40).describe('the moment: 2026-06-03T09:41 (Asia/Bangkok), or ISO-8601 with a zone'),
          port: PortZ.optional().describe('the public port (NAT)'),
        }),
        response: {
          200: z.looseObject({
            ip: z.string(),
            at_ms: z.number(),
            at_bangkok: z.string(),
            leases: z.array(z.unknown()),
            sessions: z.array(z.unknown()),
            from_wal: z.number(),
            missing_segments: z.array(z.string()),
            altered_segments: z.array(z.string()),
            message: z.string().nullable(),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const qs = req.query as { ip: string; at: string; port?: number };
      const audit = await opened(ctx, req, 'who', qs);
      return act(audit, 'who', asked(qs), async () => {
        const ip = archiveAddress(qs.ip);
        if (ip === undefined) throw new ApiError(400, 'bad_request', `querystring.ip: ${JSON.stringify(qs.ip)} is not an IPv4 or IPv6 address (without a zone index)`);
        const at = timeParam(qs.at, 'querystring', 'at');
        const r = await who(audit, ip, at, qs.port);
        return { ...whoJson(r.answer), message: r.message };
      });
    },
  );

  app.get(
    '/v1/traffic/verify',
    {
      config: auditor,
      schema: {
        tags: ['traffic'],
        summary: "The archive's verification: the signed chain, every segment's hash, the journal",
        description: `Reads the whole manifest and every segment file; run at most once every ${VERIFY_CACHE_MS / 1000} s per API process (one run at a time; \`cached\` and \`checked_at\` say which run answers).`,
        response: { 200: z.looseObject({ ok: z.boolean(), status: z.string(), checked_at: z.string(), cached: z.boolean() }), ...errors },
      },
    },
    async (req) => {
      const audit = await opened(ctx, req, 'verify', {});
      return act(audit, 'verify', {}, async () => (await verifyStatus(ctx, audit)) as VerifyAnswer & Record<string, unknown>);
    },
  );

  app.post(
    '/v1/traffic/evidence',
    {
      config: auditor,
      attachValidation: true,
      schema: {
        tags: ['traffic'],
        summary: 'The evidence package (a tar file with the rows, their proofs, the signed manifest and verify.mjs)',
        description: 'The query and the reference (the order or letter it answers). The package is downloaded as it was written; X-Klaiwatch-SHA256 is its SHA-256 (also journalled). Needs the archive\'s signing key on this server.',
        body: z.object({ ...filterShape, reference: z.string().min(MIN_REFERENCE).max(500).describe(`the order or letter the export answers (หนังสือ/คำสั่ง), at least ${MIN_REFERENCE} characters`) }),
        response: { 400: error, 401: error, 403: error, 409: error, 503: error },
      },
    },
    async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, string | number | undefined>;
      const audit = await opened(ctx, req, 'export', body);
      const e = await act(audit, 'export', asked(body), () => evidence(audit, toQuery(body, 'body'), String(body.reference ?? ''), ctx.config.settings.api.max_rows), false, 'body');
      return sendEvidence(reply, e);
    },
  );

  app.get(
    '/v1/traffic/journal',
    {
      config: { roles: ['auditor', 'officer'] },
      attachValidation: true,
      schema: {
        tags: ['traffic'],
        summary: 'The access journal (read-only): who searched, asked, verified or exported what, and how it ended',
        querystring: z.object({
          from: text(40, 'rows written from this time'),
          to: text(40, 'rows written before this time'),
          after: z.coerce.number().int().min(0).optional().describe('rows after this id (the next page: next_after)'),
          limit: z.coerce.number().int().min(1).max(Math.min(10_000, maxRows)).optional().describe('rows at most (default 500)'),
        }),
        response: { 200: z.object({ rows: z.array(z.looseObject({ id: z.number() })), truncated: z.boolean(), next_after: z.number().nullable(), message: z.string().optional() }), ...errors },
      },
    },
    async (req) => {
      const qs = req.query as { from?: string; to?: string; after?: number; limit?: number };
      const audit = await opened(ctx, req, 'journal', qs);
      return act(audit, 'journal', asked(qs), () => {
        const from = qs.from ? timeParam(qs.from, 'querystring', 'from') : undefined;
        const to = qs.to ? timeParam(qs.to, 'querystring', 'to') : undefined;
        const page = journalPage(audit, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), ...(qs.after !== undefined ? { after: qs.after } : {}), limit: qs.limit ?? 500 });
        const rows = page.rows as (JournalRow & Record<string, unknown>)[];
        return page.rows.length === 0 ? { ...page, rows, message: 'no journal rows in that range' } : { ...page, rows };
      });
    },
  );
}

/** The package as a download: its SHA-256 in a header; the temporary file removed once sent (or the client gone). */
export function sendEvidence(reply: import('fastify').FastifyReply, e: Awaited<ReturnType<typeof evidence>>) {
  const stream = createReadStream(e.file);
  stream.on('close', () => void e.remove());
  const name = e.name;
  return reply
    .headers({
      'content-type': 'application/x-tar',
      'content-disposition': `attachment; filename="${name}"`,
      'content-length': String(e.bytes),
      'x-klaiwatch-sha256': e.sha256,
      'x-klaiwatch-rows': String(e.rows),
      'x-klaiwatch-archive-intact': String(e.intact),
      ...(e.journalEntry !== null ? { 'x-klaiwatch-journal-manifest-entry': String(e.journalEntry) } : {}),
      'cache-control': 'no-store',
    })
    .send(stream);
}

export { SEARCH_FIELDS };
