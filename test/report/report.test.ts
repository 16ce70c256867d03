/// <reference lib="dom" />
// The evaluation report end to end: incidents in a real state database (the
// collector's SQLite schema), latency points in a real InfluxDB (1.6, in its
// 5-minute roll-up policy, since November lies beyond the raw retention of a
// report made on 5 December), the simulated area's 20 schools; then the
// printable page opened in real headless Chromium (Debian's), its figures
// read back from the page and checked against the JSON, printed to PDF, and
// a picture of the print taken.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { buildSimArea, PROJECT, type SimArea } from '../../sim/area.ts';
import { loadConfig, type Config } from '../../config/load.ts';
import { StateStore } from '../../stores/state.ts';
import { InfluxClient } from '../../stores/influx/client.ts';
import { setupSchema } from '../../stores/influx/setup.ts';
import { makeReport } from '../../report/report.ts';
import { renderHtml, pctCut } from '../../report/render.ts';
import type { Report } from '../../report/figures.ts';
import { startTestInflux, type TestInflux } from '../helpers/influx.ts';
import { tempDir, requireBinary } from '../helpers/peers.ts';
import { prng } from '../helpers/prng.ts';

const run = promisify(execFile);
const at = (local: string) => Date.parse(`${local}:00+07:00`);
const NOW = at('2026-12-05T12:00');
const SCHOOL = '1036090101';

let influx: TestInflux;
let dir: ReturnType<typeof tempDir>;
let area: SimArea;
let config: Config;
let report: Report;
let browser: Browser;


