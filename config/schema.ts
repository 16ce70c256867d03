// What a valid klaiwatch configuration is. Two YAML files: the settings
// (where InfluxDB is, how to poll) and the inventory (schools, contacts,
// devices), plus the device profiles in config/profiles/. Types come from here
// (z.infer); nothing else re-declares them.
import { z } from 'zod';
import { isIP } from 'node:net';
import { parseDuration, parseSize } from './units.ts';
import { parsePrefix } from './cidr.ts';
import { isMeasurementName, measurements } from './measurements.ts';

export const DEVICE_KINDS = ['router', 'dltv-receiver', 'server', 'switch', 'access-point', 'uplink', 'other'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

const duration = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v * 1000 : parseDuration(v);
    if (ms === undefined || !(ms > 0)) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a duration such as "30s", "5m" or "90d"; got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return ms;
  });

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const bytes = typeof v === 'number' ? v : parseSize(v);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a size such as "256MiB" or "1GB"; got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return bytes;
});

/**
 * A secret as written in YAML: a literal, `env:NAME` (read from the
 * environment) or `file:PATH` (first line of a file, relative to the YAML
 * file). The loader resolves it into a `Secret`; the schema only checks shape.
 */
export const secretRef = z.string().min(1, 'must not be empty');

const hostOrAddress = z.string().refine(
  (v) => isIP(v) !== 0 || /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$/.test(v) && !/^[\d.]+$/.test(v),
  { error: (iss) => `must be an IPv4 or IPv6 address or a host name; got ${JSON.stringify(iss.input)}` },
);

const port = z.number().int().min(1).max(65535);

// ---------------------------------------------------------------- SNMP

export const snmpCredentials = z
  .strictObject({
    version: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal('1'), z.literal('2c'), z.literal('3')], {
      error: (iss) => `snmp.version must be 1, 2 (or "2c") or 3; got ${JSON.stringify(iss.input)}`,
    }),
    community: secretRef.optional(),
    username: z.string().min(1).optional(),
    level: z.enum(['noAuthNoPriv', 'authNoPriv', 'authPriv']).optional(),
    auth_protocol: z.enum(['md5', 'sha', 'sha224', 'sha256', 'sha384', 'sha512']).optional(),
    auth_key: secretRef.optional(),
    priv_protocol: z.enum(['des', 'aes', 'aes256b', 'aes256r']).optional(),
    priv_key: secretRef.optional(),
    context: z.string().optional(),
  })
  .transform((c) => ({ ...c, version: c.version === '2c' || c.version === 2 ? (2 as const) : c.version === 3 || c.version === '3' ? (3 as const) : (1 as const) }))
  .superRefine((c, ctx) => {
    if (c.version !== 3 && !c.community) ctx.addIssue({ code: 'custom', path: ['community'], message: `SNMP v${c.version === 2 ? '2c' : '1'} needs a community` });
    if (c.version === 3) {
      if (!c.username) ctx.addIssue({ code: 'custom', path: ['username'], message: 'SNMP v3 needs a username' });
      const level = c.level ?? (c.priv_key ? 'authPriv' : c.auth_key ? 'authNoPriv' : 'noAuthNoPriv');
      if (level !== 'noAuthNoPriv' && !c.auth_key) ctx.addIssue({ code: 'custom', path: ['auth_key'], message: `SNMP v3 level ${level} needs auth_key` });
      if (level === 'authPriv' && !c.priv_key) ctx.addIssue({ code: 'custom', path: ['priv_key'], message: 'SNMP v3 level authPriv needs priv_key' });
    }
  });
export type SnmpCredentialsInput = z.infer<typeof snmpCredentials>;

// ---------------------------------------------------------------- calendar and alerts

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date such as "2026-05-16"');
const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time such as "08:30"');
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

export const calendarSchema = z
  .strictObject({
    year_be: z.number().int().min(2500).max(2700),
    utc_offset_minutes: z.number().int().min(-720).max(840).default(420),
    school_days: z.array(z.enum(WEEKDAYS)).min(1),
    periods: z.array(z.strictObject({ name: z.string(), start: clock, end: clock })).min(1),
    terms: z.array(z.strictObject({ name: z.string(), start: isoDate, end: isoDate })).min(1),
    holidays: z.array(z.strictObject({ date: isoDate, name: z.string() })).default([]),
  })
  .superRefine((c, ctx) => {
    c.periods.forEach((p, i) => {
      if (p.end <= p.start) ctx.addIssue({ code: 'custom', path: ['periods', i, 'end'], message: `period ends (${p.end}) before it starts (${p.start})` });
    });
    c.terms.forEach((t, i) => {
      if (t.end < t.start) ctx.addIssue({ code: 'custom', path: ['terms', i, 'end'], message: `term ends (${t.end}) before it starts (${t.start})` });
    });
  });
