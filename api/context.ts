// What the API reads: the settings and inventory, the state database
// (device states, incidents, rounds, maintenance windows), InfluxDB for
// recent metrics, the traffic archive for auditors, and the tokens. It never
// polls and never imports the collector: it reads the stores the parts write.
import { resolve, dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { existsSync } from 'node:fs';
import type { Config } from '../config/load.ts';
import { InfluxClient } from '../stores/influx/client.ts';
import { TokenStore } from './tokens.ts';
import { SessionStore } from './sessions.ts';

export interface ApiContext {
  config: Config;
  /** The state database's file (alerts.state_db, resolved). */
  stateDbFile: string;
  /**
   * The state database, opened on first use (read-write: maintenance windows
   * are written here; WAL lets the collector write beside it). Throws when the
   * file does not exist yet (no collector has run).
   */
  stateDb(): DatabaseSync;
  tokens: TokenStore;
  /** The auditor pages' log-in sessions (in this process's memory). */
  sessions: SessionStore;
  /** InfluxDB, for recent metrics; its own timeouts bound every query. */
  influx: InfluxClient;
  /** /healthz's body (status "ok" or not): the parts' health as this process knows it, and the state store's figures. */
  health(): Promise<Record<string, unknown>>;
  now(): number;
  close(): void;
}

export class StoreMissing extends Error {}

/** The context for a configuration; `health` is given by whoever runs the API (supervisor relay or its own probes). */
export function apiContext(config: Config, health: () => Promise<Record<string, unknown>>, o: { baseDir?: string; now?: () => number } = {}): ApiContext {
  const base = o.baseDir ?? dirname(config.file);
  const stateDbFile = resolve(base, config.settings.alerts.state_db);
  const tokens = new TokenStore(resolve(base, config.settings.api.tokens_db));
  const i = config.settings.influx;
  const influx = new InfluxClient({ url: i.url, database: i.database, username: i.username, auth: config.influxAuth, timeoutMs: Math.min(i.timeout, 5_000) });
  let db: DatabaseSync | undefined;
  return {
    config,
    stateDbFile,
    stateDb() {
      if (db) return db;
      if (!existsSync(stateDbFile)) throw new StoreMissing(`the state database ${stateDbFile} does not exist yet: no collector has run with these settings`);
      db = new DatabaseSync(stateDbFile);
      db.exec('PRAGMA busy_timeout = 5000;');
      return db;
    },
    tokens,
    sessions: new SessionStore(tokens),
    influx,
    health,
    now: o.now ?? Date.now,
    close() {
      db?.close();
      db = undefined;
      tokens.close();
    },
  };
}
