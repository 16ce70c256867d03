// No InfluxDB point lost on a crash: a real collector process (`klaiwatch
// collector`) polls real snmpsimd agents and fping every 3 s into a real
// influxd and is killed with SIGKILL at seeded random moments, sometimes while
// influxd is frozen (SIGSTOP: writes hang until influx.timeout, batches pile
// up in the spool), and started again each time. At the end every series in
// InfluxDB is counted against the rounds the collector logged as done: each
// such round has exactly one point per series (none lost, none doubled).
// A round cut off by the kill never said it was done; its points may or may
// not be there, and are not counted either way.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { buildSimArea, PROJECT, type SimArea } from '../../../sim/area.ts';
import { startSnmpsim, type Snmpsim } from '../../../sim/snmpsim.ts';
import { startTestInflux, type TestInflux } from '../../helpers/influx.ts';
import { tempDir, freePort, requireBinary } from '../../helpers/peers.ts';
import { prng } from '../../helpers/prng.ts';

const SEED = Number(process.env.KW_CRASH_SEED ?? 14_04);
const KILLS = Number(process.env.KW_CRASH_KILLS ?? 9);
const INTERVAL_MS = 3000;
const DB = 'crash';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let influx: TestInflux;
let dir: ReturnType<typeof tempDir>;
let area: SimArea;
let agents: Snmpsim;
let settingsPath: string;
let spoolDir: string;

beforeAll(async () => {
  await requireBinary('fping', 'fping');
  influx = await startTestInflux('crash');
  dir = tempDir('crash');
  spoolDir = join(dir.path, 'spool');
  area = buildSimArea({
    dir: dir.path,
    influxUrl: influx.server.url,
    database: DB,
    octet: 44,
    schools: 3,
    silent: [],
    interval: `${INTERVAL_MS / 1000}s`,
    httpListen: `127.0.0.1:${await freePort()}`,
  });
  const settings = parse(readFileSync(area.settingsPath, 'utf8')) as Record<string, any>;
  settings.influx = { ...settings.influx, timeout: '2s' };
  settings.log = { level: 'info' };
  settingsPath = join(dir.path, 'crash.yaml');
  writeFileSync(settingsPath, stringify(settings));
  agents = await startSnmpsim({ dir: dir.path, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' });
}, 180_000);

afterAll(async () => {
  influx?.server.process.kill('SIGCONT');
  await agents?.stop();
  await influx?.close();
  dir?.remove();
});

interface Run {
  child: ChildProcess;
  spawnedAt: number;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCollector(): Run {
  const child = spawn(process.execPath, ['bin/klaiwatch.ts', 'collector', '--config', settingsPath], { cwd: PROJECT, stdio: ['ignore', 'ignore', 'pipe'] });
  const run: Run = { child, spawnedAt: Date.now(), stderr: '', exited: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))) };
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (run.stderr.length < 4_000_000) run.stderr += d;
  });
  return run;
}

function logLines(run: Run): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  for (const line of run.stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, any>);
    } catch {
      // the last line, cut by the kill
    }
  }
  return out;
}

async function until(what: string, run: Run, check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms; collector log:\n${run.stderr.slice(-3000)}`);
    await sleep(50);
  }
}

describe('kill -9 of the collector', () => {
  it(`loses no point and doubles none over ${KILLS} kills at random moments (seed ${SEED})`, async () => {
    const rnd = prng(SEED);
    const runs: Run[] = [];
    let frozenKills = 0;
    for (let k = 0; k < KILLS; k++) {
      const run = startCollector();
      runs.push(run);
      await until('collector running', run, () => /"msg":"(collector|klaiwatch) running/.test(run.stderr), 60_000);
      // Some cycles with influxd frozen: its writes hang until the timeout and the spool fills.
      const freeze = rnd() < 0.4;
      if (freeze) {
        influx.server.process.kill('SIGSTOP');
        frozenKills++;
      }
      await sleep(Math.round(rnd() * 2.5 * INTERVAL_MS));
      run.child.kill('SIGKILL');
      expect(await run.exited).toEqual({ code: null, signal: 'SIGKILL' });
      if (freeze) influx.server.process.kill('SIGCONT');
    }
    // The last run ends cleanly once InfluxDB has everything.
    const last = startCollector();
    runs.push(last);
    await until('two rounds after the last restart', last, () => logLines(last).filter((l) => l.msg === 'round done').length >= 2, 60_000);
    last.child.kill('SIGTERM');
    expect((await last.exited).code).toBe(0);

    // Rounds each run said were done: window from its start to its log line.
    interface Window {
      run: number;
      from: number;
      to: number;
      first: boolean;
    }
    const windows: Window[] = [];
    let replays = 0;
    let cut = 0;
    runs.forEach((run, i) => {
      const lines = logLines(run);
      if (lines.some((l) => String(l.msg).startsWith('spool holds batches from an earlier run'))) replays++;
      cut += lines.filter((l) => String(l.msg).startsWith('disk spool: cut a torn tail')).length;
      let prevEnd = run.spawnedAt;
      for (const l of lines.filter((x) => x.msg === 'round done')) {
        const to = Date.parse(l.time);
        // The round began round_ms before it measured itself, and its commit and log line came after: 1.5 s of slack, never before the previous round's end.
        const from = Math.max(prevEnd, to - Number(l.round_ms) - 1500);
        windows.push({ run: i, from, to, first: prevEnd === run.spawnedAt });
        prevEnd = to + 1;
      }
    });
    const kills = runs.length - 1;
    expect(windows.length).toBeGreaterThan(kills);

    // Every series of the rounds, counted per window.
    const measurements = (await influx.query(DB, 'SHOW MEASUREMENTS')).map((r) => String(r.name));
    expect(measurements).toEqual(expect.arrayContaining(['icmp', 'device', 'device_state', 'school_state', 'area_state', 'klaiwatch', 'interface']));
    const everyRound = new Set(['icmp', 'device', 'device_state', 'school_state', 'area_state', 'klaiwatch']);
    const lost: string[] = [];
    const doubled: string[] = [];
    let counted = 0;
    for (const m of measurements) {
      if (m === 'incident') continue; // events, at the time an outage began or ended, not per round
      const res = await influx.client(DB).query(`SELECT * FROM "${m}" GROUP BY *`);
      for (const s of res[0]?.series ?? []) {
        const name = `${m} ${JSON.stringify(s.tags ?? {})}`;
        const times = (s.values ?? []).map((v) => Number(v[0]));
        counted += times.length;
        for (const w of windows) {
          const n = times.filter((t) => t >= w.from && t <= w.to).length;
          if (n > 1) doubled.push(`${name}: ${n} points in the round ending ${new Date(w.to).toISOString()}`);
          // Rates and tables may need a second sample after a restart: their first round may be empty.
          else if (n === 0 && (everyRound.has(m) || !w.first)) lost.push(`${name}: none in the round ending ${new Date(w.to).toISOString()} (run ${w.run})`);
        }
      }
    }
    console.log(
      `crash test: ${kills} kills (${frozenKills} with influxd frozen), ${windows.length} rounds done, ${replays} starts replayed the spool, ${cut} torn tails cut, ${counted} points counted`,
    );
    expect(lost.slice(0, 20)).toEqual([]);
    expect(doubled.slice(0, 20)).toEqual([]);
    // The kills did land while the spool held batches InfluxDB had not taken.
    expect(replays).toBeGreaterThan(0);
  }, 600_000);
});
