// The API from the command line, as an operator meets it: `klaiwatch token`
// (create shows the token once and keeps only its hash; list; revoke) and
// `klaiwatch api` as a real process: it answers over HTTP with a token, its
// /healthz reads the state store and asks the collector's own /healthz, and
// SIGTERM stops it cleanly. Under `klaiwatch run`, /healthz is the API's and
// shows every part, the api part among them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { startApiArea, SCHOOL, type ApiArea } from './area.ts';
import { freePort } from '../helpers/peers.ts';

const run = promisify(execFile);
const CLI = 'bin/klaiwatch.ts';

let a: ApiArea;
let settingsFile: string;
let apiPort: number;
let collectorPort: number;

beforeAll(async () => {
  a = await startApiArea({ octet: 179, rounds: 2 });
  // The area's settings with the API on an address of its own, so that a collector alone could keep http.listen.
  const settings = parse(readFileSync(a.area.settingsPath, 'utf8')) as Record<string, any>;
  apiPort = await freePort();
  collectorPort = await freePort();
  settings.http = { listen: `127.0.0.1:${collectorPort}` };
  settings.api = { listen: `127.0.0.1:${apiPort}` };
  settingsFile = join(a.dir, 'api-cli.yaml');
  writeFileSync(settingsFile, stringify(settings));
}, 180_000);
afterAll(async () => {
  await a?.close();
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function waitExit(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

async function waitHttp(url: string, headers: Record<string, string> = {}, ms = 30_000): Promise<Response> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      return await fetch(url, { headers });
    } catch (err) {
      last = err;
      await sleep(200);
    }
  }
  throw new Error(`${url} did not answer within ${ms} ms: ${(last as Error)?.message}`);
}

