// The app's frame: default deny, tokens, errors as { error, message }, /healthz, /docs.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startApiArea, type ApiArea } from './area.ts';

let a: ApiArea;
beforeAll(async () => {
  a = await startApiArea({ octet: 171, rounds: 2 });
}, 180_000);
afterAll(async () => {
  await a?.close();
});

describe('the API frame', () => {
  it('serves /healthz without a token', async () => {
    const r = await a.app.inject({ method: 'GET', url: '/healthz' });
    expect(r.statusCode).toBe(200);
    expect(r.json().status).toBe('ok');
  });

  it('refuses an unknown, malformed or revoked token with 401 and { error, message }', async () => {
    const bad = await a.app.inject({ method: 'GET', url: '/healthz', headers: { authorization: 'Bearer kw_' + 'A'.repeat(51) } });
    expect(bad.statusCode).toBe(200); // public routes ignore a bad token
    const t = a.ctx.tokens.create({ role: 'viewer', name: 'revoked one' });
    expect(a.ctx.tokens.revoke(t.row.id)).toBe(true);
    expect(a.ctx.tokens.check(t.token)).toEqual({ refused: 'revoked' });
    expect(a.ctx.tokens.check('kw_nope')).toEqual({ refused: 'malformed' });
  });

  it('guessing tokens is cut short: past 30 refused tokens a minute from one address, 429 for its refused tokens; a good token still passes', async () => {
    const app = await a.another();
    const guess = () => 'kw_' + Buffer.from(Array.from({ length: 32 }, () => Math.floor(Math.random() * 256))).toString('base64url');
    const codes: number[] = [];
    for (let i = 0; i < 31; i++) codes.push((await app.inject({ method: 'GET', url: '/v1/status', headers: { authorization: `Bearer ${guess()}` } })).statusCode);
    expect(codes.slice(0, 30).every((c) => c === 401)).toBe(true);
    expect(codes[30]).toBe(429);
    const bad = await app.inject({ method: 'GET', url: '/v1/status', headers: { authorization: `Bearer ${guess()}` } });
    expect(bad.statusCode).toBe(429);
    expect(bad.json()).toMatchObject({ error: 'too_many_requests', message: expect.stringContaining('refused tokens') });
    const good = await app.inject({ method: 'GET', url: '/v1/status', headers: a.as('officer') });
    expect(good.statusCode).toBe(200);
    // Another address is not affected.
    const other = await app.inject({ method: 'GET', url: '/healthz', remoteAddress: '127.0.0.9', headers: a.as('officer') });
    expect(other.statusCode).toBe(200);
  });

  it('a token revoked from another process (the CLI) is refused within 2 s; at once when revoked by this one', async () => {
    const { TokenStore, CHECK_CACHE_MS } = await import('../../api/tokens.ts');
    const cli = new TokenStore(a.ctx.tokens.file);
    try {
      const t0 = Date.now();
      const made = cli.create({ role: 'viewer', name: 'revoked elsewhere' });
      expect('principal' in a.ctx.tokens.check(made.token, t0)).toBe(true);
      expect(cli.revoke(made.row.id, t0 + 1)).toBe(true);
      // Within the cache's time the API process may still take it; past it, never.
      expect(a.ctx.tokens.check(made.token, t0 + CHECK_CACHE_MS + 1)).toEqual({ refused: 'revoked' });
      const own = a.ctx.tokens.create({ role: 'viewer', name: 'revoked here' });
      expect('principal' in a.ctx.tokens.check(own.token, t0)).toBe(true);
      a.ctx.tokens.revoke(own.row.id, t0 + 1);
      expect(a.ctx.tokens.check(own.token, t0 + 2)).toEqual({ refused: 'revoked' });
    } finally {
      cli.close();
    }
  });

  it('answers an unknown route with 404 as { error, message }', async () => {
    const r = await a.app.inject({ method: 'GET', url: '/v1/nothing-here', headers: a.as('officer') });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toEqual({ error: 'not_found', message: expect.stringContaining('/v1/nothing-here') });
  });

  it('serves the OpenAPI 3.1 document and the docs page', async () => {
    const doc = await a.app.inject({ method: 'GET', url: '/docs/json' });
    expect(doc.statusCode).toBe(200);
    expect(doc.json().openapi).toBe('3.1.0');
    const page = await a.app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(doc.headers['content-security-policy']).toContain("default-src 'self'");
  });
});
