// The state model the collector decides and every reader shows: a device's
// or a check's state, a transition, a school's state from its devices'. Kept
// apart from the engine that decides (collector/alerts/state.ts) so the
// report, the dashboards and the API read states without the collector.
import type { Device } from '../config/load.ts';

export const STATES = ['unknown', 'up', 'down', 'unreachable', 'maintenance'] as const;
export type State = (typeof STATES)[number];
export type Raw = 'up' | 'down';

export interface DeviceState {
  state: State;
  since: number;
  /** Last raw result and how many times in a row it came. */
  raw?: Raw;
  streak: number;
  /** When the current run of equal raw results began (its first result): an outage's start, a recovery's end. */
  rawSince?: number;
  /** For a check: what its last result saw (kept in memory for /healthz; not in the state database). */
  seen?: CheckFacts & { detail: string };
  /** The device whose failure explains this state (itself when down). */
  cause?: string;
  judged: boolean;
  flapping: boolean;
  /** Times of recent state changes, for flap detection. */
  changes: number[];
}

export interface Transition {
  /** The state's subject: the device id for reachability, `device#check` for a check. */
  subject: string;
  device: string;
  /** For a check: its name (snmp, uplink, receiver.lock, storage.used_pct:/ ...). */
  check?: string;
  /** For a check: what was seen ("used_pct 93.1 > 90"). */
  detail?: string;
  /** For a check: what was seen, in parts (the mail's words and /healthz are made of them). */
  facts?: CheckFacts;
  from: State;
  to: State;
  /**
   * When the change happened: for a confirmed failure or recovery, the first
   * failed (first good) result of the run the confirming round completed, not
   * the confirming round; otherwise the round's time.
   */
  at: number;
  /** The round that decided it. */
  confirmedAt: number;
  cause?: string;
  flapping: boolean;
}

/** What a check saw, in parts: the value and its limit, the row (a disk's mount), an SNMP error's stable code (collector/snmp/errors.ts). */
export interface CheckFacts {
  value?: number;
  /** The threshold crossed: "above" 90, "below" 1. */
  limit?: { above?: number; below?: number };
  /** The table row the check is about (a mount point, an interface). */
  index?: string;
  /** SNMP check: the stable code of why the agent did not answer (timeout, wrong_community ...). */
  code?: string;
}

/** One round's result of one check of a device that answered. */
export interface CheckObservation {
  device: Device;
  check: string;
  raw: Raw;
  detail: string;
  facts?: CheckFacts;
}

export const checkSubject = (device: string, check: string) => `${device}#${check}`;

export interface Behind {
  devices: number;
  schools: number;
  notJudged: number;
}

export const SCHOOL_STATES = ['unknown', 'up', 'degraded', 'down', 'unreachable', 'maintenance'] as const;
export type SchoolState = (typeof SCHOOL_STATES)[number];

/**
 * A school as a whole, from its devices' states: down or unreachable when
 * the device it hangs from (its router: the device whose parent is outside
 * the school) is; degraded when any other device is down; up when what is
 * judged is up.
 */
export function schoolState(devices: readonly Device[], stateOf: (id: string) => State | undefined): { state: SchoolState; up: number; down: number; unreachable: number } {
  let up = 0;
  let down = 0;
  let unreachable = 0;
  let maintenance = 0;
  let rootState: State | undefined;
  const ids = new Set(devices.map((d) => d.id));
  for (const d of devices) {
    const s = stateOf(d.id) ?? 'unknown';
    if (s === 'up') up++;
    else if (s === 'down') down++;
    else if (s === 'unreachable') unreachable++;
    else if (s === 'maintenance') maintenance++;
    if (rootState === undefined && (d.parent === undefined || !ids.has(d.parent))) rootState = s;
  }
  let state: SchoolState;
  if (rootState === 'down') state = 'down';
  else if (rootState === 'unreachable') state = 'unreachable';
  else if (down > 0) state = 'degraded';
  else if (up > 0) state = 'up';
  else if (devices.length > 0 && maintenance === devices.length) state = 'maintenance';
  else state = 'unknown';
  return { state, up, down, unreachable };
}
