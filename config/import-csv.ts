// Spreadsheet → inventory YAML. Officers keep their school lists in Excel or
// Google Sheets; "Save as CSV UTF-8" gives a file with a byte-order mark and
// Thai headers. One row per school; its devices come from a few columns.
// Every row is checked with the same schema as a hand-written inventory, and
// a bad row is reported as `FILE:LINE: column: reason`.
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
  const problems: string[] = [];
  const records = parse(text.replace(/^\uFEFF/, ''), { bom: true, skip_empty_lines: true, relax_column_count: true, trim: true, info: true }) as unknown as { record: string[]; info: { lines: number } }[];
  if (records.length === 0) return { schools: [], problems: [`${file}: the file is empty`] };
  const header = records[0]!.record.map((h) => h.toLowerCase().trim());
  const col = new Map<string, number>();
  header.forEach((h, i) => {
    for (const [key, aliases] of Object.entries(HEADERS)) if (aliases.includes(h)) col.set(key, i);
  });
  for (const required of ['code', 'name_th']) {
    if (!col.has(required)) problems.push(`${file}:1: no column for ${required} (accepted headers: ${HEADERS[required]!.join(', ')})`);
  }
  const unknown = header.filter((h) => h && !Object.values(HEADERS).some((a) => a.includes(h)));
  if (unknown.length > 0) problems.push(`${file}:1: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}`);
  if (problems.length > 0) return { schools: [], problems };

  const schools: SchoolInput[] = [];
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
      problems.push(`${file}:${line}: dltv_receivers must be a whole number 0–200; got ${JSON.stringify(get('dltv_receivers'))}`);
      continue;
    }
    const firstIp = get('dltv_first_ip');
    if (nReceivers > 0 && (!firstIp || !isIPv4(firstIp))) {
      problems.push(`${file}:${line}: dltv_first_ip must be an IPv4 address when dltv_receivers is ${nReceivers}; got ${JSON.stringify(firstIp ?? '')}`);
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
        problems.push(`${file}:${line}: ${issue.path.join('.') || 'row'}: ${issue.message}`);
      }
      continue;
    }
    schools.push(raw as SchoolInput);
  }
  const seen = new Map<string, number>();
  schools.forEach((s, i) => {
    if (seen.has(s.code)) problems.push(`${file}: school code ${s.code} appears twice (rows ${seen.get(s.code)! + 2} and ${i + 2})`);
    seen.set(s.code, i);
  });
  return { schools, problems };
}

export function inventoryYaml(schools: SchoolInput[], source: string): string {
  return `# Imported by \`klaiwatch import-schools ${source}\`.\n` + stringify({ schools }, { lineWidth: 0 });
}
