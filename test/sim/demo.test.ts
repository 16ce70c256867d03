// The README's demo, as a user runs it (minus the install step): it starts
// its own InfluxDB, the simulated area, a mail catcher and the collector;
// pausing the demo router's agent brings the Thai e-mail, resuming it the
// recovery e-mail; Ctrl-C stops it all.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, tempDir } from '../helpers/peers.ts';
import { InfluxClient, rows } from '../../collector/influx/client.ts';
import { startInfluxd } from '../../sim/influxd.ts';

const data = tempDir('demo');
afterAll(() => data.remove());

describe('demo', () => {
  it('polls the simulated area, e-mails when a router fails and when it is back, says where to look, and stops', async () => {
    const influxPort = await freePort();
    const httpPort = await freePort();
    // The README's command itself: scripts/demo.sh (its set-up finds everything installed).
    const child = spawn('bash', ['scripts/demo.sh', '--interval', '3s', '--influx-port', String(influxPort), '--http', `127.0.0.1:${httpPort}`, '--data', data.path, '--octet', '71', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const waitFor = async (re: RegExp, ms: number) => {
      const end = Date.now() + ms;
      while (!re.test(out)) {
        if (Date.now() > end) throw new Error(`demo did not print ${re} within ${ms} ms; it printed:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return re.exec(out)!;
    };
    try {
      const pid = Number((await waitFor(/a router fails: kill -STOP (\d+)/, 120_000))[1]);
      await waitFor(/round 2: 65 devices, 37 answered SNMP, 2 failed \(1036090119-router, 1036090120-dltv-2\), 64\/64 answer ICMP/, 60_000);
      process.kill(pid, 'SIGSTOP');
      await waitFor(/mail to ict\.nongbuadaeng@example\.org: \[klaiwatch\] โรงเรียนบ้านหนองบัวแดง: เราเตอร์ใช้งานไม่ได้/, 30_000);
      await waitFor(/mail to it-officer@example\.org: \[klaiwatch\] โรงเรียนบ้านหนองบัวแดง: เราเตอร์ใช้งานไม่ได้/, 10_000);
      process.kill(pid, 'SIGCONT');
      await waitFor(/mail to ict\.nongbuadaeng@example\.org: \[klaiwatch\] โรงเรียนบ้านหนองบัวแดง: เราเตอร์กลับมาใช้งานได้แล้ว/, 30_000);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(new RegExp(`Starting InfluxDB on http://127\\.0\\.0\\.1:${influxPort}`));
    expect(out).toMatch(new RegExp(`health: +curl http://127\\.0\\.0\\.1:${httpPort}/healthz`));
    expect(out).toMatch(/stop: +Ctrl-C/);
    expect(out).toMatch(/Stopped\. Points written: \d+, spooled: 0, dropped: 0\./);
    // Each mail is kept as a file, Thai intact.
    const mails = readdirSync(join(data.path, 'mail'));
    expect(mails.length).toBeGreaterThanOrEqual(3);
    const first = readFileSync(join(data.path, 'mail', mails.sort()[0]!), 'utf8');
    expect(first).toMatch(/^Subject: =\?UTF-8\?/m);

    // What it wrote stays in its data folder.
    const again = await startInfluxd(`${data.path}/influxdb`, influxPort);
    try {
      const client = new InfluxClient({ url: again.url, database: 'klaiwatch', auth: {}, timeoutMs: 5000 });
      const down = rows(await client.query(`SELECT count(state) FROM device_state WHERE device = '1036090101-router' AND state = 'down'`));
      expect(down[0]!.count).toBeGreaterThanOrEqual(1);
    } finally {
      await again.stop();
    }
  }, 240_000);
});
