import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parse } from 'yaml';
import { importSchoolsCsv, inventoryYaml } from '../../config/import-csv.ts';
import { loadConfig } from '../../config/load.ts';
import { tempDir } from '../helpers/peers.ts';

const dir = tempDir('csv');
afterAll(() => dir.remove());

describe('import-schools (spreadsheet CSV → inventory)', () => {
  it('imports the example spreadsheet (UTF-8 with BOM, Thai headers) into an inventory that loads', () => {
    const csv = readFileSync('config/examples/schools.csv', 'utf8');
    expect(csv.charCodeAt(0)).toBe(0xfeff);
    const { schools, problems } = importSchoolsCsv(csv, 'schools.csv', { defaultParent: 'office-uplink' });
    expect(problems).toEqual([]);
    expect(schools).toHaveLength(20);
    const first = schools[0]!;
    expect(first.name_th).toBe('โรงเรียนบ้านหนองบัวแดง');
    expect(first.district).toBe('หนองบัวแดง');
    expect(first.contacts[0]).toEqual({ name: 'ครูสมชาย ใจดี', email: 'ict.nongbuadaeng@example.org' });
    expect(first.devices.map((d) => [d.id, d.kind, d.address, d.parent])).toEqual([
      ['1036090101-router', 'router', '10.36.1.1', 'office-uplink'],
      ['1036090101-dltv-1', 'dltv-receiver', '10.36.1.11', '1036090101-router'],
      ['1036090101-dltv-2', 'dltv-receiver', '10.36.1.12', '1036090101-router'],
      ['1036090101-dltv-3', 'dltv-receiver', '10.36.1.13', '1036090101-router'],
      ['1036090101-server', 'server', '10.36.1.2', '1036090101-router'],
    ]);
    // The committed example inventory is exactly what the import makes.
    expect(parse(inventoryYaml(schools, 'x'))).toEqual(parse(readFileSync('config/examples/schools.yaml', 'utf8')));
  });

  it('reads a file without BOM and with English headers, and the CLI writes YAML that check-config accepts', () => {
    const csv = 'code,name_th,district,router_ip,snmp,dltv_receivers,dltv_first_ip\n40123,โรงเรียนบ้านทดสอบ,เมือง,10.9.0.1,default,2,10.9.0.21\n';
    writeFileSync(join(dir.path, 'in.csv'), csv);
    execFileSync(process.execPath, ['bin/klaiwatch.ts', 'import-schools', join(dir.path, 'in.csv'), '--out', join(dir.path, 'schools.yaml')], { stdio: 'pipe' });
    writeFileSync(join(dir.path, 'area.yaml'), 'area: { code: t, name_th: ทดสอบ }\ninventory: schools.yaml\ninflux: { url: "http://127.0.0.1:1" }\nsnmp: { credentials: { default: { version: 2c, community: public } } }\n');
    const c = loadConfig(join(dir.path, 'area.yaml'), { env: {} });
    expect(c.devices.map((d) => d.address)).toEqual(['10.9.0.1', '10.9.0.21', '10.9.0.22']);
    expect(c.deviceById.get('40123-dltv-2')!.profile).toBe('icmp-only');
    expect(c.deviceById.get('40123-dltv-2')!.snmp).toBeUndefined();
  });

  it('names the file, line and column of each bad row, and keeps none of them', () => {
    const csv = [
      'รหัสโรงเรียน,ชื่อโรงเรียน,อีเมล,router_ip,dltv_receivers,dltv_first_ip',
      '1001,โรงเรียนหนึ่ง,not-an-email,10.0.0.1,0,',
      '1002,โรงเรียนสอง,a@example.org,10.0.0,0,',
      '1003,โรงเรียนสาม,b@example.org,10.0.1.1,two,',
      '1004,โรงเรียนสี่,c@example.org,10.0.2.1,2,',
    ].join('\r\n');
    const { schools, problems } = importSchoolsCsv(csv, 'bad.csv');
    expect(schools).toHaveLength(0);
    expect(problems).toEqual([
      expect.stringMatching(/^bad\.csv:2: อีเมล: must be an e-mail address; got "not-an-email"$/),
      expect.stringMatching(/^bad\.csv:3: router_ip: must be an IPv4 or IPv6 address or a host name; got "10\.0\.0"$/),
      'bad.csv:4: dltv_receivers: must be a whole number 0–200; got "two"',
      'bad.csv:5: dltv_first_ip: must be an IPv4 address when dltv_receivers is 2; got ""',
    ]);
  });

  it('refuses a sheet without the school code or name column, listing the accepted headers', () => {
    const { problems } = importSchoolsCsv('ชื่อ,สีโปรด\nก,แดง\n', 'x.csv');
    expect(problems[0]).toBe('x.csv:1: no column for code (accepted headers: code, school_code, รหัสโรงเรียน, รหัส)');
    expect(problems[1]).toBe('x.csv:1: unknown column "สีโปรด"');
  });
});
