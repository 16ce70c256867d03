// The auditor's side of the API on a real archive (filled through the
// archive's own append path and sealed) beside a real simulated area:
// search (JSON, NDJSON, CSV; paged, cut at the limit, streamed in bounded
// memory), who had an address, verification, the evidence package (checked
// by its own verify.mjs), the access journal; journal first (503 and
// nothing when it cannot be written); other roles refused.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startApiArea, type ApiArea } from './area.ts';
import { fillArchive, FORMULA_USER, BULK_IP, type TestArchive } from './auditor-archive.ts';
import { readJournalRows } from '../../archive/journal.ts';
import { tempDir } from '../helpers/peers.ts';

const exec = promisify(execFile);
const BULK = Number(process.env.KW_API_BULK_ROWS ?? 200_000);
const store = tempDir('api-auditor');
let arc: TestArchive;
let a: ApiArea;

beforeAll(async () => {
  arc = await fillArchive(store.path, { bulk: BULK });
  a = await startApiArea({ octet: 175, rounds: 1, extraSettings: { traffic: arc.settings, api: { max_rows: 250_000 } } });
}, 300_000);
afterAll(async () => {
  await a?.close();
  store.remove();
});

const get = (url: string, role: Parameters<ApiArea['as']>[0] = 'auditor') => a.app.inject({ method: 'GET', url, headers: a.as(role) });
const journal = () => readJournalRows(arc.dir) ?? [];
const DAY = 'from=2026-06-03&to=2026-06-04';

