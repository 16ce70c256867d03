// The InfluxDB path against a real influxd 1.x: line protocol round trip,
// schema set-up, the spool while the server is stopped, refusals.
// Backoff waits are real (200 ms): fetch's own timers do not run under fake timers.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync } from 'node:fs';
import pino from 'pino';
import { startTestInflux, type TestInflux } from '../../helpers/influx.ts';
import { tempDir } from '../../helpers/peers.ts';
import { toLine, toLines } from '../../../collector/influx/line.ts';
import { InfluxWriter } from '../../../collector/influx/writer.ts';
import { Spool, spoolBytesFor } from '../../../collector/influx/spool.ts';
import { setupSchema, rollupSelect, RAW_RP, ROLLUP_RP, CQ_PREFIX } from '../../../stores/influx/setup.ts';
import { measurements, type MeasurementSpec } from '../../../config/measurements.ts';
import type { Point } from '../../../collector/point.ts';

const log = pino({ level: 'silent' });
let influx: TestInflux;
const dirs: ReturnType<typeof tempDir>[] = [];
beforeAll(async () => {
  influx = await startTestInflux('influx');
});
afterAll(async () => {
  await influx?.close();
  for (const d of dirs) d.remove();
});

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: still not true after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tags = { school: '1036090101', school_name: 'โรงเรียนบ้านหนองบัวแดง', district: 'หนองบัวแดง', device: 'r1', kind: 'router' };
const icmpPoint = (i: number, time: number): Point => ({ measurement: 'icmp', tags, fields: { icmp_up: 1, sent: 3, received: 3, loss_pct: 0, rtt_avg_ms: i }, time });

async function newDb(name: string) {
  const client = influx.client(name);
  await setupSchema(client, { rawRetentionMs: 30 * 86_400_000, rollupRetentionMs: 730 * 86_400_000 }, log);
  return client;
}

describe('line protocol and schema against influxd', () => {
  it('keeps Thai text, spaces, commas, equals signs, quotes and newlines intact', async () => {
    const client = await newDb('lp');
    const p: Point = {
      measurement: 'device',
      tags: { ...tags, school_name: 'โรงเรียน บ้าน,หนอง=บัว', device: 'C:\\ Label', profile: '' },
      fields: { snmp_up: 0, poll_ms: 12.5, pdus: 2, timeouts: 1, error: 'walk "ifXTable": timeout\\n\nline two, ผิดพลาด' },
      time: Date.now(),
    };
    await client.write(toLine(p)!);
    const [row] = await influx.query('lp', 'SELECT * FROM device');
    expect(row).toMatchObject({ school_name: 'โรงเรียน บ้าน,หนอง=บัว', device: 'C:/ Label', profile: '-', snmp_up: 0, poll_ms: 12.5, error: 'walk "ifXTable": timeout\\n\nline two, ผิดพลาด' });
  });

  it('writes every measurement of the schema with its full tag set', () => {
    for (const m of Object.values(measurements)) {
      const line = toLine({ measurement: m.name as keyof typeof measurements, tags: {}, fields: { [Object.keys(m.fields)[0]!]: 1 }, time: 0 })!;
      const tagPart = line.split(' ')[0]!.split(',').slice(1).map((kv) => kv.split('=')[0]);
      expect(tagPart).toEqual([...m.tags].sort());
    }
  });

  it('creates database, retention policies and continuous queries once; a second start changes nothing; a new retention is applied', async () => {
    const client = influx.client('setup');
    const first = await setupSchema(client, { rawRetentionMs: 30 * 86_400_000, rollupRetentionMs: 730 * 86_400_000 }, log);
    expect(first.version).toMatch(/^1\.6/);
    expect(first.actions).toContain('created retention policy raw (30d)');
    expect(first.actions).toContain('created retention policy rollup_5m (730d)');
    const cqs = first.actions.filter((a) => a.startsWith(`created continuous query ${CQ_PREFIX}`));
    // One per measurement that has something to roll up (device_info holds only text).
    expect(cqs).toHaveLength((Object.values(measurements) as MeasurementSpec[]).filter((m) => rollupSelect('klaiwatch', m) !== undefined).length);
    expect(cqs.length).toBeGreaterThan(10);
    const second = await setupSchema(client, { rawRetentionMs: 30 * 86_400_000, rollupRetentionMs: 730 * 86_400_000 }, log);
    expect(second.actions).toEqual([]);
    const third = await setupSchema(client, { rawRetentionMs: 45 * 86_400_000, rollupRetentionMs: 730 * 86_400_000 }, log);
    expect(third.actions).toEqual(['altered retention policy raw to 45d']);
    const rps = await influx.query('setup', 'SHOW RETENTION POLICIES ON setup');
    expect(rps.find((r) => r.name === RAW_RP)).toMatchObject({ duration: '1080h0m0s', default: true });
  });

  it('the roll-up query keeps measurement and field names, so dashboards read raw and 5-minute data alike', async () => {
    const client = await newDb('rollup');
    const base = Math.floor(Date.now() / 300_000) * 300_000 - 600_000;
    await client.write(toLines([icmpPoint(10, base + 1000), icmpPoint(20, base + 2000), icmpPoint(60, base + 3000)]).join('\n'));
    const select = rollupSelect('rollup', measurements.icmp)!;
    await client.query(select.replace(' GROUP BY', ` WHERE time >= ${base}ms AND time < ${base + 300_000}ms GROUP BY`));
    const rolled = await influx.query('rollup', `SELECT rtt_avg_ms, rtt_max_ms, sent, school_name FROM "rollup"."${ROLLUP_RP}"."icmp"`);
    expect(rolled).toEqual([{ time: base, rtt_avg_ms: 30, rtt_max_ms: null, sent: 9, school_name: 'โรงเรียนบ้านหนองบัวแดง' }]);
  });
});

