// Messages that are not UTF-8 (a TIS-620 Thai device, a Latin-1 one, bytes
// cut or corrupted on the way) keep their bytes exactly: the real receivers
// on loopback (UDP and TCP), the archive's write-ahead log, a query. The
// text column keeps the U+FFFD version for searching; raw_bytes the bytes.
import { describe, it, expect, afterAll } from 'vitest';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../config/load.ts';
import { TrafficService } from '../../archive/service.ts';
import { queryArchive } from '../../archive/query.ts';
import { Archive } from '../../archive/archive.ts';
import { tempDir } from '../helpers/peers.ts';

const dir = tempDir('raw-bytes');
afterAll(() => dir.remove());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeConfig(): string {
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
  const file = join(dir.path, 'area.yaml');
  writeFileSync(file, ['area: { code: t, name_th: สพป.ทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9", timeout: 1s }', 'traffic:', '  dir: archive', '  signing_key: signing.pem', '  fsync_interval: 20ms', '  syslog: { tcp: "127.0.0.1:0", udp: "127.0.0.1:0" }', ''].join('\n'));
  return file;
}

describe('raw bytes', () => {
  it('invalid UTF-8 over UDP and TCP comes back from a query byte for byte in raw_bytes; valid UTF-8 (a literal U+FFFD too) has none; sealed, the same', async () => {
    const svc = new TrafficService(loadConfig(writeConfig()), pino({ level: 'silent' }));
    await svc.start();
    const port = (name: string) => Number(svc.bound[name]!.split(':').pop());
    try {
      // "ผู้ใช้ somchai" in TIS-620 (windows-874), as an old Thai device writes it.
      const tis620 = Buffer.concat([Buffer.from('<13>Nov 24 10:00:00 gw app: tis620 '), Buffer.from([0xbc, 0xd9, 0xe9, 0xe3, 0xaa, 0xe9]), Buffer.from(' somchai')]);
      // Latin-1, a lone continuation byte, a cut 3-byte sequence, NUL and 0xff: every kind of bad.
      const mixed = Buffer.concat([Buffer.from('<13>Nov 24 10:00:01 gw app: mixed caf'), Buffer.from([0xe9, 0x20, 0x80, 0x20, 0xe0, 0xb8, 0x20, 0x00, 0xff])]);
      const valid = Buffer.from('<13>Nov 24 10:00:02 gw app: valid ไทย \ufffd literal');
      const viaTcp = Buffer.concat([Buffer.from('<13>Nov 24 10:00:03 gw app: tcp '), Buffer.from([0xfe, 0xfd, 0x41])]);
      const udp = createSocket('udp4');
      for (const m of [tis620, mixed, valid]) await new Promise((r) => udp.send(m, port('syslog-udp'), '127.0.0.1', r));
      udp.close();
      const tcp = await new Promise<Socket>((resolve, reject) => {
        const s = connect(port('syslog-tcp'), '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
      tcp.end(Buffer.concat([viaTcp, Buffer.from('\r\n')]));
      for (const end = Date.now() + 15_000; svc.stats.stored < 4 && Date.now() < end; ) await sleep(25);
      const archive = join(dir.path, 'archive');
      const check = async () => {
        const rows = (await queryArchive(archive, { from: 0 })).rows;
        expect(rows).toHaveLength(4);
        const by = (what: string) => rows.find((r) => r.raw!.includes(` ${what}`))!;
        for (const [what, bytes] of [['tis620', tis620], ['mixed', mixed], ['tcp', viaTcp]] as const) {
          const r = by(what);
          expect(Buffer.from(r.raw_bytes!).equals(bytes), what).toBe(true);
          // The text is the bytes decoded with U+FFFD, as before.
          expect(r.raw).toBe(bytes.toString('utf8'));
        }
        expect(by('valid').raw_bytes).toBeNull();
        expect(by('valid').raw).toBe(valid.toString('utf8'));
      };
      await check();
      await svc.stop();
      // Sealed into a segment: the bytes the same.
      const a = await Archive.open({ dir: archive, key: createPrivateKey(readFileSync(join(dir.path, 'signing.pem'))), retentionDays: 90, fsyncIntervalMs: 5, sealInProcess: true });
      await a.seal();
      await a.close();
      await check();
    } finally {
      await svc.stop().catch(() => {});
    }
  });
});
