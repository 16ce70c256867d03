// The API as a Fastify app built by a factory: tests call buildApp() and use
// inject() or listen on loopback; `klaiwatch api` (api/serve.ts) listens.
// Every route declares who may call it (route config `roles`); a route
// without that declaration cannot be reached by anyone (default deny). Inputs
// and outputs are zod schemas; the OpenAPI 3.1 document is generated from
// them and browsable at /docs.
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyReply, type FastifyServerOptions, type RawServerDefault, type RawRequestDefaultExpression, type RawReplyDefaultExpression, type FastifyBaseLogger } from 'fastify';
import helmet from 'helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import formbody from '@fastify/formbody';
import { serializerCompiler, validatorCompiler, jsonSchemaTransform, hasZodFastifySchemaValidationErrors, type ZodTypeProvider } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { STATUS_CODES } from 'node:http';
import type { ApiContext } from './context.ts';
import { ROLES, type Principal, type Role } from './tokens.ts';
import { ApiError, errorBody } from './errors.ts';

/** The app with zod schemas as route types. */
export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;
const withZod = (app: FastifyInstance): App => app.withTypeProvider<ZodTypeProvider>();

export interface RouteInfo {
  method: string;
  url: string;
  /** null: no roles declared (nobody may call it). */
  roles: readonly Role[] | 'public' | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered, with the roles it allows. */
    routeTable: RouteInfo[];
    /** Refused tokens per address (the log-in page counts its refusals here too). */
    refusals: { blocked(key: string, now: number): number; count(key: string, now: number): void };
  }
  interface FastifyRequest {
    /** The token's holder; null before the auth hook or on public routes without a token. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Who may call the route; 'public' needs no token. Absent: nobody (default deny). */
    roles?: readonly Role[] | 'public';
  }
}

export interface AppOptions {
  /** Fastify's logger (pino options or instance); false in tests. */
  logger?: FastifyServerOptions['logger'] | FastifyServerOptions['loggerInstance'];
  /** HTTPS: PEM certificate and key. */
  https?: { cert: Buffer; key: Buffer };
  /** Requests per minute per token (per address without one). */
  rateLimit?: number;
  bodyLimit?: number;
  trustProxy?: boolean;
}

/** The cookie that carries the auditor pages' session id (HttpOnly, SameSite=Strict; api/sessions.ts). */
export const SESSION_COOKIE = 'kw_session';

/** The token a request presents in Authorization: Bearer. */
export function presentedToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h === 'string' && h.length <= 200) {
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (m) return m[1];
  }
  return undefined;
}

/** The pages' session id from the kw_session cookie (never a token: see api/sessions.ts). */
export function sessionCookie(req: FastifyRequest): string | undefined {
  const c = req.headers.cookie;
  if (typeof c === 'string' && c.length <= 4096) {
    for (const part of c.split(';', 50)) {
      const i = part.indexOf('=');
      if (i > 0 && part.slice(0, i).trim() === SESSION_COOKIE) return part.slice(i + 1).trim();
    }
  }
  return undefined;
}

/** A request that changes something on the strength of a cookie must come from this site's own page (CSRF). */
function sameOrigin(req: FastifyRequest): boolean {
  const host = req.headers.host;
  const from = typeof req.headers.origin === 'string' ? req.headers.origin : typeof req.headers.referer === 'string' ? req.headers.referer : undefined;
  if (!host || !from || from.length > 2000) return false;
  try {
    const u = new URL(from);
    // The scheme must be this request's; compared as URLs, so that a default port written out (localhost:80) equals one left out.
    if (u.protocol !== `${req.protocol}:`) return false;
    return new URL(`${u.protocol}//${host}`).host === u.host;
  } catch {
    return false;
  }
}

/** The school a request may see: its token's school for the school role, null (all) otherwise. */
export function schoolScope(req: FastifyRequest): string | null {
  return req.principal?.role === 'school' ? req.principal.school : null;
}

/** Refuses (403) a school token asking for another school's anything. */
export function assertSchool(req: FastifyRequest, code: string): void {
  const scope = schoolScope(req);
  if (scope !== null && scope !== code) throw new ApiError(403, 'forbidden', `this token sees school ${scope} only`);
}

