// The role matrix (issue 17, point 2): the table below is the issue's
// roles table as data. The test walks every route the app registers
// (app.routeTable) with every role's token and with none: a role the table
// allows is answered (not 401/403, no 500), one it does not is refused (403
// with a token, 401 without one; the auditor's browser pages send a person
// without a session to /auditor/login with 303). A route in the app that the
// table does not hold fails the test (a new route must be declared here), and
// so does a table row the app has no route for.
//
// Then the school token's walls: for every route a school token may call, it
// tries to reach OTHER_SCHOOL through path parameters, query parameters
// (school=, device=, repeated parameters), paging (offset, limit) and the
// CSV/HTML formats, over real HTTP; no answer may carry any of
// OTHER_SCHOOL's identifiers (code, names, contacts, its devices' ids and
// addresses), and the answers the table fixes (403 for another school's code,
// 404 for another school's device, as if it did not exist) are checked.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startApiArea, SCHOOL, OTHER_SCHOOL, type ApiArea } from './area.ts';
import { buildApp, type App } from '../../api/app.ts';
import { ROLES, type Role } from '../../api/tokens.ts';
import { StateStore } from '../../stores/state.ts';

type Who = Role | 'none';
const WHO: readonly Who[] = [...ROLES, 'none'];

interface Sample {
  params?: Record<string, string>;
  query?: Record<string, string>;
  /** JSON body (API) or form fields (pages: sent as application/x-www-form-urlencoded). */
  body?: Record<string, unknown>;
}

interface Row {
  method: 'GET' | 'POST';
  url: string;
  /** Every registered URL under this prefix is this row (the docs' own routes). */
  prefix?: boolean;
  roles: readonly Role[] | 'public';
  /** A browser page: the token goes in the session cookie, and no session → 303 to /auditor/login. */
  page?: boolean;
  /** A valid request for an allowed caller (a 400/404 for a missing thing is still "allowed"). */
  sample?: (s: Samples) => Sample;
}

interface Samples {
  ownDevice: string;
  period: string;
  from: string;
  to: string;
  windowStart: string;
  windowEnd: string;
}

// The roles table, exactly (task-roles.md / api-contract.md).
const TABLE: readonly Row[] = [
  { method: 'GET', url: '/healthz', roles: 'public' },
  { method: 'GET', url: '/docs', prefix: true, roles: 'public' },
  { method: 'GET', url: '/v1/status', roles: ['officer', 'school', 'viewer'] },
  { method: 'GET', url: '/v1/schools', roles: ['officer', 'school', 'viewer'] },
  { method: 'GET', url: '/v1/schools/:code', roles: ['officer', 'school', 'viewer'], sample: () => ({ params: { code: SCHOOL } }) },
  { method: 'GET', url: '/v1/devices', roles: ['officer', 'school'] },
  { method: 'GET', url: '/v1/devices/:id', roles: ['officer', 'school'], sample: (s) => ({ params: { id: s.ownDevice } }) },
  { method: 'GET', url: '/v1/devices/:id/metrics', roles: ['officer', 'school'], sample: (s) => ({ params: { id: s.ownDevice } }) },
  { method: 'GET', url: '/v1/problems', roles: ['officer', 'school', 'viewer'] },
  { method: 'GET', url: '/v1/incidents', roles: ['officer', 'school'] },
  { method: 'GET', url: '/v1/reports', roles: ['officer', 'school', 'viewer'], sample: (s) => ({ query: { period: s.period } }) },
  { method: 'GET', url: '/v1/maintenance', roles: ['officer'] },
  {
    method: 'POST',
    url: '/v1/maintenance',
    roles: ['officer'],
    sample: (s) => ({ body: { schools: [SCHOOL], start: s.windowStart, end: s.windowEnd, reason: 'role matrix test: a window next month' } }),
  },
  { method: 'POST', url: '/v1/maintenance/:id/end', roles: ['officer'], sample: () => ({ params: { id: '1' } }) },
  { method: 'GET', url: '/v1/traffic/search', roles: ['auditor'], sample: (s) => ({ query: { from: s.from, to: s.to } }) },
  { method: 'GET', url: '/v1/traffic/who', roles: ['auditor'], sample: (s) => ({ query: { ip: '10.36.1.50', at: s.to } }) },
  { method: 'GET', url: '/v1/traffic/verify', roles: ['auditor'] },
  { method: 'POST', url: '/v1/traffic/evidence', roles: ['auditor'], sample: (s) => ({ body: { from: s.from, to: s.to, reference: 'role matrix test' } }) },
  { method: 'GET', url: '/v1/traffic/journal', roles: ['auditor', 'officer'] },
  { method: 'GET', url: '/auditor', roles: 'public', page: true },
  { method: 'GET', url: '/auditor/login', roles: 'public', page: true },
  { method: 'POST', url: '/auditor/login', roles: 'public', page: true, sample: () => ({ body: { token: 'kw_' + 'x'.repeat(51) } }) },
  { method: 'POST', url: '/auditor/logout', roles: 'public', page: true },
  { method: 'GET', url: '/auditor/search', roles: ['auditor'], page: true },
  { method: 'GET', url: '/auditor/who', roles: ['auditor'], page: true },
  { method: 'GET', url: '/auditor/verify', roles: ['auditor'], page: true },
  { method: 'POST', url: '/auditor/evidence', roles: ['auditor'], page: true, sample: (s) => ({ body: { from: s.from, to: s.to, reference: 'role matrix test' } }) },
];

