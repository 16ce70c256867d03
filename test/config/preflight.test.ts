// Operational errors as the operator meets them: a listen address in use, a
// folder that cannot be made (under /proc, over a file, on a read-only
// file system), named by check-config and by `run` before InfluxDB is
// touched; errno errors from any command as one plain line, no stack.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.ts';
import { preflight, describeSystemError, checkOutputPath, OutputPathError } from '../../config/preflight.ts';
import { freePort, tempDir } from '../helpers/peers.ts';

const dir = tempDir('preflight');
afterAll(() => dir.remove());

/** Something listening on a port, the way another program holds it. */
let holder: Server;
let heldPort: number;
/** A TCP listener where InfluxDB would be: counts who connects (nobody may, when the start is refused). */
let influx: Server;
let influxPort: number;
let influxConnections = 0;
let udpHolder: UdpSocket;
let udpPort: number;

beforeAll(async () => {
  heldPort = await freePort();
  holder = createServer();
  await new Promise<void>((r) => holder.listen(heldPort, '127.0.0.1', r));
  influxPort = await freePort();
  influx = createServer((s) => {
    influxConnections++;
    s.destroy();
  });
  await new Promise<void>((r) => influx.listen(influxPort, '127.0.0.1', r));
  udpHolder = createSocket('udp4');
  await new Promise<void>((r) => udpHolder.bind(0, '127.0.0.1', r));
  udpPort = udpHolder.address().port;
});
afterAll(async () => {
  await new Promise((r) => holder.close(r));
  await new Promise((r) => influx.close(r));
  udpHolder.close();
});

/** An area of one loopback device (nothing outside 127/8 is ever addressed), settings extra appended. */
function area(name: string, extra: string): string {
  const d = join(dir.path, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'schools.yaml'), 'schools:\n  - code: "1001"\n    name_th: โรงเรียนทดสอบ\n    devices:\n      - { id: r1, kind: router, address: 127.0.0.1, profile: icmp-only }\n');
  writeFileSync(
    join(d, 'klaiwatch.yaml'),
    `area: { code: t, name_th: ทดสอบ }\ninventory: schools.yaml\ninflux: { url: "http://127.0.0.1:${influxPort}", timeout: 2s }\nicmp: { enabled: false }\n${extra}`,
  );
  return join(d, 'klaiwatch.yaml');
}

