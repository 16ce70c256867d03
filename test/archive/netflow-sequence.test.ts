// Loss upstream, counted as nfcapd counts it: softflowd (a real exporter)
// replays a capture as NetFlow v5, v9 and IPFIX to a socket on loopback; the
// datagrams go, all of them and then with every ninth one dropped, to the
// decoder and to nfcapd. The decoder's sequence errors must equal nfcapd's
// "Sequence failures", and its loss estimate the flows (v5) and datagrams
// (v9) that were dropped.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createSocket } from 'node:dgram';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FlowDecoder } from '../../archive/netflow.ts';
import { tempDir, freePort, requireBinary } from '../helpers/peers.ts';
import { softflowd, startNfcapd, writeTrafficPcap } from '../helpers/flows.ts';
import { v5 } from './netflow-build.ts';

const run = promisify(execFile);
let dir: ReturnType<typeof tempDir>;
let pcap: string;

beforeAll(() => {
  dir = tempDir('netflow-seq');
  pcap = join(dir.path, 'traffic.pcap');
  writeTrafficPcap(pcap, 3000, 4242);
});
afterAll(() => dir.remove());

/** What softflowd sends, exporting the capture as `version`, in the order it arrived. */
async function export_(version: 5 | 9 | 10): Promise<Buffer[]> {
  const s = createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  await softflowd(pcap, s.address().port, version);
  // softflowd has exited: what it sent is in the socket; let the loop read it.
  for (let last = -1; last !== got.length; ) {
    last = got.length;
    await new Promise((r) => setTimeout(r, 200));
  }
  s.close();
  return got;
}

/** nfcapd's sequence failures (and flows) for these datagrams, sent in order from 127.0.0.1. */
async function nfcapdSequenceFailures(name: string, datagrams: Buffer[]): Promise<{ failures: number; flows: number }> {
  const nfDir = join(dir.path, name);
  mkdirSync(nfDir);
  const port = await freePort();
  const nf = await startNfcapd(nfDir, port);
  const s = createSocket('udp4');
  // Paced, so that a busy machine's nfcapd does not lose any to a full socket buffer (a loss would be a sequence failure of its own).
  for (const [i, b] of datagrams.entries()) {
    await new Promise((r) => s.send(b, port, '127.0.0.1', r));
    if (i % 8 === 7) await new Promise((r) => setTimeout(r, 2));
  }
  s.close();
  // nfcapd may leave the last datagrams it read unprocessed when it is stopped: a few more from another exporter
  // (its own sequence, in step) make sure the ones under test were.
  const other = createSocket('udp4');
  await new Promise<void>((r) => other.bind(0, '127.0.0.2', () => r()));
  for (let i = 0; i < 5; i++) await new Promise((r) => other.send(v5({ seq: i }, 1), port, '127.0.0.1', r));
  other.close();
  await nf.stop();
  const { stdout } = await run(await requireBinary('nfdump', 'nfdump'), ['-R', nfDir, '-I']);
  const m = /^Sequence failures: (\d+)$/m.exec(stdout);
  const flows = /^Flows: (\d+)$/m.exec(stdout);
  if (!m || !flows) throw new Error(`nfdump -I printed no sequence failures or flows: ${stdout}`);
  return { failures: Number(m[1]), flows: Number(flows[1]) };
}

function decode(datagrams: Buffer[]) {
  const d = new FlowDecoder();
  let flows = 0;
  for (const [i, g] of datagrams.entries()) {
    const r = d.decode(g, '127.0.0.1', Date.UTC(2026, 10, 24) + i);
    expect(r.error).toBeUndefined();
    flows += r.flows.length;
  }
  return { flows, stats: d.stats, exporter: d.exporterStats()[0]! };
}

describe('sequence numbers against nfcapd, with softflowd exporting', () => {
  for (const version of [5, 9, 10] as const) {
    it(`v${version === 10 ? '10 (IPFIX)' : version}: lossless, and with every ninth datagram dropped`, async () => {
      const all = await export_(version);
      expect(all.length).toBeGreaterThan(50);
      // Every ninth from the fifth: never the first (its templates), nor softflowd's template refreshes (every 16th), nor the last (a loss shows in the next one).
      const drop = (i: number) => i % 9 === 4 && i < all.length - 1;
      const dropped = all.filter((_, i) => drop(i));
      const lossy = all.filter((_, i) => !drop(i));
      expect(dropped.every((_, k) => (4 + 9 * k) % 16 !== 0)).toBe(true);
      expect(dropped.length).toBeGreaterThan(5);

      const [refAll, refLossy] = await Promise.all([nfcapdSequenceFailures(`v${version}-all`, all), nfcapdSequenceFailures(`v${version}-lossy`, lossy)]);
      const ours = decode(all);
      const oursLossy = decode(lossy);
      // (nfcapd's flows, with the 5 of the other exporter, say whether it heard everything, should this ever differ.)
      expect({ all: ours.stats.sequence_errors, lossy: oursLossy.stats.sequence_errors }, `sequence errors, ours and nfcapd's (nfcapd's flows ${refAll.flows}, ${refLossy.flows}; ours ${ours.flows}, ${oursLossy.flows})`).toEqual({
        all: refAll.failures,
        lossy: refLossy.failures,
      });
      expect(oursLossy.stats.sequence_errors).toBeGreaterThanOrEqual(dropped.length);
      expect(oursLossy.exporter.sequence_errors).toBe(oursLossy.stats.sequence_errors);
      expect(ours.stats.restarts + oursLossy.stats.restarts).toBe(0);
      if (version === 5) {
        // v5 counts flows: the loss is exactly the dropped datagrams' flows.
        expect(ours.stats.lost_flows).toBe(0);
        expect(oursLossy.stats.lost_flows).toBe(dropped.reduce((n, g) => n + g.readUInt16BE(2), 0));
        expect(oursLossy.flows + oursLossy.stats.lost_flows).toBe(ours.flows);
      } else if (version === 9) {
        // v9 counts datagrams.
        expect(ours.stats.lost_datagrams).toBe(0);
        expect(oursLossy.stats.lost_datagrams).toBe(dropped.length);
      }
    });
  }
});
