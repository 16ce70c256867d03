// snmpsimd (Debian package snmpsim) serving recordings of real devices, one
// process for many loopback addresses. The community selects the recording
// (community `router` answers from DATA/router.snmprec on every endpoint).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, openSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable } from '../collector/icmp/probe.ts';
import { SnmpSession } from '../collector/snmp/session.ts';
import { Secret } from '../config/secret.ts';
import { waitFor } from './influxd.ts';

export interface SnmpsimOptions {
  dir: string;
  dataDir: string;
  endpoints: string[];
  /** A community whose recording exists, to know when the agent is ready. */
  probeCommunity: string;
  v3?: { user: string; authKey: string; authProto: string; privKey: string; privProto: string };
}

export interface Snmpsim {
  process: ChildProcess;
  pid(): number;
  start(): Promise<void>;
  stop(): Promise<void>;
  pause(): void;
  resume(): void;
}

export async function startSnmpsim(o: SnmpsimOptions): Promise<Snmpsim> {
  const bin = await findExecutable('snmpsimd');
  if (!bin) throw new Error('snmpsimd not found: install the Debian package snmpsim (bash scripts/test.sh installs it)');
  const cache = join(o.dir, 'cache');
  mkdirSync(cache, { recursive: true });
  // Started as root, snmpsimd drops to nobody: the cache must be writable, the data readable.
  chmodSync(cache, 0o777);
  chmodSync(o.dir, 0o755); // mkdtemp makes 0700 folders
  chmodSync(o.dataDir, 0o755);
  const args = [`--data-dir=${o.dataDir}`, `--cache-dir=${cache}`, '--logging-method=null'];
  if (o.v3) {
    args.push(`--v3-user=${o.v3.user}`, `--v3-auth-key=${o.v3.authKey}`, `--v3-auth-proto=${o.v3.authProto}`, `--v3-priv-key=${o.v3.privKey}`, `--v3-priv-proto=${o.v3.privProto}`);
  } else {
    args.push('--v2c-arch');
  }
  if (process.getuid?.() === 0) args.push('--process-user=nobody', '--process-group=nogroup');
  // A long endpoint list goes through a file (snmpsimd reads only endpoint
  // and engine options from it): the command line has limits.
  const argsFile = join(o.dir, 'snmpsimd.args');
  writeFileSync(argsFile, o.endpoints.map((e) => `--agent-udpv4-endpoint=${e}`).join('\n') + '\n');
  args.push(`--args-from-file=${argsFile}`);
  const [host, port] = o.endpoints[0]!.split(':') as [string, string];
  const self: Snmpsim = {
    process: undefined as unknown as ChildProcess,
    pid: () => self.process.pid!,
    async start() {
      const log = openSync(join(o.dir, 'snmpsimd.log'), 'a');
      self.process = spawn(bin, args, { stdio: ['ignore', log, log] });
      const exited = new Promise<never>((_, reject) =>
        self.process.once('exit', (code) => {
          // Its usage text comes first; the reason is on the lines that start with ERROR.
          const why = readFileSync(join(o.dir, 'snmpsimd.log'), 'utf8').split(/\r?\n/).filter((l) => /ERROR|rror:/.test(l)).slice(-3).join(' | ');
          reject(new Error(`snmpsimd exited with ${code}: ${why || 'no reason given'} (log: ${join(o.dir, 'snmpsimd.log')})`));
        }),
      );
      const creds = o.v3
        ? { version: 3 as const, username: o.v3.user, level: 'authPriv' as const, authProtocol: o.v3.authProto.toLowerCase(), authKey: new Secret(o.v3.authKey), privProtocol: o.v3.privProto.toLowerCase(), privKey: new Secret(o.v3.privKey), context: o.probeCommunity }
        : { version: 2 as const, level: 'noAuthNoPriv' as const, community: new Secret(o.probeCommunity) };
      await Promise.race([
        waitFor(
          `snmpsimd on ${o.endpoints[0]}`,
          async () => {
            const s = new SnmpSession(host, Number(port), creds, { timeoutMs: 500, retries: 0 });
            try {
              await s.get(['1.3.6.1.2.1.1.3.0'], 'ready');
              return true;
            } finally {
              s.close();
            }
          },
          120_000,
        ),
        exited,
      ]);
    },
    async stop() {
      const p = self.process;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGCONT');
      p.kill('SIGTERM');
      await done;
    },
    pause: () => void self.process.kill('SIGSTOP'),
    resume: () => void self.process.kill('SIGCONT'),
  };
  await self.start();
  return self;
}

export function writeRecording(dataDir: string, community: string, text: string): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, `${community}.snmprec`), text);
  chmodSync(dataDir, 0o755);
  chmodSync(join(dataDir, `${community}.snmprec`), 0o644);
}