const rowOf = (method: string, url: string): Row | undefined =>
  TABLE.find((r) => r.method === method && (r.prefix ? url === r.url || url.startsWith(r.url + '/') : url === r.url));

/** The request a row's sample makes: path parameters filled in, wildcards given a file name. */
function requestOf(row: Row, url: string, s: Samples): { url: string; body?: Record<string, unknown> } {
  const sample = row.sample?.(s) ?? {};
  let path = url.replace(/:([A-Za-z_]+)/g, (_m, name: string) => encodeURIComponent(sample.params?.[name] ?? 'x'));
  path = path.replace(/\*$/, 'index.css');
  const q = new URLSearchParams(sample.query ?? {}).toString();
  return { url: q ? `${path}?${q}` : path, ...(sample.body ? { body: sample.body } : {}) };
}

let a: ApiArea;
let s: Samples;
let other: { code: string; texts: string[] };

/** Asks `app` as `who`: API routes with Authorization: Bearer, pages with the session cookie. */
async function ask(app: App, who: Who, method: string, url: string, body: Record<string, unknown> | undefined, page: boolean) {
  const headers: Record<string, string> = {};
  if (who !== 'none') {
    if (page) {
      headers.cookie = a.session(who);
      headers.origin = 'http://localhost:80';
    }
    else headers.authorization = `Bearer ${a.tokens[who]}`;
  }
  let payload: string | undefined;
  if (body !== undefined) {
    if (page) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      payload = new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString();
    } else {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
  } else if (method === 'POST' && !page) {
    headers['content-type'] = 'application/json';
    payload = '{}';
  }
  const r = await app.inject({ method: method as 'GET' | 'POST', url, headers, ...(payload !== undefined ? { payload } : {}) });
  return { status: r.statusCode, headers: r.headers, body: r.body };
}

