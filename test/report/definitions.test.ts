// One question, one answer: the evaluation dashboard's incident and MTTR
// panels (their real InfluxQL, run against a real InfluxDB 1.6) and the
// report (computeReport) count the same incidents the same way. A school has
// an outage, a failed check and a device unreachable behind its parent: the
// dashboard used to count the check as an outage (its filter was outage =
// 'down' alone) and average its duration into the time to repair.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../config/load.ts';
import type { Incident } from '../../stores/state.ts';
import { deviceTags, type Point } from '../../collector/point.ts';
import { toLines } from '../../collector/influx/line.ts';
import { evaluationDashboard } from '../../dashboards/dashboards.ts';
import { computeReport } from '../../report/figures.ts';
import { parsePeriod } from '../../report/period.ts';
import { Calendar } from '../../config/calendar.ts';
import { startTestInflux, type TestInflux } from '../helpers/influx.ts';
import { tempDir } from '../helpers/peers.ts';

const at = (local: string) => Date.parse(`${local}:00+07:00`);
const dir = tempDir('report-definitions');
let influx: TestInflux;
let config: Config;

const INCIDENTS: Incident[] = [
  { id: 1, device: 'r', check: '', school: '100', kind: 'router', state: 'down', cause: 'r', startedAt: at('2026-11-10T10:00'), endedAt: at('2026-11-10T10:10'), durationS: 600 },
  { id: 2, device: 'tv1', check: 'receiver.lock', school: '100', kind: 'dltv-receiver', state: 'down', cause: 'tv1', startedAt: at('2026-11-11T09:00'), endedAt: at('2026-11-11T09:05'), durationS: 300 },
  { id: 3, device: 'tv1', check: '', school: '100', kind: 'dltv-receiver', state: 'unreachable', cause: 'r', startedAt: at('2026-11-10T10:00'), endedAt: at('2026-11-10T10:10'), durationS: 600 },
  { id: 4, device: 'r', check: '', school: '100', kind: 'router', state: 'down', cause: 'r', startedAt: at('2026-11-20T08:00'), endedAt: at('2026-11-20T09:00'), durationS: 3600 },
];

beforeAll(async () => {
  influx = await startTestInflux('definitions');
  writeFileSync(
    join(dir.path, 'schools.yaml'),
    ['schools:', '  - code: "100"', '    name_th: โรงเรียนบ้านทดสอบ', '    district: ภูเขียว', '    devices:', '      - { id: r, kind: router, address: 127.0.0.1, profile: icmp-only }', '      - { id: tv1, kind: dltv-receiver, address: 127.0.0.3, profile: icmp-only, parent: r }', ''].join('\n'),
  );
  writeFileSync(join(dir.path, 'area.yaml'), ['area: { code: t, name_th: สพป.ทดสอบ }', 'inventory: schools.yaml', `influx: { url: "${influx.server.url}", database: defs }`, ''].join('\n'));
  config = loadConfig(join(dir.path, 'area.yaml'));
  // The incident points as the collector writes them (collector/collector.ts judge): tags check ('-' for the device itself) and outage (the state).
  const points: Point[] = [];
  for (const i of INCIDENTS) {
    const tags = { ...deviceTags(config.deviceById.get(i.device)!), check: i.check || '-', outage: i.state };
    points.push({ measurement: 'incident', tags, fields: { incident_id: i.id, cause: i.cause, opened: 1 }, time: i.startedAt });
    points.push({ measurement: 'incident', tags, fields: { incident_id: i.id, cause: i.cause, closed: 1, duration_s: i.durationS! }, time: i.endedAt! });
  }
  await influx.query('defs', 'CREATE DATABASE defs');
  const res = await fetch(`${influx.server.url}/write?db=defs&precision=ms`, { method: 'POST', body: toLines(points).join('\n') });
  expect(res.status).toBe(204);
}, 120_000);

afterAll(async () => {
  await influx?.close();
  dir.remove();
});

describe('outage and repair time: the report and the evaluation dashboard agree', () => {
  it('the dashboard panels count what the report counts', async () => {
    const panels = (evaluationDashboard().build().panels ?? []) as { title?: string; targets?: { query?: string }[] }[];
    const query = (title: string) => panels.find((p) => p.title?.startsWith(title))!.targets![0]!.query!;
    const from = at('2026-11-01T00:00');
    const to = at('2026-12-01T00:00');
    const run = (q: string) => influx.query('defs', q.replace(/\$timeFilter/g, `time >= ${from}ms AND time < ${to}ms`).replace(/\$rp\./g, ''));
    const count = await run(query('จำนวนเหตุขัดข้อง'));
    const mttr = await run(query('เวลาเฉลี่ยในการแก้ไข'));

    const now = at('2026-12-05T12:00');
    const rep = computeReport({
      config,
      incidents: INCIDENTS,
      monitoring: { firstSeen: new Map([['r', 0], ['tv1', 0]]), runs: [[0, now]] },
      period: parsePeriod('2026-11', config.calendars.map((c) => new Calendar(c)), now),
      now,
    });
    const school = rep.schools[0]!;
    expect(school.outages).toBe(2);
    expect(school.mttrS).toBe((600 + 3600) / 2);
    expect(school.checks).toBe(1);
    expect(count).toHaveLength(1);
    expect(count[0]!.sum).toBe(school.outages);
    expect(mttr[0]!.mean).toBe(school.mttrS);
  });
});
