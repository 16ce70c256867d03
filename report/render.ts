// The report as the director reads it: CSV (one line per school, Thai
// headings, opens in Excel), a printable HTML page (A4 landscape, Thai font,
// Buddhist-Era dates) and JSON (everything, for the API and for checking).
import type { DeviceKind } from '../config/schema.ts';
import { formatThaiDuration } from '../config/thai.ts';
import { checkTh, KIND_TH } from '../config/thai.ts';
import type { GroupFigures, Report, SchoolFigures, Signatory } from './figures.ts';
import { READY_SHARE } from './figures.ts';
import { thaiDate, thaiDateTime } from './period.ts';
import { UPLINK_BUSY_PCT } from '../stores/uplink.ts';

export const FORMATS = ['csv', 'html', 'json'] as const;
export type Format = (typeof FORMATS)[number];

/** Rounded to `digits` decimals, or empty when there is no figure (latency, loss, minutes). */
const fixed = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '' : v.toFixed(digits));

/**
 * A share in percent, cut (never rounded up) to `digits` decimals: 99.99988 %
 * is 99.99, and 100.00 only when nothing was lost. Empty when there is no
 * figure (nothing observed).
 */
export function pctCut(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '';
  const scale = 10 ** digits;
  // The small allowance keeps an exact 98.4 (123/125) from being cut to 98.39 by binary fractions.
  let cut = Math.floor(v * scale + 1e-7) / scale;
  if (v < 100 && cut >= 100) cut = 100 - 1 / scale;
  return cut.toFixed(digits);
}

const kindPct = (g: GroupFigures, kind: DeviceKind) => pctCut(g.byKind[kind]?.availabilityPct);

/**
 * The observed share of the period: cut like pctCut, but "< 0.01" when there
 * was some (minutes of data in a year cut to 0.00) and empty (shown "—")
 * when there was none, so the two never read the same.
 */
export function sharePct(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v) || v <= 0) return '';
  const cut = pctCut(v);
  return Number(cut) === 0 ? '< 0.01' : cut;
}

/** "2026-11-15T21:00:00+07:00": Bangkok time, machine-readable, for the CSV beside the Thai date. */
export function bangkokIso(t: number): string {
  return `${new Date(t + 7 * 3_600_000).toISOString().slice(0, 19)}+07:00`;
}

/** "15 พ.ย. 69": a short Buddhist-Era date for a narrow cell. */
const SHORT_MONTHS = ['ม.ค.', 'ก.พ.', 'มี.ค.', 'เม.ย.', 'พ.ค.', 'มิ.ย.', 'ก.ค.', 'ส.ค.', 'ก.ย.', 'ต.ค.', 'พ.ย.', 'ธ.ค.'];
export function shortThaiDate(t: number): string {
  const d = new Date(t + 7 * 3_600_000);
  return `${d.getUTCDate()} ${SHORT_MONTHS[d.getUTCMonth()]} ${String((d.getUTCFullYear() + 543) % 100).padStart(2, '0')}`;
}

type Row = SchoolFigures | (GroupFigures & { code?: string; name?: string; district?: string; link?: SchoolFigures['link'] });

const uplinkOf = (g: Row) => ('uplink' in g ? g.uplink : null);

interface Column {
  th: string;
  key: string;
  value(g: Row): string;
}

