// pollDevice against snmpsimd serving recordings of real devices: profiles
// chosen by sysObjectID, values mapped to fields, rates from moving counters,
// a real 32-bit wrap, an agent restart, SNMPv1 and v3, an agent that stops.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadProfiles, BUILTIN_PROFILE_DIR, type Device, type SnmpCredentials } from '../../../config/load.ts';
import { Secret } from '../../../config/secret.ts';
import { SnmpSession } from '../../../collector/snmp/session.ts';
import { pollDevice, newMemory, type DeviceMemory, type PollResult } from '../../../collector/snmp/poll.ts';
import { simRate, FIXTURES } from '../../../sim/area.ts';
import { startTestAgents, type TestAgents } from '../../helpers/agents.ts';
import { loopbackBlock } from '../../helpers/peers.ts';

const profiles = loadProfiles([BUILTIN_PROFILE_DIR], []);
const WRAP_RATE = 400_000_000; // octets/s on a port claiming ifSpeed 4.29 Gbit/s: wraps every 10.7 s
const WRAP_IF = '49153';
const WRAP_IF_NAME = /^1\.3\.6\.1\.2\.1\.2\.2\.1\.2\.49153\|4\|(.*)$/m.exec(readFileSync(join(FIXTURES, 'snmprec', 'jetstream.snmprec'), 'utf8'))![1]!; // ifDescr

/** jetstream (32-bit ifTable only) with one port's ifInOctets counting in absolute time, so we know when it wraps. */
function wrapRecording(): string {
  return readFileSync(join(FIXTURES, 'snmprec', 'jetstream.snmprec'), 'utf8')
    .split('\n')
    .map((l) => {
      if (l.startsWith(`1.3.6.1.2.1.2.2.1.10.${WRAP_IF}|`)) return `1.3.6.1.2.1.2.2.1.10.${WRAP_IF}|65:numeric|rate=${WRAP_RATE},atime=1,wrap=1`;
      if (l.startsWith(`1.3.6.1.2.1.2.2.1.5.${WRAP_IF}|`)) return `1.3.6.1.2.1.2.2.1.5.${WRAP_IF}|66|4294967295`;
      return l;
    })
    .join('\n');
}

const block = loopbackBlock('poll.test');
let agents: TestAgents;
beforeAll(async () => {
  agents = await startTestAgents(`${block}.1`, { wrap32: wrapRecording() });
});
afterAll(async () => agents?.close());

function device(id: string, profile = 'auto'): Device {
  return { id, kind: 'router', address: agents.address, port: agents.port, profile, icmp: false, tags: {}, origin: 'test', school: { code: 'T1', name_th: 'โรงเรียนทดสอบ', district: 'เมือง', office: false, contacts: [], tags: {}, devices: [] } } as Device;
}

function v2(community: string): SnmpCredentials {
  return { version: 2, level: 'noAuthNoPriv', community: new Secret(community) };
}

async function poll(community: string, memory: DeviceMemory = newMemory(), creds: SnmpCredentials = v2(community), opts = { timeoutMs: 2000, retries: 1 }, address?: string): Promise<PollResult> {
  const s = new SnmpSession(address ?? agents.address, agents.port, creds, opts);
  try {
    return await pollDevice(s, device(community), profiles, memory, { maxRepetitions: 25 });
  } finally {
    s.close();
  }
}

