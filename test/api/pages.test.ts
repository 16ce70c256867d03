// The auditor's Thai pages in headless Chromium (Debian's chromium through
// playwright-core) with JavaScript OFF in the browser: log in with an
// auditor token, search, who-had, download an evidence package and run its
// own verify.mjs on it; a screenshot of the search page with results goes
// to docs/auditor-search.png (the README shows it). Real HTTP on loopback,
// a real archive and a real simulated area.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { startApiArea, type ApiArea } from './area.ts';
import { fillArchive, MARKUP, type TestArchive } from './auditor-archive.ts';
import { readJournalRows } from '../../archive/journal.ts';
import { requireBinary, tempDir } from '../helpers/peers.ts';
import { PROJECT } from '../../sim/area.ts';

const exec = promisify(execFile);
const store = tempDir('api-pages');
let arc: TestArchive;
let a: ApiArea;
let browser: Browser;
let base: string;

beforeAll(async () => {
  await requireBinary('chromium', 'chromium');
  arc = await fillArchive(store.path);
  a = await startApiArea({ octet: 176, rounds: 1, extraSettings: { traffic: arc.settings } });
  await a.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(a.app.server.address() as { port: number }).port}`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 300_000);
afterAll(async () => {
  await browser?.close();
  await a?.close();
  store.remove();
});

/** A browser with JavaScript disabled, as the pages must work. */
async function noScript(): Promise<BrowserContext> {
  return browser.newContext({ javaScriptEnabled: false, acceptDownloads: true, locale: 'th-TH', viewport: { width: 1500, height: 900 } });
}

async function logIn(c: BrowserContext) {
  const page = await c.newPage();
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(`${base}/auditor/search`);
  // No session: the login form (303), not a 401.
  expect(new URL(page.url()).pathname).toBe('/auditor/login');
  await page.fill('input[name=token]', a.tokens.auditor);
  await page.click('button[type=submit]');
  expect(new URL(page.url()).pathname).toBe('/auditor/search');
  return { page, errors };
}

describe('the auditor\'s pages in Chromium, JavaScript off', () => {
  it('log in, search, see the rows in Thai time; the screenshot is written; the CSP is not broken', async () => {
    const c = await noScript();
    const { page, errors } = await logIn(c);
    await page.fill('input[name=ip]', '10.23.4.5');
    await page.fill('input[name=from]', '2026-06-03T00:00');
    await page.fill('input[name=to]', '2026-06-04T00:00');
    await page.click('form.filters button[type=submit]');
    const url = new URL(page.url());
    expect(url.pathname).toBe('/auditor/search');
    expect(url.searchParams.get('ip')).toBe('10.23.4.5');
    const rows = page.locator('table tbody tr');
    expect(await rows.count()).toBe(6);
    const text = await page.locator('main').innerText();
    expect(text).toContain('3 มิ.ย. 2569 08:00:05');
    expect(text).toContain('aa:bb:cc:dd:ee:01');
    expect(text).toContain('แถวที่ 1–6 จาก 6 (of 6) (ครบแล้ว: end)');
    // The download links carry the same query to the API (the session cookie goes with them).
    const csv = await page.locator('a', { hasText: 'CSV' }).getAttribute('href');
    expect(csv).toMatch(/^\/v1\/traffic\/search\?from=2026-06-03T00%3A00&to=2026-06-04T00%3A00&ip=10\.23\.4\.5&format=csv&limit=\d+$/);
    mkdirSync(join(PROJECT, 'docs'), { recursive: true });
    await page.screenshot({ path: join(PROJECT, 'docs', 'auditor-search.png'), fullPage: true });
    expect(readFileSync(join(PROJECT, 'docs', 'auditor-search.png')).subarray(1, 4).toString()).toBe('PNG');
    expect(errors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
    // The CSV link works with the cookie alone.
    const res = await c.request.get(`${base}${csv}`);
    expect(res.status()).toBe(200);
    expect((await res.text()).replace(/^\ufeff/, '').trimEnd().split('\r\n')).toHaveLength(7);
    // The page's own reads were journalled with the token's identity, first.
    const rowsJ = (readJournalRows(arc.dir) ?? []).filter((r) => r.params.includes('"page":true'));
    expect(rowsJ[0]).toMatchObject({ action: 'query', outcome: 'requested', auditor: 'ผู้ตรวจสอบ (test)', os_user: expect.stringMatching(/^api token \S+ \(ผู้ตรวจสอบ \(test\), auditor\)$/) });
    await c.close();
  }, 60_000);

  it('who had the address: the lease and the RADIUS user', async () => {
    const c = await noScript();
    const { page } = await logIn(c);
    await page.click('nav a[href="/auditor/who"]');
    await page.fill('input[name=ip]', '10.23.4.5');
    await page.fill('input[name=at]', '2026-06-03T09:41');
    await page.click('form.filters button[type=submit]');
    const text = await page.locator('main').innerText();
    expect(text).toContain('สัญญาเช่าที่อยู่ (DHCP lease)');
    expect(text).toContain('aa:bb:cc:dd:ee:01');
    expect(text).toContain('ห้องคอม-01');
    expect(text).toContain('somchai');
    expect(text).toContain('3 มิถุนายน 2569');
    await page.fill('input[name=at]', '2026-06-03T07:00');
    await page.click('form.filters button[type=submit]');
    expect(await page.locator('main').innerText()).toContain('ไม่พบผู้ใช้ (nobody known)');
    await c.close();
  }, 60_000);

  it('times to the second: every time input takes seconds (step 1), and 09:41:07 is sent and answered', async () => {
    const c = await noScript();
    const { page } = await logIn(c);
    for (const path of ['/auditor/search', '/auditor/who']) {
      await page.goto(`${base}${path}`);
      const steps = await page.locator('input[type=datetime-local]').evaluateAll((xs) => xs.map((x) => x.getAttribute('step')));
      expect(steps.length, path).toBeGreaterThan(0);
      expect(steps, path).toEqual(steps.map(() => '1'));
    }
    // Chromium refuses a value with seconds (step mismatch) on an input without step="1": the form would not be sent.
    await page.goto(`${base}/auditor/who`);
    await page.fill('input[name=ip]', '10.23.4.5');
    await page.fill('input[name=at]', '2026-06-03T09:41:07');
    expect(await page.locator('input[name=at]').evaluate((x) => (x as HTMLInputElement).validity.valid)).toBe(true);
    await page.click('form.filters button[type=submit]');
    expect(new URL(page.url()).searchParams.get('at')).toBe('2026-06-03T09:41:07');
    const text = await page.locator('main').innerText();
    expect(text).toContain('3 มิถุนายน 2569 เวลา 09:41:07');
    expect(text).toContain('somchai');
    // The search's range to the second: from 09:41:07 finds the NAT line of 09:41:07, from 09:41:08 does not.
    await page.goto(`${base}/auditor/search`);
    await page.fill('input[name=ip]', '10.23.4.5');
    await page.fill('input[name=from]', '2026-06-03T09:41:07');
    await page.fill('input[name=to]', '2026-06-03T09:41:08');
    await page.click('form.filters button[type=submit]');
    expect(new URL(page.url()).searchParams.get('from')).toBe('2026-06-03T09:41:07');
    expect(await page.locator('table tbody tr').count()).toBe(1);
    await page.fill('input[name=from]', '2026-06-03T09:41:08');
    await page.fill('input[name=to]', '2026-06-03T09:42:00');
    await page.click('form.filters button[type=submit]');
    expect(await page.locator('main').innerText()).toContain('ไม่พบข้อมูลที่ตรงกับเงื่อนไข (no records)');
    await c.close();
  }, 60_000);

  it('downloads an evidence package from the search page; its verify.mjs exits 0', async () => {
    const c = await noScript();
    const { page } = await logIn(c);
    await page.goto(`${base}/auditor/search?ip=10.23.4.5&from=2026-06-03T00%3A00&to=2026-06-04T00%3A00`);
    await page.fill('input[name=reference]', 'หนังสือ สภ.ภูเขียว ที่ 0002/2569');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=ดาวน์โหลดชุดหลักฐาน (.tar)')]);
    expect(download.suggestedFilename()).toMatch(/^evidence-\d{4}-\d{2}-\d{2}-[0-9a-f]{12}\.tar$/);
    const x = join(store.path, 'from-browser');
    mkdirSync(x);
    await download.saveAs(join(x, 'package.tar'));
    const sha = createHash('sha256').update(readFileSync(join(x, 'package.tar'))).digest('hex');
    expect(download.suggestedFilename()).toContain(sha.slice(0, 12));
    await exec('tar', ['-xf', 'package.tar'], { cwd: x });
    // Exit 0 or execFile throws.
    await exec(process.execPath, ['verify.mjs', '--public-key', arc.publicKey], { cwd: x });
    expect(JSON.parse(readFileSync(join(x, 'statement.json'), 'utf8'))).toMatchObject({ reference: 'หนังสือ สภ.ภูเขียว ที่ 0002/2569', made_by: 'ผู้ตรวจสอบ (test)', rows: 6 });
    await c.close();
  }, 90_000);

  it('the verification page says the archive is intact; logging out ends the session', async () => {
    const c = await noScript();
    const { page } = await logIn(c);
    await page.click('nav a[href="/auditor/verify"]');
    expect(await page.locator('main').innerText()).toContain('ครบถ้วน ไม่ถูกแก้ไข (intact)');
    await page.click('text=ออกจากระบบ (log out)');
    expect(new URL(page.url()).pathname).toBe('/auditor/login');
    await page.goto(`${base}/auditor/verify`);
    expect(new URL(page.url()).pathname).toBe('/auditor/login');
    await c.close();
  }, 60_000);
});

describe('the pages over HTTP', () => {
  // A script's way in (the token as a bearer; the cookie holds a session id, api/sessions.ts).
  const cookie = () => ({ authorization: `Bearer ${a.tokens.auditor}`, accept: 'text/html' });

  it('refuses a token of another role at login, and a session of another role on the pages (403)', async () => {
    const r = await a.app.inject({ method: 'POST', url: '/auditor/login', payload: `token=${a.tokens.officer}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(r.body).toContain('ไม่ใช่ผู้ตรวจสอบ (auditor)');
    const ok = await a.app.inject({ method: 'POST', url: '/auditor/login', payload: `token=${a.tokens.auditor}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers['set-cookie']).toMatch(/^kw_session=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/);
    expect(ok.headers['set-cookie']).not.toContain(a.tokens.auditor);
    // No session of another role can be made (above); its token as a bearer is refused the same.
    const other = await a.app.inject({ method: 'GET', url: '/auditor/search', headers: { authorization: `Bearer ${a.tokens.officer}`, accept: 'text/html' } });
    expect(other.statusCode).toBe(403);
    expect(other.body).toContain('หน้านี้สำหรับผู้ตรวจสอบเท่านั้น');
    for (const url of ['/auditor/search', '/auditor/who', '/auditor/verify']) {
      const none = await a.app.inject({ method: 'GET', url });
      expect(none.statusCode, url).toBe(303);
      expect(none.headers.location).toBe('/auditor/login');
    }
  });

  it('shows markup from the wire as text, sends no script, and names a wrong field in Thai and English', async () => {
    const r = await a.app.inject({ method: 'GET', url: '/auditor/search?from=2026-06-03T09%3A20&to=2026-06-03T09%3A21', headers: cookie() });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.headers['content-security-policy']).toContain("script-src 'none'");
    expect(r.body).not.toContain(MARKUP);
    expect(r.body).toContain('&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;');
    expect(r.body).not.toMatch(/<script/i);
    const bad = await a.app.inject({ method: 'GET', url: '/auditor/search?ip=10.23.4', headers: cookie() });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('เงื่อนไขไม่ถูกต้อง (bad request): querystring.ip: &quot;10.23.4&quot; is not an IPv4 or IPv6 address');
    const none = await a.app.inject({ method: 'GET', url: '/auditor/search?ip=10.99.99.99', headers: cookie() });
    expect(none.statusCode).toBe(200);
    expect(none.body).toContain('ไม่พบข้อมูลที่ตรงกับเงื่อนไข (no records)');
    const evidence = await a.app.inject({ method: 'POST', url: '/auditor/evidence', payload: 'ip=10.23.4.5&reference=x', headers: { ...cookie(), 'content-type': 'application/x-www-form-urlencoded' } });
    expect(evidence.statusCode).toBe(400);
    expect(evidence.body).toContain('body.reference: must name the order or letter');
    expect(evidence.body).not.toContain('--reference');
    // A script (no Accept: text/html) gets the API's { error, message }.
    const script = await a.app.inject({ method: 'POST', url: '/auditor/evidence', payload: 'ip=10.23.4.5&reference=x', headers: { authorization: `Bearer ${a.tokens.auditor}`, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(script.statusCode).toBe(400);
    expect(script.json()).toEqual({ error: 'bad_request', message: 'body.reference: must name the order or letter the export answers (at least 3 characters)' });
  });
});