describe('traffic search', () => {
  it('answers JSON with the rows, in time order, and says nothing was cut', async () => {
    const r = await get(`/v1/traffic/search?ip=10.23.4.5&${DAY}`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['x-klaiwatch-truncated']).toBe('false');
    const j = r.json();
    expect(j.rows).toHaveLength(6);
    expect(j.rows.map((x: { parser: string }) => x.parser)).toEqual(['isc-dhcp', 'radius-acct', 'isc-dhcp', 'mikrotik-firewall', 'radius-acct', 'isc-dhcp']);
    expect(j).toMatchObject({ rows_returned: 6, truncated: false, next_offset: null, missing_segments: [], altered_segments: [] });
  });

  it('pages: a cut answer says so in headers and its last fields, and the next page continues without overlap', async () => {
    const p1 = await get(`/v1/traffic/search?ip=10.23.4.5&${DAY}&limit=4`);
    expect(p1.headers['x-klaiwatch-truncated']).toBe('true');
    expect(p1.headers['x-klaiwatch-next-offset']).toBe('4');
    expect(p1.json()).toMatchObject({ rows_returned: 4, truncated: true, next_offset: 4 });
    const p2 = await get(`/v1/traffic/search?ip=10.23.4.5&${DAY}&limit=4&offset=4`);
    expect(p2.json()).toMatchObject({ rows_returned: 2, truncated: false, next_offset: null });
    const all = (await get(`/v1/traffic/search?ip=10.23.4.5&${DAY}`)).json().rows.map((x: { raw: string }) => x.raw);
    expect([...p1.json().rows, ...p2.json().rows].map((x: { raw: string }) => x.raw)).toEqual(all);
  });

  it('NDJSON: one row a line and an _end line; records not yet sealed are in the answer', async () => {
    const r = await get('/v1/traffic/search?ip=10.23.4.9&format=ndjson');
    expect(r.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = r.body.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ src_ip: '10.23.4.9', parser: 'isc-dhcp' });
    expect(lines[1]._end).toMatchObject({ rows_returned: 1, from_wal: 1, truncated: false });
  });

  it('CSV: the CLI\'s CSV, a formula-like cell gets a quote in front', async () => {
    const r = await get('/v1/traffic/search?ip=10.23.4.7&format=csv');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="traffic-.*\.csv"$/);
    const lines = r.body.replace(/^\ufeff/, '').trimEnd().split('\r\n');
    expect(lines[0]).toMatch(/^recv_ms,dev_ms,kind,parser,exporter,/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`"'${FORMULA_USER.replace(/"/g, '""')}"`);
    expect(lines[1]).not.toMatch(/,=HYPERLINK|,"=HYPERLINK/);
  });

  it('no match: 200, zero rows and a message (JSON, NDJSON and CSV), journalled as "no records"', async () => {
    const r = await get('/v1/traffic/search?ip=10.99.99.99');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ rows: [], rows_returned: 0, message: expect.stringMatching(/^no records: nothing in the archive matches/) });
    const n = await get('/v1/traffic/search?ip=10.99.99.99&format=ndjson');
    expect(JSON.parse(n.body.trim())._end.message).toMatch(/^no records/);
    const c = await get('/v1/traffic/search?ip=10.99.99.99&format=csv');
    expect(c.body.replace(/^\ufeff/, '').trimEnd().split('\r\n')).toHaveLength(1);
    const rows = journal().filter((x) => x.params.includes('10.99.99.99'));
    expect(rows.filter((x) => x.outcome === 'no records')).toHaveLength(3);
  });

  it('names the parameter that is wrong (400), and journals the refusal', async () => {
    const cases: [string, RegExp][] = [
      ['ip=10.23.4', /^querystring\.ip: "10\.23\.4" is not an IPv4 or IPv6 address/],
      ['ip=10.0.0.1&from=yesterday', /^querystring\.from: .*expected a time such as 2026-06-03T09:41/],
      ['ip=10.0.0.1&proto=tcpp', /^querystring\.proto: "tcpp": expected tcp, udp, icmp/],
      ['ip=10.0.0.1&port=70000', /^querystring\.port: /],
      ['ip=10.0.0.1&limit=250001', /^querystring\.limit: /],
      ['ip=10.0.0.1&format=xlsx', /^querystring\.format: /],
      ['side=src', /say what to look for/],
    ];
    for (const [qs, msg] of cases) {
      const r = await get(`/v1/traffic/search?${qs}`);
      expect(r.statusCode, qs).toBe(400);
      expect(r.json().error).toBe('bad_request');
      expect(r.json().message, qs).toMatch(msg);
      expect(r.body).not.toMatch(/\bat \S+:\d+/);
    }
    expect(journal().filter((x) => x.outcome?.startsWith('refused: ') && x.params.includes('tcpp'))).toHaveLength(1);
  });

  it(`streams a large answer (${BULK} rows as NDJSON over real HTTP) while the heap grows far less than the answer`, async () => {
    const app = await a.another();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    // What the heap holds (live, after a full collection), not the garbage not yet collected.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const live = () => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    const base = live();
    let peak = base;
    let sampled = 0;
    const t0 = Date.now();
    const res = await fetch(`http://127.0.0.1:${port}/v1/traffic/search?ip=${BULK_IP}&format=ndjson&limit=${BULK}`, { headers: a.as('auditor') });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-klaiwatch-truncated')).toBe('false');
    // Read and dropped as it comes: the client holds a chunk, not the answer.
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let bytes = 0;
    let lines = 0;
    let tail = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      const s = tail + dec.decode(value, { stream: true });
      const cut = s.lastIndexOf('\n');
      for (let i = s.indexOf('\n'); i !== -1 && i <= cut; i = s.indexOf('\n', i + 1)) lines++;
      tail = s.slice(cut + 1);
      // Every 4 MB taken: the live heap while the answer is in flight.
      if (bytes - sampled > 4_000_000) {
        sampled = bytes;
        peak = Math.max(peak, live());
      }
    }
    const ms = Date.now() - t0;
    const growth = peak - base;
    console.log(`streamed ${lines - 1} rows, ${(bytes / 1e6).toFixed(1)} MB NDJSON in ${ms} ms (with a full GC every 4 MB); live heap grew at most ${(growth / 1e6).toFixed(1)} MB`);
    expect(lines).toBe(BULK + 1);
    expect(JSON.parse(tail || '{}')).toEqual({});
    // The answer is ~600 bytes a row; the heap holds a chunk or a few (DuckDB's ~2,000 rows, ~1.3 MB as text), never the answer.
    expect(growth).toBeLessThan(Math.max(bytes / 8, 16_000_000));
    await app.close();
  }, 240_000);

  it('a limit below the answer cuts it and says where to go on (NDJSON)', async () => {
    const r = await get(`/v1/traffic/search?ip=${BULK_IP}&format=ndjson&limit=3000&offset=1000`);
    expect(r.headers['x-klaiwatch-truncated']).toBe('true');
    expect(r.headers['x-klaiwatch-next-offset']).toBe('4000');
    const lines = r.body.trimEnd().split('\n');
    expect(lines).toHaveLength(3001);
    expect(JSON.parse(lines.at(-1)!)._end).toMatchObject({ rows_returned: 3000, truncated: true, next_offset: 4000 });
  }, 60_000);
});