const point = (r: PollResult, measurement: string, tag?: [string, string]) => r.points.find((p) => p.measurement === measurement && (!tag || p.tags[tag[0]] === tag[1]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('pollDevice against recorded real devices', () => {
  it('MikroTik RouterOS: profile by sysObjectID, 12 interfaces, storage, health', async () => {
    const r = await poll('router');
    expect(r.ok, r.error).toBe(true);
    expect(r.profile).toBe('mikrotik-routeros');
    const ifs = r.points.filter((p) => p.measurement === 'interface');
    expect(ifs.map((p) => p.tags.ifname)).toEqual(['wlan1', 'wlan2', 'WAN', 'ether2', 'ether3', 'ether4', 'ether5', 'wlan3', 'wlan4', 'bridge-local', 'pppoe-out1', 'bridge-admin']);
    expect(point(r, 'interface', ['ifname', 'WAN'])!.fields).toMatchObject({ oper_status: 1, admin_status: 1, speed_bps: 100_000_000 });
    // First poll: counters have no rate yet.
    expect(point(r, 'interface', ['ifname', 'WAN'])!.fields.in_bps).toBeUndefined();
    expect(point(r, 'storage', ['storage', 'main memory'])!.fields).toEqual({ size_bytes: 65536 * 1024, used_bytes: 27196 * 1024, used_pct: (100 * 27196) / 65536, type: '1.3.6.1.2.1.25.2.1.2' }); // hrStorageRam: no disk
    expect(point(r, 'system')!.fields).toEqual({ temperature_c: 33, voltage_v: 15.4, cpu_pct: 21 });
    expect(point(r, 'device')!.fields).toMatchObject({ snmp_up: 1, error: '', timeouts: 0 });
    expect(point(r, 'device')!.tags.profile).toBe('mikrotik-routeros');
  });

  it('computes interface rates from two polls 4 s apart, within 3% of what the agent counts', async () => {
    const memory = newMemory();
    await poll('router', memory);
    await sleep(4000);
    const r = await poll('router', memory);
    const wan = point(r, 'interface', ['ifname', 'WAN'])!.fields;
    expect(wan.in_bps as number).toBeGreaterThan(simRate(3).in * 8 * 0.97);
    expect(wan.in_bps as number).toBeLessThan(simRate(3).in * 8 * 1.03);
    expect(wan.out_bps as number).toBeGreaterThan(simRate(3).out * 8 * 0.97);
    expect(wan.out_bps as number).toBeLessThan(simRate(3).out * 8 * 1.03);
    // Requests: one GET (profile known now) and the multi-column walk, not one walk per column.
    expect(r.pdus).toBeLessThanOrEqual(7);
  });

  it('PBI DCH-4000P satellite receiver: lock, level, C/N, Eb/No', async () => {
    const r = await poll('ird');
    expect(r.profile).toBe('pbi-dch4000p');
    expect(point(r, 'receiver')!.fields).toEqual({ lock: 1, signal_dbm: -25, cn_db: 13, ebno_db: 11, ber: 8, bitrate_bps: 41028400, frequency_mhz: 11804 });
  });

  it('Linux net-snmp: UCD memory and load, HOST-RESOURCES disks', async () => {
    const r = await poll('linux');
    expect(r.profile).toBe('linux-netsnmp');
    const sys = point(r, 'system')!.fields;
    expect(sys.load1).toBe(0.46);
    expect(sys.mem_total_bytes).toBe(1021976 * 1024);
    expect(sys.mem_used_pct as number).toBeCloseTo(100 * (1 - 63676 / 1021976), 6);
    expect(r.points.filter((p) => p.measurement === 'storage').map((p) => p.tags.storage)).toContain('/');
  });

  it('Linux without UCD (EL8 recording): CPU as the mean of 12 processors, no memory fields invented', async () => {
    const r = await poll('linux-lsi');
    expect(r.profile).toBe('linux-netsnmp');
    const sys = point(r, 'system')!.fields;
    expect(sys.cpu_pct).toBeTypeOf('number');
    expect(sys.mem_used_pct).toBeUndefined();
    expect(r.points.filter((p) => p.measurement === 'storage')).toHaveLength(11);
  });

  it('Windows: storage names with backslashes, 32-bit interfaces', async () => {
    const r = await poll('windows');
    expect(r.profile).toBe('windows');
    expect(r.points.filter((p) => p.measurement === 'storage').map((p) => p.tags.storage)).toContain('Physical Memory');
    expect(r.points.filter((p) => p.measurement === 'interface').map((p) => p.tags.ifname)).toContain('MS TCP Loopback interface');
  });

  it('TP-Link JetStream: no ifXTable, so the 32-bit ifTable counters are used and remembered', async () => {
    const memory = newMemory();
    const r = await poll('jetstream', memory);
    expect(r.profile).toBe('tplink-jetstream');
    expect(r.points.filter((p) => p.measurement === 'interface')).toHaveLength(55);
    expect(memory.fallbacks.has('1.3.6.1.2.1.31.1.1.1.6')).toBe(true);
    expect(point(r, 'system')!.fields.cpu_pct).toBe(90);
    const again = await poll('jetstream', memory);
    expect(again.pdus).toBeLessThan(r.pdus); // no second walk for the fallback columns
  });

  it('a 32-bit counter that wraps between polls gives the true rate, not a spike or a gap', async () => {
    // value(t) = (t × rate) mod (2^32 − 1): find the next wrap at least 2 s away and poll around it.
    const M = 0xffffffff;
    const now = Date.now() / 1000;
    const period = M / WRAP_RATE;
    let k = Math.ceil((now * WRAP_RATE) / M);
    while (k * period - now < 4.5) k++;
    const wrapAt = k * period;
    const memory = newMemory();
    // Polls 8 s apart around the wrap (which comes every 10.7 s), so that the
    // few tens of milliseconds between the agent's reading and our clock on
    // a loaded machine stay small against the interval.
    await sleep((wrapAt - now - 4) * 1000);
    const before = await poll('wrap32', memory);
    expect(before.ok, before.error).toBe(true);
    await sleep(Math.max(0, (wrapAt + 4) * 1000 - Date.now()));
    const after = await poll('wrap32', memory);
    const bps = point(after, 'interface', ['ifname', WRAP_IF_NAME])!.fields.in_bps as number;
    expect(bps).toBeGreaterThan(WRAP_RATE * 8 * 0.97);
    expect(bps).toBeLessThan(WRAP_RATE * 8 * 1.03);
  });

  it('SNMPv1: GETNEXT walks, no GETBULK', async () => {
    const r = await poll('linux', newMemory(), { version: 1, level: 'noAuthNoPriv', community: new Secret('linux') });
    expect(r.ok, r.error).toBe(true);
    expect(r.points.filter((p) => p.measurement === 'interface').map((p) => p.tags.ifname)).toEqual(['lo', 'eth0']);
  });

  it('a stopped agent: the poll fails within timeout × tries, as a data point that names the cause', async () => {
    agents.agents.pause();
    try {
      const started = performance.now();
      const r = await poll('router', newMemory(), v2('router'), { timeoutMs: 500, retries: 1 });
      const took = performance.now() - started;
      expect(r.ok).toBe(false);
      expect(r.error).toBe(`school T1 router router ${agents.address}: get scalars: timeout after 2 tries of 500 ms`);
      expect(point(r, 'device')!.fields).toMatchObject({ snmp_up: 0, timeouts: 1 });
      expect(took).toBeLessThan(1500);
    } finally {
      agents.agents.resume();
    }
  });
});

describe('agent restart and SNMPv3 (own agents)', () => {
  let restartable: TestAgents;
  let v3: TestAgents;
  beforeAll(async () => {
    restartable = await startTestAgents(`${block}.2`);
    v3 = await startTestAgents(`${block}.3`, {}, { v3: { user: 'kwuser', authKey: 'authpass123', authProto: 'SHA', privKey: 'privpass123', privProto: 'AES' }, probeCommunity: 'router' });
  });
  afterAll(async () => {
    await restartable?.close();
    await v3?.close();
  });

  it('after an agent restart (counters and sysUpTime back to their start) no rate is written, then rates resume', async () => {
    const memory = newMemory();
    const at = (r: PollResult) => point(r, 'interface', ['ifname', 'WAN'])!.fields.in_bps as number | undefined;
    await poll('router', memory, v2('router'), undefined, restartable.address);
    await sleep(1500);
    const before = await poll('router', memory, v2('router'), undefined, restartable.address);
    expect(at(before)).toBeGreaterThan(0);
    await restartable.agents.stop();
    await restartable.agents.start();
    const across = await poll('router', memory, v2('router'), undefined, restartable.address);
    expect(across.ok, across.error).toBe(true);
    expect(across.points.filter((p) => p.measurement === 'interface').every((p) => p.fields.in_bps === undefined && p.fields.out_bps === undefined)).toBe(true);
    await sleep(3000);
    const after = await poll('router', memory, v2('router'), undefined, restartable.address);
    expect(at(after)).toBeGreaterThan(simRate(3).in * 8 * 0.95);
    expect(at(after)).toBeLessThan(simRate(3).in * 8 * 1.05);
  });

  it('SNMPv3 authPriv (SHA, AES): the context selects the recording; a wrong key is auth_failed', async () => {
    const creds: SnmpCredentials = { version: 3, level: 'authPriv', username: 'kwuser', authProtocol: 'sha', authKey: new Secret('authpass123'), privProtocol: 'aes', privKey: new Secret('privpass123'), context: 'router' };
    const r = await poll('router', newMemory(), creds, undefined, v3.address);
    expect(r.ok, r.error).toBe(true);
    expect(r.profile).toBe('mikrotik-routeros');
    const wrong = await poll('router', newMemory(), { ...creds, authKey: new Secret('wrong-key-123') }, { timeoutMs: 500, retries: 0 }, v3.address);
    expect(wrong.ok).toBe(false);
    // Named as what it is: the agent answered, its digest does not match ours (the device as the inventory gives it).
    expect(wrong.error).toBe(`school T1 router router ${agents.address}: auth_failed: get scalars: the reply's authentication digest does not match (wrong auth key or protocol?)`);
    expect(wrong.problems?.map((p) => p.kind)).toEqual(['auth_failed']);
  });
});