export type CalendarInput = z.infer<typeof calendarSchema>;
export { WEEKDAYS };

const maintenanceSchema = z
  .strictObject({
    devices: z.array(z.string()).default([]),
    schools: z.array(z.string()).default([]),
    start: z.iso.datetime({ offset: true, error: 'must be a date and time with its offset, such as "2026-12-01T18:00:00+07:00"' }),
    end: z.iso.datetime({ offset: true, error: 'must be a date and time with its offset, such as "2026-12-01T22:00:00+07:00"' }),
    reason: z.string().min(1),
  })
  .superRefine((m, ctx) => {
    if (m.devices.length === 0 && m.schools.length === 0) ctx.addIssue({ code: 'custom', message: 'a maintenance window needs devices or schools' });
    if (Date.parse(m.end) <= Date.parse(m.start)) ctx.addIssue({ code: 'custom', path: ['end'], message: `ends (${m.end}) before it starts (${m.start})` });
  });
export type MaintenanceInput = z.infer<typeof maintenanceSchema>;

const thresholdSchema = z
  .strictObject({
    measurement: z.string(),
    field: z.string(),
    /** A problem when the value is above this... */
    above: z.number().optional(),
    /** ...or below this. */
    below: z.number().optional(),
    /** Device kinds it applies to; empty: all. */
    kinds: z.array(z.enum(DEVICE_KINDS)).default([]),
    /** Only series whose tags match these regexes (storage: "^(/|[A-Z]:)" for disks, not memory pools). */
    tags: z.record(z.string(), z.string()).default({}),
  })
  .superRefine((t, ctx) => {
    if ((t.above === undefined) === (t.below === undefined)) ctx.addIssue({ code: 'custom', message: 'a threshold needs exactly one of above and below' });
    if (!isMeasurementName(t.measurement)) ctx.addIssue({ code: 'custom', path: ['measurement'], message: `measurement ${JSON.stringify(t.measurement)} is not in the measurement schema` });
    else if (!Object.hasOwn(measurements[t.measurement].fields, t.field)) ctx.addIssue({ code: 'custom', path: ['field'], message: `field ${JSON.stringify(t.field)} is not a field of measurement ${t.measurement}` });
    for (const [tag, re] of Object.entries(t.tags)) {
      try {
        new RegExp(re);
      } catch {
        ctx.addIssue({ code: 'custom', path: ['tags', tag], message: `not a regular expression: ${JSON.stringify(re)}` });
      }
    }
  });
export type ThresholdInput = z.infer<typeof thresholdSchema>;

const DEFAULT_THRESHOLDS: ThresholdInput[] = [
  { measurement: 'receiver', field: 'lock', below: 1, kinds: ['dltv-receiver'], tags: {} },
  { measurement: 'storage', field: 'used_pct', above: 90, kinds: ['server'], tags: { storage: '^(/|[A-Za-z]:)' } },
  { measurement: 'system', field: 'mem_used_pct', above: 95, kinds: ['server'], tags: {} },
  { measurement: 'system', field: 'cpu_pct', above: 95, kinds: ['server'], tags: {} },
];

export const alertsSchema = z
  .strictObject({
    /** Consecutive equal results before a state changes, per device kind (default 2). */
    confirm: z.partialRecord(z.enum(DEVICE_KINDS), z.number().int().min(1).max(20)).default({}),
    confirm_default: z.number().int().min(1).max(20).default(2),
    /** When each kind is judged: all the time, or only in DLTV broadcast periods. */
    schedule: z.partialRecord(z.enum(DEVICE_KINDS), z.enum(['always', 'broadcast'])).default({ 'dltv-receiver': 'broadcast' }),
    /** Calendar file(s), relative to the settings file; default the built-in config/calendar/. */
    calendar: z.array(z.string()).default([]),
    /** State changes within flap_window that mark a device as flapping (its notices are held). */
    flap_changes: z.number().int().min(2).max(100).default(6),
    flap_window: duration('alerts.flap_window').default(3_600_000),
    maintenance: z.array(maintenanceSchema).default([]),
    /** Checks on polled values, each a state of its own (receiver lock, disks, memory, CPU). */
    thresholds: z.array(thresholdSchema).default(DEFAULT_THRESHOLDS),
    /** SQLite file for device states and incidents, relative to the settings file's folder. */
    state_db: z.string().default('data/state.sqlite'),
  })
  .default({ confirm: {}, confirm_default: 2, schedule: { 'dltv-receiver': 'broadcast' }, calendar: [], flap_changes: 6, flap_window: 3_600_000, maintenance: [], thresholds: DEFAULT_THRESHOLDS, state_db: 'data/state.sqlite' });
