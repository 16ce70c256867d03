// `who` over real log lines (issue 15 point 6): the lines of
// test/fixtures/logs parsed by the real parsers into a real archive; a public
// address and port lead inside through a Cisco ASA mapped address (inbound to
// a published server, outbound from a PC) and a RouterOS dst-nat, and a
// strongSwan virtual IP's holder is a session.
import { describe, it, expect, afterAll } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLogLine } from '../../archive/parsers.ts';
import { Archive } from '../../archive/archive.ts';
import { whoHad } from '../../archive/identity.ts';
import { tempDir } from '../helpers/peers.ts';

const dir = tempDir('who-identity');
afterAll(() => dir.remove());
const logs = join(import.meta.dirname, '..', 'fixtures', 'logs');
const RECV = Date.parse('2026-11-24T10:00:00+07:00');
// Each line received when the device logged it (who times a device by its own clock only when it agrees with klaiwatch's).
const read = (f: string) =>
  readFileSync(join(logs, f), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => parseLogLine(l, { exporter: '127.0.0.1', recvMs: RECV, utcOffsetMinutes: 420 }))
    .map((r) => ({ ...r, recv_ms: r.dev_ms ?? RECV }));

describe('who from ASA, RouterOS and strongSwan lines', () => {
  it('public address and port to the inside one; the VPN address to its peer', async () => {
    const records = [...read('cisco-asa-302013.log'), ...read('mikrotik-dstnat.log'), ...read('strongswan.log')].filter((r) => r.dev_ms !== null);
    const a = await Archive.open({ dir: dir.path, key: generateKeyPairSync('ed25519').privateKey, retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
    await a.append(records);
    await a.seal();
    await a.close();
    // ASA outbound: 203.0.113.5:51515 was 10.36.1.20 at 09:41.
    const pc = await whoHad(dir.path, '203.0.113.5', Date.parse('2026-11-24T09:41:00+07:00'), 51515);
    expect(pc.nat).toMatchObject({ inside: '10.36.1.20', insidePort: 51515 });
    // ASA inbound: 203.0.113.5:443 is the server 10.36.1.80.
    const server = await whoHad(dir.path, '203.0.113.5', Date.parse('2026-11-24T09:42:00+07:00'), 443);
    expect(server.nat).toMatchObject({ inside: '10.36.1.80', insidePort: 443 });
    // RouterOS dst-nat: 198.51.100.2:8080 is 10.36.1.20:80.
    const web = await whoHad(dir.path, '198.51.100.2', Date.parse('2026-11-24T09:20:00+07:00'), 8080);
    expect(web.nat).toMatchObject({ inside: '10.36.1.20', insidePort: 80 });
    // A port nothing was forwarded or translated to.
    expect((await whoHad(dir.path, '198.51.100.2', Date.parse('2026-11-24T09:20:00+07:00'), 9999)).nat).toBeUndefined();
    // strongSwan: 10.10.10.2 was somchai's from 10:00:01 to 11:30, nobody's after.
    const vpn = await whoHad(dir.path, '10.10.10.2', Date.parse('2026-11-24T10:30:00+07:00'));
    expect(vpn.sessions).toHaveLength(1);
    expect(vpn.sessions[0]).toMatchObject({ user: 'somchai@school.example', source: 'strongswan', from: Date.parse('2026-11-24T10:00:01+07:00'), to: Date.parse('2026-11-24T11:30:00+07:00') });
    expect((await whoHad(dir.path, '10.10.10.2', Date.parse('2026-11-24T11:31:00+07:00'))).sessions).toEqual([]);
  });
});
