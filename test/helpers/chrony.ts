// A real NTP server on loopback: chronyd from the Debian package chrony,
// unpacked (not installed) into .tools/chrony by scripts/test.sh, so the
// machine's own time service is left alone. -x: never touch the clock.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT } from '../../sim/area.ts';
import { findExecutable } from '../../collector/icmp/probe.ts';
import { measureOffset } from '../../clock/sntp.ts';
import { waitFor } from '../../sim/influxd.ts';

export async function startChrony(dir: string, port: number): Promise<{ stop(): Promise<void> }> {
  const unpacked = join(PROJECT, '.tools', 'chrony', 'usr', 'sbin', 'chronyd');
  const bin = existsSync(unpacked) ? unpacked : await findExecutable('chronyd');
  if (!bin) throw new Error('chronyd not found: `bash scripts/test.sh` unpacks the Debian package chrony into .tools/chrony (apt-get download chrony; dpkg -x)');
  const conf = join(dir, 'chrony.conf');
  writeFileSync(conf, [`port ${port}`, 'bindaddress 127.0.0.1', 'allow 127.0.0.0/8', 'local stratum 10', 'cmdport 0', `pidfile ${join(dir, 'chronyd.pid')}`, ''].join('\n'));
  const args = ['-x', '-d', '-f', conf];
  if (process.getuid?.() === 0) args.push('-u', 'root');
  const child: ChildProcess = spawn(bin, args, { stdio: 'ignore' });
  await waitFor(`chronyd on 127.0.0.1:${port}`, async () => (await measureOffset('127.0.0.1', port, 300)).stratum > 0, 10_000);
  return {
    stop: async () => {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}
