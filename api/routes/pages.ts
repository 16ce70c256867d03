// The auditor's pages (issue 17, point 4): Thai, rendered on the server
// (@fastify/view with eta, every value escaped), no JavaScript needed and
// none sent (the CSP forbids inline scripts; the style is inline, which it
// allows). The auditor logs in by pasting a token of role auditor; it goes
// into the kw_session cookie (HttpOnly, SameSite=Strict, Path=/, Secure over
// TLS), which the API's own routes read too (the download links). The pages
// call the same audited functions as the API routes and keep the same
// journal-first rule (routes/auditor/traffic.ts). Without a session a page
// answers 303 to /auditor/login: a person is at the browser.
import { fileURLToPath } from 'node:url';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../app.ts';
import { SESSION_COOKIE, sessionCookie } from '../app.ts';
import type { ApiContext } from '../context.ts';
import { ApiError, errorBody } from '../errors.ts';
import type { TrafficRecord } from '../../archive/record.ts';
import type { Binding } from '../../archive/identity.ts';
import type { AuditContext } from '../../archive/auditor.ts';
import { sendEvidence } from './auditor.ts';
import { anyFilter, archiveError, beginAudit, BusyError, closeAudit, evidence, noRecords, refuse, searchPage, timeParam, toQuery, verifyStatus, who, SEARCH_FIELDS, type SearchInput } from './auditor/traffic.ts';

const VIEWS = fileURLToPath(new URL('../views/', import.meta.url));
/** Rows a page shows. */
export const PAGE_ROWS = 50;
/** Download parts a search page links to when its answer is larger than api.max_rows (100 × 100,000 rows). */
export const MAX_PARTS = 100;
/** A session lasts a working day; the token's own expiry and revocation still count at every request. */
const SESSION_SECONDS = 8 * 3600;