beforeAll(async () => {
  a = await startApiArea({ octet: 177, rounds: 2 });
  const now = a.ctx.now();
  const bkk = (t: number) => new Date(t + 7 * 3_600_000).toISOString();
  const own = a.config.schools.find((x) => x.code === SCHOOL);
  const oth = a.config.schools.find((x) => x.code === OTHER_SCHOOL);
  if (!own || !oth || own.devices.length === 0 || oth.devices.length === 0) throw new Error(`the area must hold ${SCHOOL} and ${OTHER_SCHOOL} with devices`);
  s = {
    ownDevice: own.devices[0]!.id,
    period: bkk(now).slice(0, 7),
    from: new Date(now - 3_600_000).toISOString(),
    to: new Date(now).toISOString(),
    windowStart: new Date(now + 30 * 86_400_000).toISOString(),
    windowEnd: new Date(now + 30 * 86_400_000 + 3_600_000).toISOString(),
  };
  // Everything that names OTHER_SCHOOL: its code, names, contacts, location, its devices' ids and addresses.
  const texts = [oth.code, oth.name_th, ...(oth.name_en ? [oth.name_en] : [])];
  for (const c of oth.contacts) texts.push(c.email, ...(c.name ? [c.name] : []));
  if (oth.location) texts.push(String(oth.location.lat), String(oth.location.lon));
  for (const d of oth.devices) texts.push(d.id, d.address);
  other = { code: oth.code, texts };
  // History for both schools (as test/report fills it), so that paging and CSV have rows of each to leak:
  // 40 past incidents per school and one open per school, beside what the collector's rounds left.
  const store = new StateStore(a.ctx.stateDbFile);
  try {
    const insert = store.db.prepare('INSERT INTO incidents (device, check_name, school, kind, state, cause, detail, started_at, ended_at, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (const school of [own, oth]) {
      school.devices.forEach((d, i) => {
        for (let k = 0; k < Math.ceil(40 / school.devices.length); k++) {
          const start = now - (k + 1) * 86_400_000 - i * 600_000;
          insert.run(d.id, '', school.code, d.kind, 'down', d.id, null, start, start + 900_000, 900);
        }
      });
      const rx = school.devices[school.devices.length - 1]!;
      insert.run(rx.id, '', school.code, rx.kind, 'down', rx.id, 'roles test: still open', now - 3_600_000, null, null);
    }
  } finally {
    store.close();
  }
}, 240_000);

afterAll(async () => {
  await a?.close();
});

