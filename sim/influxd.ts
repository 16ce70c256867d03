// A real InfluxDB 1.x (Debian package influxdb) on loopback, with its data
// under a folder we choose: for the demo, the tests and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable } from '../collector/icmp/probe.ts';

export interface Influxd {
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`${what}: not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function pingInflux(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url + '/ping', { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 204 ? (res.headers.get('x-influxdb-version') ?? 'unknown') : undefined;
  } catch {
    return undefined;
  }
}

/** influxd on host:port, its RPC service (backup/restore) on rpcPort, by default the port after. */
export async function startInfluxd(dir: string, port: number, host = '127.0.0.1', rpcPort = port + 1): Promise<Influxd> {
  const bin = (await findExecutable('influxd')) ?? (await findExecutable('/usr/bin/influxd'));
  if (!bin) throw new Error('influxd not found: install the Debian package influxdb (bash scripts/test.sh installs it)');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'influxdb.conf');
  writeFileSync(
    conf,
    [
      'reporting-disabled = true',
      `bind-address = "${host}:${rpcPort}"`,
      '[meta]',
      `  dir = "${join(dir, 'meta')}"`,
      '  logging-enabled = false',
      '[data]',
      `  dir = "${join(dir, 'data')}"`,
      `  wal-dir = "${join(dir, 'wal')}"`,
      '  query-log-enabled = false',
      '  trace-logging-enabled = false',
      '[coordinator]',
      '  log-queries-after = "0s"',
      '[retention]',
      '  enabled = true',
      '[monitor]',
      '  store-enabled = false',
      '[http]',
      '  enabled = true',
      `  bind-address = "${host}:${port}"`,
      '  log-enabled = false',
      '[continuous_queries]',
      '  enabled = true',
      '  log-enabled = false',
      '  run-interval = "1s"',
      '[[graphite]]',
      '  enabled = false',
      '[[udp]]',
      '  enabled = false',
      '[[collectd]]',
      '  enabled = false',
      '[[opentsdb]]',
      '  enabled = false',
      '',
    ].join('\n'),
  );
  const url = `http://${host}:${port}`;
  const self: Influxd = {
    url,
    port,
    dir,
    process: undefined as unknown as ChildProcess,
    async start() {
      const log = openSync(join(dir, 'influxd.log'), 'a');
      self.process = spawn(bin, ['-config', conf], { stdio: ['ignore', log, log], detached: false });
      const exited = new Promise<never>((_, reject) => self.process.once('exit', (code) => reject(new Error(`influxd exited with ${code} before answering; see ${join(dir, 'influxd.log')}`))));
      await Promise.race([waitFor(`influxd on ${url}`, async () => (await pingInflux(url)) !== undefined, 30_000), exited]);
    },
    async stop() {
      const p = self.process;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await done;
    },
  };
  await self.start();
  return self;
}
