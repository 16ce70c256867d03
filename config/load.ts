// Turns the YAML files into typed objects, or into a ConfigError that lists
// every problem with its file, line, path inside the file and reason:
//   config/area.yaml:14: schools[3].devices[1].address: must be an IPv4 ...
// Nothing is defaulted silently: a missing secret, an unknown profile or
// parent, a duplicate id are all errors.
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { dirname, resolve, relative, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';
import {
  settingsSchema,
  inventorySchema,
  calendarSchema,
  type CalendarInput,
  profileSchema,
  checkProfileAgainstSchema,
  type SettingsInput,
  type SchoolInput,
  type DeviceInput,
  type SnmpCredentialsInput,
  type ProfileInput,
  type DeviceKind,
} from './schema.ts';
import { Secret } from './secret.ts';
import { unknownShardEntries } from './shard.ts';

export const BUILTIN_PROFILE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'profiles');
export const BUILTIN_CALENDAR_DIR = join(dirname(fileURLToPath(import.meta.url)), 'calendar');

export interface Problem {
  file: string;
  line?: number;
  path: string;
  message: string;
}

/** At most this many problems are printed, each cut to MAX_PROBLEM_CHARS, then "and N more". */
export const MAX_PROBLEMS_SHOWN = 20;
export const MAX_PROBLEM_CHARS = 300;
/** A configuration file larger than this is refused unread (an inventory of 250 schools is about 100 KB). */
export const MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024;