export type AlertsInput = z.infer<typeof alertsSchema>;

export const mailSchema = z.strictObject({
  smtp: z.strictObject({
    host: z.string().min(1),
    port: port.default(587),
    /** tls: TLS from the first byte (port 465); starttls: upgrade, refused if the server cannot; none: plain (a local relay only). */
    security: z.enum(['starttls', 'tls', 'none']).default('starttls'),
    username: z.string().optional(),
    password: secretRef.optional(),
    timeout: duration('mail.smtp.timeout').default(30_000),
  }),
  from: z.string().min(3),
  /** The IT officer(s) of the area office: every notice, and the area-wide summaries. */
  officer: z.array(z.email({ error: (iss) => `must be an e-mail address; got ${JSON.stringify(iss.input)}` })).min(1),
  /** At least this many schools failing in one round make one area-wide notice to the officer instead of one each. */
  area_schools: z.number().int().min(2).default(5),
  /** Retry a message SMTP did not take after this, doubling up to max_backoff. */
  min_backoff: duration('mail.min_backoff').default(30_000),
  max_backoff: duration('mail.max_backoff').default(1_800_000),
});
export type MailInput = z.infer<typeof mailSchema>;

// ---------------------------------------------------------------- traffic logs

/** The Computer Crime Act B.E. 2550 (amended 2560), section 26: at least 90 days. */
export const MIN_RETENTION_DAYS = 90;
/** A legal hold keeps data at most two years (section 26, on an official's order). */
export const MAX_HOLD_DAYS = 730;

const listenAddress = (what: string) =>
  z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, `${what} must be HOST:PORT, such as 0.0.0.0:514 or [::]:514`);

