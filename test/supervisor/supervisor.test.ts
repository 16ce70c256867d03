// `klaiwatch run` as a supervisor of processes, with the real thing: the
// collector polling snmpsimd agents on loopback, the archive receiving syslog
// and NetFlow. A flood of garbage datagrams and a parse that never ends must
// not delay the collector's polling rounds (they run in another process);
// a part killed with SIGKILL is started again and counted in /healthz; SIGTERM
// stops every part.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { PROJECT } from '../../sim/area.ts';
import { queryArchive } from '../../archive/query.ts';
import { startTestAgents, type TestAgents } from '../helpers/agents.ts';
import { freePort, loopbackBlock, tempDir } from '../helpers/peers.ts';
import { prng } from '../helpers/prng.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = tempDir('supervisor');
const INTERVAL_MS = 2000;
let agents: TestAgents;
let child: ChildProcess;
let stderr = '';
let httpPort: number;
let syslogPort: number;
let flowPort: number;

type Health = { status: string; parts: Record<string, Record<string, any>> };
const health = () => fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.json() as Promise<Health>);

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last log lines:\n${stderr.split('\n').slice(-15).join('\n')}`);
    await sleep(200);
  }
}

/** When the collector finished each polling round (its own log lines). */
function roundTimes(): number[] {
  return stderr
    .split('\n')
    .filter((l) => l.includes('"msg":"round done"'))
    .map((l) => Date.parse((JSON.parse(l) as { time: string }).time));
}

beforeAll(async () => {
  agents = await startTestAgents(`${loopbackBlock('supervisor.test')}.1`);
  [httpPort, syslogPort, flowPort] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(join(dir.path, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const devices = [1, 2, 3].map((i) => `      - { id: r${i}, kind: router, address: ${agents.address}, port: ${agents.port}, profile: auto, snmp: { version: 2c, community: router } }`);
  writeFileSync(join(dir.path, 'schools.yaml'), ['schools:', '  - code: "1036090101"', '    name_th: โรงเรียนบ้านหนองบัวแดง', '    devices:', ...devices, ''].join('\n'));
  writeFileSync(
    join(dir.path, 'area.yaml'),
    [
      'area: { code: t, name_th: สพป.ทดสอบ }',
      'inventory: schools.yaml',
      'influx: { url: "http://127.0.0.1:9", timeout: 1s }',
      `http: { listen: "127.0.0.1:${httpPort}" }`,
      'icmp: { enabled: false }',
      `polling: { interval: ${INTERVAL_MS / 1000}s, jitter: 0 }`,
      'spool: { dir: spool }',
      'alerts: { state_db: state.sqlite }',
      'traffic:',
      '  dir: archive',
      '  signing_key: signing.pem',
      '  fsync_interval: 50ms',
      `  syslog: { udp: "127.0.0.1:${syslogPort}", tcp: "127.0.0.1:${syslogPort}" }`,
      `  flow: { udp: "127.0.0.1:${flowPort}" }`,
      '',
    ].join('\n'),
  );
  // KW_TEST_PARSE_HOOK: the parsing thread busy-loops on a marked line (a hung parse no real line is known to cause).
  child = spawn(process.execPath, [join(PROJECT, 'bin', 'klaiwatch.ts'), 'run', '--config', join(dir.path, 'area.yaml')], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, KW_TEST_PARSE_HOOK: '1' } });
  child.stderr!.on('data', (d) => (stderr += d));
  await until('both parts ok and a polling round', async () => {
    const h = await health();
    return h.parts.collector?.status === 'ok' || h.parts.collector?.status === 'degraded' ? (h.parts.archive?.status === 'ok' && roundTimes().length > 0 ? h : undefined) : undefined;
  });
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    // Its parts see the IPC channel close and stop by themselves.
    await sleep(2000);
  }
  await agents?.close();
  dir.remove();
});

describe('klaiwatch run: the parts as processes', () => {
  it('a flood of garbage datagrams and a hung parse (test-hook busy loop in the parsing thread) do not delay the polling rounds', async () => {
    const before = (await health()).parts;
    const collectorPid = before.collector!.pid;
    const roundsBefore = roundTimes().length;
    const start = Date.now();
    // A hung parse: the thread is terminated after its watchdog time, the line stored raw.
    const tcp = connect(syslogPort, '127.0.0.1');
    await new Promise((r) => tcp.once('connect', r));
    tcp.write('<13>Nov 24 10:00:00 host app: KW-TEST-BUSY-LOOP ms=600000 hung-parse-marker\n');
    // Garbage: random bytes, truncated NetFlow v5 headers, random "syslog" for 8 s.
    const rnd = prng(13);
    const udp = createSocket('udp4');
    let sent = 0;
    while (Date.now() - start < 8000) {
      for (let i = 0; i < 200; i++) {
        const len = 1 + Math.floor(rnd() * 1400);
        const b = Buffer.alloc(len);
        for (let k = 0; k < len; k++) b[k] = Math.floor(rnd() * 256);
        if (i % 3 === 0 && len > 2) b.writeUInt16BE(5, 0);
        udp.send(b, i % 2 ? flowPort : syslogPort, '127.0.0.1');
        sent++;
      }
      await sleep(5);
    }
    udp.close();
    tcp.end('<13>Nov 24 10:00:01 host app: after-the-hang\n');
    await sleep(2 * INTERVAL_MS);
    const rounds = roundTimes().slice(roundsBefore - 1);
    const during = rounds.filter((t) => t >= start);
    // 8 s of attack and 4 s after: a round every 2 s; on a loaded 2-core machine, no gap over 2 intervals + 1.5 s.
    expect(during.length, `rounds during the attack (${sent} datagrams sent)`).toBeGreaterThanOrEqual(4);
    const gaps = rounds.slice(1).map((t, i) => t - rounds[i]!);
    expect(Math.max(...gaps), `gaps between rounds: ${gaps.join(', ')} ms`).toBeLessThanOrEqual(2 * INTERVAL_MS + 1500);
    const after = await until('the archive counting the attack', async () => {
      const h = await health();
      const t = h.parts.archive!.traffic;
      return t.worker_restarts >= 1 && t.malformed > 0 ? h : undefined;
    }, 20_000);
    expect(after.parts.collector!.pid, 'the collector process was not touched').toBe(collectorPid);
    expect(after.parts.collector!.restarts).toBe(0);
    expect(after.parts.archive!.restarts, 'the archive process survived too: only its parsing thread was restarted').toBe(0);
    expect(after.parts.archive!.traffic.stored_raw).toBeGreaterThanOrEqual(1);
    // The hung line and the one after it are archived: the first raw (unparsed), the second parsed as usual.
    const rows = await until('both lines archived', async () => {
      const r = (await queryArchive(join(dir.path, 'archive'), { from: 0 })).rows;
      return r.some((x) => x.raw?.includes('after-the-hang')) && r.some((x) => x.raw?.includes('hung-parse-marker')) ? r : undefined;
    }, 20_000);
    const hung = rows.find((x) => x.raw?.includes('hung-parse-marker'))!;
    expect(hung).toMatchObject({ parser: 'syslog', app: null });
    expect(rows.find((x) => x.raw?.includes('after-the-hang'))).toMatchObject({ app: 'app', host: 'host' });
    expect(stderr).toMatch(/parsing thread did not answer a batch within \d+ ms.*stored raw/);
  }, 90_000);

  it('a part killed with SIGKILL is started again, counted in /healthz; polling goes on meanwhile', async () => {
    const h0 = await health();
    const pid = h0.parts.archive!.pid as number;
    const restarts = h0.parts.archive!.restarts as number;
    const roundsBefore = roundTimes().length;
    process.kill(pid, 'SIGKILL');
    const down = await until('the supervisor to see the death', async () => {
      const h = await health();
      return h.parts.archive!.pid !== pid ? h : undefined;
    }, 10_000);
    expect(down.status).toBe('degraded');
    const up = await until('the archive running again', async () => {
      const h = await health();
      return h.parts.archive!.status === 'ok' && h.parts.archive!.pid !== pid ? h : undefined;
    }, 60_000);
    expect(up.parts.archive!.restarts).toBe(restarts + 1);
    expect(up.parts.archive!.last_exit).toMatchObject({ signal: 'SIGKILL' });
    expect(stderr).toMatch(/"part":"archive".*"signal":"SIGKILL".*part archive exited \(signal SIGKILL\); starting it again in 1 s/);
    // It receives again.
    const s = connect(syslogPort, '127.0.0.1');
    s.end('<13>Nov 24 10:00:02 host app: after-the-restart\n');
    await until('the line received after the restart', async () => ((await queryArchive(join(dir.path, 'archive'), { from: 0 })).rows.some((x) => x.raw?.includes('after-the-restart')) ? true : undefined), 20_000);
    expect(roundTimes().length, 'polling rounds went on').toBeGreaterThan(roundsBefore);
  }, 90_000);

  it('SIGTERM stops every part and the supervisor exits 0', async () => {
    const h = await health();
    const pids = [h.parts.collector!.pid, h.parts.archive!.pid] as number[];
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0), `part ${pid} still running`).toThrow();
  }, 30_000);
});