export class ConfigError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super(formatProblems(problems));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblem(p: Problem): string {
  const where = p.line ? `${p.file}:${p.line}` : p.file;
  return clip(p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`);
}

/**
 * The problems as the operator sees them: one line each, at most
 * MAX_PROBLEMS_SHOWN lines of at most MAX_PROBLEM_CHARS characters, then
 * "and N more" (a junk file must not print megabytes).
 */
export function formatProblems(problems: readonly Problem[]): string {
  const lines = problems.slice(0, MAX_PROBLEMS_SHOWN).map(formatProblem);
  if (problems.length > MAX_PROBLEMS_SHOWN) lines.push(`and ${problems.length - MAX_PROBLEMS_SHOWN} more`);
  return lines.join('\n');
}

/** One printable line of at most MAX_PROBLEM_CHARS: control characters (a junk file's bytes, newlines) escaped, the rest cut with "…". */
function clip(line: string): string {
  // eslint-disable-next-line no-control-regex
  let out = line.slice(0, MAX_PROBLEM_CHARS * 2).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  if (out.length > MAX_PROBLEM_CHARS || line.length > MAX_PROBLEM_CHARS * 2) {
    out = out.slice(0, MAX_PROBLEM_CHARS - 1);
    // Never end on half of a surrogate pair (Thai is in the BMP, emoji are not).
    if (/[\ud800-\udbff]$/.test(out)) out = out.slice(0, -1);
    out += '…';
  }
  return out;
}

/** `schools[3].devices[1].address` from ['schools', 3, 'devices', 1, 'address']. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

export interface SnmpCredentials {
  version: 1 | 2 | 3;
  community?: Secret;
  username?: string;
  level: 'noAuthNoPriv' | 'authNoPriv' | 'authPriv';
  authProtocol?: string;
  authKey?: Secret;
  privProtocol?: string;
  privKey?: Secret;
  context?: string;
}

export type Settings = SettingsInput;

export interface School extends Omit<SchoolInput, 'devices'> {
  office: boolean;
  devices: Device[];
}

export interface Device extends Omit<DeviceInput, 'snmp'> {
  kind: DeviceKind;
  school: School;
  snmp?: SnmpCredentials;
  /** Where in which file the device was declared, for messages. */
  origin: string;
}

export interface InfluxAuth {
  password?: Secret;
  token?: Secret;
}

export interface MailAuth {
  password?: Secret;
}

export interface Config {
  file: string;
  settings: Settings;
  /** Resolved from influx.password / influx.token; the settings keep only the reference text. */
  influxAuth: InfluxAuth;
  /** Resolved from mail.smtp.password. */
  mailAuth: MailAuth;
  schools: School[];
  devices: Device[];
  deviceById: Map<string, Device>;
  profiles: Map<string, ProfileInput>;
  /** School calendars (DLTV broadcast time), one per academic year. */
  calendars: CalendarInput[];
}

interface YamlFile {
  file: string;
  data: unknown;
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

function readYaml(path: string, problems: Problem[], shown: string): YamlFile | undefined {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) {
      problems.push({ file: shown, path: '', message: `cannot read: is ${st.isDirectory() ? 'a folder' : 'not a regular file'}, not a YAML file` });
      return undefined;
    }
    if (st.size > MAX_CONFIG_FILE_BYTES) {
      problems.push({ file: shown, path: '', message: `is ${(st.size / 1048576).toFixed(1)} MiB; a configuration file is at most ${MAX_CONFIG_FILE_BYTES / 1048576} MiB (is it the right file?)` });
      return undefined;
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push({ file: shown, path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    return undefined;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      problems.push({ file: shown, line: lineCounter.linePos(e.pos[0]).line, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
    }
    return undefined;
  }
  let data: unknown;
  try {
    // yaml refuses alias bombs ("billion laughs") here with a ReferenceError.
    data = doc.toJS({ maxAliasCount: 1000 }) ?? {};
  } catch (err) {
    problems.push({ file: shown, path: '', message: `YAML: ${(err as Error).message.split('\n')[0]}` });
    return undefined;
  }
  return {
    file: shown,
    data,
    lineOf(p) {
      // Walk up the path until a node with a position is found (a missing key has none).
      for (let n = p.length; n >= 0; n--) {
        const node = doc.getIn(p.slice(0, n) as unknown[], true);
        if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      }
      return undefined;
    },
  };
}

function validate<S extends z.ZodType>(schema: S, y: YamlFile, problems: Problem[], prefix: PropertyKey[] = []): z.infer<S> | undefined {
  const r = schema.safeParse(y.data, { reportInput: true });
  if (r.success) return r.data;
  for (const issue of unwrapUnions(r.error.issues)) {
    const path = [...prefix, ...issue.path];
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    else if (issue.code === 'invalid_type' && issue.input === undefined) message = `is required (${issue.expected})`;
    else if ('input' in issue && issue.input !== undefined && !message.includes('got') && typeof issue.input !== 'object') {
      message += `; got ${JSON.stringify(issue.input)}`;
    }
    problems.push({ file: y.file, line: y.lineOf(path), path: formatPath(path), message });
  }
  return undefined;
}

/**
 * A value that may be a name or an object (`snmp: school` or `snmp: {...}`)
 * fails as a union with "Invalid input"; report the branch the author meant
 * instead: the one that got past the type check at its root.
 */
function unwrapUnions(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const out: z.core.$ZodIssue[] = [];
  for (const issue of issues) {
    // A union with its own message (snmp.version) has already said it best.
    if (issue.code !== 'invalid_union' || issue.errors.length === 0 || issue.message !== 'Invalid input') {
      out.push(issue);
      continue;
    }
    const meant = issue.errors.find((branch) => !branch.every((b) => b.code === 'invalid_type' && b.path.length === 0));
    if (!meant) {
      out.push(issue);
      continue;
    }
    for (const inner of unwrapUnions(meant)) out.push({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue);
  }
  return out;
}

function resolveSecret(ref: string | undefined, env: NodeJS.ProcessEnv, baseDir: string, where: () => Omit<Problem, 'message'>, problems: Problem[]): Secret | undefined {
  if (ref === undefined) return undefined;
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const v = env[name];
    if (v === undefined || v === '') {
      problems.push({ ...where(), message: `environment variable ${name} is not set (the value says env:${name})` });
      return undefined;
    }
    return new Secret(v, `env:${name}`);
  }
  if (ref.startsWith('file:')) {
    const p = resolve(baseDir, ref.slice(5));
    try {
      const v = readFileSync(p, 'utf8').split(/\r?\n/)[0] ?? '';
      if (!v) throw new Error('file is empty');
      return new Secret(v, `file:${p}`);
    } catch (err) {
      problems.push({ ...where(), message: `cannot read secret file ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      return undefined;
    }
  }
  return new Secret(ref);
}

