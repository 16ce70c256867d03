// Issue 17's hostile review of the auditor's side, each finding on a real
// archive (filled through the archive's own append path: sealed segments
// and a record still in the write-ahead log) beside a real simulated area,
// over real HTTP where it matters:
// - an evidence package holds only rows its query means (a row in the log
//   came along whatever the port or time range said);
// - at most TRAFFIC_RUNNING queries read the archive at once, TRAFFIC_WAITING
//   wait, the next gets 503 with Retry-After (and is journalled);
// - an argument's error names the request's field, never the CLI's option;
// - who's answer speaks as search does (snake_case, from_wal, missing_segments);
// - an export's journal row names the package and its SHA-256, not a path;
// - a search page whose answer is larger than api.max_rows links to every part.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import { startApiArea, type ApiArea } from './area.ts';
import { fillArchive, BULK_IP, type TestArchive } from './auditor-archive.ts';
import { readJournalRows } from '../../archive/journal.ts';
import { TRAFFIC_RUNNING, TRAFFIC_WAITING, trafficLoad, trafficTimes } from '../../api/routes/auditor/traffic.ts';
import { tempDir } from '../helpers/peers.ts';

const exec = promisify(execFile);
/** api.max_rows here: below the bulk rows, so one answer is more than one download. */
const MAX_ROWS = 18_000;
const BULK = 40_000;
const store = tempDir('api-auditor-review');
let arc: TestArchive;
let a: ApiArea;
let base: string;

