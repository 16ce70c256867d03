// `klaiwatch archive serve`: the traffic-log receivers as a process of their
// own (alone, or as a part forked by `klaiwatch run`). It measures its own
// clock offset (clock/sntp.ts, from settings.ntp) for the segments it seals,
// and holds a lock on the archive folder: two receivers never write one
// write-ahead log. Nothing here comes from collector/: the logger, the HTTP
// health server and the IPC reporting are handed in by bin/.
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import { measureClock, type NtpMeasurement } from '../clock/sntp.ts';
import { listenProblems, ReceiverError, TrafficService, type TrafficStats } from './service.ts';

export class ServeError extends Error {}

export interface ServeOptions {
  log: Logger;
  /** Under `klaiwatch run`: report health and traffic figures to the supervisor instead of serving HTTP. */
  supervised: boolean;
  startHealthServer(listen: string, health: () => Record<string, unknown>): Promise<Server>;
  /** Sends health every few seconds (supervised); returns its stop. */
  reportHealth(health: () => Record<string, unknown>): () => void;
  /** The traffic figures for InfluxDB (supervised: over IPC to the collector). */
  sendTraffic(fields: TrafficStats): void;
  /** Resolves when the part is to stop (SIGTERM, SIGINT, the supervisor gone). */
  stopped: Promise<string>;
  counters: Record<string, number>;
  /** How long to wait for another receiver to let go of the archive folder (supervised: 20 s, a part started again while its predecessor stops; alone: not at all). */
  lockWaitMs?: number;
}

/** Takes DIR/serve.lock for this process; waits for a live holder up to `waitMs`, then refuses. */
export async function lockArchiveDir(dir: string, waitMs: number): Promise<() => void> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'serve.lock');
  const end = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
        } catch {
          // Already gone.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ServeError(`${file}: cannot take the archive's lock: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(file, 'utf8').slice(0, 16).trim());
    } catch {
      continue; // removed in between: try again
    }
    let alive = false;
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid) {
      try {
        process.kill(holder, 0);
        alive = true;
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (!alive) {
      // Left by a process that is gone (a crash, a kill -9): taken over.
      try {
        unlinkSync(file);
      } catch {
        // Someone else took it over first.
      }
      continue;
    }
    if (Date.now() > end) throw new ServeError(`${dir} is in use by another klaiwatch archive receiver (pid ${holder}, ${file}); stop it first: two receivers must not write one write-ahead log`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function serveArchive(config: Config, o: ServeOptions): Promise<number> {
  const t = config.settings.traffic;
  if (!t) throw new ServeError(`${config.file}: no traffic section: nothing to receive (see README, "Traffic-log archive")`);
  const log = o.log.child({ part: 'archive' });
  // The lock first (a second receiver on this folder is named as such), then every port (traffic.http when
  // alone, the receivers'), before the archive is opened: a busy one stops the start with one line naming its setting.
  const unlock = await lockArchiveDir(resolve(dirname(config.file), t.dir), o.lockWaitMs ?? (o.supervised ? 20_000 : 0));
  try {
    const busy = await listenProblems(t, !o.supervised);
    if (busy.length > 0) throw new ServeError(busy.join('; '));
  } catch (err) {
    unlock();
    throw err;
  }
  let server: Server | undefined;
  const startedAt = Date.now();
  // The clock offset recorded with each sealed segment, measured here (the collector's is another process's).
  let clock: (NtpMeasurement & { at: number }) | { error: string; at: number } | undefined;
  const ntp = config.settings.ntp;
  const checkClock = async () => {
    if (!ntp) return;
    try {
      clock = { ...(await measureClock(ntp.server, ntp.port)), at: Date.now() };
      if (Math.abs(clock.offsetMs) > ntp.warn_ms) log.warn({ offset_ms: clock.offsetMs, server: ntp.server, limit_ms: ntp.warn_ms }, 'clock offset beyond the limit the traffic-log rules allow');
    } catch (err) {
      clock = { error: (err as Error).message, at: Date.now() };
      log.warn({ err: (err as Error).message }, 'clock offset not measured');
    }
  };
  const clockTimer = ntp ? setInterval(() => void checkClock(), ntp.interval) : undefined;
  void checkClock();

  const svc = new TrafficService(config, o.log, () => (clock && 'offsetMs' in clock ? clock.offsetMs : null));
  let stopReport: (() => void) | undefined;
  let statsTimer: NodeJS.Timeout | undefined;
  try {
    try {
      await svc.start();
    } catch (err) {
      if (err instanceof ReceiverError) throw new ServeError(err.message);
      throw err;
    }
    const health = () => {
      const h = svc.health();
      return {
        ...h,
        part: 'archive',
        instance: config.settings.instance,
        pid: process.pid,
        started_at: new Date(startedAt).toISOString(),
        uptime_s: Math.round((Date.now() - startedAt) / 1000),
        clock: clock ? { ...clock, at: new Date(clock.at).toISOString(), limit_ms: ntp?.warn_ms } : ntp ? { pending: true } : { configured: false },
        process: { ...o.counters },
        rss_bytes: process.memoryUsage.rss(),
      };
    };
    if (o.supervised) {
      stopReport = o.reportHealth(health);
      // Every 30 s, the figures go to the collector (through the supervisor) for InfluxDB.
      statsTimer = setInterval(() => void svc.refreshStats().then((st) => o.sendTraffic({ ...st })), 30_000);
    } else {
      try {
        server = await o.startHealthServer(t.http, health);
      } catch (err) {
        // Taken since the check above (a race): named all the same.
        throw new ServeError(`traffic.http ${t.http} cannot be listened on: ${(err as Error).message.replace(/^http\.listen \S+: /, '')}`);
      }
      statsTimer = setInterval(() => void svc.refreshStats(), 30_000);
    }
    log.info({ bound: svc.bound, ...(server ? { http: t.http } : { supervised: true }) }, 'archive receivers running');
    await o.stopped;
  } finally {
    stopReport?.();
    if (statsTimer) clearInterval(statsTimer);
    if (clockTimer) clearInterval(clockTimer);
    server?.close();
    await svc.stop();
    unlock();
  }
  return 0;
}
