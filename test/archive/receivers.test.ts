// The receivers with real senders: util-linux `logger` (UDP, TCP with
// newline framing and with RFC 6587 octet counting), syslog-ng's `loggen`
// replaying the real log lines of test/fixtures/logs over UDP, TCP and TLS,
// real exporters' NetFlow/IPFIX datagrams (test/fixtures/netflow) and
// `softflowd` exporting a capture as v5, v9 and IPFIX, each cross-checked
// against nfcapd/nfdump fed the same export. Then garbage and truncated
// packets: counted as malformed, and the receiver keeps going.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { loadConfig, ConfigError, type Config } from '../../config/load.ts';
import { TrafficService, SyslogFramer } from '../../archive/service.ts';
import { queryArchive } from '../../archive/query.ts';
import { udpPayloads } from '../../archive/pcap.ts';
import { PROJECT } from '../../sim/area.ts';
import { tempDir, freePort, requireBinary } from '../helpers/peers.ts';
import { loggenFile, selfSignedCert, softflowd, startNfcapd, writeTrafficPcap } from '../helpers/flows.ts';

const run = promisify(execFile);
const dir = tempDir('receivers');
let config: Config;
let svc: TrafficService;
const port = (name: string) => Number(svc.bound[name]!.split(':').pop());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fixture = (p: string) => join(PROJECT, 'test', 'fixtures', p);

function settings(extra: string[] = []): string {
  return [
    'area: { code: t, name_th: สพป.ทดสอบ }',
    'inventory: schools.yaml',
    'influx: { url: "http://127.0.0.1:9" }',
    'traffic:',
    '  dir: archive',
    '  signing_key: signing.pem',
    '  fsync_interval: 20ms',
    '  syslog: { udp: "127.0.0.1:0", tcp: "127.0.0.1:0", tls: { listen: "127.0.0.1:0", cert: cert.pem, key: key.pem } }',
    '  flow: { udp: "127.0.0.1:0" }',
    ...extra,
    '',
  ].join('\n');
}

beforeAll(async () => {
  await requireBinary('logger', 'bsdutils');
  await selfSignedCert(dir.path);
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(
    join(dir.path, 'schools.yaml'),
    ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.1, profile: icmp-only }', ''].join('\n'),
  );
  writeFileSync(join(dir.path, 'area.yaml'), settings());
  config = loadConfig(join(dir.path, 'area.yaml'));
  svc = new TrafficService(config, pino({ level: 'silent' }), () => 0.8);
  await svc.start();
});

afterAll(async () => {
  await svc?.stop();
  dir.remove();
});

const archive = () => join(dir.path, 'archive');
/** Waits until the service has stored `n` records in all (the WAL's fsync follows within the interval). */
async function storedAtLeast(n: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (svc.stats.stored < n) {
    if (Date.now() > end) throw new Error(`stored ${svc.stats.stored} of ${n} records`);
    await sleep(20);
  }
}

