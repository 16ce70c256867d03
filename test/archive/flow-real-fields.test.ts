// What real exporters send beyond addresses and counters (issue 15 point 6):
// sampling (v5 header, v9 options, IPFIX PSAMP selectors, the record's own
// interval), dataLinkFrameSection (IE 315: Ethernet, QinQ, MPLS with a
// control word, SRv6) and NAT events (IE 230, post-NAT destination). The
// captures are test/fixtures/netflow/make-captures.py's (SOURCES.md); the
// same datagrams go to nfcapd on loopback, and where nfdump decodes a field
// the archive's value must equal its. Then through a real archive: sealed
// and queried back, the new columns intact.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { udpPayloads } from '../../archive/pcap.ts';
import { FlowDecoder } from '../../archive/netflow.ts';
import { Archive } from '../../archive/archive.ts';
import { queryArchive } from '../../archive/query.ts';
import { rowsCsv } from '../../archive/export.ts';
import type { TrafficRecord } from '../../archive/record.ts';
import { startNfcapd } from '../helpers/flows.ts';
import { freePort, requireBinary, tempDir } from '../helpers/peers.ts';

const run = promisify(execFile);
const fixture = (name: string) => udpPayloads(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'netflow', `${name}.pcap`))).map((d) => d.payload);
const RECV = Date.UTC(2026, 10, 18, 11, 7);

let dir: ReturnType<typeof tempDir>;
beforeAll(() => {
  dir = tempDir('flow-real');
});
afterAll(() => dir.remove());

function decode(...names: string[]): TrafficRecord[] {
  const d = new FlowDecoder();
  const out: TrafficRecord[] = [];
  for (const n of names) {
    for (const p of fixture(n)) {
      const { flows, error } = d.decode(p, '192.0.2.1', RECV);
      expect(error, n).toBeUndefined();
      out.push(...flows);
    }
  }
  return out;
}

