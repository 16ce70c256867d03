// One SNMP poll of one device, driven entirely by its profile: which scalars
// to GET, which table columns to walk, how each value becomes a field. A
// failed poll is a result too (snmp_up 0, the error, what it cost), never a
// crash, and never a reason to wait for the other devices. Whatever goes
// wrong is named (collector/snmp/errors.ts) on the device point, and what was
// read intact is still written: a bad column does not cost the good ones.
import type { Varbind } from 'net-snmp';
import type { Device } from '../../config/load.ts';
import { parseMapKey, type ProfileInput, type TableInput, type ColumnInput, type ScalarInput, type DerivedInput, type MapRange } from '../../config/schema.ts';
import { measurements, type MeasurementName, type FieldSpec } from '../../config/measurements.ts';
import { type Point, deviceTags } from '../point.ts';
import { SnmpSession, varbindValue, ErrorStatus, TYPE, isVarbindError, typeName } from './session.ts';
import { walkColumns, compareOids, Column } from './walk.ts';
import { SnmpError, Problems, clip, type SnmpProblem, type SnmpErrorKind } from './errors.ts';
import { counterRate, type CounterSample } from './counters.ts';

export const SYS_OBJECT_ID = '1.3.6.1.2.1.1.2.0';
export const SYS_UPTIME = '1.3.6.1.2.1.1.3.0';
const GET_CHUNK = 40;

/** What the collector remembers about a device between polls. */
export interface DeviceMemory {
  /** Profile chosen by sysObjectID when the device says `profile: auto`. */
  profile?: string;
  sysObjectID?: string;
  counters: Map<string, CounterSample>;
  /** Columns (by OID) the agent lacks, read from their fallback instead. */
  fallbacks: Set<string>;
  /** Profile scalars (by OID) the agent has answered with a value: from then on, noSuchObject for one is named. */
  scalarsSeen: Set<string>;
}

export function newMemory(): DeviceMemory {
  return { counters: new Map(), fallbacks: new Set(), scalarsSeen: new Set() };
}

export interface PollResult {
  device: string;
  ok: boolean;
  /** The agent answered at least one request. */
  answered: boolean;
  /** Every problem named in the poll, joined, after the device (`school … ADDRESS: KIND: STEP: …`); absent when there was none. */
  error?: string;
  /** The problems one by one, each with its kind (absent on results not made by pollDevice). */
  problems?: SnmpProblem[];
  profile?: string;
  durationMs: number;
  pdus: number;
  timeouts: number;
  uptimeS?: number;
  /** Values dropped as impossible or unmapped (see Dropped); absent on results not made by pollDevice. */
  valuesDropped?: number;
  /** The first few dropped values, each saying what, where and why. */
  droppedDetail?: string[];
  points: Point[];
}

/** Text fields (sysDescr, a sensor name) are cut here: an agent chooses their length, not us. */
export const MAX_TEXT = 256;
/** Dropped values named per poll, at most (the count has them all). */
const MAX_DROPPED_NAMED = 10;
/** Rows a table filter (`only`, `exclude`) tests at most this much of: its regex sees bounded input. */
const MAX_FILTER_TEXT = 256;

/** Values no device can have, or that a profile's map or valid range refuses: counted, the first few named. */
class Dropped {
  count = 0;
  readonly named: string[] = [];
  add(what: string): void {
    this.count += 1;
    if (this.named.length < MAX_DROPPED_NAMED) this.named.push(what);
  }
}

const mapRanges = new WeakMap<Record<string, number>, { r: MapRange[]; to: number }[]>();
/** The value a profile's enum map gives a raw value, or undefined when no key covers it. */
export function mapValue(map: Record<string, number>, raw: number): number | undefined {
  let ranges = mapRanges.get(map);
  if (!ranges) {
    ranges = Object.entries(map).map(([k, to]) => ({ r: ((r) => (typeof r === 'string' ? [] : r))(parseMapKey(k)), to }));
    mapRanges.set(map, ranges);
  }
  for (const { r, to } of ranges) if (r.some((x) => raw >= x.from && raw <= x.to)) return to;
  return undefined;
}

