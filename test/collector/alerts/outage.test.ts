// A real outage, end to end: two hosts of our own in network namespaces (a
// school router and a classroom receiver behind it), probed by real fping
// through the collector, unplugged and plugged back.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../../config/load.ts';
import { Collector } from '../../../collector/collector.ts';
import { FpingProber, findExecutable } from '../../../collector/icmp/probe.ts';
import { formatThaiDuration } from '../../../config/thai.ts';
import { createTestHost, type TestHost } from '../../helpers/netns.ts';
import { requireBinary, tempDir } from '../../helpers/peers.ts';
import { startMailCatcher, type MailCatcher } from '../../../sim/mailcatcher.ts';

const dir = tempDir('outage');
let router: TestHost;
let receiver: TestHost;
let config: Config;
let collector: Collector;
let smtp: MailCatcher;

beforeAll(async () => {
  await requireBinary('fping', 'fping');
  router = createTestHost(43);
  receiver = createTestHost(44);
  smtp = await startMailCatcher();
  writeFileSync(
    join(dir.path, 'schools.yaml'),
    [
      'schools:',
      '  - code: "1036090107"',
      '    name_th: โรงเรียนบ้านเจียง',
      '    district: ภักดีชุมพล',
      '    contacts: [{ name: ครูธนากร พรมมา, email: ict.banchiang@example.org }]',
      '    devices:',
      `      - { id: r, kind: router, address: ${router.address}, profile: icmp-only }`,
      `      - { id: tv1, kind: other, address: ${receiver.address}, profile: icmp-only, parent: r }`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir.path, 'area.yaml'),
    [
      'area: { code: t, name_th: สพป.ทดสอบ }',
      'inventory: schools.yaml',
      'influx: { url: "http://127.0.0.1:9" }',
      'icmp: { count: 3, period: 100ms, timeout: 300ms }',
      'alerts: { state_db: state.sqlite }',
      `mail: { smtp: { host: 127.0.0.1, port: ${smtp.port}, security: none, timeout: 2s }, from: "klaiwatch <klaiwatch@example.org>", officer: [it-officer@example.org], min_backoff: 200ms, max_backoff: 400ms }`,
      '',
    ].join('\n'),
  );
  config = loadConfig(join(dir.path, 'area.yaml'));
  collector = new Collector(config, pino({ level: 'silent' }), { write: false });
  await collector.prepare({ influx: false });
});

afterAll(async () => {
  await collector?.stop();
  await smtp?.stop();
  router?.remove();
  receiver?.remove();
  dir.remove();
});

const round = () => collector.runRound(config.devices, 60_000, { jitter: false });