describe('klaiwatch token', () => {
  it('create prints the token once on stdout; the database holds only its hash; list shows it without the token; revoke refuses it', async () => {
    const made = await cli('token', 'create', '--role', 'school', '--school', SCHOOL, '--name', 'ครูสมศรี (ICT)', '--expires', '90d', '--config', settingsFile);
    expect(made.code).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^kw_[A-Za-z0-9_-]{51}$/);
    expect(made.stderr).toMatch(/shown this once/);
    const id = token.slice(3, 11);
    // The secret part of the token is nowhere in the tokens database's files (its public id, drawn apart, is).
    const dbDir = join(a.dir, 'data');
    for (const f of readdirSync(dbDir).filter((n) => n.startsWith('api.sqlite'))) {
      const bytes = readFileSync(join(dbDir, f)).toString('latin1');
      expect(bytes.includes(token.slice(11))).toBe(false);
      expect(bytes.includes(token.slice(11, 30))).toBe(false);
    }
    const list = await cli('token', 'list', '--config', settingsFile);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toMatch(new RegExp(`${id}\\tschool\\t${SCHOOL}\\tครูสมศรี \\(ICT\\)`));
    expect(list.stdout).not.toContain(token.slice(3));
    const revoked = await cli('token', 'revoke', id, '--config', settingsFile);
    expect(revoked.code).toBe(0);
    expect((await cli('token', 'list', '--config', settingsFile)).stdout).toMatch(new RegExp(`${id}.*revoked`));
  });

  it('refuses what would make a useless or wrong token, naming the option', async () => {
    const noRole = await cli('token', 'create', '--name', 'x y', '--config', settingsFile);
    expect(noRole.code).toBe(1);
    expect(noRole.stderr).toMatch(/--role must be one of officer, auditor, school, viewer/);
    const schoolless = await cli('token', 'create', '--role', 'school', '--name', 'ครู', '--config', settingsFile);
    expect(schoolless.stderr).toMatch(/--role school needs --school CODE/);
    const unknown = await cli('token', 'create', '--role', 'school', '--school', '9999999999', '--name', 'ครู', '--config', settingsFile);
    expect(unknown.stderr).toMatch(/--school "9999999999": no such school/);
    const expiry = await cli('token', 'create', '--role', 'viewer', '--name', 'ผอ.', '--expires', 'soon', '--config', settingsFile);
    expect(expiry.stderr).toMatch(/--expires "soon": give a duration such as 90d/);
    const revoke = await cli('token', 'revoke', 'nosuchid', '--config', settingsFile);
    expect(revoke.stderr).toMatch(/no active token "nosuchid"/);
    for (const r of [noRole, schoolless, unknown, expiry, revoke]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('klaiwatch api, a process of its own', () => {
  it('answers with a token over real HTTP, reads the state store in /healthz, names the collector it cannot reach, and stops on SIGTERM', async () => {
    const token = (await cli('token', 'create', '--role', 'officer', '--name', 'เจ้าหน้าที่ (cli test)', '--config', settingsFile)).stdout.trim();
    const child = spawn(process.execPath, [CLI, 'api', '--config', settingsFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    try {
      const health = await waitHttp(`http://127.0.0.1:${apiPort}/healthz`, { authorization: `Bearer ${token}` });
      const body = (await health.json()) as Record<string, any>;
      // Without an officer's token: the counts and statuses, nothing that names a school, a device or an address.
      const open = (await (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).json()) as Record<string, any>;
      expect(open.problems).toBeUndefined();
      expect(open.incidents_open.checks_failing).toBe(body.incidents_open.checks_failing);
      expect(JSON.stringify(open)).not.toContain('1036090119-router');
      // ... nor an address (the parts asked, InfluxDB's URL, the API's own listen address).
      expect(JSON.stringify(open)).not.toMatch(/127\.0\.0\.1:\d+/);
      // No collector runs on http.listen: named, not guessed; the state store's figures are there.
      expect(health.status).toBe(503);
      expect(body.parts.collector).toMatchObject({ status: 'not reachable', asked: `http://127.0.0.1:${collectorPort}/healthz` });
      expect(body.store).toBe('ok');
      // On loopback the silent router still answers ping: its SNMP agent's silence is a failing check.
      expect(body.incidents_open.checks_failing).toBeGreaterThanOrEqual(1);
      expect(body.problems.some((p: { device: string }) => p.device === '1036090119-router')).toBe(true);
      const noToken = await fetch(`http://127.0.0.1:${apiPort}/v1/status`);
      expect(noToken.status).toBe(401);
      expect(await noToken.json()).toMatchObject({ error: 'unauthorized' });
      const withToken = await fetch(`http://127.0.0.1:${apiPort}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
      expect(withToken.status).toBe(200);
      expect(log).toMatch(/API listening on http:\/\/127\.0\.0\.1/);
      expect(log).not.toContain(token.slice(3));
    } finally {
      child.kill('SIGTERM');
    }
    const t0 = Date.now();
    expect(await waitExit(child)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(log).toMatch(/API stopped/);
  });

  it('a busy api.listen stops it at once with one line naming the setting', async () => {
    const blocker = spawn(process.execPath, ['-e', `require('net').createServer().listen(${apiPort}, '127.0.0.1', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => blocker.stdout!.once('data', r));
    try {
      const r = await cli('api', '--config', settingsFile);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/api\.listen: "127\.0\.0\.1:\d+" cannot be listened on \(TCP\)/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      blocker.kill();
    }
  });
});

describe('klaiwatch api beside archive serve', () => {
  it("starts while the traffic receivers' ports are held (by archive serve, in the three-unit layout): it binds only its own address", async () => {
    const { generateSigningKey } = await import('../../archive/manifest.ts');
    const { createSocket } = await import('node:dgram');
    const { createServer } = await import('node:net');
    const settings = parse(readFileSync(settingsFile, 'utf8')) as Record<string, any>;
    const [syslogPort, flowPort, port] = [await freePort(), await freePort(), await freePort()];
    const key = join(a.dir, 'traffic-key.pem');
    generateSigningKey(key);
    settings.traffic = { dir: join(a.dir, 'traffic'), signing_key: key, syslog: { udp: `127.0.0.1:${syslogPort}`, tcp: `127.0.0.1:${syslogPort}` }, flow: { udp: `127.0.0.1:${flowPort}` } };
    settings.api = { listen: `127.0.0.1:${port}` };
    const file = join(a.dir, 'api-beside-archive.yaml');
    writeFileSync(file, stringify(settings));
    // Stand-ins for archive serve's receivers.
    const udp1 = createSocket('udp4');
    const udp2 = createSocket('udp4');
    const tcp = createServer();
    await Promise.all([new Promise((r) => udp1.bind(syslogPort, '127.0.0.1', () => r(null))), new Promise((r) => udp2.bind(flowPort, '127.0.0.1', () => r(null))), new Promise((r) => tcp.listen(syslogPort, '127.0.0.1', () => r(null)))]);
    const child = spawn(process.execPath, [CLI, 'api', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    try {
      const r = await waitHttp(`http://127.0.0.1:${port}/healthz`);
      expect([200, 503]).toContain(r.status);
      expect(log).not.toMatch(/cannot be listened on/);
    } finally {
      child.kill('SIGTERM');
      udp1.close();
      udp2.close();
      tcp.close();
    }
    expect(await waitExit(child)).toBe(0);
  });
});

describe('klaiwatch run', () => {
  it('forks the api part; its /healthz shows every part (the api among them) and the state store', async () => {
    const settings = parse(readFileSync(a.area.settingsPath, 'utf8')) as Record<string, any>;
    const port = await freePort();
    settings.http = { listen: `127.0.0.1:${port}` };
    settings.instance = 'api-run';
    settings.polling.interval = '5s';
    const file = join(a.dir, 'api-run.yaml');
    writeFileSync(file, stringify(settings));
    const child = spawn(process.execPath, [CLI, 'run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    try {
      let body: Record<string, any> | undefined;
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        body = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.json() as Promise<Record<string, any>>).catch(() => undefined);
        if (body?.parts?.api?.status === 'ok' && body?.parts?.collector?.rounds) break;
        await sleep(300);
      }
      expect(body?.parts?.api).toMatchObject({ status: 'ok', part: 'api', restarts: 0 });
      expect(body?.parts?.collector).toMatchObject({ instance: 'api-run' });
      expect(body?.supervisor?.pid).toBe(child.pid);
      expect(body?.store).toBe('ok');
      expect(body?.incidents_open).toBeDefined();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await waitExit(child)).toBe(0);
  }, 120_000);
});
