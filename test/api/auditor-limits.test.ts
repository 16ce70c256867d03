// The review's last auditor-side findings: an evidence package over the API is bounded by api.max_rows
// (counted first; refused, journalled, nothing made); ports are digits (not "0x1bb", "1e3"); a body that
// is not an object is journalled as itself, not one key per character.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { readdirSync, existsSync } from 'node:fs';
import { startApiArea, type ApiArea } from './area.ts';
import { fillArchive, type TestArchive } from './auditor-archive.ts';
import { tempDir } from '../helpers/peers.ts';

let a: ApiArea;
let arc: TestArchive;
const store = tempDir('auditor-limits');

beforeAll(async () => {
  arc = await fillArchive(store.path);
  a = await startApiArea({ octet: 183, rounds: 1, extraSettings: { traffic: arc.settings, api: { max_rows: 3 } } });
}, 180_000);
afterAll(async () => {
  await a?.close();
  store.remove();
});

const lastRows = (n: number) => {
  const db = new DatabaseSync(join(arc.dir, 'journal.sqlite'), { readOnly: true });
  try {
    return (db.prepare('SELECT action, params, outcome FROM access ORDER BY id DESC LIMIT ?').all(n) as { action: string; params: string; outcome: string }[]).reverse();
  } finally {
    db.close();
  }
};

describe('auditor limits', () => {
  it('refuses an evidence package larger than api.max_rows (400 naming the count), journals the refusal, makes nothing', async () => {
    const r = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: { ...a.as('auditor'), 'content-type': 'application/json' }, payload: JSON.stringify({ ip: '10.23.4.5', from: '2026-06-03', to: '2026-06-04', reference: 'หนังสือ ที่ 1/2569' }) });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ error: 'bad_request', message: expect.stringMatching(/^body: the query matches \d+ rows; an evidence package made over the API holds at most 3 \(api\.max_rows\)/) });
    const rows = lastRows(2);
    expect(rows[0]!.outcome).toBe('requested');
    expect(rows[1]!.outcome).toMatch(/^refused: body: the query matches/);
    const tmp = join(arc.dir, 'tmp');
    expect(existsSync(tmp) ? readdirSync(tmp).filter((f) => f.startsWith('evidence-')) : []).toEqual([]);
    // Within the limit it is made.
    const ok = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: { ...a.as('auditor'), 'content-type': 'application/json' }, payload: JSON.stringify({ ip: '10.23.4.5', from: '2026-06-03T09:41', to: '2026-06-03T09:42', reference: 'หนังสือ ที่ 1/2569' }) });
    expect(ok.statusCode).toBe(200);
    expect(Number(ok.headers['x-klaiwatch-rows'])).toBeLessThanOrEqual(3);
  });

  it('takes a port as digits only', async () => {
    for (const port of ['0x1bb', '1e3', '443.0', '-1', '65536']) {
      const r = await a.app.inject({ method: 'GET', url: `/v1/traffic/search?ip=125.25.69.110&port=${encodeURIComponent(port)}`, headers: a.as('auditor') });
      expect(r.statusCode, port).toBe(400);
      expect(r.json().message, port).toMatch(/port/);
    }
    expect((await a.app.inject({ method: 'GET', url: '/v1/traffic/search?ip=125.25.69.110&port=443', headers: a.as('auditor') })).statusCode).toBe(200);
  });

  it('reads an IPv4-mapped IPv6 address as its IPv4 address, and refuses a zone index', async () => {
    const v4 = await a.app.inject({ method: 'GET', url: '/v1/traffic/search?ip=10.23.4.5&from=2026-06-03&to=2026-06-04&limit=3', headers: a.as('auditor') });
    const mapped = await a.app.inject({ method: 'GET', url: '/v1/traffic/search?ip=%3A%3Affff%3A10.23.4.5&from=2026-06-03&to=2026-06-04&limit=3', headers: a.as('auditor') });
    expect(mapped.statusCode).toBe(200);
    expect(mapped.json().rows.length).toBeGreaterThan(0);
    expect(mapped.json().rows).toEqual(v4.json().rows);
    const zone = await a.app.inject({ method: 'GET', url: '/v1/traffic/search?ip=fe80%3A%3A1%25eth0', headers: a.as('auditor') });
    expect(zone.statusCode).toBe(400);
    expect(zone.json().message).toMatch(/^querystring\.ip: .*zone index/);
  });

  it('refuses days and hours that do not exist instead of answering for another day; takes Unix milliseconds like the views', async () => {
    for (const at of ['2026-02-30T10:00', '2026-11-31T10:00', '2026-11-29T24:00:00', '2026-13-01']) {
      const r = await a.app.inject({ method: 'GET', url: `/v1/traffic/who?ip=10.23.4.5&at=${encodeURIComponent(at)}`, headers: a.as('auditor') });
      expect(r.statusCode, at).toBe(400);
      expect(r.json().message, at).toMatch(/^querystring\.at: /);
      const q = await a.app.inject({ method: 'GET', url: `/v1/traffic/search?ip=10.23.4.5&from=${encodeURIComponent(at)}`, headers: a.as('auditor') });
      expect(q.statusCode, at).toBe(400);
    }
    const ms = Date.parse('2026-06-03T09:41:00+07:00');
    const byMs = await a.app.inject({ method: 'GET', url: `/v1/traffic/who?ip=10.23.4.5&at=${ms}`, headers: a.as('auditor') });
    const byText = await a.app.inject({ method: 'GET', url: '/v1/traffic/who?ip=10.23.4.5&at=2026-06-03T09:41', headers: a.as('auditor') });
    expect(byMs.statusCode).toBe(200);
    expect(byMs.json().at_ms).toBe(ms);
    expect(byMs.json().leases).toEqual(byText.json().leases);
  });

  it('journals a text/plain body as itself, not one key per character', async () => {
    const r = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: { ...a.as('auditor'), 'content-type': 'text/plain' }, payload: '{"ip":"10.23.4.5","reference":"x y z"}' });
    expect(r.statusCode).toBe(400);
    const params = lastRows(2).map((x) => x.params).join('\n');
    expect(params).not.toMatch(/"0":"\{"/);
    expect(params).toContain('"body":"{\\"ip\\"');
  });
});
