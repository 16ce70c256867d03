// The demo: a simulated area on loopback, a local InfluxDB when none answers
// on 127.0.0.1:8086, and the real service, `klaiwatch run` (the supervisor
// with its collector, API and traffic-archive parts, GET /healthz over all), on
// it. One school server is really down (a network namespace whose link is
// down: nothing answers its address), two devices are silent on purpose
// (they answer ping, their SNMP agent does not), and one router has an agent
// of its own to pause. Run by `bash scripts/demo.sh` (which installs what is
// missing first).
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, relative, isAbsolute } from 'node:path';
import { parse as parseYaml, stringify as yamlText } from 'yaml';
import { buildSimArea, startRouterAgent, DEFAULT_SILENT, PROJECT } from './area.ts';
import { startSnmpsim } from './snmpsim.ts';
import { startMailCatcher } from './mailcatcher.ts';
import { startInfluxd, pingInflux, type Influxd } from './influxd.ts';
import { writeDashboards } from '../dashboards/build.ts';
import { areaOf } from '../dashboards/panels.ts';
import { loadConfig } from '../config/load.ts';
import { generateSigningKey } from '../archive/manifest.ts';
import { udpPayloads } from '../archive/pcap.ts';
import { createSocket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { unpluggedHost } from './area.ts';
import { TokenStore } from '../api/tokens.ts';

/** The demo's options, each with what it chooses (--help prints them). */
const OPTIONS = {
  interval: { type: 'string', default: '30s', help: 'how often the devices are polled' },
  rounds: { type: 'string', help: 'stop after N polling rounds (default: run until Ctrl-C)' },
  http: { type: 'string', default: '127.0.0.1:9273', help: 'the API, its /docs, the auditor pages and GET /healthz (HOST:PORT)' },
  'influx-port': { type: 'string', default: '8086', help: 'InfluxDB on 127.0.0.1 (one is started when none answers)' },
  'influx-rpc-port': { type: 'string', help: "the started InfluxDB's RPC service (default: the InfluxDB port + 1)" },
  octet: { type: 'string', default: '20', help: 'the simulated area lives in 127.N.0.0/16 (and network namespace kwdemoN)' },
  'snmp-port': { type: 'string', default: '1161', help: 'UDP port of the simulated SNMP agents' },
  'syslog-port': { type: 'string', default: '15140', help: 'syslog receiver on 127.0.0.1 (UDP and TCP)' },
  'flow-port': { type: 'string', default: '20550', help: 'NetFlow/IPFIX receiver on 127.0.0.1 (UDP)' },
  'mail-port': { type: 'string', default: '0', help: 'the mail catcher (SMTP) on 127.0.0.1; 0 chooses a free port' },
  data: { type: 'string', default: join(PROJECT, 'data'), help: 'where the settings, InfluxDB data and archive go' },
  'log-level': { type: 'string', default: 'info', help: "the service's log level (silent, error, warn, info, debug)" },
  help: { type: 'boolean', short: 'h', help: 'this text' },
} as const;

function usage(): string {
  const names = Object.entries(OPTIONS).map(([k, o]) => `  --${k}${o.type === 'string' ? ' VALUE' : ''}`);
  const width = Math.max(...names.map((n) => n.length));
  return [
    'Usage: bash scripts/demo.sh [options]   (or node sim/demo.ts [options])',
    'A simulated area on loopback, a local InfluxDB and the real service; Ctrl-C stops it all.',
    '',
    ...Object.values(OPTIONS).map((o, i) => `${names[i]!.padEnd(width)}  ${o.help}${'default' in o ? ` (default ${o.default})` : ''}`),
  ].join('\n');
}

// Parsed before anything starts: --help and a mistyped option end here, without a stack.
let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>;
try {
  parsed = parseArgs({ options: OPTIONS, strict: true, allowPositionals: false });
} catch (err) {
  const e = err as Error & { code?: string };
  if (!e.code?.startsWith('ERR_PARSE_ARGS')) throw err;
  // Node's message ("Unknown option '--bogus'. To specify a positional argument starting with a '-', ..."): its first sentence names what is wrong.
  const first = e.message.split('\n')[0]!.split(/(?<=\.) /)[0]!;
  process.stderr.write(`demo: ${first}\n\n${usage()}\n`);
  process.exit(2);
}
const { values } = parsed;
if (values.help) {
  process.stdout.write(usage() + '\n');
  process.exit(0);
}

const say = (s: string) => process.stdout.write(s + '\n');
/** A whole number in [min, max] from an option, or one plain line and exit 2. */
const whole = (name: string, min: number, max: number): number => {
  const v = values[name as keyof typeof values] as string;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    process.stderr.write(`demo: --${name} ${JSON.stringify(v)}: must be a whole number from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
};
const influxPort = whole('influx-port', 1, 65534);
if (values['influx-rpc-port'] === undefined) values['influx-rpc-port'] = String(influxPort + 1);
const influxRpcPort = whole('influx-rpc-port', 1, 65535);
const octet = whole('octet', 1, 254);
const snmpPort = whole('snmp-port', 1, 65535);
const syslogPort = whole('syslog-port', 1, 65535);
const flowPort = whole('flow-port', 1, 65535);
const mailPort = whole('mail-port', 0, 65535);
const data = resolve(values.data!);
// Paths and commands as the operator types them from the repository's folder.
const shown = (p: string) => {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
};
const klaiwatch = resolve(process.cwd()) === PROJECT ? './klaiwatch' : join(PROJECT, 'klaiwatch');
say('The demo takes these addresses and ports (each option in brackets chooses another):');
say(`  SNMP agents:  127.${octet}.0.0/16 (office 127.${octet}.0.x, school n at 127.${octet}.n.x), UDP port ${snmpPort}  [--octet N, --snmp-port P]`);
say(`  InfluxDB:     127.0.0.1:${influxPort}, its RPC service 127.0.0.1:${influxRpcPort}  [--influx-port P, --influx-rpc-port P]`);
say(`  API, health:  ${values.http}  [--http HOST:PORT]`);
say(`  traffic logs: syslog 127.0.0.1:${syslogPort} (UDP and TCP), flows 127.0.0.1:${flowPort} (UDP)  [--syslog-port P, --flow-port P]`);
say(`  down device:  10.254.${octet}.0/30 in network namespace kwdemo${octet} (root only; the same --octet N)`);
say(`  mail catcher: 127.0.0.1:${mailPort === 0 ? 'a free port, said below' : mailPort} (SMTP)  [--mail-port P]`);
say(`  files:        ${shown(data)}  [--data DIR]`);
const influxUrl = `http://127.0.0.1:${influxPort}`;
let influxd: Influxd | undefined;
const existing = await pingInflux(influxUrl);
if (existing) say(`InfluxDB ${existing} already answers at ${influxUrl}: using it (database klaiwatch).`);
else {
  say(`Starting InfluxDB on ${influxUrl}, data in ${join(data, 'influxdb')} ...`);
  influxd = await startInfluxd(join(data, 'influxdb'), influxPort, '127.0.0.1', influxRpcPort);
}

// Recordings live under the system temp folder: snmpsimd runs as `nobody`
// when started as root and must be able to read them.
// They are made again at every start; the settings are kept under the data
// folder (below), so that the commands printed work after the demo stopped.
const dir = mkdtempSync(join(tmpdir(), 'klaiwatch-demo-'));
// One school router has an agent of its own and is watched over SNMP only,
// so that pausing that agent is what a router failing looks like.
const DEMO_ROUTER = '1036090101-router';
// One school server really down: its address is in a network namespace whose
// link is down, so nothing answers it (on loopback every 127.x answers).
const DOWN_DEVICE = '1036090106-server';
let downHost: ReturnType<typeof unpluggedHost> | undefined;
try {
  downHost = unpluggedHost(octet);
  downHost.unplug();
} catch (err) {
  say(`(no device really down in this run: ${(err as Error).message.split('\n')[0]})`);
}
const mailDir = join(data, 'mail');
const catcher = await startMailCatcher({
  dir: mailDir,
  port: mailPort,
  onMail: (mail, file) => {
    const to = mail.to && !Array.isArray(mail.to) ? mail.to.text : '';
    say(`mail to ${to}: ${mail.subject}  (${file})`);
  },
});
mkdirSync(data, { recursive: true });
const signingKey = join(data, 'archive-signing.pem');
if (!existsSync(signingKey)) generateSigningKey(signingKey);
const area = buildSimArea({
  dir,
  influxUrl,
  httpListen: values.http,
  interval: values.interval,
  octet,
  snmpPort,
  silent: [...DEFAULT_SILENT, DEMO_ROUTER],
  snmpOnly: [DEMO_ROUTER],
  ...(downHost ? { moved: { [DOWN_DEVICE]: downHost.address } } : {}),
  extraSettings: {
    // The traffic-log archive, its signing key made for the demo on first run (a real area keeps it on another medium).
    traffic: { dir: join(data, 'traffic'), signing_key: signingKey, syslog: { udp: `127.0.0.1:${syslogPort}`, tcp: `127.0.0.1:${syslogPort}` }, flow: { udp: `127.0.0.1:${flowPort}` } },
    mail: { smtp: { host: '127.0.0.1', port: catcher.port, security: 'none' }, from: 'klaiwatch demo <klaiwatch@example.org>', officer: ['it-officer@example.org'] } },
});
say(`Simulated area: ${area.devices.length} devices, ${area.endpoints.length} SNMP agents on 127.${octet}.x.x port ${area.snmpPort}`);
say(`  silent on purpose: ${DEFAULT_SILENT.join(', ')} answer ping but their SNMP agent does not: they stay up, and their "snmp" check fails (an e-mail to the officer only, listed in /healthz)`);
if (downHost) say(`  really down: ${DOWN_DEVICE} at ${downHost.address} (network namespace kwdemo${octet}, its link down): after two rounds it is down, an e-mail to its school and the officer`);
// The settings and inventory, kept in the data folder with its spool and state database.
const settingsDir = join(data, 'demo');
mkdirSync(settingsDir, { recursive: true });
for (const f of ['office.yaml', 'schools.yaml']) copyFileSync(join(dir, f), join(settingsDir, f));
const simSettings = parseYaml(readFileSync(area.settingsPath, 'utf8')) as Record<string, Record<string, unknown>>;
simSettings.spool = { ...simSettings.spool, dir: join(data, 'spool') };
simSettings.alerts = { ...simSettings.alerts, state_db: join(data, 'state.sqlite') };
// The service logs JSON lines; the demo reads them (rounds, failed polls) and shows what --log-level asks for.
simSettings.log = { level: 'info' };
simSettings.api = { tokens_db: join(data, 'api.sqlite') };
const settingsPath = join(settingsDir, 'klaiwatch.yaml');
writeFileSync(settingsPath, '# The demo\'s settings (sim/demo.ts): the example area on loopback. Kept after the demo stops.\n' + yamlText(simSettings, { lineWidth: 0 }));
const settingsShown = shown(settingsPath);
say('Starting snmpsimd (it indexes the recordings on first start) ...');
const [agents, routerAgent] = await Promise.all([
  startSnmpsim({ dir, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' }),
  startRouterAgent(join(dir, 'router'), `${area.devices.find((d) => d.id === DEMO_ROUTER)!.address}:${area.snmpPort}`),
]);

const config = loadConfig(settingsPath);
// One API token per role for the demo (a real area makes them with `klaiwatch token create`): the earlier
// demo's are revoked, the new ones kept in a file only this account can read, for the curl lines below.
const tokensFile = join(data, 'demo-tokens.txt');
{
  const store = new TokenStore(join(data, 'api.sqlite'));
  for (const t of store.list()) if (t.name.startsWith('demo: ') && t.revokedAt === null) store.revoke(t.id);
  const made = (['officer', 'auditor', 'school', 'viewer'] as const).map((role) => {
    const { token } = store.create({ role, name: `demo: ${role}`, ...(role === 'school' ? { school: '1036090101' } : {}), expiresAt: Date.now() + 30 * 86_400_000 });
    return `${role} ${token}`;
  });
  store.close();
  writeFileSync(tokensFile, made.join('\n') + '\n', { mode: 0o600 });
}
const icmpHosts = new Set(config.devices.filter((d) => d.icmp).map((d) => d.address)).size;
// The real service: `klaiwatch run`, the supervisor and its parts (collector; archive: traffic is set).
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
const showLevel = LEVELS[values['log-level']!] ?? 30;
const service = spawn(join(PROJECT, 'klaiwatch'), ['run', '--config', settingsPath], { stdio: ['ignore', 'pipe', 'pipe'] });
const serviceExited = new Promise<number | null>((r) => service.once('exit', (code) => r(code)));
let rounds = 0;
let failedThisRound: string[] = [];
let onRound: (() => void) | undefined;
/** One log line of the service: shown when --log-level asks for it; rounds and failed polls are counted. */
const serviceLine = (line: string) => {
  let rec: { level?: number; msg?: string; device?: string; devices?: number; polled?: number; failed?: number; icmp_down?: number; round_ms?: number };
  try {
    rec = JSON.parse(line) as typeof rec;
  } catch {
    if (line.trim()) process.stderr.write(`klaiwatch: ${line.slice(0, 2000)}\n`);
    return;
  }
  // The API's request lines (two per request, /healthz every round) only when --log-level debug asks for them.
  const requestLine = rec.msg === 'incoming request' || rec.msg === 'request completed';
  if ((rec.level ?? 30) >= showLevel && (!requestLine || showLevel <= 20)) process.stderr.write(line.slice(0, 4000) + '\n');
  if (rec.msg === 'poll failed' && rec.device && failedThisRound.length < 1000) failedThisRound.push(rec.device);
  if (rec.msg === 'round done') {
    rounds++;
    const failed = [...new Set(failedThisRound)].sort();
    failedThisRound = [];
    say(`round ${rounds}: ${rec.devices} devices, ${rec.polled} answered SNMP, ${rec.failed} failed (${failed.join(', ') || 'none'}), ${icmpHosts - (rec.icmp_down ?? 0)}/${icmpHosts} answer ICMP, ${rec.round_ms} ms`);
    onRound?.();
  }
};
createInterface({ input: service.stdout! }).on('line', serviceLine);
createInterface({ input: service.stderr! }).on('line', serviceLine);
const healthUrl = `http://${values.http}/healthz`;
type Health = { status?: string; parts?: Record<string, { status?: string; influx?: { points_written?: number; points_spooled?: number; points_dropped?: number } }> };
const health = async (): Promise<Health | undefined> => {
  try {
    return (await (await fetch(healthUrl, { signal: AbortSignal.timeout(2000) })).json()) as Health;
  } catch {
    return undefined;
  }
};
// The archive part listens once it reports itself running; then the feed goes in.
{
  const end = Date.now() + 60_000;
  for (;;) {
    const h = await health();
    if (h?.parts?.archive?.status && h.parts.archive.status !== 'starting' && h.parts.collector?.status !== 'starting') break;
    if (Date.now() > end || service.exitCode !== null) {
      process.stderr.write(`demo: klaiwatch run did not come up within 60 s (${healthUrl}: ${JSON.stringify(h ?? 'no answer')})\n`);
      service.kill('SIGTERM');
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
// Something to find in the archive: the real log lines and exporters' datagrams of test/fixtures, sent from loopback.
const feed = createSocket('udp4');
const send = (b: Buffer | string, port: number) => new Promise((r) => feed.send(b, port, '127.0.0.1', r));
const fixtures = join(PROJECT, 'test', 'fixtures');
for (const f of readdirSync(join(fixtures, 'logs')).filter((n) => n.endsWith('.log'))) {
  for (const line of readFileSync(join(fixtures, 'logs', f), 'utf8').split('\n').filter(Boolean)) await send(line, syslogPort);
}
for (const f of ['nfv5', 'template', 'data', 'ipfixprobe-templates', 'ipfixprobe-data']) for (const d of udpPayloads(readFileSync(join(fixtures, 'netflow', `${f}.pcap`)))) await send(d.payload, flowPort);
feed.close();
const grafanaDir = join(data, 'grafana');
writeDashboards(grafanaDir, config.settings.influx, areaOf(config));

say('');
say('klaiwatch demo is running.');
say(`  service:   ${klaiwatch} run --config ${settingsShown}   (pid ${service.pid}: the supervisor, its collector, archive and API parts)`);
say(`  health:    curl http://${values.http}/healthz   (problems: devices down, failing checks; parts.collector, parts.archive.traffic)`);
const tok = (role: string) => `"Authorization: Bearer $(sed -n 's/^${role} //p' ${shown(tokensFile)})"`;
say(`  API:       http://${values.http}/docs   (OpenAPI; one token per role in ${shown(tokensFile)})`);
say(`             curl -H ${tok('officer')} http://${values.http}/v1/status`);
say(`             curl -H ${tok('school')} http://${values.http}/v1/incidents   (school 1036090101 only)`);
say(`             curl -H ${tok('viewer')} 'http://${values.http}/v1/reports?period=${new Date(Date.now() + 7 * 3_600_000).toISOString().slice(0, 7)}&format=csv'`);
say(`  auditor:   http://${values.http}/auditor/login   (paste the auditor token of ${shown(tokensFile)}; Thai pages: search, who had an address, verify, evidence)`);
say(`  data:      influx -host 127.0.0.1 -port ${influxPort} -database klaiwatch -execute 'SHOW MEASUREMENTS'`);
say(`             influx -host 127.0.0.1 -port ${influxPort} -database klaiwatch -execute 'SELECT * FROM interface WHERE ifname = '"'"'WAN'"'"' ORDER BY time DESC LIMIT 5'`);
say(`  one device: ${klaiwatch} poll --once --config ${settingsShown} --device 1036090101-router --rates`);
say(`  a router fails: kill -STOP ${routerAgent.pid()}   (${DEMO_ROUTER}, โรงเรียนบ้านหนองบัวแดง; after two rounds an e-mail arrives below)`);
say(`  it is back:     kill -CONT ${routerAgent.pid()}   (the recovery e-mail says from when to when, and answers the first one)`);
if (downHost) say(`  ${DOWN_DEVICE} back: ip netns exec kwdemo${octet} ip link set kwd${octet}b up`);
say(`  dashboards: ${shown(grafanaDir)}/dashboards/*.json, Grafana provisioning in ${shown(grafanaDir)}/provisioning/`);
say(`  report:    ${klaiwatch} report --config ${settingsShown} --period ${new Date(Date.now() + 7 * 3_600_000).toISOString().slice(0, 7)} --format csv`);
say(`  traffic:   syslog on 127.0.0.1:${syslogPort} (UDP, TCP), flows on UDP ${flowPort}; archive in ${shown(join(data, 'traffic'))}`);
say(`             logger --server 127.0.0.1 --port ${syslogPort} --udp -t dhcpd "DHCPACK on 10.36.1.50 to aa:bb:cc:00:11:22 (pc-1) via eth0"`);
say(`             ${klaiwatch} archive who --config ${settingsShown} --ip 10.36.1.50 --at "$(TZ=Asia/Bangkok date +%FT%T)"`);
say(`             ${klaiwatch} archive query --config ${settingsShown} --ip 125.25.69.110`);
say(`             ${klaiwatch} archive verify --config ${settingsShown}`);
say(`  e-mail:    caught on 127.0.0.1:${catcher.port}, kept in ${shown(mailDir)}`);
say(`  settings:  ${settingsShown} (kept when the demo stops: the report and archive commands above work then too)`);
say('  stop:      Ctrl-C');
say('');

const maxRounds = values.rounds ? Number(values.rounds) : Infinity;
let finish!: () => void;
const finished = new Promise<void>((r) => (finish = r));
// The collector part's writer figures, kept from its health report after each round: at Ctrl-C the
// terminal signals the service too, so /healthz may no longer answer when the demo asks at its stop.
type WriterFigures = { points_written?: number; points_spooled?: number; points_dropped?: number };
let lastWriter: { w: WriterFigures; at: number } | undefined;
const keepWriter = (h: Health | undefined) => {
  const w = h?.parts?.collector?.influx;
  if (w && typeof w.points_written === 'number') lastWriter = { w, at: Date.now() };
};
onRound = () => {
  void health().then(keepWriter);
  if (rounds >= maxRounds) finish();
};
process.once('SIGINT', finish);
process.once('SIGTERM', finish);
void serviceExited.then((code) => {
  say(`klaiwatch run exited (code ${code})`);
  finish();
});
await finished;

say('Stopping ...');
keepWriter(await health());
service.kill('SIGTERM');
const code = await serviceExited;
await agents.stop();
await routerAgent.stop();
await catcher.stop();
if (influxd) await influxd.stop();
downHost?.remove();
rmSync(dir, { recursive: true, force: true }); // the recordings; the settings stay in the data folder
const n = (v: number | undefined) => (typeof v === 'number' ? String(v) : 'not known');
say(
  lastWriter
    ? `Stopped (klaiwatch run exit code ${code}). Points written: ${n(lastWriter.w.points_written)}, spooled: ${n(lastWriter.w.points_spooled)}, dropped: ${n(lastWriter.w.points_dropped)} (at the collector part's last health report, ${Math.max(0, Math.round((Date.now() - lastWriter.at) / 1000))} s before this line).`
    : `Stopped (klaiwatch run exit code ${code}). Points written, spooled, dropped: not known (the collector part had stopped before it gave a health report).`,
);
say(`Settings kept: ${settingsShown}`);
