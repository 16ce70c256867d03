// The demo: a simulated area on loopback, a local InfluxDB when none answers
// on 127.0.0.1:8086, and the collector polling it all. Run by
// `bash scripts/demo.sh` (which installs what is missing first).
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSimArea, startRouterAgent, DEFAULT_SILENT, PROJECT } from './area.ts';
import { startSnmpsim } from './snmpsim.ts';
import { startMailCatcher } from './mailcatcher.ts';
import { startInfluxd, pingInflux, type Influxd } from './influxd.ts';
import { writeDashboards } from '../dashboards/build.ts';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../collector/log.ts';
import { Collector } from '../collector/collector.ts';
import { startHealthServer } from '../collector/health.ts';
import { execWithServiceFlags, TRAFFIC_V8_FLAGS } from '../collector/runtime.ts';
import { TrafficService } from '../archive/service.ts';
import { generateSigningKey } from '../archive/manifest.ts';
import { udpPayloads } from '../archive/pcap.ts';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';

execWithServiceFlags(TRAFFIC_V8_FLAGS);
const { values } = parseArgs({
  options: {
    rounds: { type: 'string' },
    'influx-port': { type: 'string', default: '8086' },
    http: { type: 'string', default: '127.0.0.1:9273' },
    interval: { type: 'string', default: '30s' },
    'log-level': { type: 'string', default: 'info' },
    data: { type: 'string', default: join(PROJECT, 'data') },
    octet: { type: 'string', default: '20' },
    'syslog-port': { type: 'string', default: '15140' },
    'flow-port': { type: 'string', default: '20550' },
  },
});

const say = (s: string) => process.stdout.write(s + '\n');
const influxPort = Number(values['influx-port']);
const influxUrl = `http://127.0.0.1:${influxPort}`;
let influxd: Influxd | undefined;
const existing = await pingInflux(influxUrl);
if (existing) say(`InfluxDB ${existing} already answers at ${influxUrl}: using it (database klaiwatch).`);
else {
  say(`Starting InfluxDB on ${influxUrl}, data in ${join(values.data!, 'influxdb')} ...`);
  influxd = await startInfluxd(join(values.data!, 'influxdb'), influxPort);
}

