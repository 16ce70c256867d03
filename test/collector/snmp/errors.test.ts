// Every SNMP failure named as what it is (issue 14 point 1, issue 13 point 8):
// a real snmpsimd serves the RouterOS recording, and a UDP relay between it
// and the collector (test/helpers/snmp-relay.ts) breaks its replies the ways
// broken agents do. Each kind is checked on the device point of pollDevice,
// then all of them at once through the real CLI (`klaiwatch poll --once`):
// the device line, the `# …` line on stderr and the collector's own counter.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { loadProfiles, BUILTIN_PROFILE_DIR, type Device, type SnmpCredentials } from '../../../config/load.ts';
import { Secret } from '../../../config/secret.ts';
import { SnmpSession } from '../../../collector/snmp/session.ts';
import { pollDevice, newMemory, type DeviceMemory, type PollResult } from '../../../collector/snmp/poll.ts';
import { SNMP_ERROR_FIELDS, type SnmpErrorKind } from '../../../collector/snmp/errors.ts';
import { startTestAgents, type TestAgents } from '../../helpers/agents.ts';
import { loopbackBlock, tempDir } from '../../helpers/peers.ts';
import * as relayKit from '../../helpers/snmp-relay.ts';
import { startSnmpRelay, decodeMessage, encodeMessage, PDU, TYPE, type Rewrite, type SnmpRelay } from '../../helpers/snmp-relay.ts';

const run = promisify(execFile);
const profiles = loadProfiles([BUILTIN_PROFILE_DIR], []);
const block = loopbackBlock('snmp-errors.test');

const IF_NAME = '1.3.6.1.2.1.31.1.1.1.1';
const IF_HC_IN = '1.3.6.1.2.1.31.1.1.1.6';
const SYS_UPTIME = '1.3.6.1.2.1.1.3.0';
const TEMPERATURE = '1.3.6.1.4.1.14988.1.1.3.10.0'; // mtxrHlTemperature, a gauge of the mikrotik-routeros profile

/** The reply's request id changed: an answer to no request of ours. */
const otherRequestId: Rewrite = (reply) => {
  const m = decodeMessage(reply);
  m.requestId += 1;
  return encodeMessage(m);
};
/** A response PDU turned into a GetRequest. */
const notAResponse: Rewrite = (reply) => {
  const m = decodeMessage(reply);
  m.pduType = PDU.get;
  return encodeMessage(m);
};
/** Not SNMP at all. */
const junk: Rewrite = () => Buffer.alloc(40, 0xff);

let agents: TestAgents;
let relay: SnmpRelay;
beforeAll(async () => {
  agents = await startTestAgents(`${block}.1`);
  relay = await startSnmpRelay(`${block}.2`, { address: agents.address, port: agents.port });
});
afterAll(async () => {
  await relay?.close();
  await agents?.close();
});

function device(id: string, address: string, port: number): Device {
  return { id, kind: 'router', address, port, profile: 'auto', icmp: false, tags: {}, origin: 'test', school: { code: 'T1', name_th: 'โรงเรียนทดสอบ', district: 'เมือง', office: false, contacts: [], tags: {}, devices: [] } } as Device;
}

const V2: SnmpCredentials = { version: 2, level: 'noAuthNoPriv', community: new Secret('router') };
// Generous enough that snmpsimd on a loaded machine answers in time; the waits for it are the failures that wait for every try.
const TIMEOUT = { timeoutMs: 1000, retries: 1 };
const PATIENT = { timeoutMs: 3000, retries: 1 };

/** One poll of the RouterOS recording through the relay with `rewrite`. */
async function poll(rewrite: Rewrite | undefined, memory: DeviceMemory = newMemory(), creds: SnmpCredentials = V2, direct = false): Promise<PollResult & { took: number }> {
  // Straight to the agent nothing is broken: patient, as on a loaded machine.
  const timeouts = direct ? PATIENT : TIMEOUT;
  relay.rewrite = rewrite;
  relay.stats.requests = 0;
  relay.stats.replies = 0;
  const [address, port] = direct ? [agents.address, agents.port] : [relay.address, relay.port];
  const s = new SnmpSession(address, port, creds, timeouts);
  const started = performance.now();
  try {
    const r = await pollDevice(s, device('r1', address, port), profiles, memory, { maxRepetitions: 25 });
    return { ...r, took: performance.now() - started };
  } finally {
    s.close();
  }
}