describe('the role matrix', () => {
  it('the table and the app hold the same routes, with the same roles', () => {
    const routes = a.app.routeTable;
    expect(routes.length).toBeGreaterThan(5);
    const undeclared = routes.filter((r) => !rowOf(r.method, r.url)).map((r) => `${r.method} ${r.url}`);
    expect(undeclared, 'routes the app registers that the roles table does not declare (add them to TABLE with their roles)').toEqual([]);
    const missing = TABLE.filter((row) => !routes.some((r) => rowOf(r.method, r.url) === row)).map((row) => `${row.method} ${row.url}`);
    expect(missing, 'rows of the roles table the app has no route for').toEqual([]);
    const differ = routes
      .map((r) => ({ r, row: rowOf(r.method, r.url) }))
      .filter(({ r, row }) => row && JSON.stringify(norm(r.roles)) !== JSON.stringify(norm(row.roles)))
      .map(({ r, row }) => `${r.method} ${r.url}: declares ${JSON.stringify(r.roles)}, the table says ${JSON.stringify(row!.roles)}`);
    expect(differ).toEqual([]);
  });

  it('answers every route to the roles the table allows and refuses the others (403 with a token, 401 without, 303 to the login page for pages)', async () => {
    const wrong: string[] = [];
    let cells = 0;
    for (const r of a.app.routeTable) {
      const row = rowOf(r.method, r.url);
      if (!row) continue; // the test above names it
      const req = requestOf(row, r.url, s);
      for (const who of WHO) {
        const allowed = row.roles === 'public' || (who !== 'none' && row.roles.includes(who));
        const res = await ask(a.app, who, r.method, req.url, req.body, row.page === true);
        cells++;
        const cell = `${who} ${r.method} ${req.url} → ${res.status} ${res.body.slice(0, 160)}`;
        const toLogin = res.status === 303 && String(res.headers.location ?? '').startsWith('/auditor/login');
        if (allowed) {
          if (res.status === 401 || res.status === 403 || res.status === 429) wrong.push(`allowed but refused: ${cell}`);
          else if (res.status >= 500 && res.status !== 503) wrong.push(`allowed but failed: ${cell}`);
          else if (row.page && row.roles !== 'public' && toLogin) wrong.push(`allowed but sent to the login page: ${cell}`);
          continue;
        }
        if (row.page) {
          // A person at the browser without a session is sent to the login form; a session of another role is refused.
          if (who === 'none' ? !toLogin : !(res.status === 403 || toLogin)) wrong.push(`page not refused as it should be: ${cell}`);
        } else if (res.status !== (who === 'none' ? 401 : 403)) {
          wrong.push(`not refused with ${who === 'none' ? 401 : 403}: ${cell}`);
        } else {
          const b = JSON.parse(res.body) as { error?: unknown; message?: unknown };
          if (b.error !== (who === 'none' ? 'unauthorized' : 'forbidden') || typeof b.message !== 'string') wrong.push(`refusal not { error, message }: ${cell}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(cells).toBe(a.app.routeTable.length * WHO.length);
  }, 120_000);

  it('refuses HEAD as it refuses GET (Fastify answers HEAD for every GET route)', async () => {
    const wrong: string[] = [];
    for (const r of a.app.routeTable) {
      const row = rowOf(r.method, r.url);
      if (!row || r.method !== 'GET' || row.roles === 'public') continue;
      const req = requestOf(row, r.url, s);
      for (const who of WHO) {
        if (who !== 'none' && row.roles.includes(who)) continue;
        const res = await a.app.inject({ method: 'HEAD', url: req.url, headers: who === 'none' ? {} : row.page ? { cookie: a.session(who) } : a.as(who) });
        const ok = row.page ? res.statusCode === 303 || res.statusCode === 403 : res.statusCode === (who === 'none' ? 401 : 403);
        if (!ok) wrong.push(`${who} HEAD ${req.url} → ${res.statusCode}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('refuses spellings of an officer-only URL to a viewer (trailing slash, percent-encoding, dot segments, doubled slashes)', async () => {
    const wrong: string[] = [];
    for (const url of ['/v1/maintenance', '/v1/maintenance/', '/v1/%6Daintenance', '/v1/%6daintenance?active=true', '/v1//maintenance', '/v1/./maintenance', '/v1/x/../maintenance', '/v1/maintenance;x', '/v1/maintenance%2F', '/V1/MAINTENANCE', '/v1/maintenance%00']) {
      const res = await a.app.inject({ method: 'GET', url, headers: a.as('viewer') });
      if (res.statusCode !== 403 && res.statusCode !== 404 && res.statusCode !== 400) wrong.push(`${url} → ${res.statusCode} ${res.body.slice(0, 120)}`);
      if (res.statusCode < 300 || res.body.includes('"windows"')) wrong.push(`${url} answered: ${res.body.slice(0, 120)}`);
    }
    // The same spellings as the officer: the route answers where the router takes the spelling as its URL.
    const officer = await a.app.inject({ method: 'GET', url: '/v1/maintenance/', headers: a.as('officer') });
    expect(officer.statusCode).toBe(200);
    expect(wrong).toEqual([]);
  });

  it('refuses a revoked, expired or unknown token on every non-public route with 401', async () => {
    const revoked = a.ctx.tokens.create({ role: 'officer', name: 'revoked officer (roles test)' });
    a.ctx.tokens.revoke(revoked.row.id);
    const expired = a.ctx.tokens.create({ role: 'officer', name: 'expired officer (roles test)', expiresAt: a.ctx.now() + 1000 });
    const unknown = 'kw_' + 'Q'.repeat(51);
    // The expired token is asked of an app whose clock is past its end.
    const later = await buildApp({ ...a.ctx, now: () => Date.now() + 2000 });
    const wrong: string[] = [];
    let from = 0;
    try {
      for (const r of a.app.routeTable) {
        const row = rowOf(r.method, r.url);
        if (!row || row.roles === 'public' || row.page) continue;
        const req = requestOf(row, r.url, s);
        for (const [what, token, app] of [['revoked', revoked.token, a.app], ['unknown', unknown, a.app], ['expired', expired.token, later]] as const) {
          // Each from an address of its own: refused tokens are counted per address (30 a minute, then 429 for all).
          const res = await app.inject({ method: r.method as 'GET' | 'POST', url: req.url, remoteAddress: `127.1.${++from >> 8}.${from & 255}`, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(r.method === 'POST' ? { payload: JSON.stringify(req.body ?? {}) } : {}) });
          if (res.statusCode !== 401 || !String(res.json().message).includes(what)) wrong.push(`${what} token: ${r.method} ${req.url} → ${res.statusCode} ${res.body.slice(0, 120)}`);
        }
      }
    } finally {
      await later.close();
    }
    expect(wrong).toEqual([]);
  });
});

// ---------------------------------------------------------------- the school token's walls

/** Where an identifier of OTHER_SCHOOL shows in a text (whole identifiers only: 10.36.2.1 is not in 10.36.2.10). */
function leaks(text: string, ids: readonly string[]): string[] {
  const found: string[] = [];
  for (const id of ids) {
    const esc = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (new RegExp(`(?<![\\w.])${esc}(?![\\w]|\\.\\d)`, 'u').test(text)) found.push(id);
  }
  return found;
}

describe("a school token's walls", () => {
  let base = '';
  let app: App;
  beforeAll(async () => {
    app = await a.another();
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  async function get(path: string, who: Who = 'school') {
    const res = await fetch(base + path, { headers: who === 'none' ? {} : { authorization: `Bearer ${a.tokens[who]}` }, redirect: 'manual' });
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
  }

  /** Every way a school token might reach OTHER_SCHOOL through a route it may call. */
  function attempts(): { path: string; expect?: number | number[] }[] {
    const o = OTHER_SCHOOL;
    const oth = a.config.schools.find((x) => x.code === o)!;
    const od = oth.devices.map((d) => d.id);
    const p = s.period;
    const list: { path: string; expect?: number | number[] }[] = [];
    // Lists and views with another school named in the query, twice, or beside the own one.
    for (const route of ['/v1/status', '/v1/schools', '/v1/devices', '/v1/problems', '/v1/incidents']) {
      list.push({ path: route });
      list.push({ path: `${route}?school=${o}`, ...(route === '/v1/devices' ? { expect: 403 } : {}) });
      list.push({ path: `${route}?school=${SCHOOL}&school=${o}` });
      list.push({ path: `${route}?school[]=${o}` });
      list.push({ path: `${route}?device=${od[0]}` });
      for (const paging of ['offset=0&limit=1000', 'limit=1', 'offset=1&limit=1', 'offset=5&limit=2', 'offset=100000', 'page=2', 'cursor=0']) list.push({ path: `${route}?${paging}` });
      list.push({ path: `${route}?school=${o}&offset=0&limit=1000` });
      for (const format of ['csv', 'html', 'ndjson']) {
        list.push({ path: `${route}?format=${format}` });
        list.push({ path: `${route}?format=${format}&school=${o}` });
      }
    }
    // One school: the own one answers, another is refused (403); tricks around the code are no way in.
    list.push({ path: `/v1/schools/${SCHOOL}`, expect: 200 });
    list.push({ path: `/v1/schools/${o}`, expect: 403 });
    for (const trick of [`${o}?school=${SCHOOL}`, `${SCHOOL}%2F..%2F${o}`, `${o}%00`, `${o}/`, ` ${o}`, `${SCHOOL}?code=${o}`]) list.push({ path: `/v1/schools/${trick}` });
    // Devices: another school's device is answered as if it did not exist (404); so are its metrics.
    for (const d of od) {
      list.push({ path: `/v1/devices/${encodeURIComponent(d)}`, expect: 404 });
      list.push({ path: `/v1/devices/${encodeURIComponent(d)}/metrics`, expect: 404 });
      list.push({ path: `/v1/devices/${encodeURIComponent(d)}/metrics?measurement=interface&from=${encodeURIComponent(s.from)}`, expect: [400, 404] });
    }
    list.push({ path: `/v1/devices/${encodeURIComponent(s.ownDevice)}?school=${o}` });
    list.push({ path: `/v1/devices/${encodeURIComponent(s.ownDevice)}/metrics?device=${od[0]}` });
    list.push({ path: `/v1/incidents?device=${od[0]}&school=${SCHOOL}` });
    // Reports in every format, with the other school asked for or not.
    for (const format of ['json', 'csv', 'html']) {
      list.push({ path: `/v1/reports?period=${p}&format=${format}` });
      list.push({ path: `/v1/reports?period=${p}&format=${format}&school=${SCHOOL}` });
      list.push({ path: `/v1/reports?period=${p}&format=${format}&school=${o}`, expect: [403] });
      list.push({ path: `/v1/reports?period=${p}&format=${format}&school=${SCHOOL}&school=${o}` });
    }
    return list;
  }

  it('never answers anything of another school, through parameters, paging or CSV/HTML', async () => {
    const wrong: string[] = [];
    let answered = 0;
    for (const t of attempts()) {
      const r = await get(t.path);
      if (r.status === 200) answered++;
      const cell = `GET ${t.path} → ${r.status} (${r.type}) ${r.body.slice(0, 160)}`;
      if (t.expect !== undefined && !([] as number[]).concat(t.expect).includes(r.status)) wrong.push(`expected ${JSON.stringify(t.expect)}: ${cell}`);
      if (r.status >= 500) wrong.push(`failed: ${cell}`);
      // A 4xx may echo what the request itself said (the URL it asked for); nothing it did not say.
      const asked = decodeURIComponent(t.path);
      const allowedEcho = r.status >= 400 ? other.texts.filter((x) => asked.includes(x)) : [];
      const found = leaks(r.body, other.texts).filter((x) => !allowedEcho.includes(x));
      if (found.length > 0) wrong.push(`carries ${JSON.stringify(found)}: ${cell}`);
    }
    expect(wrong).toEqual([]);
    // The walls are tested on answers, not only on refusals: the own school's routes answer.
    expect(answered).toBeGreaterThan(0);
  }, 120_000);

  it("answers another school's device exactly as a device that does not exist", async () => {
    const od = a.config.schools.find((x) => x.code === OTHER_SCHOOL)!.devices[0]!.id;
    const ghost = `${SCHOOL}-no-such-device`;
    for (const suffix of ['', '/metrics']) {
      const own = await get(`/v1/devices/${encodeURIComponent(s.ownDevice)}${suffix}`);
      expect(own.status, `the own device answers: ${own.body.slice(0, 200)}`).toBe(200);
      const theirs = await get(`/v1/devices/${encodeURIComponent(od)}${suffix}`);
      const none = await get(`/v1/devices/${encodeURIComponent(ghost)}${suffix}`);
      expect(theirs.status).toBe(404);
      expect(none.status).toBe(404);
      expect(theirs.body.split(od).join('ID')).toBe(none.body.split(ghost).join('ID'));
    }
  });

  it('the officer and the viewer see other schools (the walls are the school token\'s, and the check can see a leak)', async () => {
    const officer = await get('/v1/schools', 'officer');
    const viewer = await get('/v1/status', 'viewer');
    const incidents = await get(`/v1/incidents?school=${OTHER_SCHOOL}&limit=1000`, 'officer');
    const problems = await get('/v1/problems', 'officer');
    const wrong: string[] = [];
    for (const [what, r] of [['incidents', incidents], ['problems', problems]] as const) {
      const oth = a.config.schools.find((x) => x.code === OTHER_SCHOOL)!;
      if (r.status !== 200 || leaks(r.body, oth.devices.map((d) => d.id)).length === 0) wrong.push(`officer ${what} → ${r.status} ${r.body.slice(0, 200)}`);
    }
    if (officer.status !== 200 || leaks(officer.body, [OTHER_SCHOOL]).length === 0) wrong.push(`officer /v1/schools → ${officer.status} ${officer.body.slice(0, 200)}`);
    if (viewer.status !== 200 || leaks(viewer.body, [OTHER_SCHOOL]).length === 0) wrong.push(`viewer /v1/status → ${viewer.status} ${viewer.body.slice(0, 200)}`);
    expect(wrong).toEqual([]);
  });
});

function norm(roles: readonly Role[] | 'public' | null): string[] | string | null {
  return roles === null || roles === 'public' ? roles : [...roles].sort();
}