const fmt = (n: number) => (Math.abs(n) >= 1e6 ? n.toExponential(3) : String(Math.round(n * 1000) / 1000));

export interface PollOptions {
  maxRepetitions: number;
  now?: () => number;
}

/** The profile whose sysObjectID prefix is the longest match; `generic` when none matches. */
export function chooseProfile(sysObjectID: string, profiles: Map<string, ProfileInput>): string {
  let best = 'generic';
  let bestLen = 0;
  for (const p of profiles.values()) {
    for (const prefix of p.match.sys_object_id) {
      if ((sysObjectID === prefix || sysObjectID.startsWith(prefix + '.')) && prefix.length > bestLen) {
        best = p.name;
        bestLen = prefix.length;
      }
    }
  }
  return best;
}

async function getScalars(session: SnmpSession, oids: string[], what: string): Promise<Map<string, Varbind>> {
  const out = new Map<string, Varbind>();
  for (let i = 0; i < oids.length; i += GET_CHUNK) {
    let chunk = oids.slice(i, i + GET_CHUNK);
    // SNMPv1 fails the whole GET on one missing object (noSuchName + index):
    // drop that object and ask again.
    // (At most one attempt per object: the bound is the chunk's first length,
    // not its shrinking one, or a third missing object lost the whole chunk.)
    const attempts = chunk.length;
    for (let attempt = 0; chunk.length > 0 && attempt <= attempts; attempt++) {
      try {
        const vbs = await session.get(chunk, what);
        for (let k = 0; k < vbs.length; k++) {
          const vb = vbs[k]!;
          if (vb.oid !== chunk[k]) throw new SnmpError('invalid_reply', what, `the reply names ${clip(vb.oid, 120)} where the request asked for ${chunk[k]}`);
          out.set(vb.oid, vb);
        }
        break;
      } catch (err) {
        const e = err as Error & { status?: number };
        if (e.status !== ErrorStatus.NoSuchName) throw err;
        const missing = /NoSuchName: ([\d.]+)/.exec(e.message)?.[1];
        if (!missing) throw err;
        chunk = chunk.filter((o) => o !== missing);
      }
    }
  }
  return out;
}