export const trafficSchema = z.strictObject({
  /** The archive folder (write-ahead log, segments, manifest), relative to the settings file. */
  dir: z.string().default('data/traffic'),
  retention: duration('traffic.retention')
    .default(MIN_RETENTION_DAYS * 86_400_000)
    .refine((ms) => ms >= MIN_RETENTION_DAYS * 86_400_000, {
      error: (iss) => `traffic.retention is ${Math.round((iss.input as number) / 86_400_000)} days; the Computer Crime Act (section 26) requires at least ${MIN_RETENTION_DAYS} days: set 90d or more`,
    }),
  /** The Ed25519 private key that signs the manifest (PEM; \`klaiwatch archive keygen\`). Keep it on another medium if you can. */
  signing_key: z.string().min(1),
  syslog: z
    .strictObject({
      udp: listenAddress('traffic.syslog.udp').optional(),
      tcp: listenAddress('traffic.syslog.tcp').optional(),
      tls: z
        .strictObject({
          listen: listenAddress('traffic.syslog.tls.listen'),
          cert: z.string().min(1),
          key: z.string().min(1),
          /** Client certificates signed by this CA are required when set. */
          ca: z.string().optional(),
          /** A connection whose TLS handshake has not ended this long after its first byte is closed (and counted); at most idle_timeout. */
          handshake_timeout: duration('traffic.syslog.tls.handshake_timeout').default(10_000),
        })
        .optional(),
      /** Longer messages are cut at this size (and counted). */
      max_message: size.default(65_536),
      /** TCP and TLS connections at once; more are refused (and counted). */
      max_connections: z.number().int().min(1).max(100_000).default(1000),
      /** A TCP or TLS connection that sends nothing for this long is closed (and counted). */
      idle_timeout: duration('traffic.syslog.idle_timeout').default(5 * 60_000),
    })
    .default({ max_message: 65_536, max_connections: 1000, idle_timeout: 5 * 60_000 }),
  flow: z
    .strictObject({
      udp: listenAddress('traffic.flow.udp').optional(),
      /** Data sets waiting for their template, at most. */
      max_held: z.number().int().min(0).max(1_000_000).default(10_000),
      /** ...and at most this many bytes of them: a spoofed exporter cannot make the decoder hold more. */
      max_held_bytes: size.default(16 * 1024 * 1024),
      hold: duration('traffic.flow.hold').default(30 * 60_000),
    })
    .default({ max_held: 10_000, max_held_bytes: 16 * 1024 * 1024, hold: 30 * 60_000 }),
  /**
   * Who may send (absent: everyone). `inventory`: every inventory device's
   * address (default true); `cidrs`: more addresses or prefixes, IPv4 or IPv6.
   */
  allow: z
    .strictObject({
      inventory: z.boolean().default(true),
      cidrs: z
        .array(
          z.string().transform((v, ctx) => {
            const p = parsePrefix(v.trim());
            if (typeof p === 'string') {
              ctx.addIssue({ code: 'custom', message: `must be an IPv4 or IPv6 address or prefix such as 10.36.0.0/16 or 2001:db8::/32; got ${JSON.stringify(v)} (${p})` });
              return z.NEVER;
            }
            return v.trim();
          }),
        )
        .max(100_000)
        .default([]),
    })
    .optional(),
  /** Records are durable after the fsync that follows them: at most this much is lost to a crash. */
  fsync_interval: duration('traffic.fsync_interval').default(200),
  /** A segment is sealed this often... */
  seal_interval: duration('traffic.seal_interval').default(3_600_000),
  /** ...or when the log holds this many records... */
  seal_records: z.number().int().min(1).default(5_000_000),
  /** ...or this many bytes: a seal holds what it seals in memory, so this bounds it (long lines make few records of many bytes). */
  seal_bytes: size.default(256 * 1024 * 1024),
  /** TCP and TLS senders are paused (not dropped) while this much waits for the disk. */
  max_pending: size.default(64 * 1024 * 1024),
  /** GET /healthz of `klaiwatch archive serve` run alone (under `klaiwatch run` the API part serves /healthz for every part). */
  http: listenAddress('traffic.http').default('127.0.0.1:9274'),
  /** A log line whose parse takes longer than this is stored raw (plain syslog record) and counted. */
  parse_budget: duration('traffic.parse_budget').default(5),
  /** Messages waiting for the parsing threads, at most: past it UDP datagrams are dropped (counted), TCP/TLS senders paused. */
  max_queue: size.default(32 * 1024 * 1024),
  /**
   * The chain head sent out every day (archive/anchor.ts): e-mailed to
   * mail.officer and `mail_to` (the auditors) at `daily_at` (Asia/Bangkok),
   * and time-stamped by the RFC 3161 authority at `tsa_url` when set (its
   * CA certificate in `tsa_ca` lets verify check the token's signature).
   */
  anchors: z
    .strictObject({
      mail_to: z.array(z.email({ error: (iss) => `traffic.anchors.mail_to: must be an e-mail address; got ${JSON.stringify(iss.input)}` })).max(100).default([]),
      daily_at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'traffic.anchors.daily_at must be a time such as "07:00"').default('07:00'),
      tsa_url: z.url({ protocol: /^https?$/, error: (iss) => `traffic.anchors.tsa_url must be an http or https URL; got ${JSON.stringify(iss.input)}` }).optional(),
      tsa_ca: z.string().min(1).optional(),
    })
    .default({ mail_to: [], daily_at: '07:00' }),
  /** The devices' clocks, for syslog times written without a zone (Thailand: +07:00). */
  device_utc_offset: z
    .string()
    .regex(/^[+-]\d{2}:\d{2}$/, 'traffic.device_utc_offset must be like +07:00')
    .default('+07:00'),
});
export type TrafficInput = z.infer<typeof trafficSchema>;

// ---------------------------------------------------------------- collector shards

/** At most this many shards ("N/M" with M up to it) and list entries. */
export const MAX_SHARDS = 1000;

/**
 * Which schools this collector owns (config/shard.ts): every school when
 * absent; "N/M": the schools whose code's FNV-1a 32-bit hash modulo M is
 * N - 1; a list: the schools whose code or district is in it. The office
 * goes by the same rule, by its own code and district.
 */
export const shardSchema = z.union([z.string(), z.array(z.string().min(1, 'a shard entry must not be empty')).min(1).max(100_000)]).transform((v, ctx) => {
  if (Array.isArray(v)) return { kind: 'list' as const, names: v };
  const m = /^\s*(\d{1,4})\s*\/\s*(\d{1,4})\s*$/.exec(v);
  const index = m ? Number(m[1]) : 0;
  const of = m ? Number(m[2]) : 0;
  if (!m || index < 1 || of < 1 || index > of || of > MAX_SHARDS) {
    ctx.addIssue({ code: 'custom', message: `collector.shard must be "N/M" with 1 <= N <= M <= ${MAX_SHARDS} (such as "1/2"), or a list of districts or school codes; got ${JSON.stringify(v.slice(0, 40))}` });
    return z.NEVER;
  }
  return { kind: 'hash' as const, index, of };
});
export type ShardInput = z.infer<typeof shardSchema>;

// ---------------------------------------------------------------- report

