// The collector keeps its own record of what it watched: real rounds (real
// fping to 127.0.0.1) write the device's first round and the runs of rounds
// into the state database; a pause of more than one interval is a gap; the
// report, read from that database, counts exactly the runs as observed.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import { makeReport } from '../../report/report.ts';
import { requireBinary, tempDir } from '../helpers/peers.ts';

const dir = tempDir('report-observed');
let config: Config;
let collector: Collector;

beforeAll(async () => {
  await requireBinary('fping', 'fping');
  writeFileSync(
    join(dir.path, 'schools.yaml'),
    ['schools:', '  - code: "100"', '    name_th: โรงเรียนบ้านทดสอบ', '    district: ภูเขียว', '    devices:', '      - { id: r, kind: router, address: 127.0.0.1, profile: icmp-only }', ''].join('\n'),
  );
  writeFileSync(
    join(dir.path, 'area.yaml'),
    ['area: { code: t, name_th: สพป.ทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9" }', 'polling: { interval: 2s }', 'icmp: { count: 1, period: 100ms, timeout: 300ms }', 'alerts: { state_db: state.sqlite }', ''].join('\n'),
  );
  config = loadConfig(join(dir.path, 'area.yaml'));
  collector = new Collector(config, pino({ level: 'silent' }), { write: false });
  await collector.prepare({ influx: false });
});

afterAll(async () => {
  await collector?.stop();
  dir.remove();
});

describe('the collector records what it watched', () => {
  it('first round, runs of rounds and a gap; the report counts the runs', async () => {
    const round = () => collector.runRound(config.devices, 2000, { jitter: false });
    const t0 = Date.now();
    await round();
    await round(); // at once: the same run
    const t1 = Date.now();
    await new Promise((r) => setTimeout(r, 5000)); // more than one interval after the run's end: a gap
    await round();
    const t2 = Date.now();
    const m = collector.store!.monitoring();
    const first = m.firstSeen.get('r')!;
    expect(first).toBeGreaterThanOrEqual(t0);
    expect(first).toBeLessThanOrEqual(t1);
    expect(m.runs).toHaveLength(2);
    expect(m.runs[0]![0]).toBe(first);
    // Each round covers one interval (2 s) from its judgement; rounds up to one interval late still join the run (generous on a loaded machine).
    expect(m.runs[0]![1]).toBeGreaterThan(first + 2000 - 1);
    expect(m.runs[0]![1]).toBeLessThanOrEqual(t1 + 2000);
    expect(m.runs[1]![0]).toBeGreaterThanOrEqual(m.runs[0]![1] + 2000);
    expect(m.runs[1]![1] - m.runs[1]![0]).toBe(2000);
    expect(m.runs[1]![1]).toBeLessThanOrEqual(t2 + 2000);

    const now = m.runs[1]![1] + 5000;
    const day = new Date(t0 + 7 * 3_600_000).toISOString().slice(0, 10);
    const { report, warnings } = await makeReport(config, { period: `${day}..${day}`, now, noInflux: true });
    expect(warnings).toEqual([]);
    const r = report.devices.find((d) => d.device === 'r')!;
    const watched = (m.runs[0]![1] - m.runs[0]![0] + m.runs[1]![1] - m.runs[1]![0]) / 1000;
    expect(r.observedS).toBe(watched);
    expect(r.monitoredFrom).toBe(first);
    expect(r.unmonitoredS).toBe(r.scheduledS - watched);
    expect(r.availabilityPct).toBe(100); // 127.0.0.1 answered every echo
  }, 60_000);
});
