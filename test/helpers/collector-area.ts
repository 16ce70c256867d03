// A real collector (in this process) on the first schools of the simulated
// area: snmpsimd, fping, a real InfluxDB, and the state database opened by a
// second connection as the API opens it. A router made silent and watched
// over SNMP only is down after a few rounds.
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import pino from 'pino';
import { buildSimArea, type SimArea } from '../../sim/area.ts';
import { startSnmpsim, type Snmpsim } from '../../sim/snmpsim.ts';
import { loadConfig, type Config } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import { startTestInflux, type TestInflux } from './influx.ts';
import { requireBinary, tempDir } from './peers.ts';

export interface CollectorArea {
  influx: TestInflux;
  dir: ReturnType<typeof tempDir>;
  area: SimArea;
  config: Config;
  collector: Collector;
  /** Another connection to the collector's state database (the API's). */
  api: DatabaseSync;
  close(): Promise<void>;
}

export async function startCollectorArea(o: { octet: number; name: string; schools: number; downRouter: string }): Promise<CollectorArea> {
  await requireBinary('fping', 'fping');
  const influx = await startTestInflux(`${o.name}${o.octet}`);
  const dir = tempDir(`${o.name}-area`);
  let agents: Snmpsim | undefined;
  let collector: Collector | undefined;
  try {
    const area = buildSimArea({ dir: dir.path, influxUrl: influx.server.url, database: o.name, octet: o.octet, schools: o.schools, silent: [o.downRouter], snmpOnly: [o.downRouter] });
    agents = await startSnmpsim({ dir: dir.path, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' });
    const config = loadConfig(area.settingsPath);
    collector = new Collector(config, pino({ level: 'silent' }));
    await collector.prepare();
    const api = new DatabaseSync(join(dir.path, 'state.sqlite'));
    api.exec('PRAGMA busy_timeout = 5000');
    const c = collector;
    const a = agents;
    return {
      influx,
      dir,
      area,
      config,
      collector: c,
      api,
      async close() {
        api.close();
        await c.stop();
        await a.stop();
        await influx.close();
        dir.remove();
      },
    };
  } catch (err) {
    await collector?.stop().catch(() => undefined);
    await agents?.stop().catch(() => undefined);
    await influx.close();
    dir.remove();
    throw err;
  }
}