describe('who had an address', () => {
  it('answers from the DHCP lease and the RADIUS session; through NAT with the port', async () => {
    const r = await get('/v1/traffic/who?ip=10.23.4.5&at=2026-06-03T09:41');
    expect(r.statusCode).toBe(200);
    const j = r.json();
    expect(j.leases).toMatchObject([{ mac: 'aa:bb:cc:dd:ee:01', client: 'ห้องคอม-01', source: 'isc-dhcp' }]);
    expect(j.sessions).toMatchObject([{ user: 'somchai', source: 'radius-acct' }]);
    expect(j.at_bangkok).toBe('2026-06-03T09:41:00.000+07:00');
    expect(j.message).toBeNull();
    const nat = (await get('/v1/traffic/who?ip=125.25.69.110&port=51000&at=2026-06-03T09:41')).json();
    expect(nat.nat).toMatchObject({ public: '125.25.69.110', port: 51000, inside: '10.23.4.5' });
    expect(nat.sessions).toMatchObject([{ user: 'somchai' }]);
  });

  it('nobody known: 200 and a message', async () => {
    const r = await get('/v1/traffic/who?ip=10.23.4.5&at=2026-06-03T07:00');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ leases: [], sessions: [], message: expect.stringMatching(/^nobody known/) });
    const bad = await get('/v1/traffic/who?ip=10.23.4.5&at=noon');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^querystring\.at: /);
    const missing = await get('/v1/traffic/who?at=2026-06-03T07:00');
    expect(missing.statusCode).toBe(400);
    expect(missing.json().message).toMatch(/^querystring\.ip: /);
  });
});

describe('verification and the evidence package', () => {
  it('verify: intact, the chain head; a second request within a minute is the same run (cached)', async () => {
    const r = await get('/v1/traffic/verify');
    expect(r.statusCode).toBe(200);
    const j = r.json();
    expect(j).toMatchObject({ ok: true, cached: false, public_key: arc.publicKey });
    expect(j.status).toMatch(/^intact/);
    expect(j.segments).toBeGreaterThan(0);
    const again = (await get('/v1/traffic/verify')).json();
    expect(again).toMatchObject({ cached: true, checked_at: j.checked_at });
  });

  it('evidence: a tar download with its SHA-256 in a header; its verify.mjs passes; the temporary file is gone', async () => {
    const r = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: a.as('auditor'), payload: { ip: '10.23.4.5', from: '2026-06-03', to: '2026-06-04', reference: 'หนังสือ สภ.ภูเขียว ที่ 0001/2569' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-tar');
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="evidence-.*\.tar"$/);
    expect(r.headers['x-klaiwatch-rows']).toBe('6');
    const sha = createHash('sha256').update(r.rawPayload).digest('hex');
    expect(r.headers['x-klaiwatch-sha256']).toBe(sha);
    const x = join(store.path, 'unpacked');
    mkdirSync(x);
    writeFileSync(join(x, 'package.tar'), r.rawPayload);
    await exec('tar', ['-xf', 'package.tar'], { cwd: x });
    const v = await exec(process.execPath, ['verify.mjs', '--public-key', arc.publicKey], { cwd: x });
    expect(v.stdout).toMatch(/\S/);
    const row = journal().find((j) => j.action === 'export' && j.result_sha256 === sha);
    expect(row).toMatchObject({ auditor: 'ผู้ตรวจสอบ (test)', outcome: 'ok', rows: 6 });
    // The temporary package went with the answer.
    expect(readdirSync(join(arc.dir, 'tmp')).filter((f) => f.startsWith('evidence-'))).toEqual([]);
  }, 60_000);

  it('evidence refused: no reference (400 naming it), a short one (400), another role (403)', async () => {
    const none = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: a.as('auditor'), payload: { ip: '10.23.4.5' } });
    expect(none.statusCode).toBe(400);
    expect(none.json().message).toMatch(/^body\.reference: /);
    const short = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: a.as('auditor'), payload: { ip: '10.23.4.5', reference: 'x' } });
    expect(short.statusCode).toBe(400);
    expect(short.json().message).toMatch(/^body\.reference: /);
    const officer = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: a.as('officer'), payload: { ip: '10.23.4.5', reference: 'หนังสือ 1' } });
    expect(officer.statusCode).toBe(403);
  });
});