function resolveCredentials(c: SnmpCredentialsInput, env: NodeJS.ProcessEnv, baseDir: string, where: (key: string) => Omit<Problem, 'message'>, problems: Problem[]): SnmpCredentials {
  const out: SnmpCredentials = {
    version: c.version,
    level: c.level ?? (c.priv_key ? 'authPriv' : c.auth_key ? 'authNoPriv' : 'noAuthNoPriv'),
  };
  const community = resolveSecret(c.community, env, baseDir, () => where('community'), problems);
  if (community) out.community = community;
  if (c.username) out.username = c.username;
  if (c.auth_protocol) out.authProtocol = c.auth_protocol;
  const authKey = resolveSecret(c.auth_key, env, baseDir, () => where('auth_key'), problems);
  if (authKey) out.authKey = authKey;
  if (c.priv_protocol) out.privProtocol = c.priv_protocol;
  const privKey = resolveSecret(c.priv_key, env, baseDir, () => where('priv_key'), problems);
  if (privKey) out.privKey = privKey;
  if (c.context) out.context = c.context;
  return out;
}

/**
 * The secrets of an SNMP credential set as written (raw YAML), resolved only
 * to report an unset env: or unreadable file:, for when the schema refused
 * the file and the set is not resolved for real: every problem in one pass.
 */
function checkRawSecrets(c: unknown, env: NodeJS.ProcessEnv, baseDir: string, where: (key: string) => Omit<Problem, 'message'>, problems: Problem[]): void {
  if (!isRecord(c)) return;
  for (const k of ['community', 'auth_key', 'priv_key'] as const) {
    const ref = c[k];
    if (typeof ref === 'string') resolveSecret(ref, env, baseDir, () => where(k), problems);
  }
}