function toNumber(v: unknown, parse: boolean): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && parse) {
    const n = Number.parseFloat(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** A varbind that is there but carries no value klaiwatch can read (Null, Boolean, BitString, a cut-short string). */
const UNREADABLE: unique symbol = Symbol('unreadable');
type Row = Map<string, number | bigint | string | typeof UNREADABLE | undefined>;

function rawValue(vb: Varbind | undefined): number | bigint | string | typeof UNREADABLE | undefined {
  if (vb === undefined || isVarbindError(vb)) return undefined;
  return varbindValue(vb) ?? UNREADABLE;
}

const EXPECTS: Record<string, string> = { counter: 'a counter', gauge: 'a number (gauge)', enum: 'a number (enum)', text: 'text' };

/** `1.3.6…6.3 is OctetString "abc", the profile reads a counter`: what a wrong_type names. */
function wrongType(vb: Varbind | undefined, m: ColumnInput | ScalarInput): string {
  if (!vb) return `the profile reads ${EXPECTS[m.type] ?? m.type}`;
  const v = varbindValue(vb);
  const shown = v === undefined ? '' : ` ${typeof v === 'string' ? JSON.stringify(clip(v, 40)) : String(v)}`;
  return `${clip(vb.oid, 120)} is ${typeName(vb.type)}${shown}, the profile reads ${EXPECTS[m.type] ?? m.type}${m.parse_number ? ' (or numeric text)' : ''}`;
}

// Non-counters first: a counter's limit_by refers to one of them. Sorted once per profile table.
const ordering = new WeakMap<readonly (ColumnInput | ScalarInput)[], (ColumnInput | ScalarInput)[]>();
function counterLast(metrics: readonly (ColumnInput | ScalarInput)[]): (ColumnInput | ScalarInput)[] {
  let o = ordering.get(metrics);
  if (!o) {
    o = [...metrics].sort((a, b) => Number(a.type === 'counter') - Number(b.type === 'counter'));
    ordering.set(metrics, o);
  }
  return o;
}

/** Values of one row (or the scalars) after scaling, counters to rates, multiply_by and derived. */
function computeFields(
  metrics: readonly (ColumnInput | ScalarInput)[],
  raw: Row,
  derived: readonly DerivedInput[],
  counterKey: (name: string) => string,
  memory: DeviceMemory,
  timeMs: number,
  uptimeCs: number | undefined,
  bitsOf: (m: ColumnInput | ScalarInput) => 32 | 64,
  scaleOf: (m: ColumnInput | ScalarInput) => number,
  /** A value is there but of a type this metric cannot read: named by the caller, never written as a number. */
  wrong: (m: ColumnInput | ScalarInput) => void,
  /** Where the values come from, for a dropped value's name (`receiver`, `interface ifname=WAN`). */
  where: string,
  dropped: Dropped,
): { fields: Record<string, number | string>; values: Map<string, number> } {
  const values = new Map<string, number>();
  const fields: Record<string, number | string> = {};
  for (const m of counterLast(metrics)) {
    const v = raw.get(m.name);
    if (v === undefined) continue;
    if (v === UNREADABLE) {
      wrong(m);
      continue;
    }
    if (m.type === 'text') {
      if (m.field) {
        const text = String(v).replace(/\0+$/, '').trim();
        if (text !== '') fields[m.field] = text.length > MAX_TEXT ? text.slice(0, MAX_TEXT - 1) + '…' : text;
      }
      continue;
    }
    if (m.type === 'counter') {
      const num = typeof v === 'bigint' ? v : toNumber(v, m.parse_number);
      if (num === undefined) {
        wrong(m);
        continue;
      }
      const cur: CounterSample = { value: typeof num === 'bigint' ? num : BigInt(Math.trunc(num)), timeMs };
      if (uptimeCs !== undefined) cur.uptimeCs = uptimeCs;
      const key = counterKey(m.name);
      const limit = m.limit_by !== undefined ? values.get(m.limit_by) : undefined;
      const scale = scaleOf(m);
      const out = counterRate(memory.counters.get(key), cur, bitsOf(m), limit !== undefined && limit > 0 ? limit / Math.abs(scale) : undefined);
      memory.counters.set(key, cur);
      if (out.rate === undefined) continue;
      const rate = out.rate * scale;
      values.set(m.name, rate);
      if (m.field) fields[m.field] = rate;
      continue;
    }
    let n = toNumber(v, m.parse_number);
    if (n === undefined) {
      wrong(m);
      continue;
    }
    if (m.multiply_by !== undefined) {
      const by = toNumber(raw.get(m.multiply_by), true);
      if (by === undefined) continue;
      n *= by;
    }
    if (m.map) {
      const to = mapValue(m.map, Math.trunc(n));
      if (to === undefined) {
        dropped.add(`${where} ${m.name} = ${fmt(n)}: no key of the profile's map covers it (${Object.keys(m.map).join(', ')})`);
        continue;
      }
      n = to;
    } else n *= scaleOf(m);
    if (m.valid && ((m.valid.min !== undefined && n < m.valid.min) || (m.valid.max !== undefined && n > m.valid.max))) {
      dropped.add(`${where} ${m.name} = ${fmt(n)}: outside the profile's valid range ${m.valid.min ?? '-∞'}..${m.valid.max ?? '∞'}`);
      continue;
    }
    values.set(m.name, n);
    if (m.field) fields[m.field] = m.type === 'enum' ? Math.trunc(n) : n;
  }
  for (const d of derived) {
    if (d.percent) {
      const part = values.get(d.percent.part);
      const whole = values.get(d.percent.whole);
      if (part === undefined || whole === undefined || whole <= 0) continue;
      fields[d.field] = d.percent.part_is_free ? 100 * (1 - part / whole) : (100 * part) / whole;
    } else if (d.complement_pct !== undefined) {
      const v = values.get(d.complement_pct);
      if (v !== undefined) fields[d.field] = 100 - v;
    } else if (d.percent_of_sum) {
      const part = values.get(d.percent_of_sum.part);
      const other = values.get(d.percent_of_sum.other);
      if (part === undefined || other === undefined || part + other <= 0) continue;
      fields[d.field] = (100 * part) / (part + other);
    }
  }
  return { fields, values };
}

/**
 * Values no device can have (the measurement schema's min and max: a
 * percentage above 100, a speed above 400 Gbit/s, a negative rate) are
 * dropped and counted; integer fields are written as integers (InfluxDB
 * refuses a float in an integer field).
 */
function typed(measurement: MeasurementName, fields: Record<string, number | string>, where: string, dropped: Dropped): Record<string, number | string> {
  const spec = measurements[measurement].fields as Record<string, FieldSpec>;
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v !== 'number') continue;
    const f = spec[k];
    if (!Number.isFinite(v) || (f?.min !== undefined && v < f.min) || (f?.max !== undefined && v > f.max)) {
      dropped.add(`${where} ${measurement}.${k} = ${fmt(v)}: no device can have it (${f?.min ?? '-∞'}..${f?.max ?? '∞'} ${f?.unit ?? ''})`.trimEnd() );
      delete fields[k];
      continue;
    }
    if (f?.type === 'integer') fields[k] = Math.round(v);
  }
  return fields;
}

