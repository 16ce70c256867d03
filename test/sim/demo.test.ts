// The README's demo, as a user runs it (minus the install step): it starts
// its own InfluxDB, the simulated area and the collector, polls, and stops
// cleanly when asked.
import { describe, it, expect, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, tempDir } from '../helpers/peers.ts';
import { InfluxClient, rows } from '../../collector/influx/client.ts';
import { startInfluxd } from '../../sim/influxd.ts';

const run = promisify(execFile);
const data = tempDir('demo');
afterAll(() => data.remove());

describe('demo', () => {
  it('runs two rounds of the simulated area into its own InfluxDB, says where to look, and stops', async () => {
    const influxPort = await freePort();
    const httpPort = await freePort();
    const { stdout } = await run(process.execPath, ['sim/demo.ts', '--rounds', '2', '--interval', '5s', '--influx-port', String(influxPort), '--http', `127.0.0.1:${httpPort}`, '--data', data.path, '--octet', '71', '--log-level', 'silent'], { timeout: 170_000 });
    expect(stdout).toMatch(new RegExp(`Starting InfluxDB on http://127\\.0\\.0\\.1:${influxPort}`));
    expect(stdout).toMatch(/silent on purpose: 1036090119-router, 1036090120-dltv-2/);
    expect(stdout).toMatch(new RegExp(`health: +curl http://127\\.0\\.0\\.1:${httpPort}/healthz`));
    expect(stdout).toMatch(/stop: +Ctrl-C/);
    expect(stdout).toMatch(/round 1: 65 devices, 37 answered SNMP, 2 failed \(1036090119-router, 1036090120-dltv-2\), 65\/65 answer ICMP/);
    expect(stdout).toMatch(/round 2: 65 devices, 37 answered SNMP, 2 failed/);
    expect(stdout).toMatch(/Stopped\. Points written: \d+, spooled: 0, dropped: 0\./);

    // What it wrote stays in its data folder.
    const again = await startInfluxd(`${data.path}/influxdb`, influxPort);
    try {
      const client = new InfluxClient({ url: again.url, database: 'klaiwatch', auth: {}, timeoutMs: 5000 });
      const devices = rows(await client.query('SELECT count(snmp_up) FROM device'));
      expect(devices[0]!.count).toBe(2 * 39);
    } finally {
      await again.stop();
    }
  });
});