/** Every profile in the given folders (later folders' names are shadowed by earlier ones), validated and with includes resolved. */
export function loadProfiles(dirs: string[], problems: Problem[], cwd = process.cwd()): Map<string, ProfileInput> {
  const raw = new Map<string, { profile: ProfileInput; file: YamlFile }>();
  for (const dir of dirs) {
    if (!existsSync(dir)) {
      problems.push({ file: relative(cwd, dir) || dir, path: '', message: 'profile folder does not exist' });
      continue;
    }
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort()) {
      const shown = relative(cwd, join(dir, name));
      const y = readYaml(join(dir, name), problems, shown);
      if (!y) continue;
      const p = validate(profileSchema, y, problems);
      if (!p) continue;
      for (const pr of checkProfileAgainstSchema(p)) problems.push({ file: shown, line: y.lineOf(pr.path), path: formatPath(pr.path), message: pr.message });
      if (raw.has(p.name)) continue; // an earlier folder overrides a built-in profile of the same name
      raw.set(p.name, { profile: p, file: y });
    }
  }
  const resolved = new Map<string, ProfileInput>();
  const resolving = new Set<string>();
  const resolveOne = (name: string): ProfileInput | undefined => {
    const done = resolved.get(name);
    if (done) return done;
    const entry = raw.get(name);
    if (!entry) return undefined;
    if (resolving.has(name)) {
      problems.push({ file: entry.file.file, path: 'include', message: `include cycle through profile ${name}` });
      return undefined;
    }
    resolving.add(name);
    const p = structuredClone(entry.profile);
    // Included profiles' entries come first, in include order; the profile's
    // own entries follow and override an included one of the same name.
    const inherited: Pick<ProfileInput, 'scalars' | 'tables' | 'scalar_derived'> = { scalars: [], tables: [], scalar_derived: [] };
    entry.profile.include.forEach((inc, i) => {
      const base = resolveOne(inc);
      if (!base) {
        if (!raw.has(inc)) problems.push({ file: entry.file.file, line: entry.file.lineOf(['include', i]), path: `include[${i}]`, message: `no profile named ${JSON.stringify(inc)} (known: ${[...raw.keys()].sort().join(', ')})` });
        return;
      }
      inherited.scalars.push(...base.scalars);
      inherited.tables.push(...base.tables);
      inherited.scalar_derived.push(...base.scalar_derived);
    });
    p.scalars = [...inherited.scalars.filter((s) => !p.scalars.some((own) => own.name === s.name)), ...p.scalars];
    p.tables = [...inherited.tables.filter((t) => !p.tables.some((own) => own.name === t.name)), ...p.tables];
    p.scalar_derived = [...inherited.scalar_derived, ...p.scalar_derived];
    resolving.delete(name);
    resolved.set(name, p);
    return p;
  };
  for (const name of raw.keys()) resolveOne(name);
  return resolved;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function loadConfig(settingsPath: string, opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const problems: Problem[] = [];
  const abs = resolve(cwd, settingsPath);
  const baseDir = dirname(abs);
  const shown = (p: string) => relative(cwd, p) || p;

  const sy = readYaml(abs, problems, shown(abs));
  if (!sy) throw new ConfigError(problems);
  // Invalid settings do not stop the load: the inventory is still read and
  // its references (profiles, credential sets, parents) checked, so that
  // every problem is reported in one pass, not one layer per run.
  const settings = validate(settingsSchema, sy, problems);
  const rawSettings = isRecord(sy.data) ? sy.data : {};
  const inventoryFiles = settings?.inventory ?? stringsOf(rawSettings.inventory);
  const profileDirs = settings?.profile_dirs ?? stringsOf(rawSettings.profile_dirs);
  const rawCredentials = isRecord(rawSettings.snmp) && isRecord(rawSettings.snmp.credentials) ? rawSettings.snmp.credentials : {};
  const credentialNames = new Set(Object.keys(settings?.snmp.credentials ?? rawCredentials));

  // Secrets in the settings file.
  const settingsWhere = (path: PropertyKey[]) => () => ({ file: sy.file, line: sy.lineOf(path), path: formatPath(path) });
  const credentialSets = new Map<string, SnmpCredentials>();
  let influxPassword: Secret | undefined;
  let influxToken: Secret | undefined;
  let smtpPassword: Secret | undefined;
  if (settings) {
    for (const [name, c] of Object.entries(settings.snmp.credentials)) {
      credentialSets.set(name, resolveCredentials(c, env, baseDir, (k) => settingsWhere(['snmp', 'credentials', name, k])(), problems));
    }
    influxPassword = resolveSecret(settings.influx.password, env, baseDir, settingsWhere(['influx', 'password']), problems);
    influxToken = resolveSecret(settings.influx.token, env, baseDir, settingsWhere(['influx', 'token']), problems);
    smtpPassword = resolveSecret(settings.mail?.smtp.password, env, baseDir, settingsWhere(['mail', 'smtp', 'password']), problems);
  } else {
    // The schema refused the settings: their credential sets' secrets are still looked at, in this same pass.
    for (const [name, c] of Object.entries(rawCredentials)) checkRawSecrets(c, env, baseDir, (k) => settingsWhere(['snmp', 'credentials', name, k])(), problems);
  }

  const profiles = loadProfiles([...profileDirs.map((d) => resolve(baseDir, d)), BUILTIN_PROFILE_DIR], problems, cwd);

  const schools: School[] = [];
  const devices: Device[] = [];
  const deviceById = new Map<string, Device>();
  const refs = new InventoryReferences(profiles, credentialNames, sy.file);
  let inventoriesRead = 0;

  for (const inv of inventoryFiles) {
    const invPath = resolve(baseDir, inv);
    const iy = readYaml(invPath, problems, shown(invPath));
    if (!iy) continue;
    inventoriesRead++;
    refs.check(iy, problems);
    const inventory = validate(inventorySchema, iy, problems);
    if (!inventory || !settings) {
      // Not resolved for real below: a device's inline secrets are still looked at, in this same pass.
      rawDeviceSecrets(iy, (c, where) => checkRawSecrets(c, env, baseDir, where, problems));
      continue;
    }
    const sites: { s: SchoolInput; path: PropertyKey[]; office: boolean }[] = [];
    if (inventory.office) sites.push({ s: inventory.office, path: ['office'], office: true });
    inventory.schools.forEach((s, i) => sites.push({ s, path: ['schools', i], office: false }));

    for (const { s, path, office } of sites) {
      const where = (p: PropertyKey[]) => ({ file: iy.file, line: iy.lineOf([...path, ...p]), path: formatPath([...path, ...p]) });
      const school: School = { ...s, office, devices: [] };
      s.devices.forEach((d, j) => {
        const dp: PropertyKey[] = ['devices', j];
        const profile = d.profile;
        const needsSnmp = profile === 'auto' || (profiles.get(profile)?.snmp ?? true);
        let snmp: SnmpCredentials | undefined;
        if (typeof d.snmp === 'string') snmp = credentialSets.get(d.snmp);
        else if (d.snmp) snmp = resolveCredentials(d.snmp, env, baseDir, (k) => where([...dp, `snmp.${k}`]), problems);
        else if (needsSnmp) snmp = credentialSets.get('default');
        const { snmp: _ignored, ...rest } = d;
        const device: Device = { ...rest, school, origin: `${iy.file}:${iy.lineOf([...path, ...dp]) ?? '?'}` };
        if (snmp && needsSnmp) device.snmp = snmp;
        if (!deviceById.has(d.id)) deviceById.set(d.id, device);
        school.devices.push(device);
        devices.push(device);
      });
      schools.push(school);
    }
  }
  refs.checkParents(problems);

  // Nothing to poll is a mistake, not a quiet success (`run` would poll 0 devices without a word).
  if (inventoriesRead > 0 && inventoriesRead === inventoryFiles.length && refs.devices === 0) {
    problems.push({ file: sy.file, line: sy.lineOf(['inventory']), path: 'inventory', message: `no devices in ${inventoryFiles.join(', ')}: nothing would be polled; add schools with devices (config/examples/schools.yaml shows how, \`klaiwatch import-schools\` makes them from a spreadsheet)` });
  }

  // Calendars: the configured files, or every file of the built-in folder.
  const calendarFiles = settings && settings.alerts.calendar.length > 0
    ? settings.alerts.calendar.map((f) => resolve(baseDir, f))
    : readdirSync(BUILTIN_CALENDAR_DIR).filter((n) => n.endsWith('.yaml')).sort().map((n) => join(BUILTIN_CALENDAR_DIR, n));
  const calendars: CalendarInput[] = [];
  for (const f of calendarFiles) {
    const cy = readYaml(f, problems, shown(f));
    const cal = cy && validate(calendarSchema, cy, problems);
    if (cal) calendars.push(cal);
  }

  // Maintenance windows must name devices and schools that exist.
  settings?.alerts.maintenance.forEach((m, i) => {
    m.devices.forEach((id, j) => {
      if (!refs.hasDevice(id)) problems.push({ file: sy.file, line: sy.lineOf(['alerts', 'maintenance', i, 'devices', j]), path: `alerts.maintenance[${i}].devices[${j}]`, message: `no device ${JSON.stringify(id)} in the inventory` });
    });
    m.schools.forEach((code, j) => {
      if (!refs.hasSchool(code)) problems.push({ file: sy.file, line: sy.lineOf(['alerts', 'maintenance', i, 'schools', j]), path: `alerts.maintenance[${i}].schools[${j}]`, message: `no school ${JSON.stringify(code)} in the inventory` });
    });
  });

  // collector.shard as a list must name schools or districts that exist (a typo would own nothing).
  for (const { index, name } of unknownShardEntries(settings?.collector.shard, schools)) {
    problems.push({ file: sy.file, line: sy.lineOf(['collector', 'shard', index]), path: `collector.shard[${index}]`, message: `${JSON.stringify(name)} is no school code and no district in the inventory` });
  }

  if (problems.length > 0 || !settings) throw new ConfigError(problems);
  const influxAuth: InfluxAuth = {};
  if (influxPassword) influxAuth.password = influxPassword;
  if (influxToken) influxAuth.token = influxToken;
  // The settings object keeps no secret text: the resolved Secrets live in
  // influxAuth and on each device, so logging the settings cannot leak one.
  const mailAuth: MailAuth = smtpPassword ? { password: smtpPassword } : {};
  const safe: Settings = {
    ...settings,
    influx: { ...settings.influx, password: undefined, token: undefined },
    snmp: { credentials: {} },
    ...(settings.mail ? { mail: { ...settings.mail, smtp: { ...settings.mail.smtp, password: undefined } } } : {}),
  };
  return { file: abs, settings: safe, influxAuth, mailAuth, schools, devices, deviceById, profiles, calendars };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A string or a list of strings, as far as the raw YAML has one (the schema reports the rest). */
/** Each raw device's inline `snmp:` (a map, not a set's name) with where its keys are, as the full pass names them. Linear in the devices. */
function rawDeviceSecrets(y: YamlFile, each: (snmp: Record<string, unknown>, where: (key: string) => Omit<Problem, 'message'>) => void): void {
  const inv = isRecord(y.data) ? y.data : {};
  const sites: { s: unknown; path: PropertyKey[] }[] = [{ s: inv.office, path: ['office'] }];
  if (Array.isArray(inv.schools)) inv.schools.forEach((s: unknown, i) => sites.push({ s, path: ['schools', i] }));
  for (const { s, path } of sites) {
    if (!isRecord(s) || !Array.isArray(s.devices)) continue;
    s.devices.forEach((d: unknown, j) => {
      if (!isRecord(d) || !isRecord(d.snmp)) return;
      const dp = [...path, 'devices', j];
      each(d.snmp, (k) => ({ file: y.file, line: y.lineOf([...dp, `snmp.${k}`]), path: formatPath([...dp, `snmp.${k}`]) }));
    });
  }
}

function stringsOf(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * The inventory's cross-references, checked on the raw YAML so that they
 * are reported together with the schema's problems: school codes and device
 * ids used twice, profiles and SNMP credential sets that do not exist, a
 * device that needs credentials and has none, parents that are no device or
 * whose chain loops. A value of the wrong type is the schema's to report.
 */
class InventoryReferences {
  devices = 0;
  private readonly schoolAt = new Map<string, string>();
  private readonly deviceAt = new Map<string, string>();
  private readonly parentOf = new Map<string, string | undefined>();
  private readonly parentRefs: { id: string | undefined; parent: string; file: YamlFile; path: PropertyKey[] }[] = [];
  private readonly profiles: Map<string, ProfileInput>;
  private readonly credentialNames: Set<string>;
  private readonly settingsFile: string;

  constructor(profiles: Map<string, ProfileInput>, credentialNames: Set<string>, settingsFile: string) {
    this.profiles = profiles;
    this.credentialNames = credentialNames;
    this.settingsFile = settingsFile;
  }

  hasDevice(id: string): boolean {
    return this.deviceAt.has(id);
  }

  hasSchool(code: string): boolean {
    return this.schoolAt.has(code);
  }

  check(y: YamlFile, problems: Problem[]): void {
    const inv = isRecord(y.data) ? y.data : {};
    const sites: { s: Record<string, unknown>; path: PropertyKey[] }[] = [];
    if (isRecord(inv.office)) sites.push({ s: inv.office, path: ['office'] });
    if (Array.isArray(inv.schools)) inv.schools.forEach((s: unknown, i) => isRecord(s) && sites.push({ s, path: ['schools', i] }));
    for (const { s, path } of sites) {
      const where = (p: PropertyKey[]) => ({ file: y.file, line: y.lineOf([...path, ...p]), path: formatPath([...path, ...p]) });
      if (typeof s.code === 'string') {
        const seen = this.schoolAt.get(s.code);
        if (seen) problems.push({ ...where(['code']), message: `school code ${s.code} is used twice (first at ${seen})` });
        else this.schoolAt.set(s.code, `${y.file}:${y.lineOf([...path, 'code']) ?? '?'}`);
      }
      if (!Array.isArray(s.devices)) continue;
      s.devices.forEach((d: unknown, j) => {
        if (!isRecord(d)) return;
        this.devices++;
        const dp: PropertyKey[] = ['devices', j];
        const id = typeof d.id === 'string' ? d.id : undefined;
        const profile = d.profile === undefined ? 'auto' : typeof d.profile === 'string' ? d.profile : undefined;
        if (profile !== undefined && profile !== '' && profile !== 'auto' && !this.profiles.has(profile)) {
          problems.push({ ...where([...dp, 'profile']), message: `no profile named ${JSON.stringify(profile)} (known: auto, ${[...this.profiles.keys()].sort().join(', ')})` });
        }
        const needsSnmp = profile === 'auto' || (profile !== undefined && (this.profiles.get(profile)?.snmp ?? true));
        if (typeof d.snmp === 'string') {
          if (!this.credentialNames.has(d.snmp)) {
            problems.push({ ...where([...dp, 'snmp']), message: `no SNMP credential set named ${JSON.stringify(d.snmp)} in ${this.settingsFile} snmp.credentials (known: ${[...this.credentialNames].join(', ') || 'none'})` });
          }
        } else if (d.snmp === undefined && needsSnmp && !this.credentialNames.has('default')) {
          problems.push({ ...where(dp), message: `device ${id ?? `devices[${j}]`} needs SNMP credentials: give it snmp:, or define snmp.credentials.default in ${this.settingsFile}, or use profile icmp-only` });
        }
        if (id !== undefined) {
          const dup = this.deviceAt.get(id);
          if (dup) problems.push({ ...where([...dp, 'id']), message: `device id ${id} is used twice (first at ${dup})` });
          else {
            this.deviceAt.set(id, `${y.file}:${y.lineOf([...path, ...dp]) ?? '?'}`);
            this.parentOf.set(id, typeof d.parent === 'string' ? d.parent : undefined);
          }
        }
        if (typeof d.parent === 'string') this.parentRefs.push({ id, parent: d.parent, file: y, path: [...path, ...dp, 'parent'] });
      });
    }
  }

  /** Every parent must be a device, and no chain may loop (its devices would be "unreachable" forever). Linear in the devices. */
  checkParents(problems: Problem[]): void {
    const loops = new Map<string, boolean>();
    const runsIntoLoop = (start: string): boolean => {
      const path: string[] = [];
      const onPath = new Set<string>();
      let result = false;
      for (let cur: string | undefined = start; cur !== undefined; cur = this.parentOf.get(cur)) {
        const known = loops.get(cur);
        if (known !== undefined) {
          result = known;
          break;
        }
        if (onPath.has(cur)) {
          result = true;
          break;
        }
        if (!this.parentOf.has(cur)) break; // not a device: reported as such
        onPath.add(cur);
        path.push(cur);
      }
      for (const id of path) loops.set(id, result);
      return result;
    };
    for (const { id, parent, file, path } of this.parentRefs) {
      const where = { file: file.file, line: file.lineOf(path), path: formatPath(path) };
      if (!this.deviceAt.has(parent)) {
        problems.push({ ...where, message: `parent ${JSON.stringify(parent)} is not a device id in the inventory` });
        continue;
      }
      if (id === undefined || !runsIntoLoop(id)) continue;
      // The chain as far as it first repeats, at most 10 links shown.
      const chain = [id];
      const seen = new Set(chain);
      for (let cur = this.parentOf.get(id); cur !== undefined && chain.length <= 10; cur = this.parentOf.get(cur)) {
        chain.push(cur);
        if (seen.has(cur)) break;
        seen.add(cur);
      }
      const closed = seen.size < chain.length;
      problems.push({ ...where, message: `parent chain of ${id} loops back (${chain.join(' → ')}${closed ? '' : ' → …'})` });
    }
  }
}