export async function pollDevice(session: SnmpSession, device: Device, profiles: Map<string, ProfileInput>, memory: DeviceMemory, opts: PollOptions): Promise<PollResult> {
  const now = opts.now ?? Date.now;
  const started = performance.now();
  session.resetStats();
  const base = deviceTags(device);
  const points: Point[] = [];
  const problems = new Problems();
  const dropped = new Dropped();
  let answered = false;
  let profileName = device.profile === 'auto' ? memory.profile : device.profile;
  let uptimeCs: number | undefined;
  // Scalars by measurement, written whatever happens to the walk after them.
  const merged = new Map<MeasurementName, Record<string, number | string>>();
  const mergeInto = (m: MeasurementName, fields: Record<string, number | string>) => {
    merged.set(m, { ...(merged.get(m) ?? {}), ...fields });
  };
  let scalarTime = 0;

  try {
    let profile = profileName ? profiles.get(profileName) : undefined;
    const scalarOids = [SYS_UPTIME, SYS_OBJECT_ID, ...(profile?.scalars.map((s) => s.oid) ?? [])];
    let got = await getScalars(session, scalarOids, 'get scalars');
    answered = true;
    const sysObjectID = expectSystem(got, SYS_OBJECT_ID, 'sysObjectID', TYPE.OID, problems);
    const oidText = sysObjectID ? varbindValue(sysObjectID) : undefined;
    if (device.profile === 'auto' && typeof oidText === 'string' && (oidText !== memory.sysObjectID || !profile)) {
      // First poll, or the device behind this address was replaced.
      memory.sysObjectID = oidText;
      profileName = chooseProfile(oidText, profiles);
      memory.profile = profileName;
      profile = profiles.get(profileName);
      if (profile && profile.scalars.length > 0) {
        const more = await getScalars(session, profile.scalars.map((s) => s.oid), 'get scalars');
        got = new Map([...got, ...more]);
      }
    }
    if (!profile) throw new SnmpError('local_error', 'choose profile', `no profile ${JSON.stringify(profileName)}`);
    const up = expectSystem(got, SYS_UPTIME, 'sysUpTime', TYPE.TimeTicks, problems);
    const upV = up ? varbindValue(up) : undefined;
    if (typeof upV === 'number') uptimeCs = upV;
    scalarTime = now();

    // A profile scalar may be absent (an optional MIB); once answered, it is expected.
    for (const s of profile.scalars) {
      const vb = got.get(s.oid);
      if (!vb) continue;
      if (!isVarbindError(vb)) {
        if (!memory.scalarsSeen.has(s.oid)) memory.scalarsSeen.add(s.oid);
      } else if (vb.type === TYPE.EndOfMibView || memory.scalarsSeen.has(s.oid)) {
        const kind = missingKind(vb.type);
        problems.add(kind, `${kind}: get scalars: ${s.name} (${s.oid}): the agent answered ${typeName(vb.type)}${vb.type === TYPE.EndOfMibView ? ', never an answer to a GET' : ' where it had answered a value before'}`);
      }
    }

    // Scalars, grouped by measurement.
    const byMeasurement = new Map<MeasurementName, ScalarInput[]>();
    for (const s of profile.scalars) {
      const list = byMeasurement.get(s.measurement as MeasurementName) ?? [];
      list.push(s);
      byMeasurement.set(s.measurement as MeasurementName, list);
    }
    const wrongScalar = (m: ColumnInput | ScalarInput) => {
      const vb = got.get((m as ScalarInput).oid);
      problems.add('wrong_type', `wrong_type: get scalars: ${m.name}: ${wrongType(vb, m)}`);
    };
    for (const [m, list] of byMeasurement) {
      const raw: Row = new Map(list.map((s) => [s.name, rawValue(got.get(s.oid))]));
      const derived = profile.scalar_derived.filter((d) => d.measurement === m);
      const { fields } = computeFields(list, raw, derived, (n) => `scalar|${n}`, memory, scalarTime, uptimeCs, (s) => s.bits ?? 32, (s) => s.scale, wrongScalar, m, dropped);
      mergeInto(m, fields);
    }

    // Tables: every open column of every table in one walk.
    if (profile.tables.length > 0) {
      const columnOid = (c: ColumnInput) => (c.fallback && memory.fallbacks.has(c.oid) ? c.fallback.oid : c.oid);
      const labelOids = (t: TableInput) => (t.index_tag ? [t.index_tag.oid, ...(t.index_tag.fallback ? [t.index_tag.fallback] : [])] : []);
      const wanted = new Set<string>();
      for (const t of profile.tables) {
        for (const o of labelOids(t)) wanted.add(o);
        if (t.exclude) wanted.add(t.exclude.oid);
        if (t.only) wanted.add(t.only.oid);
        for (const c of t.columns) wanted.add(columnOid(c));
      }
      const names = columnNames(profile);
      let walked = await walkColumns(session, [...wanted], opts.maxRepetitions, 'walk ' + profile.tables.map((t) => t.name).join(', '), { problems, names });
      // A 64-bit column the agent lacks while its table has rows: use the
      // 32-bit fallback from now on, and read it now. Only a column walked to
      // its end proves it is absent; one cut short by an error proves nothing.
      const missing: string[] = [];
      for (const t of profile.tables) {
        const tableHasRows = t.columns.some((c) => (walked.get(columnOid(c))?.size ?? 0) > 0);
        if (!tableHasRows) continue;
        for (const c of t.columns) {
          const col = walked.get(c.oid);
          if (c.fallback && !memory.fallbacks.has(c.oid) && col && col.complete && col.size === 0) {
            memory.fallbacks.add(c.oid);
            missing.push(c.fallback.oid);
          }
        }
      }
      if (missing.length > 0) {
        const more = await walkColumns(session, missing, opts.maxRepetitions, 'walk fallback columns', { problems, names });
        walked = new Map([...walked, ...more]);
      }
      const tableTime = now();

      for (const t of profile.tables) {
        const m = t.measurement as MeasurementName;
        const cols = t.columns.map((c) => ({ c, data: walked.get(columnOid(c)) ?? new Column() }));
        const counterCols = cols.filter(({ c }) => c.type === 'counter');
        const indices = new Set<string>();
        for (const { data } of cols) for (const idx of data.keys()) indices.add(idx);
        const label = t.index_tag ? walked.get(t.index_tag.oid) : undefined;
        const labelFallback = t.index_tag?.fallback ? walked.get(t.index_tag.fallback) : undefined;
        const exclude = t.exclude ? { col: walked.get(t.exclude.oid), re: new RegExp(t.exclude.match) } : undefined;
        const only = t.only ? { col: walked.get(t.only.oid), re: new RegExp(t.only.match) } : undefined;
        const bitsOf = (c: ColumnInput | ScalarInput) => {
          const col = c as ColumnInput;
          return (col.fallback && memory.fallbacks.has(col.oid) ? col.fallback.bits : undefined) ?? c.bits ?? 32;
        };
        const scaleOf = (c: ColumnInput | ScalarInput) => {
          const col = c as ColumnInput;
          return (col.fallback && memory.fallbacks.has(col.oid) ? col.fallback.scale : undefined) ?? c.scale;
        };
        let idx = '';
        // One problem per column, however many of its rows are wrong.
        const wrongCell = (c: ColumnInput | ScalarInput) => {
          const oid = columnOid(c as ColumnInput);
          problems.add('wrong_type', `wrong_type: walk ${names.get(oid) ?? oid}: ${wrongType(walked.get(oid)?.get(idx), c)}`, `wrong_type|${oid}`);
        };
        const rows: Record<string, number | string>[] = [];
        for (idx of [...indices].sort(compareOids)) {
          if (exclude?.col) {
            const text = exclude.col.get(idx);
            if (text && exclude.re.test(String(varbindValue(text) ?? '').slice(0, MAX_FILTER_TEXT))) continue;
          }
          if (only) {
            const text = only.col?.get(idx);
            if (!text || !only.re.test(String(varbindValue(text) ?? '').slice(0, MAX_FILTER_TEXT))) continue;
          }
          const raw: Row = new Map(cols.map(({ c, data }) => [c.name, rawValue(data.get(idx))]));
          // The counters' sample time is when their response arrived.
          const sampledAt = counterCols.map(({ data }) => data.at.get(idx)).find((x) => x !== undefined) ?? tableTime;
          const name = labelText(label?.get(idx)) ?? labelText(labelFallback?.get(idx)) ?? idx;
          const where = `${m} ${t.index_tag ? `${t.index_tag.tag}=${name}` : `row ${idx}`}`;
          const { fields } = computeFields(t.columns, raw, t.derived, (n) => `${t.name}|${idx}|${n}`, memory, sampledAt, uptimeCs, bitsOf, scaleOf, wrongCell, where, dropped);
          if (t.aggregate) {
            // Each row's impossible values go before they are averaged in.
            typed(m, fields, where, dropped);
            if (Object.keys(fields).length > 0) rows.push(fields);
            continue;
          }
          typed(m, fields, where, dropped);
          if (Object.keys(fields).length === 0) continue;
          const tags: Record<string, string> = { ...base, ...(t.index_tag ? { [t.index_tag.tag]: name } : {}) };
          points.push({ measurement: m, tags, fields, time: tableTime });
        }
        if (t.aggregate && rows.length > 0) mergeInto(m, aggregate(rows, t.aggregate));
      }
    }
  } catch (err) {
    problems.addError(err, 'poll');
  }

  for (const [m, fields] of merged) {
    typed(m, fields, m, dropped);
    if (Object.keys(fields).length > 0) points.push({ measurement: m, tags: { ...base }, fields, time: scalarTime });
  }
  const result: PollResult = {
    device: device.id,
    ok: problems.size === 0,
    answered,
    durationMs: performance.now() - started,
    pdus: session.stats.pdus,
    timeouts: session.stats.timeouts,
    problems: problems.list,
    points,
  };
  if (problems.size > 0) result.error = `school ${device.school.code} ${device.kind} ${device.id} ${device.address}: ${problems.text()}`;
  if (profileName) result.profile = profileName;
  if (uptimeCs !== undefined) result.uptimeS = uptimeCs / 100;
  result.valuesDropped = dropped.count;
  if (dropped.named.length > 0) result.droppedDetail = dropped.named;
  result.points.push(devicePoint(device, result, now()));
  return result;
}

