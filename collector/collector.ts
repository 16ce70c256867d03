// The collector: every device polled on its kind's interval, SNMP and ICMP,
// points to InfluxDB through the spooling writer, its own figures beside
// them. Rounds: all devices of one interval form a round; one fping process
// probes the round's hosts while SNMP polls run at most `concurrency` at a
// time, each spread over the first `jitter` share of the interval so a
// school's router is not hit at the same instant every minute. A device
// still busy from its last round is skipped and counted, never waited for.
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import type { Config, Device } from '../config/load.ts';
import type { Logger } from '../config/log.ts';
import { SnmpSession } from './snmp/session.ts';
import { pollDevice, newMemory, devicePoint, type DeviceMemory, type PollResult } from './snmp/poll.ts';
import { SNMP_ERROR_FIELDS, type SnmpErrorKind } from './snmp/errors.ts';
import { chooseProber, type Prober, type IcmpResult } from './icmp/probe.ts';
import { type Point, deviceTags } from './point.ts';
import { toLines } from './influx/line.ts';
import { InfluxClient } from '../stores/influx/client.ts';
import { InfluxWriter } from './influx/writer.ts';
import { Spool } from './influx/spool.ts';
import { setupSchema, type SchemaSetup } from '../stores/influx/setup.ts';
import { measureClock, type NtpMeasurement } from '../clock/sntp.ts';
import { Schedule } from '../config/calendar.ts';
import { StateEngine } from './alerts/state.ts';
import { STATES, SCHOOL_STATES, schoolState, checkSubject, type Raw, type Transition, type CheckObservation } from '../stores/model.ts';
import { deviceChecks, notWatched, type NotWatched } from './alerts/checks.ts';
import { StateStore, type Incident } from '../stores/state.ts';
import { ensureMaintenanceTable, windowsBetween } from '../stores/maintenance.ts';
import { composeNotices, type Notice } from './alerts/notices.ts';
import { Outbox, createTransport } from './alerts/outbox.ts';
import { planShard, type ShardPlan } from '../config/shard.ts';
import { openProblems } from './health.ts';
import { SYS_UPTIME } from './snmp/poll.ts';

export interface RoundReport {
  interval: string;
  startedAt: number;
  durationMs: number;
  devices: number;
  polled: number;
  failed: number;
  timeouts: number;
  /** SNMP polls of the round that named each kind of failure (collector/snmp/errors.ts). */
  snmpErrors: Partial<Record<SnmpErrorKind, number>>;
  /** Values the round's polls dropped as impossible or unmapped. */
  valuesDropped: number;
  overruns: number;
  icmpHosts: number;
  icmpDown: number;
  /** Hosts whose ICMP result is unknown this round (the prober failed, or did not report them): not judged on ICMP. */
  icmpUnknown: number;
  icmpMs: number;
  results: PollResult[];
  icmp: Map<string, IcmpResult>;
  points: Point[];
  transitions: Transition[];
  opened: Incident[];
  closed: Incident[];
  notices: Notice[];
}

type RoundSummary = Omit<RoundReport, 'results' | 'icmp' | 'points' | 'transitions' | 'opened' | 'closed' | 'notices'>;

export interface DeviceStatus {
  id: string;
  school: string;
  kind: string;
  address: string;
  snmp?: { ok: boolean; error?: string; at: number; profile?: string };
  /** Checks of the device's kind its profile cannot feed, as of its last poll. */
  notWatched?: NotWatched[];
  icmp?: { up: boolean; lossPct: number; rttAvgMs?: number; at: number };
}

export interface CollectorOptions {
  /** Where relative paths in the settings (spool dir, state database) are resolved; default: the settings file's folder. */
  baseDir?: string;
  /** Sink for every point, as well as InfluxDB (poll --once prints them). */
  onPoints?: (points: Point[]) => void;
  /** False: measure and report, write nothing (poll --once without --write). */
  write?: boolean;
  /** False: no device states, no incidents, no state database (poll --once). */
  states?: boolean;
}

function fmtInterval(ms: number): string {
  if (ms === 0) return 'once';
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}

const phases = new Map<string, number>();
/** A stable share in [0, 1) per device id: the same device is polled at the same point of every interval. */
function phase(id: string): number {
  let p = phases.get(id);
  if (p === undefined) {
    p = createHash('sha1').update(id).digest().readUInt32BE(0) / 2 ** 32;
    phases.set(id, p);
  }
  return p;
}