describe('syslog receivers', () => {
  it('logger over UDP and TCP (newline and octet-counted framing), RFC 3164 and 5424, Thai text intact', async () => {
    const before = svc.stats.stored;
    const send = (args: string[]) => run('logger', ['--server', '127.0.0.1', ...args]);
    await send(['--port', String(port('syslog-udp')), '--udp', '--rfc3164', '-t', 'dhcpd', 'DHCPACK on 10.36.1.50 to aa:bb:cc:00:11:22 (ครู-สมชาย-pc) via eth0']);
    await send(['--port', String(port('syslog-tcp')), '--tcp', '--rfc5424', '-t', 'kw-test', 'ทดสอบการเก็บข้อมูลจราจรทางคอมพิวเตอร์ โรงเรียนบ้านหนองบัวแดง']);
    await send(['--port', String(port('syslog-tcp')), '--tcp', '--octet-count', '--rfc5424', '-t', 'squid', '1795500000.123    120 10.36.1.77 TCP_MISS/200 5120 GET http://dltv.ac.th/ ครูวิชัย DIRECT/203.0.113.7 text/html']);
    await storedAtLeast(before + 3);
    const dhcp = await queryArchive(archive(), { ip: '10.36.1.50' });
    expect(dhcp.rows).toHaveLength(1);
    expect(dhcp.rows[0]).toMatchObject({ parser: 'isc-dhcp', action: 'DHCPACK', mac: 'aa:bb:cc:00:11:22', client: 'ครู-สมชาย-pc', school: '1036090101', exporter: '127.0.0.1', app: 'dhcpd' });
    const thai = await queryArchive(archive(), { school: '1036090101' });
    expect(thai.rows.some((r) => r.raw?.endsWith('ทดสอบการเก็บข้อมูลจราจรทางคอมพิวเตอร์ โรงเรียนบ้านหนองบัวแดง') && r.app === 'kw-test')).toBe(true);
    const squid = await queryArchive(archive(), { ip: '10.36.1.77' });
    expect(squid.rows[0]).toMatchObject({ parser: 'squid', user: 'ครูวิชัย', url: 'http://dltv.ac.th/', dst_ip: '203.0.113.7', bytes: 5120 });
  });

  it('loggen replays every real log line over UDP, TCP and TLS: every one archived, parsed or raw', async () => {
    const files = ['mikrotik-firewall.log', 'isc-dhcpd.log', 'squid-access.log', 'pfsense-filterlog.log', 'rfc5424.log', 'freeradius-radius.log', 'cisco-asa.log', 'nginx-access.log', 'postfix.log'];
    const lines = files.flatMap((f) => readFileSync(fixture(`logs/${f}`), 'utf8').split('\n').filter(Boolean));
    const all = join(dir.path, 'all.log');
    writeFileSync(all, lines.join('\n') + '\n');
    for (const t of ['udp', 'tcp', 'tls'] as const) {
      const before = svc.stats.stored;
      const p = port(t === 'udp' ? 'syslog-udp' : t === 'tcp' ? 'syslog-tcp' : 'syslog-tls');
      await loggenFile(all, p, t);
      await storedAtLeast(before + lines.length);
      expect(svc.stats.stored - before, t).toBe(lines.length);
    }
    const res = await queryArchive(archive(), {});
    for (const line of lines) {
      const copies = res.rows.filter((r) => r.raw === line);
      expect(copies.length, line).toBe(3);
    }
    const nat = await queryArchive(archive(), { ip: '125.25.69.110' });
    expect(nat.rows).toHaveLength(3);
    expect(nat.rows.every((r) => r.parser === 'mikrotik-firewall' && r.src_ip === '192.168.20.171' && r.nat_port === 43996)).toBe(true);
  });

  it('frames a stream by octet counts and newlines alike, cuts what is too long and counts it', () => {
    const f = new SyslogFramer(64);
    const a = '<13>1 - h app - - - สวัสดี';
    const msgs = f.push(Buffer.from(`${Buffer.byteLength(a)} ${a}<14>plain line\n12 <13>split`));
    expect(msgs).toEqual([a, '<14>plain line']);
    // The rest of the counted message comes in the next chunk.
    expect(f.push(Buffer.from('ted\n'))).toEqual(['<13>splitted']);
    expect(f.push(Buffer.from(`${'x'.repeat(70)}\n`))).toEqual(['x'.repeat(64)]);
    expect(f.truncated).toBe(1);
    // A count is followed by a message's "<": a line that starts with a number is a line.
    expect(f.push(Buffer.from('2026 is a year, not a count\n'))).toEqual(['2026 is a year, not a count']);
  });
});

async function sendUdp(p: number, payloads: Buffer[]): Promise<void> {
  const s = createSocket('udp4');
  for (const b of payloads) await new Promise((r) => s.send(b, p, '127.0.0.1', r));
  s.close();
}

