// The API's views on real stores: a simulated area (snmpsimd, two devices
// silent), a real InfluxDB, a real collector's rounds; every answer is
// compared with what the state database and InfluxDB hold, read directly.
// ICMP is off in this area: every 127.x address answers ping, so only with
// reachability judged by SNMP alone are the silent devices really down (and
// the devices behind the silent router unreachable), as outages to show.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DatabaseSync } from 'node:sqlite';
import { gunzipSync } from 'node:zlib';
import type { LightMyRequestResponse } from 'fastify';
import { startApiArea, stateDbOf, DOWN_SCHOOL, SCHOOL, OTHER_SCHOOL, type ApiArea } from './area.ts';
import { recordings } from '../../sim/area.ts';
import { schoolState, type State } from '../../stores/model.ts';
import { buildApp } from '../../api/app.ts';
import { StoreMissing } from '../../api/context.ts';
import { InfluxClient } from '../../stores/influx/client.ts';
import { freePort } from '../helpers/peers.ts';
import { makeReport } from '../../report/report.ts';
import type { Role } from '../../api/tokens.ts';
import { StatusZ } from '../../api/routes/views/status.ts';

// A credential set no device uses, with secrets that must never appear in an answer.
const SECRETS = { user: 'kw-spare-user-5b1e', auth: 'KwAuthSecret-93f1c2', priv: 'KwPrivSecret-77ad04' };
const credentials = {
  ...Object.fromEntries(Object.keys(recordings()).map((n) => [n, { version: '2c', community: n }])),
  spare: { version: 3, username: SECRETS.user, level: 'authPriv', auth_protocol: 'sha', auth_key: SECRETS.auth, priv_protocol: 'aes', priv_key: SECRETS.priv },
};

let a: ApiArea;
let db: DatabaseSync;
/** Every body the app answered in this file: checked for secrets at the end. */
const bodies: string[] = [];

async function get(role: Role | 'none', url: string): Promise<LightMyRequestResponse> {
  const r = await a.app.inject({ method: 'GET', url, headers: a.as(role) });
  bodies.push(r.body);
  return r;
}

interface DbIncident {
  id: number;
  device: string;
  check_name: string;
  school: string;
  kind: string;
  state: string;
  cause: string;
  detail: string | null;
  started_at: number;
  ended_at: number | null;
  duration_s: number | null;
}
const dbStates = () => new Map((db.prepare("SELECT device, state, since, cause FROM device_state WHERE device NOT LIKE '%#%'").all() as { device: string; state: State; since: number; cause: string | null }[]).map((r) => [r.device, r]));
const dbIncidents = () => db.prepare('SELECT * FROM incidents ORDER BY started_at DESC, id DESC').all() as unknown as DbIncident[];
const schoolOf = (code: string) => a.config.schools.find((s) => s.code === code)!;

beforeAll(async () => {
  a = await startApiArea({ octet: 172, rounds: 3, extraSettings: { snmp: { credentials }, icmp: { enabled: false } } });
  db = new DatabaseSync(stateDbOf(a), { readOnly: true });
}, 240_000);
afterAll(async () => {
  db?.close();
  await a?.close();
});

