// Spreadsheet → inventory YAML. Officers keep their school lists in Excel or
// Google Sheets; "Save as CSV UTF-8" gives a file with a byte-order mark and
// Thai headers. One row per school; its devices come from a few columns.
// Every row is checked with the same schema as a hand-written inventory, and
// a bad row is reported as `FILE:LINE: column: reason`, the column named as
// the sheet's header names it. Whatever the file holds, this never throws.
import { parse } from 'csv-parse/sync';
import { stringify } from 'yaml';
import { schoolSchema, type SchoolInput, type DeviceInput } from './schema.ts';
import { isIPv4 } from 'node:net';

/** Accepted headers (Thai or English, any case) for each column. */
const HEADERS: Record<string, string[]> = {
  code: ['code', 'school_code', 'รหัสโรงเรียน', 'รหัส'],
  name_th: ['name_th', 'ชื่อโรงเรียน', 'โรงเรียน', 'ชื่อ'],
  name_en: ['name_en', 'english_name', 'ชื่อภาษาอังกฤษ'],
  district: ['district', 'อำเภอ'],
  cluster: ['cluster', 'กลุ่มเครือข่าย', 'เครือข่าย'],
  lat: ['lat', 'latitude', 'ละติจูด'],
  lon: ['lon', 'lng', 'longitude', 'ลองจิจูด'],
  contact_name: ['contact_name', 'ผู้ประสานงาน', 'ผู้รับผิดชอบ'],
  contact_email: ['contact_email', 'email', 'อีเมล', 'e-mail'],
  router_ip: ['router_ip', 'router', 'ไอพีเราเตอร์', 'ip เราเตอร์'],
  router_profile: ['router_profile'],
  snmp: ['snmp', 'snmp_credentials'],
  parent: ['parent', 'uplink'],
  dltv_receivers: ['dltv_receivers', 'จำนวนเครื่องรับ dltv', 'dltv'],
  dltv_first_ip: ['dltv_first_ip', 'dltv_ip'],
  dltv_profile: ['dltv_profile'],
  server_ip: ['server_ip', 'server'],
  server_profile: ['server_profile'],
};

/** More rows than any area has schools: the wrong file, or a sheet of something else. */
export const MAX_ROWS = 10_000;
/** One row (a school) longer than this is not a school. */
export const MAX_ROW_BYTES = 64 * 1024;
const MAX_PROBLEM_CHARS = 300;

/** Plain words for csv-parse's errors (its own messages quote the raw bytes and the options). */
const CSV_REASONS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted field (") is never closed',
  CSV_INVALID_CLOSING_QUOTE: 'a quote (") inside a field: write it as "" inside a quoted field',
  INVALID_OPENING_QUOTE: 'a quote (") in the middle of a field: quote the whole field and write the quote as ""',
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'text after the closing quote of a field',
  CSV_MAX_RECORD_SIZE: `the row is longer than ${MAX_ROW_BYTES / 1024} KiB`,
  CSV_RECORD_INCONSISTENT_FIELDS_LENGTH: 'the row has a different number of fields than the header',
};