beforeAll(async () => {
  arc = await fillArchive(store.path, { bulk: BULK });
  a = await startApiArea({ octet: 182, rounds: 1, extraSettings: { traffic: arc.settings, api: { max_rows: MAX_ROWS } } });
  await a.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(a.app.server.address() as { port: number }).port}`;
}, 300_000);
afterAll(async () => {
  await a?.close();
  store.remove();
});

const journal = () => readJournalRows(arc.dir) ?? [];
const post = (payload: Record<string, unknown>) => a.app.inject({ method: 'POST', url: '/v1/traffic/evidence', headers: a.as('auditor'), payload });

/** The package's rows.json (the tar unpacked into a folder of its own). */
async function packageRows(body: Buffer, name: string): Promise<Record<string, unknown>[]> {
  const x = join(store.path, name);
  mkdirSync(x);
  writeFileSync(join(x, 'package.tar'), body);
  await exec('tar', ['-xf', 'package.tar'], { cwd: x });
  return JSON.parse(readFileSync(join(x, 'rows.json'), 'utf8')) as Record<string, unknown>[];
}

describe('the evidence package holds only what its query means (rows still in the write-ahead log too)', () => {
  it("the review's export: the log's row of today is not in a package of 3 June with port 1", async () => {
    // 10.23.4.9's only record is in the log, received now.
    const wal = await a.app.inject({ method: 'GET', url: '/v1/traffic/search?ip=10.23.4.9', headers: a.as('auditor') });
    expect(wal.json()).toMatchObject({ rows_returned: 1, from_wal: 1 });
    for (const [i, q] of [
      { ip: '10.23.4.9', from: '2026-06-03', to: '2026-06-04', port: 1 },
      // Its device time is 3 June 14:00 (the syslog header), its receive time today: 4 June is neither.
      { ip: '10.23.4.9', from: '2026-06-04', to: '2026-06-05' },
      { ip: '10.23.4.9', port: 1 },
      { ip: '10.23.4.9', proto: 'tcp' },
      { ip: '10.23.4.9', user: 'somchai' },
      { ip: '10.23.4.9', mac: 'aa:bb:cc:dd:ee:01' },
      { ip: '10.23.4.9', peer: '10.23.4.5' },
      { ip: '10.23.4.9', school: '1036090101' },
    ].entries()) {
      const r = await post({ ...q, reference: 'test order 1' });
      expect(r.statusCode, JSON.stringify(q)).toBe(200);
      expect(r.headers['x-klaiwatch-rows'], JSON.stringify(q)).toBe('0');
      expect(await packageRows(r.rawPayload, `none-${i}`), JSON.stringify(q)).toEqual([]);
    }
    // The row itself is exported when the query means it.
    const yes = await post({ ip: '10.23.4.9', mac: 'aa:bb:cc:dd:ee:09', reference: 'test order 2' });
    expect((await packageRows(yes.rawPayload, 'the-row')).map((r) => r.src_ip)).toEqual(['10.23.4.9']);
  }, 120_000);

  it('sealed rows: a package of ip with port 443 holds only rows with that port', async () => {
    const r = await post({ ip: '10.23.4.5', from: '2026-06-03', to: '2026-06-04', port: 443, reference: 'test order 3' });
    const rows = await packageRows(r.rawPayload, 'port-443');
    expect(rows.length).toBe(1);
    for (const x of rows) expect([x.src_port, x.dst_port, x.nat_port]).toContain(443);
  }, 60_000);
});

/** A streamed search over real HTTP whose answer is not read (the client pauses): it holds its turn. */
function held(url: string): Promise<{ res: IncomingMessage; req: ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${url}`, { headers: a.as('auditor') }, (res) => {
      res.pause();
      resolve({ res, req });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('traffic queries at once are bounded', () => {
  it(`${TRAFFIC_RUNNING} run, ${TRAFFIC_WAITING} wait, the next is 503 with Retry-After (journalled); the waiting are answered once a turn is free`, async () => {
    expect(trafficLoad()).toEqual({ running: 0, waiting: 0 });
    // Two large answers (NDJSON, ~600 bytes a row) that the client does not read: their turns stay taken.
    const big = `/v1/traffic/search?ip=${BULK_IP}&format=ndjson&limit=${MAX_ROWS}`;
    const holders = [];
    for (let i = 0; i < TRAFFIC_RUNNING; i++) holders.push(await held(big));
    expect(trafficLoad().running).toBe(TRAFFIC_RUNNING);
    // Small ones wait for a turn (searches and who had an address).
    const waiting = Array.from({ length: TRAFFIC_WAITING }, (_, i) =>
      fetch(`${base}${i % 2 ? '/v1/traffic/who?ip=10.23.4.5&at=2026-06-03T09:41' : '/v1/traffic/search?ip=10.23.4.5&from=2026-06-03&to=2026-06-04'}`, { headers: a.as('auditor') }),
    );
    const t0 = Date.now();
    while (trafficLoad().waiting < TRAFFIC_WAITING && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
    expect(trafficLoad()).toEqual({ running: TRAFFIC_RUNNING, waiting: TRAFFIC_WAITING });
    // One more: refused at once, saying why and when to come back.
    const busy = await fetch(`${base}/v1/traffic/search?ip=10.23.4.6`, { headers: a.as('auditor') });
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await busy.json()).toEqual({ error: 'unavailable', message: expect.stringMatching(/busy/) });
    expect(journal().filter((r) => r.params.includes('10.23.4.6') && r.outcome?.startsWith('refused: the traffic archive is busy'))).toHaveLength(1);
    // The holders go on (read to the end): every waiting request is answered.
    const lines = holders.map(
      ({ res }) =>
        new Promise<number>((resolve) => {
          let n = 0;
          res.on('data', (b: Buffer) => {
            for (const c of b) if (c === 10) n++;
          });
          res.on('end', () => resolve(n));
          res.resume();
        }),
    );
    expect(await Promise.all(lines)).toEqual(holders.map(() => MAX_ROWS + 1));
    const answers = await Promise.all(waiting);
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
    await Promise.all(answers.map((r) => r.arrayBuffer()));
    expect(trafficLoad()).toEqual({ running: 0, waiting: 0 });
  }, 120_000);

  it('clients that stop reading are cut after the stall time (their turns freed); a waiter waits at most its time, then 503', async () => {
    const saved = { ...trafficTimes };
    trafficTimes.stallMs = 2_000;
    trafficTimes.waitMs = 1_000;
    try {
      const holders = [];
      for (let i = 0; i < TRAFFIC_RUNNING; i++) holders.push(await held(`/v1/traffic/search?ip=${BULK_IP}&format=ndjson&limit=${MAX_ROWS}`));
      expect(trafficLoad().running).toBe(TRAFFIC_RUNNING);
      // A waiter that the stalled ones keep out: refused after its wait, not held forever; the queue is empty again.
      const t0 = Date.now();
      const waiter = await fetch(`${base}/v1/traffic/search?ip=10.23.4.5&from=2026-06-03&to=2026-06-04`, { headers: a.as('auditor') });
      expect(waiter.status).toBe(503);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(trafficLoad().waiting).toBe(0);
      // The stalled answers are cut: their turns come back without the clients doing anything.
      while (trafficLoad().running > 0 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
      expect(trafficLoad()).toEqual({ running: 0, waiting: 0 });
      const ok = await fetch(`${base}/v1/traffic/search?ip=10.23.4.5&from=2026-06-03&to=2026-06-04`, { headers: a.as('auditor') });
      expect(ok.status).toBe(200);
      for (const h of holders) h.req.destroy();
    } finally {
      Object.assign(trafficTimes, saved);
    }
  }, 60_000);

  it('a client that goes away gives its turn back', async () => {
    const { req } = await held(`/v1/traffic/search?ip=${BULK_IP}&format=ndjson&limit=${MAX_ROWS}`);
    expect(trafficLoad().running).toBe(1);
    req.destroy();
    const t0 = Date.now();
    while (trafficLoad().running > 0 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20));
    expect(trafficLoad()).toEqual({ running: 0, waiting: 0 });
  }, 60_000);
});

describe("errors name the request's field, never the CLI's option", () => {
  it('a short reference: 400 naming body.reference (the schema: minLength 3); a blank one likewise', async () => {
    const short = await post({ ip: '10.23.4.5', reference: 'x' });
    expect(short.statusCode).toBe(400);
    expect(short.json().message).toMatch(/^body\.reference: /);
    const blank = await post({ ip: '10.23.4.5', reference: '     ' });
    expect(blank.statusCode).toBe(400);
    expect(blank.json()).toEqual({ error: 'bad_request', message: 'body.reference: must name the order or letter the export answers (at least 3 characters)' });
    for (const r of [short, blank]) expect(r.body).not.toMatch(/--/);
    const doc = (await a.app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(doc.paths['/v1/traffic/evidence'].post.requestBody.content['application/json'].schema.properties.reference.minLength).toBe(3);
    // The page's form says the same.
    const page = await a.app.inject({ method: 'POST', url: '/auditor/evidence', payload: 'ip=10.23.4.5&reference=%20%20%20%20', headers: { authorization: a.as('auditor').authorization, 'content-type': 'application/x-www-form-urlencoded', origin: base } });
    expect(page.statusCode).toBe(400);
    expect(page.body).toContain('body.reference: must name the order');
    expect(page.body).not.toContain('--reference');
  });

  it('every argument error the archive raises reaches the API in its words', async () => {
    const { archiveError, apiWording } = await import('../../api/routes/auditor/traffic.ts');
    const { whereClause, QueryError } = await import('../../archive/query.ts');
    const { AuditError } = await import('../../archive/auditor.ts');
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err;
      }
      throw new Error('did not throw');
    };
    const cases: [unknown, string][] = [
      [thrown(() => whereClause({ ip: '10.0.0' })), 'querystring.ip: "10.0.0" is not an IPv4 or IPv6 address'],
      [thrown(() => whereClause({ peer: 'x' })), 'querystring.peer: "x" is not an IPv4 or IPv6 address'],
      [thrown(() => whereClause({ port: 70000 })), 'querystring.port: 70000 is not a port number (0-65535)'],
      [thrown(() => whereClause({ from: 2, to: 1 })), 'querystring.to: is not after from'],
      [new QueryError('--mac zz is odd'), 'querystring.mac zz is odd'],
      [new AuditError('export needs --reference and --ip'), 'querystring.reference and querystring.ip'],
    ];
    for (const [err, want] of cases) {
      const e = archiveError(err, 'querystring') as Error;
      expect(e.message).toContain(want);
      expect(e.message).not.toMatch(/(^|\s)--/);
    }
    // The CLI keeps its own words.
    expect((thrown(() => whereClause({ to: 1, from: 2 })) as Error).message).toBe('--to is not after --from');
    expect(apiWording('(--public-key x)', 'body')).toBe('(body.public_key x)');
  });
});

describe("who's answer in search's words", () => {
  it('snake_case: at_ms, from_wal, missing_segments, altered_segments, inside_port, from_ms/to_ms', async () => {
    const r = await a.app.inject({ method: 'GET', url: '/v1/traffic/who?ip=125.25.69.110&port=51000&at=2026-06-03T09:41', headers: a.as('auditor') });
    expect(r.statusCode).toBe(200);
    const j = r.json();
    expect(j).toMatchObject({ ip: '10.23.4.5', at_ms: Date.parse('2026-06-03T09:41:00+07:00'), at_bangkok: '2026-06-03T09:41:00.000+07:00', from_wal: 0, missing_segments: [], altered_segments: [] });
    expect(j.nat).toMatchObject({ public: '125.25.69.110', port: 51000, inside: '10.23.4.5', inside_port: 51000 });
    expect(j.sessions[0]).toMatchObject({ user: 'somchai', from_ms: Date.parse('2026-06-03T08:05:00+07:00'), from_bangkok: '2026-06-03T08:05:00.000+07:00' });
    const camel = (o: unknown): string[] => (o && typeof o === 'object' ? Object.entries(o).flatMap(([k, v]) => [...(/[A-Z]/.test(k) ? [k] : []), ...camel(v)]) : []);
    expect(camel(j)).toEqual([]);
    for (const k of ['at', 'fromWal', 'missing', 'altered']) expect(j).not.toHaveProperty(k);
  });
});

describe("an export's journal row", () => {
  it("names the package and its SHA-256, never the server's temporary path", async () => {
    const r = await post({ ip: '10.23.4.5', from: '2026-06-03', to: '2026-06-04', reference: 'หนังสือ ที่ 0003/2569' });
    expect(r.statusCode).toBe(200);
    const sha = createHash('sha256').update(r.rawPayload).digest('hex');
    const name = /filename="([^"]+)"/.exec(String(r.headers['content-disposition']))![1]!;
    const rows = journal().filter((x) => x.action === 'export' && x.params.includes('0003/2569'));
    expect(rows.map((x) => x.outcome)).toEqual(['requested', 'ok']);
    expect(JSON.parse(rows[1]!.params)).toMatchObject({ package: name, sha256: sha, reference: 'หนังสือ ที่ 0003/2569' });
    for (const x of rows) {
      expect(x.params).not.toMatch(/"file"|\/tmp\/|evidence\.tar/);
      expect(x.params).not.toContain(arc.dir);
    }
    // As an auditor or officer reads it through the API.
    const j = await a.app.inject({ method: 'GET', url: '/v1/traffic/journal?limit=10000', headers: a.as('officer') });
    expect(j.body).not.toContain(arc.dir);
    expect(j.body).not.toMatch(/"file\\?"/);
  }, 60_000);
});