export class Collector {
  readonly config: Config;
  readonly log: Logger;
  readonly client: InfluxClient;
  readonly writer: InfluxWriter;
  readonly memory = new Map<string, DeviceMemory>();
  private readonly sessions = new Map<string, SnmpSession>();
  readonly status = new Map<string, DeviceStatus>();
  readonly lastRounds = new Map<string, RoundSummary>();
  readonly engine: StateEngine | undefined;
  /** The engine's schedule: the state database's maintenance windows are given to it at each round. */
  private readonly schedule: Schedule | undefined;
  /** What this collector owns and what it probes for dependency only (collector.shard). */
  readonly shard: ShardPlan;
  readonly store: StateStore | undefined;
  outbox: Outbox | undefined;
  prober: Prober | undefined;
  /** ICMP rounds the prober failed (broken, killed, hung fping): no device was judged on ICMP in them. */
  readonly icmpHealth: { unknownRounds: number; lastRoundUnknown: boolean; unknownHosts: number; lastError?: string; lastErrorAt?: number } = { unknownRounds: 0, lastRoundUnknown: false, unknownHosts: 0 };
  schema: SchemaSetup | undefined;
  clock: (NtpMeasurement & { at: number }) | { error: string; at: number } | undefined;
  readonly startedAt = Date.now();
  private readonly inFlight = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly opts: CollectorOptions;
  private stopping = false;
  private rounds = new Set<Promise<unknown>>();

  constructor(config: Config, log: Logger, opts: CollectorOptions = {}) {
    this.config = config;
    this.log = log;
    this.opts = opts;
    this.shard = planShard(config);
    const s = config.settings;
    this.client = new InfluxClient({ url: s.influx.url, database: s.influx.database, username: s.influx.username, auth: config.influxAuth, timeoutMs: s.influx.timeout });
    const spoolDir = resolve(opts.baseDir ?? dirname(config.file), s.spool.dir);
    this.writer = new InfluxWriter(this.client, new Spool(spoolDir, s.spool.max_bytes), log.child({ part: 'influx' }), {
      batchSize: s.influx.batch_size,
      flushIntervalMs: s.influx.flush_interval,
    });
    for (const d of config.devices) this.status.set(d.id, { id: d.id, school: d.school.code, kind: d.kind, address: d.address });
    if (opts.states !== false) {
      this.store = new StateStore(resolve(opts.baseDir ?? dirname(config.file), s.alerts.state_db));
      ensureMaintenanceTable(this.store.db);
      this.schedule = new Schedule(config.calendars, s.alerts);
      this.engine = new StateEngine(config, this.schedule, this.store.loadStates());
    }
  }

  intervalOf(d: Device): number {
    const p = this.config.settings.polling;
    return p.intervals[d.kind] ?? p.interval;
  }

