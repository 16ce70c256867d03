// The device families an area office meets beyond the first built-in
// profiles, each polled from a recording of a real unit served by snmpsimd:
// a FortiGate and a pfSense firewall, a Cisco IOS switch, an ARRIS DVB-S2
// satellite receiver. Then what a profile says about values: an enum map
// over ranges, values no device can have dropped and counted, and a
// receiver whose profile cannot feed its lock check reported as not watched
// (poll --once, /healthz, check-config).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadProfiles, loadConfig, BUILTIN_PROFILE_DIR, type Device, type SnmpCredentials } from '../../../config/load.ts';
import { Secret } from '../../../config/secret.ts';
import { SnmpSession } from '../../../collector/snmp/session.ts';
import { pollDevice, newMemory, type PollResult } from '../../../collector/snmp/poll.ts';
import { Collector } from '../../../collector/collector.ts';
import { startHealthServer } from '../../../bin/health-server.ts';
import { createLogger } from '../../../config/log.ts';
import { FIXTURES, PROJECT } from '../../../sim/area.ts';
import { startTestAgents, type TestAgents } from '../../helpers/agents.ts';
import { loopbackBlock, tempDir } from '../../helpers/peers.ts';

const fixture = (name: string) => readFileSync(join(FIXTURES, 'snmprec', name), 'utf8');
/** A copy of a recording with some values replaced (a scenario the real unit did not show). */
function edited(name: string, values: Record<string, string>): string {
  return fixture(name)
    .split('\n')
    .map((l) => {
      const oid = l.split('|')[0]!;
      return values[oid] !== undefined ? `${oid}|${values[oid]}` : l;
    })
    .join('\n');
}

/** The ARRIS recording has no sysUpTime (LibreNMS kept only what it reads); every agent answers one, so the served copy gets it. */
const withUptime = (text: string) => text.replace(/^(1\.3\.6\.1\.2\.1\.1\.2\.0\|.*)$/m, '$1\n1.3.6.1.2.1.1.3.0|67|123456');
const ACQUISITION = '1.3.6.1.4.1.1166.1.621.11.1.0';
const dir = tempDir('profiles-real');
// A user's profile for a VSAT modem whose state is locked from 3 to 250 (read here from the ARRIS receiver's state OID).
mkdirSync(join(dir.path, 'profiles'));
writeFileSync(
  join(dir.path, 'profiles', 'vsat-test.yaml'),
  `name: vsat-test\ndescription: a modem whose states 3-250 are locked\nscalars:\n  - { name: modemState, oid: ${ACQUISITION}, measurement: receiver, field: modem_state, type: gauge }\n  - { name: modemLock, oid: ${ACQUISITION}, measurement: receiver, field: lock, type: enum, map: { "3-250": 1, "0-2": 0 } }\n`,
);
const profiles = loadProfiles([join(dir.path, 'profiles'), BUILTIN_PROFILE_DIR], []);

const block = loopbackBlock('profiles-real.test');
let agents: TestAgents;
beforeAll(async () => {
  agents = await startTestAgents(`${block}.1`, {
    fortigate: fixture('fortigate.snmprec'),
    pfsense: fixture('pfsense.snmprec'),
    cisco: fixture('cisco-ios-3750.snmprec'),
    arris: withUptime(fixture('arris-dsr4410md.snmprec')),
    'vsat-57': withUptime(edited('arris-dsr4410md.snmprec', { [ACQUISITION]: '2|57' })),
    'vsat-2': withUptime(edited('arris-dsr4410md.snmprec', { [ACQUISITION]: '2|2' })),
    'vsat-251': withUptime(edited('arris-dsr4410md.snmprec', { [ACQUISITION]: '2|251' })),
    // A router that says its WAN runs at 500 Gbit/s and its CPU is 150 % busy.
    impossible: edited('routeros.snmprec', { '1.3.6.1.2.1.31.1.1.1.15.3': '66|500000', '1.3.6.1.2.1.25.3.3.1.2.1': '2|150' }),
  });
}, 60_000);
afterAll(async () => {
  await agents?.close();
  dir.remove();
});