/** The body of every error answer. */
export const ErrorZ = z.object({ error: z.string().meta({ description: 'a stable code: bad_request, unauthorized, forbidden, not_found, too_many_requests, unavailable, internal …' }), message: z.string().meta({ description: 'what is wrong and where, for a person' }) });

/**
 * The Content-Security-Policy per kind of answer: the JSON API the strictest
 * (nothing to load), the server-rendered pages (the auditor's, the printable
 * report) their own inline style and no script at all, the docs page (swagger-ui)
 * its own script and style files.
 */
const CSP: Record<'api' | 'pages' | 'docs', Record<string, string[]>> = {
  api: { defaultSrc: ["'none'"], baseUri: ["'none'"], frameAncestors: ["'none'"], formAction: ["'none'"] },
  pages: { defaultSrc: ["'none'"], baseUri: ["'self'"], frameAncestors: ["'none'"], formAction: ["'self'"], objectSrc: ["'none'"], scriptSrc: ["'none'"], styleSrc: ["'unsafe-inline'"], imgSrc: ["'self'", 'data:'], fontSrc: ["'self'", 'data:'] },
  docs: {
    defaultSrc: ["'self'"],
    baseUri: ["'self'"],
    frameAncestors: ["'none'"],
    formAction: ["'self'"],
    objectSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'", 'https:', "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:', 'validator.swagger.io'],
    fontSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
  },
};

