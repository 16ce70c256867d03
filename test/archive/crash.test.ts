// Durability with the real process: `klaiwatch run` receiving syslog over
// TCP is killed with SIGKILL mid-stream, started again, and must have every
// message that arrived more than one fsync interval before the kill, once;
// then go on receiving and end with an intact archive. And back-pressure:
// with the disk "behind" (a pending limit of one byte), a fast TCP sender
// is paused, not dropped: every message is stored.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pino from 'pino';
import { loadConfig } from '../../config/load.ts';
import { TrafficService } from '../../archive/service.ts';
import { queryArchive } from '../../archive/query.ts';
import { verifyArchive } from '../../archive/verify.ts';
import { PROJECT } from '../../sim/area.ts';
import { freePort, tempDir } from '../helpers/peers.ts';
import { loggen } from '../helpers/flows.ts';

const exec = promisify(execFile);
const dir = tempDir('crash');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FSYNC_MS = 100;

afterAll(() => dir.remove());

function writeConfig(syslogPort: number, httpPort: number, extra: string[] = []): string {
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { flag: 'w' });
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', '      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }', ''].join('\n'));
  const file = join(dir.path, `area-${syslogPort}.yaml`);
  writeFileSync(
    file,
    [
      'area: { code: t, name_th: สพป.ทดสอบ }',
      'inventory: schools.yaml',
      'influx: { url: "http://127.0.0.1:9", timeout: 1s }',
      `http: { listen: "127.0.0.1:${httpPort}" }`,
      'icmp: { enabled: false }',
      'traffic:',
      `  dir: archive-${syslogPort}`,
      '  signing_key: signing.pem',
      `  fsync_interval: ${FSYNC_MS}ms`,
      `  syslog: { tcp: "127.0.0.1:${syslogPort}" }`,
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

function startService(config: string): ChildProcess {
  return spawn(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
}

async function connected(port: number, ms = 30_000): Promise<Socket> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(100);
    }
  }
}

describe('durability', () => {
  it('a kill -9 mid-stream loses at most the last fsync interval; the restart resumes cleanly and the archive verifies', async () => {
    const port = await freePort();
    const config = writeConfig(port, await freePort());
    let svc = startService(config);
    let stderr = '';
    svc.stderr!.on('data', (d) => (stderr += d));
    const sock = await connected(port);
    sock.on('error', () => undefined);
    const sentAt: number[] = [];
    let seq = 0;
    const timer = setInterval(() => {
      for (let i = 0; i < 4; i++) {
        sentAt[seq] = Date.now();
        sock.write(`<13>Nov 24 10:00:00 host crashtest: seq=${seq}\n`);
        seq++;
      }
    }, 1);
    await sleep(2000);
    const killedAt = Date.now();
    svc.kill('SIGKILL');
    clearInterval(timer);
    await new Promise((r) => svc.once('exit', r));
    sock.destroy();
    expect(seq).toBeGreaterThan(1000);

    svc = startService(config);
    svc.stderr!.on('data', (d) => (stderr += d));
    const again = await connected(port);
    again.end('<13>Nov 24 10:00:05 host crashtest: after-restart\n');
    const archive = join(dir.path, `archive-${port}`);
    let rows: Awaited<ReturnType<typeof queryArchive>>['rows'] = [];
    for (const end = Date.now() + 10_000; Date.now() < end; await sleep(100)) {
      rows = (await queryArchive(archive, { from: 0 })).rows;
      if (rows.some((r) => r.raw?.endsWith('after-restart'))) break;
    }
    const seqs = rows.map((r) => /seq=(\d+)$/.exec(r.raw ?? '')?.[1]).filter((x): x is string => x !== undefined).map(Number);
    expect(new Set(seqs).size, 'no record twice').toBe(seqs.length);
    const have = new Set(seqs);
    // Sent more than an fsync interval (and a margin for the socket and the event loop) before the kill: must be there.
    const mustHave = sentAt.map((t, i) => [i, t] as const).filter(([, t]) => t < killedAt - FSYNC_MS - 400).map(([i]) => i);
    const missing = mustHave.filter((i) => !have.has(i));
    expect(missing, `missing of ${mustHave.length} that were due`).toEqual([]);
    expect(rows.some((r) => r.raw?.endsWith('after-restart'))).toBe(true);

    const exited = new Promise((r) => svc.once('exit', r));
    svc.kill('SIGTERM');
    await exited;
    const v = await verifyArchive(archive);
    expect(v.faults).toEqual([]);
    // No InfluxDB runs here (its errors are expected); nothing else may have gone wrong.
    const errors = stderr.split('\n').filter((l) => /"level":(50|60)/.test(l) && !/influxdb/.test(l));
    expect(errors).toEqual([]);
  });

  it('back-pressure: a fast TCP sender is paused while the log is behind, and every message is stored', async () => {
    const port = await freePort();
    const file = writeConfig(port, await freePort(), ['  max_pending: 1']);
    const svc = new TrafficService(loadConfig(file), pino({ level: 'silent' }));
    await svc.start();
    try {
      const { bin, env } = loggen();
      await exec(bin, ['-i', '-S', '-r', '100000', '-n', '20000', '-Q', '127.0.0.1', String(port)], { env, timeout: 60_000 });
      for (const end = Date.now() + 20_000; svc.stats.stored < 20_000 && Date.now() < end; ) await sleep(50);
      expect(svc.stats.syslog_received).toBe(20_000);
      expect(svc.stats.stored).toBe(20_000);
      expect(svc.stats.paused).toBeGreaterThan(0);
    } finally {
      await svc.stop();
    }
  });
});
