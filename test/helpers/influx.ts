import { startInfluxd, type Influxd } from '../../sim/influxd.ts';
import { InfluxClient, rows } from '../../stores/influx/client.ts';
import { freePort, requireBinary, tempDir } from './peers.ts';

export interface TestInflux {
  server: Influxd;
  client(database: string): InfluxClient;
  query(database: string, q: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export async function startTestInflux(name: string): Promise<TestInflux> {
  await requireBinary('influxd', 'influxdb');
  const dir = tempDir(`influx-${name}`);
  const server = await startInfluxd(dir.path, await freePort());
  const client = (database: string) => new InfluxClient({ url: server.url, database, auth: {}, timeoutMs: 5000 });
  return {
    server,
    client,
    query: async (database, q) => rows(await client(database).query(q)),
    close: async () => {
      await server.stop();
      dir.remove();
    },
  };
}