// Recordings live under the system temp folder: snmpsimd runs as `nobody`
// when started as root and must be able to read them.
const dir = mkdtempSync(join(tmpdir(), 'klaiwatch-demo-'));
const octet = Number(values.octet);
// One school router has an agent of its own and is watched over SNMP only,
// so that pausing that agent is what a router failing looks like.
const DEMO_ROUTER = '1036090101-router';
const mailDir = join(values.data!, 'mail');
const catcher = await startMailCatcher({
  dir: mailDir,
  onMail: (mail, file) => {
    const to = mail.to && !Array.isArray(mail.to) ? mail.to.text : '';
    say(`mail to ${to}: ${mail.subject}  (${file})`);
  },
});
mkdirSync(values.data!, { recursive: true });
const signingKey = join(values.data!, 'archive-signing.pem');
if (!existsSync(signingKey)) generateSigningKey(signingKey);
const area = buildSimArea({
  dir,
  influxUrl,
  httpListen: values.http,
  interval: values.interval,
  octet,
  silent: [...DEFAULT_SILENT, DEMO_ROUTER],
  snmpOnly: [DEMO_ROUTER],
  extraSettings: {
    // The traffic-log archive, its signing key made for the demo on first run (a real area keeps it on another medium).
    traffic: { dir: join(values.data!, 'traffic'), signing_key: signingKey, syslog: { udp: `127.0.0.1:${values['syslog-port']}`, tcp: `127.0.0.1:${values['syslog-port']}` }, flow: { udp: `127.0.0.1:${values['flow-port']}` } },
    mail: { smtp: { host: '127.0.0.1', port: catcher.port, security: 'none' }, from: 'klaiwatch demo <klaiwatch@example.org>', officer: ['it-officer@example.org'] } },
});
say(`Simulated area: ${area.devices.length} devices, ${area.endpoints.length} SNMP agents on 127.${octet - 1}.0.x and 127.${octet}.x.x port ${area.snmpPort}; silent on purpose: ${DEFAULT_SILENT.join(', ')}`);
say('Starting snmpsimd (it indexes the recordings on first start) ...');
const [agents, routerAgent] = await Promise.all([
  startSnmpsim({ dir, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' }),
  startRouterAgent(join(dir, 'router'), `${area.devices.find((d) => d.id === DEMO_ROUTER)!.address}:${area.snmpPort}`),
]);

const config = loadConfig(area.settingsPath);
const log = createLogger(values['log-level']!);
const collector = new Collector(config, log);
await collector.prepare();
const server = await startHealthServer(config.settings.http.listen, () => collector.health());
const traffic = new TrafficService(config, log, () => collector.clockOffsetMs());
await traffic.start();
// Something to find in the archive: the real log lines and exporters' datagrams of test/fixtures, sent from loopback.
const feed = createSocket('udp4');
const send = (b: Buffer | string, port: string) => new Promise((r) => feed.send(b, Number(port), '127.0.0.1', r));
const fixtures = join(PROJECT, 'test', 'fixtures');
for (const f of readdirSync(join(fixtures, 'logs')).filter((n) => n.endsWith('.log'))) {
  for (const line of readFileSync(join(fixtures, 'logs', f), 'utf8').split('\n').filter(Boolean)) await send(line, values['syslog-port']!);
}
for (const f of ['nfv5', 'template', 'data', 'ipfixprobe-templates', 'ipfixprobe-data']) for (const d of udpPayloads(readFileSync(join(fixtures, 'netflow', `${f}.pcap`)))) await send(d.payload, values['flow-port']!);
feed.close();
const grafanaDir = join(values.data!, 'grafana');
writeDashboards(grafanaDir, config.settings.influx);

say('');
say('klaiwatch demo is running.');
say(`  health:    curl http://${values.http}/healthz`);
say(`  data:      influx -host 127.0.0.1 -port ${influxPort} -database klaiwatch -execute 'SHOW MEASUREMENTS'`);
say(`             influx -host 127.0.0.1 -port ${influxPort} -database klaiwatch -execute 'SELECT * FROM interface WHERE ifname = '"'"'WAN'"'"' ORDER BY time DESC LIMIT 5'`);
say(`  one device: node bin/klaiwatch.ts poll --once --config ${area.settingsPath} --device 1036090101-router --rates`);
say(`  a router fails: kill -STOP ${routerAgent.pid()}   (${DEMO_ROUTER}, โรงเรียนบ้านหนองบัวแดง; after two rounds an e-mail arrives below)`);
say(`  it is back:     kill -CONT ${routerAgent.pid()}   (the recovery e-mail says how long it was out)`);
say(`  dashboards: ${grafanaDir}/dashboards/*.json, Grafana provisioning in ${grafanaDir}/provisioning/`);
say(`  report:    node bin/klaiwatch.ts report --config ${area.settingsPath} --period ${new Date(Date.now() + 7 * 3_600_000).toISOString().slice(0, 7)} --format csv`);
say(`  traffic:   syslog on 127.0.0.1:${values['syslog-port']} (UDP, TCP), flows on UDP ${values['flow-port']}; archive in ${join(values.data!, 'traffic')}`);
say(`             logger --server 127.0.0.1 --port ${values['syslog-port']} --udp -t dhcpd "DHCPACK on 10.36.1.50 to aa:bb:cc:00:11:22 (pc-1) via eth0"`);
say(`             node bin/klaiwatch.ts archive who --config ${area.settingsPath} --ip 10.36.1.50 --at "$(TZ=Asia/Bangkok date +%FT%T)"`);
say(`             node bin/klaiwatch.ts archive query --config ${area.settingsPath} --ip 125.25.69.110`);
say(`             node bin/klaiwatch.ts archive verify --config ${area.settingsPath}`);
say(`  e-mail:    caught on 127.0.0.1:${catcher.port}, kept in ${mailDir}`);
say(`  settings:  ${area.settingsPath}`);
say('  stop:      Ctrl-C');
say('');

const maxRounds = values.rounds ? Number(values.rounds) : Infinity;
let rounds = 0;
let finish!: () => void;
const finished = new Promise<void>((r) => (finish = r));
const origRound = collector.runRound.bind(collector);
collector.runRound = async (...args) => {
  const report = await origRound(...args);
  rounds++;
  say(`round ${rounds}: ${report.devices} devices, ${report.polled} answered SNMP, ${report.failed} failed (${report.results.filter((r) => !r.ok).map((r) => r.device).join(', ') || 'none'}), ${report.icmpHosts - report.icmpDown}/${report.icmpHosts} answer ICMP, ${report.points.length} points, ${Math.round(report.durationMs)} ms`);
  if (rounds >= maxRounds) finish();
  return report;
};
collector.start();
process.once('SIGINT', finish);
process.once('SIGTERM', finish);
await finished;

say('Stopping ...');
server.close();
await traffic.stop();
await collector.stop();
await agents.stop();
await routerAgent.stop();
await catcher.stop();
if (influxd) await influxd.stop();
rmSync(dir, { recursive: true, force: true });
say(`Stopped. Points written: ${collector.writer.stats.written}, spooled: ${collector.writer.stats.spooled}, dropped: ${collector.writer.stats.dropped}.`);
