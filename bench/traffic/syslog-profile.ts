// The syslog half of the traffic benchmark alone, for profiling: `klaiwatch
// archive serve` (with ARCHIVE_V8_FLAGS and any extra node flags, e.g.
// --cpu-prof --cpu-prof-dir=DIR, which profiles its worker threads too)
// takes loggen's 200-byte messages over TCP (2 connections, as fast as it
// sends) for --seconds; prints messages/s until all are stored, CPU-s per
// 100k messages of the process and of each of its threads.
// Usage: node bench/traffic/syslog-profile.ts [--seconds 5] [--node-flag=--cpu-prof ...] [--stdout FILE]
// (--stdout: the process's standard output, e.g. of --node-flag=--trace-gc, into FILE)
// (run bench/traffic/run.sh once first: it unpacks loggen into .tools/).
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { PROJECT } from '../../sim/area.ts';
import { ARCHIVE_V8_FLAGS } from '../../collector/runtime.ts';

const exec = promisify(execFile);
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, 'node-flag': { type: 'string', multiple: true, default: [] }, keep: { type: 'boolean', default: false }, stdout: { type: 'string' } } });
const seconds = Number(values.seconds);
const work = mkdtempSync(join(tmpdir(), 'kw-syslog-profile-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tools = join(PROJECT, '.tools', 'syslog-ng', 'usr');
const sngEnv = { ...process.env, SYSLOGNG_PREFIX: tools, LD_LIBRARY_PATH: join(tools, 'lib', 'syslog-ng') };
const base = 33000 + (process.pid % 1000) * 2;
const [httpPort, sysPort] = [base, base + 1];

/** CPU seconds of each thread of `pid`, by thread name. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(`${name} (${tid})`, (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // The thread ended.
    }
  }
  return out;
}

writeFileSync(join(work, 'signing.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
writeFileSync(join(work, 'schools.yaml'), 'schools:\n  - code: "1"\n    name_th: x\n    devices:\n      - { id: r, kind: router, address: 127.0.0.2, profile: icmp-only }\n');
writeFileSync(
  join(work, 'area.yaml'),
  ['area: { code: bench, name_th: เขตทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9", timeout: 1s }', 'icmp: { enabled: false }', 'log: { level: warn }', 'traffic:', '  dir: archive', `  http: "127.0.0.1:${httpPort}"`, '  signing_key: signing.pem', '  fsync_interval: 200ms', `  syslog: { tcp: "127.0.0.1:${sysPort}" }`, ''].join('\n'),
);
const proc = spawn(process.execPath, [...ARCHIVE_V8_FLAGS, ...values['node-flag']!, join(PROJECT, 'bin', 'klaiwatch.ts'), 'archive', 'serve', '--config', join(work, 'area.yaml')], { stdio: ['ignore', values.stdout ? openSync(values.stdout, 'w') : 'ignore', 'inherit'] });
const stored = async () => ((await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as { traffic: { stored: number } }).traffic.stored;
for (let i = 0; ; i++) {
  try {
    await stored();
    break;
  } catch {
    if (i > 300) throw new Error('klaiwatch did not start');
    await sleep(100);
  }
}
await sleep(500);
const cpu0 = threadCpu(proc.pid!);
const t0 = Date.now();
const { stderr, stdout } = await exec(join(tools, 'bin', 'loggen'), ['-i', '-S', '-s', '200', '--active-connections=2', '-I', String(seconds), '-r', '10000000', '127.0.0.1', String(sysPort)], { env: sngEnv, maxBuffer: 1 << 26 });
const sent = Number([...(stderr + stdout).matchAll(/count=(\d+)/g)].at(-1)?.[1]);
const tSent = Date.now();
while ((await stored()) < sent) {
  if (Date.now() - t0 > 120_000) throw new Error('not all stored in 120 s');
  await sleep(20);
}
const t1 = Date.now();
const cpu1 = threadCpu(proc.pid!);
const exited = new Promise((r) => proc.once('exit', r));
proc.kill('SIGTERM');
await exited;
console.log(`sent ${sent} in ${((tSent - t0) / 1000).toFixed(2)} s (loggen ${Math.round(sent / ((tSent - t0) / 1000))} msg/s); all stored after ${((t1 - t0) / 1000).toFixed(2)} s: ${Math.round(sent / ((t1 - t0) / 1000))} msg/s`);
let total = 0;
const rows: [string, number][] = [];
for (const [k, v] of cpu1) {
  const d = v - (cpu0.get(k) ?? 0);
  total += d;
  if (d >= 0.05) rows.push([k, d]);
}
console.log(`CPU-s per 100k messages: ${((total * 1e5) / sent).toFixed(3)} in all`);
for (const [k, d] of rows.sort((a, b) => b[1] - a[1])) console.log(`  ${k}: ${((d * 1e5) / sent).toFixed(3)}`);
if (!values.keep) rmSync(work, { recursive: true, force: true });
else console.log(`kept ${work}`);
