// What is wrong now, for GET /healthz: the devices down and the failing
// checks the collector's state engine holds.
import type { Config } from '../config/load.ts';
import type { StateEngine } from './alerts/state.ts';

/** At most this many problems are listed in /healthz (the count says how many there are). */
const MAX_LISTED = 200;

export interface OpenProblems {
  /** Devices down (themselves failed), oldest first. */
  devices_down: { device: string; school: string; kind: string; since: string }[];
  /** Failing checks of devices that answer: which device, which check, since when, what was seen. */
  checks_failing: { device: string; school: string; check: string; since: string; value: string | null; code: string | null }[];
  /** How many of each there are (the lists stop at MAX_LISTED). */
  counts: { devices_down: number; devices_unreachable: number; checks_failing: number };
}

/**
 * What is wrong now, where people look (GET /healthz): the devices down and
 * the failing checks, each with since when. Built from the state engine, so
 * it shows exactly what the open incidents are about.
 */
export function openProblems(config: Config, engine: StateEngine | undefined, owns: (id: string) => boolean = () => true): OpenProblems {
  const out: OpenProblems = { devices_down: [], checks_failing: [], counts: { devices_down: 0, devices_unreachable: 0, checks_failing: 0 } };
  if (!engine) return out;
  const down: [number, OpenProblems['devices_down'][number]][] = [];
  const checks: [number, OpenProblems['checks_failing'][number]][] = [];
  for (const [id, s] of engine.states) {
    const hash = id.indexOf('#');
    const deviceId = hash < 0 ? id : id.slice(0, hash);
    const d = config.deviceById.get(deviceId);
    if (!d || !owns(deviceId)) continue;
    if (hash < 0) {
      if (s.state === 'down') down.push([s.since, { device: d.id, school: d.school.code, kind: d.kind, since: new Date(s.since).toISOString() }]);
      else if (s.state === 'unreachable') out.counts.devices_unreachable++;
    } else if (s.state === 'down') {
      checks.push([s.since, { device: d.id, school: d.school.code, check: id.slice(hash + 1), since: new Date(s.since).toISOString(), value: s.seen?.detail ?? null, code: s.seen?.code ?? null }]);
    }
  }
  out.counts.devices_down = down.length;
  out.counts.checks_failing = checks.length;
  out.devices_down = down.sort((a, b) => a[0] - b[0]).slice(0, MAX_LISTED).map(([, x]) => x);
  out.checks_failing = checks.sort((a, b) => a[0] - b[0]).slice(0, MAX_LISTED).map(([, x]) => x);
  return out;
}
