#!/usr/bin/env node
// klaiwatch: one command, a subcommand per job. Every subcommand has --help.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadConfig, ConfigError, formatProblems, MAX_PROBLEM_CHARS, MAX_PROBLEMS_SHOWN, type Config } from '../config/load.ts';
import { preflight, describeSystemError, checkOutputPath, OutputPathError } from '../config/preflight.ts';
import { importSchoolsCsv, inventoryYaml } from '../config/import-csv.ts';
import { createLogger } from '../config/log.ts';
import { notWatched } from '../collector/alerts/checks.ts';
import { describeShard, planShard } from '../config/shard.ts';
import { startHealthServer } from './health-server.ts';
import { toLine } from '../collector/influx/line.ts';
import { metricsMarkdown } from '../config/measurements.ts';
import { API_V8_FLAGS, ARCHIVE_V8_FLAGS, childExecArgv, COLLECTOR_V8_FLAGS } from '../collector/runtime.ts';
import type { Format } from '../report/render.ts';
// The collector, the dashboards and the report are loaded by the commands
// that use them: `archive serve` (a part of its own) and the archive's
// commands never load the collector's code.
const collectorModule = () => import('../collector/collector.ts');
import { installProcessHandlers, leaveSupervisor, reportHealth, runSupervisor, stopSignal, supervised, type PartMessage } from './supervisor.ts';
import { archiveCommand, ArchiveUsageError, ARCHIVE_OPTIONS, ARCHIVE_USAGE } from './archive.ts';
import type { Point } from '../collector/point.ts';

process.umask(0o027); // first of all: nothing klaiwatch writes (archive, state, spool, logs) is world-readable or group-writable

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  positionals?: boolean;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

const configOption = { config: { type: 'string', short: 'c' } } as const;

function load(values: Record<string, unknown>): Config {
  // No silent default file: polling the wrong inventory would send SNMP to
  // addresses nobody meant to reach.
  const file = (values.config as string | undefined) ?? process.env.KLAIWATCH_CONFIG;
  if (!file) throw new UsageError('needs --config FILE (or KLAIWATCH_CONFIG); an example is config/examples/klaiwatch.yaml');
  return loadConfig(file);
}