function device(id: string, kind: Device['kind'] = 'router', profile = 'auto'): Device {
  return { id, kind, address: agents.address, port: agents.port, profile, icmp: false, tags: {}, origin: 'test', school: { code: 'T1', name_th: 'โรงเรียนทดสอบ', district: 'เมือง', office: false, contacts: [], tags: {}, devices: [] } } as Device;
}

async function poll(community: string, profile = 'auto'): Promise<PollResult> {
  const creds: SnmpCredentials = { version: 2, level: 'noAuthNoPriv', community: new Secret(community) };
  const s = new SnmpSession(agents.address, agents.port, creds, { timeoutMs: 3000, retries: 1 });
  try {
    return await pollDevice(s, device(community, 'router', profile), profiles, newMemory(), { maxRepetitions: 25 });
  } finally {
    s.close();
  }
}

const point = (r: PollResult, measurement: string, tag?: [string, string]) => r.points.find((p) => p.measurement === measurement && (!tag || p.tags[tag[0]] === tag[1]));

describe('profiles against recordings of real units', () => {
  it('FortiGate-501E: CPU, memory, sessions, temperature sensors (the hottest as the system temperature), firmware', async () => {
    const r = await poll('fortigate');
    expect(r.ok, r.error).toBe(true);
    expect(r.profile).toBe('fortinet-fortigate');
    expect(point(r, 'system')!.fields).toEqual({ cpu_pct: 42, mem_used_pct: 23, mem_total_bytes: 16433640 * 1024, sessions: 541, temperature_c: 43 });
    const sensors = r.points.filter((p) => p.measurement === 'sensor');
    expect(sensors.map((p) => p.tags.sensor)).toEqual(['CPU DTS0', 'TD1', 'TD2', 'TR3', 'LM75 U75', 'LM75 U78', 'LM75 U79', 'LM75 U76', 'PS1 Temp 1', 'PS1 Temp 2', 'PS2 Temp 1', 'PS2 Temp 2']);
    expect(point(r, 'sensor', ['sensor', 'PS2 Temp 2'])!.fields).toEqual({ temperature_c: 29, alarm: 0 });
    // Voltages and fans are not temperatures.
    expect(point(r, 'sensor', ['sensor', 'Fan 1'])).toBeUndefined();
    // sysDescr is recorded empty: an empty text is not written.
    expect(point(r, 'device_info')!.fields).toEqual({ sys_name: '<private>', firmware: 'v5.6.4,build1575,180425 (GA)', serial: 'FG5H1E5810000000', vendor: 'Fortinet', model: 'FGT_501E' });
    expect(r.valuesDropped).toBe(0);
  });

  it('pfSense 2.3: pf states as sessions, UCD memory, CPU, interfaces from ifXTable', async () => {
    const r = await poll('pfsense');
    expect(r.ok, r.error).toBe(true);
    expect(r.profile).toBe('pfsense-opnsense');
    expect(point(r, 'system')!.fields).toEqual({ sessions: 140, mem_total_bytes: 4146732 * 1024, mem_used_pct: 100 * (1 - 3634792 / 4146732), cpu_pct: 0 });
    expect(point(r, 'interface', ['ifname', 'em1'])!.fields).toMatchObject({ oper_status: 1, admin_status: 1, speed_bps: 1e9 });
    expect(String(point(r, 'device_info')!.fields.description)).toMatch(/^pfSense 2\.3\.2-RELEASE/);
  });

  it('Cisco Catalyst 3750 (IOS 12.2): cpmCPUTotal5minRev, memory pools as used + free, the Processor pool as memory use', async () => {
    const r = await poll('cisco');
    expect(r.ok, r.error).toBe(true);
    expect(r.profile).toBe('cisco-ios');
    const processorPct = (100 * 34973844) / (34973844 + 33184936);
    expect(point(r, 'system')!.fields).toEqual({ cpu_pct: 25, mem_used_pct: processorPct });
    expect(point(r, 'storage', ['storage', 'Processor'])!.fields).toEqual({ used_bytes: 34973844, used_pct: processorPct });
    expect(point(r, 'storage', ['storage', 'I/O'])!.fields).toEqual({ used_bytes: 8710324, used_pct: (100 * 8710324) / (8710324 + 3872588) });
    expect(r.points.filter((p) => p.measurement === 'interface').length).toBeGreaterThan(50);
    const info = point(r, 'device_info')!.fields;
    expect(info.sys_name).toBe('Profiler3750');
    expect(String(info.description)).toMatch(/^Cisco IOS Software, C3750 Software .*Version 12\.2\(55\)SE10/);
    expect(String(info.description).length).toBeLessThanOrEqual(256);
  });

  it('ARRIS DSR-4410MD DVB-S2 receiver: acquisitionState 0 (locked) mapped to lock 1, level, SNR, quality, model', async () => {
    const r = await poll('arris');
    expect(r.ok, r.error).toBe(true);
    expect(r.profile).toBe('arris-dsr4410md');
    expect(point(r, 'receiver')!.fields).toEqual({ lock: 1, signal_dbm: -47.5, quality_pct: 88, cn_db: 18.2 });
    expect(point(r, 'device_info')!.fields).toMatchObject({ description: 'DSR-6404  1.13.2.10', model: 'DSR-4410MD' });
  });
});

