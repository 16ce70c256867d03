// InfluxDB line protocol, written from the measurement schema: the tag set is
// always the measurement's full set (absent values as "-"), integer fields get
// their "i", strings are quoted. Escaping follows the line-protocol reference:
// measurement , and space; tag keys/values , = and space; string fields " and \.
import { measurements } from '../../config/measurements.ts';
import type { Point } from '../point.ts';

const escMeasurement = (s: string) => s.replace(/[, ]/g, (c) => '\\' + c);
// Tag values: newlines cannot be escaped (they end the line), so they fold to
// spaces; and InfluxDB 1.x cannot represent a backslash before a space, comma
// or the end of the value (its parser skips the byte after any backslash but
// unescapes only "\ ", "\," and "\="), so Windows names such as "C:\ Label"
// are written with "/" instead of "\".
const TAG_SPECIAL = /[\r\n\\,= ]/;
function escapeTag(s: string): string {
  if (s === '') return '-';
  if (!TAG_SPECIAL.test(s)) return s;
  return s.replace(/[\r\n]+/g, ' ').replace(/\\/g, '/').replace(/[,= ]/g, (c) => '\\' + c);
}
// The same names (schools, devices, interfaces) come back every round: remember them.
const tagCache = new Map<string, string>();
function escTag(s: string): string {
  let e = tagCache.get(s);
  if (e === undefined) {
    if (tagCache.size > 200_000) tagCache.clear();
    e = escapeTag(s);
    tagCache.set(s, e);
  }
  return e;
}
// String fields: only " and \ are escaped; a newline stays as it is, inside the quotes (1.x keeps it).
const escString = (s: string) => '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';

const sortedTags = new Map<string, readonly string[]>();
const escapedNames = new Map<string, string>();
for (const m of Object.values(measurements)) {
  sortedTags.set(m.name, [...m.tags].sort());
  escapedNames.set(m.name, escMeasurement(m.name));
}

/** One line, millisecond precision; undefined when the point has no field to write. */
export function toLine(p: Point): string | undefined {
  const spec = measurements[p.measurement];
  const fieldSpec = spec.fields as Record<string, { type: string }>;
  let fields = '';
  for (const [k, v] of Object.entries(p.fields)) {
    const t = fieldSpec[k]?.type;
    if (t === undefined) throw new Error(`measurement ${p.measurement} has no field ${k} in the schema`);
    let text: string;
    if (t === 'string') text = escString(String(v));
    else if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    else if (t === 'integer') text = `${Math.round(v)}i`;
    else text = String(v);
    fields += (fields ? ',' : '') + k + '=' + text;
  }
  if (!fields) return undefined;
  let line = escapedNames.get(p.measurement)!;
  for (const k of sortedTags.get(p.measurement)!) line += ',' + k + '=' + escTag(p.tags[k] ?? '-');
  return `${line} ${fields} ${Math.round(p.time)}`;
}

export function toLines(points: readonly Point[]): string[] {
  const out: string[] = [];
  for (const p of points) {
    const l = toLine(p);
    if (l !== undefined) out.push(l);
  }
  return out;
}