const commands: Record<string, Command> = {
  run: {
    summary: 'run every part as a process of its own (the collector, the API; with traffic set, the archive receivers), restart one that dies; GET /healthz (the API) shows all',
    usage: 'klaiwatch run [--config FILE]',
    options: { ...configOption },
    run: async (values) => runAll(load(values)),
  },
  collector: {
    summary: 'run the collector alone (SNMP, ICMP, alerts, InfluxDB; GET /healthz on http.listen); no traffic receivers',
    usage: 'klaiwatch collector [--config FILE]',
    options: { ...configOption },
    run: async (values) => runCollector(load(values)),
  },
  api: {
    summary: 'run the API alone (/v1, /docs, the auditor\'s pages, GET /healthz on api.listen or http.listen); reads the stores, never polls',
    usage: 'klaiwatch api [--config FILE]',
    options: { ...configOption },
    run: async (values) => runApiPart(load(values)),
  },
  token: {
    summary: 'API tokens: create (shown once; only its hash is kept), list, revoke',
    usage: 'klaiwatch token create --role officer|auditor|school|viewer [--school CODE] --name LABEL [--expires 90d|2027-03-31] [--config FILE]\n       klaiwatch token list [--config FILE]\n       klaiwatch token revoke ID [--config FILE]',
    options: { ...configOption, role: { type: 'string' }, school: { type: 'string' }, name: { type: 'string' }, expires: { type: 'string' } },
    positionals: true,
    run: async (values, positionals) => tokenCommand(load(values), values, positionals),
  },
  poll: {
    summary: 'poll once and print what would be written (line protocol), like `telegraf --test`',
    usage: 'klaiwatch poll --once [--config FILE] [--device ID ...] [--rates] [--no-icmp] [--write]',
    options: {
      ...configOption,
      once: { type: 'boolean', default: false },
      device: { type: 'string', multiple: true },
      rates: { type: 'boolean', default: false },
      'no-icmp': { type: 'boolean', default: false },
      write: { type: 'boolean', default: false },
    },
    run: async (values) => pollOnce(load(values), values),
  },
  'check-config': {
    summary: 'validate the settings, inventory and profiles, and that the folders, files and listen addresses they name can be used; one line per problem',
    usage: 'klaiwatch check-config [--config FILE] [--no-listen]',
    // --no-listen: while the service runs, its own listeners hold the addresses.
    options: { ...configOption, 'no-listen': { type: 'boolean', default: false } },
    run: async (values) => {
      const c = load(values);
      const problems = await preflight(c, { listen: values['no-listen'] !== true });
      if (problems.length > 0) throw new ConfigError(problems);
      const snmp = c.devices.filter((d) => d.snmp).length;
      console.log(`${c.file}: valid: ${c.schools.filter((s) => !s.office).length} schools, ${c.devices.length} devices (${snmp} over SNMP), ${c.profiles.size} profiles`);
      for (const line of watchNotes(c)) console.log(line);
      console.log(`${c.file}: ${describeShard(c)}`);
      return 0;
    },
  },
  'import-schools': {
    summary: 'turn a spreadsheet export (CSV, UTF-8, Thai headers allowed) into inventory YAML',
    usage: 'klaiwatch import-schools FILE.csv [--out FILE.yaml] [--parent DEVICE_ID]',
    options: { out: { type: 'string', short: 'o' }, parent: { type: 'string' } },
    positionals: true,
    run: async (values, positionals) => {
      const file = positionals[0];
      if (!file) throw new UsageError('import-schools needs the CSV file to read');
      if (values.out !== undefined) checkOutputPath('--out', String(values.out), 'file-to-write');
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new UsageError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const { schools, problems } = importSchoolsCsv(text, file, values.parent ? { defaultParent: String(values.parent) } : {});
      if (problems.length > 0) {
        for (const p of problems.slice(0, MAX_PROBLEMS_SHOWN)) console.error(p);
        if (problems.length > MAX_PROBLEMS_SHOWN) console.error(`and ${problems.length - MAX_PROBLEMS_SHOWN} more`);
        console.error(`klaiwatch import-schools: ${file}: ${problems.length} problem${problems.length > 1 ? 's' : ''}; nothing written`);
        return 1;
      }
      const yaml = inventoryYaml(schools, file);
      if (values.out) {
        writeFileSync(String(values.out), yaml);
        console.error(`${values.out}: ${schools.length} schools, ${schools.reduce((n, s) => n + s.devices.length, 0)} devices`);
      } else process.stdout.write(yaml);
      return 0;
    },
  },
  dashboards: {
    summary: 'write the Grafana dashboards (JSON) and provisioning files (InfluxQL data source, dashboard provider)',
    usage: 'klaiwatch dashboards build --out DIR [--config FILE]',
    options: { ...configOption, out: { type: 'string', short: 'o' } },
    positionals: true,
    run: async (values, positionals) => {
      if (positionals[0] !== 'build' || positionals.length !== 1) throw new UsageError(`unknown action ${JSON.stringify(positionals.join(' '))}; the only one is "build"`);
      if (!values.out) throw new UsageError('dashboards build needs --out DIR');
      checkOutputPath('--out', String(values.out), 'folder');
      const config = load(values);
      const [{ writeDashboards }, { areaOf }] = await Promise.all([import('../dashboards/build.ts'), import('../dashboards/panels.ts')]);
      const { files, notes } = writeDashboards(String(values.out), config.settings.influx, areaOf(config));
      for (const f of files) console.log(f);
      for (const n of notes) console.error(`note: ${n}`);
      return 0;
    },
  },
  report: {
    summary: 'the evaluation report for a month, a term or the fiscal year: availability, DLTV readiness, incidents, repair time, latency',
    usage: 'klaiwatch report --period 2026-11|2569-11|term|term:2/2569|fy2570|2026-11-01..2026-11-30 [--format csv|html|json] [--out FILE] [--now ISO-TIME] [--no-influx] [--config FILE]',
    options: { ...configOption, period: { type: 'string', short: 'p' }, format: { type: 'string', short: 'f', default: 'html' }, out: { type: 'string', short: 'o' }, now: { type: 'string' }, 'no-influx': { type: 'boolean', default: false } },
    run: async (values) => {
      if (!values.period) throw new UsageError('report needs --period (a month such as 2026-11, "term", or a fiscal year such as fy2570)');
      const format = String(values.format);
      const [{ makeReport, ReportError }, { render, FORMATS }, { PeriodError }] = await Promise.all([import('../report/report.ts'), import('../report/render.ts'), import('../report/period.ts')]);
      if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format ${JSON.stringify(format)}: expected one of ${FORMATS.join(', ')}`);
      // --now: the report as it would have been made then (to reproduce one handed in earlier).
      const now = values.now === undefined ? Date.now() : Date.parse(String(values.now));
      if (Number.isNaN(now)) throw new UsageError(`--now ${JSON.stringify(values.now)}: expected a date and time such as 2026-12-01T08:00:00+07:00`);
      if (values.out !== undefined) checkOutputPath('--out', String(values.out), 'file-to-write');
      const config = load(values);
      try {
        const { report, warnings } = await makeReport(config, { period: String(values.period), now, noInflux: values['no-influx'] === true });
        for (const w of warnings) console.error(`warning: ${w}`);
        const text = render(report, format as Format);
        if (values.out) {
          writeFileSync(String(values.out), text);
          console.error(`${values.out}: ${report.period.label}, ${report.schools.filter((s) => !s.office).length} schools`);
        } else process.stdout.write(text);
        return 0;
      } catch (err) {
        if (err instanceof PeriodError || err instanceof ReportError) throw new UsageError(err.message);
        throw err;
      }
    },
  },
  archive: {
    summary: 'the traffic-log archive: query, who had an address, export evidence, verify, holds, purge, the access journal',
    usage: ARCHIVE_USAGE,
    options: { ...configOption, ...ARCHIVE_OPTIONS },
    positionals: true,
    run: async (values, positionals) => {
      if (positionals.length > 1) throw new UsageError(`one action at a time; got ${positionals.join(' ')}`);
      try {
        return await archiveCommand(positionals[0], values as Record<string, string | boolean | string[] | undefined>, () => load(values));
      } catch (err) {
        if (err instanceof ArchiveUsageError) throw new UsageError(err.message);
        throw err;
      }
    },
  },
  schema: {
    summary: 'print the measurement schema (every measurement, tag and field) as Markdown',
    usage: 'klaiwatch schema',
    options: {},
    run: async () => {
      process.stdout.write(metricsMarkdown());
      return 0;
    },
  },
};

class UsageError extends Error {}

/** `klaiwatch api`: the API part (api/serve.ts), alone or under `klaiwatch run`. */
async function runApiPart(config: Config): Promise<number> {
  const part = supervised();
  // The API binds its own address only: the receivers' ports belong to `archive serve` (it may be running beside it).
  const unusable = await preflight(config, { listen: !part, http: 'api', receivers: false });
  if (unusable.length > 0) throw new ConfigError(unusable);
  const log = createLogger(config.settings.log.level);
  installProcessHandlers(log, 'api');
  const { serveApi } = await import('../api/serve.ts');
  const code = await serveApi(config, {
    log,
    supervised: part,
    stopped: stopSignal(log),
    ...(part ? { onMessage: (h: (m: unknown) => void) => process.on('message', h), reportHealth } : {}),
  });
  leaveSupervisor();
  return code;
}

/** `klaiwatch token create|list|revoke`. */
async function tokenCommand(config: Config, values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number> {
  const [action, ...rest] = positionals;
  const { TokenStore, TokenError, parseExpiry, ROLES } = await import('../api/tokens.ts');
  const { resolve, dirname } = await import('node:path');
  const store = new TokenStore(resolve(dirname(config.file), config.settings.api.tokens_db));
  const day = (t: number | null) => (t === null ? '-' : new Date(t + 7 * 3_600_000).toISOString().slice(0, 16).replace('T', ' '));
  try {
    if (action === 'create') {
      if (rest.length > 0) throw new UsageError(`token create takes no positional arguments; got ${rest.join(' ')}`);
      const role = String(values.role ?? '');
      if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}${values.role === undefined ? '' : `; got ${JSON.stringify(values.role)}`}`);
      if (values.name === undefined) throw new UsageError('--name LABEL is needed: who holds the token (the access journal records it)');
      const school = values.school === undefined ? null : String(values.school);
      if (school !== null && !config.schools.some((x) => x.code === school)) throw new UsageError(`--school ${JSON.stringify(school)}: no such school in the inventory (${config.file})`);
      const expiresAt = values.expires === undefined ? null : parseExpiry(String(values.expires));
      const { token, row } = store.create({ role: role as (typeof ROLES)[number], name: String(values.name), school, expiresAt });
      console.error(`token ${row.id} for ${row.name} (${row.role}${row.school ? ` of school ${row.school}` : ''}), ${row.expiresAt ? `expires ${day(row.expiresAt)} (Asia/Bangkok)` : 'no expiry'}.`);
      console.error('It is shown this once; klaiwatch keeps only its SHA-256. Give it to its holder; they send it as: Authorization: Bearer <token>');
      console.log(token);
      return 0;
    }
    if (action === 'list') {
      const rows = store.list();
      const now = Date.now();
      console.log(['id', 'role', 'school', 'name', 'created', 'expires', 'last used', 'status'].join('\t'));
      for (const r of rows) {
        const status = r.revokedAt !== null ? `revoked ${day(r.revokedAt)}` : r.expiresAt !== null && r.expiresAt <= now ? 'expired' : 'active';
        console.log([r.id, r.role, r.school ?? '-', r.name.replace(/[\t\n\r]/g, ' '), day(r.createdAt), day(r.expiresAt), day(r.lastUsedAt), status].join('\t'));
      }
      console.log(`# ${rows.length} token${rows.length === 1 ? '' : 's'} (times Asia/Bangkok)`);
      return 0;
    }
    if (action === 'revoke') {
      const id = rest[0];
      if (!id || rest.length > 1) throw new UsageError('token revoke needs exactly one token id (klaiwatch token list shows them)');
      if (!store.revoke(id)) throw new UsageError(`no active token ${JSON.stringify(id)} (klaiwatch token list shows them)`);
      console.error(`token ${id} revoked: a running API refuses it within 2 s (it trusts a token it found good that long)`);
      return 0;
    }
    throw new UsageError(`unknown action ${JSON.stringify(action ?? '')}; use create, list or revoke`);
  } catch (err) {
    if (err instanceof TokenError) throw new UsageError(err.message);
    throw err;
  } finally {
    store.close();
  }
}