describe('enum maps, impossible values', () => {
  it('a map over ranges: state 57 is in "3-250" (lock 1), state 2 in "0-2" (lock 0); the raw state is kept beside it', async () => {
    const a = await poll('vsat-57', 'vsat-test');
    expect(a.ok, a.error).toBe(true);
    expect(point(a, 'receiver')!.fields).toEqual({ modem_state: 57, lock: 1 });
    const b = await poll('vsat-2', 'vsat-test');
    expect(point(b, 'receiver')!.fields).toEqual({ modem_state: 2, lock: 0 });
    expect(a.valuesDropped).toBe(0);
  });

  it('a state no key covers (251) is dropped and counted, not guessed; the rest of the point stays', async () => {
    const r = await poll('vsat-251', 'vsat-test');
    expect(r.ok, r.error).toBe(true);
    expect(point(r, 'receiver')!.fields).toEqual({ modem_state: 251 });
    expect(r.valuesDropped).toBe(1);
    expect(r.droppedDetail).toEqual(['receiver modemLock = 251: no key of the profile\'s map covers it (3-250, 0-2)']);
    expect(point(r, 'device')!.fields.values_dropped).toBe(1);
  });

  it('a speed above 400 Gbit/s and a CPU 150 % busy are dropped and counted; the interface and the other figures are kept', async () => {
    const r = await poll('impossible');
    expect(r.ok, r.error).toBe(true);
    const wan = point(r, 'interface', ['ifname', 'WAN'])!.fields;
    expect(wan.speed_bps).toBeUndefined();
    expect(wan).toMatchObject({ oper_status: 1, admin_status: 1 });
    expect(point(r, 'interface', ['ifname', 'ether2'])!.fields.speed_bps).toBe(100_000_000);
    expect(point(r, 'system')!.fields).toEqual({ temperature_c: 33, voltage_v: 15.4 });
    expect(r.valuesDropped).toBe(2);
    expect(r.droppedDetail).toEqual(expect.arrayContaining([expect.stringMatching(/^interface ifname=WAN interface\.speed_bps = 5\.000e\+11: no device can have it \(0\.\.400000000000 bps\)$/), expect.stringMatching(/^system row 1 system\.cpu_pct = 150: no device can have it \(0\.\.100 percent\)$/)]));
    expect(point(r, 'device')!.fields.values_dropped).toBe(2);
  });
});