const namesByProfile = new WeakMap<ProfileInput, Map<string, string>>();
/** Column OID → `table.column` for messages (`interfaces.ifHCInOctets`, `interfaces.ifname`), made once per profile. */
function columnNames(profile: ProfileInput): Map<string, string> {
  let names = namesByProfile.get(profile);
  if (names) return names;
  names = new Map();
  for (const t of profile.tables) {
    if (t.index_tag) {
      names.set(t.index_tag.oid, `${t.name}.${t.index_tag.tag}`);
      if (t.index_tag.fallback) names.set(t.index_tag.fallback, `${t.name}.${t.index_tag.tag} (fallback)`);
    }
    if (t.exclude) names.set(t.exclude.oid, `${t.name}.exclude`);
    if (t.only) names.set(t.only.oid, `${t.name}.only`);
    for (const c of t.columns) {
      names.set(c.oid, `${t.name}.${c.name}`);
      if (c.fallback) names.set(c.fallback.oid, `${t.name}.${c.name} (fallback)`);
    }
  }
  namesByProfile.set(profile, names);
  return names;
}

function missingKind(type: number): SnmpErrorKind {
  return type === TYPE.NoSuchObject ? 'no_such_object' : type === TYPE.NoSuchInstance ? 'no_such_instance' : 'end_of_mib_view';
}