/** `klaiwatch run`: the supervisor (bin/supervisor.ts) and its parts. */
async function runAll(config: Config): Promise<number> {
  // Folders, files and every listen address, before any part starts.
  const unusable = await preflight(config);
  if (unusable.length > 0) throw new ConfigError(unusable);
  const log = createLogger(config.settings.log.level);
  return runSupervisor({
    configFile: config.file,
    traffic: config.settings.traffic !== undefined,
    log,
    collectorFlags: COLLECTOR_V8_FLAGS,
    archiveFlags: ARCHIVE_V8_FLAGS,
    apiFlags: API_V8_FLAGS,
    execArgv: (flags) => childExecArgv(flags),
  });
}

/**
 * `klaiwatch collector`: polling and alerting, no traffic receivers. Alone it
 * serves GET /healthz on http.listen; as a part of `klaiwatch run` it sends
 * its health to the supervisor instead, and writes the archive's figures
 * the supervisor passes on (the `traffic` measurement).
 */
async function runCollector(config: Config): Promise<number> {
  const part = supervised();
  // Alone, the traffic listeners are the archive part's business (it may be running): only the collector's own are checked.
  const { traffic: _traffic, ...settings } = config.settings;
  const unusable = await preflight(part ? config : { ...config, settings }, { listen: !part, http: 'collector' });
  if (unusable.length > 0) throw new ConfigError(unusable);
  const log = createLogger(config.settings.log.level);
  const counters = installProcessHandlers(log, 'collector');
  const { Collector } = await collectorModule();
  const collector = new Collector(config, log);
  await collector.prepare();
  const health = () => ({ ...collector.health(), part: 'collector', pid: process.pid, process: { ...counters } });
  const server = part ? undefined : await startHealthServer(config.settings.http.listen, health);
  const stopReport = part ? reportHealth(health) : undefined;
  if (part) {
    process.on('message', (m: PartMessage) => {
      if (m?.type === 'traffic') collector.writePoints([{ measurement: 'traffic', tags: { instance: config.settings.instance }, fields: { ...m.fields }, time: m.time }]);
    });
  }
  log.info({ part: 'collector', ...(server ? { listen: config.settings.http.listen } : { supervised: true }), devices: config.devices.length, schools: config.schools.length, shard: collector.shard.label, owned: collector.shard.owned.size, dependencies: collector.shard.dependencies.size, prober: collector.prober?.name ?? 'disabled' }, 'collector running');
  collector.start();
  await stopSignal(log);
  stopReport?.();
  server?.close();
  await collector.stop();
  leaveSupervisor();
  return 0;
}