  /** InfluxDB schema (best effort: a down InfluxDB must not stop polling; the spool holds the points), ICMP prober, spool. */
  async prepare(opts: { influx?: boolean } = {}): Promise<void> {
    const mail = this.config.settings.mail;
    if (mail && this.store && !this.outbox) {
      this.outbox = new Outbox(this.store.db, mail, await createTransport(mail, this.config.mailAuth), this.log.child({ part: 'mail' }));
    }
    this.prober = this.config.settings.icmp.enabled ? await chooseProber(this.config.settings.icmp.fping) : undefined;
    if (this.prober && this.prober.name !== 'fping') {
      this.log.warn({ fping: this.config.settings.icmp.fping }, 'fping not found: probing with the system ping, one process per host (install Debian package fping)');
    }
    if (opts.influx === false) return;
    await this.writer.start();
    if (this.config.settings.influx.manage_schema) {
      try {
        await this.setupInflux();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'influxdb schema set-up failed; polling anyway, points wait in the spool; will retry');
        this.retrySchemaLater();
      }
    }
  }

  private async setupInflux(): Promise<void> {
    const influx = this.config.settings.influx;
    this.schema = await setupSchema(this.client, { rawRetentionMs: influx.raw_retention, rollupRetentionMs: influx.rollup_retention }, this.log.child({ part: 'influx' }));
  }

  private retrySchemaLater(): void {
    const t = setTimeout(async () => {
      this.timers.delete(t);
      if (this.stopping) return;
      try {
        await this.setupInflux();
      } catch {
        this.retrySchemaLater();
      }
    }, 30_000);
    t.unref();
    this.timers.add(t);
  }

  /** A device this collector polls, writes and alerts (false: another shard's, probed for dependency at most). */
  owns(d: Device): boolean {
    return this.shard.owned.has(d.id);
  }

  /** Starts the schedule: one round per interval group, forever, until stop(). Only owned devices and their dependencies. */
  start(): void {
    const groups = new Map<number, Device[]>();
    for (const d of this.config.devices) {
      if (!this.shard.owned.has(d.id) && !this.shard.dependencies.has(d.id)) continue;
      const ms = this.intervalOf(d);
      groups.set(ms, [...(groups.get(ms) ?? []), d]);
    }
    for (const [ms, devices] of groups) {
      let next = Date.now();
      const tick = () => {
        if (this.stopping) return;
        const round = this.runRound(devices, ms, { jitter: true }).catch((err) => this.log.error({ err }, 'round failed'));
        this.rounds.add(round);
        void round.finally(() => this.rounds.delete(round));
        next += ms;
        const t = setTimeout(() => {
          this.timers.delete(t);
          tick();
        }, Math.max(0, next - Date.now()));
        this.timers.add(t);
      };
      tick();
    }
    this.outbox?.kick(); // what an earlier run left unsent
    const ntp = this.config.settings.ntp;
    if (ntp) {
      void this.checkClock();
      const t = setInterval(() => void this.checkClock(), ntp.interval);
      this.timers.add(t);
    }
  }

  /** Measures the clock against the configured NTP server; warns past the limit (10 ms by default). */
  async checkClock(): Promise<void> {
    const ntp = this.config.settings.ntp;
    if (!ntp) return;
    try {
      const m = await measureClock(ntp.server, ntp.port);
      this.clock = { ...m, at: Date.now() };
      if (Math.abs(m.offsetMs) > ntp.warn_ms) this.log.warn({ offset_ms: m.offsetMs, server: ntp.server, limit_ms: ntp.warn_ms }, 'clock offset beyond the limit the traffic-log rules allow');
    } catch (err) {
      this.clock = { error: (err as Error).message, at: Date.now() };
      this.log.warn({ err: (err as Error).message }, 'clock offset not measured');
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.rounds]);
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
    await this.writer.close();
    await this.outbox?.close();
    this.store?.close();
  }

  /** One round over the given devices: ICMP for all at once, SNMP polls bounded and spread. */
  async runRound(devices: readonly Device[], intervalMs: number, opts: { jitter: boolean; icmp?: boolean; snmp?: boolean }): Promise<RoundReport> {
    const startedAt = Date.now();
    const t0 = performance.now();
    const s = this.config.settings;
    const label = fmtInterval(intervalMs);
    const ready = devices.filter((d) => !this.inFlight.has(d.id));
    const overruns = devices.length - ready.length;
    if (overruns > 0) this.log.warn({ interval: label, overruns }, 'devices skipped: their previous poll has not finished');
    for (const d of ready) this.inFlight.add(d.id);
    const points: Point[] = [];
    const emit = (ps: Point[]) => {
      if (ps.length === 0) return;
      points.push(...ps);
      this.opts.onPoints?.(ps);
      if (this.opts.write !== false) this.writer.write(toLines(ps));
    };

    try {
      // ICMP: one prober call for the whole round.
      const icmpDevices = opts.icmp === false || !this.prober ? [] : ready.filter((d) => d.icmp);
      const icmpStart = performance.now();
      const icmpPromise: Promise<Map<string, IcmpResult>> =
        icmpDevices.length > 0
          ? this.prober!.probe(
              icmpDevices.map((d) => d.address),
              { count: s.icmp.count, periodMs: s.icmp.period, spacingMs: s.icmp.spacing, timeoutMs: s.icmp.timeout },
            ).catch((err) => {
              // Unknown, not lost: an empty result leaves every probed device unjudged on ICMP.
              const h = this.icmpHealth;
              h.unknownRounds += 1;
              h.lastError = (err as Error).message;
              h.lastErrorAt = Date.now();
              this.log.error({ err: h.lastError, hosts: icmpDevices.length }, 'icmp round unknown: the prober failed; no device is judged on ICMP this round');
              return new Map<string, IcmpResult>();
            })
          : Promise.resolve(new Map());
      let icmpMs = 0;
      const icmpDone = icmpPromise.then((res) => {
        icmpMs = performance.now() - icmpStart;
        const now = Date.now();
        const ps: Point[] = [];
        for (const d of icmpDevices) {
          const r = res.get(d.address);
          if (!r) continue;
          const fields: Record<string, number> = { icmp_up: r.received > 0 ? 1 : 0, sent: r.sent, received: r.received, loss_pct: r.lossPct };
          if (r.min !== undefined) fields.rtt_min_ms = r.min;
          if (r.avg !== undefined) fields.rtt_avg_ms = r.avg;
          if (r.max !== undefined) fields.rtt_max_ms = r.max;
          if (r.jitter !== undefined) fields.jitter_ms = r.jitter;
          if (this.owns(d)) ps.push({ measurement: 'icmp', tags: deviceTags(d), fields, time: now });
          const st = this.status.get(d.id)!;
          st.icmp = { up: r.received > 0, lossPct: r.lossPct, at: now, ...(r.avg !== undefined ? { rttAvgMs: r.avg } : {}) };
        }
        emit(ps);
        return res;
      });

      // SNMP: bounded concurrency, each device at its own phase of the interval.
      // The loader gives credentials only to devices whose profile speaks SNMP.
      // Another shard's device is probed for dependency only: by ICMP when it is
      // probed so, else by one GET of sysUpTime; nothing of it is written.
      const icmpProbed = new Set(icmpDevices);
      const probeOnly = (d: Device) => !this.owns(d) && icmpProbed.has(d);
      const snmpDevices = opts.snmp === false ? [] : ready.filter((d) => d.snmp && !probeOnly(d));
      const spread = opts.jitter ? intervalMs * s.polling.jitter : 0;
      const queue = [...snmpDevices].sort((a, b) => phase(a.id) - phase(b.id));
      const results: PollResult[] = [];
      const dependencyResults: PollResult[] = [];
      let next = 0;
      const worker = async () => {
        while (next < queue.length && !this.stopping) {
          const d = queue[next++]!;
          const due = t0 + phase(d.id) * spread;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          if (!this.owns(d)) {
            dependencyResults.push(await this.probeOne(d));
            continue;
          }
          const r = await this.pollOne(d);
          results.push(r);
          emit(r.points);
        }
      };
      await Promise.all(Array.from({ length: Math.min(s.polling.concurrency, queue.length) }, worker));
      const icmp = await icmpDone;
      // A probed device with no result is unknown on ICMP this round (never lost).
      const icmpUnknown = new Set(icmpDevices.filter((d) => !icmp.has(d.address)).map((d) => d.id));
      const unknownHosts = [...new Set(icmpDevices.filter((d) => icmpUnknown.has(d.id)).map((d) => d.address))];
      this.icmpHealth.unknownHosts = unknownHosts.length;
      this.icmpHealth.lastRoundUnknown = icmpDevices.length > 0 && icmp.size === 0;
      if (icmp.size > 0 && unknownHosts.length > 0) {
        this.log.warn({ hosts: unknownHosts.length, first: unknownHosts.slice(0, 5) }, 'icmp: hosts the prober did not report are unknown this round');
      }

      const { transitions, opened, closed, notices } = this.judge(ready, [...results, ...dependencyResults], icmp, icmpUnknown, emit);

      const report: RoundReport = {
        interval: label,
        startedAt,
        durationMs: performance.now() - t0,
        devices: devices.length,
        polled: results.filter((r) => r.ok).length,
        failed: results.filter((r) => !r.ok).length,
        timeouts: results.reduce((n, r) => n + r.timeouts, 0),
        snmpErrors: countKinds(results),
        valuesDropped: results.reduce((n, r) => n + (r.valuesDropped ?? 0), 0),
        overruns,
        icmpHosts: new Set(icmpDevices.map((d) => d.address)).size,
        icmpDown: [...icmp.values()].filter((r) => r.received === 0).length,
        icmpUnknown: unknownHosts.length,
        icmpMs,
        results,
        icmp,
        points,
        transitions,
        opened,
        closed,
        notices,
      };
      const { results: _r, icmp: _i, points: _p, transitions: _t, opened: _o, closed: _c, notices: _n, ...summary } = report;
      this.lastRounds.set(label, summary);
      emit([this.selfPoint(summary)]);
      // Group commit: the round's points on disk (one fsync) before the round says it is done.
      if (this.opts.write !== false) await this.writer.commit();
      this.log.info({ interval: label, devices: report.devices, polled: report.polled, failed: report.failed, icmp_down: report.icmpDown, round_ms: Math.round(report.durationMs) }, 'round done');
      return report;
    } finally {
      for (const d of ready) this.inFlight.delete(d.id);
    }
  }

  async pollOne(d: Device): Promise<PollResult> {
    const s = this.config.settings.polling;
    let memory = this.memory.get(d.id);
    if (!memory) {
      memory = newMemory();
      this.memory.set(d.id, memory);
    }
    let result: PollResult;
    try {
      // One long-lived session (one UDP socket) per device: no socket set-up
      // per poll, and SNMPv3 discovers the engine once, not every poll.
      let session = this.sessions.get(d.id);
      if (!session) {
        session = new SnmpSession(d.address, d.port, d.snmp!, { timeoutMs: s.timeout, retries: s.retries });
        this.sessions.set(d.id, session);
      }
      result = await pollDevice(session, d, this.config.profiles, memory, { maxRepetitions: s.max_repetitions });
    } catch (err) {
      // Session creation itself failed (bad address family, no socket).
      const message = `local_error: open session: ${(err as Error).message}`;
      const r = { answered: false, ok: false, error: `school ${d.school.code} ${d.kind} ${d.id} ${d.address}: ${message}`, problems: [{ kind: 'local_error' as const, message, count: 1 }], durationMs: 0, pdus: 0, timeouts: 0 };
      result = { device: d.id, ...r, points: [devicePoint(d, r, Date.now())] };
    }
    const st = this.status.get(d.id)!;
    if (d.profile === 'auto' && result.profile && result.profile !== st.snmp?.profile) {
      this.log.info({ device: d.id, school: d.school.code, kind: d.kind, sys_object_id: this.memory.get(d.id)?.sysObjectID, profile: result.profile, before: st.snmp?.profile }, 'profile chosen by sysObjectID');
    }
    st.snmp = { ok: result.ok, at: Date.now(), ...(result.error ? { error: result.error } : {}), ...(result.profile ? { profile: result.profile } : {}) };
    // What the profile cannot feed is said, on the device point and in /healthz (notWatched).
    if (result.profile) {
      st.notWatched = notWatched(d, result.profile, this.config.profiles.get(result.profile), this.config.settings.alerts.thresholds, result);
      const dp = result.points.find((p) => p.measurement === 'device');
      if (dp) dp.fields.not_watched = st.notWatched.map((n) => n.detail).join('; ');
    }
    if (!result.ok) this.log.warn({ device: d.id, school: d.school.code, err: result.error }, 'poll failed');
    return result;
  }

  /**
   * Another shard's device, probed for dependency only: one GET of sysUpTime.
   * Any reply (even an error status) proves it reachable; no points, no
   * profile, no counters of its own.
   */
  async probeOne(d: Device): Promise<PollResult> {
    const s = this.config.settings.polling;
    const t0 = performance.now();
    let answered = false;
    let error: string | undefined;
    try {
      let session = this.sessions.get(d.id);
      if (!session) {
        session = new SnmpSession(d.address, d.port, d.snmp!, { timeoutMs: s.timeout, retries: s.retries });
        this.sessions.set(d.id, session);
      }
      await session.get([SYS_UPTIME], 'dependency probe');
      answered = true;
    } catch (err) {
      const kind = (err as { kind?: string }).kind;
      answered = kind !== undefined && kind !== 'timeout' && kind !== 'local_error';
      error = `school ${d.school.code} ${d.kind} ${d.id} ${d.address}: ${(err as Error).message}`;
    }
    const st = this.status.get(d.id)!;
    st.snmp = { ok: answered, at: Date.now(), ...(error ? { error } : {}) };
    return { device: d.id, ok: answered, answered, ...(error ? { error } : {}), durationMs: performance.now() - t0, pdus: 1, timeouts: 0, points: [] };
  }

  /**
   * Device states from the round: reachable when an echo came back or the
   * SNMP agent answered. States, incidents and their points; nothing when
   * states are off (poll --once).
   */
  private judge(devices: readonly Device[], results: readonly PollResult[], icmp: ReadonlyMap<string, IcmpResult>, icmpUnknown: ReadonlySet<string>, emit: (ps: Point[]) => void): { transitions: Transition[]; opened: Incident[]; closed: Incident[]; notices: Notice[] } {
    const { engine, store } = this;
    if (!engine || !store) return { transitions: [], opened: [], closed: [], notices: [] };
    const snmp = new Map(results.map((r) => [r.device, r]));
    const raws = new Map<string, Raw>();
    for (const d of devices) {
      const echo = d.icmp ? icmp.get(d.address) : undefined;
      const poll = snmp.get(d.id);
      if (!echo && !poll) continue;
      // ICMP unknown: an SNMP answer still proves the device up; nothing proves it down.
      if (!echo && icmpUnknown.has(d.id) && poll?.answered !== true) continue;
      raws.set(d.id, (echo?.received ?? 0) > 0 || poll?.answered === true ? 'up' : 'down');
    }
    const checks: CheckObservation[] = [];
    for (const d of devices) {
      if (raws.get(d.id) !== 'up' || !this.owns(d)) continue;
      checks.push(...deviceChecks(d, snmp.get(d.id), icmp.get(d.address), this.config.settings.alerts.thresholds));
    }
    const now = Date.now();
    // Maintenance windows made over the API (stores/maintenance.ts), beside
    // the settings' own: those in force now, one indexed query. A failed read
    // keeps the last list (the round goes on) and says so.
    try {
      this.schedule?.setWindows(windowsBetween(store.db, now, now + 1));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'maintenance windows not read from the state database this round; the last ones read still apply');
    }
    // Another shard's device changes state here only to explain ours: no
    // incident, no notice, no point (its own shard records and tells it).
    const all = engine.observe(raws, now, checks);
    const transitions = all.filter((t) => this.shard.owned.has(t.device));
    for (const t of all) if (!this.shard.owned.has(t.device)) this.log.debug({ device: t.device, from: t.from, to: t.to, shard: this.shard.label }, 'dependency state changed (another shard\'s device: not recorded or alerted here)');
    const { opened, closed, continued } = store.apply(this.config.devices, engine.states, transitions);
    // An outage that went on through a maintenance window (or the night, for a receiver) is no new failure: no second "down" notice.
    const goesOn = new Set(continued.map((c) => c.subject));
    // What was watched this round: the report counts only observed time (issue 16).
    if (devices.length > 0) store.recordRound(now, this.intervalOf(devices[0]!), raws.keys());
    for (const t of transitions) {
      const d = this.config.deviceById.get(t.device)!;
      const level = t.to === 'down' || t.to === 'unreachable' ? 'warn' : 'info';
      this.log[level]({ device: t.device, check: t.check, detail: t.detail, school: d.school.code, from: t.from, to: t.to, cause: t.cause, flapping: t.flapping }, t.check ? 'check state changed' : 'device state changed');
    }
    const ps: Point[] = [];
    for (const d of devices) {
      if (!raws.has(d.id) || !this.owns(d)) continue;
      const st = engine.states.get(d.id)!;
      const fields: Record<string, number | string> = { state: st.state, state_code: STATES.indexOf(st.state), judged: st.judged ? 1 : 0, flapping: st.flapping ? 1 : 0 };
      if (st.state === 'up') fields.up = 1;
      else if (st.state === 'down' || st.state === 'unreachable') fields.up = 0;
      ps.push({ measurement: 'device_state', tags: deviceTags(d), fields, time: now });
    }
    // Each check of a device that answered, with what it saw: the dashboards list the failing ones (issue 16).
    for (const c of checks) {
      const st = engine.states.get(checkSubject(c.device.id, c.check));
      if (!st) continue;
      const fields: Record<string, number | string> = { state: st.state, failing: st.state === 'down' ? 1 : 0, since: st.since, detail: c.detail };
      if (c.facts?.value !== undefined && Number.isFinite(c.facts.value)) fields.value = c.facts.value;
      ps.push({ measurement: 'check_state', tags: { ...deviceTags(c.device), check: c.check }, fields, time: now });
    }
    const stateOf = (id: string) => engine.states.get(id)?.state;
    const schools: Record<string, number> = { schools_up: 0, schools_degraded: 0, schools_down: 0, schools_unreachable: 0, schools_unknown: 0 };
    const instance = this.config.settings.instance;
    for (const school of this.config.schools) {
      if (!this.shard.schools.has(school.code)) continue;
      const s = schoolState(school.devices, stateOf);
      if (!school.office) schools[`schools_${s.state === 'maintenance' ? 'unknown' : s.state}`]! += 1;
      const fields: Record<string, number | string> = { state: s.state, state_code: SCHOOL_STATES.indexOf(s.state), devices_up: s.up, devices_down: s.down, devices_unreachable: s.unreachable };
      if (school.location) {
        fields.lat = school.location.lat;
        fields.lon = school.location.lon;
      }
      ps.push({ measurement: 'school_state', tags: { school: school.code, school_name: school.name_th, district: school.district, instance }, fields, time: now });
    }
    for (const [inc, end] of [...opened.map((i) => [i, false] as const), ...closed.map((i) => [i, true] as const)]) {
      const d = this.config.deviceById.get(inc.device);
      if (!d) continue;
      const fields: Record<string, number | string> = { incident_id: inc.id, cause: inc.cause };
      if (end) {
        fields.closed = 1;
        fields.duration_s = inc.durationS ?? 0;
      } else fields.opened = 1;
      ps.push({ measurement: 'incident', tags: { ...deviceTags(d), check: inc.check || '-', outage: inc.state }, fields, time: end ? inc.endedAt! : inc.startedAt });
    }
    // This collector's share: summed over instances, the area's figures.
    const count = (state: string) => this.config.devices.filter((d) => this.shard.owned.has(d.id) && stateOf(d.id) === state).length;
    ps.push({
      measurement: 'area_state',
      tags: { instance },
      fields: { devices_up: count('up'), devices_down: count('down'), devices_unreachable: count('unreachable'), devices_unknown: count('unknown'), devices_maintenance: count('maintenance'), incidents_open: store.openIncidents().length, ...schools },
      time: now,
    });
    emit(ps);

    const mail = this.config.settings.mail;
    const notices = composeNotices({ config: this.config, transitions: transitions.filter((t) => !goesOn.has(t.subject)), opened, closed, behind: (id) => engine.behind(id), officer: mail?.officer ?? [], areaSchools: mail?.area_schools ?? 5 });
    if (this.outbox) this.outbox.enqueue(notices);
    else for (const n of notices) if (n.to.length > 0) this.log.info({ to: n.to, subject: n.subject, text: n.text }, 'notice (mail is not configured: logged only)');
    return { transitions, opened, closed, notices };
  }

  private selfPoint(r: RoundSummary): Point {
    const w = this.writer.stats;
    const fields: Record<string, number> = {
      round_ms: r.durationMs,
      devices: r.devices,
      devices_polled: r.polled,
      devices_failed: r.failed,
      snmp_timeouts: r.timeouts,
      icmp_hosts: r.icmpHosts,
      icmp_down: r.icmpDown,
      icmp_ms: r.icmpMs,
      overruns: r.overruns,
      points_written: w.written,
      points_spooled: w.spooled,
      points_dropped: w.dropped,
      spool_bytes: w.spoolBytes,
      write_errors: w.writeErrors,
      rss_bytes: process.memoryUsage.rss(),
      values_dropped: r.valuesDropped,
      devices_not_watched: this.notWatched().length,
    };
    for (const [kind, field] of Object.entries(SNMP_ERROR_FIELDS)) fields[field] = r.snmpErrors[kind as SnmpErrorKind] ?? 0;
    if (this.clock && 'offsetMs' in this.clock) fields.clock_offset_ms = this.clock.offsetMs;
    return { measurement: 'klaiwatch', tags: { instance: this.config.settings.instance, interval: r.interval }, fields, time: Date.now() };
  }

  /** What GET /healthz shows; also what an API route will return later. */
  /** The clock offset last measured against NTP (ms), or null. */
  clockOffsetMs(): number | null {
    return this.clock && 'offsetMs' in this.clock ? this.clock.offsetMs : null;
  }

  /** Points from another part of the service (the traffic archive's figures), through the same writer and spool. */
  writePoints(ps: Point[]): void {
    if (this.opts.write !== false && ps.length > 0) this.writer.write(toLines(ps));
  }

  /**
   * Devices with checks nothing feeds (not_watched): as their last poll
   * found, or from an explicit profile before one. A device on `auto` is
   * known only once its sysObjectID chose a profile.
   */
  notWatched(devices: readonly Device[] = this.config.devices): { device: Device; profile: string; items: NotWatched[] }[] {
    const out: { device: Device; profile: string; items: NotWatched[] }[] = [];
    for (const d of devices) {
      const st = this.status.get(d.id);
      const profile = st?.snmp?.profile ?? (d.profile === 'auto' ? undefined : d.profile);
      if (!profile) continue;
      const items = st?.notWatched ?? notWatched(d, profile, this.config.profiles.get(profile), this.config.settings.alerts.thresholds);
      if (items.length > 0) out.push({ device: d, profile, items });
    }
    return out;
  }

  /** What `poll --once` says after the line protocol: each device's profile (and why), what is not watched, what was dropped. */
  pollNotes(devices: readonly Device[], results: readonly PollResult[]): string[] {
    const lines: string[] = [];
    const byId = new Map(results.map((r) => [r.device, r]));
    for (const d of devices) {
      const r = byId.get(d.id);
      const st = this.status.get(d.id);
      const profile = r?.profile ?? (d.profile === 'auto' ? undefined : d.profile);
      const why = d.profile === 'auto' ? (profile ? `chosen by sysObjectID ${this.memory.get(d.id)?.sysObjectID ?? '?'}` : 'auto: not chosen, the device gave no sysObjectID') : 'from the inventory';
      lines.push(`# ${d.id}: profile ${profile ?? '-'} (${why})`);
      const items = st?.notWatched ?? (profile ? notWatched(d, profile, this.config.profiles.get(profile), this.config.settings.alerts.thresholds) : []);
      for (const n of items) lines.push(`# ${d.id}: not_watched ${n.check}: ${n.detail}`);
      if (r?.valuesDropped) {
        for (const x of r.droppedDetail ?? []) lines.push(`# ${d.id}: value dropped: ${x}`);
        if (r.valuesDropped > (r.droppedDetail?.length ?? 0)) lines.push(`# ${d.id}: and ${r.valuesDropped - (r.droppedDetail?.length ?? 0)} more values dropped`);
      }
    }
    return lines;
  }

  health(): Record<string, unknown> {
    const w = this.writer.stats;
    const unwatched = this.notWatched();
    // A device polled over SNMP whose checks nothing feeds is a problem; an icmp-only one was chosen so (listed, not counted).
    const unwatchedIds = new Set(unwatched.filter((u) => this.config.profiles.get(u.profile)?.snmp !== false).map((u) => u.device.id));
    const down = [...this.status.values()].filter((s) => (s.snmp && !s.snmp.ok) || (s.icmp && !s.icmp.up) || unwatchedIds.has(s.id)).length;
    const influxOk = w.spoolLines === 0 && (w.lastWriteAt !== undefined || w.writeErrors === 0);
    const ntp = this.config.settings.ntp;
    const clockOk = !this.clock || ('offsetMs' in this.clock && Math.abs(this.clock.offsetMs) <= (ntp?.warn_ms ?? 10));
    const icmp = this.icmpHealth;
    return {
      status: influxOk && clockOk && !icmp.lastRoundUnknown ? 'ok' : 'degraded',
      instance: this.config.settings.instance,
      area: this.config.settings.area.code,
      started_at: new Date(this.startedAt).toISOString(),
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      // The devices this collector owns (under collector.shard its share, not the inventory's total), and apart the other shards' it probes for dependency only.
      devices: this.shard.owned.size,
      dependency_probes: this.shard.dependencies.size,
      devices_with_problems: down,
      problems: openProblems(this.config, this.engine, (id) => this.shard.owned.has(id)),
      devices_not_watched: unwatched.length,
      // Each check a device's kind has that its profile cannot feed (a receiver on `generic` has no lock check).
      not_watched: unwatched.slice(0, 200).flatMap((u) => u.items.map((n) => ({ device: u.device.id, school: u.device.school.code, kind: u.device.kind, profile: u.profile, check: n.check, state: 'not_watched', detail: n.detail }))),
      rounds: Object.fromEntries([...this.lastRounds].map(([k, r]) => [k, { ...r, startedAt: new Date(r.startedAt).toISOString(), durationMs: Math.round(r.durationMs) }])),
      influx: {
        url: this.client.target.url,
        database: this.client.target.database,
        version: this.schema?.version ?? null,
        points_written: w.written,
        points_spooled: w.spooled,
        points_dropped: w.dropped,
        spool_bytes: w.spoolBytes,
        spool_points: w.spoolLines,
        write_errors: w.writeErrors,
        last_error: w.lastError ?? null,
        last_write_at: w.lastWriteAt ? new Date(w.lastWriteAt).toISOString() : null,
      },
      icmp: {
        prober: this.prober?.name ?? 'disabled',
        last_round_unknown: icmp.lastRoundUnknown,
        unknown_rounds: icmp.unknownRounds,
        unknown_hosts_last_round: icmp.unknownHosts,
        last_error: icmp.lastError ?? null,
        last_error_at: icmp.lastErrorAt ? new Date(icmp.lastErrorAt).toISOString() : null,
      },
      clock: this.clock ? { ...this.clock, at: new Date(this.clock.at).toISOString(), limit_ms: ntp?.warn_ms } : ntp ? { pending: true } : { configured: false },
      rss_bytes: process.memoryUsage.rss(),
    };
  }
}

/** Polls per kind of SNMP failure in a round: a poll counts once per kind it named. */
function countKinds(results: readonly PollResult[]): Partial<Record<SnmpErrorKind, number>> {
  const out: Partial<Record<SnmpErrorKind, number>> = {};
  for (const r of results) {
    if (!r.problems || r.problems.length === 0) continue;
    for (const kind of new Set(r.problems.map((p) => p.kind))) out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}
