// snmpsimd serving the simulated recordings for one test file, on its own
// loopback address, with whatever extra recordings the file makes.
import { join } from 'node:path';
import { recordings } from '../../sim/area.ts';
import { startSnmpsim, writeRecording, type Snmpsim, type SnmpsimOptions } from '../../sim/snmpsim.ts';
import { requireBinary, tempDir } from './peers.ts';

export interface TestAgents {
  agents: Snmpsim;
  address: string;
  port: number;
  dir: string;
  close(): Promise<void>;
}

export async function startTestAgents(address: string, extra: Record<string, string> = {}, opts: Partial<SnmpsimOptions> = {}): Promise<TestAgents> {
  await requireBinary('snmpsimd', 'snmpsim');
  const dir = tempDir('agents');
  const dataDir = join(dir.path, 'recordings');
  for (const [name, text] of Object.entries({ ...recordings(), ...extra })) writeRecording(dataDir, name, text);
  const port = 1161;
  const agents = await startSnmpsim({ dir: dir.path, dataDir, endpoints: [`${address}:${port}`], probeCommunity: 'router', ...opts });
  return {
    agents,
    address,
    port,
    dir: dir.path,
    close: async () => {
      await agents.stop();
      dir.remove();
    },
  };
}
