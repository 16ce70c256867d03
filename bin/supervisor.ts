// `klaiwatch run`: a small supervisor. It forks the parts as processes of
// their own, each the same CLI with its own command: `klaiwatch collector`
// (polling, alerting) and, when traffic is configured, `klaiwatch archive
// serve` (the traffic-log receivers). A flood of bad datagrams or a parse that
// never ends can then cost the archive its process, never the collector its
// polling rounds. A part that dies is started again after 1 s, doubling to
// 60 s (back to 1 s after a minute of good running); each restart is logged
// and counted. GET /healthz here shows every part, from what each sends over
// its IPC channel every few seconds.
import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Logger } from 'pino';

/** What a part sends its supervisor over IPC. */
export type PartMessage = { type: 'health'; health: Record<string, unknown> } | { type: 'traffic'; fields: Record<string, number>; time: number };
/** What the supervisor sends the API part: its view of every part, for GET /healthz. */
export type SupervisorMessage = { type: 'supervisor-health'; health: Record<string, unknown> };

export const HEALTH_INTERVAL_MS = 2_000;
/** A part whose last health report is older than this shows as "silent". */
const HEALTH_STALE_MS = 15_000;

export interface ProcessCounters {
  uncaught_exceptions: number;
  unhandled_rejections: number;
}

/**
 * Process-level handlers for one part: an unhandled rejection is logged
 * (one line) and counted; an uncaught exception is logged, counted and ends
 * the process with code 70 (its state is unknown after one), so that the
 * supervisor (or systemd) starts it again.
 */
export function installProcessHandlers(log: Logger, part: string): ProcessCounters {
  const counters: ProcessCounters = { uncaught_exceptions: 0, unhandled_rejections: 0 };
  process.on('unhandledRejection', (reason) => {
    counters.unhandled_rejections++;
    log.error({ part, err: reason instanceof Error ? reason.message : String(reason), count: counters.unhandled_rejections }, 'unhandled promise rejection (counted; the part goes on)');
  });
  process.on('uncaughtException', (err) => {
    counters.uncaught_exceptions++;
    log.fatal({ part, err: err instanceof Error ? err.message : String(err) }, 'uncaught exception: the part exits to be started again');
    log.flush?.();
    process.exit(70);
  });
  return counters;
}

/** Under `klaiwatch run`: this process is a part, forked with an IPC channel to its supervisor. */
export function supervised(): boolean {
  return typeof process.send === 'function' && process.env.KLAIWATCH_SUPERVISED === '1';
}

/** A part sends its health to the supervisor every HEALTH_INTERVAL_MS; returns a function that stops it. */
export function reportHealth(health: () => Record<string, unknown>): () => void {
  const send = () => {
    if (process.connected) process.send!({ type: 'health', health: health() } satisfies PartMessage, undefined, {}, () => undefined);
  };
  send();
  const t = setInterval(send, HEALTH_INTERVAL_MS);
  return () => clearInterval(t);
}

