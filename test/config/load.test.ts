import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Writable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { loadConfig, ConfigError } from '../../config/load.ts';
import { createLogger } from '../../config/log.ts';
import { shardOf } from '../../config/shard.ts';
import { tempDir } from '../helpers/peers.ts';

const EXAMPLE = 'config/examples/klaiwatch.yaml';
const env = { KLAIWATCH_SCHOOL_COMMUNITY: 'sch00l-c0mmunity-xyz' };

let dir: ReturnType<typeof tempDir>;
beforeAll(() => {
  dir = tempDir('config');
});
afterAll(() => dir.remove());

/** A settings file and an inventory file in a fresh folder; returns the settings path. */
function area(inventory: string, settingsExtra = ''): string {
  const d = join(dir.path, String(Math.random()).slice(2));
  mkdirSync(d);
  writeFileSync(
    join(d, 'area.yaml'),
    `area: { code: t, name_th: ทดสอบ }\ninventory: schools.yaml\ninflux: { url: "http://127.0.0.1:1" }\nsnmp:\n  credentials:\n    default: { version: 2c, community: public }\n${settingsExtra}`,
  );
  writeFileSync(join(d, 'schools.yaml'), inventory);
  return join(d, 'area.yaml');
}

function problems(path: string, e: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig(path, { env: e, cwd: dir.path });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

const school = (devices: string) => `schools:\n  - code: "1036090101"\n    name_th: โรงเรียนบ้านหนองบัวแดง\n    devices:\n${devices}`;

describe('configuration loading', () => {
  it('loads the shipped example area: 20 schools, the office, resolved secrets and profiles', () => {
    const c = loadConfig(EXAMPLE, { env });
    expect(c.schools.filter((s) => !s.office)).toHaveLength(20);
    expect(c.schools.find((s) => s.office)?.devices.map((d) => d.id)).toContain('office-uplink');
    const router = c.deviceById.get('1036090101-router')!;
    expect(router.snmp?.version).toBe(2);
    expect(router.snmp?.community?.reveal()).toBe(env.KLAIWATCH_SCHOOL_COMMUNITY);
    expect(router.parent).toBe('office-uplink');
    const v3 = c.deviceById.get('office-uplink')!.snmp!;
    expect(v3.version).toBe(3);
    expect(v3.level).toBe('authPriv');
    expect(v3.authKey?.reveal()).toBe('example-auth-key-change-me');
    expect(c.profiles.get('mikrotik-routeros')?.tables.map((t) => t.name)).toEqual(['interfaces', 'processors', 'storage']);
    expect(c.settings.polling.intervals.server).toBe(120_000);
    expect(c.settings.influx.raw_retention).toBe(30 * 86_400_000);
  });

  it('names file, line, path and reason for a wrong SNMP version', () => {
    const p = problems(area(school('      - { id: r1, kind: router, address: 10.0.0.1, snmp: { version: 4, community: x } }\n')));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/schools\.yaml:5: schools\[0\]\.devices\[0\]\.snmp\.version: snmp\.version must be 1, 2 \(or "2c"\) or 3; got 4$/);
  });

  it('reports every problem at once, each on its own line', () => {
    const p = problems(
      area(
        school(
          [
            '      - { id: r1, kind: router, address: 10.1.2, profile: no-such-profile }',
            '      - { id: r1, kind: toaster, address: 10.0.0.2 }',
            '      - { id: rx, kind: dltv-receiver, address: 10.0.0.3, parent: nobody, colour: red }',
            '',
          ].join('\n'),
        ),
      ),
    );
    expect(p.some((l) => /schools\[0\]\.devices\[0\]\.address: must be an IPv4 or IPv6 address or a host name; got "10\.1\.2"/.test(l))).toBe(true);
    expect(p.some((l) => /schools\[0\]\.devices\[1\]\.kind: kind must be one of router, dltv-receiver/.test(l))).toBe(true);
    expect(p.some((l) => /schools\[0\]\.devices\[2\]: unknown key "colour"/.test(l))).toBe(true);
    expect(p.length).toBeGreaterThanOrEqual(3);
  });

  it('catches references after the shapes are right: profile, parent, duplicate id, parent loop', () => {
    const p = problems(
      area(
        school(
          [
            '      - { id: r1, kind: router, address: 10.0.0.1, profile: no-such-profile }',
            '      - { id: r1, kind: router, address: 10.0.0.2 }',
            '      - { id: rx, kind: dltv-receiver, address: 10.0.0.3, parent: nobody }',
            '      - { id: a, kind: router, address: 10.0.0.4, parent: b }',
            '      - { id: b, kind: router, address: 10.0.0.5, parent: a }',
            '',
          ].join('\n'),
        ),
      ),
    );
    expect(p.find((l) => l.includes('devices[0].profile'))).toMatch(/no profile named "no-such-profile" \(known: auto, .*mikrotik-routeros/);
    expect(p.find((l) => l.includes('devices[1].id'))).toMatch(/device id r1 is used twice \(first at .*schools\.yaml:5\)/);
    expect(p.find((l) => l.includes('devices[2].parent'))).toMatch(/parent "nobody" is not a device id/);
    expect(p.find((l) => l.includes('devices[3].parent'))).toMatch(/parent chain of a loops back \(a → b → a\)/);
  });

  it('reports the references together with the schema problems, in one pass, even when the settings are invalid too', () => {
    const path = area(
      school(
        [
          '      - { id: r1, kind: router, address: 10.0.0, profile: no-such-profile, snmp: nobody }',
          '      - { id: rx, kind: dltv-receiver, address: 10.0.0.3, parent: nowhere, colour: red }',
          '',
        ].join('\n'),
      ),
      'polling: { interval: often }\n',
    );
    const p = problems(path);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/area\.yaml:\d+: polling\.interval: polling\.interval must be a duration/),
        expect.stringMatching(/schools\.yaml:5: schools\[0\]\.devices\[0\]\.address: must be an IPv4/),
        expect.stringMatching(/schools\.yaml:6: schools\[0\]\.devices\[1\]: unknown key "colour"/),
        expect.stringMatching(/schools\.yaml:5: schools\[0\]\.devices\[0\]\.profile: no profile named "no-such-profile"/),
        expect.stringMatching(/schools\.yaml:5: schools\[0\]\.devices\[0\]\.snmp: no SNMP credential set named "nobody" in .*area\.yaml snmp\.credentials \(known: default\)/),
        expect.stringMatching(/schools\.yaml:6: schools\[0\]\.devices\[1\]\.parent: parent "nowhere" is not a device id/),
      ]),
    );
    expect(p).toHaveLength(6);
  });

  it('refuses an inventory without devices: nothing would be polled', () => {
    for (const inventory of ['schools: []\n', 'schools:\n  - { code: "1001", name_th: โรงเรียนว่าง }\n', '{}\n']) {
      const p = problems(area(inventory));
      expect(p).toHaveLength(1);
      expect(p[0]).toMatch(/area\.yaml:2: inventory: no devices in schools\.yaml: nothing would be polled/);
    }
  });

  it('prints at most 20 problems of at most 300 characters, then how many more', () => {
    const devices = Array.from({ length: 40 }, (_, i) => `      - { id: d${i}, kind: router, address: "${'x'.repeat(400)}\u0007${i}" }`).join('\n') + '\n';
    let err: ConfigError | undefined;
    try {
      loadConfig(area(school(devices)), { env: {}, cwd: dir.path });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.problems).toHaveLength(40);
    const lines = err!.message.split('\n');
    expect(lines).toHaveLength(21);
    expect(lines[20]).toBe('and 20 more');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(300);
    expect(lines[0]).toMatch(/…$/);
    expect(err!.message).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
  });

  it('refuses a secret from an unset environment variable, naming the variable', () => {
    const p = problems(area(school('      - { id: r1, kind: router, address: 10.0.0.1, snmp: { version: 2c, community: "env:KW_NOT_SET" } }\n')));
    expect(p[0]).toMatch(/schools\[0\]\.devices\[0\]\.snmp\.community: environment variable KW_NOT_SET is not set/);
  });

  it('names an unset env: secret on a device in the same pass as schema problems elsewhere (inventory and settings)', () => {
    // A schema problem on another device (no address) and one in the settings (an unknown key): the secret is named all the same.
    const inventory = school('      - { id: r1, kind: router, address: 10.0.0.1, snmp: { version: 2c, community: "env:NO_SUCH" } }\n      - { id: r2, kind: switch }\n');
    const p = problems(area(inventory));
    expect(p.some((l) => /schools\[0\]\.devices\[1\]/.test(l))).toBe(true);
    expect(p.filter((l) => /schools\[0\]\.devices\[0\]\.snmp\.community: environment variable NO_SUCH is not set \(the value says env:NO_SUCH\)/.test(l))).toHaveLength(1);
    const both = problems(area(inventory, 'no_such_setting: 1\n'));
    expect(both.some((l) => /no_such_setting/.test(l))).toBe(true);
    expect(both.filter((l) => /devices\[0\]\.snmp\.community: environment variable NO_SUCH is not set/.test(l))).toHaveLength(1);
    // A settings credential set's secret too, when the settings themselves are refused.
    const sets = problems(area(school('      - { id: r1, kind: router, address: 10.0.0.1, snmp: other }\n'), '    other: { version: 2c, community: "env:NO_SUCH_EITHER" }\nno_such_setting: 1\n'));
    expect(sets.filter((l) => /snmp\.credentials\.other\.community: environment variable NO_SUCH_EITHER is not set/.test(l))).toHaveLength(1);
    // Once the schema is satisfied the secret is reported once, by the full pass.
    expect(problems(area(school('      - { id: r1, kind: router, address: 10.0.0.1, snmp: { version: 2c, community: "env:NO_SUCH" } }\n')))).toHaveLength(1);
  });

  it('reads a secret from a file beside the settings', () => {
    const path = area(school('      - { id: r1, kind: router, address: 10.0.0.1, snmp: { version: 2c, community: "file:community.txt" } }\n'));
    writeFileSync(join(path, '..', 'community.txt'), 'from-a-file\n');
    expect(loadConfig(path, { env: {} }).deviceById.get('r1')!.snmp!.community!.reveal()).toBe('from-a-file');
  });

  it('names the YAML syntax error and its line', () => {
    const p = problems(area('schools:\n  - code: "1"\n    name_th: [unclosed\n'));
    expect(p[0]).toMatch(/schools\.yaml:\d+: YAML: /);
  });

  it('names a missing inventory file', () => {
    const path = area('schools: []\n');
    writeFileSync(path, 'area: { code: t, name_th: ทดสอบ }\ninventory: missing.yaml\ninflux: { url: "http://127.0.0.1:1" }\n');
    expect(problems(path)[0]).toMatch(/missing\.yaml: cannot read: ENOENT/);
  });

  it('never prints a secret: not in JSON, not in inspect, not in logs', () => {
    const c = loadConfig(EXAMPLE, { env });
    const router = c.deviceById.get('1036090101-router')!;
    const secret = env.KLAIWATCH_SCHOOL_COMMUNITY;
    const everything = [JSON.stringify(c.settings), inspect(c.settings, { depth: 10 }), JSON.stringify(router.snmp), inspect(router, { depth: 4 }), String(router.snmp?.community)];
    for (const text of everything) expect(text).not.toContain(secret);
    expect(JSON.stringify(router.snmp)).toContain('<secret>');

    let out = '';
    const sink = new Writable({ write: (chunk, _e, cb) => ((out += chunk.toString()), cb()) });
    const log = createLogger('info', sink);
    log.info({ snmp: router.snmp, credentials: { community: secret, authKey: 'k3y' }, password: 'pw' }, 'device credentials');
    expect(out).toContain('device credentials');
    expect(out).not.toContain(secret);
    expect(out).not.toContain('k3y');
    expect(out).not.toContain('"pw"');
  });

  it('check-config groups the devices not watched (one line per profile and check, at most 20, then how many more) and lists only the shard\'s own', () => {
    // 250 schools with an icmp-only receiver each (its lock cannot be watched), and 25 more profiles that read nothing, one receiver each: 26 groups.
    const d = join(dir.path, 'not-watched');
    mkdirSync(join(d, 'profiles'), { recursive: true });
    for (let i = 1; i <= 25; i++) writeFileSync(join(d, 'profiles', `p${i}.yaml`), `name: p${i}\ndescription: reads nothing\nsnmp: false\n`);
    const codes = Array.from({ length: 250 }, (_, i) => String(1000 + i));
    const inventory = ['schools:', ...codes.flatMap((code, i) => [`  - code: "${code}"`, `    name_th: โรงเรียน${code}`, '    devices:', `      - { id: rx-${code}, kind: dltv-receiver, address: 127.1.${i >> 8}.${i & 255}, profile: icmp-only }`, ...(i < 25 ? [`      - { id: px-${code}, kind: dltv-receiver, address: 127.2.0.${i + 1}, profile: p${i + 1} }`] : [])])].join('\n') + '\n';
    writeFileSync(join(d, 'schools.yaml'), inventory);
    const settings = (extra: string) => {
      writeFileSync(join(d, 'area.yaml'), `area: { code: t, name_th: ทดสอบ }\ninventory: schools.yaml\nprofile_dirs: [profiles]\ninflux: { url: "http://127.0.0.1:1" }\nicmp: { enabled: false }\n${extra}`);
      return join(d, 'area.yaml');
    };
    const notes = (extra: string) => {
      const out = execFileSync(process.execPath, ['bin/klaiwatch.ts', 'check-config', '--config', settings(extra), '--no-listen'], { encoding: 'utf8' });
      return out.split('\n').filter((l) => l.startsWith('not watched:'));
    };

    const all = notes('');
    expect(all).toHaveLength(21);
    expect(all[0]).toBe('not watched: 250 dltv-receiver devices (rx-1000, rx-1001, rx-1002 and 247 more): receiver lock not watched: profile icmp-only reads no SNMP (reachability only), so nothing gives receiver.lock');
    expect(all[1]).toBe('not watched: 1 dltv-receiver device (px-1000): receiver lock not watched: profile p1 reads no SNMP (reachability only), so nothing gives receiver.lock');
    expect(all[20]).toBe('not watched: and 6 more (profile, check) pairs, 6 devices');

    // Shard 1/2: only the schools it owns (by the same hash the collector uses).
    const mine = codes.filter((c) => shardOf(c, 2) === 1);
    expect(mine.length).toBeGreaterThan(50);
    expect(mine.length).toBeLessThan(200);
    const shard = notes('collector: { shard: "1/2" }\n');
    expect(shard[0]).toBe(`not watched: ${mine.length} dltv-receiver devices (${mine.slice(0, 3).map((c) => `rx-${c}`).join(', ')} and ${mine.length - 3} more): receiver lock not watched: profile icmp-only reads no SNMP (reachability only), so nothing gives receiver.lock`);
    const ownedP = codes.slice(0, 25).filter((c) => shardOf(c, 2) === 1);
    const shown = shard.slice(1).filter((l) => !l.includes('more (profile, check) pairs'));
    expect(shown.map((l) => /\((px-\d+)\)/.exec(l)![1])).toEqual(ownedP.slice(0, 20).map((c) => `px-${c}`));
    for (const l of shard) for (const id of l.match(/(?:rx|px)-\d+/g) ?? []) expect(mine).toContain(id.slice(3));
  });

  it('check-config exits 0 on the example and 1 with one line per problem otherwise', () => {
    // --no-listen: the example's health port (9273) may be held by a demo running on this machine.
    const ok = execFileSync(process.execPath, ['bin/klaiwatch.ts', 'check-config', '--config', EXAMPLE, '--no-listen'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(ok).toMatch(/valid: 20 schools, 65 devices/);
    const bad = area(school('      - { id: r1, kind: router, address: 10.0.0.1, snmp: { version: 4, community: x } }\n'));
    let stderr = '';
    let status = 0;
    try {
      execFileSync(process.execPath, ['bin/klaiwatch.ts', 'check-config', '--config', bad], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      status = (err as { status: number }).status;
      stderr = (err as { stderr: string }).stderr;
    }
    expect(status).toBe(1);
    expect(stderr).toMatch(/schools\.yaml:5: schools\[0\]\.devices\[0\]\.snmp\.version: snmp\.version must be 1, 2 \(or "2c"\) or 3; got 4/);
    expect(stderr).toMatch(/configuration has 1 problem/);
  });

  it('every subcommand answers --help', () => {
    for (const cmd of ['run', 'collector', 'poll', 'check-config', 'import-schools', 'schema']) {
      const out = execFileSync(process.execPath, ['bin/klaiwatch.ts', cmd, '--help'], { encoding: 'utf8' });
      expect(out).toMatch(new RegExp(`^klaiwatch ${cmd}: .+\\n\\nUsage: klaiwatch ${cmd}`));
    }
  });
});