/** sysUpTime.0 and sysObjectID.0 (SNMPv2-MIB's system group, which every agent has): the varbind when it is there and of its type; else named. */
function expectSystem(got: Map<string, Varbind>, oid: string, name: string, type: number, problems: Problems): Varbind | undefined {
  const vb = got.get(oid);
  if (!vb) {
    problems.add('no_such_object', `no_such_object: get scalars: ${name}.0 (${oid}): the agent has none (noSuchName)`);
    return undefined;
  }
  if (isVarbindError(vb)) {
    const kind = missingKind(vb.type);
    problems.add(kind, `${kind}: get scalars: ${name}.0 (${oid}): the agent answered ${typeName(vb.type)}`);
    return undefined;
  }
  if (vb.type !== type || varbindValue(vb) === undefined) {
    const v = varbindValue(vb);
    problems.add('wrong_type', `wrong_type: get scalars: ${name}.0 (${oid}) is ${typeName(vb.type)}${v === undefined ? '' : ` ${JSON.stringify(clip(String(v), 40))}`}, ${typeName(type)} expected`);
    return undefined;
  }
  return vb;
}

function labelText(vb: Varbind | undefined): string | undefined {
  if (!vb) return undefined;
  const v = varbindValue(vb);
  const s = v === undefined ? '' : String(v).replace(/\0+$/, '').trim();
  return s === '' ? undefined : s;
}

