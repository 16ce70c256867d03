// Real senders and a reference collector for the traffic tests: loggen
// (syslog-ng's generator, unpacked by scripts/test.sh into .tools/syslog-ng),
// nfcapd/nfdump (Debian nfdump) and softflowd (Debian softflowd) replaying a
// capture written here of synthetic but varied traffic.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT } from '../../sim/area.ts';
import { requireBinary } from './peers.ts';
import { prng } from './prng.ts';

const run = promisify(execFile);

export function loggen(): { bin: string; env: NodeJS.ProcessEnv } {
  const root = join(PROJECT, '.tools', 'syslog-ng', 'usr');
  const bin = join(root, 'bin', 'loggen');
  if (!existsSync(bin)) throw new Error(`loggen is not unpacked at ${bin}: run \`bash scripts/test.sh\` (it unpacks Debian's syslog-ng-core there)`);
  return { bin, env: { ...process.env, SYSLOGNG_PREFIX: root, LD_LIBRARY_PATH: join(root, 'lib', 'syslog-ng') } };
}

/** Sends every line of `file` as it is (loggen --read-file --dont-parse). */
export async function loggenFile(file: string, port: number, transport: 'udp' | 'tcp' | 'tls'): Promise<string> {
  const { bin, env } = loggen();
  // -U (TLS) is its own plugin: with -i or -S loggen refuses to start.
  const t = transport === 'udp' ? ['-i', '-D'] : transport === 'tcp' ? ['-i', '-S'] : ['-U'];
  const { stderr } = await run(bin, [...t, '--read-file', file, '--dont-parse', '-r', '10000', '-Q', '127.0.0.1', String(port)], { env, timeout: 60_000 });
  return stderr;
}

/** A self-signed certificate for 127.0.0.1 (openssl). */
export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const openssl = await requireBinary('openssl', 'openssl');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  return { cert, key };
}

export interface Nfcapd {
  stop(): Promise<{ flows: number; packets: number; bytes: number }>;
}

/** nfcapd collecting on 127.0.0.1:port into dir; stop() ends it and reads nfdump's totals. */
export async function startNfcapd(dir: string, port: number): Promise<Nfcapd> {
  const bin = await requireBinary('nfcapd', 'nfdump');
  const nfdump = await requireBinary('nfdump', 'nfdump');
  const p: ChildProcess = spawn(bin, ['-w', dir, '-p', String(port), '-b', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  // Ready when its UDP socket is bound (/proc/net/udp lists the port).
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  const end = Date.now() + 10_000;
  while (!readFileSync('/proc/net/udp', 'utf8').includes(hex)) {
    if (Date.now() > end || p.exitCode !== null) throw new Error(`nfcapd did not bind 127.0.0.1:${port}: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      // Let it read what waits in its socket (the rx_queue column of /proc/net/udp) before it is told to stop.
      for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
        const row = readFileSync('/proc/net/udp', 'utf8').split('\n').find((l) => l.includes(hex));
        if (!row || row.trim().split(/\s+/)[4]!.endsWith(':00000000')) break;
      }
      await new Promise((r) => setTimeout(r, 500));
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
      const { stdout } = await run(nfdump, ['-R', dir, '-I']);
      const n = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(stdout)?.[1] ?? NaN);
      return { flows: n('Flows'), packets: n('Packets'), bytes: n('Bytes') };
    },
  };
}


function checksum(b: Buffer, o: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += b.readUInt16BE(o + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * A pcap (Ethernet) of `conversations` TCP and UDP exchanges between school
 * hosts (10.x) and outside addresses, a few packets each, one second apart
 * per conversation; returns the path and what it holds.
 */
export function writeTrafficPcap(path: string, conversations: number, seed = 2569): { packets: number; bytes: number } {
  const rand = prng(seed);
  const recs: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  let packets = 0;
  let bytes = 0;
  const t0 = 1_795_000_000;
  for (let c = 0; c < conversations; c++) {
    const tcp = rand() < 0.7;
    const src = [10, 36, 1 + Math.floor(rand() * 20), 10 + Math.floor(rand() * 60)];
    const dst = [Math.floor(1 + rand() * 220), Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(1 + rand() * 254)];
    const sport = 32768 + Math.floor(rand() * 28000);
    const dport = tcp ? [80, 443, 8080][Math.floor(rand() * 3)]! : [53, 123, 443][Math.floor(rand() * 3)]!;
    const n = 1 + Math.floor(rand() * 6);
    for (let k = 0; k < n; k++) {
      const payload = Math.floor(rand() * 1200);
      const l4 = tcp ? 20 : 8;
      const ipLen = 20 + l4 + payload;
      const frame = Buffer.alloc(14 + ipLen);
      frame.writeUInt16BE(0x0800, 12);
      const ip = 14;
      frame[ip] = 0x45;
      frame.writeUInt16BE(ipLen, ip + 2);
      frame[ip + 8] = 64;
      frame[ip + 9] = tcp ? 6 : 17;
      Buffer.from(src).copy(frame, ip + 12);
      Buffer.from(dst).copy(frame, ip + 16);
      frame.writeUInt16BE(checksum(frame, ip, 20), ip + 10);
      const l = ip + 20;
      frame.writeUInt16BE(sport, l);
      frame.writeUInt16BE(dport, l + 2);
      if (tcp) {
        frame[l + 12] = 0x50;
        frame[l + 13] = k === 0 ? 0x02 : k === n - 1 ? 0x11 : 0x18;
        frame.writeUInt16BE(64240, l + 14);
      } else frame.writeUInt16BE(8 + payload, l + 4);
      const rec = Buffer.alloc(16);
      rec.writeUInt32LE(t0 + c, 0);
      rec.writeUInt32LE(k * 1000, 4);
      rec.writeUInt32LE(frame.length, 8);
      rec.writeUInt32LE(frame.length, 12);
      recs.push(rec, frame);
      packets++;
      bytes += ipLen;
    }
  }
  writeFileSync(path, Buffer.concat([header, ...recs]));
  return { packets, bytes };
}

/** softflowd reading a capture and exporting it (v5, v9 or IPFIX = 10) to 127.0.0.1:port. */
export async function softflowd(pcap: string, port: number, version: 5 | 9 | 10): Promise<void> {
  const bin = await requireBinary('softflowd', 'softflowd');
  await run(bin, ['-r', pcap, '-n', `127.0.0.1:${port}`, '-v', String(version), '-d'], { timeout: 60_000 });
}
