// Walks several columns of a table at once. Each GETBULK asks for every
// column still open, so an interface table of 12 columns × 20 rows costs one
// or two PDUs instead of one walk per column (snmpbulkwalk) or per table.
// Agents that answer "tooBig" get the same request with half the repetitions.
// A column the agent answers wrongly (OIDs that do not increase, noSuchObject
// inside a walk) stops with a named problem and keeps the rows it had; the
// other columns walk on. A request that fails stops the walk, named too, and
// every row already received is kept.
import type { Varbind } from 'net-snmp';
import { SnmpSession, isVarbindError, ErrorStatus, TYPE, typeName } from './session.ts';
import { SnmpError, Problems, clip } from './errors.ts';

/**
 * Rows of one column: index suffix (e.g. "3" or "1.4.10.0.0.1") → varbind,
 * and when the response carrying each row arrived: a counter's rate is taken
 * between those times, not the walk's end (on a busy agent the PDUs of one
 * walk arrive hundreds of milliseconds apart).
 */
export class Column extends Map<string, Varbind> {
  readonly at = new Map<string, number>();
  /** False when the walk of this column stopped on an error: its rows are what came before, and its emptiness proves nothing. */
  complete = true;
}

export interface WalkOptions {
  /** Where the walk's problems are named (a problem never throws). */
  problems: Problems;
  /** A readable name per column OID for messages (e.g. "interfaces.ifHCInOctets"). */
  names?: ReadonlyMap<string, string>;
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

export async function walkColumns(session: SnmpSession, columns: string[], maxRepetitions: number, what: string, opts: WalkOptions): Promise<Map<string, Column>> {
  const { problems, names } = opts;
  const result = new Map<string, Column>(columns.map((c) => [c, new Column()]));
  const cursor = new Map<string, string>(columns.map((c) => [c, c]));
  let repetitions = Math.max(1, Math.min(maxRepetitions, Math.floor(MAX_VARBINDS_PER_PDU / Math.max(1, columns.length))));
  let pdus = 0;
  const label = (column: string) => {
    const name = names?.get(column);
    return name ? `walk ${name}` : `${what} ${column}`;
  };
  /** The walk stops: every column still open keeps what it has and is marked incomplete. */
  const stop = (err: unknown) => {
    problems.addError(err, what);
    for (const c of cursor.keys()) result.get(c)!.complete = false;
    cursor.clear();
  };

  if (session.version === 1) {
    // SNMPv1 has no GETBULK: GETNEXT row by row, one column at a time, since
    // noSuchName (the end of the MIB view) fails the whole request.
    for (const c of columns) {
      while (cursor.has(c)) {
        if (++pdus > MAX_PDUS_PER_WALK * 10) {
          stop(new SnmpError('walk_too_long', what, `the agent did not end the table after ${pdus - 1} requests`));
          break;
        }
        try {
          const vbs = await session.getNext([cursor.get(c)!], what);
          if (vbs.length === 0) fail(c, 'invalid_reply', 'the reply has no varbind for it');
          else advance(c, vbs, Date.now());
        } catch (err) {
          // noSuchName: the end of the MIB view. genErr: what agents answer
          // when the next object is a Counter64, which v1 cannot carry.
          const status = (err as { status?: number }).status;
          if (status !== ErrorStatus.NoSuchName && status !== ErrorStatus.GeneralError) stop(err);
          cursor.delete(c);
        }
      }
    }
    return result;
  }

  while (cursor.size > 0) {
    if (++pdus > MAX_PDUS_PER_WALK) {
      stop(new SnmpError('walk_too_long', what, `the agent did not end the table after ${MAX_PDUS_PER_WALK} requests`));
      break;
    }
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
      stop(err);
      break;
    }
    // The response interleaves columns row by row; net-snmp has already split them.
    // An agent may cut a reply short at its size limit (RFC 3416 4.2.3): the
    // columns left without a varbind are asked again; a reply with none at all
    // would never make progress.
    if (!lists.some((l) => l.length > 0)) {
      stop(new SnmpError('invalid_reply', what, `the GETBULK reply carries no varbind for the ${open.length} columns asked for`));
      break;
    }
    const at = Date.now();
    for (let i = 0; i < open.length; i++) {
      const vbs = lists[i];
      if (vbs !== undefined && vbs.length > 0) advance(open[i]!, vbs, at);
    }
  }
  return result;

  function fail(column: string, kind: 'oid_not_increasing' | 'no_such_object' | 'no_such_instance' | 'invalid_reply', detail: string): void {
    const msg = `${kind}: ${label(column)}: ${detail}`;
    problems.add(kind, msg);
    result.get(column)!.complete = false;
    cursor.delete(column);
  }

  function advance(column: string, vbs: Varbind[], at: number): void {
    const col = result.get(column)!;
    let last = cursor.get(column)!;
    for (const vb of vbs) {
      if (vb.type === TYPE.NoSuchObject || vb.type === TYPE.NoSuchInstance) {
        // Only endOfMibView may end a walk (RFC 3416 4.2.2, 4.2.3).
        fail(column, vb.type === TYPE.NoSuchObject ? 'no_such_object' : 'no_such_instance', `the agent answered ${typeName(vb.type)} for ${clip(vb.oid, 120)} in a walk, after ${col.size} rows`);
        return;
      }
      if (isVarbindError(vb) || !under(column, vb.oid)) {
        // endOfMibView, or the next column: this one is done.
        cursor.delete(column);
        return;
      }
      if (!oidLess(last, vb.oid)) {
        fail(column, 'oid_not_increasing', `${clip(vb.oid, 120)} after ${clip(last, 120)} (the rows before are kept, the rest of the column is not read)`);
        return;
      }
      const index = vb.oid.slice(column.length + 1);
      col.set(index, vb);
      col.at.set(index, at);
      last = vb.oid;
    }
    cursor.set(column, last);
  }
}