describe('the access journal', () => {
  it('every request is a row with the token\'s id, name and role, written before the act\'s own row', async () => {
    const before = journal().length;
    await get('/v1/traffic/who?ip=10.23.4.6&at=2026-06-03T10:00');
    const rows = journal().slice(before);
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([
      ['who', 'requested'],
      ['who', 'ok'],
    ]);
    const id = a.ctx.tokens.list().find((t) => t.role === 'auditor')!.id;
    for (const r of rows) expect(r).toMatchObject({ auditor: 'ผู้ตรวจสอบ (test)', os_user: `api token ${id} (ผู้ตรวจสอบ (test), auditor)`, sudo_user: null });
    expect(JSON.parse(rows[0]!.params)).toMatchObject({ request: 'GET /v1/traffic/who', client: '127.0.0.1', ip: '10.23.4.6' });
    expect(rows.every((r) => r.sig !== null)).toBe(true);
  });

  it('GET /v1/traffic/journal: auditors and officers read it, paged; the read itself is journalled', async () => {
    const r = await get('/v1/traffic/journal?limit=2');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ truncated: true, next_after: 2 });
    expect(r.json().rows.map((x: { id: number }) => x.id)).toEqual([1, 2]);
    const o = await get('/v1/traffic/journal?from=2026-01-01', 'officer');
    expect(o.statusCode).toBe(200);
    const last = o.json().rows.at(-1);
    expect(last).toMatchObject({ action: 'journal', outcome: 'requested', os_user: expect.stringMatching(/, officer\)$/) });
    const empty = await get('/v1/traffic/journal?to=2020-01-01');
    expect(empty.json()).toMatchObject({ rows: [], message: 'no journal rows in that range' });
  });

  it('journal unwritable (its file replaced by a folder): 503 { error: unavailable } and no data', async () => {
    const file = join(arc.dir, 'journal.sqlite');
    const aside = join(store.path, 'journal-aside');
    mkdirSync(aside);
    for (const s of ['', '-wal', '-shm']) if (existsSync(file + s)) renameSync(file + s, join(aside, `j${s}`));
    mkdirSync(file);
    try {
      for (const url of [`/v1/traffic/search?ip=10.23.4.5&${DAY}`, '/v1/traffic/search?ip=10.23.4.5&format=csv', '/v1/traffic/who?ip=10.23.4.5&at=2026-06-03T09:41', '/v1/traffic/verify', '/v1/traffic/journal']) {
        const r = await get(url);
        expect(r.statusCode, url).toBe(503);
        expect(r.json()).toEqual({ error: 'unavailable', message: expect.stringMatching(/^the access journal cannot be written: /) });
        expect(r.body).not.toMatch(/10\.23\.4\.5|aa:bb:cc/);
      }
      const e = await a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: a.as('auditor'), payload: { ip: '10.23.4.5', reference: 'หนังสือ 1' } });
      expect(e.statusCode).toBe(503);
    } finally {
      rmSync(file, { recursive: true });
      for (const s of ['', '-wal', '-shm']) if (existsSync(join(aside, `j${s}`))) renameSync(join(aside, `j${s}`), file + s);
    }
    expect((await get(`/v1/traffic/search?ip=10.23.4.5&${DAY}`)).statusCode).toBe(200);
  });

  it('journal locked by another writer: 503 after its busy timeout, no data', async () => {
    const db = new DatabaseSync(join(arc.dir, 'journal.sqlite'));
    db.exec('BEGIN EXCLUSIVE');
    try {
      const before = journal().length;
      const r = await get(`/v1/traffic/search?ip=10.23.4.5&${DAY}&format=ndjson`);
      expect(r.statusCode).toBe(503);
      expect(r.json().message).toMatch(/^the access journal cannot be written: .*locked/);
      db.exec('ROLLBACK');
      expect(journal().length).toBe(before);
    } finally {
      if (db.isTransaction) db.exec('ROLLBACK');
      db.close();
    }
  }, 60_000);
});

describe('who may', () => {
  it('refuses traffic data to school, officer and viewer tokens (403) and to no token (401)', async () => {
    for (const url of ['/v1/traffic/search?ip=10.23.4.5', '/v1/traffic/who?ip=10.23.4.5&at=2026-06-03T09:41', '/v1/traffic/verify']) {
      for (const role of ['school', 'officer', 'viewer'] as const) {
        const r = await get(url, role);
        expect(r.statusCode, `${role} ${url}`).toBe(403);
        expect(r.body).not.toMatch(/10\.23\.4\.5"|aa:bb/);
      }
      expect((await get(url, 'none')).statusCode).toBe(401);
    }
    for (const role of ['school', 'viewer'] as const) expect((await get('/v1/traffic/journal', role)).statusCode).toBe(403);
  });
});