const signatory = (what: string) =>
  z.strictObject({
    name: z.string().trim().min(1, `report.${what}.name must not be empty`).max(200),
    position: z.string().trim().min(1, `report.${what}.position must not be empty`).max(300),
  });

/** The office's heading (lines above the title; default: the area's name_th) and who signs the report. */
export const reportSchema = z
  .strictObject({
    title: z.string().trim().min(1).max(300).optional(),
    heading: z.array(z.string().trim().min(1, 'a report.heading line must not be empty').max(300)).max(6).default([]),
    prepared_by: signatory('prepared_by').optional(),
    approved_by: signatory('approved_by').optional(),
  })
  .default({ heading: [] });

// ---------------------------------------------------------------- settings

const kindIntervals = z
  .partialRecord(z.enum(DEVICE_KINDS), duration('interval'))
  .default({});

export const settingsSchema = z.strictObject({
  area: z.strictObject({
    code: z.string().min(1),
    name_th: z.string().min(1),
    name_en: z.string().optional(),
  }),
  /** Inventory file(s), relative to the settings file. */
  inventory: z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (Array.isArray(v) ? v : [v])),
  /** Extra profile folders (relative to the settings file), searched before the built-in config/profiles/. */
  profile_dirs: z.array(z.string()).default([]),
  instance: z.string().default('collector-1'),
  /** This collector's share of the area (collector.shard); absent: the whole area. Give each shard its own `instance`. */
  collector: z.strictObject({ shard: shardSchema.optional() }).default({}),
  influx: z.strictObject({
    url: z.url({ protocol: /^https?$/, error: 'influx.url must be an http:// or https:// URL' }),
    database: z.string().regex(/^[A-Za-z0-9_-]+$/, 'influx.database may hold letters, digits, "_" and "-"').default('klaiwatch'),
    username: z.string().optional(),
    password: secretRef.optional(),
    /** InfluxDB 2.x/3.x token, sent as `Authorization: Token ...`. */
    token: secretRef.optional(),
    raw_retention: duration('influx.raw_retention').default(30 * 86_400_000),
    rollup_retention: duration('influx.rollup_retention').default(730 * 86_400_000),
    batch_size: z.number().int().min(1).max(100_000).default(5000),
    flush_interval: duration('influx.flush_interval').default(1000),
    timeout: duration('influx.timeout').default(10_000),
    /** Create the database, retention policies and continuous queries at start (off where the token may not). */
    manage_schema: z.boolean().default(true),
  }),
  spool: z
    .strictObject({
      dir: z.string().default('data/spool'),
      max_bytes: size.default(256 * 1024 * 1024),
    })
    .default({ dir: 'data/spool', max_bytes: 256 * 1024 * 1024 }),
  polling: z
    .strictObject({
      interval: duration('polling.interval').default(60_000),
      intervals: kindIntervals,
      jitter: z.number().min(0).max(0.9).default(0.1),
      concurrency: z.number().int().min(1).max(10_000).default(128),
      timeout: duration('polling.timeout').default(2000),
      retries: z.number().int().min(0).max(10).default(1),
      max_repetitions: z.number().int().min(1).max(100).default(25),
    })
    .default({ interval: 60_000, intervals: {}, jitter: 0.1, concurrency: 128, timeout: 2000, retries: 1, max_repetitions: 25 }),
  snmp: z
    .strictObject({
      /** Named credential sets a device can refer to with `snmp: NAME`. */
      credentials: z.record(z.string(), snmpCredentials).default({}),
    })
    .default({ credentials: {} }),
  icmp: z
    .strictObject({
      enabled: z.boolean().default(true),
      count: z.number().int().min(1).max(20).default(3),
      /** Gap between two probes of one host. */
      period: duration('icmp.period').default(1000),
      /** Gap between probes to different hosts (fping -i). */
      spacing: duration('icmp.spacing').default(1),
      timeout: duration('icmp.timeout').default(1000),
      fping: z.string().default('fping'),
    })
    .default({ enabled: true, count: 3, period: 1000, spacing: 1, timeout: 1000, fping: 'fping' }),
  ntp: z
    .strictObject({
      server: z.string().min(1),
      port: port.default(123),
      interval: duration('ntp.interval').default(300_000),
      warn_ms: z.number().positive().default(10),
    })
    .optional(),
  http: z
    .strictObject({
      listen: z
        .string()
        .regex(/^(\[[0-9a-fA-F:]+\]|[^:]+):\d+$/, 'http.listen must be HOST:PORT')
        .default('127.0.0.1:9273'),
    })
    .default({ listen: '127.0.0.1:9273' }),
  /**
   * The HTTP API, /healthz and the auditor's pages (`klaiwatch api`; under
   * `klaiwatch run` a part of its own). `listen` defaults to http.listen; give
   * it another address when `klaiwatch collector` (which serves its own
   * /healthz on http.listen) runs beside `klaiwatch api` as separate units.
   */
  api: z
    .strictObject({
      listen: listenAddress('api.listen').optional(),
      /** Tokens (only their SHA-256), relative to the settings file. */
      tokens_db: z.string().min(1).default('data/api.sqlite'),
      /** HTTPS: PEM certificate (chain) and private key files, relative to the settings file. */
      tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
      /** Requests per token (or per address without one) per minute. */
      rate_limit: z.number().int().min(1).max(1_000_000).default(600),
      /** The most rows one traffic answer (JSON, NDJSON, CSV) may carry; more are cut and the answer says so. */
      max_rows: z.number().int().min(1).max(10_000_000).default(100_000),
      /** Request bodies larger than this are refused (413). */
      body_limit: size.default(64 * 1024),
      /** Behind a reverse proxy: trust its X-Forwarded-For for the client's address (rate limit, logs). */
      trust_proxy: z.boolean().default(false),
    })
    .default({ tokens_db: 'data/api.sqlite', rate_limit: 600, max_rows: 100_000, body_limit: 64 * 1024, trust_proxy: false }),
  log: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .default({ level: 'info' }),
  alerts: alertsSchema,
  /** Without it, notices are only logged. */
  mail: mailSchema.optional(),
  /** The Computer-Crime-Act traffic-log archive (syslog, NetFlow/IPFIX); absent: not received. */
  traffic: trafficSchema.optional(),
  /** The evaluation report's heading and signature block (klaiwatch report). */
  report: reportSchema,
});
export type SettingsInput = z.infer<typeof settingsSchema>;