/** Resolves on SIGTERM, SIGINT, or (a part) when the supervisor's channel closes: the supervisor is gone. */
export function stopSignal(log: Logger): Promise<string> {
  return new Promise((res) => {
    const stop = (why: string) => {
      log.info({ signal: why }, 'stopping');
      res(why);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    if (supervised()) process.once('disconnect', () => stop('supervisor gone (IPC channel closed)'));
  });
}

/** A part that has stopped lets go of its IPC channel (while it is open the process cannot end). */
export function leaveSupervisor(): void {
  if (process.connected) process.disconnect();
}

export interface PartSpec {
  name: string;
  /** The CLI arguments after the script, e.g. ['collector', '--config', FILE]. */
  args: string[];
  execArgv: string[];
}

export interface SupervisorOptions {
  script: string;
  parts: PartSpec[];
  log: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Running this long without dying puts the backoff back to its minimum. */
  resetAfterMs?: number;
  /** After SIGTERM, a part still running this long after is killed. */
  stopGraceMs?: number;
  env?: NodeJS.ProcessEnv;
}

interface Part {
  spec: PartSpec;
  proc: ChildProcess | undefined;
  state: 'starting' | 'running' | 'restarting' | 'down';
  restarts: number;
  upSince: number | undefined;
  backoffMs: number;
  health: Record<string, unknown> | undefined;
  healthAt: number;
  lastExit: { code: number | null; signal: string | null; at: number } | undefined;
  timer: NodeJS.Timeout | undefined;
  restartAt: number;
}

export class Supervisor {
  private readonly parts = new Map<string, Part>();
  private stopping = false;
  private readonly o: Required<Omit<SupervisorOptions, 'env'>> & { env: NodeJS.ProcessEnv };
  readonly startedAt = Date.now();
  counters: ProcessCounters = { uncaught_exceptions: 0, unhandled_rejections: 0 };

  constructor(o: SupervisorOptions) {
    this.o = { minBackoffMs: 1_000, maxBackoffMs: 60_000, resetAfterMs: 60_000, stopGraceMs: 10_000, env: process.env, ...o };
    for (const spec of o.parts) this.parts.set(spec.name, { spec, proc: undefined, state: 'down', restarts: 0, upSince: undefined, backoffMs: this.o.minBackoffMs, health: undefined, healthAt: 0, lastExit: undefined, timer: undefined, restartAt: 0 });
  }

  start(): void {
    for (const p of this.parts.values()) this.spawn(p);
  }

  private spawn(p: Part): void {
    p.timer = undefined;
    if (this.stopping) return;
    const proc = fork(this.o.script, p.spec.args, { execArgv: p.spec.execArgv, env: { ...this.o.env, KLAIWATCH_SUPERVISED: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    p.proc = proc;
    p.state = 'starting';
    p.health = undefined;
    p.upSince = Date.now();
    proc.on('message', (m: PartMessage) => this.message(p, m));
    proc.on('error', (err) => this.o.log.error({ part: p.spec.name, err: err.message }, 'part process error'));
    proc.on('exit', (code, signal) => this.exited(p, proc, code, signal));
    this.o.log.info({ part: p.spec.name, pid: proc.pid }, 'part started');
  }

  /** Sends a message to a part when it is running (dropped otherwise). */
  sendTo(name: string, m: SupervisorMessage): void {
    const proc = this.parts.get(name)?.proc;
    if (proc?.connected) proc.send(m, undefined, {}, () => undefined);
  }

  private message(p: Part, m: PartMessage): void {
    if (!m || typeof m !== 'object') return;
    if (m.type === 'health') {
      const first = p.health === undefined;
      p.health = m.health;
      p.healthAt = Date.now();
      if (p.state === 'starting') p.state = 'running';
      // The API part gets the picture at once when it (or any part) first reports, not 2 s later.
      if (first) this.sendTo('api', { type: 'supervisor-health', health: this.health() });
    } else if (m.type === 'traffic') {
      // The archive's figures are written by the collector (it holds the InfluxDB writer and its spool).
      const c = this.parts.get('collector')?.proc;
      if (c?.connected) c.send(m, undefined, {}, () => undefined);
    }
  }

  private exited(p: Part, proc: ChildProcess, code: number | null, signal: string | null): void {
    if (p.proc !== proc) return;
    p.proc = undefined;
    p.lastExit = { code, signal, at: Date.now() };
    if (this.stopping) {
      p.state = 'down';
      return;
    }
    const ranMs = Date.now() - (p.upSince ?? Date.now());
    if (ranMs >= this.o.resetAfterMs) p.backoffMs = this.o.minBackoffMs;
    p.restarts++;
    p.state = 'restarting';
    const wait = p.backoffMs;
    p.backoffMs = Math.min(p.backoffMs * 2, this.o.maxBackoffMs);
    this.o.log.error({ part: p.spec.name, pid: proc.pid, code, signal, ran_s: Math.round(ranMs / 1000), restarts: p.restarts, restart_in_ms: wait }, `part ${p.spec.name} exited (${signal ? `signal ${signal}` : `code ${code}`}); starting it again in ${wait / 1000} s`);
    p.restartAt = Date.now() + wait;
    p.timer = setTimeout(() => this.spawn(p), wait);
  }

  /** GET /healthz under `klaiwatch run`: "ok" only when every part is running and says it is ok. */
  health(): Record<string, unknown> {
    const now = Date.now();
    const parts: Record<string, unknown> = {};
    let ok = true;
    for (const [name, p] of this.parts) {
      const fresh = p.health !== undefined && now - p.healthAt < HEALTH_STALE_MS;
      const status = p.state === 'running' ? (fresh ? String(p.health!.status ?? 'ok') : 'silent') : p.state;
      if (status !== 'ok') ok = false;
      parts[name] = {
        ...(p.health ?? {}),
        status,
        pid: p.proc?.pid ?? null,
        restarts: p.restarts,
        up_since: p.upSince && p.proc ? new Date(p.upSince).toISOString() : null,
        last_exit: p.lastExit ? { code: p.lastExit.code, signal: p.lastExit.signal, at: new Date(p.lastExit.at).toISOString() } : null,
        ...(p.state === 'restarting' ? { restart_in_ms: Math.max(0, p.restartAt - now) } : {}),
      };
    }
    return { status: ok ? 'ok' : 'degraded', supervisor: { pid: process.pid, started_at: new Date(this.startedAt).toISOString(), ...this.counters }, parts };
  }

  /** SIGTERM to every part; SIGKILL to what still runs after stopGraceMs; resolves when all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    const waits: Promise<void>[] = [];
    for (const p of this.parts.values()) {
      if (p.timer) clearTimeout(p.timer);
      const proc = p.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) continue;
      waits.push(
        new Promise<void>((res) => {
          const kill = setTimeout(() => {
            this.o.log.warn({ part: p.spec.name, pid: proc.pid, grace_ms: this.o.stopGraceMs }, 'part did not stop in time: killed');
            proc.kill('SIGKILL');
          }, this.o.stopGraceMs);
          proc.once('exit', () => {
            clearTimeout(kill);
            res();
          });
          proc.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(waits);
  }
}

/**
 * `klaiwatch run`: the parts as processes; the API part serves GET /healthz
 * over all of them from what the supervisor sends it every HEALTH_INTERVAL_MS.
 * Returns the exit code.
 */
export async function runSupervisor(o: {
  configFile: string;
  traffic: boolean;
  log: Logger;
  collectorFlags: readonly string[];
  archiveFlags: readonly string[];
  apiFlags: readonly string[];
  execArgv: (flags: readonly string[]) => string[];
}): Promise<number> {
  const file = resolve(o.configFile);
  const parts: PartSpec[] = [{ name: 'collector', args: ['collector', '--config', file], execArgv: o.execArgv(o.collectorFlags) }];
  if (o.traffic) parts.push({ name: 'archive', args: ['archive', 'serve', '--config', file], execArgv: o.execArgv(o.archiveFlags) });
  parts.push({ name: 'api', args: ['api', '--config', file], execArgv: o.execArgv(o.apiFlags) });
  const sup = new Supervisor({ script: process.argv[1]!, parts, log: o.log });
  sup.counters = installProcessHandlers(o.log, 'supervisor');
  sup.start();
  const relay = setInterval(() => sup.sendTo('api', { type: 'supervisor-health', health: sup.health() }), HEALTH_INTERVAL_MS);
  o.log.info({ parts: parts.map((p) => p.name) }, 'klaiwatch running (supervisor); the api part serves GET /healthz for every part');
  await stopSignal(o.log);
  clearInterval(relay);
  await sup.stop();
  return 0;
}
