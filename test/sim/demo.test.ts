// The README's demo, as a user runs it (minus the install step): it starts
// its own InfluxDB, the simulated area, a mail catcher and the real service
// (`klaiwatch run`: supervisor, collector and archive parts); one school
// server is really down (a network namespace, its link down: run as root);
// pausing the demo router's agent brings the Thai e-mail, resuming it the
// recovery e-mail, threaded under the first; Ctrl-C stops it all.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { parse } from 'yaml';
import { join } from 'node:path';
import { freePort, tempDir } from '../helpers/peers.ts';
import { InfluxClient, rows } from '../../stores/influx/client.ts';
import { startInfluxd } from '../../sim/influxd.ts';

const data = tempDir('demo');
afterAll(() => data.remove());

describe('demo options', () => {
  /** node sim/demo.ts with args: its status, output and whether it started anything (the addresses text is printed first of all once it starts). */
  const demo = (args: string[]) => spawnSync(process.execPath, ['sim/demo.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  const STACK = /^\s+at .+:\d+:\d+\)?$/m;

  it('--help prints every option with one line each and starts nothing', () => {
    const r = demo(['--help']);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => /^ {2}--/.test(l));
    for (const o of ['interval', 'rounds', 'http', 'influx-port', 'influx-rpc-port', 'octet', 'snmp-port', 'syslog-port', 'flow-port', 'mail-port', 'data', 'log-level', 'help']) {
      expect(lines.filter((l) => l.startsWith(`  --${o} `) || l === `  --${o}`)).toHaveLength(1);
    }
    for (const l of lines) expect(l).toMatch(/^ {2}--\S+( VALUE)? +\S/);
    expect(r.stdout).not.toMatch(/The demo takes these addresses/);
    expect(r.stderr).toBe('');
  });

  it('an unknown option or a stray argument: one line naming it, the usage, exit 2, no stack, nothing started', () => {
    for (const [args, named] of [[['--bogus'], "Unknown option '--bogus'"], [['--interval', '3s', 'now'], "Unexpected argument 'now'"], [['--octet'], "'--octet <value>' argument missing"]] as const) {
      const r = demo([...args]);
      expect(r.status).toBe(2);
      const lines = r.stderr.split('\n');
      expect(lines[0]).toContain(`demo: `);
      expect(lines[0]).toContain(named);
      expect(r.stderr).toMatch(/^Usage: bash scripts\/demo\.sh \[options\]/m);
      expect(r.stderr).not.toMatch(STACK);
      expect(r.stderr).not.toMatch(/ERR_PARSE_ARGS/);
      expect(r.stdout).toBe('');
    }
  });
});

describe('demo', () => {
  it('runs the real service on the simulated area: a device really down, failing checks and traffic in /healthz, e-mails when a router fails and when it is back (threaded), says where to look, and stops', async () => {
    const influxPort = await freePort();
    const influxRpcPort = await freePort();
    const httpPort = await freePort();
    const mailPort = await freePort();
    const syslogPort = await freePort();
    const flowPort = await freePort();
    // The README's command itself: scripts/demo.sh (its set-up finds everything installed).
    const child = spawn('bash', ['scripts/demo.sh', '--interval', '3s', '--influx-port', String(influxPort), '--influx-rpc-port', String(influxRpcPort), '--mail-port', String(mailPort), '--syslog-port', String(syslogPort), '--flow-port', String(flowPort), '--http', `127.0.0.1:${httpPort}`, '--data', data.path, '--octet', '71', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
      // 1036090106-server is really down (no echo comes back); the two silent on purpose answer ping, not SNMP.
      await waitFor(/round 2: 65 devices, 36 answered SNMP, 2 failed \(1036090119-router, 1036090120-dltv-2\), 63\/64 answer ICMP/, 60_000);
      await waitFor(/mail to ict\.wangchomphu@example\.org: \[klaiwatch\] โรงเรียนบ้านวังชมภู: เครื่องแม่ข่ายใช้งานไม่ได้/, 30_000);
      // /healthz (the API part, with the officer's token: without one it leaves out what names devices): the collector part lists what is wrong, the archive part its traffic.
      const officerToken = () => /^officer (kw_\S+)$/m.exec(readFileSync(/one token per role in (\S+)\)/.exec(out)![1]!, 'utf8'))![1]!;
      type H = { parts: { collector: { problems: { devices_down: { device: string }[]; checks_failing: { device: string; check: string; since: string }[] } }; archive: { status: string; traffic: Record<string, number> } } };
      let h: H | undefined;
      const end = Date.now() + 30_000;
      for (;;) {
        h = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`, { headers: { authorization: `Bearer ${officerToken()}` } })).json()) as H;
        if (h.parts.collector.problems?.checks_failing.some((c) => c.device === '1036090119-router') || Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(h.parts.collector.problems.devices_down.map((d) => d.device)).toEqual(['1036090106-server']);
      expect(h.parts.collector.problems.checks_failing).toEqual(expect.arrayContaining([expect.objectContaining({ device: '1036090119-router', check: 'snmp', since: expect.stringMatching(/^\d{4}-/) })]));
      expect(h.parts.archive.traffic).toBeTypeOf('object');
      // The API lines it printed: the officer's curl answers the area's status; the school's token sees its school only.
      const officerCurl = /^ +(curl -H "Authorization: Bearer \$\(sed -n 's\/\^officer \/\/p' \S+\)" http:\/\/\S+\/v1\/status)$/m.exec(out);
      expect(officerCurl, 'the demo prints the officer\'s curl line').not.toBeNull();
      const status = JSON.parse(execFileSync('sh', ['-c', `${officerCurl![1]} -s`], { encoding: 'utf8' })) as { totals: { schools: number; devices: { total: number; down: number } } };
      expect(status.totals.schools).toBe(21);
      expect(status.totals.devices.total).toBe(65);
      expect(status.totals.devices.down).toBeGreaterThanOrEqual(1);
      const tokens = readFileSync(/one token per role in (\S+)\)/.exec(out)![1]!, 'utf8');
      const school = /^school (kw_\S+)$/m.exec(tokens)![1]!;
      const walled = await fetch(`http://127.0.0.1:${httpPort}/v1/schools/1036090102`, { headers: { authorization: `Bearer ${school}` } });
      expect(walled.status).toBe(403);
      process.kill(pid, 'SIGSTOP');
      await waitFor(/mail to ict\.nongbuadaeng@example\.org: \[klaiwatch\] โรงเรียนบ้านหนองบัวแดง: เราเตอร์ใช้งานไม่ได้/, 30_000);
      await waitFor(/mail to it-officer@example\.org: \[klaiwatch\] โรงเรียนบ้านหนองบัวแดง: เราเตอร์ใช้งานไม่ได้/, 10_000);
      process.kill(pid, 'SIGCONT');
      await waitFor(/mail to ict\.nongbuadaeng@example\.org: \[klaiwatch\] โรงเรียนบ้านหนองบัวแดง: เราเตอร์กลับมาใช้งานได้แล้ว/, 30_000);
      // The archive part's figures reach InfluxDB through the collector part (every 30 s).
      const live = new InfluxClient({ url: `http://127.0.0.1:${influxPort}`, database: 'klaiwatch', auth: {}, timeoutMs: 5000 });
      const until = Date.now() + 75_000;
      while (rows(await live.query('SELECT count(*) FROM traffic').catch(() => [])).length === 0) {
        if (Date.now() > until) throw new Error('no traffic point in InfluxDB 75 s into the demo');
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(new RegExp(`Starting InfluxDB on http://127\\.0\\.0\\.1:${influxPort}`));
    expect(out).toMatch(new RegExp(`health: +curl http://127\\.0\\.0\\.1:${httpPort}/healthz`));
    expect(out).toMatch(/stop: +Ctrl-C/);
    expect(out).toMatch(/Stopped \(klaiwatch run exit code 0\)\. Points written: [1-9]\d*, spooled: 0, dropped: 0/);
    // Every address block and port it takes, said at start as chosen.
    expect(out).toMatch(/SNMP agents: +127\.71\.0\.0\/16 /);
    expect(out).toContain(`InfluxDB:     127.0.0.1:${influxPort}, its RPC service 127.0.0.1:${influxRpcPort}`);
    expect(out).toMatch(new RegExp(`e-mail: +caught on 127\\.0\\.0\\.1:${mailPort},`));
    expect(readFileSync(join(data.path, 'influxdb', 'influxdb.conf'), 'utf8')).toContain(`bind-address = "127.0.0.1:${influxRpcPort}"`);
    // --octet 71 takes 127.71.x.y and nothing else (the office once sat at 127.70.0.x).
    const settings = /settings: +(\S+klaiwatch\.yaml)/.exec(out)![1]!;
    const addresses = ['office.yaml', 'schools.yaml'].flatMap((f) => {
      const inv = parse(readFileSync(join(settings, '..', f), 'utf8')) as { office?: { devices: { address: string }[] }; schools?: { devices: { address: string }[] }[] };
      return [...(inv.office?.devices ?? []), ...(inv.schools ?? []).flatMap((s) => s.devices)].map((d) => d.address);
    });
    expect(addresses).toHaveLength(65);
    // ... but for the device really down, in the network namespace it announced.
    expect(addresses.filter((a) => !a.startsWith('127.71.'))).toEqual(['10.254.71.2']);
    expect(out).toMatch(/down device: +10\.254\.71\.0\/30 in network namespace kwdemo71/);
    // The commands it printed work after it stopped: its settings are kept in the data folder.
    expect(settings.startsWith(data.path)).toBe(true);
    const printed = (re: RegExp) => re.exec(out)![1]!;
    const verify = printed(/^ +(\.\/klaiwatch archive verify --config \S+)$/m);
    expect(execFileSync('sh', ['-c', verify], { encoding: 'utf8' })).toMatch(/\S/);
    // Each mail is kept as a file, Thai intact.
    const mails = readdirSync(join(data.path, 'mail'));
    expect(mails.length).toBeGreaterThanOrEqual(3);
    const kept = mails.sort().map((f) => readFileSync(join(data.path, 'mail', f), 'utf8'));
    const toTeacher = kept.find((m) => /^To: ict\.nongbuadaeng@example\.org/m.test(m))!;
    expect(toTeacher).toMatch(/^Subject: =\?UTF-8\?/m);
    // The recovery to the school answers the failure's mail.
    const parsed = await Promise.all(mails.map((f) => simpleParser(readFileSync(join(data.path, 'mail', f)))));
    const toSchool = parsed.filter((m) => m.to && !Array.isArray(m.to) && m.to.text === 'ict.nongbuadaeng@example.org');
    const failure = toSchool.find((m) => m.subject?.endsWith('เราเตอร์ใช้งานไม่ได้'))!;
    const recovery = toSchool.find((m) => m.subject?.endsWith('เราเตอร์กลับมาใช้งานได้แล้ว'))!;
    expect(recovery.inReplyTo).toBe(failure.messageId);
    expect(recovery.text).toMatch(/ใช้งานไม่ได้ตั้งแต่ .+ ถึง .+ รวม /);

    // What it wrote stays in its data folder.
    const again = await startInfluxd(`${data.path}/influxdb`, influxPort);
    try {
      const client = new InfluxClient({ url: again.url, database: 'klaiwatch', auth: {}, timeoutMs: 5000 });
      const down = rows(await client.query(`SELECT count(state) FROM device_state WHERE device = '1036090101-router' AND state = 'down'`));
      expect(down[0]!.count).toBeGreaterThanOrEqual(1);
      const really = rows(await client.query(`SELECT count(state) FROM device_state WHERE device = '1036090106-server' AND state = 'down'`));
      expect(really[0]!.count).toBeGreaterThanOrEqual(1);
      // The archive's figures, written by the collector part (the supervisor passes them on).
      const traffic = rows(await client.query('SELECT count(*) FROM traffic'));
      expect(traffic.length).toBe(1);
      const report = printed(/report: +(\.\/klaiwatch report --config \S+ --period \S+ --format csv)$/m);
      expect(execFileSync('sh', ['-c', report], { encoding: 'utf8' })).toContain('1036090101');
    } finally {
      await again.stop();
    }
  }, 240_000);
});