// ---------------------------------------------------------------- inventory

const deviceId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'device id may hold letters, digits, ".", "_" and "-"');

export const deviceSchema = z.strictObject({
  id: deviceId,
  kind: z.enum(DEVICE_KINDS, { error: (iss) => `kind must be one of ${DEVICE_KINDS.join(', ')}; got ${JSON.stringify(iss.input)}` }),
  name: z.string().optional(),
  address: hostOrAddress,
  port: port.default(161),
  /** Profile name, or "auto" to choose by sysObjectID, or "icmp-only". */
  profile: z.string().min(1).default('auto'),
  /** Inline credentials, or the name of a set under settings `snmp.credentials`. */
  snmp: z.union([z.string(), snmpCredentials]).optional(),
  /** Device id this one is reached through (classroom receiver → school router → office uplink). */
  parent: z.string().optional(),
  icmp: z.boolean().default(true),
  /** The interface (ifName) that carries the uplink: its oper status becomes the check "uplink". */
  uplink_if: z.string().optional(),
  classroom: z.string().optional(),
  tags: z.record(z.string(), z.string()).default({}),
});
export type DeviceInput = z.infer<typeof deviceSchema>;

const contact = z.strictObject({
  name: z.string().optional(),
  email: z.email({ error: (iss) => `must be an e-mail address; got ${JSON.stringify(iss.input)}` }),
  role: z.string().optional(),
});

export const schoolSchema = z.strictObject({
  code: z.string().regex(/^[A-Za-z0-9-]+$/, 'school code may hold letters, digits and "-"'),
  name_th: z.string().min(1),
  name_en: z.string().optional(),
  district: z.string().default('-'),
  cluster: z.string().optional(),
  location: z.strictObject({ lat: z.number().min(-90).max(90), lon: z.number().min(-180).max(180) }).optional(),
  contacts: z.array(contact).default([]),
  tags: z.record(z.string(), z.string()).default({}),
  devices: z.array(deviceSchema).default([]),
});
export type SchoolInput = z.infer<typeof schoolSchema>;

export const inventorySchema = z.strictObject({
  /** The area office's own site (uplink, servers), polled like a school. */
  office: schoolSchema.optional(),
  schools: z.array(schoolSchema).default([]),
});
export type InventoryInput = z.infer<typeof inventorySchema>;

// ---------------------------------------------------------------- profiles

const oid = z.string().regex(/^\.?\d+(\.\d+)+$/, 'must be a numeric OID such as 1.3.6.1.2.1.1.3.0').transform((s) => s.replace(/^\./, ''));

const valueType = z.enum(['gauge', 'counter', 'enum', 'text']);

