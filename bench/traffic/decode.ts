// Microbenchmark of FlowDecoder.decode() alone (no sockets, no disk): the
// benchmark's NetFlow v5 datagrams (flows.ts, 200 exporters in turn) and the
// real exporters' v9 and IPFIX data datagrams (test/fixtures/netflow) decoded
// over and over; prints flows per second of one core for each. Then the
// slowest 64 KB datagrams there can be (the most flows a byte, variable-length
// fields, IPv6 text, thousands of fields): milliseconds each, best of 20.
// Usage: node bench/traffic/decode.ts [SECONDS_PER_CASE] [DECODER_MODULE]
// (DECODER_MODULE: another netflow.ts, e.g. an older one, to compare.)
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FlowDecoder as Decoder } from '../../archive/netflow.ts';
import { udpPayloads } from '../../archive/pcap.ts';
import { flowSource, SCHOOLS } from './flows.ts';
import { type FieldSpec, ipfix, set, templateSet, v9 } from '../../test/archive/netflow-build.ts';

const seconds = Number(process.argv[2] ?? 3);
const module = process.argv[3] ? pathToFileURL(resolve(process.argv[3])).href : '../../archive/netflow.ts';
const { FlowDecoder } = (await import(module)) as { FlowDecoder: typeof Decoder };
type FlowDecoder = Decoder;
const rounds = 10;
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'netflow');
const pcap = (name: string) => udpPayloads(readFileSync(join(fixtures, `${name}.pcap`))).map((d) => d.payload);

function run(name: string, setup: (d: FlowDecoder) => void, next: (i: number) => { buf: Buffer; exporter: string }): void {
  const d = new FlowDecoder();
  setup(d);
  // Warm up, then the best of several rounds (the machine is shared: the best round is the one least disturbed).
  for (let i = 0; i < 20_000; i++) {
    const n = next(i);
    d.decode(n.buf, n.exporter, 1_700_000_000_000);
  }
  let best = 0;
  let bestUs = 0;
  let i = 0;
  for (let round = 0; round < rounds; round++) {
    let flows = 0;
    let datagrams = 0;
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.round((seconds / rounds) * 1e9));
    for (let now = t0; now < end; i++) {
      const n = next(i);
      flows += d.decode(n.buf, n.exporter, 1_700_000_000_000 + i).flows.length;
      datagrams++;
      if ((i & 255) === 0) now = process.hrtime.bigint();
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (flows / s > best) [best, bestUs] = [flows / s, (s / datagrams) * 1e6];
  }
  console.log(`${name.padEnd(8)} ${Math.round(best).toLocaleString('en').padStart(11)} flows/s  ${bestUs.toFixed(2)} µs/datagram  (best of ${rounds} rounds)`);
}

const source = flowSource('2569');
const v5 = Array.from({ length: SCHOOLS * 20 }, (_, i) => source.datagram(i % SCHOOLS, 1_700_000_000_000 + i));
const exporters = Array.from({ length: SCHOOLS }, (_, s) => `127.60.0.${1 + s}`);
run('v5', () => {}, (i) => ({ buf: v5[i % v5.length]!, exporter: exporters[i % SCHOOLS]! }));

const [v9t] = pcap('template');
const [v9d] = pcap('data');
run('v9', (d) => d.decode(v9t!, '127.0.0.9', 1_700_000_000_000), () => ({ buf: v9d!, exporter: '127.0.0.9' }));

const ipt = pcap('ipfixprobe-templates');
const [ipd] = pcap('ipfixprobe-data');
run('ipfix', (d) => ipt.forEach((t) => d.decode(t, '127.0.0.10', 1_700_000_000_000)), () => ({ buf: ipd!, exporter: '127.0.0.10' }));

const MAX = 65_535 - 16 - 4;
const many: FieldSpec[] = [];
for (let i = 0; i < 8000; i++) many.push(i % 2 ? [1000, 1] : [1001, 0xffff]);
many.push([8, 4]);
const worst: [string, Buffer, Buffer][] = [
  ['v9, one IPv4 address a record', v9({}, templateSet(9, [{ id: 256, fields: [[8, 4]] }])), v9({}, set(256, Buffer.alloc(65_000, 7)))],
  ['IPFIX, address + empty variable-length user', ipfix({}, templateSet(10, [{ id: 256, fields: [[8, 4], [371, 0xffff]] }])), ipfix({}, set(256, Buffer.concat(Array.from({ length: Math.floor(MAX / 5) }, () => Buffer.from([1, 2, 3, 4, 0])))))],
  ['IPFIX, variable-length fields only', ipfix({}, templateSet(10, [{ id: 256, fields: [[1000, 0xffff]] }])), ipfix({}, set(256, Buffer.alloc(MAX, 0)))],
  ['IPFIX, 8,001 fields a template', ipfix({}, templateSet(10, [{ id: 256, fields: many }])), ipfix({}, set(256, Buffer.alloc(25_000, 0)))],
  ['IPFIX, IPv6 source, destination, MAC', ipfix({}, templateSet(10, [{ id: 256, fields: [[27, 16], [28, 16], [56, 6]] }])), ipfix({}, set(256, Buffer.alloc(MAX, 0x11)))],
];
for (const [name, template, data] of worst) {
  const d = new FlowDecoder();
  d.decode(template, '127.0.0.1', 0);
  let best = Infinity;
  let flows = 0;
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    flows = d.decode(data, '127.0.0.1', 0).flows.length;
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${name.padEnd(44)} ${String(data.length).padStart(6)} bytes ${String(flows).padStart(6)} flows ${best.toFixed(2).padStart(6)} ms`);
}
