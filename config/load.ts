// Turns the YAML files into typed objects, or into a ConfigError that lists
// every problem with its file, line, path inside the file and reason:
//   config/area.yaml:14: schools[3].devices[1].address: must be an IPv4 ...
// Nothing is defaulted silently: a missing secret, an unknown profile or
// parent, a duplicate id are all errors.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
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

export const BUILTIN_PROFILE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'profiles');
export const BUILTIN_CALENDAR_DIR = join(dirname(fileURLToPath(import.meta.url)), 'calendar');

export interface Problem {
  file: string;
  line?: number;
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblem(p: Problem): string {
  const where = p.line ? `${p.file}:${p.line}` : p.file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
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
  return {
    file: shown,
    data: doc.toJS() ?? {},
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
  const settings = validate(settingsSchema, sy, problems);
  if (!settings) throw new ConfigError(problems);

  // Secrets in the settings file.
  const settingsWhere = (path: PropertyKey[]) => () => ({ file: sy.file, line: sy.lineOf(path), path: formatPath(path) });
  const credentialSets = new Map<string, SnmpCredentials>();
  for (const [name, c] of Object.entries(settings.snmp.credentials)) {
    credentialSets.set(name, resolveCredentials(c, env, baseDir, (k) => settingsWhere(['snmp', 'credentials', name, k])(), problems));
  }
  const influxPassword = resolveSecret(settings.influx.password, env, baseDir, settingsWhere(['influx', 'password']), problems);
  const influxToken = resolveSecret(settings.influx.token, env, baseDir, settingsWhere(['influx', 'token']), problems);
  const smtpPassword = resolveSecret(settings.mail?.smtp.password, env, baseDir, settingsWhere(['mail', 'smtp', 'password']), problems);

  const profiles = loadProfiles([...settings.profile_dirs.map((d) => resolve(baseDir, d)), BUILTIN_PROFILE_DIR], problems, cwd);

  const schools: School[] = [];
  const devices: Device[] = [];
  const deviceById = new Map<string, Device>();
  const schoolByCode = new Map<string, string>();
  const parentRefs: { device: Device; file: YamlFile; path: PropertyKey[] }[] = [];

  for (const inv of settings.inventory) {
    const invPath = resolve(baseDir, inv);
    const iy = readYaml(invPath, problems, shown(invPath));
    if (!iy) continue;
    const inventory = validate(inventorySchema, iy, problems);
    if (!inventory) continue;
    const sites: { s: SchoolInput; path: PropertyKey[]; office: boolean }[] = [];
    if (inventory.office) sites.push({ s: inventory.office, path: ['office'], office: true });
    inventory.schools.forEach((s, i) => sites.push({ s, path: ['schools', i], office: false }));

    for (const { s, path, office } of sites) {
      const where = (p: PropertyKey[]) => ({ file: iy.file, line: iy.lineOf([...path, ...p]), path: formatPath([...path, ...p]) });
      const seen = schoolByCode.get(s.code);
      if (seen) problems.push({ ...where(['code']), message: `school code ${s.code} is used twice (first at ${seen})` });
      schoolByCode.set(s.code, `${iy.file}:${iy.lineOf([...path, 'code']) ?? '?'}`);
      const school: School = { ...s, office, devices: [] };
      s.devices.forEach((d, j) => {
        const dp: PropertyKey[] = ['devices', j];
        const devWhere = (k: string) => where([...dp, k]);
        const profile = d.profile;
        if (profile !== 'auto' && !profiles.has(profile)) {
          problems.push({ ...devWhere('profile'), message: `no profile named ${JSON.stringify(profile)} (known: auto, ${[...profiles.keys()].sort().join(', ')})` });
        }
        const needsSnmp = profile === 'auto' || (profiles.get(profile)?.snmp ?? true);
        let snmp: SnmpCredentials | undefined;
        if (typeof d.snmp === 'string') {
          snmp = credentialSets.get(d.snmp);
          if (!snmp && !Object.hasOwn(settings.snmp.credentials, d.snmp)) {
            problems.push({ ...devWhere('snmp'), message: `no SNMP credential set named ${JSON.stringify(d.snmp)} in ${sy.file} snmp.credentials (known: ${[...credentialSets.keys()].join(', ') || 'none'})` });
          }
        } else if (d.snmp) {
          snmp = resolveCredentials(d.snmp, env, baseDir, (k) => devWhere(`snmp.${k}`), problems);
        } else if (needsSnmp) {
          snmp = credentialSets.get('default');
          if (!snmp) problems.push({ ...where(dp), message: `device ${d.id} needs SNMP credentials: give it snmp:, or define snmp.credentials.default in ${sy.file}, or use profile icmp-only` });
        }
        const { snmp: _ignored, ...rest } = d;
        const device: Device = { ...rest, school, origin: `${iy.file}:${iy.lineOf([...path, ...dp]) ?? '?'}` };
        if (snmp && needsSnmp) device.snmp = snmp;
        const dup = deviceById.get(d.id);
        if (dup) problems.push({ ...devWhere('id'), message: `device id ${d.id} is used twice (first at ${dup.origin})` });
        else deviceById.set(d.id, device);
        school.devices.push(device);
        devices.push(device);
        if (d.parent !== undefined) parentRefs.push({ device, file: iy, path: [...path, ...dp, 'parent'] });
      });
      schools.push(school);
    }
  }

  for (const { device, file, path } of parentRefs) {
    const p = device.parent!;
    if (!deviceById.has(p)) {
      problems.push({ file: file.file, line: file.lineOf(path), path: formatPath(path), message: `parent ${JSON.stringify(p)} is not a device id in the inventory` });
      continue;
    }
    // Follow the chain: a loop would make every device in it "unreachable" forever.
    const seen = new Set([device.id]);
    for (let cur = deviceById.get(p); cur; cur = cur.parent ? deviceById.get(cur.parent) : undefined) {
      if (seen.has(cur.id)) {
        problems.push({ file: file.file, line: file.lineOf(path), path: formatPath(path), message: `parent chain of ${device.id} loops back (${[...seen].join(' → ')} → ${cur.id})` });
        break;
      }
      seen.add(cur.id);
    }
  }

  // Calendars: the configured files, or every file of the built-in folder.
  const calendarFiles = settings.alerts.calendar.length > 0
    ? settings.alerts.calendar.map((f) => resolve(baseDir, f))
    : readdirSync(BUILTIN_CALENDAR_DIR).filter((n) => n.endsWith('.yaml')).sort().map((n) => join(BUILTIN_CALENDAR_DIR, n));
  const calendars: CalendarInput[] = [];
  for (const f of calendarFiles) {
    const cy = readYaml(f, problems, shown(f));
    const cal = cy && validate(calendarSchema, cy, problems);
    if (cal) calendars.push(cal);
  }

  // Maintenance windows must name devices and schools that exist.
  const codes = new Set(schools.map((s) => s.code));
  settings.alerts.maintenance.forEach((m, i) => {
    m.devices.forEach((id, j) => {
      if (!deviceById.has(id)) problems.push({ file: sy.file, line: sy.lineOf(['alerts', 'maintenance', i, 'devices', j]), path: `alerts.maintenance[${i}].devices[${j}]`, message: `no device ${JSON.stringify(id)} in the inventory` });
    });
    m.schools.forEach((code, j) => {
      if (!codes.has(code)) problems.push({ file: sy.file, line: sy.lineOf(['alerts', 'maintenance', i, 'schools', j]), path: `alerts.maintenance[${i}].schools[${j}]`, message: `no school ${JSON.stringify(code)} in the inventory` });
    });
  });

  if (problems.length > 0) throw new ConfigError(problems);
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
