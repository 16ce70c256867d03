// Every way an SNMP poll can go wrong has a name: a short stable code (the
// first word of the message, what an officer greps for and a dashboard
// counts) and a sentence that says what came back and where. A timeout is a
// timeout only when nothing came back at all.
import type { FieldName } from '../../config/measurements.ts';

export type SnmpErrorKind =
  | 'timeout'
  | 'undecodable_reply'
  | 'truncated_reply'
  | 'unmatched_reply'
  | 'invalid_reply'
  | 'wrong_community'
  | 'wrong_version'
  | 'auth_failed'
  | 'agent_error'
  | 'oid_not_increasing'
  | 'wrong_type'
  | 'no_such_object'
  | 'no_such_instance'
  | 'end_of_mib_view'
  | 'walk_too_long'
  | 'local_error';

/**
 * The collector's own count of each kind (fields of the `klaiwatch`
 * measurement, spelled in config/measurements.ts). Timeouts are counted per
 * request by `snmp_timeouts`, as before.
 */
export const SNMP_ERROR_FIELDS = {
  undecodable_reply: 'snmp_undecodable_reply',
  truncated_reply: 'snmp_truncated_reply',
  unmatched_reply: 'snmp_unmatched_reply',
  invalid_reply: 'snmp_invalid_reply',
  wrong_community: 'snmp_wrong_community',
  wrong_version: 'snmp_wrong_version',
  auth_failed: 'snmp_auth_failed',
  agent_error: 'snmp_agent_error',
  oid_not_increasing: 'snmp_oid_not_increasing',
  wrong_type: 'snmp_wrong_type',
  no_such_object: 'snmp_no_such_object',
  no_such_instance: 'snmp_no_such_instance',
  end_of_mib_view: 'snmp_end_of_mib_view',
  walk_too_long: 'snmp_walk_too_long',
  local_error: 'snmp_local_error',
} as const satisfies { readonly [K in Exclude<SnmpErrorKind, 'timeout'>]: FieldName<'klaiwatch'> };

export const SNMP_ERROR_KINDS = ['timeout', ...Object.keys(SNMP_ERROR_FIELDS)] as readonly SnmpErrorKind[];

/** Text from the wire or from a library, cut to a length a log line and a field can carry. */
export function clip(text: string, max = 160): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** An SNMP failure with its name. The message reads `KIND: STEP: what happened`; a timeout keeps its old wording, `STEP: timeout after …`. */
export class SnmpError extends Error {
  readonly kind: SnmpErrorKind;
  /** The error-status of the agent's reply (agent_error), as net-snmp numbers it. */
  readonly status: number | undefined;
  constructor(kind: SnmpErrorKind, step: string, detail: string, status?: number) {
    super(kind === 'timeout' ? `${step}: ${detail}` : `${kind}: ${step}: ${detail}`);
    this.name = 'SnmpError';
    this.kind = kind;
    this.status = status;
  }
}

export class SnmpTimeoutError extends SnmpError {
  constructor(step: string, timeoutMs: number, retries: number) {
    super('timeout', step, `timeout after ${retries + 1} ${retries === 0 ? 'try' : 'tries'} of ${timeoutMs} ms`);
    this.name = 'SnmpTimeoutError';
  }
}

export interface SnmpProblem {
  kind: SnmpErrorKind;
  message: string;
  /** How many times the same problem was seen in this poll (rows of one column). */
  count: number;
}

/** Problems listed per poll; beyond it only the first of each further kind (at most 16 kinds), the rest counted. */
const MAX_PROBLEMS = 16;
const MAX_SHOWN = 4;

/** The problems of one poll: deduplicated by a key (one per column, not one per row), bounded. */
export class Problems {
  readonly list: SnmpProblem[] = [];
  readonly kinds = new Set<SnmpErrorKind>();
  private readonly byKey = new Map<string, SnmpProblem>();
  private dropped = 0;

  get size(): number {
    return this.list.length + this.dropped;
  }

  add(kind: SnmpErrorKind, message: string, key: string = message): void {
    this.kinds.add(kind);
    const seen = this.byKey.get(key);
    if (seen) {
      seen.count++;
      return;
    }
    // Past the bound only a kind not yet listed gets in (so every kind named is in the list: the round counts kinds from it).
    if (this.list.length >= MAX_PROBLEMS && this.list.some((p) => p.kind === kind)) {
      this.dropped++;
      return;
    }
    const p: SnmpProblem = { kind, message: clip(message, 400), count: 1 };
    this.list.push(p);
    this.byKey.set(key, p);
  }

  /** Anything thrown during a poll: a named SNMP error keeps its name, anything else is the collector's own fault. */
  addError(err: unknown, step: string): void {
    if (err instanceof SnmpError) this.add(err.kind, err.message);
    else this.add('local_error', `local_error: ${step}: ${clip(err instanceof Error ? err.message : String(err))}`);
  }

  /** One line for the device point's `error` field and the log: the first few problems, then how many more. */
  text(): string {
    const shown = this.list.slice(0, MAX_SHOWN).map((p) => (p.count > 1 ? `${p.message} (${p.count} times)` : p.message));
    const more = this.size - shown.length;
    if (more > 0) shown.push(`and ${more} more (${[...this.kinds].join(', ')})`);
    return shown.join('; ');
  }
}