describe('writer and disk spool', () => {
  it('keeps every point while influxd is stopped, and delivers them in order once it is back', async () => {
    const client = await newDb('spool');
    const d = tempDir('spool');
    dirs.push(d);
    const writer = new InfluxWriter(client, new Spool(d.path, 64 * 1024 * 1024), log, { batchSize: 100, flushIntervalMs: 50, minBackoffMs: 200, maxBackoffMs: 400 });
    await writer.start();
    const t0 = Date.now() - 60_000;
    writer.write(toLines(Array.from({ length: 150 }, (_, i) => icmpPoint(i, t0 + i))));
    await writer.flush();
    expect(writer.stats.written).toBe(150);

    await influx.server.stop();
    writer.write(toLines(Array.from({ length: 350 }, (_, i) => icmpPoint(150 + i, t0 + 150 + i))));
    await writer.flush();
    expect(writer.stats.written).toBe(150);
    expect(writer.stats.spoolLines).toBe(350);
    expect(writer.stats.writeErrors).toBeGreaterThan(0);
    expect(writer.stats.lastError).toMatch(/influxdb http:\/\/127\.0\.0\.1:\d+: write: ECONNREFUSED/);
    expect(writer.stats.spoolBytes).toBeGreaterThan(350 * 100);
    expect(readdirSync(d.path).filter((n) => n.endsWith('.seg')).length).toBeGreaterThanOrEqual(1);
    // More arrives while it is still down: queued behind the spool.
    writer.write(toLines(Array.from({ length: 50 }, (_, i) => icmpPoint(500 + i, t0 + 500 + i))));
    await writer.flush();
    expect(writer.stats.spoolLines).toBe(400);

    await influx.server.start();
    await until('spool drained', () => writer.stats.spoolLines === 0);
    await writer.close();
    const rows = await influx.query('spool', 'SELECT rtt_avg_ms FROM icmp');
    expect(rows).toHaveLength(550);
    expect(rows.map((r) => r.rtt_avg_ms)).toEqual(Array.from({ length: 550 }, (_, i) => i));
    expect(writer.stats).toMatchObject({ written: 550, dropped: 0, spooled: 400 });
  });

  it('a writer started later sends what an earlier run left in the spool', async () => {
    const client = await newDb('restart');
    const d = tempDir('spool2');
    dirs.push(d);
    const down = influx.client('restart');
    (down.target as { url: string }).url = 'http://127.0.0.1:9'; // discard port: nothing listens
    const first = new InfluxWriter(new (client.constructor as typeof import('../../../stores/influx/client.ts').InfluxClient)({ ...client.target, url: 'http://127.0.0.1:9' }), new Spool(d.path, 1 << 20), log, { batchSize: 10, flushIntervalMs: 10, minBackoffMs: 200 });
    await first.start();
    first.write(toLines(Array.from({ length: 25 }, (_, i) => icmpPoint(i, Date.now() - 1000 + i))));
    await first.close();
    expect(first.stats.spoolLines).toBe(25);
    const second = new InfluxWriter(client, new Spool(d.path, 1 << 20), log, { batchSize: 10, flushIntervalMs: 10 });
    await second.start();
    await until('old spool sent', () => second.stats.spoolLines === 0);
    expect(await influx.query('restart', 'SELECT count(rtt_avg_ms) FROM icmp')).toEqual([{ time: 0, count: 25 }]);
  });

  it('a full spool drops its oldest batches and counts them; while InfluxDB is backed off, new batches wait without new attempts', async () => {
    const d = tempDir('spool3');
    dirs.push(d);
    const client = influx.client('nowhere');
    const deadClient = new (client.constructor as typeof import('../../../stores/influx/client.ts').InfluxClient)({ ...client.target, url: 'http://127.0.0.1:9' });
    const lines = toLines(Array.from({ length: 10 }, (_, i) => icmpPoint(i, 1_700_000_000_000 + i)));
    const writer = new InfluxWriter(deadClient, new Spool(d.path, spoolBytesFor([lines, lines, lines])), log, { batchSize: 10, flushIntervalMs: 10, minBackoffMs: 60_000 });
    await writer.start();
    for (let b = 0; b < 5; b++) {
      writer.write(lines);
      await writer.flush();
    }
    expect(writer.stats.spoolLines).toBe(30);
    expect(writer.stats.dropped).toBe(20);
    // One failed attempt, then the backoff: new batches do not knock again.
    expect(writer.stats.writeErrors).toBe(1);
    await writer.close();
  });

  it('a line InfluxDB refuses is counted as dropped; the rest of its batch is stored', async () => {
    const client = await newDb('reject');
    const d = tempDir('spool4');
    dirs.push(d);
    const writer = new InfluxWriter(client, new Spool(d.path, 1 << 20), log, { batchSize: 100, flushIntervalMs: 10 });
    await writer.start();
    const now = Date.now();
    // A type conflict inside one batch makes 1.6 refuse the whole batch: the writer halves it to save the good lines.
    writer.write([...toLines([icmpPoint(1, now), icmpPoint(2, now + 1)]), 'icmp,school=x sent="three" ' + (now + 2), 'this is not line protocol']);
    await writer.flush();
    expect(writer.stats.written).toBe(2);
    expect(writer.stats.rejected).toBe(2);
    expect(writer.stats.dropped).toBe(2);
    expect(writer.stats.spoolLines).toBe(0);
    expect(await influx.query('reject', 'SELECT count(rtt_avg_ms) FROM icmp')).toEqual([{ time: 0, count: 2 }]);
  });
});