function writeHistory(config: Config, path: string): void {
  const store = new StateStore(path);
  const insert = store.db.prepare('INSERT INTO incidents (device, check_name, school, kind, state, cause, started_at, ended_at, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const rand = prng(2569);
  const add = (device: string, check: string, state: string, cause: string, start: number, end: number | null) => {
    const d = config.deviceById.get(device)!;
    insert.run(device, check, d.school.code, d.kind, state, cause, start, end, end === null ? null : Math.round((end - start) / 1000));
  };
  const novDay = (day: number, hh: number, mm = 0) => at(`2026-11-${String(day).padStart(2, '0')}T${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}`);
  for (const s of config.schools.filter((x) => !x.office)) {
    const router = s.devices.find((d) => d.kind === 'router')!;
    for (let k = Math.floor(rand() * 4); k > 0; k--) {
      const start = novDay(1 + Math.floor(rand() * 29), Math.floor(rand() * 24), Math.floor(rand() * 60));
      add(router.id, '', 'down', router.id, start, start + Math.round(300 + rand() * 6 * 3600) * 1000);
    }
    for (const rx of s.devices.filter((d) => d.kind === 'dltv-receiver')) {
      if (rand() < 0.5) {
        const start = novDay(2 + Math.floor(rand() * 4) * 7, 8, 30 + Math.floor(rand() * 20));
        add(rx.id, '', 'down', rx.id, start, start + Math.round(600 + rand() * 3 * 3600) * 1000);
      }
      if (rand() < 0.3) add(rx.id, 'receiver.lock', 'down', rx.id, novDay(17, 13, 30), novDay(17, 13, 50));
    }
  }
  // A school router down through a morning of lessons: its receivers unreachable behind it.
  const third = config.schools.find((s) => s.code === '1036090103')!;
  add('1036090103-router', '', 'down', '1036090103-router', novDay(24, 9), novDay(24, 11));
  for (const rx of third.devices.filter((d) => d.kind === 'dltv-receiver')) add(rx.id, '', 'unreachable', '1036090103-router', novDay(24, 9), novDay(24, 11));
  // Still open when the report is made.
  add('1036090105-router', '', 'down', '1036090105-router', novDay(30, 20), null);
  // The office uplink down for 3 s: 99.9998 %, which must not print as 100.00.
  add('office-uplink', '', 'down', 'office-uplink', novDay(10, 3), novDay(10, 3) + 3000);
  // A disk nearly full on the office's web server, open at the end of the month, and a lock failure fixed: checks, not outages.
  add('office-web', 'storage.used_pct:/', 'down', 'office-web', novDay(27, 16), null);
  // Down while no collector ran (the stop on the 18th): not counted.
  add('1036090106-router', '', 'down', '1036090106-router', novDay(18, 12), novDay(18, 13));
  // What the collector watched: first run on Sunday 1 November at 14:00, a
  // round every 5 minutes, stopped from the round of the 18th at 10:00 to a
  // day later.
  const devices = config.devices.map((d) => d.id);
  for (let t = novDay(1, 14); t <= novDay(18, 10); t += 300_000) store.recordRound(t, 300_000, devices);
  for (let t = novDay(19, 10, 5); t < NOW; t += 300_000) store.recordRound(t, 300_000, devices);
  store.close();
}

async function writeLatency(config: Config): Promise<void> {
  const s = config.settings.influx;
  const client = new InfluxClient({ url: s.url, database: s.database, auth: {}, timeoutMs: 5000 });
  await setupSchema(client, { rawRetentionMs: s.raw_retention, rollupRetentionMs: s.rollup_retention }, pino({ level: 'silent' }));
  const lines: string[] = [];
  const start = at('2026-11-10T00:00');
  config.schools
    .filter((x) => !x.office)
    .forEach((school, n) => {
      const router = school.devices.find((d) => d.kind === 'router')!;
      // 100 five-minute points: round trips 1..100 ms (+ the school's number), loss 0 % but for the last 10 (20 %).
      for (let i = 1; i <= 100; i++) {
        const tags = `school=${school.code},school_name=x,district=x,device=${router.id},kind=router`;
        lines.push(`icmp,${tags} rtt_avg_ms=${i + n},loss_pct=${i > 90 ? 20 : 0} ${start + i * 300_000}`);
      }
    });
  const res = await fetch(`${s.url}/write?db=${s.database}&rp=rollup_5m&precision=ms`, { method: 'POST', body: lines.join('\n') });
  expect(res.status).toBe(204);
}

beforeAll(async () => {
  await requireBinary('chromium', 'chromium');
  influx = await startTestInflux('report');
  dir = tempDir('report');
  area = buildSimArea({
    dir: dir.path,
    influxUrl: influx.server.url,
    database: 'report',
    octet: 81,
    extraSettings: {
      report: {
        heading: ['สำนักงานเขตพื้นที่การศึกษาประถมศึกษาจำลอง', 'กลุ่มส่งเสริมการศึกษาทางไกล เทคโนโลยีสารสนเทศและการสื่อสาร'],
        prepared_by: { name: 'นายธนากร พรมมา', position: 'นักวิชาการคอมพิวเตอร์' },
        approved_by: { name: 'นางสาวสุภาพร ใจดี', position: 'ผู้อำนวยการกลุ่มส่งเสริมการศึกษาทางไกลฯ' },
      },
    },
  });
  config = loadConfig(area.settingsPath);
  writeHistory(config, join(dir.path, 'state.sqlite'));
  await writeLatency(config);
  ({ report } = await makeReport(config, { period: '2026-11', now: NOW }));
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await influx?.close();
  dir?.remove();
});

describe('the evaluation report', () => {
  it('takes latency and loss per school router from InfluxDB: median and 95th percentile', () => {
    const s = report.schools.find((x) => x.code === SCHOOL)!;
    expect(s.link).toEqual({ rttMedianMs: 50.5, rttP95Ms: 95, lossMedianPct: 0, lossP95Pct: 20, samples: 100, source: 'rollup_5m' });
    expect(report.schools.find((x) => x.code === '1036090102')!.link!.rttMedianMs).toBe(51.5);
    expect(report.schools.find((x) => x.office)!.link).toBeNull();
  });

  it('counts the history: parent-caused outages as upstream, the open one as open', () => {
    const third = report.schools.find((x) => x.code === '1036090103')!;
    expect(third.upstream).toBe(config.schools.find((s) => s.code === '1036090103')!.devices.filter((d) => d.kind === 'dltv-receiver').length);
    expect(third.upstream).toBeGreaterThan(0);
    expect(report.schools.find((x) => x.code === '1036090105')!.openNow).toBe(1);
    expect(report.totals.outages).toBeGreaterThan(20);
    // The outage of the 18th fell in the day no collector ran.
    const sixth = report.schools.find((x) => x.code === '1036090106')!;
    expect(report.incidents.some((i) => i.device === '1036090106-router' && i.startedAt === at('2026-11-18T12:00'))).toBe(true);
    expect(report.devices.find((d) => d.device === '1036090106-router')!.unmonitoredS).toBe(14 * 3600 + 86_400);
    expect(sixth.monitoredFrom).toBe(at('2026-11-01T14:00'));
    expect(report.totals.byKind.router!.coveragePct).toBeCloseTo(((30 * 86_400 - 14 * 3600 - 86_400) / (30 * 86_400)) * 100, 8);
  });

  it('the office apart: its receiver out of DLTV readiness; its check open, counted as a check, not an outage', () => {
    const office = report.schools.find((x) => x.office)!;
    expect(config.schools.find((s) => s.office)!.devices.some((d) => d.kind === 'dltv-receiver')).toBe(true);
    expect(office.readiness.periods).toBe(0);
    expect(office.readiness.pct).toBeNull();
    expect(report.devices.find((d) => d.device === 'office-dltv-headend')!.readiness).toBeUndefined();
    expect(office.checks).toBe(1);
    expect(office.checksOpen).toBe(1);
    expect(office.outages).toBe(1);
    expect(office.openNow).toBe(0);
    expect(office.availabilityPct!).toBeLessThan(100);
    expect(pctCut(office.availabilityPct)).toBe('99.99');
    expect(report.office.preparedBy).toEqual({ name: 'นายธนากร พรมมา', position: 'นักวิชาการคอมพิวเตอร์' });
  });

  it('the printed page shows, for every school and the area, the figures of the JSON; in a Thai font; to PDF and PNG', async () => {
    const html = join(dir.path, 'report.html');
    writeFileSync(html, renderHtml(report));
    const page = await browser.newPage({ viewport: { width: 1123, height: 794 } });
    await page.goto(`file://${html}`);
    await page.emulateMedia({ media: 'print' });

    const cells = await page.$$eval('tr[data-school]', (rows) =>
      rows.map((r) => ({ school: r.getAttribute('data-school')!, figures: Object.fromEntries([...r.querySelectorAll('[data-figure]')].map((td) => [td.getAttribute('data-figure')!, td.textContent!.trim()])) })),
    );
    expect(cells).toHaveLength(report.schools.length + 1);
    // No figure: "—" in a cell, nothing in a pair's half.
    const close = (shown: string, value: number | null | undefined, digits: number, what: string, blank = '—') => {
      if (value === null || value === undefined) expect(shown, what).toBe(blank);
      else expect(Math.abs(Number(shown) - value), `${what}: page ${shown}, JSON ${value}`).toBeLessThanOrEqual(0.5 * 10 ** -digits + 1e-9);
    };
    // A share: cut, never rounded up; 100.00 only with no downtime at all.
    const share = (shown: string, value: number | null | undefined, what: string) => {
      if (value === null || value === undefined) return expect(shown, what).toBe('—');
      expect(Number(shown), `${what}: page ${shown}, JSON ${value}`).toBeLessThanOrEqual(value + 1e-9);
      expect(value - Number(shown), what).toBeLessThan(0.01);
      if (value < 100) expect(shown, what).not.toBe('100.00');
    };
    for (const c of cells) {
      const g = c.school === 'total' ? { ...report.totals, link: null, code: '', name: 'รวมทั้งเขต' } : report.schools.find((s) => s.code === c.school)!;
      const what = (f: string) => `${c.school} ${f}`;
      if (c.school !== 'total') expect(c.figures.name).toBe(g.name);
      share(c.figures.availabilityPct!, g.availabilityPct, what('availability'));
      share(c.figures.router!, g.byKind.router?.availabilityPct, what('router availability'));
      share(c.figures.dltv!, g.byKind['dltv-receiver']?.availabilityPct, what('receiver availability'));
      share(c.figures.readinessPct!, g.readiness.pct, what('readiness'));
      // The observed share: "—" with none, "< 0.01" with some that cuts to 0.00, else cut like the others.
      if (!g.coveragePct) expect(c.figures.coveragePct, what('observed share')).toBe('—');
      else if (g.coveragePct < 0.01) expect(c.figures.coveragePct, what('observed share')).toBe('< 0.01');
      else share(c.figures.coveragePct!, g.coveragePct, what('observed share'));
      expect(Number(c.figures.outages), what('outages')).toBe(g.outages);
      expect(Number(c.figures.upstream), what('upstream')).toBe(g.upstream);
      expect(Number(c.figures.openNow), what('open')).toBe(g.openNow);
      close(c.figures.mttrMin!, g.mttrS === null ? null : g.mttrS / 60, 1, what('MTTR'));
      close(c.figures.rttMedian!, g.link?.rttMedianMs, 1, what('rtt median'), '');
      close(c.figures.lossP95!, g.link?.lossP95Pct, 2, what('loss p95'), '');
      if (!g.link) expect(c.figures.rtt, what('rtt pair')).toBe('—');
    }
    // The area's total once, at the end of the table: no <tfoot>, which a browser repeats at the foot of every printed page.
    expect(await page.locator('tfoot').count()).toBe(0);
    expect(await page.locator('tr[data-school="total"]').count()).toBe(1);
    expect(await page.$eval('table.schools', (t) => [...t.querySelectorAll('tr')].at(-1)!.getAttribute('data-school'))).toBe('total');
    // The office's row apart from the schools', which the heading counts.
    const office = report.schools.find((s) => s.office)!;
    expect(await page.locator('tbody.schools tr[data-school]').count()).toBe(20);
    expect(await page.locator(`tbody.office tr[data-school="${office.code}"]`).count()).toBe(1);
    expect(await page.textContent('h2')).toContain('ผลรายโรงเรียน (20 โรงเรียน)');
    expect(await page.textContent(`tr[data-school="${office.code}"] [data-figure="availabilityPct"]`)).toBe('99.99');
    // Every blank is explained.
    expect(await page.locator('td[data-empty]').count()).toBeGreaterThan(0);
    expect(await page.textContent('.notes')).toContain('— ไม่มีข้อมูล: ไม่ได้วัด');
    // The observed share and its start on the page; checks in their own section.
    expect(await page.textContent('[data-figure="observedNote"]')).toContain('มีข้อมูลตั้งแต่ 1 พฤศจิกายน 2569 เวลา 14:00:00 น.');
    expect(await page.textContent('[data-figure="totalChecksOpen"]')).toBe('1 รายการ');
    expect(await page.locator('tr[data-check-incident]').count()).toBe(report.incidents.filter((i) => i.check !== '' && (i.startedAt >= report.period.from || i.endedAt === null || i.endedAt > report.countedTo)).length);
    // The office's heading and the signature block.
    expect(await page.textContent('.heading')).toContain('สำนักงานเขตพื้นที่การศึกษาประถมศึกษาจำลอง');
    expect(await page.textContent('[data-sign="ผู้จัดทำรายงาน"]')).toContain('นายธนากร พรมมา');
    expect(await page.textContent('[data-sign="ผู้รับรองรายงาน"]')).toContain('ผู้อำนวยการกลุ่มส่งเสริมการศึกษาทางไกลฯ');

    // Fits A4 landscape: laid out at the printable width (297 mm less 2 × 10 mm margins), no table is wider.
    const printable = Math.floor((277 / 25.4) * 96);
    await page.setViewportSize({ width: printable, height: 794 });
    const widths2 = await page.$$eval('table', (ts) => ts.map((t) => ({ cls: t.className, width: t.getBoundingClientRect().width, scroll: t.scrollWidth })));
    for (const w of widths2) expect(Math.max(w.width, w.scroll), `table.${w.cls} at ${printable} px`).toBeLessThanOrEqual(printable);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(printable);
    await page.setViewportSize({ width: 1123, height: 794 });
    expect(await page.textContent('[data-figure="period"]')).toBe('เดือนพฤศจิกายน 2569');
    expect(await page.textContent('[data-figure="totalOutages"]')).toBe(`${report.totals.outages} ครั้ง`);
    expect(await page.locator('tr[data-incident]').count()).toBe(report.incidents.filter((i) => i.check === '' && i.startedAt >= report.period.from).length);

    // The Thai font is there: text set in it measures differently from the fallback.
    const widths = await page.evaluate(() => {
      const ctx = document.createElement('canvas').getContext('2d')!;
      const w = (font: string) => {
        ctx.font = font;
        return ctx.measureText('รายงานผลการติดตามประเมินผล').width;
      };
      return { laksaman: w('20px Laksaman, monospace'), fallback: w('20px monospace') };
    });
    expect(widths.laksaman).not.toBe(widths.fallback);

    const pdfPath = join(dir.path, 'report.pdf');
    await page.pdf({ path: pdfPath, preferCSSPageSize: true, printBackground: true });
    const pdf = readFileSync(pdfPath);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    expect(pdf.toString('latin1')).toMatch(/\/BaseFont\s*\/[A-Z]{6}\+Laksaman/);
    const pages = pdf.toString('latin1').match(/\/Type\s*\/Page\b/g)!.length;
    expect(pages).toBeGreaterThanOrEqual(2);
    // Page numbers on every page: "หน้า N / pages" (poppler's pdftotext reads the text back).
    const pdftotext = await requireBinary('pdftotext', 'poppler-utils');
    const { stdout: text } = await run(pdftotext, ['-layout', pdfPath, '-']);
    for (let n = 1; n <= pages; n++) expect(text, `page ${n}`).toContain(`${n} / ${pages}`);
    expect(text).toContain('หน้า');

    const png = join(dir.path, 'report.png');
    await page.screenshot({ path: png, fullPage: false });
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    // KW_WRITE_DOCS=1 refreshes the picture in docs/ that the README shows.
    if (process.env.KW_WRITE_DOCS === '1') copyFileSync(png, join(PROJECT, 'docs', 'report-example.png'));
    await page.close();
  });

  it('`klaiwatch report` writes the CSV the JSON says, and names what is wrong with a bad period or format', async () => {
    const cli = join(PROJECT, 'bin', 'klaiwatch.ts');
    const args = ['report', '--config', area.settingsPath, '--period', '2569-11', '--now', '2026-12-05T12:00:00+07:00'];
    const { stdout } = await run(process.execPath, [cli, ...args, '--format', 'csv']);
    expect(stdout.charCodeAt(0)).toBe(0xfeff);
    const lines = stdout.slice(1).trimEnd().split('\r\n');
    expect(lines).toHaveLength(report.schools.length + 2);
    // Checks and the observed share are columns of their own.
    expect(lines[0]).toContain('ปัญหาที่ยังไม่แก้ไข');
    expect(lines[0]).toContain('เวลาที่มีข้อมูล (% ของช่วง)');
    expect(lines.at(-2)!.startsWith(`${report.schools.find((s) => s.office)!.code},`)).toBe(true);
    expect(lines[0]!.split(',').slice(0, 4)).toEqual(['รหัสโรงเรียน', 'ชื่อโรงเรียน', 'อำเภอ', 'สภาพพร้อมใช้งานรวม (%)']);
    const row = lines.find((l) => l.startsWith(`${SCHOOL},`))!.split(',');
    const s = report.schools.find((x) => x.code === SCHOOL)!;
    expect(row[3]).toBe(pctCut(s.availabilityPct));
    // Since when there is data: Bangkok time with a Buddhist-Era date, as the page says it, and beside it the same moment in ISO 8601 (+07:00).
    const header = lines[0]!.split(',');
    expect(row[header.indexOf('มีข้อมูลตั้งแต่')]).toBe('1 พฤศจิกายน 2569 เวลา 14:00:00 น.');
    expect(row[header.indexOf('มีข้อมูลตั้งแต่ (ISO 8601)')]).toBe('2026-11-01T14:00:00+07:00');
    expect(Date.parse(row[header.indexOf('มีข้อมูลตั้งแต่ (ISO 8601)')]!)).toBe(s.monitoredFrom);
    expect(lines.at(-1)).toMatch(/^,รวมทั้งเขต/);

    const { stdout: json } = await run(process.execPath, [cli, ...args, '--format', 'json']);
    expect(JSON.parse(json).totals).toEqual(JSON.parse(JSON.stringify(report.totals)));

    const bad = await run(process.execPath, [cli, 'report', '--config', area.settingsPath, '--period', '2026-13']).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toMatch(/period "2026-13": there is no month 13/);
    const fmt = await run(process.execPath, [cli, ...args, '--format', 'pdf']).catch((e: { code: number; stderr: string }) => e);
    expect((fmt as { stderr: string }).stderr).toMatch(/--format "pdf": expected one of csv, html, json/);
  });

  it('a report still comes when InfluxDB does not answer, without latency, and says so', async () => {
    const down = { ...config, settings: { ...config.settings, influx: { ...config.settings.influx, url: 'http://127.0.0.1:9', timeout: 1000 } } };
    const { report: r, warnings } = await makeReport(down, { period: '2026-11', now: NOW });
    expect(warnings).toHaveLength(1); // only InfluxDB's: the state database has its rounds
    expect(warnings[0]).toMatch(/latency and loss left out: InfluxDB at http:\/\/127\.0\.0\.1:9 did not answer/);
    expect(r.schools.every((s) => s.link === null)).toBe(true);
    expect(r.totals).toEqual(report.totals);
  });
});