async function pollOnce(config: Config, values: Record<string, unknown>): Promise<number> {
  if (!values.once) throw new UsageError('poll needs --once (the scheduler is `klaiwatch run`)');
  const ids = (values.device as string[] | undefined) ?? [];
  for (const id of ids) if (!config.deviceById.has(id)) throw new UsageError(`no device ${JSON.stringify(id)} in the inventory (${config.file})`);
  const devices = ids.length > 0 ? ids.map((id) => config.deviceById.get(id)!) : config.devices;
  const log = createLogger(values.write ? 'info' : 'warn');
  const printed: Point[] = [];
  const { Collector } = await collectorModule();
  const collector = new Collector(config, log, { onPoints: (ps) => printed.push(...ps), write: Boolean(values.write), states: false });
  await collector.prepare({ influx: Boolean(values.write) });
  const icmp = !values['no-icmp'];
  if (values.rates) {
    // Counters give rates from the second sample on.
    await collector.runRound(devices, 0, { jitter: false, icmp: false });
    printed.length = 0;
    await new Promise((r) => setTimeout(r, 2000));
  }
  const report = await collector.runRound(devices, 0, { jitter: false, icmp });
  for (const p of printed) {
    const line = toLine(p);
    if (line) console.log(line);
  }
  for (const r of report.results) if (!r.ok) console.error(`# ${r.error}`);
  for (const line of collector.pollNotes(devices, report.results)) console.error(line);
  // An agent that answered but whose poll named a problem (a walk cut short, an error status) counts as failed, yet it did answer (snmp_up=1).
  const answered = report.results.filter((r) => r.answered).length;
  const named = report.results.filter((r) => r.answered && !r.ok).length;
  console.error(`# ${report.devices} devices: ${answered} answered SNMP${named > 0 ? ` (${named} with named problems)` : ''}, ${report.failed} failed, ${report.icmpDown} of ${report.icmpHosts} hosts silent to ICMP; ${printed.length} points in ${Math.round(report.durationMs)} ms`);
  await collector.stop(); // closes the SNMP sessions; with --write, flushes the points
  return report.failed > 0 ? 2 : 0;
}

