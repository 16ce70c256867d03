// The checks of a device that answered, from what its poll brought back:
// its SNMP agent (when ICMP shows the device itself is there), its uplink
// interface (inventory `uplink_if`), and the thresholds in the settings
// (receiver lock, disks, memory, CPU). Each check has a state of its own.
// A check the device's profile cannot feed is not silently absent: it is
// "not watched" (notWatched), named in /healthz, poll --once and check-config.
import type { Device } from '../../config/load.ts';
import type { ThresholdInput, ProfileInput } from '../../config/schema.ts';
import type { PollResult } from '../snmp/poll.ts';
import type { IcmpResult } from '../icmp/probe.ts';
import { type CheckObservation } from '../../stores/model.ts';

const INDEX_TAGS = ['ifname', 'storage'];

/**
 * hrStorageType values (HOST-RESOURCES-MIB hrStorageTypes) that are file
 * systems someone can fill: a fixed disk, a network disk (an NFS or SMB
 * mount the server shares). RAM, virtual memory and "other" are not disks,
 * whatever they are named; pseudo file systems typed as fixed disks are
 * excluded by mount point (PSEUDO_MOUNT).
 */
export const DISK_STORAGE_TYPES: ReadonlySet<string> = new Set(['1.3.6.1.2.1.25.2.1.4', '1.3.6.1.2.1.25.2.1.10']);

/**
 * Mount points of pseudo file systems (tmpfs, devtmpfs, sysfs, proc, cgroup,
 * squashfs snaps), by name. net-snmp on many Linux versions types them as
 * hrStorageFixedDisk, so the type alone keeps them; the agent gives no
 * hrFSType we read, so the stated rule is the mount point: /dev and anything
 * under it, /run and anything under it, anything under /sys (so all of
 * /sys/fs/cgroup), /proc or /snap. As Telegraf ignores tmpfs, devtmpfs,
 * squashfs and overlay by type and LibreNMS ignores storage by name. The
 * name is at most MAX_TEXT characters (the poll cuts it) and the pattern is
 * anchored and linear.
 */
export const PSEUDO_MOUNT = /^\/(?:dev|run|sys|proc|snap)(?:\/[^]*)?$/;

/** Whether a storage row's name is a pseudo file system's mount point (see PSEUDO_MOUNT). */
export function isPseudoMount(name: string): boolean {
  return PSEUDO_MOUNT.test(name);
}

/**
 * A storage row judged as a disk: its hrStorageType says it is one (a row
 * without a type is judged by the threshold's tags alone) and its name is not
 * a pseudo file system's mount point.
 */
function isDiskRow(p: { measurement: string; tags: Record<string, string>; fields: Record<string, unknown> }): boolean {
  if (p.measurement !== 'storage') return true;
  if (isPseudoMount(p.tags.storage ?? '')) return false;
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

/** A check the device's kind has that its profile cannot feed: said, never silently skipped. */
export interface NotWatched {
  /** The check it would be (`receiver.lock`, `storage.used_pct`). */
  check: string;
  /** "receiver lock not watched: profile generic gives no receiver.lock". */
  detail: string;
}

const CHECK_WORDS: Record<string, string> = {
  'receiver.lock': 'receiver lock',
  'storage.used_pct': 'disk use',
  'system.mem_used_pct': 'memory use',
  'system.cpu_pct': 'CPU use',
};

/** Whether a profile maps anything onto measurement.field (a scalar, a column or a derived value). */
export function profileFeeds(profile: ProfileInput, measurement: string, field: string): boolean {
  if (profile.scalars.some((s) => s.measurement === measurement && s.field === field)) return true;
  if (profile.scalar_derived.some((d) => d.measurement === measurement && d.field === field)) return true;
  return profile.tables.some((t) => t.measurement === measurement && (t.columns.some((c) => c.field === field) || t.derived.some((d) => d.field === field)));
}

/**
 * The checks of the device's kind (the thresholds in the settings) that
 * nothing feeds: its profile maps no OID onto the field the check reads, or
 * (given a poll that went through) the device answered none. Without a
 * profile (`auto` before the first answer) nothing can be said yet: [].
 */
export function notWatched(device: Device, profileName: string | undefined, profile: ProfileInput | undefined, thresholds: readonly ThresholdInput[], poll?: PollResult): NotWatched[] {
  if (!profileName || !profile) return [];
  const out: NotWatched[] = [];
  const seen = new Set<string>();
  for (const t of thresholds) {
    if (t.kinds.length > 0 && !t.kinds.includes(device.kind)) continue;
    const check = `${t.measurement}.${t.field}`;
    if (seen.has(check)) continue;
    seen.add(check);
    const what = `${CHECK_WORDS[check] ?? check} not watched`;
    if (!profile.snmp) {
      out.push({ check, detail: `${what}: profile ${profileName} reads no SNMP (reachability only), so nothing gives ${check}` });
    } else if (!profileFeeds(profile, t.measurement, t.field)) {
      out.push({ check, detail: `${what}: profile ${profileName} gives no ${check}` });
    } else if (poll?.ok) {
      const tagRes = patterns(t);
      const fed = poll.points.some((p) => p.measurement === t.measurement && typeof p.fields[t.field] === 'number' && tagRes.every(([tag, re]) => re.test(p.tags[tag] ?? '')));
      if (!fed) out.push({ check, detail: `${what}: profile ${profileName} reads ${check}, but the device answered none${Object.keys(t.tags).length > 0 ? ` matching ${Object.entries(t.tags).map(([k, v]) => `${k} ~ ${v}`).join(', ')}` : ''}` });
    }
  }
  return out;
}

