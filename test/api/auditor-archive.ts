// A real traffic-log archive for the auditor's API and pages tests, filled
// through the archive's own append path and sealed (as the receivers do):
// a school morning on 3 June 2026 (a DHCP lease, a RADIUS accounting
// session, a hotspot login, a RouterOS NAT line, as test/archive/
// auditor.test.ts has them), a hotspot user name written as a spreadsheet
// formula (CSV injection), one record still in the write-ahead log, and
// optionally many firewall lines of one address (a large answer).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { Archive } from '../../archive/archive.ts';
import { parseLogLine } from '../../archive/parsers.ts';
import { loadPrivateKey, rawPublicKey } from '../../archive/manifest.ts';
import type { TrafficRecord } from '../../archive/record.ts';

export const at = (local: string) => Date.parse(`${local}:00+07:00`);
const june = (hhmm: string) => at(`2026-06-03T${hhmm}`);
const line = (text: string, exporter: string, recvMs: number): TrafficRecord => parseLogLine(text, { exporter, recvMs, utcOffsetMinutes: 420 });

/** The hotspot user name that a spreadsheet would run as a formula. */
export const FORMULA_USER = '=HYPERLINK("http://x.example/?a","klik")';
/** A message carrying markup (the pages must escape it). */
export const MARKUP = '<img src=x onerror=alert(1)><script>alert(2)</script>';
/** The address of the many firewall lines (bulk). */
export const BULK_IP = '10.50.1.2';

export interface TestArchive {
  dir: string;
  keyFile: string;
  publicKey: string;
  /** The traffic settings for startApiArea's extraSettings (absolute paths). */
  settings: Record<string, unknown>;
}

export async function fillArchive(base: string, o: { bulk?: number } = {}): Promise<TestArchive> {
  mkdirSync(base, { recursive: true });
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const keyFile = join(base, 'signing.pem');
  writeFileSync(keyFile, pem, { mode: 0o600 });
  const dir = join(base, 'archive');
  const a = await Archive.open({ dir, key: loadPrivateKey(pem), retentionDays: 3650, fsyncIntervalMs: 5 });
  await a.append([
    line('<30>Jun  3 08:00:05 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', june('08:00')),
    line('<30>Jun  3 08:30:00 dhcp dhcpd[10]: DHCPACK on 10.23.4.5 to aa:bb:cc:dd:ee:01 (ห้องคอม-01) via eth0', '127.0.0.7', june('08:30')),
    line('<30>Jun  3 12:00:00 dhcp dhcpd[10]: DHCPRELEASE of 10.23.4.5 from aa:bb:cc:dd:ee:01 via eth0', '127.0.0.7', june('12:00')),
    line('Acct-Status-Type = Start, User-Name = "somchai", Framed-IP-Address = 10.23.4.5, Calling-Station-Id = "AA-BB-CC-DD-EE-01", NAS-IP-Address = 10.23.0.1, Event-Timestamp = ' + june('08:05') / 1000, '127.0.0.6', june('08:05')),
    line('Acct-Status-Type = Stop, User-Name = "somchai", Framed-IP-Address = 10.23.4.5, Acct-Session-Time = 13200, NAS-IP-Address = 10.23.0.1, Event-Timestamp = ' + june('11:45') / 1000, '127.0.0.6', june('11:45')),
    line('2026-06-03T09:41:07+07:00 gw firewall,info forward: in:lan out:pppoe-out1, src-mac aa:bb:cc:dd:ee:01, proto TCP (ACK,PSH), 10.23.4.5:51000->47.241.18.42:443, NAT (10.23.4.5:51000->125.25.69.110:51000)->47.241.18.42:443, len 1400', '127.0.0.5', june('09:41')),
    line('hotspot,account,info,debug hs: malee (10.23.4.6): logged in', '127.0.0.5', june('09:00')),
    line(`hotspot,account,info,debug hs: ${FORMULA_USER} (10.23.4.7): logged in`, '127.0.0.5', june('09:10')),
    // Markup in a message: a page must show it as text.
    line(`<30>Jun  3 09:20:00 gw app: ${MARKUP}`, '127.0.0.4', june('09:20')),
  ]);
  await a.seal();
  const bulk = o.bulk ?? 0;
  for (let done = 0; done < bulk; ) {
    const n = Math.min(20_000, bulk - done);
    const batch: TrafficRecord[] = [];
    for (let i = 0; i < n; i++) {
      const k = done + i;
      const t = june('10:00') + k * 10;
      batch.push(line(`<134>Jun  3 10:00:00 gw firewall,info forward: in:lan out:wan, proto TCP (SYN), ${BULK_IP}:${10_000 + (k % 50_000)}->1.1.${(k >> 8) & 255}.${k & 255}:443, len 60`, '127.0.0.9', t));
    }
    await a.append(batch);
    done += n;
    await a.seal();
  }
  // One record still in the write-ahead log (received after every seal).
  await a.append([line('<30>Jun  3 14:00:00 dhcp dhcpd[10]: DHCPACK on 10.23.4.9 to aa:bb:cc:dd:ee:09 via eth0', '127.0.0.7', Date.now())]);
  await a.close();
  return { dir, keyFile, publicKey: rawPublicKey(createPrivateKey(pem)), settings: { dir, signing_key: keyFile } };
}
