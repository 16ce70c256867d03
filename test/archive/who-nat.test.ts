// `who --port` through NAT events and post-NAT destinations (issue 15 point
// 6): an IPFIX NAT exporter's records (test/fixtures/netflow/nat-ipfix.pcap,
// decoded by the real decoder) in a real archive; the public address and
// port lead to the inside address, whether the school's address was the
// translated source (src-nat) or a destination forwarded to a server inside
// (dst-nat, postNATDestinationIPv4Address).
import { describe, it, expect, afterAll } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { udpPayloads } from '../../archive/pcap.ts';
import { FlowDecoder } from '../../archive/netflow.ts';
import { Archive } from '../../archive/archive.ts';
import { whoHad } from '../../archive/identity.ts';
import { tempDir } from '../helpers/peers.ts';

const dir = tempDir('who-nat');
afterAll(() => dir.remove());

describe('who --port through NAT', () => {
  it('src-nat (natEvent create) and dst-nat (post-NAT destination) each lead to the inside address and port', async () => {
    const d = new FlowDecoder();
    const recv = Date.UTC(2026, 10, 18, 11, 7);
    const flows = udpPayloads(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'netflow', 'nat-ipfix.pcap'))).flatMap((p) => d.decode(p.payload, '192.0.2.1', recv).flows);
    expect(flows).toHaveLength(3);
    const a = await Archive.open({ dir: dir.path, key: generateKeyPairSync('ed25519').privateKey, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    await a.append(flows);
    await a.seal();
    await a.close();
    const created = flows[0]!.end_ms!;
    const out = await whoHad(dir.path, '203.0.113.5', created + 500, 40001);
    expect(out.nat).toMatchObject({ public: '203.0.113.5', port: 40001, inside: '10.36.1.50', insidePort: 51000 });
    expect(out.ip).toBe('10.36.1.50');
    const server = await whoHad(dir.path, '203.0.113.5', flows[1]!.end_ms!, 443);
    expect(server.nat).toMatchObject({ inside: '10.36.1.80', insidePort: 8443 });
    // A port nothing was translated to: no NAT answer.
    expect((await whoHad(dir.path, '203.0.113.5', created, 40002)).nat).toBeUndefined();
  });
});
