// Walks several columns of a table at once. Each GETBULK asks for every
// column still open, so an interface table of 12 columns × 20 rows costs one
// or two PDUs instead of one walk per column (snmpbulkwalk) or per table.
// Agents that answer "tooBig" get the same request with half the repetitions.
import type { Varbind } from 'net-snmp';
import { SnmpSession, isVarbindError, ErrorStatus } from './session.ts';

/**
 * Rows of one column: index suffix (e.g. "3" or "1.4.10.0.0.1") → varbind,
 * and when the response carrying each row arrived: a counter's rate is taken
 * between those times, not the walk's end (on a busy agent the PDUs of one
 * walk arrive hundreds of milliseconds apart).
 */
export class Column extends Map<string, Varbind> {
  readonly at = new Map<string, number>();
}

/**
 * Upper bound of varbinds asked for in one GETBULK (repetitions × columns).
 * Agents cap responses (snmpsim at 64 varbinds, and it stops answering past
 * that; small routers at their UDP buffer): 60 stays under the caps seen.
 */
const MAX_VARBINDS_PER_PDU = 60;
/** A broken agent that never leaves a table must not walk forever. */
const MAX_PDUS_PER_WALK = 500;

function under(prefix: string, oid: string): boolean {
  return oid.length > prefix.length && oid.startsWith(prefix) && oid[prefix.length] === '.';
}

/** Negative, zero or positive as a sorts before, with or after b in OID order; arc by arc, without splitting (this runs once per varbind). */
export function compareOids(a: string, b: string): number {
  let i = 0;
  let j = 0;
  for (;;) {
    if (i >= a.length) return j < b.length ? -1 : 0; // a ended first: a prefix of b is smaller
    if (j >= b.length) return 1;
    let x = 0;
    while (i < a.length && a.charCodeAt(i) !== 46) x = x * 10 + (a.charCodeAt(i++) - 48);
    let y = 0;
    while (j < b.length && b.charCodeAt(j) !== 46) y = y * 10 + (b.charCodeAt(j++) - 48);
    if (x !== y) return x - y;
    i++;
    j++;
  }
}

export const oidLess = (a: string, b: string): boolean => compareOids(a, b) < 0;

export async function walkColumns(session: SnmpSession, columns: string[], maxRepetitions: number, what: string): Promise<Map<string, Column>> {
  const result = new Map<string, Column>(columns.map((c) => [c, new Column()]));
  const cursor = new Map<string, string>(columns.map((c) => [c, c]));
  let repetitions = Math.max(1, Math.min(maxRepetitions, Math.floor(MAX_VARBINDS_PER_PDU / Math.max(1, columns.length))));
  let pdus = 0;

  if (session.version === 1) {
    // SNMPv1 has no GETBULK: GETNEXT row by row, one column at a time, since
    // noSuchName (the end of the MIB view) fails the whole request.
    for (const c of columns) {
      while (cursor.has(c)) {
        if (++pdus > MAX_PDUS_PER_WALK * 10) throw new Error(`${what}: agent did not end the table after ${pdus - 1} requests`);
        try {
          const vbs = await session.getNext([cursor.get(c)!], what);
          advance(c, vbs, Date.now());
        } catch (err) {
          // noSuchName: the end of the MIB view. genErr: what agents answer
          // when the next object is a Counter64, which v1 cannot carry.
          const status = (err as { status?: number }).status;
          if (status !== ErrorStatus.NoSuchName && status !== ErrorStatus.GeneralError) throw err;
          cursor.delete(c);
        }
      }
    }
    return result;
  }

  while (cursor.size > 0) {
    if (++pdus > MAX_PDUS_PER_WALK) throw new Error(`${what}: agent did not end the table after ${MAX_PDUS_PER_WALK} requests`);
    const open = [...cursor.keys()];
    const oids = open.map((c) => cursor.get(c)!);

    let lists: Varbind[][];
    try {
      lists = await session.getBulk(oids, repetitions, what);
    } catch (err) {
      if ((err as { status?: number }).status === ErrorStatus.TooBig && repetitions > 1) {
        repetitions = Math.max(1, Math.floor(repetitions / 2));
        continue;
      }
      throw err;
    }
    // The response interleaves columns row by row; net-snmp has already split them.
    const at = Date.now();
    open.forEach((c, i) => advance(c, lists[i] ?? [], at));
  }
  return result;

  function advance(column: string, vbs: Varbind[], at: number): void {
    const col = result.get(column)!;
    let last = cursor.get(column)!;
    for (const vb of vbs) {
      if (isVarbindError(vb) || !under(column, vb.oid) || !oidLess(last, vb.oid)) {
        cursor.delete(column);
        return;
      }
      const index = vb.oid.slice(column.length + 1);
      col.set(index, vb);
      col.at.set(index, at);
      last = vb.oid;
    }
    if (vbs.length === 0) cursor.delete(column);
    else cursor.set(column, last);
  }
}
