// Microbenchmark of FlowDecoder.decode() alone (no sockets, no disk): the
// benchmark's NetFlow v5 datagrams (flows.ts, 200 exporters in turn) and the
// real exporters' v9 and IPFIX data datagrams (test/fixtures/netflow) decoded
// over and over. Prints flows per second of one core for each.
// Usage: node bench/traffic/decode.ts [SECONDS_PER_CASE] [DECODER_MODULE]
// (DECODER_MODULE: another netflow.ts, e.g. an older one, to compare.)
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FlowDecoder as Decoder } from '../../archive/netflow.ts';
import { udpPayloads } from '../../archive/pcap.ts';
import { flowSource, SCHOOLS } from './flows.ts';

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