/** The CSV's columns: every figure, one per column, empty where there is none. */
const CSV_COLUMNS: Column[] = [
  { th: 'รหัสโรงเรียน', key: 'code', value: (g) => g.code ?? '' },
  { th: 'ชื่อโรงเรียน', key: 'name', value: (g) => g.name ?? '' },
  { th: 'อำเภอ', key: 'district', value: (g) => g.district ?? '' },
  { th: 'สภาพพร้อมใช้งานรวม (%)', key: 'availabilityPct', value: (g) => pctCut(g.availabilityPct) },
  { th: 'เราเตอร์ (%)', key: 'router', value: (g) => kindPct(g, 'router') },
  { th: 'เครื่องรับ DLTV (%)', key: 'dltv', value: (g) => kindPct(g, 'dltv-receiver') },
  { th: 'เซิร์ฟเวอร์ (%)', key: 'server', value: (g) => kindPct(g, 'server') },
  { th: 'ความพร้อม DLTV (%)', key: 'readinessPct', value: (g) => pctCut(g.readiness.pct) },
  { th: 'คาบที่พร้อม/คาบที่นับ', key: 'readinessPeriods', value: (g) => (g.readiness.periods > 0 ? `${g.readiness.ready}/${g.readiness.periods}` : '') },
  { th: 'เหตุขัดข้อง (ครั้ง)', key: 'outages', value: (g) => String(g.outages) },
  { th: 'ขัดข้องจากต้นทาง (ครั้ง)', key: 'upstream', value: (g) => String(g.upstream) },
  { th: 'ขัดข้องที่ยังไม่แก้ไข', key: 'openNow', value: (g) => String(g.openNow) },
  { th: 'เวลาเฉลี่ยในการแก้ไข (นาที)', key: 'mttrMin', value: (g) => fixed(g.mttrS === null ? null : g.mttrS / 60, 1) },
  { th: 'ความหน่วง มัธยฐาน (ms)', key: 'rttMedian', value: (g) => fixed(g.link?.rttMedianMs, 1) },
  { th: 'ความหน่วง p95 (ms)', key: 'rttP95', value: (g) => fixed(g.link?.rttP95Ms, 1) },
  { th: 'สูญหาย มัธยฐาน (%)', key: 'lossMedian', value: (g) => fixed(g.link?.lossMedianPct) },
  { th: 'สูญหาย p95 (%)', key: 'lossP95', value: (g) => fixed(g.link?.lossP95Pct) },
  { th: 'เวลาที่มีข้อมูล (% ของช่วง)', key: 'coveragePct', value: (g) => sharePct(g.coveragePct) },
  { th: 'มีข้อมูลตั้งแต่', key: 'monitoredFrom', value: (g) => (g.monitoredFrom === null ? '' : thaiDateTime(g.monitoredFrom)) },
  { th: 'มีข้อมูลตั้งแต่ (ISO 8601)', key: 'monitoredFromIso', value: (g) => (g.monitoredFrom === null ? '' : bangkokIso(g.monitoredFrom)) },
  { th: 'ปัญหาที่ตรวจพบ (รายการ)', key: 'checks', value: (g) => String(g.checks) },
  { th: 'ปัญหาที่ยังไม่แก้ไข', key: 'checksOpen', value: (g) => String(g.checksOpen) },
  { th: 'เวลาเฉลี่ยในการแก้ปัญหา (นาที)', key: 'checksMttrMin', value: (g) => fixed(g.checksMttrS === null ? null : g.checksMttrS / 60, 1) },
  // Uplink saturation (stores/uplink.ts): the school's uplink interface only.
  { th: 'uplink p95 ขาเข้า (% ของความเร็ว)', key: 'uplinkInP95', value: (g) => fixed(uplinkOf(g)?.inP95Pct, 1) },
  { th: 'uplink p95 ขาออก (% ของความเร็ว)', key: 'uplinkOutP95', value: (g) => fixed(uplinkOf(g)?.outP95Pct, 1) },
  { th: `uplink เกิน ${UPLINK_BUSY_PCT} % (ชั่วโมง)`, key: 'uplinkHoursBusy', value: (g) => (uplinkOf(g) ? fixed(uplinkOf(g)!.hoursBusy, 1) : '') },
];

