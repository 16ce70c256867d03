// Device states from poll results. A device's raw result (reachable or not)
// must repeat N times (alerts.confirm, per kind) before its state changes,
// so one lost round is not an outage. Parents are resolved before children:
// a device that is down behind a parent that is down or unreachable is
// "unreachable" and its cause is that parent's cause, so one failed uplink
// is one outage, not two hundred. A device whose state changes too often
// (alerts.flap_changes within alerts.flap_window) is "flapping": its
// incidents are still recorded, its notices will be held.
import type { Config, Device } from '../../config/load.ts';
import type { Schedule } from '../../config/calendar.ts';

import { checkSubject, type Behind, type State, type Raw, type DeviceState, type Transition, type CheckFacts, type CheckObservation } from '../../stores/model.ts';

const fresh = (): DeviceState => ({ state: 'unknown', since: 0, streak: 0, judged: true, flapping: false, changes: [] });

export class StateEngine {
  readonly states = new Map<string, DeviceState>();
  private readonly config: Config;
  private readonly schedule: Schedule;
  private readonly order: Device[];

  constructor(config: Config, schedule: Schedule, restored: Map<string, DeviceState> = new Map()) {
    this.config = config;
    this.schedule = schedule;
    // Devices, and the checks an earlier run left (a check's subject is created on its first result).
    for (const [id, st] of restored) if (id.includes('#') && config.deviceById.has(id.split('#')[0]!)) this.states.set(id, st);
    for (const d of config.devices) this.states.set(d.id, restored.get(d.id) ?? fresh());
    // Parents before children, so a child sees its parent's state of this round.
    const depth = (d: Device): number => (d.parent ? 1 + depth(config.deviceById.get(d.parent)!) : 0);
    this.order = [...config.devices].sort((a, b) => depth(a) - depth(b));
  }

  private confirmNeeded(d: Device): number {
    const a = this.config.settings.alerts;
    return a.confirm[d.kind] ?? a.confirm_default;
  }

  /**
   * Takes one round's raw results (devices not in it keep their state) and,
   * for the devices that answered, their checks; returns the state changes.
   */
  observe(results: ReadonlyMap<string, Raw>, t: number, checks: readonly CheckObservation[] = []): Transition[] {
    const transitions: Transition[] = [];
    // Devices whose outage ended this round: what sat behind them must prove
    // itself down afresh, not inherit the failures counted while unreachable
    // (links, DHCP and agents take a moment after the parent is back).
    const cleared = new Set<string>();
    for (const d of this.order) {
      const raw = results.get(d.id);
      // Devices of another interval keep their state until their own round.
      if (raw === undefined) continue;
      const own = this.states.get(d.id);
      if (own?.state === 'unreachable' && d.parent && cleared.has(d.parent)) {
        own.streak = 0;
        delete own.rawSince;
      }
      const tr = this.step(d.id, d, raw, t, (confirmed, s) => {
        const parent = d.parent ? this.states.get(d.parent) : undefined;
        const parentOut = parent !== undefined && (parent.state === 'down' || parent.state === 'unreachable');
        if (this.schedule.maintenanceOf(d, t) !== undefined || (parent?.state === 'maintenance' && confirmed === 'down')) return { next: 'maintenance' };
        if (confirmed === 'down') {
          if (parentOut) return { next: 'unreachable', cause: parent.cause ?? d.parent! };
          return { next: 'down', cause: d.id };
        }
        // Unreachable says nothing about the device itself: with its parent
        // back and no verdict of its own yet, it is unknown.
        if (confirmed === undefined && s.state === 'unreachable' && !parentOut) return { next: 'unknown' };
        return { next: confirmed };
      });
      if (tr) {
        transitions.push(tr);
        if ((tr.from === 'down' || tr.from === 'unreachable') && tr.to !== 'down' && tr.to !== 'unreachable') cleared.add(d.id);
      }
    }
    for (const c of checks) {
      const id = checkSubject(c.device.id, c.check);
      const seen = { detail: c.detail, ...c.facts };
      const tr = this.step(id, c.device, c.raw, t, (confirmed) => {
        if (this.schedule.maintenanceOf(c.device, t) !== undefined) return { next: 'maintenance' };
        // A check means something only while its device is up.
        if (this.states.get(c.device.id)?.state !== 'up') return { next: 'unknown' };
        return confirmed === 'down' ? { next: 'down', cause: c.device.id } : { next: confirmed };
      });
      this.states.get(id)!.seen = seen;
      if (tr) transitions.push({ ...tr, check: c.check, detail: c.detail, ...(c.facts ? { facts: c.facts } : {}) });
    }
    return transitions;
  }