/** The captures through nfcapd on loopback: nfdump's totals and its lines in `format`. */
async function nfdump(names: string[], format: string): Promise<{ flows: number; packets: number; bytes: number; lines: string[] }> {
  const nfDir = join(dir.path, `nf-${names.join('-')}`);
  mkdirSync(nfDir);
  const port = await freePort();
  const nf = await startNfcapd(nfDir, port);
  const s = createSocket('udp4');
  for (const n of names) {
    for (const p of fixture(n)) {
      await new Promise((r) => s.send(p, port, '127.0.0.1', r));
      // Paced: a loaded machine's nfcapd may lose a datagram to its socket buffer.
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  s.close();
  const totals = await nf.stop();
  const { stdout } = await run(await requireBinary('nfdump', 'nfdump'), ['-R', nfDir, '-q', '-N', '-o', `fmt:${format}`]);
  return { ...totals, lines: stdout.split('\n').map((l) => l.replace(/\s+/g, '')).filter(Boolean).sort() };
}

const sum = (rs: readonly TrafficRecord[], f: (r: TrafficRecord) => number) => rs.reduce((n, r) => n + f(r), 0);
const scaled = (r: TrafficRecord, v: number | null) => (v ?? 0) * (r.sampling ?? 1);

describe('sampling', () => {
  it('NetFlow v5: the header\'s interval (1 in 100) kept per flow; packets and bytes scaled by it equal nfdump\'s, as received they are the datagram\'s', async () => {
    const flows = decode('sampling-v5');
    expect(flows.map((r) => r.sampling)).toEqual([100, 100, 100]);
    expect(flows.map((r) => [r.packets, r.bytes])).toEqual([[5, 500], [3, 300], [30, 3000]]);
    const ref = await nfdump(['sampling-v5'], '%sa|%pkt|%byt');
    expect(ref.flows).toBe(3);
    expect(sum(flows, (r) => scaled(r, r.packets))).toBe(ref.packets);
    expect(sum(flows, (r) => scaled(r, r.bytes))).toBe(ref.bytes);
    expect(ref.lines).toEqual(flows.map((r) => `${r.src_ip}|${scaled(r, r.packets)}|${scaled(r, r.bytes)}`).sort());
  });

  it('NetFlow v9 options: the exporter\'s interval (IE 34) for flows that name no sampler, sampler 5 (IE 48-50) for flows that name it', () => {
    const flows = decode('sampling-v9');
    const by = new Map(flows.map((r) => [r.src_ip, r]));
    // The example: 38 packets received of a 1-in-1000 sampled exporter.
    expect([by.get('10.36.2.10')!.packets, by.get('10.36.2.10')!.sampling]).toEqual([38, 1000]);
    expect(by.get('10.36.2.11')!.sampling).toBe(1000);
    expect([by.get('10.36.3.20')!.packets, by.get('10.36.3.20')!.sampling]).toEqual([10, 64]);
  });

  it('IPFIX: a PSAMP selector (IE 302, 305/306: 1 in 1 + 99) named by the flows, and samplingInterval in the record itself', () => {
    const flows = decode('sampling-ipfix');
    expect(flows.map((r) => [r.src_ip, r.packets, r.sampling])).toEqual([
      ['10.36.4.30', 7, 100],
      ['10.36.4.31', 1, 100],
      ['10.36.5.40', 4, 512],
    ]);
  });

  it('v9 and IPFIX: flows, packets and bytes as received equal nfdump 1.7.1\'s (which does not apply v9/IPFIX options sampling)', async () => {
    const flows = decode('sampling-v9', 'sampling-ipfix');
    const ref = await nfdump(['sampling-v9', 'sampling-ipfix'], '%sa|%da|%sp|%dp|%pkt|%byt');
    expect(ref.flows).toBe(flows.length);
    expect(ref.lines).toEqual(flows.map((r) => `${r.src_ip}|${r.dst_ip}|${r.src_port}|${r.dst_port}|${r.packets}|${r.bytes}`).sort());
  });

  it('templates and samplers are per exporter: another exporter sending the same data gets neither', () => {
    const d = new FlowDecoder();
    const [v9opts, v9data] = [fixture('sampling-v9')[0]!, fixture('sampling-v9')[1]!];
    // The data without its options records' datagram: the template is there, the sampler not yet.
    const tmplOnly = Buffer.from(v9opts);
    d.decode(tmplOnly, '192.0.2.1', RECV);
    // Another exporter sends the same: its templates and samplers are its own.
    const other = d.decode(v9data, '192.0.2.2', RECV);
    expect(other.flows).toEqual([]);
    const mine = d.decode(v9data, '192.0.2.1', RECV);
    expect(mine.flows.map((r) => r.sampling)).toEqual([1000, 1000]);
  });
});

describe('dataLinkFrameSection (IE 315)', () => {
  it('Ethernet, 802.1Q, QinQ, MPLS with a control word (EoMPLS), MPLS to IPv6, SRv6, ARP and a cut section: addresses, ports, protocol, MAC, one packet of the frame\'s size', () => {
    const flows = decode('datalink-ipfix');
    const facts = flows.map((r) => [r.src_ip, r.src_port, r.dst_ip, r.dst_port, r.proto, r.packets, r.bytes, r.mac]);
    const mac = '0c:4d:e9:a1:b2:c3';
    expect(facts).toEqual([
      // Template 300 (the section only): the frame's size from its first IP header.
      ['2001:db8:36::50', 53000, '2001:db8::53', 53, 17, 1, 106, mac],
      ['10.36.1.51', 53001, '198.51.100.53', 53, 17, 1, 70, mac],
      ['10.36.1.52', 51002, '203.0.113.20', 8443, 6, 1, 80, mac],
      ['2001:db8:36::52', 51003, '2001:db8:ffff::1', 22, 6, 1, 78, mac],
      ['10.36.1.53', 51004, '203.0.113.30', 4500, 17, 1, 134, mac],
      [null, null, null, null, null, 1, 42, mac],
      // Template 301 (dataLinkFrameSize, IE 312, beside it): the size the exporter said, whatever was cut.
      ['10.36.1.50', 51000, '203.0.113.10', 443, 6, 1, 1514, mac],
      [null, null, null, null, null, 1, 98, mac],
    ]);
    expect(flows.every((r) => r.parser === 'ipfix')).toBe(true);
  });

  it('sections cut at every length, and random bytes as a section, never throw and never read past the section', () => {
    const good = fixture('datalink-ipfix')[0]!;
    const d = new FlowDecoder();
    // Every prefix of the datagram: a fault is named, never thrown.
    for (let n = 16; n <= good.length; n++) {
      const b = Buffer.from(good.subarray(0, n));
      b.writeUInt16BE(n, 2);
      const { error } = d.decode(b, '192.0.2.9', RECV);
      if (error !== undefined) expect(error).toMatch(/^192\.0\.2\.9: IPFIX observation domain 315/);
    }
    let seed = 315;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
    for (let k = 0; k < 2000; k++) {
      const b = Buffer.from(good);
      // Flip bytes inside the sections (after the template set).
      for (let j = 0; j < 6; j++) b[40 + (rand() * 3 + rand()) % (b.length - 40)] = rand();
      const { flows } = d.decode(b, '192.0.2.10', RECV);
      for (const f of flows) expect(f.bytes === null || f.bytes >= 0).toBe(true);
    }
  });
});

describe('NAT events (RFC 8158)', () => {
  it('natEvent, post-NAT source and destination kept; equal to nfdump\'s event and translated addresses; the event time is the flow\'s', async () => {
    const flows = decode('nat-ipfix');
    expect(flows.map((r) => [r.nat_event, r.src_ip, r.src_port, r.nat_ip, r.nat_port, r.dst_ip, r.dst_port, r.post_nat_dst_ip, r.post_nat_dst_port])).toEqual([
      [4, '10.36.1.50', 51000, '203.0.113.5', 40001, '93.184.216.34', 443, '93.184.216.34', 443],
      [4, '198.51.100.77', 60000, '198.51.100.77', 60000, '203.0.113.5', 443, '10.36.1.80', 8443],
      [5, '10.36.1.50', 51000, '203.0.113.5', 40001, '93.184.216.34', 443, '93.184.216.34', 443],
    ]);
    const ref = await nfdump(['nat-ipfix'], '%sa|%sp|%da|%dp|%xsa|%xsp|%xda|%xdp');
    expect(ref.lines).toEqual(flows.map((r) => `${r.src_ip}|${r.src_port}|${r.dst_ip}|${r.dst_port}|${r.nat_ip}|${r.nat_port}|${r.post_nat_dst_ip}|${r.post_nat_dst_port}`).sort());
    // nfdump's raw output says the event numbers.
    const nfDir = join(dir.path, 'nf-nat-ipfix');
    const { stdout } = await run(await requireBinary('nfdump', 'nfdump'), ['-R', nfDir, '-o', 'raw']);
    expect([...stdout.matchAll(/nat event\s+=\s+(\d+)/g)].map((m) => Number(m[1]))).toEqual(flows.map((r) => r.nat_event));
    expect(flows.map((r) => r.end_ms! - flows[0]!.end_ms!)).toEqual([0, 1000, 2000]);
  });
});

describe('through the archive', () => {
  it('sampled, frame and NAT flows sealed and queried back with their columns; the CSV shows packets and bytes scaled beside those received', async () => {
    const flows = decode('sampling-v5', 'sampling-v9', 'sampling-ipfix', 'datalink-ipfix', 'nat-ipfix');
    const adir = join(dir.path, 'archive');
    const a = await Archive.open({ dir: adir, key: generateKeyPairSync('ed25519').privateKey, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    await a.append(flows);
    const key = (r: TrafficRecord) => `${r.src_ip}|${r.dst_ip}|${r.src_port}|${r.nat_event}|${r.bytes}`;
    const back = (await queryArchive(adir, {})).rows;
    expect(back.map(key).sort()).toEqual(flows.map(key).sort());
    await a.seal();
    const sealed = (await queryArchive(adir, {})).rows;
    const order = (rs: TrafficRecord[]) => [...rs].sort((x, y) => key(x).localeCompare(key(y)));
    expect(order(sealed)).toEqual(order(flows));
    const csv = rowsCsv(sealed).split('\r\n');
    const head = csv[0]!.replace('\ufeff', '').split(',');
    expect(head).toContain('packets_scaled');
    expect(head).toContain('bytes_scaled');
    const row = csv.find((l) => l.includes('10.36.2.10'))!.split(',');
    expect([row[head.indexOf('packets')], row[head.indexOf('sampling')], row[head.indexOf('packets_scaled')], row[head.indexOf('bytes_scaled')]]).toEqual(['38', '1000', '38000', '40018000']);
    await a.close();
  });
});