const csvCell = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function renderCsv(r: Report): string {
  const lines = [CSV_COLUMNS.map((c) => c.th)];
  // Schools first, then the office (not a school), then the area.
  for (const s of [...r.schools.filter((x) => !x.office), ...r.schools.filter((x) => x.office)]) lines.push(CSV_COLUMNS.map((c) => c.value(s)));
  lines.push(CSV_COLUMNS.map((c) => (c.key === 'name' ? `${r.totalLabel} (${r.area.name})` : c.key === 'code' ? '' : c.key === 'district' ? '' : c.value({ ...r.totals, link: null }))));
  // A byte-order mark, so Excel opens the Thai text as UTF-8.
  return '\ufeff' + lines.map((l) => l.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

export function renderJson(r: Report): string {
  return JSON.stringify(r, null, 2) + '\n';
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A cell's text on the page: the figure, or "—" (explained in the notes) when there is none. */
const shown = (v: string) => (v === '' ? '—' : v);

function summaryBox(label: string, value: string, figure: string, sub = ''): string {
  return `<div class="box"><div class="label">${esc(label)}</div><div class="value" data-figure="${figure}">${esc(shown(value))}</div>${sub ? `<div class="sub">${esc(sub)}</div>` : ''}</div>`;
}

/** The printed school table: narrower than the CSV (latency and loss as median / p95 pairs; districts have their own table). */
const HTML_COLUMNS: (Column & { cls?: string; pair?: [string, string] })[] = [
  { th: 'รหัส', key: 'code', value: (g) => g.code ?? '', cls: 'code' },
  { th: 'โรงเรียน', key: 'name', value: (g) => g.name ?? '', cls: 'name' },
  { th: 'มีข้อมูล (% ของช่วง)', key: 'coveragePct', value: (g) => sharePct(g.coveragePct) },
  { th: 'มีข้อมูลตั้งแต่', key: 'monitoredFrom', value: (g) => (g.monitoredFrom === null ? '' : shortThaiDate(g.monitoredFrom)), cls: 'date' },
  { th: 'พร้อมใช้งานรวม (%)', key: 'availabilityPct', value: (g) => pctCut(g.availabilityPct) },
  { th: 'เราเตอร์ (%)', key: 'router', value: (g) => kindPct(g, 'router') },
  { th: 'เครื่องรับ DLTV (%)', key: 'dltv', value: (g) => kindPct(g, 'dltv-receiver') },
  { th: 'เซิร์ฟเวอร์ (%)', key: 'server', value: (g) => kindPct(g, 'server') },
  { th: 'ความพร้อม DLTV (%)', key: 'readinessPct', value: (g) => pctCut(g.readiness.pct) },
  { th: 'คาบพร้อม/ คาบที่นับ', key: 'readinessPeriods', value: (g) => (g.readiness.periods > 0 ? `${g.readiness.ready}/${g.readiness.periods}` : '') },
  { th: 'ขัดข้อง (ครั้ง)', key: 'outages', value: (g) => String(g.outages) },
  { th: 'จากต้นทาง (ครั้ง)', key: 'upstream', value: (g) => String(g.upstream) },
  { th: 'ยังไม่แก้ไข', key: 'openNow', value: (g) => String(g.openNow) },
  { th: 'แก้ไขเฉลี่ย (นาที)', key: 'mttrMin', value: (g) => fixed(g.mttrS === null ? null : g.mttrS / 60, 1) },
  { th: 'ความหน่วง (ms) มัธยฐาน/p95', key: 'rtt', value: () => '', pair: ['rttMedian', 'rttP95'] },
  { th: 'สูญหาย (%) มัธยฐาน/p95', key: 'loss', value: () => '', pair: ['lossMedian', 'lossP95'] },
];
const csvValue = new Map(CSV_COLUMNS.map((c) => [c.key, c.value]));

function htmlCell(c: (typeof HTML_COLUMNS)[number], g: Row): string {
  if (c.pair) {
    const a = csvValue.get(c.pair[0])!(g);
    const b = csvValue.get(c.pair[1])!(g);
    if (a === '' && b === '') return `<td class="n" data-figure="${c.key}"><span data-figure="${c.pair[0]}"></span><span data-figure="${c.pair[1]}"></span>—</td>`;
    return `<td class="n" data-figure="${c.key}"><span data-figure="${c.pair[0]}">${esc(a)}</span>/<span data-figure="${c.pair[1]}">${esc(b)}</span></td>`;
  }
  const v = c.value(g);
  const text = c.key === 'code' || c.key === 'name' ? esc(v) : esc(shown(v));
  return `<td data-figure="${c.key}" class="${c.cls ?? 'n'}"${v === '' && c.key !== 'code' ? ' data-empty=""' : ''}>${text}</td>`;
}

function signature(role: string, who: Signatory | null): string {
  return `<div class="sign" data-sign="${esc(role)}">
    <div class="line">ลงชื่อ ........................................................ ${esc(role)}</div>
    <div>( ${who ? esc(who.name) : '........................................................'} )</div>
    <div>${who ? esc(who.position) : 'ตำแหน่ง ........................................................'}</div>
    <div>วันที่ ........ / ................ / ........</div>
  </div>`;
}

/** Uplink saturation per school (stores/uplink.ts): only schools whose router names its uplink_if and InfluxDB had points for. */
function uplinkSection(r: Report): string {
  const withUplink = r.schools.filter((s) => s.uplink !== null);
  if (withUplink.length === 0) return '';
  const rollup = withUplink.some((s) => s.uplink!.source === 'rollup_5m');
  const cell = (v: string, figure: string) => `<td class="n" data-figure="${figure}">${esc(shown(v))}</td>`;
  return `<h2>การใช้วงจรอินเทอร์เน็ต (uplink) ของโรงเรียน</h2>
<table class="uplinks">
<thead><tr><th>รหัส</th><th>โรงเรียน</th><th>พอร์ต</th><th>p95 ขาเข้า (% ของความเร็ว)</th><th>p95 ขาออก (% ของความเร็ว)</th><th>เวลาที่เกิน ${UPLINK_BUSY_PCT} % (ชั่วโมง)</th><th>เวลาที่เกิน ${UPLINK_BUSY_PCT} % (% ของเวลาที่วัด)</th></tr></thead>
<tbody>
${withUplink
  .map((s) => {
    const u = s.uplink!;
    return `<tr data-uplink="${esc(s.code)}"><td>${esc(s.code)}</td><td>${esc(s.name)}</td><td>${esc(u.ifname)}</td>${cell(fixed(u.inP95Pct, 1), 'uplinkInP95')}${cell(fixed(u.outP95Pct, 1), 'uplinkOutP95')}${cell(fixed(u.hoursBusy, 1), 'uplinkHoursBusy')}${cell(fixed(u.busyPct, 1), 'uplinkBusyPct')}</tr>`;
  })
  .join('\n')}
</tbody>
</table>
<div class="notes">การใช้ = บิตต่อวินาทีขาเข้า/ขาออกของพอร์ต uplink (uplink_if ในทะเบียน) ÷ ความเร็วของพอร์ต ทีละค่าที่วัด${rollup ? ' (ค่าเฉลี่ยราย 5 นาที)' : ''}; p95 = เปอร์เซ็นไทล์ที่ 95 ของค่าเหล่านั้น; เวลาที่เกิน ${UPLINK_BUSY_PCT} % = จำนวนค่าที่ขาเข้าหรือขาออกเกิน ${UPLINK_BUSY_PCT} % × ช่วงการตรวจ</div>`;
}

export function renderHtml(r: Report): string {
  const t = r.totals;
  const schools = r.schools.filter((s) => !s.office);
  const office = r.schools.filter((s) => s.office);
  const row = (s: SchoolFigures) => `<tr data-school="${esc(s.code)}">${HTML_COLUMNS.map((c) => htmlCell(c, s)).join('')}</tr>`;
  const outages = r.incidents.filter((i) => i.check === '' && i.startedAt >= r.period.from);
  // Checks begun in the period, or still open at its end.
  const checks = r.incidents.filter((i) => i.check !== '' && (i.startedAt >= r.period.from || i.endedAt === null || i.endedAt > r.countedTo));
  const kindTh = (k: string) => KIND_TH[k as DeviceKind] ?? k;
  const nameOf = new Map(r.schools.map((s) => [s.code, s.name]));
  const withChecks = r.schools.filter((s) => s.checks > 0 || s.checksOpen > 0 || s.checksRepaired > 0);
  const from = t.monitoredFrom;
  const partial = t.coveragePct !== null && t.coveragePct < 100;
  const totalRow = { ...t, link: null, code: '', name: r.totalLabel };
  const colspan = HTML_COLUMNS.length;
  return `<!doctype html>
<html lang="th">
<head>
<meta charset="utf-8">
<title>${esc(r.title)} · ${esc(r.period.label)}</title>
<style>
  @page {
    size: A4 landscape;
    margin: 12mm 10mm 14mm;
    @bottom-center { content: "หน้า " counter(page) " / " counter(pages); font-family: "Laksaman", "Garuda", sans-serif; font-size: 10pt; color: #333; }
    @bottom-left { content: "${esc(r.area.name).replace(/"/g, '')} · ${esc(r.period.label).replace(/"/g, '')}"; font-family: "Laksaman", "Garuda", sans-serif; font-size: 9pt; color: #555; }
  }
  body { font-family: "Laksaman", "TH Sarabun New", "Sarabun", "Garuda", "Loma", sans-serif; font-size: 13pt; color: #111; margin: 0; }
  .heading { text-align: center; line-height: 1.25; margin: 0 0 4pt; }
  .heading div:first-child { font-weight: bold; font-size: 15pt; }
  h1 { font-size: 18pt; margin: 0 0 2pt; text-align: center; }
  h2 { font-size: 15pt; margin: 12pt 0 4pt; break-after: avoid; }
  .meta { margin: 0 0 6pt; line-height: 1.3; text-align: center; }
  .boxes { display: flex; gap: 5pt; margin: 6pt 0; }
  .box { border: 1px solid #999; border-radius: 4pt; padding: 2pt 6pt; flex: 1; min-width: 0; }
  .box .label { font-size: 10.5pt; color: #444; }
  .box .value { font-size: 17pt; font-weight: bold; }
  .box .sub { font-size: 9.5pt; color: #444; }
  table { border-collapse: collapse; width: 100%; font-size: 10.5pt; table-layout: auto; }
  th, td { border: 1px solid #888; padding: 1pt 2pt; vertical-align: top; }
  th { background: #e8e8e8; font-weight: bold; font-size: 9.5pt; line-height: 1.2; }
  td { line-height: 1.25; }
  td.n, td.date { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.code { white-space: nowrap; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  tbody.office th { text-align: left; background: #f6f6f6; }
  tbody.total td { font-weight: bold; background: #f3f3f3; border-top: 2px solid #444; }
  .notes { font-size: 10.5pt; color: #333; margin-top: 8pt; }
  .notes li { margin: 0; }
  .warn { border: 1px solid #b60; padding: 3pt 6pt; margin: 4pt 0; }
  .signatures { display: flex; justify-content: space-around; margin-top: 18pt; break-inside: avoid; }
  .sign { text-align: center; line-height: 1.6; }
</style>
</head>
<body>
<div class="heading">${r.office.heading.map((l) => `<div>${esc(l)}</div>`).join('')}</div>
<h1>${esc(r.title)}</h1>
<div class="meta">
  <div>${esc(r.area.name)} · <strong data-figure="period">${esc(r.period.label)}</strong></div>
  <div>ช่วงเวลาที่นับ: ${esc(thaiDateTime(r.period.from))} ถึง ${esc(thaiDateTime(r.countedTo))}${r.countedTo < r.period.to ? ' (ยังไม่สิ้นสุดช่วง)' : ''}</div>
  <div>จัดทำเมื่อ ${esc(thaiDateTime(r.generatedAt))} · เวลาทั้งหมดเป็นเวลาประเทศไทย (UTC+07:00)</div>
</div>
${
  from === null
    ? '<div class="warn" data-figure="observedNote">ไม่มีเวลาที่ระบบเฝ้าดูในช่วงนี้ (klaiwatch ยังไม่ได้ทำงาน หรือไม่มีบันทึกรอบการตรวจ): ไม่มีตัวเลขใดนับได้</div>'
    : partial
      ? `<div class="warn" data-figure="observedNote">มีข้อมูลตั้งแต่ ${esc(thaiDateTime(from))} และเพียง ${esc(sharePct(t.coveragePct))} % ของเวลาในช่วง: ตัวเลขทุกตัวนับเฉพาะเวลาที่ระบบเฝ้าดูจริง เวลาก่อนเริ่มเฝ้าดูและช่วงที่ตัวเก็บข้อมูลไม่ได้ทำงานไม่นับทั้งเป็นผลดีและผลเสีย</div>`
      : ''
}
<div class="boxes">
  ${summaryBox('สภาพพร้อมใช้งานรวม', t.availabilityPct === null ? '' : `${pctCut(t.availabilityPct)} %`, 'totalAvailabilityPct')}
  ${summaryBox('ความพร้อม DLTV', t.readiness.pct === null ? '' : `${pctCut(t.readiness.pct)} %`, 'totalReadinessPct', t.readiness.periods > 0 ? `${t.readiness.ready}/${t.readiness.periods} คาบ` : '')}
  ${summaryBox('เหตุขัดข้อง', `${t.outages} ครั้ง`, 'totalOutages')}
  ${summaryBox('เวลาเฉลี่ยในการแก้ไข', t.mttrS === null ? '' : formatThaiDuration(Math.round(t.mttrS)), 'totalMttr')}
  ${summaryBox('ขัดข้องที่ยังไม่แก้ไข', `${t.openNow} รายการ`, 'totalOpenNow')}
  ${summaryBox('ปัญหาที่ยังไม่แก้ไข', `${t.checksOpen} รายการ`, 'totalChecksOpen')}
  ${summaryBox('เวลาที่มีข้อมูล', sharePct(t.coveragePct) === '' ? '' : `${sharePct(t.coveragePct)} %`, 'totalCoveragePct', from === null ? '' : `ตั้งแต่ ${shortThaiDate(from)}`)}
</div>
<h2>ผลรายโรงเรียน (${schools.length} โรงเรียน)${office.length > 0 ? ' และสำนักงานเขตพื้นที่' : ''}</h2>
<table class="schools">
<thead><tr>${HTML_COLUMNS.map((c) => `<th>${esc(c.th)}</th>`).join('')}</tr></thead>
<tbody class="schools">
${schools.map(row).join('\n')}
</tbody>
${office.length > 0 ? `<tbody class="office">\n<tr><th colspan="${colspan}">สำนักงานเขตพื้นที่ (ไม่ใช่โรงเรียน: ไม่นับในความพร้อม DLTV)</th></tr>\n${office.map(row).join('\n')}\n</tbody>` : ''}
<tbody class="total"><tr data-school="total">${HTML_COLUMNS.map((c) => (c.key === 'code' ? '<td data-figure="code"></td>' : c.key === 'name' ? `<td data-figure="name">${esc(r.totalLabel)}</td>` : htmlCell(c, totalRow))).join('')}</tr></tbody>
</table>
<h2>ผลรายอำเภอ</h2>
<table class="districts">
<thead><tr><th>อำเภอ</th><th>มีข้อมูล (% ของช่วง)</th><th>สภาพพร้อมใช้งานรวม (%)</th><th>เราเตอร์ (%)</th><th>ความพร้อม DLTV (%)</th><th>เหตุขัดข้อง (ครั้ง)</th><th>เวลาเฉลี่ยในการแก้ไข</th></tr></thead>
<tbody>
${r.districts.map((d) => `<tr data-district="${esc(d.district)}"><td>${esc(d.district)}</td><td class="n">${esc(shown(sharePct(d.coveragePct)))}</td><td class="n">${shown(pctCut(d.availabilityPct))}</td><td class="n">${shown(kindPct(d, 'router'))}</td><td class="n">${shown(pctCut(d.readiness.pct))}</td><td class="n">${d.outages}</td><td class="n">${d.mttrS === null ? '—' : esc(formatThaiDuration(Math.round(d.mttrS)))}</td></tr>`).join('\n')}
</tbody>
</table>
<h2>เหตุขัดข้องที่เริ่มในช่วงนี้ (${outages.length} รายการ)</h2>
<table class="incidents">
<thead><tr><th>โรงเรียน</th><th>อุปกรณ์</th><th>ประเภท</th><th>สถานะ</th><th>สาเหตุ</th><th>เริ่ม</th><th>สิ้นสุด</th><th>ระยะเวลา</th></tr></thead>
<tbody>
${outages
  .map(
    (i) =>
      `<tr data-incident="${i.id}"><td>${esc(nameOf.get(i.school) ?? i.school)}</td><td>${esc(i.device)}</td><td>${esc(kindTh(i.kind))}</td><td>${i.state === 'down' ? 'ขัดข้อง' : 'ติดต่อไม่ได้'}</td><td>${esc(i.cause === i.device ? 'ตัวอุปกรณ์เอง' : `ต้นทาง ${i.cause}`)}</td><td>${esc(thaiDateTime(i.startedAt))}</td><td>${i.endedAt === null ? 'ยังไม่แก้ไข' : esc(thaiDateTime(i.endedAt))}</td><td class="n">${i.durationS === null ? '—' : esc(formatThaiDuration(i.durationS))}</td></tr>`,
  )
  .join('\n')}
</tbody>
</table>
<h2>ปัญหาที่ตรวจพบ (ไม่ใช่เหตุขัดข้อง: อุปกรณ์ยังใช้งานได้)</h2>
<div class="boxes">
  ${summaryBox('เริ่มในช่วงนี้', `${t.checks} รายการ`, 'totalChecks')}
  ${summaryBox('ยังไม่แก้ไข ณ สิ้นช่วง', `${t.checksOpen} รายการ`, 'totalChecksOpen2')}
  ${summaryBox('แก้ไขเสร็จในช่วงนี้', `${t.checksRepaired} รายการ`, 'totalChecksRepaired')}
  ${summaryBox('เวลาเฉลี่ยในการแก้ปัญหา', t.checksMttrS === null ? '' : formatThaiDuration(Math.round(t.checksMttrS)), 'totalChecksMttr')}
</div>
${
  withChecks.length > 0
    ? `<table class="checks-by-school">
<thead><tr><th>รหัส</th><th>โรงเรียน</th><th>เริ่มในช่วงนี้</th><th>ยังไม่แก้ไข</th><th>แก้ไขเสร็จ</th><th>เวลาเฉลี่ยในการแก้ปัญหา</th></tr></thead>
<tbody>
${withChecks.map((s) => `<tr data-checks="${esc(s.code)}"><td>${esc(s.code)}</td><td>${esc(s.name)}</td><td class="n" data-figure="checks">${s.checks}</td><td class="n" data-figure="checksOpen">${s.checksOpen}</td><td class="n" data-figure="checksRepaired">${s.checksRepaired}</td><td class="n">${s.checksMttrS === null ? '—' : esc(formatThaiDuration(Math.round(s.checksMttrS)))}</td></tr>`).join('\n')}
</tbody>
</table>`
    : ''
}
<table class="checks">
<thead><tr><th>โรงเรียน</th><th>อุปกรณ์</th><th>ปัญหา</th><th>เริ่ม</th><th>สิ้นสุด</th><th>ระยะเวลา</th></tr></thead>
<tbody>
${checks.length === 0 ? `<tr><td colspan="6">ไม่มี</td></tr>` : ''}${checks
  .map(
    (i) =>
      `<tr data-check-incident="${i.id}"><td>${esc(nameOf.get(i.school) ?? i.school)}</td><td>${esc(i.device)}</td><td>${esc(checkTh(i.check).title)} <span class="tech">(${esc(i.check)})</span></td><td>${esc(thaiDateTime(i.startedAt))}</td><td>${i.endedAt === null || i.endedAt > r.countedTo ? 'ยังไม่แก้ไข' : esc(thaiDateTime(i.endedAt))}</td><td class="n">${i.durationS === null || i.endedAt! > r.countedTo ? '—' : esc(formatThaiDuration(i.durationS))}</td></tr>`,
  )
  .join('\n')}
</tbody>
</table>
${uplinkSection(r)}
<div class="notes">
<strong>นิยาม</strong>
<ul>
  <li>เวลาที่มีข้อมูล = ส่วนของเวลาตามตารางที่ klaiwatch เฝ้าดูจริง: ตั้งแต่รอบตรวจแรกของอุปกรณ์แต่ละเครื่อง และเฉพาะช่วงที่ตัวเก็บข้อมูลทำงานต่อเนื่อง (แต่ละรอบครอบคลุมหนึ่งช่วงการตรวจ) เวลาก่อนเริ่มเฝ้าดูและช่วงที่ตัวเก็บข้อมูลหยุด ไม่นับทั้งเป็นผลดีและผลเสีย ช่วงที่ไม่มีเวลาที่เฝ้าดูเลยแสดง “—” ไม่ใช่ 100 %</li>
  <li>สภาพพร้อมใช้งาน = เวลาที่ใช้งานได้ ÷ เวลาที่สังเกตได้ เวลาที่สังเกตได้คือเวลาตามตาราง (อุปกรณ์ทั่วไปตลอดเวลา เครื่องรับ DLTV เฉพาะคาบออกอากาศในวันเรียน) ที่มีข้อมูล หักช่วงปิดปรับปรุงตามแผน และหักช่วงที่ติดต่อไม่ได้เพราะอุปกรณ์ต้นทางขัดข้อง (นับเป็นเหตุขัดข้องของต้นทาง) ร้อยละทุกค่าตัดทศนิยม ไม่ปัดขึ้น: 100.00 เฉพาะเมื่อไม่มีเวลาขัดข้องเลย</li>
  <li>ความพร้อม DLTV = ส่วนของคาบเรียน (เครื่องรับ × คาบออกอากาศ) ที่เครื่องรับใช้งานได้และล็อกสัญญาณได้อย่างน้อย ${READY_SHARE * 100} % ของคาบ นับเฉพาะคาบที่มีข้อมูลอย่างน้อยครึ่งคาบ${t.readiness.unobserved > 0 ? ` (ไม่มีข้อมูล ${t.readiness.unobserved} คาบ)` : ''} ไม่นับคาบที่มีการปิดปรับปรุง หรือติดต่อไม่ได้เกินครึ่งคาบ${t.readiness.excluded > 0 ? ` (${t.readiness.excluded} คาบ)` : ''} และไม่นับเครื่องรับของสำนักงานเขต (ไม่ใช่ห้องเรียน)</li>
  <li>เหตุขัดข้อง = อุปกรณ์ขัดข้องเอง (ไม่รวมที่ติดต่อไม่ได้เพราะต้นทาง และไม่รวมปัญหาที่ตรวจพบ) นับในช่วงที่เริ่ม และเฉพาะที่เกิดในเวลาที่สังเกตได้ “ยังไม่แก้ไข” คือยังเปิดอยู่ ณ สิ้นเวลาที่นับ เวลาเฉลี่ยในการแก้ไขคิดจากเหตุที่แก้ไขเสร็จในช่วงนี้ เต็มระยะเวลา นิยามเดียวกับแดชบอร์ดผลการประเมิน ช่วงปิดปรับปรุงที่เริ่มระหว่างเหตุขัดข้องไม่ถือว่าแก้ไขแล้ว: เหตุยังเปิดอยู่จนอุปกรณ์กลับมาใช้งานได้ (เวลาในช่วงปิดปรับปรุงไม่นับเป็นเวลาขัดข้อง แต่นับในเวลาแก้ไข)</li>
  <li>ปัญหาที่ตรวจพบ = อุปกรณ์ยังใช้งานได้แต่มีค่าผิดปกติ (เครื่องรับไม่ล็อกสัญญาณ ดิสก์ใกล้เต็ม พอร์ตอินเทอร์เน็ตไม่ทำงาน SNMP ไม่ตอบ ฯลฯ) นับแยกจากเหตุขัดข้องด้วยกติกาเดียวกัน</li>
  <li>ความหน่วงและการสูญหายของแพ็กเก็ต: ICMP ไปยังเราเตอร์ของโรงเรียน มัธยฐาน/เปอร์เซ็นไทล์ที่ 95 ${r.schools.some((s) => s.link?.source === 'rollup_5m') ? 'จากค่าเฉลี่ยราย 5 นาที' : 'จากทุกรอบการวัด'}</li>
  <li>— ไม่มีข้อมูล: ไม่ได้วัด (ไม่มีอุปกรณ์ประเภทนั้น ไม่มีเวลาที่สังเกตได้ ไม่มีคาบที่นับ ไม่มีเหตุที่แก้ไขเสร็จ หรือไม่มีค่าความหน่วงจาก InfluxDB ในช่วงนี้) ไม่ใช่ศูนย์ · &lt; 0.01 ในช่องเวลาที่มีข้อมูล: มีข้อมูลอยู่บ้าง แต่น้อยกว่า 0.01 % ของช่วง</li>
  <li>ข้อมูลจาก klaiwatch: สถานะ เหตุขัดข้อง และรอบการตรวจจากฐานข้อมูลสถานะ ค่าความหน่วงจาก InfluxDB; ${from === null ? 'ไม่มีข้อมูลในช่วงนี้' : `มีข้อมูลตั้งแต่ ${esc(thaiDateTime(from))}`}</li>
</ul>
</div>
<div class="signatures">
  ${signature('ผู้จัดทำรายงาน', r.office.preparedBy)}
  ${signature('ผู้รับรองรายงาน', r.office.approvedBy)}
</div>
</body>
</html>
`;
}

export function render(r: Report, format: Format): string {
  return format === 'csv' ? renderCsv(r) : format === 'html' ? renderHtml(r) : renderJson(r);
}