function clip(line: string): string {
  // eslint-disable-next-line no-control-regex
  const out = line.slice(0, MAX_PROBLEM_CHARS * 2).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  if (out.length <= MAX_PROBLEM_CHARS && line.length <= MAX_PROBLEM_CHARS * 2) return out;
  const cut = out.slice(0, MAX_PROBLEM_CHARS - 1);
  return (/[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut) + '…';
}

/** The CSV column a schema path of the school built from a row came from (devices[0] is the router when there is one). */
function columnOf(path: readonly PropertyKey[], devices: readonly Partial<DeviceInput>[]): string | undefined {
  const [top, a, b] = path;
  if (top === 'location') return a === 'lat' || a === 'lon' ? String(a) : 'lat';
  if (top === 'contacts') return b === 'name' ? 'contact_name' : 'contact_email';
  if (top === 'devices' && typeof a === 'number') {
    const kind = devices[a]?.kind;
    const prefix = kind === 'router' ? 'router' : kind === 'server' ? 'server' : 'dltv';
    if (b === 'address') return kind === 'dltv-receiver' ? 'dltv_first_ip' : `${prefix}_ip`;
    if (b === 'profile') return `${prefix}_profile`;
    if (b === 'snmp' || b === 'parent') return String(b);
    return 'code'; // the id is made from the school code
  }
  return typeof top === 'string' && top in HEADERS ? top : undefined;
}

export interface ImportResult {
  schools: SchoolInput[];
  problems: string[];
}

function nextIp(ip: string, n: number): string | undefined {
  const parts = ip.split('.').map(Number);
  const v = ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]! + n;
  if (v > 0xffffffff) return undefined;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

export function importSchoolsCsv(text: string, file: string, opts: { defaultParent?: string } = {}): ImportResult {
  const result = importRows(text, file, opts);
  return { schools: result.schools, problems: result.problems.map(clip) };
}

function importRows(text: string, file: string, opts: { defaultParent?: string }): ImportResult {
  const problems: string[] = [];
  let header: string[] = [];
  const columnName = (index: unknown) => (typeof index === 'number' && header[index] ? header[index] : typeof index === 'number' ? `column ${index + 1}` : 'row');
  // Rows csv-parse could not read, named once the header is known.
  const broken: { code?: string; lines?: number; column?: unknown }[] = [];
  const brokenLines = () => broken.map((e) => `${file}:${e.lines ?? '?'}: ${columnName(e.column)}: ${CSV_REASONS[e.code ?? ''] ?? `not readable as CSV (${e.code ?? 'error'})`}`);
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text.replace(/^\uFEFF/, ''), {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
      trim: true,
      info: true,
      max_record_size: MAX_ROW_BYTES,
      to: MAX_ROWS + 2,
      // A broken row is reported and skipped; the rest are still checked, so every problem shows at once.
      skip_records_with_error: true,
      on_skip: (err: unknown) => {
        if (broken.length <= MAX_ROWS) broken.push(err as { code?: string; lines?: number; column?: unknown });
      },
    }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (err) {
    const e = err as { code?: string; lines?: number; message?: string };
    return { schools: [], problems: [...brokenLines(), `${file}:${e.lines ?? '?'}: not readable as CSV: ${CSV_REASONS[e.code ?? ''] ?? String(e.message ?? err).split('\n')[0]}`] };
  }
  if (records.length === 0) return { schools: [], problems: broken.length > 0 ? brokenLines() : [`${file}: the file is empty`] };
  if (records.length > MAX_ROWS + 1) return { schools: [], problems: [`${file}: more than ${MAX_ROWS} rows; an area has a few hundred schools, one row each: is it the right file?`] };
  const headerLine = records[0]!.info.lines;
  header = records[0]!.record.map((h) => h.trim());
  const unreadable = brokenLines();
  const col = new Map<string, number>();
  header.forEach((raw, i) => {
    const h = raw.toLowerCase();
    for (const [key, aliases] of Object.entries(HEADERS)) {
      if (!aliases.includes(h)) continue;
      const first = col.get(key);
      if (first !== undefined) problems.push(`${file}:${headerLine}: ${raw}: the column for ${key} appears twice (columns ${first + 1} and ${i + 1})`);
      else col.set(key, i);
    }
  });
  for (const required of ['code', 'name_th']) {
    if (!col.has(required)) problems.push(`${file}:${headerLine}: no column for ${required} (accepted headers: ${HEADERS[required]!.join(', ')})`);
  }
  const unknown = header.map((h) => h.toLowerCase()).filter((h) => h && !Object.values(HEADERS).some((a) => a.includes(h)));
  if (unknown.length > 0) problems.push(`${file}:${headerLine}: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 10).map((u) => JSON.stringify(u.slice(0, 40))).join(', ')}${unknown.length > 10 ? ` and ${unknown.length - 10} more` : ''}`);
  if (problems.length > 0) return { schools: [], problems: [...unreadable, ...problems] };
  problems.push(...unreadable);
  /** The column as the sheet's header names it. */
  const shown = (key: string) => {
    const i = col.get(key);
    return i === undefined ? key : header[i]!;
  };

  const schools: SchoolInput[] = [];
  const lineOfSchool: number[] = [];
  for (const { record, info } of records.slice(1)) {
    const line = info.lines;
    const get = (k: string) => {
      const i = col.get(k);
      const v = i === undefined ? '' : (record[i] ?? '').trim();
      return v === '' ? undefined : v;
    };
    const code = get('code') ?? '';
    const devices: Partial<DeviceInput>[] = [];
    const snmp = get('snmp');
    const routerIp = get('router_ip');
    if (routerIp) {
      devices.push({ id: `${code}-router`, kind: 'router', address: routerIp, profile: get('router_profile') ?? 'auto', ...(snmp ? { snmp } : {}), ...(get('parent') ?? opts.defaultParent ? { parent: get('parent') ?? opts.defaultParent } : {}) });
    }
    const nReceivers = Number(get('dltv_receivers') ?? 0);
    if (!Number.isInteger(nReceivers) || nReceivers < 0 || nReceivers > 200) {
      problems.push(`${file}:${line}: ${shown('dltv_receivers')}: must be a whole number 0–200; got ${JSON.stringify(get('dltv_receivers'))}`);
      continue;
    }
    const firstIp = get('dltv_first_ip');
    if (nReceivers > 0 && (!firstIp || !isIPv4(firstIp))) {
      problems.push(`${file}:${line}: ${shown('dltv_first_ip')}: must be an IPv4 address when ${shown('dltv_receivers')} is ${nReceivers}; got ${JSON.stringify(firstIp ?? '')}`);
      continue;
    }
    const dltvProfile = get('dltv_profile') ?? 'icmp-only';
    for (let k = 0; k < nReceivers; k++) {
      devices.push({
        id: `${code}-dltv-${k + 1}`,
        kind: 'dltv-receiver',
        address: nextIp(firstIp!, k) ?? '',
        profile: dltvProfile,
        classroom: `ห้องเรียน ${k + 1}`,
        ...(dltvProfile !== 'icmp-only' && snmp ? { snmp } : {}),
        ...(routerIp ? { parent: `${code}-router` } : {}),
      });
    }
    const serverIp = get('server_ip');
    if (serverIp) devices.push({ id: `${code}-server`, kind: 'server', address: serverIp, profile: get('server_profile') ?? 'auto', ...(snmp ? { snmp } : {}), ...(routerIp ? { parent: `${code}-router` } : {}) });

    const lat = get('lat');
    const lon = get('lon');
    const notNumber = (['lat', 'lon'] as const).filter((k) => (k === 'lat' ? lat : lon) !== undefined && !Number.isFinite(Number(k === 'lat' ? lat : lon)));
    if ((lat === undefined) !== (lon === undefined) || notNumber.length > 0) {
      const k = notNumber[0] ?? (lat === undefined ? 'lat' : 'lon');
      problems.push(`${file}:${line}: ${shown(k)}: ${notNumber.length > 0 ? `must be a number such as 16.0706; got ${JSON.stringify(get(k))}` : 'lat and lon go together: give both or neither'}`);
      continue;
    }
    const raw: Record<string, unknown> = {
      code,
      name_th: get('name_th'),
      ...(get('name_en') ? { name_en: get('name_en') } : {}),
      ...(get('district') ? { district: get('district') } : {}),
      ...(get('cluster') ? { cluster: get('cluster') } : {}),
      ...(lat || lon ? { location: { lat: Number(lat), lon: Number(lon) } } : {}),
      ...(get('contact_email') ? { contacts: [{ ...(get('contact_name') ? { name: get('contact_name') } : {}), email: get('contact_email') }] } : {}),
      devices,
    };
    const r = schoolSchema.safeParse(raw, { reportInput: true });
    if (!r.success) {
      for (const issue of r.error.issues) {
        const key = columnOf(issue.path, devices);
        problems.push(`${file}:${line}: ${key ? shown(key) : issue.path.join('.') || 'row'}: ${issue.message}`);
      }
      continue;
    }
    schools.push(raw as SchoolInput);
    lineOfSchool.push(line);
  }
  const seen = new Map<string, number>();
  schools.forEach((s, i) => {
    const first = seen.get(s.code);
    if (first !== undefined) problems.push(`${file}:${lineOfSchool[i]}: ${shown('code')}: school code ${s.code} appears twice (lines ${first} and ${lineOfSchool[i]})`);
    else seen.set(s.code, lineOfSchool[i]!);
  });
  return { schools, problems };
}

export function inventoryYaml(schools: SchoolInput[], source: string): string {
  return `# Imported by \`klaiwatch import-schools ${source}\`.\n` + stringify({ schools }, { lineWidth: 0 });
}
