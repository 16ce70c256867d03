// `klaiwatch api`: the API, /healthz and the auditor's pages as a process of
// its own (alone, or forked by `klaiwatch run`). It reads the stores the other
// parts write and never polls. SIGTERM: new requests are refused (503) and
// new connections closed, requests in flight finish, and the process ends
// within STOP_DEADLINE_MS whatever happens.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/load.ts';
import type { Logger } from '../config/log.ts';
import { apiContext } from './context.ts';
import { buildApp } from './app.ts';
import { HealthSource } from './health.ts';

/** After SIGTERM the API is gone by then: in-flight requests have this long (less a margin) to finish. */
export const STOP_DEADLINE_MS = 10_000;

export interface ServeOptions {
  log: Logger;
  /** Forked by `klaiwatch run`: health arrives from the supervisor. */
  supervised: boolean;
  /** Resolves when the process is asked to stop (SIGTERM, SIGINT, the supervisor gone). */
  stopped: Promise<string>;
  /** Called with each message from the supervisor's IPC channel (when supervised). */
  onMessage?: (handler: (m: unknown) => void) => void;
  /** Sends this part's own health to the supervisor; returns its stopper. */
  reportHealth?: (health: () => Record<string, unknown>) => () => void;
}

export async function serveApi(config: Config, o: ServeOptions): Promise<number> {
  const s = config.settings;
  const base = dirname(config.file);
  const listen = s.api.listen ?? s.http.listen;
  let https: { cert: Buffer; key: Buffer } | undefined;
  if (s.api.tls) {
    const read = (setting: string, file: string) => {
      try {
        return readFileSync(resolve(base, file));
      } catch (err) {
        throw new Error(`${setting}: ${JSON.stringify(file)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    https = { cert: read('api.tls.cert', s.api.tls.cert), key: read('api.tls.key', s.api.tls.key) };
  }
  let source: HealthSource | undefined;
  const ctx = apiContext(config, () => source!.health());
  source = new HealthSource(config, () => ctx.stateDb(), o.supervised);
  o.onMessage?.((m) => {
    const msg = m as { type?: string; health?: Record<string, unknown> };
    if (msg?.type === 'supervisor-health' && msg.health && typeof msg.health === 'object') source!.relayed(msg.health);
  });
  const app = await buildApp(ctx, {
    logger: o.log.child({ part: 'api' }),
    ...(https ? { https } : {}),
    rateLimit: s.api.rate_limit,
    bodyLimit: s.api.body_limit,
    trustProxy: s.api.trust_proxy,
  });
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  try {
    await app.listen({ host, port });
  } catch (err) {
    ctx.close();
    throw new Error(`${s.api.listen !== undefined ? 'api.listen' : 'http.listen'}: ${JSON.stringify(listen)} cannot be listened on (TCP): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const stopHealth = o.reportHealth?.(() => ({ status: 'ok', part: 'api', pid: process.pid, listen, tls: https !== undefined }));
  o.log.info({ part: 'api', listen, tls: https !== undefined, tokens: ctx.tokens.list().filter((t) => t.revokedAt === null).length }, `API listening on ${https ? 'https' : 'http'}://${listen} (/v1, /docs, /auditor, /healthz)`);
  const why = await o.stopped;
  stopHealth?.();
  // The deadline: whatever is still running after it is cut (the process must end within 10 s of SIGTERM).
  const deadline = setTimeout(() => {
    o.log.warn({ part: 'api', reason: why }, 'requests still running at the stop deadline: connections closed');
    app.server.closeAllConnections?.();
  }, STOP_DEADLINE_MS - 3_000);
  deadline.unref();
  await app.close();
  clearTimeout(deadline);
  ctx.close();
  o.log.info({ part: 'api' }, 'API stopped');
  return 0;
}
