// The flow decoder against hostile and unlucky senders (issue 13, points 2
// and 8): every loop advances or stops, every cache is capped, held data is
// bounded in bytes and released exactly once, and an exporter's loss shows in
// its sequence numbers. The datagrams are built byte by byte
// (netflow-build.ts); the real exporters' captures and softflowd are in
// archive.test.ts, receivers.test.ts and netflow-sequence.test.ts.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { FlowDecoder } from '../../archive/netflow.ts';
import { udpPayloads } from '../../archive/pcap.ts';
import { PROJECT } from '../../sim/area.ts';
import { FLOW_FIELDS, USER_FIELDS, flowRecords, ipfix, set, templateSet, userRecords, v5, v9 } from './netflow-build.ts';

const T0 = Date.UTC(2026, 10, 24, 3);
const fixture = (name: string) => udpPayloads(readFileSync(join(PROJECT, 'test', 'fixtures', 'netflow', `${name}.pcap`))).map((d) => d.payload);

/** Every flow's octet count (the tests' records carry a distinct mark there). */
const marks = (r: { flows: { bytes: number | null }[] }) => r.flows.map((f) => f.bytes);

describe('the 48-byte kill and other loops that did not advance', () => {
  it('the kill, in a process of its own with 64 MB of heap: it ends at once (it used to grow to 1.2 GB in 4 s and die)', async () => {
    const template = v9({ seq: 0 }, templateSet(9, [{ id: 256, fields: [[1000, 0]] }])).toString('hex');
    const data = v9({ seq: 1 }, set(256, Buffer.from([1, 2, 3, 4]))).toString('hex');
    const script = `
      import { FlowDecoder } from ${JSON.stringify(join(PROJECT, 'archive', 'netflow.ts'))};
      const d = new FlowDecoder();
      const out = ['${template}', '${data}'].map((h) => d.decode(Buffer.from(h, 'hex'), '127.0.0.5', 0));
      console.log(JSON.stringify({ out, rss: process.memoryUsage().rss }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', script], { timeout: 20_000 });
    const { out, rss } = JSON.parse(stdout) as { out: { flows: unknown[]; error?: string }[]; rss: number };
    expect(out[0]!.error).toMatch(/template 256 at byte 24: its records would have no bytes/);
    expect(out.flatMap((r) => r.flows)).toEqual([]);
    expect(rss).toBeLessThan(200 * 1024 * 1024);
  });

  it('a template whose only field has length 0, then a data set: an error naming the template, at once, nothing held or emitted', () => {
    // As reported: a v9 template (id 256) of one field of length 0, then a 4-byte data set for it.
    const template = v9({ seq: 0 }, templateSet(9, [{ id: 256, fields: [[1000, 0]] }]));
    const data = v9({ seq: 1 }, set(256, Buffer.from([1, 2, 3, 4])));
    const d = new FlowDecoder();
    const t0 = performance.now();
    const a = d.decode(template, '127.0.0.5', T0);
    const b = d.decode(data, '127.0.0.5', T0 + 1);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(a.flows).toEqual([]);
    expect(a.error).toBe('127.0.0.5: NetFlow v9 source id 0, set 0 at byte 20: template 256 at byte 24: its records would have no bytes (every field has length 0)');
    // The template was refused, so the data waits for a template that says how long its records are.
    expect(b).toEqual({ flows: [] });
    expect(d.stats).toMatchObject({ templates: 0, malformed: 1, held: 1, held_bytes: 4, internal_errors: 0 });
    // The same in IPFIX, both in one datagram, and with a zero-length known field (an address must be 4 bytes).
    const one = ipfix({}, templateSet(10, [{ id: 300, fields: [[1000, 0], [2000, 0, 9]] }]), set(300, Buffer.alloc(4)));
    expect(d.decode(one, '127.0.0.5', T0).error).toMatch(/^127\.0\.0\.5: IPFIX observation domain 0, set 2 at byte 16: template 300 at byte 20: its records would have no bytes/);
    const ip0 = v9({}, templateSet(9, [{ id: 257, fields: [[8, 0]] }]));
    expect(d.decode(ip0, '127.0.0.5', T0).error).toBe('127.0.0.5: NetFlow v9 source id 0, set 0 at byte 20: template 257, field at byte 28: sourceIPv4Address (8) has length 0; it must be 4 bytes');
  });

  it('zero-length unknown fields beside real ones are skipped: the records still advance and decode', () => {
    const fields: [number, number][] = [[1000, 0], ...(FLOW_FIELDS as [number, number][]), [1001, 0]];
    const d = new FlowDecoder();
    const r = d.decode(v9({}, templateSet(9, [{ id: 256, fields }]), set(256, flowRecords([11, 22, 33]))), '127.0.0.5', T0);
    expect(r.error).toBeUndefined();
    expect(marks(r)).toEqual([11, 22, 33]);
    expect(r.flows[0]).toMatchObject({ src_ip: '10.36.1.1', dst_ip: '203.0.113.12', src_port: 40000, dst_port: 443, proto: 6, parser: 'netflow-v9' });
  });

  it('set lengths below the header or past the end, impossible field lengths, variable lengths past the set: each an error naming exporter, version, domain, set and byte', () => {
    const d = new FlowDecoder();
    const ex = '192.0.2.9';
    const cases: [Buffer, RegExp][] = [
      [v9({ domain: 7 }, set(256, Buffer.alloc(0), 3)), /^192\.0\.2\.9: NetFlow v9 source id 7, set 256 at byte 20: set length 3 is below the 4 bytes of a set header$/],
      [v9({}, set(256, Buffer.alloc(8), 200)), /set 256 at byte 20: set length 200 runs past the end of the message \(12 bytes remain\)$/],
      [ipfix({ domain: 3 }, templateSet(10, [{ id: 400, fields: [[12, 2]] }])), /^192\.0\.2\.9: IPFIX observation domain 3, set 2 at byte 16: template 400, field at byte 24: destinationIPv4Address \(12\) has length 2; it must be 4 bytes$/],
      [ipfix({}, templateSet(10, [{ id: 401, fields: [[27, 4]] }])), /sourceIPv6Address \(27\) has length 4; it must be 16 bytes/],
      [ipfix({}, templateSet(10, [{ id: 402, fields: [[1, 9]] }])), /octetDeltaCount \(1\) has length 9; it must be 1 to 8 bytes/],
      [ipfix({}, templateSet(10, [{ id: 403, fields: [[8, 0xffff]] }])), /sourceIPv4Address \(8\) has length variable; it must be 4 bytes/],
      [ipfix({}, templateSet(10, [{ id: 404, fields: [[154, 4]] }])), /flowStartMicroseconds \(154\) has length 4; it must be 8 bytes/],
      [ipfix({}, templateSet(10, [{ id: 405, fields: [[1, 4, 29305]] }])), null as unknown as RegExp], // a reverse counter of 4 bytes is fine
      [ipfix({}, templateSet(10, [{ id: 406, fields: [[1, 3], [2, 4]], scope: 0 }])), /options template 406 at byte 20: scope field count 0 must be 1 to the field count 2/],
      [ipfix({}, templateSet(10, [{ id: 100, fields: [[8, 4]] }])), /template at byte 20: template id 100 is below 256/],
      [v9({}, templateSet(9, [{ id: 407, fields: [] }])), /template 407 at byte 24 has no fields/],
      [v9({}, set(0, Buffer.from([1, 0x98, 0, 3, 0, 8, 0, 4]))), /template 408 at byte 24 ends after 1 of 3 fields/],
      [Buffer.from([0, 10, 0, 200, ...Buffer.alloc(12)]), /^192\.0\.2\.9: IPFIX: message length 200 does not fit the datagram of 16 bytes$/],
      [Buffer.from([0, 9, 0, 1]), /^192\.0\.2\.9: NetFlow v9: header needs 20 bytes, the datagram has 4$/],
      [v5({}, 3).subarray(0, 100), /^192\.0\.2\.9: NetFlow v5: the header says 3 records, the datagram holds 1 \(at most 30\)$/],
      [Buffer.from('not a flow'), /^192\.0\.2\.9: version 28271 is not NetFlow v5, v9 or IPFIX \(10\)$/],
      [Buffer.alloc(0), /^192\.0\.2\.9: datagram of 0 bytes is too short for a NetFlow header$/],
    ];
    for (const [buf, want] of cases) {
      const r = d.decode(buf, ex, T0);
      if (want === null) expect(r.error, buf.toString('hex')).toBeUndefined();
      else expect(r.error, buf.toString('hex')).toMatch(want);
    }
    // A variable-length field that runs past its set: the records before it are kept.
    d.decode(ipfix({ domain: 5 }, templateSet(10, [{ id: 500, fields: USER_FIELDS }])), ex, T0);
    const good = userRecords([1, 2]);
    const bad = Buffer.concat([good, flowRecords([3]), Buffer.from([200, 0x41, 0x42])]);
    const r = d.decode(ipfix({ domain: 5 }, set(500, bad)), ex, T0);
    expect(marks(r)).toEqual([1, 2]);
    expect(r.flows.map((f) => f.user)).toEqual(['somchai', 'somchai']);
    expect(r.error).toBe(`192.0.2.9: IPFIX observation domain 5, set 500 at byte 16: template 500: record 3 at byte 70 cut short in field 371 (variable length) (200 bytes needed at byte 88, the set ends at byte 90)`);
    expect(d.stats.internal_errors).toBe(0);
  });
});

describe('held data', () => {
  it('a held set that fails to decode is dropped and counted; the sets released before and after it come out exactly once, however often the template is refreshed (the triple-archiving case)', () => {
    const d = new FlowDecoder();
    const ex = '127.0.0.6';
    // Data for template 600 before the template: three sets, the middle one malformed.
    const sets = [userRecords([101, 102]), Buffer.concat([userRecords([201]), flowRecords([202]), Buffer.from([60, 0x41])]), userRecords([301, 302])];
    for (const [i, s] of sets.entries()) expect(d.decode(ipfix({ seq: i }, set(600, s)), ex, T0 + i)).toEqual({ flows: [] });
    expect(d.stats).toMatchObject({ held: 3 });
    const template = ipfix({ seq: 10 }, templateSet(10, [{ id: 600, fields: USER_FIELDS }]));
    const seen: number[] = [];
    for (let refresh = 0; refresh < 3; refresh++) {
      const r = d.decode(template, ex, T0 + 10 + refresh);
      seen.push(...(marks(r) as number[]));
      if (refresh === 0) expect(r.error).toMatch(/^127\.0\.0\.6: IPFIX observation domain 0, held set 600 \(received 2026-11-24T03:00:00\.001Z\) at byte 16: template 600: record 2 at byte 45 cut short in field 371 \(variable length\) \(60 bytes needed at byte 63, the set ends at byte 64\); the set is dropped$/);
      else expect(r.error).toBeUndefined();
    }
    // 201 decoded before the fault in its set, and kept; each record once.
    expect(seen).toEqual([101, 102, 201, 301, 302]);
    expect(d.stats).toMatchObject({ held: 0, held_bytes: 0, held_failed: 1, held_dropped: 0, held_expired: 0, internal_errors: 0 });
  });

  it('a template releases only the sets waiting for it (same exporter, domain and id), in the order they came', () => {
    const d = new FlowDecoder();
    d.decode(v9({ domain: 1 }, set(256, flowRecords([1]))), '127.0.0.7', T0);
    d.decode(v9({ domain: 2 }, set(256, flowRecords([2]))), '127.0.0.7', T0);
    d.decode(v9({ domain: 1 }, set(257, flowRecords([3]))), '127.0.0.7', T0);
    d.decode(v9({ domain: 1 }, set(256, flowRecords([4]))), '127.0.0.8', T0);
    d.decode(v9({ domain: 1 }, set(256, flowRecords([5, 6]))), '127.0.0.7', T0);
    d.decode(ipfix({ domain: 1 }, set(256, flowRecords([7]))), '127.0.0.7', T0);
    expect(d.stats.held).toBe(6);
    const r = d.decode(v9({ domain: 1 }, templateSet(9, [{ id: 256, fields: FLOW_FIELDS }])), '127.0.0.7', T0 + 5);
    expect(marks(r)).toEqual([1, 5, 6]);
    expect(r.flows.every((f) => f.recv_ms === T0 && f.exporter === '127.0.0.7')).toBe(true);
    expect(d.stats.held).toBe(4);
  });

  it('held data is capped in bytes and in count (oldest out, counted), and expires by expire(now) and lazily', () => {
    const d = new FlowDecoder({ maxHeldBytes: 1000, maxHeld: 5, holdMs: 60_000 });
    const big = flowRecords(Array.from({ length: 17 }, (_, i) => i)); // 289 bytes
    for (let i = 0; i < 5; i++) d.decode(v9({ seq: i }, set(256 + i, big)), '127.0.0.9', T0 + i);
    // 3 * 289 = 867 fit in 1,000 bytes; the two oldest went.
    expect(d.stats).toMatchObject({ held: 3, held_bytes: 867, held_dropped: 2, heldDropped: 2 });
    for (let i = 0; i < 10; i++) d.decode(v9({ seq: 10 + i }, set(300 + i, flowRecords([i]))), '127.0.0.9', T0 + 10);
    expect(d.stats.held).toBe(5);
    expect(d.stats.held_bytes).toBeLessThanOrEqual(1000);
    // One set larger than the whole hold is dropped at once.
    d.decode(v9({}, set(400, Buffer.alloc(1200, 1))), '127.0.0.9', T0 + 11);
    expect(d.stats.held).toBe(5);
    expect(d.stats.held_dropped).toBe(2 + 8 + 1);
    // Expiry: by the timer ...
    d.expire(T0 + 10 + 60_001);
    expect(d.stats).toMatchObject({ held: 0, held_bytes: 0, held_expired: 5 });
    // ... and lazily, when the next datagram comes after the hold time.
    d.decode(v9({}, set(500, flowRecords([1]))), '127.0.0.9', T0 + 100_000);
    d.decode(v5({}, 1), '127.0.0.9', T0 + 200_000);
    expect(d.stats).toMatchObject({ held: 0, held_expired: 6 });
    // maxHeld 0: nothing is held.
    const none = new FlowDecoder({ maxHeld: 0 });
    none.decode(v9({}, set(256, flowRecords([1]))), '127.0.0.9', T0);
    expect(none.stats).toMatchObject({ held: 0, held_dropped: 1 });
  });

  it('holding a set costs the same with 20,000 sets held as with none (no scan per datagram)', () => {
    const data = Array.from({ length: 22_000 }, (_, i) => v9({ seq: i }, set(256 + i, flowRecords([i]))));
    const time = (d: FlowDecoder, from: number) => {
      const t0 = performance.now();
      for (let i = from; i < from + 2000; i++) d.decode(data[i]!, '127.0.0.10', T0);
      return performance.now() - t0;
    };
    let small = Infinity;
    let large = Infinity;
    for (let round = 0; round < 2; round++) {
      small = Math.min(small, time(new FlowDecoder({ maxHeld: 100_000 }), 0));
      const d = new FlowDecoder({ maxHeld: 100_000, maxHeldBytes: 1e9 });
      for (let i = 0; i < 20_000; i++) d.decode(data[i]!, `127.0.${i % 200}.1`, T0);
      expect(d.stats.held).toBe(20_000);
      large = Math.min(large, time(d, 20_000));
    }
    // A scan of the held sets per datagram (the old decoder's) makes this about 20 times slower.
    expect(large).toBeLessThan(small * 5 + 50);
  });
});

describe('the template cache', () => {
  it('is capped per exporter and domain and in all, least recently used out, evictions counted', () => {
    const d = new FlowDecoder({ maxTemplatesPerExporter: 4, maxTemplates: 10 });
    const tpl = (id: number, domain = 0) => v9({ domain }, templateSet(9, [{ id, fields: FLOW_FIELDS }]));
    for (let id = 256; id < 260; id++) d.decode(tpl(id), '127.0.0.11', T0);
    // 256 is used, so 257 is the least recently used when 260 comes.
    expect(marks(d.decode(v9({}, set(256, flowRecords([1]))), '127.0.0.11', T0))).toEqual([1]);
    d.decode(tpl(260), '127.0.0.11', T0);
    expect(d.stats).toMatchObject({ templates: 4, templates_evicted: 1 });
    expect(marks(d.decode(v9({}, set(256, flowRecords([2]))), '127.0.0.11', T0))).toEqual([2]);
    expect(marks(d.decode(v9({}, set(257, flowRecords([3]))), '127.0.0.11', T0))).toEqual([]);
    expect(d.stats.held).toBe(1);
    // Many exporters: never more than 10 in all.
    for (let e = 0; e < 20; e++) for (let id = 256; id < 262; id++) d.decode(tpl(id, e), `127.0.1.${e}`, T0);
    expect(d.stats.templates).toBe(10);
    // 125 templates came (5 + 20 * 6), 10 are kept.
    expect(d.stats.templates_evicted).toBe(125 - 10);
    const perExporter = d.exporterStats();
    expect(perExporter.reduce((s, e) => s + e.templates, 0)).toBe(10);
  });

  it('a template not refreshed within templateMs is forgotten (lazily and by expire), and its data held until it comes again', () => {
    const d = new FlowDecoder({ templateMs: 3_600_000, holdMs: 4 * 3_600_000 });
    d.decode(v9({}, templateSet(9, [{ id: 256, fields: FLOW_FIELDS }])), '127.0.0.12', T0);
    d.decode(v9({}, templateSet(9, [{ id: 257, fields: FLOW_FIELDS }])), '127.0.0.12', T0 + 3_000_000);
    expect(marks(d.decode(v9({}, set(256, flowRecords([1]))), '127.0.0.12', T0 + 3_500_000))).toEqual([1]);
    expect(marks(d.decode(v9({}, set(256, flowRecords([2]))), '127.0.0.12', T0 + 3_600_001))).toEqual([]);
    expect(d.stats).toMatchObject({ templates: 1, templates_expired: 1, held: 1 });
    d.expire(T0 + 3_000_000 + 3_600_001);
    expect(d.stats).toMatchObject({ templates: 0, templates_expired: 2 });
    expect(marks(d.decode(v9({}, templateSet(9, [{ id: 256, fields: FLOW_FIELDS }])), '127.0.0.12', T0 + 7_000_000))).toEqual([2]);
  });

  it('IPFIX withdrawals forget one template or all of a kind; options data is recognised and skipped', () => {
    const d = new FlowDecoder();
    const ex = '127.0.0.13';
    d.decode(ipfix({}, templateSet(10, [{ id: 256, fields: FLOW_FIELDS }, { id: 257, fields: FLOW_FIELDS }]), templateSet(10, [{ id: 258, fields: [[149, 4], [41, 8]], scope: 1 }])), ex, T0);
    expect(d.stats.templates).toBe(3);
    const opt = d.decode(ipfix({}, set(258, Buffer.alloc(24))), ex, T0);
    expect(opt).toEqual({ flows: [] });
    expect(d.stats.optionsRecords).toBe(2);
    d.decode(ipfix({}, set(2, Buffer.from([1, 0, 0, 0]))), ex, T0); // withdraw 256
    expect(d.stats.templates).toBe(2);
    d.decode(ipfix({}, set(2, Buffer.from([0, 2, 0, 0]))), ex, T0); // withdraw all data templates
    expect(d.stats.templates).toBe(1);
    expect(d.stats.malformed).toBe(0);
  });

  it('exporters followed are capped; each one\'s figures are there for /healthz', () => {
    const d = new FlowDecoder({ maxExporters: 3 });
    for (let e = 0; e < 10; e++) d.decode(v5({ seq: 0 }, 2), `127.0.2.${e}`, T0 + e);
    const s = d.exporterStats();
    expect(s.map((x) => x.exporter)).toEqual(['127.0.2.7', '127.0.2.8', '127.0.2.9']);
    expect(s[2]).toMatchObject({ datagrams: 1, flows: 2, malformed: 0, sequence_errors: 0, last_ms: T0 + 9 });
    expect(d.stats.exporters).toBe(3);
    // The one heard again is kept; the least recently heard goes (the order is kept to the second).
    const lru = new FlowDecoder({ maxExporters: 3 });
    const hear = (e: string, at: number) => lru.decode(v5({}, 1), e, at);
    hear('127.0.3.1', T0);
    hear('127.0.3.2', T0 + 1);
    hear('127.0.3.3', T0 + 2);
    hear('127.0.3.1', T0 + 2000);
    hear('127.0.3.4', T0 + 2001);
    expect(lru.exporterStats().map((x) => x.exporter)).toEqual(['127.0.3.3', '127.0.3.1', '127.0.3.4']);
  });
});

describe('sequence numbers, as nfcapd counts them', () => {
  it('v5 counts flows: a gap is a sequence error and its flows lost; wraparound is no gap; a big jump back or the uptime going back is a restart', () => {
    const d = new FlowDecoder();
    const ex = '127.0.0.14';
    const send = (seq: number, count: number, uptime = 3_600_000) => d.decode(v5({ seq, uptime }, count), ex, T0);
    send(0, 30);
    send(30, 30);
    send(60, 10);
    expect(d.stats).toMatchObject({ sequence_errors: 0, lost_flows: 0 });
    send(100, 30); // 30 flows (70..99) never came
    expect(d.stats).toMatchObject({ sequence_errors: 1, lost_flows: 30 });
    send(2 ** 31, 30, 3_700_000); // a jump of 2^31: a restart (or a resync), not two billion lost flows
    expect(d.stats).toMatchObject({ sequence_errors: 1, lost_flows: 30, restarts: 1 });
    send(2 ** 31 + 30, 5, 3_700_100);
    send(0, 5, 3_700_200); // far back
    expect(d.stats).toMatchObject({ sequence_errors: 1, lost_flows: 30, restarts: 2 });
    send(5, 5, 3_700_300);
    send(100_000, 5, 3_700_400); // 99,990 lost
    expect(d.stats).toMatchObject({ sequence_errors: 2, lost_flows: 30 + 99_990 });
    send(99_000, 5, 3_700_400); // 1,005 back: late or repeated, not a restart, and no more loss
    expect(d.stats).toMatchObject({ sequence_errors: 3, lost_flows: 30 + 99_990, restarts: 2 });
    send(100_005, 5, 3_700_500); // still in step with the newest
    expect(d.stats.sequence_errors).toBe(3);
    send(100_000, 5, 2_000); // a little back, but the uptime went back too: the exporter restarted
    expect(d.stats).toMatchObject({ sequence_errors: 3, restarts: 3 });
    expect(d.exporterStats()[0]).toMatchObject({ exporter: ex, sequence_errors: 3, lost_flows: 30 + 99_990, restarts: 3 });
    // Across 2^32: no gap.
    d.decode(v5({ seq: 2 ** 32 - 10 }, 30), '127.0.0.24', T0);
    d.decode(v5({ seq: 20 }, 5), '127.0.0.24', T0);
    expect(d.exporterStats()[1]).toMatchObject({ exporter: '127.0.0.24', sequence_errors: 0, restarts: 0, lost_flows: 0 });
  });

  it('v9 counts datagrams per source id; IPFIX counts data records per observation domain, and a held set makes the next datagram the new reference', () => {
    const d = new FlowDecoder();
    const ex = '127.0.0.15';
    d.decode(v9({ seq: 7, domain: 1 }, templateSet(9, [{ id: 256, fields: FLOW_FIELDS }])), ex, T0);
    d.decode(v9({ seq: 100, domain: 2 }), ex, T0);
    d.decode(v9({ seq: 8, domain: 1 }, set(256, flowRecords([1, 2]))), ex, T0);
    d.decode(v9({ seq: 101, domain: 2 }), ex, T0);
    d.decode(v9({ seq: 12, domain: 1 }), ex, T0);
    expect(d.stats).toMatchObject({ sequence_errors: 1, lost_datagrams: 3, lost_flows: 0 });
    const dx = new FlowDecoder();
    dx.decode(ipfix({ seq: 50 }, templateSet(10, [{ id: 256, fields: FLOW_FIELDS }]), set(256, flowRecords([1, 2, 3]))), ex, T0);
    dx.decode(ipfix({ seq: 53 }, set(256, flowRecords([4]))), ex, T0);
    dx.decode(ipfix({ seq: 60 }, set(256, flowRecords([5]))), ex, T0);
    expect(dx.stats).toMatchObject({ sequence_errors: 1, lost_flows: 6 });
    dx.decode(ipfix({ seq: 61 }, set(999, flowRecords([6, 7]))), ex, T0); // held: how many records is not known
    dx.decode(ipfix({ seq: 63 }, set(256, flowRecords([8]))), ex, T0);
    dx.decode(ipfix({ seq: 64 }, set(256, flowRecords([9]))), ex, T0);
    expect(dx.stats).toMatchObject({ sequence_errors: 1, lost_flows: 6 });
  });
});

describe("the real exporters' captures", () => {
  it('decode as before: 29 + 4 + 4 flows, the same packets and bytes as nfdump, the v9 data before its template', () => {
    const d = new FlowDecoder();
    const all = ['nfv5', 'data', 'template', 'ipfixprobe-templates', 'ipfixprobe-data'].flatMap((n) => fixture(n).map((p) => d.decode(p, '127.0.0.16', T0)));
    expect(all.every((r) => r.error === undefined)).toBe(true);
    const flows = all.flatMap((r) => r.flows);
    expect({ flows: flows.length, packets: flows.reduce((s, f) => s + f.packets!, 0), bytes: flows.reduce((s, f) => s + f.bytes!, 0) }).toEqual({ flows: 37, packets: 142, bytes: 120_135 });
    expect(d.stats).toMatchObject({ held: 0, held_failed: 0, malformed: 0, internal_errors: 0 });
  });
});
