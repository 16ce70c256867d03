// The receivers' limits with real peers on loopback: idle TCP connections
// closed after traffic.syslog.idle_timeout, connections past max_connections
// refused and counted, a slow parse stored as the plain record (over_budget),
// a full queue to the parsing threads dropping UDP (counted) while a TCP
// sender is paused and loses nothing; and `klaiwatch archive serve` run alone
// receiving, archiving and answering GET /healthz on traffic.http. A message
// over max_message (TCP line, TCP octet count, UDP datagram) is one record
// flagged FLAG_CUT, the rest counted in `discarded`; the bytes go to the
// parsing threads as they came (Thai text byte-exact).
import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../config/load.ts';
import { TrafficService } from '../../archive/service.ts';
import { queryArchive } from '../../archive/query.ts';
import { lockArchiveDir } from '../../archive/ingest-serve.ts';
import { PROJECT } from '../../sim/area.ts';
import { FLAG_CUT, FLAG_SLOW } from '../../archive/record.ts';
import { freePort, requireBinary, tempDir } from '../helpers/peers.ts';

const run = promisify(execFile);
const dir = tempDir('ingest');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
afterAll(() => dir.remove());

let n = 0;
function writeConfig(extra: string[], syslog: string): string {
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { flag: 'w' });
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
  const file = join(dir.path, `area-${++n}.yaml`);
  writeFileSync(
    file,
    [
      'area: { code: t, name_th: สพป.ทดสอบ }',
      'inventory: schools.yaml',
      'influx: { url: "http://127.0.0.1:9", timeout: 1s }',
      'traffic:',
      `  dir: archive-${n}`,
      '  signing_key: signing.pem',
      '  fsync_interval: 20ms',
      `  syslog: ${syslog}`,
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const open = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

async function service(extra: string[], syslog = '{ tcp: "127.0.0.1:0", udp: "127.0.0.1:0" }'): Promise<TrafficService> {
  const svc = new TrafficService(loadConfig(writeConfig(extra, syslog)), pino({ level: 'silent' }));
  await svc.start();
  return svc;
}
const portOf = (svc: TrafficService, name: string) => Number(svc.bound[name]!.split(':').pop());

describe('stream limits', () => {
  it('an idle TCP connection is closed after idle_timeout (counted); a talking one stays open', async () => {
    const svc = await service([], '{ tcp: "127.0.0.1:0", idle_timeout: 1s }');
    try {
      const idle = await open(portOf(svc, 'syslog-tcp'));
      const talking = await open(portOf(svc, 'syslog-tcp'));
      idle.on('error', () => undefined);
      const t0 = Date.now();
      const chatter = setInterval(() => talking.write('<13>Nov 24 10:00:00 host app: still here\n'), 300);
      await closed(idle);
      const took = Date.now() - t0;
      clearInterval(chatter);
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(10_000);
      expect(svc.stats.idle_closed).toBe(1);
      expect(talking.destroyed, 'the sender that kept talking is still connected').toBe(false);
      talking.destroy();
    } finally {
      await svc.stop();
    }
  });

  it('connections past max_connections are refused at once and counted; the ones accepted keep working', async () => {
    const svc = await service([], '{ tcp: "127.0.0.1:0", max_connections: 3 }');
    try {
      const port = portOf(svc, 'syslog-tcp');
      const kept = [await open(port), await open(port), await open(port)];
      await until('3 connections', () => svc.stats.connections === 3);
      const extra = await Promise.all([1, 2].map(() => open(port)));
      for (const s of extra) s.on('error', () => undefined);
      await Promise.all(extra.map(closed));
      expect(svc.stats.refused).toBe(2);
      for (const [i, s] of kept.entries()) s.end(`<13>Nov 24 10:00:00 host app: kept-${i}\n`);
      await until('the kept senders stored', () => svc.stats.stored >= 3);
      expect(svc.stats.stored).toBe(3);
    } finally {
      await svc.stop();
    }
  });
});

describe('sender allow-list', () => {
  it('traffic.allow: a TCP connection and UDP datagrams from elsewhere are refused at once and counted; an allowed sender is archived', async () => {
    const svc = await service(['  allow: { inventory: false, cidrs: ["127.0.0.2/32"] }']);
    try {
      const port = portOf(svc, 'syslog-tcp');
      const denied = await open(port);
      denied.on('error', () => undefined);
      await closed(denied);
      const udp = createSocket('udp4');
      for (let i = 0; i < 3; i++) udp.send('<13>Nov 24 10:00:00 host app: from-elsewhere', portOf(svc, 'syslog-udp'), '127.0.0.1');
      await until('4 refused', () => svc.stats.refused >= 4);
      udp.close();
      const ok = await new Promise<Socket>((resolve, reject) => {
        const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => resolve(s));
        s.once('error', reject);
      });
      ok.end('<13>Nov 24 10:00:00 host app: from-allowed\n');
      await until('the allowed line stored', () => svc.stats.stored >= 1);
      expect(svc.stats.refused).toBe(4);
      expect(svc.stats.syslog_received).toBe(1);
      const rows = (await queryArchive(join(dir.path, `archive-${n}`), { from: 0 })).rows;
      expect(rows.map((r) => r.exporter)).toEqual(['127.0.0.2']);
    } finally {
      await svc.stop();
    }
  });
});

describe('parsing threads', () => {
  it('a parse over parse_budget (test-hook busy loop) is stored as the plain record with its header, and counted', async () => {
    process.env.KW_TEST_PARSE_HOOK = '1';
    const svc = await service(['  parse_budget: 20ms']);
    delete process.env.KW_TEST_PARSE_HOOK;
    try {
      const s = await open(portOf(svc, 'syslog-tcp'));
      s.end(['<13>Nov 24 10:00:00 gw dhcpd: DHCPACK on 10.9.9.9 to aa:bb:cc:00:11:22 via eth0 KW-TEST-BUSY-LOOP ms=60', '<13>Nov 24 10:00:00 gw dhcpd: DHCPACK on 10.9.9.8 to aa:bb:cc:00:11:23 via eth0', ''].join('\n'));
      await until('both stored', () => svc.stats.stored >= 2);
      expect(svc.stats.over_budget).toBe(1);
      const rows = (await queryArchive(join(dir.path, `archive-${n}`), { from: 0 })).rows;
      expect(rows.find((r) => r.raw?.includes('10.9.9.9'))).toMatchObject({ parser: 'syslog', host: 'gw', app: 'dhcpd', src_ip: null, flags: FLAG_SLOW });
      expect(rows.find((r) => r.raw?.includes('10.9.9.8'))).toMatchObject({ parser: 'isc-dhcp', src_ip: '10.9.9.8', flags: null });
    } finally {
      await svc.stop();
    }
  });

  it('a full queue to the threads drops UDP datagrams (counted) and pauses a TCP sender, which loses nothing', async () => {
    process.env.KW_TEST_PARSE_HOOK = '1';
    const svc = await service(['  max_queue: 64KiB']);
    delete process.env.KW_TEST_PARSE_HOOK;
    try {
      const tcp = await open(portOf(svc, 'syslog-tcp'));
      // The thread is kept busy 1 s (under the watchdog's 3 s): the queue fills behind it.
      tcp.write('<13>Nov 24 10:00:00 host app: KW-TEST-BUSY-LOOP ms=1000\n');
      await sleep(100);
      const line = (i: number) => `<13>Nov 24 10:00:00 host app: tcp-${i} ${'x'.repeat(200)}\n`;
      let body = '';
      for (let i = 0; i < 2000; i++) body += line(i);
      tcp.end(body);
      const udp = createSocket('udp4');
      for (let i = 0; i < 600; i++) udp.send(`<13>Nov 24 10:00:00 host app: udp-${i} ${'y'.repeat(400)}`, portOf(svc, 'syslog-udp'), '127.0.0.1');
      await until('the TCP lines stored', () => svc.stats.stored >= 2001 + (600 - svc.stats.queue_dropped), 30_000);
      udp.close();
      expect(svc.stats.queue_dropped, 'UDP datagrams past the queue limit').toBeGreaterThan(0);
      expect(svc.stats.paused, 'the TCP sender was paused').toBeGreaterThan(0);
      expect(svc.stats.worker_restarts, 'the busy thread was slow, not hung').toBe(0);
      const rows = (await queryArchive(join(dir.path, `archive-${n}`), { from: 0 })).rows;
      const tcpRows = new Set(rows.map((r) => /tcp-(\d+) /.exec(r.raw ?? '')?.[1]).filter(Boolean));
      expect(tcpRows.size, 'every TCP line once').toBe(2000);
    } finally {
      await svc.stop();
    }
  });
});

describe('messages over max_message', () => {
  it('a TCP line, a TCP octet count and a UDP datagram over max_message: one record each of the first max_message bytes, flagged FLAG_CUT; the rest counted as discarded', async () => {
    const svc = await service([], '{ tcp: "127.0.0.1:0", udp: "127.0.0.1:0", max_message: 1KiB }');
    try {
      const head = (what: string) => `<13>Nov 24 10:00:00 host app: ${what} `;
      const line = `${head('long-line')}${'ก'.repeat(700)}`; // 3 bytes a character: cut inside one (stored as U+FFFD)
      const counted = `${head('long-counted')}${'b'.repeat(1500)}`;
      const thai = `${head('short')}ข้อความภาษาไทย ครบถ้วน`;
      const udpMsg = `${head('long-udp')}${'c'.repeat(1200)}`;
      const tcp = await open(portOf(svc, 'syslog-tcp'));
      // The line in small writes (it crosses chunks), then an octet-counted frame and a short line.
      const wire = Buffer.from(`${line}\n${Buffer.byteLength(counted)} ${counted}${thai}\n`);
      for (let i = 0; i < wire.length; i += 300) {
        tcp.write(wire.subarray(i, i + 300));
        await sleep(2);
      }
      tcp.end();
      const udp = createSocket('udp4');
      await new Promise((r) => udp.send(udpMsg, portOf(svc, 'syslog-udp'), '127.0.0.1', r));
      udp.close();
      await until('four stored', () => svc.stats.stored >= 4);
      const cutBytes = (s: string) => Buffer.from(s).subarray(0, 1024).toString('utf8');
      const rows = (await queryArchive(join(dir.path, `archive-${n}`), { from: 0 })).rows;
      expect(rows).toHaveLength(4);
      const by = (what: string) => rows.find((r) => r.raw?.includes(` ${what} `));
      expect(by('long-line')).toMatchObject({ raw: cutBytes(line), flags: FLAG_CUT, app: 'app' });
      expect(by('long-counted')).toMatchObject({ raw: cutBytes(counted), flags: FLAG_CUT });
      expect(by('long-udp')).toMatchObject({ raw: cutBytes(udpMsg), flags: FLAG_CUT });
      expect(by('short')).toMatchObject({ raw: thai, flags: null });
      expect(svc.stats.truncated).toBe(3);
      expect(svc.stats.discarded).toBe(Buffer.byteLength(line) - 1024 + Buffer.byteLength(counted) - 1024 + Buffer.byteLength(udpMsg) - 1024);
      expect(svc.stats.syslog_received).toBe(4);
    } finally {
      await svc.stop();
    }
  });
});

describe('klaiwatch archive serve, alone', () => {
  it('receives over UDP and TCP, archives, answers GET /healthz on traffic.http, and stops on SIGTERM', async () => {
    await requireBinary('logger', 'bsdutils');
    const [http, syslog] = [await freePort(), await freePort()];
    // A generous parse budget: a fresh process's first parses on a loaded CI
    // machine can pass 5 ms (the budget has its own test above).
    const file = writeConfig([`  http: "127.0.0.1:${http}"`, '  parse_budget: 2s'], `{ tcp: "127.0.0.1:${syslog}", udp: "127.0.0.1:${syslog}" }`);
    const archive = join(dir.path, `archive-${n}`);
    const child = spawn(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const h0 = await until('GET /healthz', () => fetch(`http://127.0.0.1:${http}/healthz`).then((r) => r.json() as Promise<Record<string, any>>).catch(() => undefined), 30_000);
      expect(h0).toMatchObject({ status: 'ok', part: 'archive', bound: { 'syslog-tcp': `127.0.0.1:${syslog}`, 'syslog-udp': `127.0.0.1:${syslog}` }, wal: { ok: true } });
      expect(existsSync(join(archive, 'serve.lock'))).toBe(true);
      await run('logger', ['--server', '127.0.0.1', '--port', String(syslog), '--udp', '--rfc3164', '-t', 'dhcpd', 'DHCPACK on 10.36.1.50 to aa:bb:cc:00:11:22 (pc) via eth0']);
      await run('logger', ['--server', '127.0.0.1', '--port', String(syslog), '--tcp', '--octet-count', '--rfc5424', '-t', 'kw-alone', 'ทดสอบ archive serve alone']);
      const h = await until('two records stored', async () => {
        const b = (await fetch(`http://127.0.0.1:${http}/healthz`).then((r) => r.json())) as Record<string, any>;
        return b.traffic.stored >= 2 ? b : undefined;
      });
      expect(h.traffic).toMatchObject({ syslog_received: 2, stored: 2, over_budget: 0, worker_restarts: 0 });
      const rows = (await queryArchive(archive, { from: 0 })).rows;
      expect(rows.find((r) => r.app === 'dhcpd')).toMatchObject({ parser: 'isc-dhcp', src_ip: '10.36.1.50' });
      expect(rows.find((r) => r.app === 'kw-alone')?.raw).toMatch(/ทดสอบ archive serve alone$/);
      // A second receiver on the same folder is refused by its lock, naming the holder.
      await expect(lockArchiveDir(archive, 300)).rejects.toThrow(new RegExp(`in use by another klaiwatch archive receiver \\(pid ${child.pid}`));
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(existsSync(join(archive, 'serve.lock')), 'the lock is let go').toBe(false);
    expect(stderr).not.toMatch(/"level":(50|60)/);
  }, 60_000);
});