const metricCommon = {
  /** MIB object name; how other entries (derived, multiply_by) refer to it. */
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/),
  /** Measurement field; omit for a helper value that only feeds `derived` or `multiply_by`. */
  field: z.string().optional(),
  type: valueType.default('gauge'),
  /** Counter width; 32-bit counters wrap at 2^32, 64-bit ones are treated as reset when they go back. */
  bits: z.union([z.literal(32), z.literal(64)]).optional(),
  scale: z.number().default(1),
  /** Multiply by another value of the same row (hrStorageSize × hrStorageAllocationUnits). */
  multiply_by: z.string().optional(),
  /** A counter's rate may not exceed this other value of the same row (ifHighSpeed bounds ifHCInOctets × 8). */
  limit_by: z.string().optional(),
  /** Text values such as "0.15" (laLoad) are parsed as numbers. */
  parse_number: z.boolean().default(false),
  /** Names for enum values, for people and dashboards. */
  values: z.record(z.string(), z.string()).optional(),
  /**
   * Enum only: what each raw value becomes, by value, range or list:
   * `{ "3-250": 1, "0-2": 0 }` (a modem whose states 3 to 250 are locked),
   * `{ "1,3,5-7": 1 }`. A raw value no key covers is dropped and counted
   * (klaiwatch values_dropped), never guessed.
   */
  map: z.record(z.string(), z.number()).optional(),
  /** Values outside this range (after scale) cannot come from a working device: dropped and counted. */
  valid: z.strictObject({ min: z.number().optional(), max: z.number().optional() }).optional(),
};

/** A `map` key: integers and ranges, comma-separated ("7", "3-250", "-10--1", "1,3,5-7"). */
export interface MapRange {
  from: number;
  to: number;
}
const MAP_ITEM = /^\s*(-?\d{1,15})\s*(?:-\s*(-?\d{1,15})\s*)?$/;
/** The ranges a map key names, or a message saying what is wrong with it. */
export function parseMapKey(key: string): MapRange[] | string {
  if (key.length > 200) return `map key is ${key.length} characters long; at most 200`;
  const items = key.split(',');
  if (items.length > 50) return `map key ${JSON.stringify(key.slice(0, 40))}… lists ${items.length} items; at most 50`;
  const out: MapRange[] = [];
  for (const item of items) {
    const m = MAP_ITEM.exec(item);
    if (!m) return `map key ${JSON.stringify(key)}: ${JSON.stringify(item.trim())} is not an integer or a range; write a value ("7"), a range ("3-250") or a list ("1,3,5-7")`;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return `map key ${JSON.stringify(key)}: the range ${from}-${to} ends before it starts`;
    out.push({ from, to });
  }
  return out;
}

/** Map keys parsed, checked for overlaps; issues go to ctx with the path of the key. */
function checkMap(m: { type: string; map?: Record<string, number> | undefined; values?: Record<string, string> | undefined }, ctx: z.RefinementCtx): void {
  if (!m.map) return;
  if (m.type !== 'enum') ctx.addIssue({ code: 'custom', path: ['map'], message: `map applies to type enum; this entry is ${m.type}` });
  const seen: (MapRange & { key: string })[] = [];
  for (const key of Object.keys(m.map)) {
    const r = parseMapKey(key);
    if (typeof r === 'string') {
      ctx.addIssue({ code: 'custom', path: ['map', key], message: r });
      continue;
    }
    for (const a of r) {
      const clash = seen.find((b) => a.from <= b.to && b.from <= a.to);
      if (clash) ctx.addIssue({ code: 'custom', path: ['map', key], message: `map key ${JSON.stringify(key)} overlaps key ${JSON.stringify(clash.key)} (${Math.max(a.from, clash.from)} is in both)` });
      seen.push({ ...a, key });
    }
  }
}

function checkValid(m: { valid?: { min?: number | undefined; max?: number | undefined } | undefined }, ctx: z.RefinementCtx): void {
  if (m.valid && m.valid.min !== undefined && m.valid.max !== undefined && m.valid.max < m.valid.min) {
    ctx.addIssue({ code: 'custom', path: ['valid'], message: `valid.max (${m.valid.max}) is below valid.min (${m.valid.min})` });
  }
}

const fallbackSchema = z.strictObject({ oid, bits: z.union([z.literal(32), z.literal(64)]).optional(), scale: z.number().optional() });

export const scalarSchema = z.strictObject({ oid, ...metricCommon, measurement: z.string() }).superRefine((m, ctx) => {
  checkMap(m, ctx);
  checkValid(m, ctx);
});
export const columnSchema = z.strictObject({ oid, ...metricCommon, fallback: fallbackSchema.optional() }).superRefine((m, ctx) => {
  checkMap(m, ctx);
  checkValid(m, ctx);
});