describe('the search page: an answer larger than one download', () => {
  const page = (qs: string) => a.app.inject({ method: 'GET', url: `/auditor/search?${qs}`, headers: { authorization: a.as('auditor').authorization, accept: 'text/html' } });

  it(`says it is cut at api.max_rows (${MAX_ROWS}) and links to every part by offset`, async () => {
    const r = await page(`ip=${BULK_IP}`);
    expect(r.statusCode).toBe(200);
    expect(r.body).toContain(`จาก ${BULK}`);
    expect(r.body).toContain(`ผลมี ${BULK} แถว เกินที่ดาวน์โหลดได้ในครั้งเดียว (${MAX_ROWS} แถว, api.max_rows)`);
    const links = [...r.body.matchAll(/href="(\/v1\/traffic\/search\?[^"]+format=csv[^"]*)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
    expect(links).toHaveLength(Math.ceil(BULK / MAX_ROWS));
    expect(links.map((l) => new URL(l, base).searchParams.get('offset') ?? '0')).toEqual(['0', String(MAX_ROWS), String(2 * MAX_ROWS)]);
    // The parts, fetched one after another, are the whole answer: no row twice, none left out.
    let total = 0;
    const seen = new Set<string>();
    for (const l of links) {
      const res = await fetch(`${base}${l.replace('format=csv', 'format=ndjson')}`, { headers: a.as('auditor') });
      const rows = (await res.text()).trimEnd().split('\n').slice(0, -1);
      total += rows.length;
      for (const x of rows) seen.add(x);
    }
    expect(total).toBe(BULK);
    expect(seen.size).toBe(BULK);
  }, 120_000);

  it('a small answer: one CSV and one NDJSON link, no parts', async () => {
    const r = await page('ip=10.23.4.5&from=2026-06-03T00%3A00&to=2026-06-04T00%3A00');
    expect(r.body).toContain('แถวที่ 1–6 จาก 6');
    expect(r.body).not.toContain('เกินที่ดาวน์โหลดได้');
    expect([...r.body.matchAll(/format=csv/g)]).toHaveLength(1);
  });
});
