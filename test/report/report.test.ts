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
import { StateStore } from '../../collector/alerts/store.ts';
import { InfluxClient } from '../../collector/influx/client.ts';
import { setupSchema } from '../../collector/influx/setup.ts';
import { makeReport } from '../../report/report.ts';
import { renderHtml } from '../../report/render.ts';
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
  area = buildSimArea({ dir: dir.path, influxUrl: influx.server.url, database: 'report', octet: 81 });
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
  });

  it('the printed page shows, for every school and the area, the figures of the JSON; in a Thai font; to PDF and PNG', async () => {
    const html = join(dir.path, 'report.html');
    writeFileSync(html, renderHtml(report));
    const page = await browser.newPage({ viewport: { width: 1123, height: 794 } });
    await page.goto(`file://${html}`);
    await page.emulateMedia({ media: 'print' });

    const cells = await page.$$eval('tr[data-school]', (rows) =>
      rows.map((r) => ({ school: r.getAttribute('data-school')!, figures: Object.fromEntries([...r.querySelectorAll('td[data-figure]')].map((td) => [td.getAttribute('data-figure')!, td.textContent!.trim()])) })),
    );
    expect(cells).toHaveLength(report.schools.length + 1);
    const close = (shown: string, value: number | null | undefined, digits: number, what: string) => {
      if (value === null || value === undefined) expect(shown, what).toBe('');
      else expect(Math.abs(Number(shown) - value), `${what}: page ${shown}, JSON ${value}`).toBeLessThanOrEqual(0.5 * 10 ** -digits + 1e-9);
    };
    for (const c of cells) {
      const g = c.school === 'total' ? { ...report.totals, link: null, code: '', name: 'รวมทั้งเขต' } : report.schools.find((s) => s.code === c.school)!;
      const what = (f: string) => `${c.school} ${f}`;
      if (c.school !== 'total') expect(c.figures.name).toBe(g.name);
      close(c.figures.availabilityPct!, g.availabilityPct, 2, what('availability'));
      close(c.figures.router!, g.byKind.router?.availabilityPct, 2, what('router availability'));
      close(c.figures.dltv!, g.byKind['dltv-receiver']?.availabilityPct, 2, what('receiver availability'));
      close(c.figures.readinessPct!, g.readiness.pct, 2, what('readiness'));
      expect(Number(c.figures.outages), what('outages')).toBe(g.outages);
      expect(Number(c.figures.upstream), what('upstream')).toBe(g.upstream);
      expect(Number(c.figures.openNow), what('open')).toBe(g.openNow);
      close(c.figures.mttrMin!, g.mttrS === null ? null : g.mttrS / 60, 1, what('MTTR'));
      close(c.figures.rttMedian!, g.link?.rttMedianMs, 1, what('rtt median'));
      close(c.figures.lossP95!, g.link?.lossP95Pct, 2, what('loss p95'));
    }
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
    expect(pdf.toString('latin1').match(/\/Type\s*\/Page\b/g)!.length).toBeGreaterThanOrEqual(2);

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
    expect(lines[0]!.split(',').slice(0, 4)).toEqual(['รหัสโรงเรียน', 'ชื่อโรงเรียน', 'อำเภอ', 'สภาพพร้อมใช้งานรวม (%)']);
    const row = lines.find((l) => l.startsWith(`${SCHOOL},`))!.split(',');
    const s = report.schools.find((x) => x.code === SCHOOL)!;
    expect(Number(row[3])).toBeCloseTo(s.availabilityPct!, 2);
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
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/latency and loss left out: InfluxDB at http:\/\/127\.0\.0\.1:9 did not answer/);
    expect(r.schools.every((s) => s.link === null)).toBe(true);
    expect(r.totals).toEqual(report.totals);
  });
});