/** At most this many "not watched" groups are printed by check-config, then "and N more"; each names at most NOTE_IDS devices. */
const MAX_WATCH_GROUPS = 20;
const NOTE_IDS = 3;

/**
 * What `check-config` says about watching, for the devices this collector
 * owns (its shard's): the checks of their kind their explicit profile cannot
 * feed, one line per profile and check with how many devices and the first
 * few ids (a 250-school area with icmp-only receivers is one line, not 250),
 * and how many devices on `auto` are known only after their sysObjectID.
 */
function watchNotes(c: Config): string[] {
  const thresholds = c.settings.alerts.thresholds;
  const owned = planShard(c).owned;
  const groups = new Map<string, { detail: string; kinds: Set<string>; ids: string[]; count: number }>();
  let auto = 0;
  const autoKinds = new Set<string>();
  for (const d of c.devices) {
    if (!owned.has(d.id)) continue;
    if (!thresholds.some((t) => t.kinds.length === 0 || t.kinds.includes(d.kind))) continue;
    if (d.profile === 'auto') {
      auto += 1;
      autoKinds.add(d.kind);
      continue;
    }
    for (const n of notWatched(d, d.profile, c.profiles.get(d.profile), thresholds)) {
      const key = `${d.profile}\u0000${n.check}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { detail: n.detail, kinds: new Set(), ids: [], count: 0 }));
      g.count += 1;
      g.kinds.add(d.kind);
      if (g.ids.length < NOTE_IDS) g.ids.push(d.id);
    }
  }
  const lines: string[] = [];
  const all = [...groups.values()];
  for (const g of all.slice(0, MAX_WATCH_GROUPS)) {
    const ids = `${g.ids.join(', ')}${g.count > g.ids.length ? ` and ${g.count - g.ids.length} more` : ''}`;
    lines.push(`not watched: ${g.count} ${[...g.kinds].sort().join('/')} device${g.count === 1 ? '' : 's'} (${ids}): ${g.detail}`);
  }
  if (all.length > MAX_WATCH_GROUPS) {
    const rest = all.slice(MAX_WATCH_GROUPS);
    lines.push(`not watched: and ${rest.length} more (profile, check) pairs, ${rest.reduce((n, g) => n + g.count, 0)} devices`);
  }
  if (auto > 0) lines.push(`${auto} device${auto === 1 ? '' : 's'} with checks of their kind (${[...autoKinds].sort().join(', ')}) ${auto === 1 ? 'has' : 'have'} profile auto: what they can be watched for is known once their sysObjectID chooses a profile (klaiwatch poll --once shows it)`);
  return lines;
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    'klaiwatch: monitoring for a Thai primary-education area office',
    '',
    'Usage: klaiwatch COMMAND [options]   (klaiwatch COMMAND --help for its options)',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Configuration: --config FILE, or the environment variable KLAIWATCH_CONFIG.',
  ].join('\n');
}

function commandHelp(name: string, c: Command): string {
  const opts = Object.entries(c.options).map(([k, o]) => `  --${k}${o.type === 'string' ? ' VALUE' : ''}${o.default !== undefined && o.type === 'string' ? `  (default ${o.default})` : ''}`);
  return [`klaiwatch ${name}: ${c.summary}`, '', `Usage: ${c.usage}`, '', 'Options:', ...opts, '  --help'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 1;
  }
  const c = commands[name];
  if (!c) {
    console.error(`klaiwatch: unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return 1;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(commandHelp(name, c));
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: c.options, allowPositionals: c.positionals ?? false, strict: true });
    return await c.run(values as Record<string, string | boolean | undefined>, positionals);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(formatProblems(err.problems));
      console.error(`klaiwatch ${name}: configuration has ${err.problems.length} problem${err.problems.length > 1 ? 's' : ''}`);
      return 1;
    }
    // A path to write that cannot be: one line naming the option, its value and why (the command itself was right).
    if (err instanceof OutputPathError) {
      console.error(`klaiwatch ${name}: ${err.message}`);
      return 1;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`klaiwatch ${name}: ${(err as Error).message}\n\n${commandHelp(name, c)}`);
      return 1;
    }
    // An operator sees one plain line; where in the code it happened is for
    // a bug report, shown with KLAIWATCH_DEBUG=1.
    if (process.env.KLAIWATCH_DEBUG) {
      console.error(`klaiwatch ${name}: ${(err as Error).stack ?? err}`);
      return 1;
    }
    const system = describeSystemError(err);
    const text = system ?? `${String((err as Error).message ?? err).split('\n')[0]}  (KLAIWATCH_DEBUG=1 shows where)`;
    console.error(`klaiwatch ${name}: ${text.length > MAX_PROBLEM_CHARS ? `${text.slice(0, MAX_PROBLEM_CHARS - 1)}…` : text}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