/** Runs the CLI; its exit status, stderr and how long it took. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ status: number | null; stderr: string; stdout: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/klaiwatch.ts', ...args], { env: { ...process.env, KLAIWATCH_DEBUG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, stdout, ms: Date.now() - t0 });
    });
  });
}

const NO_STACK = /^\s+at .+\(?.+:\d+:\d+\)?$/m;

describe('preflight: what the settings ask of this machine', () => {
  it('check-config names http.listen, its value and the reason when another program holds the port', async () => {
    const settings = area('inuse', `http: { listen: "127.0.0.1:${heldPort}" }\n`);
    const r = await cli(['check-config', '--config', settings]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`klaiwatch\\.yaml: http\\.listen: "127\\.0\\.0\\.1:${heldPort}" cannot be listened on \\(TCP\\): the address is in use by another program \\(EADDRINUSE\\)`));
    expect(r.stderr).toMatch(/klaiwatch check-config: configuration has 1 problem$/m);
    expect(r.stderr).not.toMatch(NO_STACK);
    // --no-listen: the check to make while the service itself holds the port.
    const quiet = await cli(['check-config', '--config', settings, '--no-listen']);
    expect(quiet.stderr).toBe('');
    expect(quiet.status).toBe(0);
  });

  it('run refuses to start on a port in use: one line naming http.listen, no stack, InfluxDB never contacted', async () => {
    const settings = area('run-inuse', `http: { listen: "127.0.0.1:${heldPort}" }\nspool: { dir: spool }\nalerts: { state_db: state.sqlite }\n`);
    const before = influxConnections;
    const r = await cli(['run', '--config', settings], {}, 30_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`http\\.listen: "127\\.0\\.0\\.1:${heldPort}" cannot be listened on \\(TCP\\): the address is in use`));
    expect(r.stderr).toMatch(/klaiwatch run: configuration has 1 problem/);
    expect(r.stderr).not.toMatch(NO_STACK);
    expect(influxConnections).toBe(before);
    // Nothing was made on disk either.
    expect(existsSync(join(settings, '..', 'spool'))).toBe(false);
    expect(existsSync(join(settings, '..', 'state.sqlite'))).toBe(false);
  });

  it('names every traffic listener that cannot be had: a UDP port in use, two listeners on one port', async () => {
    writeFileSync(join(dir.path, 'key.pem'), 'not read by the preflight, only checked readable\n');
    const free = await freePort();
    const settings = area(
      'traffic',
      `traffic:\n  dir: traffic\n  signing_key: ../key.pem\n  syslog: { udp: "127.0.0.1:${udpPort}", tcp: "127.0.0.1:${free}" }\n  flow: { udp: "127.0.0.1:${free}" }\nhttp: { listen: "127.0.0.1:${free}" }\n`,
    );
    const problems = (await preflight(loadConfig(settings, { env: {} }))).map((p) => `${p.path}: ${p.message}`);
    expect(problems).toEqual([
      `traffic.syslog.udp: "127.0.0.1:${udpPort}" cannot be listened on (UDP): the address is in use by another program (EADDRINUSE); \`ss -lntup 'sport = :${udpPort}'\` shows which, or choose another port`,
      `traffic.syslog.tcp: "127.0.0.1:${free}" is the same TCP port as http.listen: give each listener its own`,
    ]);
  });

  it('refuses a spool.dir under /proc at once, without writing there', async () => {
    const settings = area('proc', 'spool: { dir: /proc/klaiwatch/spool }\ntraffic: { dir: /sys/klaiwatch, signing_key: /dev/null }\nalerts: { state_db: /proc/self/klaiwatch.sqlite }\n');
    const r = await cli(['check-config', '--config', settings, '--no-listen'], {}, 30_000);
    expect(r.status).toBe(1);
    expect(r.ms).toBeLessThan(20_000); // it once spun at 94 % CPU without end
    expect(r.stderr).toMatch(/spool\.dir: "\/proc\/klaiwatch\/spool" is on \/proc, a kernel filesystem, not a disk/);
    expect(r.stderr).toMatch(/alerts\.state_db: "\/proc\/self\/klaiwatch\.sqlite" is on \/proc, a kernel filesystem/);
    expect(r.stderr).toMatch(/traffic\.dir: "\/sys\/klaiwatch" is on \/sys, a kernel filesystem/);
    expect(r.stderr).toMatch(/traffic\.signing_key: "\/dev\/null" is on \/dev, a kernel filesystem/);
    expect(r.stderr).not.toMatch(NO_STACK);
  });

  it('names a folder that cannot be made: a file in its way, a read-only file system (a real tmpfs mounted ro)', async () => {
    const d = join(dir.path, 'paths');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'a-file'), 'x');
    const ro = join(d, 'ro');
    mkdirSync(ro);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro]);
    try {
      const settings = area('paths-area', `spool: { dir: ${join(d, 'a-file', 'spool')} }\nalerts: { state_db: ${join(ro, 'state.sqlite')} }\n`);
      const problems = (await preflight(loadConfig(settings, { env: {} }), { listen: false })).map((p) => `${p.path}: ${p.message}`);
      expect(problems).toEqual([
        `spool.dir: "${join(d, 'a-file', 'spool')}" cannot be created: ${join(d, 'a-file')} is a file, not a folder`,
        `alerts.state_db: "${join(ro, 'state.sqlite')}" cannot be written: the file system is read-only (EROFS)`,
      ]);
    } finally {
      execFileSync('umount', [ro]);
    }
  });

  it('passes a sound area (folders not made yet, free ports) and makes nothing', async () => {
    const settings = area('sound', `http: { listen: "127.0.0.1:${await freePort()}" }\nspool: { dir: data/spool }\n`);
    expect(await preflight(loadConfig(settings, { env: {} }))).toEqual([]);
    expect(existsSync(join(settings, '..', 'data'))).toBe(false);
  });
});

describe('errno errors from any command: one plain line', () => {
  it('import-schools --out into a folder not there: the operation, the path and the reason; the stack only with KLAIWATCH_DEBUG=1', async () => {
    const csv = join(dir.path, 'in.csv');
    writeFileSync(csv, 'code,name_th,router_ip\n1001,โรงเรียนทดสอบ,127.0.0.1\n');
    // The nearest existing folder is writable (the check passes); the write itself fails: an errno error.
    const out = join(dir.path, 'no-such-folder', 'schools.yaml');
    const r = await cli(['import-schools', csv, '--out', out]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`klaiwatch import-schools: open ${out}: no such file or folder (ENOENT)`]);
    const debug = await cli(['import-schools', csv, '--out', out], { KLAIWATCH_DEBUG: '1' });
    expect(debug.stderr).toMatch(NO_STACK);
  });

  it('describes fs and socket errors in words and leaves bugs alone', () => {
    expect(describeSystemError(Object.assign(new Error('x'), { code: 'EACCES', syscall: 'mkdir', path: '/var/lib/k' }))).toBe('mkdir /var/lib/k: permission denied (EACCES)');
    expect(describeSystemError(Object.assign(new Error('x'), { code: 'EADDRINUSE', syscall: 'listen', address: '127.0.0.1', port: 9273 }))).toBe('listen 127.0.0.1:9273: the address is in use by another program (EADDRINUSE)');
    expect(describeSystemError(Object.assign(new Error('x'), { code: 'EWEIRD' }))).toBe('EWEIRD');
    expect(describeSystemError(new TypeError('undefined is not a function'))).toBeUndefined();
    expect(describeSystemError(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' }))).toBeUndefined();
  });
});

describe('paths given on the command line: checked like the settings\' before anything is written', () => {
  const csv = join(dir.path, 'out.csv');
  beforeAll(() => writeFileSync(csv, 'code,name_th,router_ip\n1001,โรงเรียนทดสอบ,127.0.0.1\n'));

  it('dashboards build --out /proc/x ends at once with one line naming --out, the value and the reason (it used to spin in mkdir)', async () => {
    const settings = area('dash-proc', '');
    // Killed after 5 s: a run still going then (the old spin) has no exit status and fails here.
    const r = await cli(['dashboards', 'build', '--config', settings, '--out', '/proc/x'], {}, 5_000);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual(['klaiwatch dashboards: --out "/proc/x" is on /proc, a kernel filesystem, not a disk: choose a path on a disk']);
    expect(r.stdout).toBe('');
  });

  it('report, import-schools and archive keygen --out: the same line, nothing written', async () => {
    const settings = area('out-proc', '');
    const report = await cli(['report', '--period', '2026-11', '--no-influx', '--config', settings, '--out', '/sys/kernel/klaiwatch.html'], {}, 30_000);
    expect(report.status).toBe(1);
    expect(report.stderr.trim().split('\n')).toEqual(['klaiwatch report: --out "/sys/kernel/klaiwatch.html" is on /sys, a kernel filesystem, not a disk: choose a path on a disk']);
    const schools = await cli(['import-schools', csv, '--out', '/proc/klaiwatch/schools.yaml'], {}, 30_000);
    expect(schools.status).toBe(1);
    expect(schools.stderr.trim().split('\n')).toEqual(['klaiwatch import-schools: --out "/proc/klaiwatch/schools.yaml" is on /proc, a kernel filesystem, not a disk: choose a path on a disk']);
    // A folder where a file is to be written: named before the CSV is even read.
    const folder = await cli(['import-schools', csv, '--out', dir.path], {}, 30_000);
    expect(folder.status).toBe(1);
    expect(folder.stderr.trim()).toBe(`klaiwatch import-schools: --out ${JSON.stringify(dir.path)} is a folder; a file is expected`);
    const key = await cli(['archive', 'keygen', '--out', '/dev/klaiwatch-key.pem'], {}, 30_000);
    expect(key.status).toBe(1);
    expect(key.stderr.trim().split('\n')).toEqual(['klaiwatch archive: --out "/dev/klaiwatch-key.pem" is on /dev, a kernel filesystem, not a disk: choose a path on a disk']);
    expect(existsSync('/dev/klaiwatch-key.pem')).toBe(false);
    // Under a file: the nearest existing part is a file, not a folder.
    const under = await cli(['dashboards', 'build', '--config', settings, '--out', join(csv, 'grafana')], {}, 30_000);
    expect(under.status).toBe(1);
    expect(under.stderr.trim()).toBe(`klaiwatch dashboards: --out ${JSON.stringify(join(csv, 'grafana'))} cannot be created: ${csv} is a file, not a folder`);
    for (const r of [report, schools, folder, key, under]) expect(r.stderr).not.toMatch(NO_STACK);
  });

  it('checkOutputPath passes a folder not made yet and makes nothing', () => {
    expect(() => checkOutputPath('--out', join(dir.path, 'fresh', 'grafana'), 'folder')).not.toThrow();
    expect(existsSync(join(dir.path, 'fresh'))).toBe(false);
    expect(() => checkOutputPath('--out', '/proc/self/x', 'file-to-write')).toThrow(OutputPathError);
  });
});