const thaiSeconds = new Intl.DateTimeFormat('th-TH-u-ca-buddhist', { timeZone: 'Asia/Bangkok', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
/** "3 มิ.ย. 2569 09:41:07" (Buddhist Era, Asia/Bangkok). */
export const thaiTime = (t: number) => thaiSeconds.format(t);
const thaiLong = new Intl.DateTimeFormat('th-TH-u-ca-buddhist', { timeZone: 'Asia/Bangkok', dateStyle: 'long', timeStyle: 'medium' });

const PROTO: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 47: 'GRE', 50: 'ESP', 58: 'ICMPv6' };
const hostPort = (ip: string | null, port: number | null) => (ip === null ? '' : port === null ? ip : ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
const clip = (s: string | null, n = 300) => (s === null ? '' : s.length > n ? `${s.slice(0, n)}… (${s.length} ตัวอักษร)` : s);

function rowView(r: TrafficRecord) {
  return {
    time: thaiTime(r.dev_ms ?? r.recv_ms),
    parser: r.parser,
    exporter: r.exporter,
    school: r.school ?? '',
    src: hostPort(r.src_ip, r.src_port),
    dst: hostPort(r.dst_ip, r.dst_port),
    proto: r.proto === null ? '' : (PROTO[r.proto] ?? String(r.proto)),
    nat: hostPort(r.nat_ip, r.nat_port),
    mac: r.mac ?? '',
    user: r.user ?? '',
    action: clip(r.action, 120),
    raw: clip(r.raw ?? r.url),
  };
}

function bindingView(b: Binding) {
  return {
    mac: b.mac ?? '',
    client: b.client ?? '',
    user: b.user ?? '',
    from: thaiTime(b.from),
    to: b.to === null ? 'ยังใช้อยู่ (still bound)' : thaiTime(b.to),
    source: `${b.source}, ${b.events} เหตุการณ์`,
    exporter: `${b.exporter}${b.school ? ` (โรงเรียน ${b.school})` : ''}`,
    clock: b.clock === 'receive' ? `ตามเวลารับ (receive time): นาฬิกาอุปกรณ์คลาด ${Math.round(Math.abs(b.device_offset_ms ?? 0) / 60_000)} นาที` : 'ตามนาฬิกาอุปกรณ์ (device time)',
  };
}

/** One text value of a query string or form: repeated or over-long values are refused, naming the field. */
function field(src: unknown, name: string, where: string, max = 256): string {
  const v = (src as Record<string, unknown> | undefined)?.[name];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new ApiError(400, 'bad_request', `${where}.${name}: given more than once`);
  if (v.length > max) throw new ApiError(400, 'bad_request', `${where}.${name}: longer than ${max} characters`);
  return v;
}

const filtersOf = (src: unknown, where: string): Record<(typeof SEARCH_FIELDS)[number], string> =>
  Object.fromEntries(SEARCH_FIELDS.map((f) => [f, field(src, f, where)])) as Record<(typeof SEARCH_FIELDS)[number], string>;

/** The filters given (non-empty; side only with an address) as URL parameters. */
function filterParams(i: Record<string, string>): URLSearchParams {
  const p = new URLSearchParams();
  for (const f of SEARCH_FIELDS) if (i[f] && (f !== 'side' || (i.ip && i.side !== 'either'))) p.set(f, i[f]!);
  return p;
}

/** A Thai sentence for an error answer, with the English message kept (it names the field). */
function thaiError(err: ApiError): string {
  if (err.code === 'unavailable' && err.message.startsWith('the access journal')) return `บันทึกการเข้าถึง (access journal) เขียนไม่ได้ จึงไม่แสดงข้อมูลใด ๆ: ${err.message}`;
  if (err.code === 'unavailable') return `ระบบยังไม่พร้อม: ${err.message}`;
  if (err.status === 400) return `เงื่อนไขไม่ถูกต้อง (bad request): ${err.message}`;
  if (err.status === 409) return `สร้างชุดหลักฐานไม่ได้: ${err.message}`;
  return err.message;
}

/** A refusal of a page's parameters (400) as the text the page shows; any other failure goes on to the error handler. */
function refusalText(err: unknown): string {
  const e = archiveError(err, 'querystring');
  if (e instanceof ApiError && e.status === 400) return thaiError(e);
  throw e;
}

export async function register(app: App, ctx: ApiContext): Promise<void> {
  const maxRows = ctx.config.settings.api.max_rows;
  await app.register(async (scope) => {
    await scope.register(view, {
      engine: { eta: new Eta({ views: VIEWS, autoEscape: true, cache: true }) },
      root: VIEWS,
      viewExt: 'eta',
      production: true,
    });

    // Referrer-Policy same-origin on the pages (the API's is no-referrer): under no-referrer a browser sends
    // "Origin: null" with a form's POST, and the session cookie's POSTs must show this site's origin (the
    // evidence form, log-out). Same-origin still sends nothing to another site.
    const render = (reply: FastifyReply, page: string, data: Record<string, unknown>, status = 200) =>
      reply.code(status).header('cache-control', 'no-store').header('referrer-policy', 'same-origin').viewAsync(page, { principal: reply.request.principal, error: null, ...data });

    // Errors on these pages are pages: no session → the login form (303); the rest in Thai.
    scope.setErrorHandler((e, req, reply) => {
      // The pages' forms are GET (search, who: the query string) but for the evidence (POST: the body).
      const err = archiveError(e, req.method === 'POST' ? 'body' : 'querystring') as Error & { statusCode?: number };
      const status = err instanceof ApiError ? err.status : (err.statusCode ?? 500);
      if (err instanceof BusyError) reply.header('retry-after', String(err.retryAfter));
      if (status === 401) return reply.code(303).header('location', '/auditor/login').header('cache-control', 'no-store').send();
      if (status >= 500 && !(err instanceof ApiError)) req.log.error({ err: { message: err.message, name: err.name } }, 'page failed');
      // A client that does not ask for a page (a script) gets the API's { error, message }.
      if (!/text\/html/.test(String(req.headers.accept ?? ''))) {
        const code = err instanceof ApiError ? err.code : status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status < 500 ? 'bad_request' : 'internal';
        return reply.code(status).send(errorBody(code, status < 500 || err instanceof ApiError ? err.message : 'the server failed to answer; its log says why'));
      }
      const message = err instanceof ApiError ? thaiError(err) : status < 500 ? err.message : 'ระบบขัดข้อง ดูสาเหตุได้ในบันทึกของเซิร์ฟเวอร์ (the server failed; its log says why)';
      const heading = status === 403 ? 'หน้านี้สำหรับผู้ตรวจสอบเท่านั้น (auditors only)' : status === 503 ? 'ยังให้บริการไม่ได้ (unavailable)' : 'ทำรายการไม่สำเร็จ';
      return render(reply, 'error', { heading, message, back: status === 403 ? '/auditor/login' : (req.headers.referer && req.headers.referer.length < 2000 ? new URL(req.headers.referer, 'http://x').pathname : '/auditor/search') }, status);
    });

    scope.get('/auditor', { config: { roles: 'public' }, schema: { hide: true } }, async (_req, reply) => reply.code(303).header('location', '/auditor/search').send());

    scope.get('/auditor/login', { config: { roles: 'public' }, schema: { hide: true } }, async (req, reply) => render(reply, 'login', { principal: null, notice: (req.query as Record<string, unknown>)?.out === '1' ? 'ออกจากระบบแล้ว (logged out)' : null }));

    scope.post('/auditor/login', { config: { roles: 'public' }, schema: { hide: true } }, async (req, reply) => {
      const token = field(req.body, 'token', 'body', 200).trim();
      // Guessing tokens here is slowed like anywhere else: refused tokens per address (api/app.ts).
      const wait = scope.refusals.blocked(req.ip, ctx.now());
      if (wait > 0) {
        reply.header('retry-after', String(Math.ceil(wait / 1000)));
        throw new ApiError(429, 'too_many_requests', `more than 30 refused tokens from ${req.ip} in a minute; try again in ${Math.ceil(wait / 1000)} s`);
      }
      const r = token ? ctx.tokens.check(token, ctx.now()) : { refused: 'missing' as const };
      if (!('principal' in r)) scope.refusals.count(req.ip, ctx.now());
      if (!('principal' in r) || r.principal.role !== 'auditor') {
        const why = 'principal' in r ? `โทเค็นนี้เป็นของบทบาท ${r.principal.role} ไม่ใช่ผู้ตรวจสอบ (auditor)` : `โทเค็นใช้ไม่ได้ (the token is ${r.refused})`;
        req.log.warn({ refused: 'principal' in r ? `role ${r.principal.role}` : r.refused }, 'auditor page login refused');
        // The form again, saying why (200: a page for a person; no cookie is set).
        return render(reply, 'login', { principal: null, error: why, notice: null });
      }
      const secure = req.protocol === 'https' ? '; Secure' : '';
      return reply
        .code(303)
        // The cookie holds a session id, never the token (api/sessions.ts): logging out ends it on the server.
        .header('set-cookie', `${SESSION_COOKIE}=${ctx.sessions.create(r.principal, ctx.now())}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_SECONDS}${secure}`)
        .header('location', '/auditor/search')
        .header('cache-control', 'no-store')
        .send();
    });

    scope.post('/auditor/logout', { config: { roles: 'public' }, schema: { hide: true } }, async (req, reply) => {
      const sid = sessionCookie(req);
      if (sid !== undefined) ctx.sessions.end(sid);
      const secure = req.protocol === 'https' ? '; Secure' : '';
      return reply.code(303).header('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure}`).header('location', '/auditor/login?out=1').send();
    });

    const auditor = { roles: ['auditor'] as const };

    /** Journal first, then `work`; the journal is closed when it is done. A refusal of the parameters is journalled. */
    async function audited<T>(req: FastifyRequest, action: string, params: Record<string, unknown>, work: (a: AuditContext) => Promise<T>): Promise<T> {
      const a = await beginAudit(ctx, req, action, { page: true, ...Object.fromEntries(Object.entries(params).filter(([, v]) => v !== '' && v !== undefined)) });
      try {
        return await work(a);
      } catch (err) {
        if (err instanceof ApiError && err.status === 400) refuse(a, action, params, err);
        throw err;
      } finally {
        closeAudit(a);
      }
    }

    scope.get('/auditor/search', { config: auditor, schema: { hide: true } }, async (req, reply) => {
      const input = filtersOf(req.query, 'querystring');
      const offsetText = field(req.query, 'offset', 'querystring', 12);
      const offset = offsetText === '' ? 0 : Number(offsetText);
      if (!Number.isInteger(offset) || offset < 0) throw new ApiError(400, 'bad_request', 'querystring.offset: expected a whole number from 0');
      if (!anyFilter(input as SearchInput)) return render(reply, 'search', { here: 'search', input, result: null, hidden: [], maxRows });
      let error: string | null = null;
      const result = await audited(req, 'query', { ...input, offset }, async (a) => {
        const q = toQuery(input, 'querystring');
        const r = await searchPage(a, q, PAGE_ROWS, offset);
        const p = filterParams(input);
        const at = (o: number) => `/auditor/search?${new URLSearchParams([...p, ...(o > 0 ? [['offset', String(o)]] : [])]).toString()}`;
        const download = (format: string, from = 0) => `/v1/traffic/search?${new URLSearchParams([...p, ['format', format], ['limit', String(maxRows)], ...(from > 0 ? [['offset', String(from)]] : [])]).toString()}`;
        // An answer larger than one download (api.max_rows) in parts, each a link (at most MAX_PARTS; past them the API's next_offset goes on).
        const parts = r.total > maxRows ? Array.from({ length: Math.min(MAX_PARTS, Math.ceil(r.total / maxRows)) }, (_, i) => ({ first: i * maxRows + 1, last: Math.min(r.total, (i + 1) * maxRows), csv: download('csv', i * maxRows), ndjson: download('ndjson', i * maxRows) })) : [];
        return {
          rows: r.rows.map(rowView),
          first: offset + 1,
          last: offset + r.rows.length,
          truncated: r.truncated,
          nextHref: r.nextOffset !== null ? at(r.nextOffset) : null,
          prevHref: offset > 0 ? at(Math.max(0, offset - PAGE_ROWS)) : null,
          csvHref: download('csv'),
          ndjsonHref: download('ndjson'),
          total: r.total,
          parts,
          partsCut: r.total > MAX_PARTS * maxRows,
          message: r.rows.length === 0 ? noRecords(r.segmentsRead) : null,
          fromWal: r.fromWal,
          missing: r.missing,
          altered: r.altered,
        };
      }).catch((err) => {
        error = refusalText(err);
        return null;
      });
      return render(reply, 'search', { here: 'search', input, result, error, hidden: [...filterParams(input)], maxRows }, error ? 400 : 200);
    });

    scope.get('/auditor/who', { config: auditor, schema: { hide: true } }, async (req, reply) => {
      const input = { ip: field(req.query, 'ip', 'querystring', 64), at: field(req.query, 'at', 'querystring', 40), port: field(req.query, 'port', 'querystring', 8) };
      if (!input.ip && !input.at) return render(reply, 'who', { here: 'who', input, result: null });
      let error: string | null = null;
      const result = await audited(req, 'who', input, async (a) => {
        const q = toQuery({ ip: input.ip, port: input.port }, 'querystring');
        if (!q.ip) throw new ApiError(400, 'bad_request', 'querystring.ip: the address to look up is missing');
        const at = timeParam(input.at, 'querystring', 'at');
        const r = await who(a, q.ip, at, q.port);
        const x = r.answer;
        return {
          ip: x.ip,
          at: thaiLong.format(x.at),
          nat: x.nat ? `${x.nat.public}:${x.nat.port} คือ ${hostPort(x.nat.inside, x.nat.insidePort)} ภายในเครือข่าย (NAT, ${x.nat.record.parser} จาก ${x.nat.record.exporter})` : q.port !== undefined ? `ไม่พบการแปลงที่อยู่ (NAT) ของ ${input.ip}:${q.port} ภายใน 15 นาที: ตอบสำหรับ ${input.ip} เอง` : null,
          nobody: r.message !== null,
          leases: x.leases.map(bindingView),
          sessions: x.sessions.map(bindingView),
          missing: x.missing,
          altered: x.altered,
        };
      }).catch((err) => {
        error = refusalText(err);
        return null;
      });
      return render(reply, 'who', { here: 'who', input, result, error }, error ? 400 : 200);
    });

    scope.get('/auditor/verify', { config: auditor, schema: { hide: true } }, async (req, reply) => {
      const v = await audited(req, 'verify', {}, (a) => verifyStatus(ctx, a));
      return render(reply, 'verify', { here: 'verify', v, checkedAt: thaiLong.format(Date.parse(v.checked_at)) });
    });

    scope.post('/auditor/evidence', { config: auditor, schema: { hide: true } }, async (req, reply) => {
      const input = filtersOf(req.body, 'body');
      const reference = field(req.body, 'reference', 'body', 500);
      const e = await audited(req, 'export', { ...input, reference }, (a) => evidence(a, toQuery(input, 'body'), reference, maxRows));
      return sendEvidence(reply, e);
    });
  });
}