export async function buildApp(ctx: ApiContext, o: AppOptions = {}): Promise<App> {
  const logger = o.logger ?? false;
  const app = Fastify({
    // A token a client put in the URL (?token=…, which no route takes) is not written to the log either.
    ...(typeof logger === 'object' && logger !== null && 'child' in logger
      ? { loggerInstance: (logger as unknown as { child(b: object, o: object): unknown }).child({}, { serializers: { req: requestForLog } }) as FastifyServerOptions['loggerInstance'] }
      : { logger: logger as FastifyServerOptions['logger'] }),
    ...(o.https ? { https: o.https } : {}),
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    trustProxy: o.trustProxy ?? false,
    // In-flight requests finish on close(); new ones are refused (503) meanwhile.
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // A path parameter longer than 200 characters is refused (414); a URL over 4 KiB too (below).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // The router's own refusals (a malformed URL, a parameter too long) answer like every other error.
    frameworkErrors: (err, _req, reply) => {
      const status = (err as { statusCode?: number }).statusCode ?? 400;
      const message = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is longer than 200 characters' : err.code === 'FST_ERR_BAD_URL' ? 'the URL is malformed' : err.message;
      void (reply as FastifyReply).code(status).send(errorBody(codeOf(status), message));
    },
  }) as unknown as FastifyInstance;
  // The docs' own routes are public (they describe, they hold no data).
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), roles: 'public' };
  });
  // Every route as declared (method, URL, who may call it): the role matrix test walks this list.
  const routes: RouteInfo[] = [];
  app.decorate('routeTable', routes);
  app.addHook('onRoute', (r) => {
    // Every route's refusals, in its OpenAPI entry (and serialized by the same schema): 400, 401, 403, 429.
    const roles = r.config?.roles;
    if (r.schema && !r.schema.hide && roles !== 'public' && !r.url.startsWith('/docs')) {
      r.schema.response = { 400: ErrorZ, 401: ErrorZ, 403: ErrorZ, 429: ErrorZ, ...(r.schema.response as Record<string, unknown> | undefined) };
    }
    for (const method of ([] as string[]).concat(r.method)) if (method !== 'HEAD') routes.push({ method, url: r.url, roles: r.config?.roles ?? null });
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null);

  // Security headers: helmet's, computed once (they depend on nothing in a request: no nonces) and set on
  // every reply, refusals and errors included. Running helmet's middleware per request (what @fastify/helmet
  // does) halved the throughput of every route in bench/api.
  const security = { api: securityHeaders(o.https !== undefined, 'api'), pages: securityHeaders(o.https !== undefined, 'pages'), docs: securityHeaders(o.https !== undefined, 'docs') };
  const securityFor = (url: string) => (url.startsWith('/docs') ? security.docs : url.startsWith('/auditor') || url.startsWith('/v1/reports') ? security.pages : security.api);

  // Who is asking: every route but the public ones needs a token, and its role must be one the route names.
  // Refused tokens are counted per address: past MAX_REFUSED a minute, that address gets 429 before any check
  // (guessing tokens is slow; the rate limit below counts only requests that got as far as a route's handler).
  const refused = new RefusalCounter(MAX_REFUSED, 60_000, 10_000);
  app.decorate('refusals', refused);
  app.addHook('onRequest', async (req, reply) => {
    reply.headers(securityFor(req.url));
    if ((req.raw.url?.length ?? 0) > 4096) throw new ApiError(414, 'uri_too_long', 'the URL is longer than 4096 characters');
    const roles = req.routeOptions.config?.roles;
    const token = presentedToken(req);
    const sid = token === undefined ? sessionCookie(req) : undefined;
    if (sid !== undefined) {
      const p = ctx.sessions.get(sid, ctx.now());
      if (p) {
        if (req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(req)) throw new ApiError(403, 'forbidden', 'a request made with the pages\' session cookie must come from this site\'s own page (its Origin names another site or none)');
        req.principal = p;
      }
    }
    // The log-in form from another site's page is refused (log-in CSRF: a victim's browser logged into someone else's session).
    if (req.method === 'POST' && req.routeOptions.url === '/auditor/login' && (req.headers.origin !== undefined || req.headers.referer !== undefined) && !sameOrigin(req)) {
      throw new ApiError(403, 'forbidden', "the log-in form must be posted from this site's own page");
    }
    if (token !== undefined) {
      const r = ctx.tokens.check(token, ctx.now());
      if ('principal' in r) req.principal = r.principal;
      else if (roles !== 'public') {
        // A refused token: counted per address; past MAX_REFUSED a minute that address's refused tokens get 429
        // (good tokens from it still pass, and public routes such as /healthz ignore a bad token altogether).
        const wait = refused.blocked(req.ip, ctx.now());
        if (wait > 0) {
          reply.header('retry-after', String(Math.ceil(wait / 1000)));
          throw new ApiError(429, 'too_many_requests', `more than ${MAX_REFUSED} refused tokens from ${req.ip} in a minute; try again in ${Math.ceil(wait / 1000)} s`);
        }
        refused.count(req.ip, ctx.now());
        throw new ApiError(401, 'unauthorized', `the token is ${r.refused}`);
      }
    }
    if (roles === 'public') return;
    if (!req.routeOptions.url) return; // no route: the 404 handler answers
    // No token: 401 at once, before any lookup (it costs nothing to answer; only presented tokens are counted).
    if (!req.principal) throw new ApiError(401, 'unauthorized', 'this route needs a token: Authorization: Bearer kw_…');
    if (!roles || !roles.includes(req.principal.role)) throw new ApiError(403, 'forbidden', `${/^[aeiou]/.test(req.principal.role) ? 'an' : 'a'} ${req.principal.role} token may not ${req.method} ${req.routeOptions.url}`);
  });

  await app.register(rateLimit, {
    global: true,
    max: o.rateLimit ?? 600,
    timeWindow: 60_000,
    hook: 'preHandler',
    keyGenerator: (req) => (req.principal ? `token:${req.principal.id}` : `ip:${req.ip}`),
    // The monitor's /healthz and the docs' files are not counted: a flood from one address must not blind the monitor.
    allowList: (req) => req.url === '/healthz' || req.url.startsWith('/healthz?') || req.url.startsWith('/docs/static/'),
    // Thrown, so that the error handler answers it like every other refusal ({ error, message }); the plugin has set Retry-After.
    errorResponseBuilder: (_req, c) => new ApiError(429, 'too_many_requests', `more than ${c.max} requests a minute; try again in ${Math.ceil(c.ttl / 1000)} s`) as unknown as object,
  });
  await app.register(formbody, { bodyLimit: 16 * 1024 });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'klaiwatch API', version: '1', description: 'Schools, devices, states, incidents, reports, maintenance windows, and (auditors) the traffic-log archive. Authorization: Bearer kw_… (klaiwatch token create).' },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer' } } },
      security: [{ token: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' }, staticCSP: false });

  app.setErrorHandler((e, req, reply) => {
    const err = e as Error & { statusCode?: number };
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext ?? 'request';
      const issues = err.validation.slice(0, 10).map((v) => {
        const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
        return `${where}${path ? '.' + path : ''}: ${v.message}`;
      });
      return reply.code(400).send({ error: 'bad_request', message: issues.join('; ') });
    }
    if (err instanceof ApiError) {
      if (err.status === 429 || err.status >= 500) req.log.warn({ status: err.status, msg: err.message }, 'request refused');
      return reply.code(err.status).send(errorBody(err.code, err.message));
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) return reply.code(status).send(errorBody(codeOf(status), err.message));
    req.log.error({ err: { message: err.message, name: err.name } }, 'request failed');
    return reply.code(500).send(errorBody('internal', 'the server failed to answer; its log says why'));
  });
  // Requests Node's parser refuses before Fastify sees them (headers too large, a malformed request line)
  // are answered in the same { error, message } shape.
  app.server.removeAllListeners('clientError');
  app.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const message = status === 431 ? 'the request headers are larger than the server takes' : status === 408 ? 'the request did not arrive in time' : 'the request is malformed HTTP';
    const body = JSON.stringify(errorBody(status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'bad_request', message));
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}; the routes are listed at /docs`)));

  await registerRoutes(withZod(app), ctx);
  return withZod(app);
}

/** The headers helmet sets with klaiwatch's options, as a plain object (helmet's middleware run once on a stand-in response). */
export function securityHeaders(tls: boolean, kind: keyof typeof CSP = 'docs'): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (k: string, v: string | number | readonly string[]) => void (headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v)),
    removeHeader: (k: string) => void delete headers[k.toLowerCase()],
  };
  let failed: unknown;
  helmet({ contentSecurityPolicy: { useDefaults: false, directives: CSP[kind] }, crossOriginEmbedderPolicy: false, xFrameOptions: { action: 'deny' }, strictTransportSecurity: tls ? { maxAge: 15_552_000 } : false })({} as never, res as never, (err?: unknown) => void (failed = err));
  if (failed) throw failed;
  return headers;
}

/** A URL for the log: the values of query parameters that look like secrets (token, key, password, session…) replaced. */
export function urlForLog(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url.slice(0, 2000);
  const params = url
    .slice(q + 1, q + 4000)
    .split('&')
    .map((p) => {
      const i = p.indexOf('=');
      return i > 0 && /token|secret|pass|key|session|auth|kw_/i.test(p.slice(0, i)) ? `${p.slice(0, i)}=[redacted]` : /kw_[A-Za-z0-9_-]{20,}/.test(p) ? p.replace(/kw_[A-Za-z0-9_-]+/g, 'kw_[redacted]') : p;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** The request as a log line shows it (Fastify's own fields, the URL through urlForLog). */
function requestForLog(req: { method?: string; url?: string; hostname?: string; host?: string; ip?: string; socket?: { remotePort?: number } }): Record<string, unknown> {
  return { method: req.method, url: urlForLog(req.url ?? ''), host: req.host ?? req.hostname, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

/** Refused tokens a minute from one address before it gets 429. */
export const MAX_REFUSED = 30;

/** Refusals per address in fixed windows; at most `maxKeys` addresses are tracked (the oldest window is dropped first). */
export class RefusalCounter {
  private readonly seen = new Map<string, { start: number; n: number }>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  constructor(max: number, windowMs: number, maxKeys: number) {
    this.max = max;
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
  }
  /** How long (ms) this key is still refused; 0 when it is not. */
  blocked(key: string, now: number): number {
    const e = this.seen.get(key);
    return e !== undefined && now - e.start < this.windowMs && now >= e.start && e.n >= this.max ? this.windowMs - (now - e.start) : 0;
  }
  count(key: string, now: number): void {
    const e = this.seen.get(key);
    if (e && now - e.start < this.windowMs) {
      e.n++;
      return;
    }
    this.seen.delete(key);
    if (this.seen.size >= this.maxKeys) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, { start: now, n: 1 });
  }
}

function codeOf(status: number): string {
  return { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed', 406: 'not_acceptable', 413: 'payload_too_large', 414: 'uri_too_long', 415: 'unsupported_media_type', 429: 'too_many_requests' }[status] ?? 'bad_request';
}

/** The route modules, each `register(app, ctx)`. */
async function registerRoutes(app: App, ctx: ApiContext): Promise<void> {
  const mods = await Promise.all([import('./routes/health.ts'), import('./routes/views.ts'), import('./routes/maintenance.ts'), import('./routes/auditor.ts'), import('./routes/pages.ts')]);
  for (const m of mods) await m.register(app, ctx);
}

export { ROLES };
export type { Role, Principal, FastifyReply };
