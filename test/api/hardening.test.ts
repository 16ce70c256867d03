// The API's hardening (issue 17, point 5): rate limit per token, body and URL
// limits, security headers (and a CSP the docs page passes in a real
// browser), errors as { error, message } without stack traces, request logs
// with tokens redacted, TLS from api.tls and a graceful stop of
// `klaiwatch api` as a real process. Everything on real stores (the simulated
// area) and, where it matters, real HTTP(S) on loopback.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { parse, stringify } from 'yaml';
import { chromium, type Browser } from 'playwright-core';
import { startApiArea, SCHOOL, type ApiArea } from './area.ts';
import { buildApp, type App } from '../../api/app.ts';
import type { Role } from '../../api/tokens.ts';
import { createLogger } from '../../config/log.ts';
import { selfSignedCert } from '../helpers/flows.ts';
import { freePort, requireBinary } from '../helpers/peers.ts';
import { PROJECT } from '../../sim/area.ts';

let a: ApiArea;
let ownDevice: string;
let period: string;

beforeAll(async () => {
  await requireBinary('chromium', 'chromium');
  await requireBinary('openssl', 'openssl');
  a = await startApiArea({ octet: 178, rounds: 1 });
  ownDevice = a.config.schools.find((x) => x.code === SCHOOL)!.devices[0]!.id;
  period = new Date(a.ctx.now() + 7 * 3_600_000).toISOString().slice(0, 7);
}, 240_000);

afterAll(async () => {
  await a?.close();
});