describe('GET /v1/status', () => {
  it('gives each school its state, device counts and open problems as the state database holds them', async () => {
    const r = await get('officer', '/v1/status');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    const body = r.json();
    // Sent as cached bytes, not through the serializer: it must still be what the schema (and the OpenAPI document) says.
    expect(StatusZ.safeParse(body).success).toBe(true);
    expect(Object.keys(body.schools[0]).sort()).toEqual(['code', 'devices', 'name_th', 'office', 'problems', 'state']);
    const states = dbStates();
    const incidents = dbIncidents();
    expect(body.schools.map((s: { code: string }) => s.code)).toEqual(a.config.schools.map((s) => s.code));
    const totals = { total: 0, up: 0, down: 0, unreachable: 0, maintenance: 0, unknown: 0 };
    for (const s of body.schools) {
      const school = schoolOf(s.code);
      const want = { total: school.devices.length, up: 0, down: 0, unreachable: 0, maintenance: 0, unknown: 0 };
      for (const d of school.devices) want[states.get(d.id)?.state ?? 'unknown']++;
      expect(s.devices, s.code).toEqual(want);
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += want[k];
      expect(s.problems, s.code).toBe(incidents.filter((i) => i.school === s.code && i.ended_at === null).length);
      expect(s.state, s.code).toBe(schoolState(school.devices, (id) => states.get(id)?.state).state);
      expect(s.office).toBe(school.office);
    }
    expect(body.totals.devices).toEqual(totals);
    expect(body.totals.problems).toBe(incidents.filter((i) => i.ended_at === null).length);
    expect(body.totals.schools).toBe(a.config.schools.length);
    // The area's silent router: its school is down, with at least that outage open.
    const down = body.schools.find((s: { code: string }) => s.code === DOWN_SCHOOL);
    expect(down.state).toBe('down');
    expect(down.devices.down).toBeGreaterThanOrEqual(1);
    expect(down.problems).toBeGreaterThanOrEqual(1);
    expect(body.totals.schoolStates.down).toBeGreaterThanOrEqual(1);
  });

  it('says when the last round was, from the rounds table', async () => {
    const run = db.prepare('SELECT start, end_at FROM rounds ORDER BY start DESC LIMIT 1').get() as { start: number; end_at: number };
    const body = (await get('viewer', '/v1/status')).json();
    expect(body.observed.coveredUntil).toBe(new Date(run.end_at).toISOString());
    expect(body.observed.runSince).toBe(new Date(run.start).toISOString());
    expect(body.observed.lastRoundAt).toBe(new Date(run.end_at - a.config.settings.polling.interval).toISOString());
    expect(body.observed.reason).toBeNull();
    expect(typeof body.observed.stale).toBe('boolean');
    expect(body.observed.ageS).toBeGreaterThanOrEqual(0);
  });

  it('says "not measured" (null and a reason) when no collector has run, rather than a default', async () => {
    // A context whose state database does not exist yet: stateDb() throws StoreMissing as apiContext's does.
    const bare = await buildApp({ ...a.ctx, stateDb: () => { throw new StoreMissing('the state database /x/state.sqlite does not exist yet: no collector has run with these settings'); } });
    try {
      const r = await bare.inject({ method: 'GET', url: '/v1/status', headers: a.as('officer') });
      bodies.push(r.body);
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body.observed).toMatchObject({ lastRoundAt: null, coveredUntil: null, stale: null, ageS: null });
      expect(body.observed.reason).toMatch(/no collector has run/);
      expect(body.schools.every((s: { state: string }) => s.state === 'unknown')).toBe(true);
      expect(body.totals.devices.unknown).toBe(a.config.devices.length);
    } finally {
      await bare.close();
    }
  });

  it('sends the same JSON gzipped when the client takes gzip', async () => {
    const plain = await a.app.inject({ method: 'GET', url: '/v1/status', headers: a.as('officer') });
    const zipped = await a.app.inject({ method: 'GET', url: '/v1/status', headers: { ...a.as('officer'), 'accept-encoding': 'br;q=1, gzip;q=0.8' } });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toMatch(/accept-encoding/i);
    expect(zipped.rawPayload.length).toBeLessThan(plain.rawPayload.length / 3);
    const unzipped = JSON.parse(gunzipSync(zipped.rawPayload).toString('utf8'));
    bodies.push(JSON.stringify(unzipped));
    const strip = (b: { generatedAt?: string; observed: { ageS?: number | null; stale?: boolean | null } }) => ({ ...b, generatedAt: 0, observed: { ...b.observed, ageS: 0, stale: null } });
    expect(strip(unzipped)).toEqual(strip(plain.json()));
    const refused = await a.app.inject({ method: 'GET', url: '/v1/status', headers: { ...a.as('officer'), 'accept-encoding': 'gzip;q=0, identity' } });
    expect(refused.headers['content-encoding']).toBeUndefined();
  });

  it('gives a school token its own school only', async () => {
    const body = (await get('school', '/v1/status')).json();
    expect(body.schools.map((s: { code: string }) => s.code)).toEqual([SCHOOL]);
    expect(body.totals.schools).toBe(1);
    expect(body.totals.devices.total).toBe(schoolOf(SCHOOL).devices.length);
  });

  it('follows the state database when the collector writes to it (within CHECK_EVERY_MS)', async () => {
    const ofSchool = (b: { schools: { code: string; devices: Record<string, number> }[] }) => b.schools.find((x) => x.code === SCHOOL)!.devices;
    /** /v1/status until `done` holds of it; the view reads the database again at most every CHECK_EVERY_MS. */
    const until = async (done: (b: { schools: { code: string; devices: Record<string, number> }[] }) => boolean) => {
      const t0 = Date.now();
      for (;;) {
        const b = (await get('officer', '/v1/status')).json();
        if (done(b)) return Date.now() - t0;
        if (Date.now() - t0 > 10_000) throw new Error(`/v1/status did not follow the state database within 10 s: ${JSON.stringify(ofSchool(b))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const before = ofSchool((await get('officer', '/v1/status')).json());
    // Another connection (as the collector) commits a change: the view reads it.
    const w = new DatabaseSync(stateDbOf(a));
    try {
      const target = schoolOf(SCHOOL).devices.find((d) => d.kind === 'server')!;
      const old = w.prepare('SELECT state FROM device_state WHERE device = ?').get(target.id) as { state: string };
      w.prepare('UPDATE device_state SET state = ? WHERE device = ?').run('maintenance', target.id);
      await until((b) => ofSchool(b).maintenance === before.maintenance! + 1);
      w.prepare('UPDATE device_state SET state = ? WHERE device = ?').run(old.state, target.id);
      await until((b) => JSON.stringify(ofSchool(b)) === JSON.stringify(before));
    } finally {
      w.close();
    }
  });
});

describe('GET /v1/schools', () => {
  it('lists inventory facts and state; contacts only to an officer', async () => {
    const officer = (await get('officer', '/v1/schools')).json();
    const viewer = (await get('viewer', '/v1/schools')).json();
    expect(officer.schools).toHaveLength(a.config.schools.length);
    const s = officer.schools.find((x: { code: string }) => x.code === SCHOOL);
    const inv = schoolOf(SCHOOL);
    expect(s).toMatchObject({ code: SCHOOL, name_th: inv.name_th, district: inv.district, cluster: inv.cluster ?? null, location: inv.location ?? null });
    expect(s.contacts).toEqual(inv.contacts.map((c) => ({ name: c.name ?? null, email: c.email, role: c.role ?? null })));
    expect(viewer.schools.every((x: Record<string, unknown>) => !('contacts' in x))).toBe(true);
    for (const c of a.config.schools.flatMap((x) => x.contacts)) expect(JSON.stringify(viewer)).not.toContain(c.email);
  });

  it('gives a school token its own school, 403 for another, 404 for none, 400 naming a malformed code', async () => {
    expect((await get('school', '/v1/schools')).json().schools.map((s: { code: string }) => s.code)).toEqual([SCHOOL]);
    const own = await get('school', `/v1/schools/${SCHOOL}`);
    expect(own.statusCode).toBe(200);
    const states = dbStates();
    expect(own.json().deviceList).toEqual(schoolOf(SCHOOL).devices.map((d) => ({ id: d.id, kind: d.kind, name: d.name ?? null, state: states.get(d.id)?.state ?? 'unknown', since: states.has(d.id) ? new Date(states.get(d.id)!.since).toISOString() : null })));
    const other = await get('school', `/v1/schools/${OTHER_SCHOOL}`);
    expect(other.statusCode).toBe(403);
    expect(other.json()).toEqual({ error: 'forbidden', message: expect.stringContaining(SCHOOL) });
    expect(other.body).not.toContain(schoolOf(OTHER_SCHOOL).name_th);
    expect((await get('officer', '/v1/schools/9999999999')).statusCode).toBe(404);
    const bad = await get('officer', '/v1/schools/' + encodeURIComponent('a b;'));
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^params\.code: /);
  });
});

const DEVICE_KEYS = ['id', 'kind', 'name', 'school', 'address', 'profile', 'parent', 'classroom', 'uplink_if', 'state', 'since', 'cause', 'flapping'].sort();

describe('GET /v1/devices', () => {
  it('lists every device with inventory facts and the state database\'s state, and nothing else', async () => {
    const body = (await get('officer', '/v1/devices')).json();
    const states = dbStates();
    expect(body.devices.map((d: { id: string }) => d.id)).toEqual(a.config.devices.map((d) => d.id));
    for (const d of body.devices) {
      expect(Object.keys(d).sort()).toEqual(DEVICE_KEYS);
      const inv = a.config.deviceById.get(d.id)!;
      const s = states.get(d.id);
      expect(d).toMatchObject({ kind: inv.kind, school: inv.school.code, address: inv.address, profile: inv.profile, parent: inv.parent ?? null, uplink_if: inv.uplink_if ?? null, state: s?.state ?? 'unknown', since: s ? new Date(s.since).toISOString() : null });
    }
    const silent = body.devices.find((d: { id: string }) => d.id === `${DOWN_SCHOOL}-router`);
    expect(silent).toMatchObject({ state: 'down', cause: `${DOWN_SCHOOL}-router` });
  });

  it('filters by school, kind and state', async () => {
    const states = dbStates();
    const routers = (await get('officer', '/v1/devices?kind=router')).json().devices;
    expect(routers.map((d: { id: string }) => d.id)).toEqual(a.config.devices.filter((d) => d.kind === 'router').map((d) => d.id));
    const down = (await get('officer', '/v1/devices?state=down')).json().devices;
    expect(down.map((d: { id: string }) => d.id).sort()).toEqual(a.config.devices.filter((d) => states.get(d.id)?.state === 'down').map((d) => d.id).sort());
    expect(down.length).toBeGreaterThanOrEqual(1);
    const one = (await get('officer', `/v1/devices?school=${DOWN_SCHOOL}&kind=router`)).json().devices;
    expect(one.map((d: { id: string }) => d.id)).toEqual([`${DOWN_SCHOOL}-router`]);
    const bad = await get('officer', '/v1/devices?kind=toaster');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^querystring\.kind: /);
  });

  it('keeps a school token to its school: 403 for ?school=another, 404 for another school\'s device', async () => {
    const own = (await get('school', '/v1/devices')).json().devices;
    expect(own.length).toBe(schoolOf(SCHOOL).devices.length);
    expect(own.every((d: { school: string }) => d.school === SCHOOL)).toBe(true);
    const other = await get('school', `/v1/devices?school=${OTHER_SCHOOL}`);
    expect(other.statusCode).toBe(403);
    expect(other.json().message).toMatch(/^querystring\.school: /);
    const otherDevice = schoolOf(OTHER_SCHOOL).devices[0]!.id;
    for (const url of [`/v1/devices/${otherDevice}`, `/v1/devices/${otherDevice}/metrics`]) {
      const r = await get('school', url);
      expect(r.statusCode, url).toBe(404);
      expect(r.json().error).toBe('not_found');
    }
    expect((await get('officer', `/v1/devices/${otherDevice}`)).statusCode).toBe(200);
    expect((await get('viewer', '/v1/devices')).statusCode).toBe(403);
  });

  it('gives one device with its checks as the state database holds them', async () => {
    const id = schoolOf(SCHOOL).devices.find((d) => d.kind === 'router')!.id;
    const body = (await get('school', `/v1/devices/${id}`)).json();
    const checks = db.prepare("SELECT device, state, since FROM device_state WHERE device LIKE ? || '#%'").all(id) as { device: string; state: string; since: number }[];
    expect(checks.length).toBeGreaterThan(0);
    expect(body.checks).toEqual(checks.map((c) => ({ check: c.device.slice(id.length + 1), state: c.state, since: new Date(c.since).toISOString() })).sort((x, y) => x.check.localeCompare(y.check)));
    expect((await get('officer', '/v1/devices/no-such-device')).statusCode).toBe(404);
  });
});

describe('GET /v1/devices/:id/metrics', () => {
  const router = `${SCHOOL}-router`;

  it('answers the points InfluxDB holds for the device, newest first', async () => {
    const r = await get('officer', `/v1/devices/${router}/metrics?measurement=device&fields=poll_ms,snmp_up`);
    expect(r.statusCode).toBe(200);
    const body = r.json();
    const want = await a.influx.query('api', `SELECT "poll_ms", "snmp_up", "profile" FROM "raw"."device" WHERE "device" = '${router}' AND time >= ${Date.parse(body.from)}ms AND time < ${Date.parse(body.to)}ms ORDER BY time DESC`);
    expect(want.length).toBeGreaterThanOrEqual(3);
    expect(body.points).toEqual(want.map((w) => ({ time: new Date(Number(w.time)).toISOString(), tags: { profile: w.profile }, values: { poll_ms: w.poll_ms, snmp_up: w.snmp_up } })));
    expect(body.truncated).toBe(false);
    expect(body.retentionPolicy).toBe('raw');
  });

  it('aggregates per `every` with each field\'s roll-up and keeps per-interface series apart', async () => {
    const r = await get('officer', `/v1/devices/${router}/metrics?measurement=interface&fields=in_bps,oper_status&every=1h`);
    expect(r.statusCode).toBe(200);
    const body = r.json();
    const want = await a.influx.query('api', `SELECT mean("in_bps") AS "in_bps", last("oper_status") AS "oper_status" FROM "raw"."interface" WHERE "device" = '${router}' AND time >= ${Date.parse(body.from)}ms AND time < ${Date.parse(body.to)}ms GROUP BY time(1h), "ifname" fill(none)`);
    expect(want.length).toBeGreaterThan(1);
    const key = (p: { time: string | number; ifname: string }) => `${p.ifname}@${new Date(Number.isFinite(Number(p.time)) ? Number(p.time) : Date.parse(String(p.time))).toISOString()}`;
    const got = new Map(body.points.map((p: { time: string; tags: { ifname: string }; values: Record<string, number> }) => [key({ time: p.time, ifname: p.tags.ifname }), p.values]));
    expect(got.size).toBe(want.length);
    for (const w of want) expect(got.get(key(w as { time: number; ifname: string }))).toEqual({ in_bps: w.in_bps, oper_status: w.oper_status });
  });

  it('reads a date, or a date and time without an offset, as Thai time (Asia/Bangkok), like the auditor\'s routes', async () => {
    const cases: [string, string, string][] = [
      ['from=2026-11-29&to=2026-11-30', '2026-11-28T17:00:00.000Z', '2026-11-29T17:00:00.000Z'],
      ['from=2026-11-29T08:00&to=2026-11-29%2009:30:15', '2026-11-29T01:00:00.000Z', '2026-11-29T02:30:15.000Z'],
      ['from=2026-11-29T01:00:00Z&to=2026-11-29T09:00:00%2B07:00', '2026-11-29T01:00:00.000Z', '2026-11-29T02:00:00.000Z'],
      [`from=${Date.parse('2026-11-29T00:00:00+07:00')}&to=2026-11-30`, '2026-11-28T17:00:00.000Z', '2026-11-29T17:00:00.000Z'],
    ];
    for (const [q, from, to] of cases) {
      const r = await get('officer', `/v1/devices/${router}/metrics?measurement=icmp&fields=rtt_avg_ms&every=1h&${q}`);
      expect(r.statusCode, q).toBe(200);
      expect({ from: r.json().from, to: r.json().to }, q).toEqual({ from, to });
    }
    for (const q of ['from=2026-02-30', 'from=2026-11-29T24:00', 'from=2026-13-01', 'from=0099-01-01', 'to=2026-11-29T08:00%2B15:00']) {
      const r = await get('officer', `/v1/devices/${router}/metrics?${q}`);
      expect(r.statusCode, q).toBe(400);
      expect(r.json().message, q).toMatch(/^querystring\.(from|to): .* is not a time: give a date \(2026-11-29: midnight, Thai time\)/);
    }
  });

  it('refuses parameters outside the schema with 400 naming the field, before any query', async () => {
    const cases: [string, RegExp][] = [
      ['measurement=klaiwatch', /^querystring\.measurement: /],
      ['measurement=icmp&fields=rtt_avg_ms,nope', /^querystring\.fields: "nope" is not a field of measurement icmp/],
      ['measurement=icmp&fields=' + encodeURIComponent('rtt_avg_ms" FROM "raw"."klaiwatch" --'), /^querystring\.fields: /],
      ['every=7m', /^querystring\.every: /],
      ['from=yesterday', /^querystring\.from: /],
      ['from=2026-11-29T10:00:00Z&to=2026-11-29T09:00:00Z', /^querystring\.from: .* is not before to/],
      ['from=2026-09-01&to=2026-11-01', /^querystring\.from: the range is \d+ days; at most 31/],
      ['every=1m&from=2026-10-01&to=2026-10-30', /^querystring\.every: /],
    ];
    for (const [q, re] of cases) {
      const r = await get('officer', `/v1/devices/${router}/metrics?${q}`);
      expect(r.statusCode, q).toBe(400);
      expect(r.json().error, q).toBe('bad_request');
      expect(r.json().message, q).toMatch(re);
    }
  });
});

describe('GET /v1/problems', () => {
  it('lists the open incidents of the state database with Thai and English text', async () => {
    const body = (await get('viewer', '/v1/problems')).json();
    const open = dbIncidents().filter((i) => i.ended_at === null);
    expect(body.problems.map((p: { incident: number }) => p.incident).sort()).toEqual(open.map((i) => i.id).sort());
    const outage = body.problems.find((p: { device: string; check: string | null }) => p.device === `${DOWN_SCHOOL}-router` && p.check === null);
    expect(outage).toMatchObject({ type: 'outage', school: DOWN_SCHOOL, schoolName: schoolOf(DOWN_SCHOOL).name_th, kind: 'router' });
    expect(outage.th.title).toBe('เราเตอร์ใช้งานไม่ได้');
    expect(outage.th.text).toMatch(/ใช้งานไม่ได้ ตั้งแต่ .* น\.$/);
    expect(outage.en.text).toMatch(new RegExp(`^${DOWN_SCHOOL}-router down since `));
    expect(body.counts.outages + body.counts.unreachable + body.counts.checks).toBe(open.length);
  });

  it('gives a school token its own school\'s problems only', async () => {
    const body = (await get('school', '/v1/problems')).json();
    expect(body.problems.every((p: { school: string }) => p.school === SCHOOL)).toBe(true);
    expect(body.problems.length).toBe(dbIncidents().filter((i) => i.ended_at === null && i.school === SCHOOL).length);
    expect((await get('school', `/v1/problems?school=${DOWN_SCHOOL}`)).statusCode).toBe(403);
  });
});

describe('GET /v1/incidents', () => {
  it('answers the incident record newest first, paged with `next` until null', async () => {
    const all = dbIncidents();
    expect(all.length).toBeGreaterThanOrEqual(2);
    const first = (await get('officer', '/v1/incidents')).json();
    expect(first.total).toBe(all.length);
    expect(first.incidents.map((i: { id: number }) => i.id)).toEqual(all.map((i) => i.id).slice(0, 100));
    const i0 = first.incidents[0];
    expect(i0).toEqual({ id: all[0]!.id, device: all[0]!.device, check: all[0]!.check_name === '' ? null : all[0]!.check_name, school: all[0]!.school, kind: all[0]!.kind, state: all[0]!.state, cause: all[0]!.cause, detail: all[0]!.detail, startedAt: new Date(all[0]!.started_at).toISOString(), endedAt: all[0]!.ended_at === null ? null : new Date(all[0]!.ended_at).toISOString(), durationS: all[0]!.duration_s, open: all[0]!.ended_at === null });
    const seen: number[] = [];
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null && pages++ < 1000) {
      const page: { incidents: { id: number }[]; next: number | null } = (await get('officer', `/v1/incidents?limit=1&offset=${offset}`)).json();
      expect(page.incidents.length).toBe(1);
      seen.push(page.incidents[0]!.id);
      offset = page.next;
    }
    expect(seen).toEqual(all.map((i) => i.id));
  });

  it('filters by school, device, kind, state, open and time', async () => {
    const all = dbIncidents();
    const ids = async (q: string) => (await get('officer', `/v1/incidents?${q}`)).json().incidents.map((i: { id: number }) => i.id);
    expect(await ids(`school=${DOWN_SCHOOL}`)).toEqual(all.filter((i) => i.school === DOWN_SCHOOL).map((i) => i.id));
    expect(await ids(`device=${DOWN_SCHOOL}-router`)).toEqual(all.filter((i) => i.device === `${DOWN_SCHOOL}-router`).map((i) => i.id));
    expect(await ids('kind=router&state=down')).toEqual(all.filter((i) => i.kind === 'router' && i.state === 'down').map((i) => i.id));
    expect(await ids('open=true')).toEqual(all.filter((i) => i.ended_at === null).map((i) => i.id));
    expect(await ids('open=false')).toEqual(all.filter((i) => i.ended_at !== null).map((i) => i.id));
    expect(await ids('check=none')).toEqual(all.filter((i) => i.check_name === '').map((i) => i.id));
    const t = all[all.length - 1]!.started_at;
    expect(await ids(`to=${t}`)).toEqual([]);
    expect(await ids(`from=${new Date(t).toISOString()}&to=${t + 1}`)).toEqual(all.filter((i) => i.started_at < t + 1 && (i.ended_at === null || i.ended_at > t)).map((i) => i.id));
  });

  it('reads from/to given as a date or a date-time without an offset as Thai time: the same answer as with +07:00', async () => {
    const ids = async (q: string) => {
      const r = await get('officer', `/v1/incidents?${q}`);
      expect(r.statusCode, q).toBe(200);
      return r.json().incidents.map((i: { id: number }) => i.id);
    };
    const all = dbIncidents();
    expect(all.length).toBeGreaterThan(0);
    // The Thai day of the oldest incident: a bare date is its midnight in Bangkok, not in UTC.
    const t = all[all.length - 1]!.started_at;
    const day = new Date(t + 7 * 3_600_000).toISOString().slice(0, 10);
    const next = new Date(t + 7 * 3_600_000 + 86_400_000).toISOString().slice(0, 10);
    const midnight = Date.parse(`${day}T00:00:00+07:00`);
    const expected = all.filter((i) => i.started_at < midnight + 86_400_000 && (i.ended_at === null || i.ended_at > midnight)).map((i) => i.id);
    expect(expected.length).toBeGreaterThan(0);
    expect(await ids(`from=${day}&to=${next}&limit=1000`)).toEqual(expected);
    expect(await ids(`from=${encodeURIComponent(`${day}T00:00:00+07:00`)}&to=${midnight + 86_400_000}&limit=1000`)).toEqual(expected);
    // A date-time without an offset: the incident's own start, in Thai time, finds it (to is exclusive: one second on).
    const local = new Date(t + 7 * 3_600_000).toISOString().slice(0, 19);
    const endLocal = new Date(t + 7 * 3_600_000 + 1000).toISOString().slice(0, 19);
    expect(await ids(`from=${local}&to=${endLocal}&limit=1000`)).toContain(all[all.length - 1]!.id);
    // The same text read as UTC would be seven hours later: nothing begun then.
    expect(await ids(`to=${local}&limit=1000`)).not.toContain(all[all.length - 1]!.id);
  });

  it('refuses a limit above 1000, a negative offset and a bad flag with 400 naming the field', async () => {
    for (const [q, field] of [['limit=1001', 'limit'], ['offset=-1', 'offset'], ['limit=ten', 'limit'], ['open=maybe', 'open'], ['from=1.5e3', 'from']] as const) {
      const r = await get('officer', `/v1/incidents?${q}`);
      expect(r.statusCode, q).toBe(400);
      expect(r.json().message, q).toMatch(new RegExp(`^querystring\\.${field}: `));
    }
  });

  it('keeps a school token to its school through filters and paging', async () => {
    const own = dbIncidents().filter((i) => i.school === SCHOOL);
    const seen: number[] = [];
    for (let offset: number | null = 0, n = 0; offset !== null && n < 1000; n++) {
      const r = await get('school', `/v1/incidents?limit=1&offset=${offset}`);
      const page = r.json();
      expect(page.total).toBe(own.length);
      for (const i of page.incidents) {
        expect(i.school).toBe(SCHOOL);
        seen.push(i.id);
      }
      offset = page.next;
    }
    expect(seen).toEqual(own.map((i) => i.id));
    expect((await get('school', `/v1/incidents?school=${DOWN_SCHOOL}`)).statusCode).toBe(403);
    expect((await get('school', `/v1/incidents?device=${DOWN_SCHOOL}-router`)).statusCode).toBe(404);
    expect((await get('school', `/v1/incidents?offset=100000`)).json().incidents).toEqual([]);
  });
});

describe('GET /v1/reports', () => {
  const period = new Date(Date.now() + 7 * 3_600_000).toISOString().slice(0, 7);

  it('answers report/\'s makeReport as JSON', async () => {
    const r = await get('viewer', `/v1/reports?period=${period}`);
    expect(r.statusCode).toBe(200);
    const body = r.json();
    const direct = await makeReport(a.config, { period, now: Date.now() });
    expect(body.report.schools.map((s: { code: string }) => s.code)).toEqual(direct.report.schools.map((s) => s.code));
    for (const s of direct.report.schools) {
      const got = body.report.schools.find((x: { code: string }) => x.code === s.code);
      expect({ outages: got.outages, openNow: got.openNow, upstream: got.upstream, checks: got.checks }, s.code).toEqual({ outages: s.outages, openNow: s.openNow, upstream: s.upstream, checks: s.checks });
    }
    expect(body.report.schools.find((s: { code: string }) => s.code === DOWN_SCHOOL).openNow).toBeGreaterThanOrEqual(1);
    expect(body.report.totals.openNow).toBe(direct.report.totals.openNow);
  });

  it('gives a school token its own school\'s report only, in JSON, CSV and HTML', async () => {
    const others = a.config.schools.filter((s) => s.code !== SCHOOL);
    const json = await get('school', `/v1/reports?period=${period}`);
    expect(json.json().report.schools.map((s: { code: string }) => s.code)).toEqual([SCHOOL]);
    expect(json.json().report.totalLabel).toContain(schoolOf(SCHOOL).name_th);
    const csv = await get('school', `/v1/reports?period=${period}&format=csv`);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toBe(`attachment; filename="klaiwatch-report-${period}-${SCHOOL}.csv"`);
    const lines = csv.body.replace(/^\ufeff/, '').trim().split('\r\n');
    expect(lines).toHaveLength(3); // heading, the school, the total
    expect(lines[1]!.startsWith(`${SCHOOL},`)).toBe(true);
    const html = await get('school', `/v1/reports?period=${period}&format=html`);
    expect(html.statusCode).toBe(200);
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.headers['content-disposition']).toBe(`inline; filename="klaiwatch-report-${period}-${SCHOOL}.html"`);
    expect(html.body).toContain(`data-school="${SCHOOL}"`);
    for (const body of [json.body, csv.body, html.body]) {
      for (const o of others) {
        if (!o.office) expect(body).not.toContain(o.code); // the office's code is "office", a word of the report's own keys
        expect(body).not.toContain(o.name_th);
        for (const d of o.devices) expect(body).not.toContain(d.id);
      }
    }
    expect((await get('school', `/v1/reports?period=${period}&school=${OTHER_SCHOOL}&format=csv`)).statusCode).toBe(403);
  });

  it('gives an officer one school\'s CSV with ?school=', async () => {
    const csv = await get('officer', `/v1/reports?period=${period}&school=${DOWN_SCHOOL}&format=csv`);
    const lines = csv.body.replace(/^\ufeff/, '').trim().split('\r\n');
    expect(lines.map((l) => l.split(',')[0])).toEqual(['รหัสโรงเรียน', DOWN_SCHOOL, '']);
  });

  it('refuses a bad period with 400 naming querystring.period', async () => {
    for (const p of ['2026-13', 'last-month', '2026-11-31..2026-12-01', '2099-01']) {
      const r = await get('officer', `/v1/reports?period=${encodeURIComponent(p)}`);
      expect(r.statusCode, p).toBe(400);
      expect(r.json().message, p).toMatch(/^querystring\.period: /);
    }
  });
});

describe('the views over real HTTP and with InfluxDB stopped', () => {
  it('answers /v1/status over a real socket', async () => {
    const app = await a.another();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/v1/status`, { headers: a.as('viewer') });
    const text = await res.text();
    bodies.push(text);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(text).schools).toHaveLength(a.config.schools.length);
    const none = await fetch(`http://127.0.0.1:${port}/v1/status`);
    expect(none.status).toBe(401);
  });

  it('answers metrics 503 naming InfluxDB while it is stopped, and status and problems still', async () => {
    // A client of this area's InfluxDB on a port where none listens, as for a stopped server...
    const dead = new InfluxClient({ ...a.ctx.influx.target, url: `http://127.0.0.1:${await freePort()}` });
    const app = await buildApp({ ...a.ctx, influx: dead });
    try {
      const r = await app.inject({ method: 'GET', url: `/v1/devices/${SCHOOL}-router/metrics`, headers: a.as('officer') });
      bodies.push(r.body);
      expect(r.statusCode).toBe(503);
      expect(r.json()).toEqual({ error: 'unavailable', message: expect.stringMatching(/^InfluxDB at http:\/\/127\.0\.0\.1:\d+ did not answer the metrics query \(ECONNREFUSED\)/) });
    } finally {
      await app.close();
    }
    // ...and the real one stopped.
    await a.influx.server.stop();
    try {
      const r = await get('officer', `/v1/devices/${SCHOOL}-router/metrics`);
      expect(r.statusCode).toBe(503);
      expect(r.json().message).toContain('InfluxDB');
      expect(r.body).not.toMatch(/\n\s+at /);
      expect((await get('officer', '/v1/status')).statusCode).toBe(200);
      expect((await get('school', '/v1/problems')).statusCode).toBe(200);
      expect((await get('officer', '/v1/incidents')).statusCode).toBe(200);
    } finally {
      await a.influx.server.start();
    }
  });

  it('never answered a credential, a token or an SNMP setting', () => {
    expect(bodies.length).toBeGreaterThan(40);
    const forbidden = [SECRETS.user, SECRETS.auth, SECRETS.priv, ...Object.values(a.tokens), '"community":', '"snmp":', '"credentials":', 'auth_key', 'priv_key'];
    for (const b of bodies) for (const f of forbidden) expect(b.includes(f), `an answer holds ${f}`).toBe(false);
  });
});
