// The checks of a device that answered, from what its poll brought back:
// its SNMP agent (when ICMP shows the device itself is there), its uplink
// interface (inventory `uplink_if`), and the thresholds in the settings
// (receiver lock, disks, memory, CPU). Each check has a state of its own.
import type { Device } from '../../config/load.ts';
import type { ThresholdInput } from '../../config/schema.ts';
import type { PollResult } from '../snmp/poll.ts';
import type { IcmpResult } from '../icmp/probe.ts';
import type { CheckObservation } from './state.ts';

const INDEX_TAGS = ['ifname', 'storage'];

/**
 * hrStorageType values (HOST-RESOURCES-MIB hrStorageTypes) that are file
 * systems someone can fill: a fixed disk, a network disk (an NFS or SMB
 * mount the server shares). RAM, virtual memory and "other" (tmpfs such as
 * /dev/shm and /run, cgroup, sysfs) are not disks, whatever they are named.
 */
export const DISK_STORAGE_TYPES: ReadonlySet<string> = new Set(['1.3.6.1.2.1.25.2.1.4', '1.3.6.1.2.1.25.2.1.10']);

/** A storage row judged as a disk: its hrStorageType says it is one (a row without a type is judged by the threshold's tags alone). */
function isDiskRow(p: { measurement: string; fields: Record<string, unknown> }): boolean {
  if (p.measurement !== 'storage') return true;
  const type = p.fields.type;
  return typeof type !== 'string' || DISK_STORAGE_TYPES.has(type.replace(/^\./, ''));
}

// Compiled once per threshold, not once per device and round.
const tagPatterns = new WeakMap<ThresholdInput, (readonly [string, RegExp])[]>();
function patterns(t: ThresholdInput): (readonly [string, RegExp])[] {
  let p = tagPatterns.get(t);
  if (!p) {
    p = Object.entries(t.tags).map(([tag, re]) => [tag, new RegExp(re)] as const);
    tagPatterns.set(t, p);
  }
  return p;
}

export function deviceChecks(device: Device, poll: PollResult | undefined, echo: IcmpResult | undefined, thresholds: readonly ThresholdInput[]): CheckObservation[] {
  const out: CheckObservation[] = [];
  if (poll && echo && echo.received > 0) {
    const code = poll.answered ? undefined : (poll.problems?.[0]?.kind ?? 'timeout');
    out.push({ device, check: 'snmp', raw: poll.answered ? 'up' : 'down', detail: poll.answered ? 'SNMP answers' : (poll.error ?? 'SNMP does not answer'), ...(code ? { facts: { code } } : {}) });
  }
  if (!poll?.ok) return out;
  if (device.uplink_if) {
    const p = poll.points.find((x) => x.measurement === 'interface' && x.tags.ifname === device.uplink_if);
    const status = p?.fields.oper_status;
    if (typeof status === 'number') out.push({ device, check: 'uplink', raw: status === 1 ? 'up' : 'down', detail: `${device.uplink_if} ifOperStatus ${status}`, facts: { index: device.uplink_if, value: status } });
  }
  for (const t of thresholds) {
    if (t.kinds.length > 0 && !t.kinds.includes(device.kind)) continue;
    const tagRes = patterns(t);
    for (const p of poll.points) {
      if (p.measurement !== t.measurement) continue;
      const v = p.fields[t.field];
      if (typeof v !== 'number') continue;
      if (!tagRes.every(([tag, re]) => re.test(p.tags[tag] ?? ''))) continue;
      if (!isDiskRow(p)) continue;
      const index = INDEX_TAGS.map((k) => p.tags[k]).find((x) => x !== undefined);
      const bad = t.above !== undefined ? v > t.above : v < t.below!;
      const limit = t.above !== undefined ? `> ${t.above}` : `< ${t.below}`;
      out.push({
        device,
        check: `${t.measurement}.${t.field}${index ? `:${index}` : ''}`,
        raw: bad ? 'down' : 'up',
        detail: `${t.field}${index ? ` ${index}` : ''} = ${Math.round(v * 10) / 10}${bad ? ` (${limit})` : ''}`,
        facts: { value: v, limit: t.above !== undefined ? { above: t.above } : { below: t.below! }, ...(index !== undefined ? { index } : {}) },
      });
    }
  }
  return out;
}
