// Maintenance windows over the API (officer only): create, list, end, on the
// real state database a real collector filled (simulated area on
// 127.174.0.0/16). Bad input is refused naming the field; a window that is
// over still shows for its period and the report counts its time as
// maintenance.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startApiArea, stateDbOf, SCHOOL, OTHER_SCHOOL, type ApiArea } from './area.ts';
import { buildApp, type App } from '../../api/app.ts';
import { makeReport } from '../../report/report.ts';
import type { Role } from '../../api/tokens.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

let a: ApiArea;
beforeAll(async () => {
  a = await startApiArea({ octet: 174, rounds: 2 });
}, 180_000);
afterAll(async () => {
  await a?.close();
});

/** An instant as the API takes it: ISO 8601 with Bangkok's offset. */
const bkk = (t: number) => new Date(t + 7 * HOUR).toISOString().replace('Z', '+07:00');
/** The Bangkok date (YYYY-MM-DD) of an instant. */
const bkkDate = (t: number) => new Date(t + 7 * HOUR).toISOString().slice(0, 10);

const post = (app: App, url: string, role: Role | 'none', payload?: unknown) =>
  app.inject({ method: 'POST', url, headers: a.as(role), ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

describe('maintenance windows over the API', () => {
  it('creates a window (201, the creator from the token), lists it and ends it', async () => {
    const now = Date.now();
    const r = await post(a.app, '/v1/maintenance', 'officer', { schools: [OTHER_SCHOOL], devices: [`${SCHOOL}-router`], start: bkk(now + HOUR), end: bkk(now + 3 * HOUR), reason: 'เปลี่ยนสายไฟเบอร์' });
    expect(r.statusCode, r.body).toBe(201);
    const w = r.json();
    expect(w).toMatchObject({ schools: [OTHER_SCHOOL], devices: [`${SCHOOL}-router`], reason: 'เปลี่ยนสายไฟเบอร์', status: 'planned', ended_at: null, ended_by: null });
    expect(w.created_by).toEqual({ id: expect.any(String), name: 'เจ้าหน้าที่ไอที (test)' });
    expect(Date.parse(w.start)).toBe(Date.parse(bkk(now + HOUR)));
    expect(w.start).toMatch(/\+07:00$/);
    expect(r.headers.location).toBe(`/v1/maintenance/${w.id}`);

    const list = await a.app.inject({ method: 'GET', url: '/v1/maintenance', headers: a.as('officer') });
    expect(list.statusCode).toBe(200);
    expect(list.json().windows.map((x: { id: number }) => x.id)).toContain(w.id);
    // Not in force yet.
    const active = await a.app.inject({ method: 'GET', url: '/v1/maintenance?active=true', headers: a.as('officer') });
    expect(active.json().windows.map((x: { id: number }) => x.id)).not.toContain(w.id);

    // Ended before it began: cancelled, and who ended it is kept.
    const e = await post(a.app, `/v1/maintenance/${w.id}/end`, 'officer');
    expect(e.statusCode, e.body).toBe(200);
    expect(e.json()).toMatchObject({ id: w.id, status: 'cancelled', ended_by: { name: 'เจ้าหน้าที่ไอที (test)' } });
    const again = await post(a.app, `/v1/maintenance/${w.id}/end`, 'officer');
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({ error: 'conflict', message: expect.stringMatching(new RegExp(`window ${w.id} was already ended at .* by เจ้าหน้าที่ไอที`)) });
  });

  it('lists with from/to given as the views take them: a date or a date-time without offset in Thai time, an offset, Unix ms; creating still wants the offset', async () => {
    // Whole seconds: a date-time typed without milliseconds names them exactly.
    const now = Math.floor(Date.now() / 1000) * 1000;
    const start = now + HOUR;
    const end = now + 2 * HOUR;
    const r = await post(a.app, '/v1/maintenance', 'officer', { schools: [OTHER_SCHOOL], start: bkk(start), end: bkk(end), reason: 'ตรวจตู้สื่อสาร' });
    expect(r.statusCode, r.body).toBe(201);
    const id = r.json().id as number;
    /** A date and time as typed in Thailand, without an offset. */
    const local = (t: number) => new Date(t + 7 * HOUR).toISOString().slice(0, 19);
    const listed = async (q: string) => {
      const res = await a.app.inject({ method: 'GET', url: `/v1/maintenance?${q}`, headers: a.as('officer') });
      expect(res.statusCode, `${q}: ${res.body}`).toBe(200);
      return res.json().windows.some((x: { id: number }) => x.id === id);
    };
    // The reviewer's request: a bare date (midnight in Bangkok).
    expect(await listed(`from=${bkkDate(now)}`)).toBe(true);
    expect(await listed(`from=${bkkDate(now)}&to=${bkkDate(start + DAY)}`)).toBe(true);
    // A date-time without an offset is Thai time, to the second: [from, to) against [start, end).
    expect(await listed(`to=${local(start)}`)).toBe(false);
    expect(await listed(`to=${local(start + 1000)}`)).toBe(true);
    expect(await listed(`from=${local(end)}`)).toBe(false);
    expect(await listed(`from=${encodeURIComponent(local(end - 1000).replace('T', ' '))}`)).toBe(true);
    expect(await listed(`from=${now}&to=${encodeURIComponent(bkk(end))}`)).toBe(true);
    for (const q of ['from=2026-02-30', 'to=2026-11-29T25:00', 'from=soon']) {
      const res = await a.app.inject({ method: 'GET', url: `/v1/maintenance?${q}`, headers: a.as('officer') });
      expect(res.statusCode, q).toBe(400);
      expect(res.json().message, q).toMatch(/^querystring\.(from|to): .* is not a time: give a date/);
    }
    // Creating a window keeps wanting an explicit offset (README).
    const bare = await post(a.app, '/v1/maintenance', 'officer', { schools: [OTHER_SCHOOL], start: local(start), end: bkk(end), reason: 'x' });
    expect(bare.statusCode).toBe(400);
    expect(bare.json().message).toMatch(/^body\.start: must be a date and time with its offset/);
    expect((await post(a.app, `/v1/maintenance/${id}/end`, 'officer')).statusCode).toBe(200);
  });

  it('is described in the OpenAPI document', async () => {
    const doc = await a.app.inject({ method: 'GET', url: '/docs/json' });
    expect(doc.statusCode).toBe(200);
    const paths = doc.json().paths;
    expect(paths['/v1/maintenance'].post.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['start', 'end', 'reason']));
    expect(paths['/v1/maintenance'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['active', 'from', 'to', 'limit']));
    expect(paths['/v1/maintenance/{id}/end'].post.responses).toHaveProperty('409');
  });

  it('lets only an officer create, list or end (401 without a token, 403 for the other roles)', async () => {
    const now = Date.now();
    const body = { schools: [SCHOOL], start: bkk(now + HOUR), end: bkk(now + 2 * HOUR), reason: 'x' };
    const routes: [string, string, unknown][] = [
      ['GET', '/v1/maintenance', undefined],
      ['POST', '/v1/maintenance', body],
      ['POST', '/v1/maintenance/1/end', undefined],
    ];
    const before = (await a.app.inject({ method: 'GET', url: '/v1/maintenance?limit=1000', headers: a.as('officer') })).json().windows.length;
    for (const [method, url, payload] of routes) {
      for (const role of ['none', 'school', 'viewer', 'auditor'] as const) {
        const r = await a.app.inject({ method: method as 'GET' | 'POST', url, headers: a.as(role), ...(payload ? { payload: payload as Record<string, unknown> } : {}) });
        expect(r.statusCode, `${role} ${method} ${url}`).toBe(role === 'none' ? 401 : 403);
        expect(r.json().error).toBe(role === 'none' ? 'unauthorized' : 'forbidden');
      }
    }
    const after = (await a.app.inject({ method: 'GET', url: '/v1/maintenance?limit=1000', headers: a.as('officer') })).json().windows.length;
    expect(after).toBe(before);
  });

  it('refuses bad input with 400 naming the field, and stores nothing', async () => {
    const now = Date.now();
    const good = { schools: [SCHOOL], start: bkk(now + HOUR), end: bkk(now + 2 * HOUR), reason: 'ตรวจตู้' };
    const before = (await a.app.inject({ method: 'GET', url: '/v1/maintenance?limit=1000', headers: a.as('officer') })).json().windows.length;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, reason: undefined }, /^body\.reason: /],
      [{ ...good, reason: '' }, /^body\.reason: /],
      [{ ...good, start: '2026-12-01 18:00' }, /^body\.start: must be a date and time with its offset/],
      [{ ...good, end: 'tomorrow' }, /^body\.end: must be a date and time with its offset/],
      [{ ...good, end: good.start }, /^body\.end: \S+\+07:00 is not after start \S+\+07:00$/],
      [{ ...good, end: bkk(now + 40 * DAY) }, /^body\.end: the window would last .* days; at most 31/],
      [{ ...good, start: bkk(now - 2 * DAY) }, /^body\.start: .* more than 24 hours ago/],
      [{ ...good, schools: ['9999999999'] }, /^body\.schools\[0\]: no school "9999999999" in the inventory/],
      [{ ...good, devices: [`${SCHOOL}-router`, 'no-such-device'] }, /^body\.devices\[1\]: no device "no-such-device" in the inventory/],
      [{ ...good, schools: [] }, /^body\.schools: a maintenance window needs at least one school or device/],
      [{ ...good, schools: [''] }, /^body\.schools\.0: /],
      [{ ...good, schools: 'x' }, /^body\.schools: /],
      [{ ...good, extra: 1 }, /^body: .*extra/],
      [{ ...good, reason: 'two\nlines' }, /^body\.reason: must be one line/],
      [{ ...good, reason: 'ก'.repeat(501) }, /^body\.reason: /],
    ];
    for (const [payload, message] of cases) {
      const r = await post(a.app, '/v1/maintenance', 'officer', payload);
      expect(r.statusCode, JSON.stringify(payload).slice(0, 100)).toBe(400);
      const b = r.json();
      expect(b.error).toBe('bad_request');
      expect(b.message).toMatch(message);
      expect(r.body).not.toMatch(/\n\s+at |node:internal|\.ts:\d+:\d+/); // no stack trace
    }
    const notJson = await a.app.inject({ method: 'POST', url: '/v1/maintenance', headers: { ...a.as('officer'), 'content-type': 'application/json' }, payload: '{"schools": [' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error).toBe('bad_request');
    const queries: [string, RegExp][] = [
      ['?from=yesterday', /^querystring\.from: /],
      ['?active=maybe', /^querystring\.active: /],
      ['?limit=0', /^querystring\.limit: /],
      ['?limit=100000', /^querystring\.limit: /],
      [`?from=${encodeURIComponent(bkk(now))}&to=${encodeURIComponent(bkk(now - HOUR))}`, /^querystring\.to: .* is not after from/],
      ['?school=1', /^querystring: .*school/],
    ];
    for (const [q, message] of queries) {
      const r = await a.app.inject({ method: 'GET', url: `/v1/maintenance${q}`, headers: a.as('officer') });
      expect(r.statusCode, q).toBe(400);
      expect(r.json().message, q).toMatch(message);
    }
    for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999']) {
      const r = await post(a.app, `/v1/maintenance/${id}/end`, 'officer');
      expect(r.statusCode, id).toBe(400);
      expect(r.json().message, id).toMatch(/^params\.id: /);
    }
    const unknown = await post(a.app, '/v1/maintenance/987654/end', 'officer');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ error: 'not_found', message: 'no maintenance window 987654' });
    const after = (await a.app.inject({ method: 'GET', url: '/v1/maintenance?limit=1000', headers: a.as('officer') })).json().windows.length;
    expect(after).toBe(before);
  });

  it('over real HTTP: a window in force now, ended early; ending it again after it is over is 409', async () => {
    const app = await a.another();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const base = `http://127.0.0.1:${port}`;
    const headers = { ...a.as('officer'), 'content-type': 'application/json' };
    const now = Date.now();
    const c = await fetch(`${base}/v1/maintenance`, { method: 'POST', headers, body: JSON.stringify({ devices: ['1036090104-router'], start: bkk(now - 5 * MIN), end: bkk(now + HOUR), reason: 'อัปเดตเฟิร์มแวร์' }) });
    expect(c.status).toBe(201);
    const w = (await c.json()) as { id: number; status: string };
    expect(w.status).toBe('in_force');
    const active = (await (await fetch(`${base}/v1/maintenance?active=true`, { headers })).json()) as { windows: { id: number }[] };
    expect(active.windows.map((x) => x.id)).toContain(w.id);
    const e = await fetch(`${base}/v1/maintenance/${w.id}/end`, { method: 'POST', headers: a.as('officer') });
    expect(e.status).toBe(200);
    const ended = (await e.json()) as { status: string; until: string; end: string };
    expect(ended.status).toBe('over');
    expect(Date.parse(ended.until)).toBeLessThan(Date.parse(ended.end));
    const inactive = (await (await fetch(`${base}/v1/maintenance?active=false`, { headers })).json()) as { windows: { id: number }[] };
    expect(inactive.windows.map((x) => x.id)).toContain(w.id);
    const again = await fetch(`${base}/v1/maintenance/${w.id}/end`, { method: 'POST', headers: a.as('officer') });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: string }).error).toBe('conflict');
  });

  it('a past window still shows for its period, and the report of that period counts its time as maintenance', async () => {
    const now = Date.now();
    // Over the time the area's collector ran its rounds (just before the app was built), for one school.
    const r = await post(a.app, '/v1/maintenance', 'officer', { schools: [SCHOOL], start: bkk(now - 2 * HOUR), end: bkk(now + 5 * MIN), reason: 'ปรับปรุงระบบไฟฟ้า' });
    expect(r.statusCode, r.body).toBe(201);
    const id = r.json().id as number;
    // Three days later: the window is over, and stays.
    const later = now + 3 * DAY;
    const app = await buildApp({ ...a.ctx, now: () => later });
    try {
      const q = `/v1/maintenance?from=${encodeURIComponent(bkk(now - DAY))}&to=${encodeURIComponent(bkk(now + DAY))}`;
      const past = await app.inject({ method: 'GET', url: q, headers: a.as('officer') });
      expect(past.statusCode).toBe(200);
      const found = past.json().windows.find((x: { id: number }) => x.id === id);
      expect(found).toMatchObject({ status: 'over', schools: [SCHOOL], reason: 'ปรับปรุงระบบไฟฟ้า' });
      const nowActive = await app.inject({ method: 'GET', url: '/v1/maintenance?active=true', headers: a.as('officer') });
      expect(nowActive.json().windows.map((x: { id: number }) => x.id)).not.toContain(id);
      // A period that ended before it shows none of it.
      const before = await app.inject({ method: 'GET', url: `/v1/maintenance?to=${encodeURIComponent(bkk(now - 3 * HOUR))}`, headers: a.as('officer') });
      expect(before.json().windows.map((x: { id: number }) => x.id)).not.toContain(id);
    } finally {
      await app.close();
    }
    // The report, made three days later, of the days the rounds ran on.
    const period = `${bkkDate(now - DAY)}..${bkkDate(now)}`;
    const { report } = await makeReport(a.config, { period, now: later, noInflux: true, stateDb: stateDbOf(a) });
    const school = report.schools.find((s) => s.code === SCHOOL)!;
    const other = report.schools.find((s) => s.code === OTHER_SCHOOL)!;
    expect(school.scheduledS - school.unmonitoredS).toBeGreaterThan(0); // the rounds were watched
    // All of the school's watched time lay in the window: maintenance, none observed.
    expect(school.maintenanceS).toBeCloseTo(school.scheduledS - school.unmonitoredS, 3);
    expect(school.observedS).toBe(0);
    expect(school.availabilityPct).toBeNull();
    // Another school outside any window is observed (its router is judged all day).
    expect(other.maintenanceS).toBe(0);
    expect(other.observedS).toBeGreaterThan(0);
    const device = report.devices.find((d) => d.device === '1036090103-router')!;
    expect(device.maintenanceS).toBe(0);
    expect(device.observedS).toBeGreaterThan(0);
  });
});