describe('a receiver whose profile cannot feed its lock check is not watched, and says so', () => {
  let settings: string;
  beforeAll(() => {
    const d = join(dir.path, 'area');
    mkdirSync(d, { recursive: true });
    const snmp = (c: string) => `{ version: 2c, community: ${c} }`;
    writeFileSync(
      join(d, 'schools.yaml'),
      [
        'schools:',
        '  - code: "1001"',
        '    name_th: โรงเรียนทดสอบ',
        '    devices:',
        `      - { id: rx-generic, kind: dltv-receiver, address: ${agents.address}, port: ${agents.port}, profile: generic, snmp: ${snmp('arris')} }`,
        `      - { id: rx-auto, kind: dltv-receiver, address: ${agents.address}, port: ${agents.port}, profile: auto, snmp: ${snmp('arris')} }`,
        `      - { id: rx-box, kind: dltv-receiver, address: ${agents.address}, profile: icmp-only }`,
        `      - { id: fw, kind: router, address: ${agents.address}, port: ${agents.port}, profile: auto, snmp: ${snmp('fortigate')} }`,
      ].join('\n') + '\n',
    );
    writeFileSync(join(d, 'klaiwatch.yaml'), 'area: { code: t, name_th: ทดสอบ }\ninventory: schools.yaml\ninflux: { url: "http://127.0.0.1:9", timeout: 2s }\nicmp: { enabled: false }\nhttp: { listen: "127.0.0.1:0" }\n');
    settings = join(d, 'klaiwatch.yaml');
  });

  const cli = (args: string[]) => spawnSync(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), ...args], { encoding: 'utf8', timeout: 60_000 });

  it('check-config names it for an explicit profile, and says auto is known only after sysObjectID', () => {
    const r = cli(['check-config', '--config', settings, '--no-listen']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('not watched: 1 dltv-receiver device (rx-generic): receiver lock not watched: profile generic gives no receiver.lock');
    expect(r.stdout).toContain('not watched: 1 dltv-receiver device (rx-box): receiver lock not watched: profile icmp-only reads no SNMP');
    expect(r.stdout).toMatch(/^1 device with checks of their kind \(dltv-receiver\) has profile auto: .*poll --once/m);
    expect(r.stdout).not.toContain('rx-auto');
  });

  it('poll --once shows each profile (auto: by sysObjectID) and the not-watched lock; the device point carries it', () => {
    const r = cli(['poll', '--once', '--config', settings, '--no-icmp']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('# rx-generic: profile generic (from the inventory)');
    expect(r.stderr).toContain('# rx-generic: not_watched receiver.lock: receiver lock not watched: profile generic gives no receiver.lock');
    expect(r.stderr).toContain('# rx-auto: profile arris-dsr4410md (chosen by sysObjectID 1.3.6.1.4.1.1166.1.621)');
    expect(r.stderr).toContain('# fw: profile fortinet-fortigate (chosen by sysObjectID 1.3.6.1.4.1.12356.15)');
    expect(r.stderr).not.toMatch(/# (rx-auto|fw): not_watched/);
    const line = r.stdout.split('\n').find((l) => l.startsWith('device,') && l.includes('device=rx-generic'))!;
    expect(line).toContain('not_watched="receiver lock not watched: profile generic gives no receiver.lock"');
  });

  it('/healthz lists the check as not_watched and counts the device; the profile auto chose is logged at start', async () => {
    const config = loadConfig(settings);
    const lines: string[] = [];
    const log = createLogger('info', { write: (s: string) => void lines.push(s) } as never);
    const collector = new Collector(config, log, { write: false, states: false, baseDir: dir.path });
    await collector.prepare({ influx: false });
    const server = await startHealthServer('127.0.0.1:0', () => collector.health());
    try {
      await collector.runRound(config.devices, 0, { jitter: false, icmp: false });
      const port = (server.address() as { port: number }).port;
      const body = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as Record<string, unknown>;
      expect(body.devices_not_watched).toBe(2);
      expect(body.not_watched).toEqual([
        { device: 'rx-generic', school: '1001', kind: 'dltv-receiver', profile: 'generic', check: 'receiver.lock', state: 'not_watched', detail: 'receiver lock not watched: profile generic gives no receiver.lock' },
        { device: 'rx-box', school: '1001', kind: 'dltv-receiver', profile: 'icmp-only', check: 'receiver.lock', state: 'not_watched', detail: expect.stringMatching(/^receiver lock not watched: profile icmp-only reads no SNMP/) },
      ]);
      // The receiver on generic is a problem; the icmp-only box was chosen so.
      expect(body.devices_with_problems).toBe(1);
      const chosen = lines.filter((l) => l.includes('profile chosen by sysObjectID')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(chosen.map((c) => [c.device, c.profile, c.sys_object_id])).toEqual(
        expect.arrayContaining([
          ['rx-auto', 'arris-dsr4410md', '1.3.6.1.4.1.1166.1.621'],
          ['fw', 'fortinet-fortigate', '1.3.6.1.4.1.12356.15'],
        ]),
      );
    } finally {
      server.close();
      await collector.stop();
    }
  });
});
