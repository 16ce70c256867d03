// The API's tests run on real stores: a simulated area on loopback
// (snmpsimd serving recorded devices, two of them silent), a real InfluxDB,
// and a real collector (in this process) that runs a few rounds, so the
// state database holds states, incidents and rounds and InfluxDB holds
// points, as on a real server. Then the API app is built on those stores,
// with one token per role (and a school token for SCHOOL).
import { join } from 'node:path';
import pino from 'pino';
import { buildSimArea, DEFAULT_SILENT, type SimArea } from '../../sim/area.ts';
import { startSnmpsim, type Snmpsim } from '../../sim/snmpsim.ts';
import { loadConfig, type Config } from '../../config/load.ts';
import { Collector } from '../../collector/collector.ts';
import { startTestInflux, type TestInflux } from '../helpers/influx.ts';
import { requireBinary, tempDir } from '../helpers/peers.ts';
import { apiContext, type ApiContext } from '../../api/context.ts';
import { buildApp, SESSION_COOKIE, type App, type AppOptions } from '../../api/app.ts';
import type { Role } from '../../api/tokens.ts';

/** A school whose router is silent to SNMP (DEFAULT_SILENT): on loopback it still answers ping, so after the rounds its "snmp" check fails (with ICMP off, the router is down). */
export const DOWN_SCHOOL = '1036090119';
/** The school the school token belongs to. */
export const SCHOOL = '1036090101';
/** Another school, which the school token must never see. */
export const OTHER_SCHOOL = '1036090102';

export interface ApiArea {
  dir: string;
  area: SimArea;
  config: Config;
  influx: TestInflux;
  ctx: ApiContext;
  app: App;
  /** One token per role; `school` is SCHOOL's. */
  tokens: Record<Role, string>;
  /** Headers with a role's token. */
  as(role: Role | 'none'): Record<string, string>;
  /** A Cookie header value with a pages session logged in with a role's token (as POST /auditor/login makes). */
  session(role: Role): string;
  /** Builds another app on the same stores (other options: rate limit, logger). */
  another(o?: AppOptions, health?: () => Promise<Record<string, unknown>>): Promise<App>;
  close(): Promise<void>;
}

export interface ApiAreaOptions {
  /** Second octet of the area's loopback addresses (127.N.0.0/16): one per test file. */
  octet: number;
  /** Rounds the collector runs before the app is built (each confirms states). Default 3. */
  rounds?: number;
  /** Extra settings (e.g. a traffic section). */
  extraSettings?: Record<string, unknown>;
  app?: AppOptions;
}

export async function startApiArea(o: ApiAreaOptions): Promise<ApiArea> {
  await requireBinary('fping', 'fping');
  const dir = tempDir('api-area');
  const influx = await startTestInflux(`api${o.octet}`);
  let agents: Snmpsim | undefined;
  let collector: Collector | undefined;
  try {
    const area = buildSimArea({ dir: dir.path, influxUrl: influx.server.url, database: 'api', octet: o.octet, silent: DEFAULT_SILENT, ...(o.extraSettings ? { extraSettings: o.extraSettings } : {}) });
    agents = await startSnmpsim({ dir: dir.path, dataDir: area.dataDir, endpoints: area.endpoints, probeCommunity: 'router' });
    const config = loadConfig(area.settingsPath);
    collector = new Collector(config, pino({ level: 'silent' }));
    await collector.prepare();
    for (let i = 0; i < (o.rounds ?? 3); i++) await collector.runRound(config.devices, 30_000, { jitter: false });
    await collector.stop();
    collector = undefined;
    await agents.stop();
    agents = undefined;
    const health = async () => ({ status: 'ok', note: 'test: no parts running' });
    const ctx = apiContext(config, health);
    const app = await buildApp(ctx, o.app ?? {});
    const tokens = {
      officer: ctx.tokens.create({ role: 'officer', name: 'เจ้าหน้าที่ไอที (test)' }).token,
      auditor: ctx.tokens.create({ role: 'auditor', name: 'ผู้ตรวจสอบ (test)' }).token,
      school: ctx.tokens.create({ role: 'school', name: 'ครูโรงเรียน (test)', school: SCHOOL }).token,
      viewer: ctx.tokens.create({ role: 'viewer', name: 'ผู้อำนวยการ (test)' }).token,
    } satisfies Record<Role, string>;
    const apps: App[] = [app];
    return {
      dir: dir.path,
      area,
      config,
      influx,
      ctx,
      app,
      tokens,
      as: (role): Record<string, string> => (role === 'none' ? {} : { authorization: `Bearer ${tokens[role]}` }),
      session: (role) => {
        const r = ctx.tokens.check(tokens[role]);
        if (!('principal' in r)) throw new Error(`the ${role} token is ${r.refused}`);
        return `${SESSION_COOKIE}=${ctx.sessions.create(r.principal, ctx.now())}`;
      },
      async another(ao = {}, h = health) {
        const a = await buildApp({ ...ctx, health: h }, ao);
        apps.push(a);
        return a;
      },
      async close() {
        for (const a of apps) await a.close();
        ctx.close();
        await influx.close();
        dir.remove();
      },
    };
  } catch (err) {
    await collector?.stop().catch(() => undefined);
    await agents?.stop().catch(() => undefined);
    await influx.close();
    dir.remove();
    throw err;
  }
}

export const stateDbOf = (a: ApiArea) => join(a.dir, 'state.sqlite');
