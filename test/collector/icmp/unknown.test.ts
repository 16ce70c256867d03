// A broken fping through the whole collector: a real executable wrapper in
// place of fping that runs the real fping, is killed by a signal, or hangs,
// as a file tells it. Devices on loopback: a school router answering SNMP
// (snmpsimd), a server whose SNMP agent is silent (so only ICMP says it is
// up), and a classroom receiver watched over ICMP only. With fping broken,
// no device may go down, no incident open and no e-mail be queued. (The
// server's silent SNMP is a real problem of its own: its "snmp" check
// incident opens in the good rounds, and stays the only one.)
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../../config/load.ts';
import { Collector } from '../../../collector/collector.ts';
import type { Point } from '../../../collector/point.ts';
import { startRouterAgent } from '../../../sim/area.ts';
import type { Snmpsim } from '../../../sim/snmpsim.ts';
import { startMailCatcher, type MailCatcher } from '../../../sim/mailcatcher.ts';
import { loopbackBlock, requireBinary, tempDir } from '../../helpers/peers.ts';

const dir = tempDir('icmp-unknown');
// snmpsimd drops to nobody: its folder of its own (startSnmpsim opens it), not inside our 0700 one.
const agentDir = tempDir('icmp-unknown-agent');
const net = loopbackBlock('test/collector/icmp/unknown.test.ts');
const ROUTER = `${net}.1`;
const SERVER = `${net}.2`;
const TV = `${net}.11`;
const SNMP_PORT = 16100 + (process.pid % 1000);
const wrapper = join(dir.path, 'fping');
const modeFile = join(dir.path, 'fping-mode');
const setMode = (mode: 'real' | 'killed' | 'hung') => writeFileSync(modeFile, mode + '\n');

let agent: Snmpsim;
let smtp: MailCatcher;
const collectors: Collector[] = [];

/** A collector on its own state database, every point it emits kept in `points`. */
function collectorOn(name: string): { config: Config; collector: Collector; points: Point[] } {
  const settings = join(dir.path, `${name}.yaml`);
  writeFileSync(
    settings,
    [
      'area: { code: t, name_th: สพป.ทดสอบ }',
      'inventory: schools.yaml',
      'influx: { url: "http://127.0.0.1:9" }',
      `icmp: { count: 3, period: 100ms, timeout: 300ms, fping: ${JSON.stringify(wrapper)} }`,
      'polling: { timeout: 500ms, retries: 0 }',
      'snmp: { credentials: { router: { version: 2c, community: router } } }',
      `alerts: { state_db: ${name}.sqlite }`,
      `mail: { smtp: { host: 127.0.0.1, port: ${smtp.port}, security: none, timeout: 2s }, from: "klaiwatch <klaiwatch@example.org>", officer: [it-officer@example.org], min_backoff: 200ms, max_backoff: 400ms }`,
      '',
    ].join('\n'),
  );
  const config = loadConfig(settings);
  const points: Point[] = [];
  const collector = new Collector(config, pino({ level: 'silent' }), { write: false, onPoints: (ps) => points.push(...ps) });
  collectors.push(collector);
  return { config, collector, points };
}

beforeAll(async () => {
  const fping = await requireBinary('fping', 'fping');
  await requireBinary('snmpsimd', 'snmpsim');
  writeFileSync(
    wrapper,
    ['#!/bin/sh', `case "$(cat ${modeFile})" in`, '  killed) kill -9 $$ ;;', '  hung) exec sleep 3600 ;;', 'esac', `exec ${fping} "$@"`, ''].join('\n'),
    { mode: 0o755 },
  );
  setMode('real');
  writeFileSync(
    join(dir.path, 'schools.yaml'),
    [
      'schools:',
      '  - code: "1036090107"',
      '    name_th: โรงเรียนบ้านเจียง',
      '    district: ภักดีชุมพล',
      '    contacts: [{ name: ครูธนากร พรมมา, email: ict.banchiang@example.org }]',
      '    devices:',
      `      - { id: r, kind: router, address: ${ROUTER}, port: ${SNMP_PORT}, snmp: router, profile: auto }`,
      `      - { id: srv, kind: server, address: ${SERVER}, port: ${SNMP_PORT}, snmp: router, profile: auto, parent: r }`,
      `      - { id: tv1, kind: other, address: ${TV}, profile: icmp-only, parent: r }`,
      '',
    ].join('\n'),
  );
  smtp = await startMailCatcher();
  agent = await startRouterAgent(agentDir.path, `${ROUTER}:${SNMP_PORT}`);
});

afterAll(async () => {
  for (const c of collectors) await c.stop();
  await agent?.stop();
  await smtp?.stop();
  dir.remove();
  agentDir.remove();
});

