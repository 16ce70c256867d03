// The auditor pages' sessions (api/sessions.ts): the cookie holds a session id, never the token; log-out and a
// revoked token end the session on the server; a cookie's POST must come from the site's own page (CSRF).
// Also: token ids drawn apart from their secret, refusals in the OpenAPI document, Retry-After on refused tokens.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startApiArea, type ApiArea } from './area.ts';

let a: ApiArea;
beforeAll(async () => {
  a = await startApiArea({ octet: 180, rounds: 1 });
}, 180_000);
afterAll(async () => {
  await a?.close();
});

const form = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:80', accept: 'text/html' };

async function login(token: string): Promise<string> {
  const r = await a.app.inject({ method: 'POST', url: '/auditor/login', headers: form, payload: `token=${encodeURIComponent(token)}` });
  expect(r.statusCode).toBe(303);
  const m = /^kw_session=([^;]+);/.exec(String(r.headers['set-cookie']));
  expect(m).not.toBeNull();
  return m![1]!;
}

describe('the pages session', () => {
  it('the cookie holds a session id, not the token; the token itself as a cookie is no session', async () => {
    const sid = await login(a.tokens.auditor);
    expect(sid).not.toContain(a.tokens.auditor.slice(3));
    expect(sid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const page = await a.app.inject({ method: 'GET', url: '/auditor/search', headers: { cookie: `kw_session=${sid}`, accept: 'text/html' } });
    expect(page.statusCode).toBe(200);
    const forged = await a.app.inject({ method: 'GET', url: '/auditor/search', headers: { cookie: `kw_session=${a.tokens.auditor}`, accept: 'text/html' } });
    expect(forged.statusCode).toBe(303);
    expect(forged.headers.location).toBe('/auditor/login');
    const api = await a.app.inject({ method: 'GET', url: '/v1/traffic/journal', headers: { cookie: `kw_session=${a.tokens.auditor}` } });
    expect(api.statusCode).toBe(401);
  });

  it('log-out ends the session on the server: the same cookie, kept, no longer works', async () => {
    const sid = await login(a.tokens.auditor);
    const out = await a.app.inject({ method: 'POST', url: '/auditor/logout', headers: { ...form, cookie: `kw_session=${sid}` } });
    expect(out.statusCode).toBe(303);
    const again = await a.app.inject({ method: 'GET', url: '/auditor/search', headers: { cookie: `kw_session=${sid}`, accept: 'text/html' } });
    expect(again.statusCode).toBe(303);
  });

  it('a session ends with its token (revoked)', async () => {
    const t = a.ctx.tokens.create({ role: 'auditor', name: 'ผู้ตรวจสอบชั่วคราว' });
    const sid = await login(t.token);
    expect((await a.app.inject({ method: 'GET', url: '/auditor/search', headers: { cookie: `kw_session=${sid}`, accept: 'text/html' } })).statusCode).toBe(200);
    a.ctx.tokens.revoke(t.row.id);
    expect((await a.app.inject({ method: 'GET', url: '/auditor/search', headers: { cookie: `kw_session=${sid}`, accept: 'text/html' } })).statusCode).toBe(303);
  });

  it("a cookie's POST from another site's page, or with neither Origin nor Referer, is refused (403) and does nothing", async () => {
    const sid = await login(a.tokens.auditor);
    const body = 'ip=10.23.4.5&reference=order 12/2569';
    for (const headers of [{ origin: 'http://evil.example' }, { referer: 'http://evil.example/x' }, {}]) {
      const r = await a.app.inject({ method: 'POST', url: '/auditor/evidence', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `kw_session=${sid}`, ...headers }, payload: body });
      expect(r.statusCode, JSON.stringify(headers)).toBe(403);
      expect(r.body).toMatch(/must come from this site's own page/);
    }
    const api = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: { 'content-type': 'application/json', cookie: `kw_session=${sid}`, origin: 'http://evil.example' }, payload: JSON.stringify({ ip: '10.23.4.5', reference: 'order 12/2569' }) });
    expect(api.statusCode).toBe(403);
  });
});

describe('log-in CSRF', () => {
  it("refuses the log-in form posted from another site's page (or another scheme); the site's own is taken", async () => {
    for (const origin of ['http://evil.example', 'https://localhost:80']) {
      const r = await a.app.inject({ method: 'POST', url: '/auditor/login', headers: { ...form, origin }, payload: `token=${a.tokens.auditor}` });
      expect(r.statusCode, origin).toBe(403);
      expect(r.headers['set-cookie'], origin).toBeUndefined();
    }
    expect((await a.app.inject({ method: 'POST', url: '/auditor/login', headers: form, payload: `token=${a.tokens.auditor}` })).statusCode).toBe(303);
  });
});

describe('tokens', () => {
  it('a token name is one line: a newline or another control character is refused', () => {
    expect(() => a.ctx.tokens.create({ role: 'viewer', name: 'two\nlines' })).toThrow(/one line without control characters/);
  });

  it('the public id is drawn apart from the secret: two tokens never share their secret part with their id', () => {
    for (let i = 0; i < 20; i++) {
      const { token, row } = a.ctx.tokens.create({ role: 'viewer', name: `id test ${i}` });
      expect(token).toMatch(/^kw_[A-Za-z0-9_-]{51}$/);
      expect(token.slice(3, 11)).toBe(row.id);
      expect(token.slice(11)).not.toContain(row.id);
    }
  });

  it('refused tokens past the limit: 429 with Retry-After', async () => {
    const app = await a.another();
    let last;
    for (let i = 0; i < 31; i++) last = await app.inject({ method: 'GET', url: '/v1/status', remoteAddress: '127.0.0.77', headers: { authorization: `Bearer kw_${'Z'.repeat(51)}` } });
    expect(last!.statusCode).toBe(429);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    expect(last!.json()).toMatchObject({ error: 'too_many_requests' });
  });
});

describe('the OpenAPI document', () => {
  it('lists the refusals (400, 401, 403, 429 as { error, message }) of every route that needs a token', async () => {
    const doc = (await a.app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> };
    const missing: string[] = [];
    let seen = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (path === '/healthz') continue;
      for (const [method, op] of Object.entries(ops)) {
        seen++;
        for (const code of ['400', '401', '403', '429']) if (!op.responses?.[code]) missing.push(`${method.toUpperCase()} ${path} ${code}`);
      }
    }
    expect(seen).toBeGreaterThan(15);
    expect(missing).toEqual([]);
  });
});