/** Waits until every address answers an echo (at most 10 s). */
async function answering(addresses: string[]): Promise<void> {
  const prober = new FpingProber((await findExecutable('fping'))!);
  const end = Date.now() + 10_000;
  for (;;) {
    const res = await prober.probe(addresses, { count: 1, periodMs: 100, spacingMs: 1, timeoutMs: 200 });
    if ([...res.values()].every((r) => r.received > 0)) return;
    if (Date.now() > end) throw new Error(`${addresses.join(', ')} still silent 10 s after the link came back`);
  }
}

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
      // Exactly one e-mail to the school and one to the officer; nothing about the receiver behind it.
      await collector.outbox!.idle();
      expect(smtp.received.map((m) => [m.to && 'text' in m.to ? m.to.text : '', m.subject])).toEqual([
        ['ict.banchiang@example.org', '[klaiwatch] โรงเรียนบ้านเจียง: เราเตอร์ใช้งานไม่ได้'],
        ['it-officer@example.org', '[klaiwatch] โรงเรียนบ้านเจียง: เราเตอร์ใช้งานไม่ได้'],
      ]);
      const text = smtp.received[0]!.text ?? '';
      expect(text).toContain('  อุปกรณ์ที่ใช้งานผ่านเราเตอร์นี้ติดต่อไม่ได้ไปด้วย 1 เครื่อง\n');
      expect(text).toMatch(/ใช้งานไม่ได้ ตั้งแต่ \d{1,2} \S+ 25\d\d เวลา \d\d:\d\d น\./);
      expect(text).toContain('Router r (10.254.43.2) is DOWN since');
      expect(smtp.received[0]!.html).toContain('<h2>โรงเรียนบ้านเจียง: เราเตอร์ใช้งานไม่ได้</h2>');
    } finally {
      router.plug();
      receiver.plug();
    }
    // A veth link brought back up takes a moment to pass traffic: wait until both answer,
    // then two good rounds close both. (A device still failing when its parent is back
    // is the state engine's unit test.)
    await answering([router.address, receiver.address]);
    const closed = [];
    for (let i = 0; i < 5 && closed.length < 2; i++) closed.push(...(await round()).closed);
    expect(closed.map((i) => i.device).sort()).toEqual(['r', 'tv1']);
    expect(closed.every((i) => i.durationS !== null && i.durationS >= 0)).toBe(true);
    expect(collector.store!.openIncidents()).toEqual([]);
    await collector.outbox!.idle();
    const recovery = smtp.received.slice(2);
    expect(recovery.map((m) => m.subject)).toEqual(['[klaiwatch] โรงเรียนบ้านเจียง: เราเตอร์กลับมาใช้งานได้แล้ว', '[klaiwatch] โรงเรียนบ้านเจียง: เราเตอร์กลับมาใช้งานได้แล้ว']);
    const routerClosed = closed.find((i) => i.device === 'r')!;
    expect(recovery[0]!.text).toMatch(new RegExp(`ใช้งานไม่ได้ตั้งแต่ .+ ถึง .+ รวม ${formatThaiDuration(routerClosed.durationS!)}`));
    // It replies to the failure's mail to the same people.
    expect(recovery[0]!.inReplyTo).toBe(smtp.received[0]!.messageId);
    expect(routerClosed.durationS).toBe(Math.round((routerClosed.endedAt! - routerClosed.startedAt) / 1000));
    expect(recovery[0]!.text).toMatch(/is UP again at .*; down from .*, \d+ (s|min)\./);
  });

  it('SMTP down during an outage, and the collector restarted mid-outage: every notice arrives once, one incident', async () => {
    smtp.received.length = 0;
    await smtp.stop();
    router.unplug();
    try {
      await round();
      const down = await round();
      expect(down.opened.map((i) => i.device)).toEqual(['r']);
      await collector.outbox!.idle();
      expect(collector.outbox!.rows().filter((r) => r.status === 'pending')).toHaveLength(2);
      expect(collector.outbox!.rows().find((r) => r.status === 'pending')!.lastError).toMatch(/ECONNREFUSED/);

      // The collector stops with mail waiting, and starts again on the same state.
      await collector.stop();
      collector = new Collector(config, pino({ level: 'silent' }), { write: false });
      await collector.prepare({ influx: false });
      expect(collector.engine!.states.get('r')!.state).toBe('down');
      const again = await round();
      expect(again.opened).toEqual([]);
      expect(again.notices).toEqual([]);
      expect(collector.store!.openIncidents().map((i) => i.device)).toEqual(['r']);

      await smtp.start();
      collector.outbox!.kick();
      const end = Date.now() + 10_000;
      while (smtp.received.length < 2 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 100));
        collector.outbox!.kick();
      }
      await collector.outbox!.idle();
      expect(smtp.received.map((m) => m.subject)).toEqual(['[klaiwatch] โรงเรียนบ้านเจียง: เราเตอร์ใช้งานไม่ได้', '[klaiwatch] โรงเรียนบ้านเจียง: เราเตอร์ใช้งานไม่ได้']);
      expect(new Set(smtp.received.map((m) => m.messageId)).size).toBe(2);
      expect(collector.outbox!.rows().filter((r) => r.status === 'pending')).toEqual([]);
    } finally {
      router.plug();
    }
    await answering([router.address]);
    const closed = [];
    for (let i = 0; i < 5 && closed.length < 1; i++) closed.push(...(await round()).closed);
    expect(closed.map((i) => i.device)).toEqual(['r']);
    await collector.outbox!.idle();
    expect(smtp.received).toHaveLength(4);
  });
});
