// bench/spool: what the outbox spool costs at the default intervals. The
// simulated area (65 devices, snmpsimd, fping) polled by the collector
// in-process into a real influxd, with the settings' defaults for polling
// (60 s, jitter 0.1), ICMP (3 probes 1 s apart) and InfluxDB (batch 5,000,
// flush 1 s); counts the spool's appends (one fdatasync each) and times them.
//
//   node bench/spool/run.ts [--minutes 3] [--interval 60s]
import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import pino from 'pino';
import { buildSimArea } from '../../sim/area.ts';
import { startSnmpsim } from '../../sim/snmpsim.ts';
import { startInfluxd } from '../../sim/influxd.ts';
import { loadConfig } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import type { Spool } from '../../collector/influx/spool.ts';
import { freePort, tempDir } from '../../test/helpers/peers.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '3' }, interval: { type: 'string', default: '60s' } } });
const minutes = Number(values.minutes);
const dir = tempDir('bench-spool');
const influxd = await startInfluxd(join(dir.path, 'influx'), await freePort());
const area = buildSimArea({ dir: dir.path, influxUrl: influxd.url, database: 'bench', octet: 46, httpListen: `127.0.0.1:${await freePort()}` });
const settings = parse(readFileSync(area.settingsPath, 'utf8')) as Record<string, any>;
// The defaults, not the tests' short timeouts.
settings.influx = { url: influxd.url, database: 'bench' };
settings.polling = { interval: values.interval };
delete settings.icmp;
writeFileSync(area.settingsPath, stringify(settings));
const agents = await startSnmpsim({ dir: dir.path, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' });
const config = loadConfig(area.settingsPath);
const collector = new Collector(config, pino({ level: 'silent' }));
await collector.prepare();
const spool = (collector.writer as unknown as { spool: Spool }).spool;
const append = spool.append.bind(spool);
const times: number[] = [];
let lines = 0;
spool.append = async (batches) => {
  const t = performance.now();
  const r = await append(batches);
  times.push(performance.now() - t);
  lines += batches.reduce((n, b) => n + b.length, 0);
  return r;
};
const t0 = Date.now();
collector.start();
await new Promise((r) => setTimeout(r, minutes * 60_000));
await collector.stop();
const elapsed = (Date.now() - t0) / 60_000;
times.sort((a, b) => a - b);
const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
console.log(`${config.devices.length} devices, interval ${values.interval}, flush_interval ${config.settings.influx.flush_interval} ms, ${elapsed.toFixed(2)} min`);
console.log(`spool appends (one fdatasync each): ${times.length}, ${(times.length / elapsed).toFixed(1)} a minute; ${(lines / times.length).toFixed(0)} lines an append`);
console.log(`append+fdatasync ms: p50 ${q(0.5)}, p99 ${q(0.99)}, max ${times.at(-1)!.toFixed(2)}; written ${collector.writer.stats.written}, dropped ${collector.writer.stats.dropped}`);
await agents.stop();
await influxd.stop();
dir.remove();