describe('a broken fping through the collector', () => {
  it('killed by a signal for two rounds after good ones: every device stays up, no incident, no e-mail; the health names the failure', async () => {
    const { config, collector, points } = collectorOn('after-good');
    await collector.prepare({ influx: false });
    expect(collector.prober?.name).toBe('fping');
    const round = () => collector.runRound(config.devices, 60_000, { jitter: false });

    setMode('real');
    await round();
    const good = await round();
    expect(good.icmpUnknown).toBe(0);
    expect(good.icmpDown).toBe(0);
    const states = () => Object.fromEntries(config.devices.map((d) => [d.id, collector.engine!.states.get(d.id)?.state]));
    // The server's SNMP is silent: only its echo replies keep it up.
    expect(states()).toEqual({ r: 'up', srv: 'up', tv1: 'up' });
    expect(collector.health().icmp).toMatchObject({ unknown_rounds: 0, last_round_unknown: false, last_error: null });
    await collector.outbox!.idle();
    const incidents = collector.store!.openIncidents();
    expect(incidents.map((i) => `${i.device} ${i.check}`)).toEqual(['srv snmp']);
    const queued = collector.outbox!.rows().length;
    const mailed = smtp.received.length;

    setMode('killed');
    points.length = 0;
    for (let i = 0; i < 2; i++) {
      const r = await round();
      expect(r.icmpUnknown).toBe(3);
      expect(r.icmpDown).toBe(0);
      expect(r.failed).toBe(1); // the silent server's SNMP, as before
      expect(r.transitions).toEqual([]);
      expect(r.opened).toEqual([]);
    }
    expect(states()).toEqual({ r: 'up', srv: 'up', tv1: 'up' });
    // No ICMP figures were invented for the unknown rounds.
    expect(points.filter((p) => p.measurement === 'icmp')).toEqual([]);
    expect(collector.store!.openIncidents()).toEqual(incidents);
    expect(collector.outbox!.rows()).toHaveLength(queued);
    await collector.outbox!.idle();
    expect(smtp.received).toHaveLength(mailed);
    const h = collector.health();
    expect(h.status).toBe('degraded');
    expect(h.icmp).toMatchObject({ prober: 'fping', unknown_rounds: 2, last_round_unknown: true, unknown_hosts_last_round: 3, last_error: `fping ${wrapper}: killed by signal SIGKILL; output: (none)` });

    // fping works again: the round is known again, the count of unknown rounds stays.
    setMode('real');
    const back = await round();
    expect(back.icmpUnknown).toBe(0);
    expect(collector.health().icmp).toMatchObject({ unknown_rounds: 2, last_round_unknown: false });
  });

  it('broken from the first round: nothing is judged down; the SNMP answer alone still proves the router up', async () => {
    const { config, collector } = collectorOn('from-start');
    await collector.prepare({ influx: false });
    setMode('killed');
    for (let i = 0; i < 2; i++) {
      const r = await collector.runRound(config.devices, 60_000, { jitter: false });
      expect(r.icmpUnknown).toBe(3);
      expect(r.opened).toEqual([]);
    }
    expect(collector.engine!.states.get('r')!.state).toBe('up');
    expect(collector.engine!.states.get('srv')?.state ?? 'unknown').toBe('unknown');
    expect(collector.engine!.states.get('tv1')?.state ?? 'unknown').toBe('unknown');
    expect(collector.store!.openIncidents()).toEqual([]);
    expect(collector.outbox!.rows()).toEqual([]);
  });

  it('a hung fping is killed at its deadline (count, period, timeout, hosts + margin) and the round is unknown', async () => {
    const { config, collector } = collectorOn('hung');
    await collector.prepare({ influx: false });
    setMode('real');
    await collector.runRound(config.devices, 60_000, { jitter: false });
    await collector.runRound(config.devices, 60_000, { jitter: false });
    const incidents = collector.store!.openIncidents();
    setMode('hung');
    const r = await collector.runRound(config.devices, 60_000, { jitter: false });
    // 3 probes 100 ms apart, 300 ms for the last: 0.6 s expected, killed at 0.9 s + 5 s.
    expect(r.icmpMs).toBeGreaterThanOrEqual(5900 - 50);
    expect(r.icmpMs).toBeLessThan(30_000);
    expect(r.icmpUnknown).toBe(3);
    expect(r.transitions).toEqual([]);
    expect(collector.health().icmp).toMatchObject({ unknown_rounds: 1, last_error: `fping ${wrapper}: killed (SIGKILL) at its deadline of 5900 ms; output: (none)` });
    expect(collector.store!.openIncidents()).toEqual(incidents);
  }, 60_000);
});