function aggregate(rows: Record<string, number | string>[], how: 'mean' | 'max' | 'sum'): Record<string, number> {
  const out: Record<string, number> = {};
  const keys = new Set(rows.flatMap((r) => Object.keys(r)));
  for (const k of keys) {
    const nums = rows.map((r) => r[k]).filter((v): v is number => typeof v === 'number');
    if (nums.length === 0) continue;
    out[k] = how === 'max' ? Math.max(...nums) : how === 'sum' ? nums.reduce((a, b) => a + b, 0) : nums.reduce((a, b) => a + b, 0) / nums.length;
  }
  return out;
}

export function devicePoint(device: Device, r: Pick<PollResult, 'answered' | 'ok' | 'error' | 'profile' | 'durationMs' | 'pdus' | 'timeouts' | 'uptimeS' | 'valuesDropped'>, time: number): Point {
  const fields: Record<string, number | string> = {
    snmp_up: r.answered ? 1 : 0,
    poll_ms: Math.round(r.durationMs * 1000) / 1000,
    pdus: r.pdus,
    timeouts: r.timeouts,
    error: r.error ?? '',
  };
  if (r.uptimeS !== undefined) fields.uptime_s = r.uptimeS;
  if (r.valuesDropped !== undefined) fields.values_dropped = r.valuesDropped;
  return { measurement: 'device', tags: { ...deviceTags(device), profile: r.profile ?? '-' }, fields, time };
}