/** An error answer is exactly { error, message }, with no stack frame, source path or file name in it. */
function expectCleanError(body: string, status: number, code?: string): void {
  const b = JSON.parse(body) as Record<string, unknown>;
  expect(Object.keys(b).sort(), `${status} ${body}`).toEqual(['error', 'message']);
  expect(typeof b.error).toBe('string');
  expect(typeof b.message).toBe('string');
  if (code) expect(b.error).toBe(code);
  expect(body).not.toMatch(/\bat \S+ \(|\n\s+at |\.ts:\d+|\.js:\d+|\/work\/|node:internal|node_modules/);
}

/** A route's allowed caller and a request for it: a role from its declaration, the token in a header (API) or the session cookie (pages). */
function callerOf(roles: readonly Role[] | 'public' | null, url: string): Record<string, string> {
  if (roles === 'public' || roles === null || roles.length === 0) return {};
  const role = roles[0]!;
  // A page's POST with the session cookie comes from the site's own page (its Origin), as a browser sends it.
  return url.startsWith('/auditor') ? { cookie: a.session(role), origin: 'http://localhost:80' } : { authorization: `Bearer ${a.tokens[role]}` };
}

const postRoutes = (app: App) => app.routeTable.filter((r) => r.method === 'POST' && !r.url.startsWith('/docs'));
const fill = (url: string) => url.replace(/:id\b/, '1').replace(/:code\b/, SCHOOL);

describe('rate limit per token', () => {
  it('answers the 6th request in a minute with 429 { error, message } when the limit is 5, and another token is not affected', async () => {
    const app = await a.another({ rateLimit: 5 });
    // /v1/status (officer and viewer may): /healthz is not counted (the monitor must not be blinded).
    const ask = (who: Role | 'none') => app.inject({ method: 'GET', url: '/v1/status', headers: a.as(who) });
    for (let i = 0; i < 5; i++) expect((await ask('officer')).statusCode).toBe(200);
    const sixth = await ask('officer');
    expect(sixth.statusCode).toBe(429);
    expectCleanError(sixth.body, 429, 'too_many_requests');
    expect(sixth.json().message).toMatch(/5 requests a minute/);
    expect(Number(sixth.headers['retry-after'])).toBeGreaterThan(0);
    // Per token: the viewer's five are its own, from the same address.
    for (let i = 0; i < 5; i++) expect((await ask('viewer')).statusCode).toBe(200);
    expect((await ask('viewer')).statusCode).toBe(429);
    for (let i = 0; i < 10; i++) expect((await app.inject({ method: 'GET', url: '/healthz', headers: a.as('officer') })).statusCode).toBe(200);
    // A route with roles: the limited officer is refused there too, the school token answered.
    const limited = await app.inject({ method: 'GET', url: '/v1/schools', headers: a.as('officer') });
    expect(limited.statusCode).toBe(429);
    const other = await app.inject({ method: 'GET', url: '/v1/schools', headers: a.as('school') });
    expect(other.statusCode).not.toBe(429);
  });
});

describe('guessing tokens', () => {
  it("answers an address past 30 refused tokens a minute with 429 for its refused tokens; its good tokens and /healthz still pass; another address is not affected", async () => {
    const app = await a.another();
    const guess = (n: number, from: string) =>
      app.inject({ method: 'GET', url: '/v1/status', remoteAddress: from, headers: { authorization: `Bearer kw_${String(n).padStart(43, 'G')}` } });
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) statuses.push((await guess(i, '127.9.9.9')).statusCode);
    expect(statuses.filter((x) => x === 401).length).toBe(30);
    expect(statuses.at(-1)).toBe(429);
    const next = await guess(99, '127.9.9.9');
    expect(next.statusCode).toBe(429);
    expectCleanError(next.body, 429, 'too_many_requests');
    // A good token from the same address (the officer behind the same NAT as the guesser) still passes, and the monitor's /healthz with a stale token too.
    const valid = await app.inject({ method: 'GET', url: '/v1/status', remoteAddress: '127.9.9.9', headers: a.as('viewer') });
    expect(valid.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/healthz', remoteAddress: '127.9.9.9', headers: { authorization: `Bearer kw_${'H'.repeat(51)}` } })).statusCode).toBe(200);
    // The log-in page counts and refuses the same way.
    const login = await app.inject({ method: 'POST', url: '/auditor/login', remoteAddress: '127.9.9.9', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=kw_${'J'.repeat(51)}` });
    expect(login.statusCode).toBe(429);
    expect((await guess(100, '127.9.9.10')).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/status', remoteAddress: '127.9.9.10', headers: a.as('viewer') })).statusCode).toBe(200);
  });
});

describe('body and URL limits', () => {
  it('refuses a POST body over the limit with 413 { error, message } on every POST route, before reading it whole', async () => {
    const app = await a.another({ bodyLimit: 2048 });
    const posts = postRoutes(app);
    expect(posts.map((r) => `${r.method} ${r.url}`)).toEqual(expect.arrayContaining(['POST /v1/maintenance']));
    const wrong: string[] = [];
    for (const r of posts) {
      const page = r.url.startsWith('/auditor');
      // Pages take forms (their own 16 KiB limit); the API takes JSON (the app's limit, here 2 KiB).
      const payload = page ? `reference=${'x'.repeat(40 * 1024)}` : JSON.stringify({ reason: 'x'.repeat(8 * 1024) });
      const res = await app.inject({ method: 'POST', url: fill(r.url), headers: { ...callerOf(r.roles, r.url), 'content-type': page ? 'application/x-www-form-urlencoded' : 'application/json' }, payload });
      if (res.statusCode !== 413) wrong.push(`POST ${r.url} → ${res.statusCode} ${res.body.slice(0, 120)}`);
      else expectCleanError(res.body, 413, 'payload_too_large');
    }
    expect(wrong).toEqual([]);
  });

  it('refuses a chunked body (no Content-Length) over the limit with 413 over real HTTP, and keeps answering', async () => {
    const app = await a.another({ bodyLimit: 2048 });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const u = new URL(base);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: u.hostname, port: u.port, method: 'POST', path: '/v1/maintenance', headers: { ...a.as('officer'), 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (body += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write('{"reason":"');
      for (let i = 0; i < 16; i++) req.write('y'.repeat(1024));
      req.end('"}');
    });
    expect(res.status).toBe(413);
    expectCleanError(res.body, 413, 'payload_too_large');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('refuses malformed JSON, a __proto__ key and a wrong content type with a 4xx { error, message }', async () => {
    const headers = { ...a.as('officer') };
    const cases = [
      { payload: '{"schools": ["' + SCHOOL + '"', type: 'application/json', status: 400 },
      { payload: '{"__proto__": {"admin": true}, "schools": []}', type: 'application/json', status: 400 },
      { payload: 'schools=' + SCHOOL, type: 'text/plain', status: [400, 415] },
      { payload: '<schools>' + SCHOOL + '</schools>', type: 'application/xml', status: 415 },
    ];
    for (const c of cases) {
      const r = await a.app.inject({ method: 'POST', url: '/v1/maintenance', headers: { ...headers, 'content-type': c.type }, payload: c.payload });
      expect([c.status].flat(), `${c.type} ${c.payload} → ${r.statusCode} ${r.body}`).toContain(r.statusCode);
      expectCleanError(r.body, r.statusCode);
    }
  });

  it('refuses a 10 KB query string (414, or 400), a 100 KB request line and an overlong path parameter, and keeps answering', async () => {
    const long = 'q'.repeat(10 * 1024);
    for (const [url, who] of [[`/healthz?x=${long}`, 'none'], [`/v1/status?school=${long}`, 'officer'], [`/v1/devices?school=${SCHOOL}&kind=${long}`, 'officer'], [`/no-such-route?x=${long}`, 'none']] as const) {
      const r = await a.app.inject({ method: 'GET', url, headers: a.as(who) });
      expect([400, 414], `${url.slice(0, 40)}… → ${r.statusCode}`).toContain(r.statusCode);
      expectCleanError(r.body, r.statusCode);
      expect(r.body.length).toBeLessThan(1024); // the answer does not echo the 10 KB back
    }
    // Many parameters inside the URL limit: an answer, not a failure.
    const many = await a.app.inject({ method: 'GET', url: `/v1/incidents?${'limit=1&'.repeat(400)}`, headers: a.as('officer') });
    expect(many.statusCode).toBeLessThan(500);
    // A path parameter longer than the router takes: not found or too long, never a failure.
    // So is a path that is not valid percent-encoding (both are refused by the router, before any route).
    for (const url of [`/v1/schools/${'1'.repeat(300)}`, '/v1/schools/%E0%B8%A', '/v1/devices/%zz/metrics']) {
      const r = await a.app.inject({ method: 'GET', url, headers: a.as('officer') });
      expect([400, 404, 414], `${url} → ${r.statusCode} ${r.body}`).toContain(r.statusCode);
      expectCleanError(r.body, r.statusCode);
      expect(r.body.length).toBeLessThan(600);
    }

    // Over real HTTP: Node's parser refuses a 100 KB request line before the app sees it; the server lives on.
    const app = await a.another();
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const q10 = await fetch(`${base}/v1/status?x=${long}`, { headers: a.as('officer') });
    expect([400, 414]).toContain(q10.status);
    expectCleanError(await q10.text(), q10.status);
    const u = new URL(base);
    const huge = await rawHttp(Number(u.port), `GET /healthz?x=${'z'.repeat(100 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 (414|431|400) /);
    // Refused by Node's parser before Fastify: the same { error, message } shape.
    expectCleanError(huge.slice(huge.indexOf('\r\n\r\n') + 4), Number(/^HTTP\/1\.1 (\d+)/.exec(huge)![1]));
    const bigHeader = await rawHttp(Number(u.port), `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'y'.repeat(20 * 1024)}\r\nConnection: close\r\n\r\n`);
    expect(bigHeader).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(bigHeader.slice(bigHeader.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'headers_too_large', message: expect.any(String) });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe('security headers', () => {
  function expectHeaders(h: Record<string, unknown>, what: string): void {
    const csp = String(h['content-security-policy'] ?? '');
    expect(csp, what).toMatch(/default-src '(self|none)'/);
    expect(csp, what).toContain("frame-ancestors 'none'");
    // No inline or eval script anywhere: either no script at all, or the page's own files only.
    expect(csp, what).not.toMatch(/script-src[^;]*'unsafe-(inline|eval)'/);
    if (/script-src/.test(csp)) expect(csp, what).toMatch(/script-src '(self|none)'(;|$)/);
    if (!/default-src 'none'/.test(csp)) expect(csp, what).toContain("object-src 'none'");
    expect(h['x-content-type-options'], what).toBe('nosniff');
    expect(String(h['x-frame-options'] ?? ''), what).toMatch(/^(DENY|SAMEORIGIN)$/);
    expect(h['referrer-policy'], what).toBeDefined();
    expect(String(h['referrer-policy']), what).toMatch(/no-referrer|same-origin|strict-origin/);
    expect(h['x-powered-by'], what).toBeUndefined();
  }

  it('sends CSP, nosniff, frame and referrer headers on answers, refusals, errors and the docs; no HSTS over plain HTTP', async () => {
    const answers = [
      ['answer', await a.app.inject({ method: 'GET', url: '/healthz' })],
      ['docs', await a.app.inject({ method: 'GET', url: '/docs/' })],
      ['docs json', await a.app.inject({ method: 'GET', url: '/docs/json' })],
      ['401', await a.app.inject({ method: 'GET', url: '/v1/status' })],
      ['403', await a.app.inject({ method: 'GET', url: '/v1/maintenance', headers: a.as('viewer') })],
      ['404', await a.app.inject({ method: 'GET', url: '/nothing', headers: a.as('officer') })],
    ] as const;
    for (const [what, r] of answers) {
      expectHeaders(r.headers, `${what}: ${r.statusCode}`);
      expect(r.headers['strict-transport-security'], what).toBeUndefined();
    }
    expect(answers[3][1].statusCode).toBe(401);
    // Per kind: the JSON API loads nothing, the pages run no script, only the docs page allows swagger-ui's own files.
    expect(String(answers[3][1].headers['content-security-policy'])).toMatch(/^default-src 'none'/);
    expect(String(answers[1][1].headers['content-security-policy'])).toContain("script-src 'self'");
    const login = await a.app.inject({ method: 'GET', url: '/auditor/login' });
    expect(String(login.headers['content-security-policy'])).toContain("script-src 'none'");
    expect(String(login.headers['content-security-policy'])).not.toContain('validator.swagger.io');
    expect(answers[4][1].statusCode).toBe(403);
  });

  it('sends HSTS over TLS', async () => {
    const { cert, key } = await selfSignedCert(a.dir);
    const app = await buildApp(a.ctx, { https: { cert: readFileSync(cert), key: readFileSync(key) } });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      expect(base).toMatch(/^https:/);
      const r = await httpsGet(`${base}/healthz`, readFileSync(cert));
      expect(r.status).toBe(200);
      expect(String(r.headers['strict-transport-security'])).toMatch(/max-age=\d{6,}/);
      expectHeaders(r.headers, 'https /healthz');
    } finally {
      await app.close();
    }
  });
});

describe('errors carry no stack trace', () => {
  it('answers a failing health source with 500 { error: internal, message } and none of the failure\'s text', async () => {
    const app = await a.another({}, async () => {
      throw new Error(`ENOENT: open '/work/secret/state.sqlite'\n    at Object.openSync (node:fs:573:18)\n    at health (${PROJECT}/api/health.ts:12:3)`);
    });
    const r = await app.inject({ method: 'GET', url: '/healthz' });
    expect(r.statusCode).toBe(500);
    expectCleanError(r.body, 500, 'internal');
    expect(r.body).not.toContain('ENOENT');
    expect(r.body).not.toContain('state.sqlite');
  });

  it('answers every route over a state database that cannot be opened (a directory) without a stack trace: 500 internal or 503', async () => {
    const broken = join(a.dir, 'a-directory.sqlite');
    mkdirSync(broken, { recursive: true });
    const app = await buildApp({ ...a.ctx, stateDbFile: broken, stateDb: () => new DatabaseSync(broken) });
    try {
      const seen: string[] = [];
      const wrong: string[] = [];
      for (const r of app.routeTable) {
        if (r.method !== 'GET' || r.url.startsWith('/docs') || r.url.startsWith('/auditor') || r.url.startsWith('/v1/traffic') || r.url === '/healthz') continue;
        const url = fill(r.url).replace(':id', encodeURIComponent(ownDevice)) + (r.url === '/v1/reports' ? `?period=${period}` : '');
        const res = await app.inject({ method: 'GET', url, headers: callerOf(r.roles, r.url) });
        seen.push(`${url} ${res.statusCode}`);
        if (res.statusCode >= 500) {
          try {
            expectCleanError(res.body, res.statusCode, res.statusCode === 500 ? 'internal' : undefined);
          } catch {
            wrong.push(`${url} → ${res.statusCode} ${res.body.slice(0, 300)}`);
          }
        }
      }
      expect(wrong).toEqual([]);
      // The failure happened where the state database is read: /v1/status reads it first of all.
      expect(seen.find((x) => x.startsWith('/v1/status ')), seen.join(', ')).toMatch(/ 50[03]$/);
    } finally {
      await app.close();
    }
  });
});

describe('request logs', () => {
  it('logs each request with pino and never a token: not from the Authorization header, the session cookie or a login form', async () => {
    const lines: string[] = [];
    const log = createLogger('trace', { write: (s: string) => void lines.push(s) });
    const app = await a.another({ logger: log.child({ part: 'api' }) });
    const secrets = Object.values(a.tokens);
    await app.inject({ method: 'GET', url: '/healthz', headers: a.as('officer') });
    await app.inject({ method: 'GET', url: '/v1/status', headers: a.as('viewer') });
    await app.inject({ method: 'GET', url: '/v1/schools', headers: { cookie: `theme=dark; ${a.session('school')}` } });
    await app.inject({ method: 'GET', url: '/auditor/search', headers: { cookie: a.session('auditor') } });
    await app.inject({ method: 'POST', url: '/auditor/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${a.tokens.auditor}` });
    await app.inject({ method: 'GET', url: '/v1/maintenance', headers: a.as('viewer') }); // refused: 403
    // A client that put its token in the URL: refused (no route takes it there), and not logged.
    await app.inject({ method: 'GET', url: `/v1/status?token=${a.tokens.viewer}&x=1` });
    await app.inject({ method: 'GET', url: `/v1/status?user=${a.tokens.school}` });
    await app.inject({ method: 'POST', url: '/v1/maintenance', headers: { ...a.as('officer'), 'content-type': 'application/json' }, payload: `{"broken": "${a.tokens.officer}` });
    // A failing route logs its error: still no token.
    const failing = await a.another({ logger: log.child({ part: 'api' }) }, async () => {
      throw new Error('health failed');
    });
    await failing.inject({ method: 'GET', url: '/healthz', headers: { authorization: `Bearer ${a.tokens.viewer}`, cookie: a.session('auditor') } });
    const text = lines.join('');
    // The capture works: request lines are there, as pino JSON.
    const parsed = lines.map((l) => JSON.parse(l) as { msg?: string; req?: { url?: string }; reqId?: string });
    expect(parsed.some((l) => l.req?.url === '/v1/schools')).toBe(true);
    expect(parsed.some((l) => l.msg === 'request completed')).toBe(true);
    expect(parsed.some((l) => l.msg === 'request failed')).toBe(true);
    for (const t of secrets) {
      expect(text).not.toContain(t);
      expect(text).not.toContain(t.slice(11)); // the secret part after the public id
      expect(text).not.toContain(encodeURIComponent(t));
    }
  });
});

describe('the docs page', () => {
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
  });

  it('loads in headless Chromium under the app\'s CSP with no violation and shows every route of the OpenAPI document', async () => {
    const app = await a.another();
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const doc = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const docPaths = Object.keys(doc.paths);
    // The document holds the API's routes (the docs' own and the pages aside).
    const apiRoutes = app.routeTable.filter((r) => r.url.startsWith('/v1') || r.url === '/healthz').map((r) => r.url.replace(/:([A-Za-z_]+)/g, '{$1}'));
    expect(apiRoutes.length).toBeGreaterThan(10);
    expect(docPaths).toEqual(expect.arrayContaining([...new Set(apiRoutes)]));

    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    // Violations are also caught as events (an init script runs outside the page's CSP).
    await page.addInitScript(() => {
      const w = window as unknown as { __csp: string[] };
      w.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const res = await page.goto(`${base}/docs/`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'self'");
    await page.waitForSelector('.opblock-summary-path', { timeout: 30_000 });
    const shown = await page.$$eval('.opblock-summary-path', (els) => els.map((e) => e.getAttribute('data-path') ?? e.textContent ?? ''));
    expect(shown.map((x) => x.replace(/\u200b/g, ''))).toEqual(expect.arrayContaining(docPaths));
    const csp = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
    expect(csp).toEqual([]);
    expect(problems).toEqual([]);
  }, 90_000);
});

describe('klaiwatch api as a process: TLS and a graceful stop', () => {
  let child: ChildProcess | undefined;
  let stderr = '';
  let base = '';
  let ca: Buffer;
  let port = 0;

  beforeAll(async () => {
    const { cert, key } = await selfSignedCert(join(a.dir));
    ca = readFileSync(cert);
    port = await freePort();
    // The area's settings with the API on TLS; beside them, so the inventory and the tokens database are the same.
    const settings = parse(readFileSync(a.area.settingsPath, 'utf8')) as Record<string, unknown>;
    settings.api = { ...((settings.api as object) ?? {}), listen: `127.0.0.1:${port}`, tls: { cert, key } };
    const file = join(a.dir, 'api-tls.yaml');
    writeFileSync(file, stringify(settings));
    child = spawn(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'api', '--config', file], { cwd: PROJECT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (stderr += d));
    child.stderr!.on('data', (d) => (stderr += d));
    base = `https://127.0.0.1:${port}`;
    const end = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`klaiwatch api ended (${child.exitCode}): ${stderr.slice(-2000)}`);
      try {
        await httpsGet(`${base}/docs/json`, ca);
        break;
      } catch (err) {
        if (Date.now() > end) throw new Error(`klaiwatch api did not answer HTTPS within 60 s: ${(err as Error).message}\n${stderr.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }, 90_000);

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('answers HTTPS with the certificate of api.tls (HSTS on), refuses plain HTTP on that port, and logs no token', async () => {
    const h = await httpsGet(`${base}/healthz`, ca);
    expect([200, 503]).toContain(h.status);
    expect(JSON.parse(h.body).status).toBeTypeOf('string');
    expect(String(h.headers['strict-transport-security'])).toMatch(/max-age=\d+/);
    const schools = await httpsGet(`${base}/v1/schools`, ca, a.as('officer'));
    expect(schools.status).toBe(200);
    expect(schools.body).toContain(SCHOOL);
    expect((await httpsGet(`${base}/v1/schools`, ca)).status).toBe(401);
    // Plain HTTP to the TLS port gets no HTTP answer.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
    for (const t of Object.values(a.tokens)) expect(stderr).not.toContain(t);
  });

  it('on SIGTERM finishes the request in flight, refuses new connections and ends within 10 s, even with a client that never finishes', async () => {
    const proc = child!;
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => proc.once('exit', (code) => resolve({ code, at: Date.now() })));
    const post = postRoutesOf();
    // Two requests in flight: one whose body arrives after the signal (it must be answered), one whose body never ends.
    const finishing = slowPost(base, post, ca);
    const stuck = slowPost(base, post, ca);
    const stuckEnd = stuck.answer.then((r) => `answered ${r.status}`, (err: Error) => `cut: ${err.message}`);
    await Promise.all([finishing.started, stuck.started]);
    const signalled = Date.now();
    proc.kill('SIGTERM');
    // New connections: refused (the listening socket is closed) or, while closing, answered 503.
    let refused = false;
    const end = Date.now() + 5_000;
    while (!refused && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      try {
        const r = await httpsGet(`${base}/healthz`, ca);
        if (r.status === 503) refused = true;
      } catch (err) {
        refused = /ECONNREFUSED|ECONNRESET|socket hang up/.test(String((err as Error).message) + String((err as NodeJS.ErrnoException).code));
      }
    }
    expect(refused, 'a new connection after SIGTERM was still served').toBe(true);
    // The one in flight gets its answer from the route (not a reset, not the closing 503).
    finishing.finish();
    const answer = await finishing.answer;
    expect(answer.status, answer.body).toBeGreaterThanOrEqual(200);
    expect([201, 400, 409]).toContain(answer.status);
    const { code, at } = await exited;
    expect(at - signalled, stderr.slice(-1500)).toBeLessThan(10_000);
    expect(code).toBe(0);
    // The client that never finished its body was cut at the deadline.
    expect(await stuckEnd).toMatch(/^cut: /);
    for (const t of Object.values(a.tokens)) expect(stderr).not.toContain(t);
  }, 30_000);

  function postRoutesOf(): { path: string; headers: Record<string, string>; body: string } {
    const now = a.ctx.now();
    const body = JSON.stringify({ schools: [SCHOOL], start: new Date(now + 40 * 86_400_000).toISOString(), end: new Date(now + 40 * 86_400_000 + 3_600_000).toISOString(), reason: 'graceful stop test: a request in flight' });
    return { path: '/v1/maintenance', headers: { ...a.as('officer'), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, body };
  }
});

// ---------------------------------------------------------------- helpers

function httpsGet(url: string, ca: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers, timeout: 10_000 }, (r: IncomingMessage) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d: string) => (body += d));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body }));
      r.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** A POST over HTTPS whose body is sent in two parts: the first at once (the server has the request in flight), the rest on finish(). */
function slowPost(base: string, p: { path: string; headers: Record<string, string>; body: string }, ca: Buffer) {
  let req!: ClientRequest;
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req = httpsRequest(`${base}${p.path}`, { method: 'POST', ca, headers: p.headers }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d: string) => (body += d));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      r.on('error', reject);
    });
    req.on('error', reject);
    // Flushed, then a moment for the server to read the headers.
    req.write(p.body.slice(0, 20), () => setTimeout(started, 500));
  });
  return { started: startedP, answer, finish: () => req.end(p.body.slice(20)) };
}

/** Sends raw bytes to 127.0.0.1:port and returns what comes back until the server closes (or 5 s). */
function rawHttp(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('error', () => resolve(got));
    s.on('close', () => resolve(got));
    s.setTimeout(5_000, () => s.destroy());
    s.write(text);
  });
}
