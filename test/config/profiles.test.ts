import { describe, it, expect, afterAll } from 'vitest';
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from 'node:path';
import { loadProfiles, BUILTIN_PROFILE_DIR, formatProblem, type Problem } from '../../config/load.ts';
import { chooseProfile, mapValue } from '../../collector/snmp/poll.ts';
import { tempDir } from '../helpers/peers.ts';

const dir = tempDir('profiles');
afterAll(() => dir.remove());

describe('device profiles as data', () => {
  it('loads every built-in profile with no problem, includes resolved', () => {
    const problems: Problem[] = [];
    const profiles = loadProfiles([BUILTIN_PROFILE_DIR], problems);
    expect(problems.map(formatProblem)).toEqual([]);
    for (const name of ['generic', 'if-mib', 'host-resources', 'mikrotik-routeros', 'linux-netsnmp', 'windows', 'pbi-dch4000p', 'icmp-only', 'tplink-jetstream', 'device-info', 'fortinet-fortigate', 'pfsense-opnsense', 'cisco-ios', 'arris-dsr4410md']) {
      expect(profiles.has(name), name).toBe(true);
    }
    expect(profiles.get('icmp-only')!.snmp).toBe(false);
    expect(profiles.get('linux-netsnmp')!.scalars.map((s) => s.name)).toEqual(['sysDescr', 'sysName', 'entPhysicalSoftwareRev', 'entPhysicalSerialNum', 'entPhysicalMfgName', 'entPhysicalModelName', 'memTotalReal', 'memAvailReal', 'laLoad1']);
    // A vendor's own firmware object comes after the ENTITY-MIB one, so it wins.
    const fg = profiles.get('fortinet-fortigate')!.scalars.filter((s) => s.field === 'firmware').map((s) => s.name);
    expect(fg).toEqual(['entPhysicalSoftwareRev', 'fgSysVersion']);
    expect(profiles.get('pbi-dch4000p')!.scalars.find((s) => s.name === 'tunerLock')!.field).toBe('lock');
  });

  it('chooses by the longest sysObjectID prefix, and generic when none matches', () => {
    const profiles = loadProfiles([BUILTIN_PROFILE_DIR], []);
    expect(chooseProfile('1.3.6.1.4.1.14988.1', profiles)).toBe('mikrotik-routeros');
    expect(chooseProfile('1.3.6.1.4.1.8072.3.2.10', profiles)).toBe('linux-netsnmp');
    expect(chooseProfile('1.3.6.1.4.1.311.1.1.3.1.1', profiles)).toBe('windows');
    expect(chooseProfile('1.3.6.1.4.1.2021.250.10', profiles)).toBe('pbi-dch4000p');
    expect(chooseProfile('1.3.6.1.4.1.11863.5.34', profiles)).toBe('tplink-jetstream');
    expect(chooseProfile('1.3.6.1.4.1.9.1.516', profiles)).toBe('cisco-ios');
    expect(chooseProfile('1.3.6.1.4.1.12356.15', profiles)).toBe('fortinet-fortigate');
    expect(chooseProfile('1.3.6.1.4.1.12356.101.1.5004', profiles)).toBe('fortinet-fortigate');
    expect(chooseProfile('1.3.6.1.4.1.12325.1.1.2.1.1', profiles)).toBe('pfsense-opnsense');
    expect(chooseProfile('1.3.6.1.4.1.1166.1.621', profiles)).toBe('arris-dsr4410md');
    expect(chooseProfile('1.3.6.1.4.1.99999.1', profiles)).toBe('generic');
  });

  it('a new device model is one YAML file: a local profile overrides a built-in one of the same name', () => {
    writeFileSync(
      join(dir.path, 'new-receiver.yaml'),
      'name: new-receiver\ndescription: a receiver\nmatch: { sys_object_id: [1.3.6.1.4.1.99999] }\nscalars:\n  - { name: lockState, oid: 1.3.6.1.4.1.99999.1.0, measurement: receiver, field: lock, type: enum }\n',
    );
    const profiles = loadProfiles([dir.path, BUILTIN_PROFILE_DIR], []);
    expect(chooseProfile('1.3.6.1.4.1.99999.7', profiles)).toBe('new-receiver');
  });

  it('refuses a field the measurement schema does not have, naming file, line and path', () => {
    const d = join(dir.path, 'bad');
    mkdirSync(d);
    writeFileSync(join(d, 'bad.yaml'), 'name: bad\ndescription: x\nscalars:\n  - { name: a, oid: 1.3.6.1.4.1.1.0, measurement: receiver, field: signal_dbmm }\n  - { name: b, oid: 1.3.6.1.4.1.2.0, measurement: weather, field: rain }\n  - { name: c, oid: "1.3.x", measurement: receiver }\n');
    const problems: Problem[] = [];
    loadProfiles([d], problems, dir.path);
    const lines = problems.map(formatProblem);
    expect(lines).toContainEqual(expect.stringMatching(/^bad\/bad\.yaml:6: scalars\[2\]\.oid: must be a numeric OID such as 1\.3\.6\.1\.2\.1\.1\.3\.0; got "1\.3\.x"$/));
    expect(lines.length).toBe(1);
    writeFileSync(join(d, 'bad.yaml'), 'name: bad\ndescription: x\nscalars:\n  - { name: a, oid: 1.3.6.1.4.1.1.0, measurement: receiver, field: signal_dbmm }\n  - { name: b, oid: 1.3.6.1.4.1.2.0, measurement: weather, field: rain }\n');
    const again: Problem[] = [];
    loadProfiles([d], again, dir.path);
    const l2 = again.map(formatProblem);
    expect(l2[0]).toMatch(/^bad\/bad\.yaml:4: scalars\[0\]\.field: field "signal_dbmm" is not a field of measurement receiver \(lock, signal_dbm,/);
    expect(l2[1]).toMatch(/^bad\/bad\.yaml:5: scalars\[1\]: measurement "weather" is not in the measurement schema/);
  });

  it('an enum map over ranges and lists: a key that is not a range, a range that ends before it starts, keys that overlap, a map on a gauge, each named with file, line and field', () => {
    const d = join(dir.path, 'maps');
    mkdirSync(d);
    const entry = (map: string, type = 'enum') => `name: m\ndescription: x\nscalars:\n  - name: state\n    oid: 1.3.6.1.4.1.1.0\n    measurement: receiver\n    field: lock\n    type: ${type}\n    map: ${map}\n`;
    const problemsOf = (text: string) => {
      writeFileSync(join(d, 'm.yaml'), text);
      const problems: Problem[] = [];
      loadProfiles([d], problems, dir.path);
      return problems.map(formatProblem);
    };
    expect(problemsOf(entry('{ "3-250": 1, "0-2": 0, "-5--1,251": 0 }'))).toEqual([]);
    expect(problemsOf(entry('{ "3-x": 1 }'))).toEqual([String.raw`maps/m.yaml:9: scalars[0].map.3-x: map key "3-x": "3-x" is not an integer or a range; write a value ("7"), a range ("3-250") or a list ("1,3,5-7")`]);
    expect(problemsOf(entry('{ "250-3": 1 }'))).toEqual(['maps/m.yaml:9: scalars[0].map.250-3: map key "250-3": the range 250-3 ends before it starts']);
    expect(problemsOf(entry('{ "3-250": 1, "0-3": 0 }'))).toEqual(['maps/m.yaml:9: scalars[0].map.0-3: map key "0-3" overlaps key "3-250" (3 is in both)']);
    expect(problemsOf(entry('{ "1": 1 }', 'gauge'))).toEqual(['maps/m.yaml:9: scalars[0].map: map applies to type enum; this entry is gauge']);
  });

  it('mapValue: a value in a range or a list gets its key\'s value; one outside every key gets none', () => {
    const map = { '3-250': 1, '0-2': 0, '-1,251,300-301': 7 };
    expect([0, 2, 3, 57, 250, -1, 251, 300, 301, 302, 252, -2].map((v) => mapValue(map, v))).toEqual([0, 0, 1, 1, 1, 7, 7, 7, 7, undefined, undefined, undefined]);
  });
});