const points = (r: PollResult, m: string) => r.points.filter((p) => p.measurement === m);
const devicePoint = (r: PollResult) => points(r, 'device')[0]!;
const kinds = (r: PollResult) => (r.problems ?? []).map((p) => p.kind);
const prefix = () => `school T1 router r1 ${relay.address}: `;
/** Every try of every request: the bound on a poll that got nothing usable from its first request. */
const ONE_REQUEST_MS = TIMEOUT.timeoutMs * (TIMEOUT.retries + 1);

describe('named SNMP failures on the device point (pollDevice through the relay)', () => {
  it('the relay itself changes nothing: the recording polls clean through it, and every recording polls clean directly (no false alarms)', async () => {
    const through = await poll((reply) => encodeMessage(decodeMessage(reply)));
    expect(through.ok, through.error).toBe(true);
    expect(points(through, 'interface')).toHaveLength(12);
    for (const community of ['router', 'ird', 'linux', 'linux-lsi', 'windows', 'jetstream']) {
      const memory = newMemory();
      for (const version of [2, 1] as const) {
        if (version === 1 && community !== 'router' && community !== 'linux-lsi') continue; // v1 walks are slow on snmpsimd: two suffice
        for (let i = 0; i < 2; i++) {
          const r = await poll(undefined, memory, { version, level: 'noAuthNoPriv', community: new Secret(community) }, true);
          expect(r.ok, `${community} v${version} poll ${i + 1}: ${r.error}`).toBe(true);
          expect(devicePoint(r).fields.error).toBe('');
        }
      }
    }
  });

  it('OIDs that go back in a GETBULK walk: oid_not_increasing names the column and both OIDs; every other column, the scalars and storage are stored', async () => {
    const r = await poll(relayKit.reorderColumn(IF_NAME));
    expect(r.ok).toBe(false);
    expect(r.answered).toBe(true);
    expect(kinds(r)).toEqual(['oid_not_increasing']);
    expect(r.error).toBe(`${prefix()}oid_not_increasing: walk interfaces.ifname: ${IF_NAME}.1 after ${IF_NAME}.2 (the rows before are kept, the rest of the column is not read)`);
    expect(devicePoint(r).fields).toMatchObject({ snmp_up: 1, error: r.error });
    // The walk went on without that column: all 12 interfaces (named from ifDescr where ifName was cut), storage, health.
    const ifs = points(r, 'interface');
    expect(ifs).toHaveLength(12);
    expect(ifs.every((p) => p.fields.oper_status !== undefined && p.fields.speed_bps !== undefined)).toBe(true);
    expect(ifs.slice(0, 2).map((p) => p.tags.ifname)).toEqual(['wlan1', 'wlan2']);
    expect(points(r, 'storage').length).toBeGreaterThan(0);
    expect(points(r, 'system')[0]!.fields).toMatchObject({ temperature_c: 33, voltage_v: 15.4 });
  });

  it('the same OID twice in a walk: oid_not_increasing; the column keeps the rows before it', async () => {
    const r = await poll(relayKit.repeatColumn(IF_HC_IN));
    expect(kinds(r)).toEqual(['oid_not_increasing']);
    expect(r.error).toContain(`oid_not_increasing: walk interfaces.ifHCInOctets: ${IF_HC_IN}.2 after ${IF_HC_IN}.2`);
    expect(points(r, 'interface')).toHaveLength(12);
  });

  it('a string where the profile reads a counter: wrong_type once for the column, and the counter is not taken as 0 (no false rate next poll)', async () => {
    const memory = newMemory();
    const rewrite = relayKit.retype(IF_HC_IN, TYPE.OctetString, Buffer.from('n/a'));
    const first = await poll(rewrite, memory);
    expect(kinds(first)).toEqual(['wrong_type']);
    expect(first.error).toBe(`${prefix()}wrong_type: walk interfaces.ifHCInOctets: ${IF_HC_IN}.1 is OctetString "n/a", the profile reads a counter (12 times)`);
    expect(devicePoint(first).fields.snmp_up).toBe(1);
    await new Promise((r) => setTimeout(r, 1500));
    const second = await poll(rewrite, memory);
    const wan = points(second, 'interface').find((p) => p.tags.ifname === 'WAN')!;
    expect(wan.fields.in_bps).toBeUndefined();
    expect(wan.fields.out_bps).toBeGreaterThan(0); // the good column's rate
    expect([...memory.counters.keys()].some((k) => k.endsWith('|ifHCInOctets'))).toBe(false);
  });

  it('a string where the profile reads a gauge (a scalar), and sysUpTime of the wrong type: wrong_type for each; the other scalars stay', async () => {
    const r = await poll(relayKit.chain(relayKit.retype(SYS_UPTIME, TYPE.OctetString, Buffer.from('up')), relayKit.retype(TEMPERATURE, TYPE.OctetString, Buffer.from('hot'))));
    expect(kinds(r).sort()).toEqual(['wrong_type', 'wrong_type']);
    expect(r.error).toContain(`wrong_type: get scalars: sysUpTime.0 (${SYS_UPTIME}) is OctetString "up", TimeTicks expected`);
    expect(r.error).toContain(`wrong_type: get scalars: mtxrHlTemperature: ${TEMPERATURE} is OctetString "hot", the profile reads a number (gauge)`);
    expect(points(r, 'system')[0]!.fields).toEqual({ voltage_v: 15.4, cpu_pct: 21 });
    expect(devicePoint(r).fields.uptime_s).toBeUndefined();
  });

  it('a datagram cut short: truncated_reply, never "timeout" (and within timeout × tries)', async () => {
    const r = await poll(relayKit.truncate(0.6));
    expect(kinds(r)).toEqual(['truncated_reply']);
    // Both tries' replies cut short, or (the second try's reply still on its
    // way when the time was up) the one that came.
    expect(r.error).toMatch(new RegExp(`^${prefix()}truncated_reply: get scalars: (2 replies came back cut short \\(\\d+ of the \\d+ bytes its length says\\), no complete one|the reply is \\d+ of the \\d+ bytes its length says: cut short, not used)$`));
    expect(devicePoint(r).fields).toMatchObject({ snmp_up: 0, timeouts: 0 });
    expect(r.took).toBeLessThan(ONE_REQUEST_MS + 1500);
  });

  it('GETBULK replies cut short: truncated_reply for the walk; the scalars read before it are still written', async () => {
    const memory = newMemory();
    const r = await poll(relayKit.onlyFor(PDU.getBulk, relayKit.truncate(0.5)), memory);
    expect(kinds(r)).toEqual(['truncated_reply']);
    expect(memory.fallbacks.size).toBe(0);
    expect(r.error).toMatch(/truncated_reply: walk interfaces, processors, storage: /);
    expect(devicePoint(r).fields.snmp_up).toBe(1);
    expect(points(r, 'system')[0]!.fields).toMatchObject({ temperature_c: 33 });
    expect(points(r, 'interface')).toHaveLength(0);
  });

  it('bytes that are not SNMP: undecodable_reply with what the decoder said, not "timeout"', async () => {
    const r = await poll(junk);
    expect(kinds(r)).toEqual(['undecodable_reply']);
    expect(r.error).toMatch(new RegExp(`^${prefix()}undecodable_reply: get scalars: 2 replies came back that cannot be decoded as SNMP \\(.+\\), no usable one$`));
    expect(devicePoint(r).fields).toMatchObject({ snmp_up: 0, timeouts: 0 });
    expect(r.took).toBeLessThan(ONE_REQUEST_MS + 1500);
  });

  it('a reply whose request id is not the request\'s: unmatched_reply', async () => {
    const flipped = await poll(otherRequestId);
    expect(kinds(flipped)).toEqual(['unmatched_reply']);
    expect(flipped.error).toBe(`${prefix()}unmatched_reply: get scalars: 2 replies came back with a request id of no request sent (damaged, or meant for another manager), none to this request`);
  });

  it('a reply with another community: wrong_community, without waiting for a retry, and neither community in the message (they are secrets)', async () => {
    const r = await poll(relayKit.setCommunity('somebody-else'));
    expect(kinds(r)).toEqual(['wrong_community']);
    expect(r.error).toBe(`${prefix()}wrong_community: get scalars: the reply carries another community than the request (an agent or a proxy answering for another device?)`);
    expect(r.error).not.toMatch(/router'|somebody-else/);
    // Failed on the first reply: no retry was sent, or (an agent slower than the timeout) not a wait for all tries.
    expect(relay.stats.requests === 1 || r.took < ONE_REQUEST_MS, `${relay.stats.requests} requests in ${Math.round(r.took)} ms`).toBe(true);
  });

  it('a reply in another SNMP version: wrong_version names both', async () => {
    const r = await poll(relayKit.setVersion(0));
    expect(kinds(r)).toEqual(['wrong_version']);
    expect(r.error).toBe(`${prefix()}wrong_version: get scalars: asked in SNMPv2c, the reply is SNMPv1`);
  });

  it('noSuchObject, noSuchInstance, endOfMibView for sysUpTime: each named; the rest of the device is stored', async () => {
    for (const [type, kind] of [
      [TYPE.NoSuchObject, 'no_such_object'],
      [TYPE.NoSuchInstance, 'no_such_instance'],
      [TYPE.EndOfMibView, 'end_of_mib_view'],
    ] as const) {
      const r = await poll(relayKit.noSuch(SYS_UPTIME, type));
      expect(kinds(r)).toEqual([kind]);
      expect(r.error).toMatch(new RegExp(`^${prefix()}${kind}: get scalars: sysUpTime\\.0 \\(${SYS_UPTIME.replaceAll('.', '\\.')}\\): the agent answered (noSuchObject|noSuchInstance|endOfMibView)$`));
      expect(points(r, 'interface')).toHaveLength(12);
    }
  });

  it('a profile scalar the agent answered before and now lacks is named; one it never had is not (optional MIBs)', async () => {
    const memory = newMemory();
    expect((await poll(undefined, memory)).ok).toBe(true);
    const r = await poll(relayKit.noSuch(TEMPERATURE, TYPE.NoSuchInstance), memory);
    expect(kinds(r)).toEqual(['no_such_instance']);
    expect(r.error).toContain(`no_such_instance: get scalars: mtxrHlTemperature (${TEMPERATURE}): the agent answered noSuchInstance where it had answered a value before`);
    const fresh = await poll(relayKit.noSuch(TEMPERATURE, TYPE.NoSuchObject), newMemory());
    expect(fresh.ok, fresh.error).toBe(true);
    expect(points(fresh, 'system')[0]!.fields.temperature_c).toBeUndefined();
  });

  it('noSuchObject inside a walk (only endOfMibView may end one): no_such_object for that column, the others walk on, no fallback to 32-bit counters', async () => {
    const memory = newMemory();
    const r = await poll(relayKit.onlyFor(PDU.getBulk, relayKit.noSuch(IF_HC_IN)), memory);
    expect(kinds(r)).toEqual(['no_such_object']);
    // A column cut by an error proves nothing about the agent: no switch to the 32-bit ifInOctets.
    expect(memory.fallbacks.has(IF_HC_IN)).toBe(false);
    expect(r.error).toContain(`no_such_object: walk interfaces.ifHCInOctets: the agent answered noSuchObject for ${IF_HC_IN}.1 in a walk, after 0 rows`);
    expect(points(r, 'interface')).toHaveLength(12);
  });

  it('GETBULK replies cut at the agent\'s size limit (fewer varbinds than columns): the columns left out are asked again; nothing lost, nothing named', async () => {
    const direct = await poll(undefined, newMemory(), V2, true);
    const r = await poll(relayKit.keepVarbinds(5));
    expect(r.ok, r.error).toBe(true);
    expect(r.pdus).toBeGreaterThan(direct.pdus);
    const fields = (x: PollResult) => points(x, 'interface').map((p) => [p.tags.ifname, Object.keys(p.fields).sort().join(',')]);
    expect(fields(r)).toEqual(fields(direct));
    expect(points(r, 'storage')).toHaveLength(points(direct, 'storage').length);
  });

  it('a GETBULK reply with no varbind at all: invalid_reply (it would never end), the scalars are kept', async () => {
    const r = await poll(relayKit.keepVarbinds(0));
    expect(kinds(r)).toEqual(['invalid_reply']);
    expect(r.error).toMatch(/invalid_reply: walk interfaces, processors, storage: the GETBULK reply carries no varbind for the \d+ columns asked for$/);
    expect(points(r, 'system')[0]!.fields).toMatchObject({ temperature_c: 33 });
  });

  it('a reply that is not a response PDU: invalid_reply', async () => {
    const r = await poll(notAResponse);
    expect(kinds(r)).toEqual(['invalid_reply']);
    expect(r.error).toMatch(/invalid_reply: get scalars: the reply does not answer the request: /);
  });

  it('nothing back at all: a timeout, worded as before and counted as one', async () => {
    const r = await poll(() => null);
    expect(kinds(r)).toEqual(['timeout']);
    expect(r.error).toBe(`${prefix()}get scalars: timeout after 2 tries of 1000 ms`);
    expect(devicePoint(r).fields).toMatchObject({ snmp_up: 0, timeouts: 1 });
  });
});

describe('klaiwatch poll --once: one device per kind, the name on its point and on stderr, the count in the klaiwatch point', () => {
  const cases: { id: string; kind: SnmpErrorKind | 'ok'; rewrite?: Rewrite }[] = [
    { id: 'good', kind: 'ok' },
    { id: 'reorder', kind: 'oid_not_increasing', rewrite: relayKit.reorderColumn(IF_NAME) },
    { id: 'retype', kind: 'wrong_type', rewrite: relayKit.retype(IF_HC_IN, TYPE.OctetString, Buffer.from('n/a')) },
    { id: 'cut', kind: 'truncated_reply', rewrite: relayKit.truncate(0.6) },
    { id: 'junk', kind: 'undecodable_reply', rewrite: junk },
    { id: 'stray', kind: 'unmatched_reply', rewrite: otherRequestId },
    { id: 'notresponse', kind: 'invalid_reply', rewrite: notAResponse },
    { id: 'community', kind: 'wrong_community', rewrite: relayKit.setCommunity('somebody-else') },
    { id: 'version', kind: 'wrong_version', rewrite: relayKit.setVersion(0) },
    { id: 'nosuchobject', kind: 'no_such_object', rewrite: relayKit.noSuch(SYS_UPTIME, TYPE.NoSuchObject) },
    { id: 'nosuchinstance', kind: 'no_such_instance', rewrite: relayKit.noSuch(SYS_UPTIME, TYPE.NoSuchInstance) },
    { id: 'endofmib', kind: 'end_of_mib_view', rewrite: relayKit.noSuch(SYS_UPTIME, TYPE.EndOfMibView) },
    { id: 'silent', kind: 'timeout', rewrite: () => null },
  ];
  const relays: SnmpRelay[] = [];
  const dir = tempDir('snmp-errors-cli');
  let out: { code: number; stdout: string; stderr: string };
  const address = `${block}.3`;
  const portOf = new Map<string, number>();

  beforeAll(async () => {
    for (const c of cases) {
      if (!c.rewrite) continue;
      const r = await startSnmpRelay(address, { address: agents.address, port: agents.port }, c.rewrite);
      relays.push(r);
      portOf.set(c.id, r.port);
    }
    const devices = cases.map((c) => ({ id: c.id, kind: 'router', address: c.rewrite ? address : agents.address, port: portOf.get(c.id) ?? agents.port, profile: 'auto', snmp: 'router', icmp: false }));
    writeFileSync(join(dir.path, 'schools.yaml'), stringify({ schools: [{ code: 'T1', name_th: 'โรงเรียนทดสอบ', name_en: 'Test School', district: 'เมือง', devices }] }));
    writeFileSync(
      join(dir.path, 'klaiwatch.yaml'),
      stringify({
        area: { code: 'test', name_th: 'เขตทดสอบ', name_en: 'Test area' },
        inventory: ['schools.yaml'],
        instance: 'errors-test',
        influx: { url: 'http://127.0.0.1:9', database: 'unused' },
        spool: { dir: join(dir.path, 'spool') },
        alerts: { state_db: join(dir.path, 'state.sqlite') },
        polling: { interval: '30s', timeout: '1s', retries: 1, concurrency: 16 },
        snmp: { credentials: { router: { version: '2c', community: 'router' } } },
      }),
    );
    try {
      const { stdout, stderr } = await run(process.execPath, ['bin/klaiwatch.ts', 'poll', '--once', '--no-icmp', '--config', join(dir.path, 'klaiwatch.yaml')]);
      out = { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      out = { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  });
  afterAll(async () => {
    for (const r of relays) await r.close();
    dir.remove();
  });

  const lines = () => out.stdout.trim().split('\n');
  const deviceLine = (id: string) => lines().find((l) => l.startsWith('device,') && l.includes(`,device=${id},`));
  const selfLine = () => lines().find((l) => l.startsWith('klaiwatch,'))!;

  it('exits 2 (devices failed) and the good device is untouched: its 12 interfaces, no error', () => {
    expect(out.code, out.stderr).toBe(2);
    expect(deviceLine('good')).toMatch(/ snmp_up=1i,.*error=""/);
    expect(lines().filter((l) => l.startsWith('interface,') && l.includes(',device=good,'))).toHaveLength(12);
    // Agents that answered but whose poll named a problem (a walk cut short, an error status) count as failed, and as answered:
    // the summary agrees with the device points' snmp_up (it said "1 answered SNMP" while 1 + M points said snmp_up=1).
    const up = cases.filter((c) => / snmp_up=1i,/.test(deviceLine(c.id) ?? '')).length;
    expect(up).toBeGreaterThan(1);
    expect(out.stderr).toMatch(new RegExp(`^# 13 devices: ${up} answered SNMP \\(${up - 1} with named problems\\), 12 failed, `, 'm'));
  });

  for (const c of cases.filter((x) => x.kind !== 'ok')) {
    it(`${c.kind}: named on the device point, on stderr, and counted`, () => {
      const head = `school T1 router ${c.id} ${address}: `;
      const named = c.kind === 'timeout' ? `${head}get scalars: timeout after 2 tries of 1000 ms` : `${head}${c.kind}: `;
      expect(deviceLine(c.id)).toContain(`error="${named}`);
      expect(out.stderr).toContain(`# ${named}`);
      const self = selfLine();
      if (c.kind === 'timeout') expect(self).toMatch(/[ ,]snmp_timeouts=1i/);
      else expect(self).toMatch(new RegExp(`[ ,]${SNMP_ERROR_FIELDS[c.kind as Exclude<SnmpErrorKind, 'timeout'>]}=1i(,|$| )`));
    });
  }

  it('the kinds no device showed are counted as 0, every one of them', () => {
    const shown = new Set(cases.map((c) => c.kind));
    for (const [kind, field] of Object.entries(SNMP_ERROR_FIELDS)) {
      if (!shown.has(kind as SnmpErrorKind)) expect(selfLine()).toMatch(new RegExp(`[ ,]${field}=0i(,|$| )`));
    }
  });
});
