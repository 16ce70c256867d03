// What a hostile tester found in the traffic receivers (issue 13), each with
// real peers on loopback: a TCP sender kept sending through a disk-full
// period (a real tmpfs) longer than idle_timeout loses nothing and is not
// closed as idle; the disk-full period logs one line per state change, not
// one per refused batch; silent connections to the TLS port are counted,
// closed after the handshake timeout, and a good TLS sender gets through;
// NetFlow sequence gaps reach /healthz of a real `archive serve`; a second
// receiver on a folder in use, and busy ports, stop the start at once with
// one plain line naming the setting.
import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Writable } from 'node:stream';
import { existsSync, mkdirSync, openSync, closeSync, unlinkSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../config/load.ts';
import { TrafficService } from '../../archive/service.ts';
import { queryArchive } from '../../archive/query.ts';
import { PROJECT } from '../../sim/area.ts';
import { freePort, tempDir } from '../helpers/peers.ts';
import { selfSignedCert } from '../helpers/flows.ts';
import { v5 } from './netflow-build.ts';

const dir = tempDir('hostile');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
afterAll(() => dir.remove());

let n = 0;
function writeConfig(extra: string[], syslog: string): { file: string; archive: string } {
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { flag: 'w' });
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
  const file = join(dir.path, `area-${++n}.yaml`);
  writeFileSync(
    file,
    ['area: { code: t, name_th: สพป.ทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9", timeout: 1s }', 'traffic:', `  dir: archive-${n}`, '  signing_key: signing.pem', '  fsync_interval: 20ms', `  syslog: ${syslog}`, ...extra, ''].join('\n'),
  );
  return { file, archive: join(dir.path, `archive-${n}`) };
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A pino logger whose lines are kept (parsed) for the test to read. */
function capturedLog(): { log: pino.Logger; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

const portOf = (svc: TrafficService, name: string) => Number(svc.bound[name]!.split(':').pop());

function mountTmpfs(at: string, size: string): void {
  mkdirSync(at, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`mount -t tmpfs -o size=${size} tmpfs ${at} failed (${(e.stderr?.toString() || e.message).trim()}): this test needs root with CAP_SYS_ADMIN to make a real full disk`);
  }
}

function unmount(at: string): void {
  try {
    execFileSync('umount', [at], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', at], { stdio: 'pipe' });
  }
}

/** Fills the file system of `file`'s folder to the last byte; returns the bytes written. */
function fillUp(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(16 * 1024, 1);
  let bytes = 0;
  try {
    for (let i = 0; i < 100_000; i++) bytes += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return bytes;
}

describe('disk full (a real tmpfs under the write-ahead log)', () => {
  it('a TCP sender that keeps sending through a disk-full period longer than idle_timeout loses nothing, is not closed as idle, and the period logs one line each way', async () => {
    const { file, archive } = writeConfig([], '{ tcp: "127.0.0.1:0", idle_timeout: 2s }');
    const walDir = join(archive, 'wal');
    mountTmpfs(walDir, '4m');
    const { log, lines } = capturedLog();
    const svc = new TrafficService(loadConfig(file), log);
    try {
      await svc.start();
      const filler = join(walDir, 'filler');
      expect(fillUp(filler)).toBeGreaterThan(3 * 1024 * 1024);
      const sock: Socket = await new Promise((resolve, reject) => {
        const s = connect(portOf(svc, 'syslog-tcp'), '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
      let reset: Error | undefined;
      sock.on('error', (err) => (reset = err));
      const closedAt: number[] = [];
      sock.on('close', () => closedAt.push(Date.now()));
      // 40 lines every 50 ms for 6 s: three idle_timeouts of disk full.
      let seq = 0;
      const line = (i: number) => `<13>Nov 24 10:00:00 gw kwtest: seq=${i} ${'x'.repeat(100)}\n`;
      const t0 = Date.now();
      while (Date.now() - t0 < 6_000) {
        let chunk = '';
        for (let i = 0; i < 40; i++) chunk += line(seq++);
        sock.write(chunk);
        await sleep(50);
      }
      expect(svc.walState()?.ok, 'the disk was full all along').toBe(false);
      expect(svc.stats.paused).toBeGreaterThan(0);
      unlinkSync(filler);
      sock.end();
      // The log retries every 5 s; then what was kept and what the sender still had arrive.
      await until('every line stored', () => svc.stats.stored >= seq, 40_000);
      expect(reset, 'the sender was never reset').toBeUndefined();
      expect(svc.stats.idle_closed).toBe(0);
      expect(svc.stats.write_failed).toBe(0);
      expect(svc.stats.stored).toBe(seq);
      const rows = (await queryArchive(archive, { from: 0 })).rows;
      const seen = new Set(rows.map((r) => Number(/seq=(\d+)/.exec(r.raw ?? '')?.[1])));
      expect(seen.size, `all ${seq} lines archived once`).toBe(seq);
      expect(rows).toHaveLength(seq);
      // Point 2: one line when the log failed (with its cause), one when it came back; nothing per refused batch.
      const errors = lines.filter((l) => l.level >= 50);
      expect(errors, JSON.stringify(errors.slice(0, 3))).toHaveLength(1);
      expect(errors[0]!.error).toMatch(/disk full at .*ENOSPC/);
      expect(lines.filter((l) => /writable again/.test(l.msg))).toHaveLength(1);
    } finally {
      await svc.stop();
      unmount(walDir);
    }
  }, 90_000);

  it('a UDP flood while the disk is full: past max_pending records are refused and counted (write_failed), logged once when the log fails and once when it recovers, with the count', async () => {
    const { file, archive } = writeConfig(['  max_pending: 64KiB'], '{ udp: "127.0.0.1:0" }');
    const walDir = join(archive, 'wal');
    mountTmpfs(walDir, '2m');
    const { log, lines } = capturedLog();
    const svc = new TrafficService(loadConfig(file), log);
    try {
      await svc.start();
      const filler = join(walDir, 'filler');
      fillUp(filler);
      const udp = createSocket('udp4');
      const port = portOf(svc, 'syslog-udp');
      // 3,000 datagrams over 3 s: more than 64 KiB of records.
      for (let i = 0; i < 60; i++) {
        for (let j = 0; j < 50; j++) udp.send(`<13>Nov 24 10:00:00 gw kwtest: udp=${i * 50 + j} ${'y'.repeat(200)}`, port, '127.0.0.1');
        await sleep(50);
      }
      await until('records refused', () => svc.stats.write_failed > 0);
      expect(svc.walState()?.ok).toBe(false);
      unlinkSync(filler);
      await until('the log writable again', () => svc.walState()?.ok === true, 30_000);
      udp.close();
      await until('kept records written', () => svc.stats.stored + svc.stats.write_failed >= svc.stats.syslog_received - svc.stats.udp_drops - svc.stats.queue_dropped && svc.health().kept_bytes === 0);
      const errors = lines.filter((l) => l.level >= 50);
      expect(errors, `${errors.length} error lines for ${svc.stats.write_failed} refused records`).toHaveLength(1);
      const back = lines.filter((l) => /writable again/.test(l.msg));
      expect(back).toHaveLength(1);
      expect(back[0]!.refused).toBe(svc.stats.write_failed);
      expect(back[0]!.kept_written).toBeGreaterThan(0);
    } finally {
      await svc.stop();
      unmount(walDir);
    }
  }, 60_000);
});

describe('TLS connections that never finish their handshake', () => {
  it('are counted in connections from their first byte, closed after handshake_timeout (counted), and a good TLS sender gets through', async () => {
    const { cert, key } = await selfSignedCert(dir.path);
    const { file, archive } = writeConfig([], `{ tls: { listen: "127.0.0.1:0", cert: "${cert}", key: "${key}", handshake_timeout: 1s }, max_connections: 5, idle_timeout: 5m }`);
    const svc = new TrafficService(loadConfig(file), pino({ level: 'silent' }));
    await svc.start();
    try {
      const port = portOf(svc, 'syslog-tls');
      const silent = await Promise.all(
        Array.from({ length: 5 }, () => new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        })),
      );
      const closed = silent.map((s) => new Promise<number>((r) => s.once('close', () => r(Date.now()))));
      for (const s of silent) s.on('error', () => undefined);
      const t0 = Date.now();
      await until('5 connections counted while in their handshake', () => svc.stats.connections === 5, 5_000);
      const took = Math.max(...(await Promise.all(closed))) - t0;
      expect(took, 'closed after the handshake timeout, not at once').toBeGreaterThanOrEqual(800);
      expect(took).toBeLessThan(15_000);
      await until('connections back to 0', () => svc.stats.connections === 0, 5_000);
      expect(svc.stats.handshake_failed).toBe(5);
      const good = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => {
        good.once('secureConnect', () => resolve());
        good.once('error', reject);
      });
      good.end('<13>Nov 24 10:00:00 gw kwtest: over-tls\n');
      await until('the TLS line stored', () => svc.stats.stored >= 1);
      const rows = (await queryArchive(archive, { from: 0 })).rows;
      expect(rows.map((r) => r.raw)).toEqual([expect.stringMatching(/over-tls$/)]);
      expect(svc.stats.refused).toBe(0);
    } finally {
      await svc.stop();
    }
  }, 60_000);
});

/** `klaiwatch archive serve` as a process of its own. */
function serve(file: string): { child: ReturnType<typeof spawn>; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.on('data', (d) => (stderr += d));
  return { child, stderr: () => stderr, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

const healthz = (port: number) => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.json() as Promise<Record<string, any>>).catch(() => undefined);

/** Waits for a receiver's /healthz to say ok; if it ends first or never does, says what it printed and what /healthz said last. */
async function up(s: ReturnType<typeof serve>, port: number): Promise<Record<string, any>> {
  let last: Record<string, any> | undefined;
  let exit: number | null | undefined;
  void s.exited.then((c) => (exit = c));
  try {
    return await until('archive serve up (/healthz ok)', async () => {
      if (exit !== undefined) throw new Error(`archive serve ended (exit ${exit}) before /healthz said ok`);
      last = await healthz(port);
      return last?.status === 'ok' ? last : undefined;
    }, 60_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}; /healthz last said ${JSON.stringify(last)?.slice(0, 600)}; its output: ${s.stderr().slice(-1500)}`);
  }
}

describe('klaiwatch archive serve', () => {
  it('NetFlow v5 sequence gaps: sequence_errors, lost_flows and the exporter with the loss in /healthz', async () => {
    const [http, flow] = [await freePort(), await freePort()];
    const { file } = writeConfig([`  http: "127.0.0.1:${http}"`, `  flow: { udp: "127.0.0.1:${flow}" }`], '{}');
    const s = serve(file);
    try {
      await up(s, http);
      const udp = createSocket('udp4');
      const send = (b: Buffer) => new Promise((r) => udp.send(b, flow, '127.0.0.1', r));
      // 10 flows (sequence 0..9), then a datagram numbered 35: 25 flows lost on the way.
      await send(v5({ seq: 0 }, 10, 1));
      await send(v5({ seq: 10 }, 10, 11));
      await send(v5({ seq: 45 }, 10, 21));
      udp.close();
      const h = await until('the gap in /healthz', () => healthz(http).then((b) => (b && b.traffic?.sequence_errors >= 1 && b.exporters?.length ? b : undefined)));
      expect(h.traffic).toMatchObject({ flows_received: 30, sequence_errors: 1, lost_flows: 25, templates_evicted: 0, held_bytes: 0 });
      expect(h.exporters).toEqual([expect.objectContaining({ exporter: '127.0.0.1', datagrams: 3, sequence_errors: 1, lost_flows: 25 })]);
    } finally {
      s.child.kill('SIGTERM');
    }
    expect(await s.exited).toBe(0);
  }, 90_000);

  it('a second receiver on an archive folder in use: one line naming the holder, no usage text, exit 1 at once, the first untouched', async () => {
    const [http] = [await freePort()];
    const { file, archive } = writeConfig([`  http: "127.0.0.1:${http}"`], '{ udp: "127.0.0.1:0" }');
    const first = serve(file);
    try {
      await up(first, http);
      const t0 = Date.now();
      const second = serve(file);
      const code = await Promise.race([second.exited, sleep(15_000).then(() => 'hung')]);
      if (code === 'hung') second.child.kill('SIGKILL');
      expect(code).toBe(1);
      expect(Date.now() - t0).toBeLessThan(15_000);
      const out = second.stderr().trim().split('\n');
      expect(out, second.stderr()).toHaveLength(1);
      expect(out[0]).toMatch(new RegExp(`^klaiwatch archive serve: .*in use by another klaiwatch archive receiver \\(pid ${first.child.pid}`));
      expect(second.stderr()).not.toMatch(/Usage|Options:/);
      expect((await healthz(http))?.status, 'the first receiver goes on').toBe('ok');
      expect(existsSync(join(archive, 'serve.lock'))).toBe(true);
    } finally {
      first.child.kill('SIGTERM');
    }
    expect(await first.exited).toBe(0);
  }, 90_000);

  it('traffic.http busy: one line naming traffic.http, exit 1, before the archive is opened or a receiver bound', async () => {
    const [http, syslog] = [await freePort(), await freePort()];
    const { file, archive } = writeConfig([`  http: "127.0.0.1:${http}"`], `{ tcp: "127.0.0.1:${syslog}" }`);
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(http, '127.0.0.1', () => r()));
    try {
      const s = serve(file);
      const code = await Promise.race([s.exited, sleep(15_000).then(() => 'hung')]);
      if (code === 'hung') s.child.kill('SIGKILL');
      expect(code).toBe(1);
      const out = s.stderr().trim().split('\n');
      expect(out, s.stderr()).toHaveLength(1);
      expect(out[0]).toMatch(new RegExp(`^klaiwatch archive serve: traffic\\.http 127\\.0\\.0\\.1:${http} cannot be listened on .*EADDRINUSE`));
      expect(s.stderr()).not.toMatch(/http\.listen|\n\s+at |Usage/);
      expect(existsSync(join(archive, 'manifest.jsonl')), 'the archive was not opened').toBe(false);
      expect(existsSync(join(archive, 'serve.lock')), 'the lock is let go').toBe(false);
    } finally {
      squatter.close();
    }
  }, 30_000);

  it('a receiver port busy: one line naming its setting, no stack, exit 1, the archive not opened', async () => {
    const [http, flow] = [await freePort(), await freePort()];
    const { file, archive } = writeConfig([`  http: "127.0.0.1:${http}"`, `  flow: { udp: "127.0.0.1:${flow}" }`], '{}');
    const squatter = createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(flow, '127.0.0.1', () => r()));
    try {
      const s = serve(file);
      const code = await Promise.race([s.exited, sleep(15_000).then(() => 'hung')]);
      if (code === 'hung') s.child.kill('SIGKILL');
      expect(code).toBe(1);
      const out = s.stderr().trim().split('\n');
      expect(out, s.stderr()).toHaveLength(1);
      expect(out[0]).toMatch(new RegExp(`^klaiwatch archive serve: traffic\\.flow\\.udp 127\\.0\\.0\\.1:${flow} cannot be listened on \\(UDP\\): .*EADDRINUSE`));
      expect(s.stderr()).not.toMatch(/\n\s+at |"stack"|Usage/);
      expect(existsSync(join(archive, 'manifest.jsonl'))).toBe(false);
      expect(await healthz(http), 'traffic.http let go').toBeUndefined();
    } finally {
      squatter.close();
    }
  }, 30_000);
});
