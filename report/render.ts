// The report as the director reads it: CSV (one line per school, Thai
// headings, opens in Excel), a printable HTML page (A4 landscape, Thai font,
// Buddhist-Era dates) and JSON (everything, for the API and for checking).
import type { DeviceKind } from '../config/schema.ts';
import { formatThaiDuration } from '../collector/alerts/notices.ts';
import type { GroupFigures, Report, SchoolFigures } from './figures.ts';
import { READY_SHARE } from './figures.ts';
import { thaiDate, thaiDateTime } from './period.ts';

export const FORMATS = ['csv', 'html', 'json'] as const;
export type Format = (typeof FORMATS)[number];

/** Two decimals, or empty when there is no figure. */
const fixed = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '' : v.toFixed(digits));
const kindPct = (g: GroupFigures, kind: DeviceKind) => fixed(g.byKind[kind]?.availabilityPct);

interface Column {
  th: string;
  key: string;
  value(g: SchoolFigures | (GroupFigures & { code?: string; name?: string; district?: string; link?: SchoolFigures['link'] })): string;
}

const COLUMNS: Column[] = [
  { th: 'รหัสโรงเรียน', key: 'code', value: (g) => g.code ?? '' },
  { th: 'ชื่อโรงเรียน', key: 'name', value: (g) => g.name ?? '' },
  { th: 'อำเภอ', key: 'district', value: (g) => g.district ?? '' },
  { th: 'สภาพพร้อมใช้งานรวม (%)', key: 'availabilityPct', value: (g) => fixed(g.availabilityPct) },
  { th: 'เราเตอร์ (%)', key: 'router', value: (g) => kindPct(g, 'router') },
  { th: 'เครื่องรับ DLTV (%)', key: 'dltv', value: (g) => kindPct(g, 'dltv-receiver') },
  { th: 'เซิร์ฟเวอร์ (%)', key: 'server', value: (g) => kindPct(g, 'server') },
  { th: 'ความพร้อม DLTV (%)', key: 'readinessPct', value: (g) => fixed(g.readiness.pct) },
  { th: 'คาบที่พร้อม/คาบที่นับ', key: 'readinessPeriods', value: (g) => (g.readiness.periods > 0 ? `${g.readiness.ready}/${g.readiness.periods}` : '') },
  { th: 'เหตุขัดข้อง (ครั้ง)', key: 'outages', value: (g) => String(g.outages) },
  { th: 'ขัดข้องจากต้นทาง (ครั้ง)', key: 'upstream', value: (g) => String(g.upstream) },
  { th: 'ยังไม่แก้ไข', key: 'openNow', value: (g) => String(g.openNow) },
  { th: 'เวลาเฉลี่ยในการแก้ไข (นาที)', key: 'mttrMin', value: (g) => fixed(g.mttrS === null ? null : g.mttrS / 60, 1) },
  { th: 'ความหน่วง มัธยฐาน (ms)', key: 'rttMedian', value: (g) => fixed(g.link?.rttMedianMs, 1) },
  { th: 'ความหน่วง p95 (ms)', key: 'rttP95', value: (g) => fixed(g.link?.rttP95Ms, 1) },
  { th: 'สูญหาย มัธยฐาน (%)', key: 'lossMedian', value: (g) => fixed(g.link?.lossMedianPct) },
  { th: 'สูญหาย p95 (%)', key: 'lossP95', value: (g) => fixed(g.link?.lossP95Pct) },
];