const derivedSchema = z.strictObject({
  field: z.string(),
  /** 100 × part / whole; with `part_is_free`, 100 × (1 − part / whole). */
  percent: z.strictObject({ part: z.string(), whole: z.string(), part_is_free: z.boolean().default(false) }).optional(),
  /** 100 − value (ssCpuIdle → busy). */
  complement_pct: z.string().optional(),
  /** 100 × part / (part + other): a pool given as used and free (ciscoMemoryPoolUsed, ciscoMemoryPoolFree). */
  percent_of_sum: z.strictObject({ part: z.string(), other: z.string() }).optional(),
});

export const tableSchema = z.strictObject({
  name: z.string(),
  measurement: z.string(),
  /** Tag that names each row, from a text column (ifName, hrStorageDescr), with an optional fallback column (ifDescr). */
  index_tag: z
    .strictObject({ tag: z.string(), oid, fallback: oid.optional() })
    .optional(),
  /** Collapse rows into one point: mean of each field (hrProcessorLoad → cpu_pct). */
  aggregate: z.enum(['mean', 'max', 'sum']).optional(),
  columns: z.array(columnSchema).min(1),
  derived: z.array(derivedSchema).default([]),
  /** Skip rows whose text in this column matches the regex (loopback, virtual memory...). */
  exclude: z.strictObject({ oid, match: z.string() }).optional(),
  /** Keep only rows whose text in this column matches the regex (a firewall's temperature sensors among its voltages and fans). */
  only: z.strictObject({ oid, match: z.string() }).optional(),
}).superRefine((t, ctx) => {
  for (const k of ['exclude', 'only'] as const) {
    const re = t[k]?.match;
    if (re === undefined) continue;
    try {
      new RegExp(re);
    } catch {
      ctx.addIssue({ code: 'custom', path: [k, 'match'], message: `not a regular expression: ${JSON.stringify(re)}` });
    }
  }
});

export const profileSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'profile name may hold a-z, 0-9 and "-"'),
  description: z.string(),
  /** sysObjectID prefixes that select this profile when a device says `profile: auto`. */
  match: z.strictObject({ sys_object_id: z.array(oid).default([]) }).default({ sys_object_id: [] }),
  /** Other profiles whose scalars and tables this one adds to (IF-MIB, HOST-RESOURCES...). */
  include: z.array(z.string()).default([]),
  /** False for devices that answer only ICMP (consumer DLTV boxes). */
  snmp: z.boolean().default(true),
  scalars: z.array(scalarSchema).default([]),
  tables: z.array(tableSchema).default([]),
  scalar_derived: z.array(derivedSchema.extend({ measurement: z.string() })).default([]),
});
export type ProfileInput = z.infer<typeof profileSchema>;
export type TableInput = z.infer<typeof tableSchema>;
export type ColumnInput = z.infer<typeof columnSchema>;
export type ScalarInput = z.infer<typeof scalarSchema>;
export type DerivedInput = z.infer<typeof derivedSchema>;

/** Field and measurement names in a profile must exist in the measurement schema. */
export function checkProfileAgainstSchema(p: ProfileInput): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const checkField = (path: (string | number)[], measurement: string, field: string | undefined) => {
    if (!isMeasurementName(measurement)) {
      problems.push({ path, message: `measurement ${JSON.stringify(measurement)} is not in the measurement schema (${Object.keys(measurements).join(', ')})` });
      return;
    }
    if (field !== undefined && !Object.hasOwn(measurements[measurement].fields, field)) {
      problems.push({
        path: [...path, 'field'],
        message: `field ${JSON.stringify(field)} is not a field of measurement ${measurement} (${Object.keys(measurements[measurement].fields).join(', ')})`,
      });
    }
  };
  p.scalars.forEach((s, i) => checkField(['scalars', i], s.measurement, s.field));
  p.scalar_derived.forEach((d, i) => checkField(['scalar_derived', i], d.measurement, d.field));
  p.tables.forEach((t, i) => {
    t.columns.forEach((c, j) => checkField(['tables', i, 'columns', j], t.measurement, c.field));
    t.derived.forEach((d, j) => checkField(['tables', i, 'derived', j], t.measurement, d.field));
    if (t.index_tag && isMeasurementName(t.measurement) && !(measurements[t.measurement].tags as readonly string[]).includes(t.index_tag.tag)) {
      problems.push({ path: ['tables', i, 'index_tag', 'tag'], message: `tag ${JSON.stringify(t.index_tag.tag)} is not a tag of measurement ${t.measurement}` });
    }
  });
  return problems;
}