describe('flow receiver', () => {
  it("real exporters' v5, v9 and IPFIX datagrams, the v9 data before its template: the same flows, packets and bytes as nfdump", async () => {
    const order = ['nfv5', 'data', 'template', 'ipfixprobe-data', 'ipfixprobe-templates'];
    const payloads = order.flatMap((f) => udpPayloads(readFileSync(fixture(`netflow/${f}.pcap`))).map((d) => d.payload));
    const nfDir = join(dir.path, 'nfcapd-fixtures');
    mkdirSync(nfDir);
    const nfPort = await freePort();
    const nf = await startNfcapd(nfDir, nfPort);
    const before = { flows: svc.stats.flows_received, stored: svc.stats.stored };
    await sendUdp(port('flow-udp'), payloads);
    // nfcapd drops data that comes before its template (klaiwatch holds it): it gets the templates first.
    const templatesFirst = ['nfv5', 'template', 'data', 'ipfixprobe-templates', 'ipfixprobe-data'].flatMap((f) => udpPayloads(readFileSync(fixture(`netflow/${f}.pcap`))).map((d) => d.payload));
    await sendUdp(nfPort, templatesFirst);
    const ref = await nf.stop();
    await storedAtLeast(before.stored + ref.flows);
    expect(svc.stats.flows_received - before.flows).toBe(ref.flows);
    // nfdump: 29 + 4 + 4 flows, 78 + 4 + 60 packets, 88,345 + 5,848 + 25,942 bytes (SOURCES.md).
    expect(ref).toEqual({ flows: 37, packets: 142, bytes: 120_135 });
    const rows = (await queryArchive(archive(), {})).rows.filter((r) => r.kind === 'flow' && r.recv_ms >= 0);
    const mine = rows.filter((r) => ['netflow-v5', 'netflow-v9', 'ipfix'].includes(r.parser));
    expect(mine.length).toBe(37);
    expect(mine.reduce((n, r) => n + (r.packets ?? 0), 0)).toBe(142);
    expect(mine.reduce((n, r) => n + (r.bytes ?? 0), 0)).toBe(120_135);
  });

  it('softflowd exporting one capture as v5, v9 and IPFIX: flows, packets and bytes equal to nfcapd receiving the same', async () => {
    const pcap = join(dir.path, 'school-traffic.pcap');
    const held = writeTrafficPcap(pcap, 400);
    for (const v of [5, 9, 10] as const) {
      const nfDir = join(dir.path, `nfcapd-v${v}`);
      mkdirSync(nfDir);
      const nfPort = await freePort();
      const nf = await startNfcapd(nfDir, nfPort);
      const before = { flows: svc.stats.flows_received, stored: svc.stats.stored };
      const since = Date.now();
      await softflowd(pcap, port('flow-udp'), v);
      await softflowd(pcap, nfPort, v);
      const ref = await nf.stop();
      await storedAtLeast(before.stored + ref.flows);
      const rows = (await queryArchive(archive(), {})).rows.filter((r) => r.kind === 'flow' && r.recv_ms >= since);
      const sum = (k: 'packets' | 'bytes') => rows.reduce((n, r) => n + (r[k] ?? 0), 0);
      expect({ flows: rows.length, packets: sum('packets'), bytes: sum('bytes') }, `v${v}`).toEqual(ref);
      expect(ref.packets, `v${v}: every packet of the capture is in a flow`).toBe(held.packets);
      expect(rows.every((r) => r.parser === (v === 5 ? 'netflow-v5' : v === 9 ? 'netflow-v9' : 'ipfix'))).toBe(true);
    }
  });

  it('garbage and truncated datagrams are counted as malformed; the receiver keeps going', async () => {
    const v5 = udpPayloads(readFileSync(fixture('netflow/nfv5.pcap')))[0]!.payload;
    const before = { malformed: svc.stats.malformed, flows: svc.stats.flows_received };
    await sendUdp(port('flow-udp'), [Buffer.from('not a flow at all'), v5.subarray(0, 100), Buffer.from([0, 9, 0, 1]), Buffer.alloc(0), v5]);
    const end = Date.now() + 5000;
    while (svc.stats.flows_received - before.flows < 29 && Date.now() < end) await sleep(20);
    expect(svc.stats.malformed - before.malformed).toBe(4);
    expect(svc.stats.flows_received - before.flows).toBe(29);
  });

  it('a TCP sender with a nonsense octet count is cut off cleanly and the next sender is heard', async () => {
    const before = svc.stats.stored;
    await new Promise<void>((resolve) => {
      const s = connect(port('syslog-tcp'), '127.0.0.1', () => {
        s.end('999999999 <13>this count is a lie\n');
      });
      s.on('close', () => resolve());
    });
    await run('logger', ['--server', '127.0.0.1', '--port', String(port('syslog-tcp')), '--tcp', '-t', 'after', 'still listening']);
    await storedAtLeast(before + 1);
    let rows: { app: string | null; raw: string | null }[] = [];
    for (const end = Date.now() + 5000; rows.length === 0 && Date.now() < end; await sleep(50)) {
      rows = (await queryArchive(archive(), {})).rows.filter((r) => r.raw?.includes('still listening'));
    }
    expect(rows.map((r) => [r.app, r.raw])).toEqual([['after', expect.stringMatching(/still listening$/)]]);
  });
});

describe('traffic settings', () => {
  it('a retention below 90 days is refused when the configuration loads, naming the line and the law', () => {
    writeFileSync(join(dir.path, 'short.yaml'), settings(['  retention: 30d']));
    expect(() => loadConfig(join(dir.path, 'short.yaml'))).toThrow(ConfigError);
    try {
      loadConfig(join(dir.path, 'short.yaml'));
    } catch (err) {
      expect((err as Error).message).toMatch(/short\.yaml:\d+: traffic\.retention: traffic\.retention is 30 days; the Computer Crime Act \(section 26\) requires at least 90 days: set 90d or more/);
    }
  });
});