const csvCell = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function renderCsv(r: Report): string {
  const lines = [COLUMNS.map((c) => c.th)];
  for (const s of r.schools) lines.push(COLUMNS.map((c) => c.value(s)));
  lines.push(COLUMNS.map((c) => (c.key === 'name' ? `รวมทั้งเขต (${r.area.name})` : c.key === 'code' ? '' : c.key === 'district' ? '' : c.value({ ...r.totals, link: null }))));
  // A byte-order mark, so Excel opens the Thai text as UTF-8.
  return '\ufeff' + lines.map((l) => l.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

export function renderJson(r: Report): string {
  return JSON.stringify(r, null, 2) + '\n';
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function summaryBox(label: string, value: string, figure: string): string {
  return `<div class="box"><div class="label">${esc(label)}</div><div class="value" data-figure="${figure}">${esc(value || '–')}</div></div>`;
}

export function renderHtml(r: Report): string {
  const t = r.totals;
  const schools = r.schools.filter((s) => !s.office);
  const office = r.schools.filter((s) => s.office);
  const row = (s: SchoolFigures) => `<tr data-school="${esc(s.code)}">${COLUMNS.map((c) => `<td data-figure="${c.key}"${/^(code|name|district)$/.test(c.key) ? '' : ' class="n"'}>${esc(c.value(s))}</td>`).join('')}</tr>`;
  const outages = r.incidents.filter((i) => i.check === '' && i.startedAt >= r.period.from);
  const deviceKind: Record<string, string> = { router: 'เราเตอร์', 'dltv-receiver': 'เครื่องรับ DLTV', server: 'เซิร์ฟเวอร์', switch: 'สวิตช์', 'access-point': 'จุดกระจายสัญญาณ', uplink: 'ลิงก์หลัก', other: 'อื่น ๆ' };
  const nameOf = new Map(r.schools.map((s) => [s.code, s.name]));
  return `<!doctype html>
<html lang="th">
<head>
<meta charset="utf-8">
<title>${esc(r.title)} · ${esc(r.period.label)}</title>
<style>
  @page { size: A4 landscape; margin: 12mm 10mm; }
  body { font-family: "Laksaman", "TH Sarabun New", "Sarabun", "Garuda", "Loma", sans-serif; font-size: 13pt; color: #111; margin: 0; }
  h1 { font-size: 19pt; margin: 0 0 2pt; }
  h2 { font-size: 15pt; margin: 12pt 0 4pt; break-after: avoid; }
  .meta { margin: 0 0 8pt; line-height: 1.3; }
  .boxes { display: flex; gap: 6pt; margin: 6pt 0; }
  .box { border: 1px solid #999; border-radius: 4pt; padding: 3pt 8pt; flex: 1; }
  .box .label { font-size: 11pt; color: #444; }
  .box .value { font-size: 18pt; font-weight: bold; }
  table { border-collapse: collapse; width: 100%; font-size: 11pt; }
  th, td { border: 1px solid #888; padding: 1pt 3pt; vertical-align: top; }
  th { background: #e8e8e8; font-weight: bold; font-size: 10pt; line-height: 1.3; }
  td { line-height: 1.3; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  tfoot td { font-weight: bold; background: #f3f3f3; }
  .notes { font-size: 10.5pt; color: #333; margin-top: 8pt; }
  .notes li { margin: 0; }
</style>
</head>
<body>
<h1>${esc(r.title)}</h1>
<div class="meta">
  <div>${esc(r.area.name)} · <strong data-figure="period">${esc(r.period.label)}</strong></div>
  <div>ช่วงเวลาที่นับ: ${esc(thaiDateTime(r.period.from))} ถึง ${esc(thaiDateTime(r.countedTo))}${r.countedTo < r.period.to ? ' (ยังไม่สิ้นสุดช่วง)' : ''}</div>
  <div>จัดทำเมื่อ ${esc(thaiDateTime(r.generatedAt))} · เวลาทั้งหมดเป็นเวลาประเทศไทย (UTC+07:00)</div>
</div>
<div class="boxes">
  ${summaryBox('สภาพพร้อมใช้งานรวม', t.availabilityPct === null ? '' : `${fixed(t.availabilityPct)} %`, 'totalAvailabilityPct')}
  ${summaryBox('ความพร้อม DLTV', t.readiness.pct === null ? '' : `${fixed(t.readiness.pct)} %`, 'totalReadinessPct')}
  ${summaryBox('เหตุขัดข้อง', `${t.outages} ครั้ง`, 'totalOutages')}
  ${summaryBox('เวลาเฉลี่ยในการแก้ไข', t.mttrS === null ? '' : formatThaiDuration(Math.round(t.mttrS)), 'totalMttr')}
  ${summaryBox('ยังไม่แก้ไข', `${t.openNow} รายการ`, 'totalOpenNow')}
</div>
<h2>ผลรายโรงเรียน (${schools.length} โรงเรียน)</h2>
<table class="schools">
<thead><tr>${COLUMNS.map((c) => `<th>${esc(c.th)}</th>`).join('')}</tr></thead>
<tbody>
${[...office, ...schools].map(row).join('\n')}
</tbody>
<tfoot><tr data-school="total">${COLUMNS.map((c) => `<td${/^(code|name|district)$/.test(c.key) ? '' : ' class="n"'} data-figure="${c.key}">${c.key === 'name' ? 'รวมทั้งเขต' : /^(code|district)$/.test(c.key) ? '' : esc(c.value({ ...t, link: null }))}</td>`).join('')}</tr></tfoot>
</table>
<h2>ผลรายอำเภอ</h2>
<table class="districts">
<thead><tr><th>อำเภอ</th><th>สภาพพร้อมใช้งานรวม (%)</th><th>เราเตอร์ (%)</th><th>ความพร้อม DLTV (%)</th><th>เหตุขัดข้อง (ครั้ง)</th><th>เวลาเฉลี่ยในการแก้ไข</th></tr></thead>
<tbody>
${r.districts.map((d) => `<tr data-district="${esc(d.district)}"><td>${esc(d.district)}</td><td class="n">${fixed(d.availabilityPct)}</td><td class="n">${kindPct(d, 'router')}</td><td class="n">${fixed(d.readiness.pct)}</td><td class="n">${d.outages}</td><td class="n">${d.mttrS === null ? '' : esc(formatThaiDuration(Math.round(d.mttrS)))}</td></tr>`).join('\n')}
</tbody>
</table>
<h2>เหตุขัดข้องที่เริ่มในช่วงนี้ (${outages.length} รายการ)</h2>
<table class="incidents">
<thead><tr><th>โรงเรียน</th><th>อุปกรณ์</th><th>ประเภท</th><th>สถานะ</th><th>สาเหตุ</th><th>เริ่ม</th><th>สิ้นสุด</th><th>ระยะเวลา</th></tr></thead>
<tbody>
${outages
  .map(
    (i) =>
      `<tr data-incident="${i.id}"><td>${esc(nameOf.get(i.school) ?? i.school)}</td><td>${esc(i.device)}</td><td>${esc(deviceKind[i.kind] ?? i.kind)}</td><td>${i.state === 'down' ? 'ขัดข้อง' : 'ติดต่อไม่ได้'}</td><td>${esc(i.cause === i.device ? 'ตัวอุปกรณ์เอง' : `ต้นทาง ${i.cause}`)}</td><td>${esc(thaiDateTime(i.startedAt))}</td><td>${i.endedAt === null ? 'ยังไม่แก้ไข' : esc(thaiDateTime(i.endedAt))}</td><td class="n">${i.durationS === null ? '' : esc(formatThaiDuration(i.durationS))}</td></tr>`,
  )
  .join('\n')}
</tbody>
</table>
<div class="notes">
<strong>นิยาม</strong>
<ul>
  <li>สภาพพร้อมใช้งาน = เวลาที่ใช้งานได้ ÷ เวลาที่สังเกตได้ เวลาที่สังเกตได้คือเวลาตามตาราง (อุปกรณ์ทั่วไปตลอดเวลา เครื่องรับ DLTV เฉพาะคาบออกอากาศในวันเรียน) หักช่วงปิดปรับปรุงตามแผน และหักช่วงที่ติดต่อไม่ได้เพราะอุปกรณ์ต้นทางขัดข้อง (นับเป็นเหตุขัดข้องของต้นทาง)</li>
  <li>ความพร้อม DLTV = ส่วนของคาบเรียน (เครื่องรับ × คาบออกอากาศ) ที่เครื่องรับใช้งานได้และล็อกสัญญาณได้อย่างน้อย ${READY_SHARE * 100} % ของคาบ ไม่นับคาบที่มีการปิดปรับปรุง หรือสังเกตได้ไม่ถึงครึ่งคาบ</li>
  <li>เหตุขัดข้อง = อุปกรณ์ขัดข้องเอง (ไม่รวมที่ติดต่อไม่ได้เพราะต้นทาง) นับในช่วงที่เริ่ม และเฉพาะที่เกิดในเวลาที่สังเกตได้ เวลาเฉลี่ยในการแก้ไขคิดจากเหตุที่แก้ไขเสร็จในช่วงนี้ เต็มระยะเวลา</li>
  <li>ความหน่วงและการสูญหายของแพ็กเก็ต: ICMP ไปยังเราเตอร์ของโรงเรียน มัธยฐานและเปอร์เซ็นไทล์ที่ 95 ${r.schools.some((s) => s.link?.source === 'rollup_5m') ? 'จากค่าเฉลี่ยราย 5 นาที' : 'จากทุกรอบการวัด'}</li>
  <li>ข้อมูลจาก klaiwatch: สถานะและเหตุขัดข้องจากฐานข้อมูลสถานะ ค่าความหน่วงจาก InfluxDB; ตั้งแต่ ${esc(thaiDate(r.period.from))}</li>
</ul>
</div>
</body>
</html>
`;
}

export function render(r: Report, format: Format): string {
  return format === 'csv' ? renderCsv(r) : format === 'html' ? renderHtml(r) : renderJson(r);
}