  /**
   * One subject's round: count the raw result, confirm it, let `resolve`
   * turn the confirmed result into a state (parents, maintenance), keep the
   * flap history, and say whether the state changed.
   */
  private step(id: string, d: Device, raw: Raw, t: number, resolve: (confirmed: Raw | undefined, s: DeviceState) => { next: State | undefined; cause?: string }): Transition | undefined {
    const a = this.config.settings.alerts;
    let s = this.states.get(id);
    if (!s) {
      s = fresh();
      this.states.set(id, s);
    }
    if (s.raw !== raw || s.streak === 0 || s.rawSince === undefined) s.rawSince = t;
    s.streak = s.raw === raw ? s.streak + 1 : 1;
    s.raw = raw;
    // Until the new result has repeated often enough, the last verdict stands.
    let confirmed: Raw | undefined;
    if (s.streak >= this.confirmNeeded(d)) confirmed = raw;
    else if (s.state === 'up') confirmed = 'up';
    else if (s.state === 'down') confirmed = 'down';
    // (unreachable keeps no verdict of its own: see observe())

    s.judged = this.schedule.judged(d, t);
    let { next, cause } = resolve(confirmed, s);
    if (next !== 'maintenance' && !s.judged) {
      next = 'unknown';
      cause = undefined;
    }
    if (next === undefined) next = s.state === 'maintenance' ? 'unknown' : s.state;

    s.changes = s.changes.filter((c) => t - c < a.flap_window);
    if (next === s.state && !(next === 'unreachable' && cause !== s.cause)) {
      if (s.flapping && s.changes.length === 0) s.flapping = false;
      return undefined;
    }
    const from = s.state;
    if (next !== from) s.changes.push(t);
    s.flapping = s.changes.length >= a.flap_changes;
    s.state = next;
    // A failure (or recovery) the raw results decided began with the first
    // result of their run: the confirming round only made it certain.
    // Not so out of maintenance: results inside the window were no outage
    // (nor a recovery), so the new state begins at the first round after it.
    const decidedByRaw = from !== 'maintenance' && ((raw === 'down' && (next === 'down' || next === 'unreachable')) || (raw === 'up' && next === 'up'));
    const at = decidedByRaw && s.rawSince !== undefined && s.rawSince <= t ? s.rawSince : t;
    if (next !== from) s.since = at;
    const tr: Transition = { subject: id, device: d.id, from, to: next, at, confirmedAt: t, flapping: s.flapping };
    if (cause !== undefined) {
      s.cause = cause;
      tr.cause = cause;
    } else delete s.cause;
    return tr;
  }

  /**
   * What this round saw behind a device (its descendants), for the notice
   * about it: `devices` judged unreachable (because of it, or of what it
   * sits behind) and their schools;
   * `notJudged` not judged now (the schedule: DLTV receivers outside
   * broadcast hours), so nobody knows whether they are reachable. Devices
   * behind it that still answer (another path, or not yet confirmed) are in
   * neither.
   */
  behind(id: string): Behind {
    let devices = 0;
    let notJudged = 0;
    const schools = new Set<string>();
    for (const d of this.config.devices) {
      if (!this.ancestors(d).includes(id)) continue;
      const s = this.states.get(d.id);
      if (s?.state === 'unreachable') {
        devices++;
        schools.add(d.school.code);
      } else if (s && !s.judged && s.state !== 'maintenance') notJudged++;
    }
    return { devices, schools: schools.size, notJudged };
  }

  private ancestors(d: Device): string[] {
    const out: string[] = [];
    for (let p = d.parent; p; p = this.config.deviceById.get(p)?.parent) out.push(p);
    return out;
  }
}
