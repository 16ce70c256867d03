// Device states from poll results. A device's raw result (reachable or not)
// must repeat N times (alerts.confirm, per kind) before its state changes,
// so one lost round is not an outage. Parents are resolved before children:
// a device that is down behind a parent that is down or unreachable is
// "unreachable" and its cause is that parent's cause, so one failed uplink
// is one outage, not two hundred. A device whose state changes too often
// (alerts.flap_changes within alerts.flap_window) is "flapping": its
// incidents are still recorded, its notices will be held.
import type { Config, Device } from '../../config/load.ts';
import type { Schedule } from './schedule.ts';

export const STATES = ['unknown', 'up', 'down', 'unreachable', 'maintenance'] as const;
export type State = (typeof STATES)[number];
export type Raw = 'up' | 'down';

export interface DeviceState {
  state: State;
  since: number;
  /** Last raw result and how many times in a row it came. */
  raw?: Raw;
  streak: number;
  /** The device whose failure explains this state (itself when down). */
  cause?: string;
  judged: boolean;
  flapping: boolean;
  /** Times of recent state changes, for flap detection. */
  changes: number[];
}

export interface Transition {
  device: string;
  from: State;
  to: State;
  at: number;
  cause?: string;
  flapping: boolean;
}

export class StateEngine {
  readonly states = new Map<string, DeviceState>();
  private readonly config: Config;
  private readonly schedule: Schedule;
  private readonly order: Device[];

  constructor(config: Config, schedule: Schedule, restored: Map<string, DeviceState> = new Map()) {
    this.config = config;
    this.schedule = schedule;
    for (const d of config.devices) this.states.set(d.id, restored.get(d.id) ?? { state: 'unknown', since: 0, streak: 0, judged: true, flapping: false, changes: [] });
    // Parents before children, so a child sees its parent's state of this round.
    const depth = (d: Device): number => (d.parent ? 1 + depth(config.deviceById.get(d.parent)!) : 0);
    this.order = [...config.devices].sort((a, b) => depth(a) - depth(b));
  }

  private confirmNeeded(d: Device): number {
    const a = this.config.settings.alerts;
    return a.confirm[d.kind] ?? a.confirm_default;
  }

  /** Takes one round's raw results (devices not in it keep their state) and returns the state changes. */
  observe(results: ReadonlyMap<string, Raw>, t: number): Transition[] {
    const a = this.config.settings.alerts;
    const transitions: Transition[] = [];
    for (const d of this.order) {
      const s = this.states.get(d.id)!;
      const raw = results.get(d.id);
      const observed = raw !== undefined;
      if (raw !== undefined) {
        s.streak = s.raw === raw ? s.streak + 1 : 1;
        s.raw = raw;
      }
      // Devices of another interval keep their state until their own round.
      if (!observed) continue;
      // Until the new result has repeated often enough, the last verdict stands.
      let confirmed: Raw | undefined;
      if (s.raw && s.streak >= this.confirmNeeded(d)) confirmed = s.raw;
      else if (s.state === 'up') confirmed = 'up';
      else if (s.state === 'down' || s.state === 'unreachable') confirmed = 'down';

      let next: State;
      let cause: string | undefined;
      s.judged = this.schedule.judged(d, t);
      const parent = d.parent ? this.states.get(d.parent) : undefined;
      if (this.schedule.maintenanceOf(d, t) !== undefined || (parent?.state === 'maintenance' && confirmed === 'down')) next = 'maintenance';
      else if (!s.judged) next = 'unknown';
      else if (confirmed === 'down') {
        if (parent && (parent.state === 'down' || parent.state === 'unreachable')) {
          next = 'unreachable';
          cause = parent.cause ?? d.parent;
        } else {
          next = 'down';
          cause = d.id;
        }
      } else if (confirmed === 'up') next = 'up';
      else next = s.state === 'maintenance' ? 'unknown' : s.state;

      s.changes = s.changes.filter((c) => t - c < a.flap_window);
      if (next !== s.state || (next === 'unreachable' && cause !== s.cause)) {
        const from = s.state;
        if (next !== from) s.changes.push(t);
        s.flapping = s.changes.length >= a.flap_changes;
        s.state = next;
        s.since = next !== from ? t : s.since;
        const tr: Transition = { device: d.id, from, to: next, at: t, flapping: s.flapping };
        if (cause !== undefined) {
          s.cause = cause;
          tr.cause = cause;
        } else delete s.cause;
        transitions.push(tr);
      } else if (s.flapping && s.changes.length === 0) s.flapping = false;
    }
    return transitions;
  }

  /** How many devices and schools sit behind a device (its descendants), for the notice about it. */
  behind(id: string): { devices: number; schools: number } {
    const devices = this.config.devices.filter((d) => this.ancestors(d).includes(id));
    return { devices: devices.length, schools: new Set(devices.map((d) => d.school.code)).size };
  }

  private ancestors(d: Device): string[] {
    const out: string[] = [];
    for (let p = d.parent; p; p = this.config.deviceById.get(p)?.parent) out.push(p);
    return out;
  }
}
