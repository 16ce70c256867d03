// A real outage, end to end: two hosts of our own in network namespaces (a
// school router and a classroom receiver behind it), probed by real fping
// through the collector, unplugged and plugged back.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../../config/load.ts';
import { Collector } from '../../../collector/collector.ts';
import { createTestHost, type TestHost } from '../../helpers/netns.ts';
import { requireBinary, tempDir } from '../../helpers/peers.ts';

const dir = tempDir('outage');
let router: TestHost;
let receiver: TestHost;
let config: Config;
let collector: Collector;

beforeAll(async () => {
  await requireBinary('fping', 'fping');
  router = createTestHost(43);
  receiver = createTestHost(44);
  writeFileSync(
    join(dir.path, 'schools.yaml'),
    [
      'schools:',
      '  - code: "1036090107"',
      '    name_th: โรงเรียนบ้านเจียง',
      '    devices:',
      `      - { id: r, kind: router, address: ${router.address}, profile: icmp-only }`,
      `      - { id: tv1, kind: other, address: ${receiver.address}, profile: icmp-only, parent: r }`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir.path, 'area.yaml'),
    ['area: { code: t, name_th: ทดสอบ }', 'inventory: schools.yaml', 'influx: { url: "http://127.0.0.1:9" }', 'icmp: { count: 3, period: 100ms, timeout: 300ms }', 'alerts: { state_db: state.sqlite }', ''].join('\n'),
  );
  config = loadConfig(join(dir.path, 'area.yaml'));
  collector = new Collector(config, pino({ level: 'silent' }), { write: false });
  await collector.prepare({ influx: false });
});

afterAll(async () => {
  await collector?.stop();
  router?.remove();
  receiver?.remove();
  dir.remove();
});

const round = () => collector.runRound(config.devices, 60_000, { jitter: false });

describe('an outage seen through fping', () => {
  it('school router unplugged: it goes down after two rounds, the device behind it is unreachable, one incident; plugged back: closed', async () => {
    await round();
    await round();
    expect(collector.engine!.states.get('r')!.state).toBe('up');

    router.unplug();
    receiver.unplug();
    try {
      const first = await round();
      expect(first.transitions).toEqual([]);
      const second = await round();
      expect(second.transitions.map((t) => [t.device, t.from, t.to, t.cause])).toEqual([
        ['r', 'up', 'down', 'r'],
        ['tv1', 'up', 'unreachable', 'r'],
      ]);
      expect(second.opened.map((i) => [i.device, i.state, i.cause])).toEqual([
        ['r', 'down', 'r'],
        ['tv1', 'unreachable', 'r'],
      ]);
    } finally {
      router.plug();
      receiver.plug();
    }
    // A veth link brought back up takes a moment to pass traffic; then two good rounds close both.
    const closed = [];
    for (let i = 0; i < 5 && closed.length < 2; i++) closed.push(...(await round()).closed);
    expect(closed.map((i) => i.device).sort()).toEqual(['r', 'tv1']);
    expect(closed.every((i) => i.durationS !== null && i.durationS >= 0)).toBe(true);
    expect(collector.store!.openIncidents()).toEqual([]);
  });
});
