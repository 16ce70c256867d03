// Which storage rows the disk check judges. net-snmp on many Linux versions
// types /dev/shm, /run and /sys/fs/cgroup as hrStorageFixedDisk (the demo's
// recording of a real server does), so the type filter alone keeps them: the
// stated rule excludes pseudo file systems by mount point. Polled from the
// recording served by snmpsimd, then the rule on hostile names.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { loadProfiles, BUILTIN_PROFILE_DIR, type Device, type SnmpCredentials } from '../../../config/load.ts';
import { alertsSchema } from '../../../config/schema.ts';
import { Secret } from '../../../config/secret.ts';
import { SnmpSession } from '../../../collector/snmp/session.ts';
import { pollDevice, newMemory, type PollResult } from '../../../collector/snmp/poll.ts';
import { deviceChecks, isPseudoMount } from '../../../collector/alerts/checks.ts';
import { startTestAgents, type TestAgents } from '../../helpers/agents.ts';
import { loopbackBlock } from '../../helpers/peers.ts';

const thresholds = alertsSchema.parse({}).thresholds;
const profiles = loadProfiles([BUILTIN_PROFILE_DIR], []);
let agents: TestAgents;
beforeAll(async () => {
  agents = await startTestAgents(`${loopbackBlock('alerts-disks.test')}.1`);
}, 60_000);
afterAll(async () => {
  await agents?.close();
});

function server(): Device {
  return { id: 'srv-1', kind: 'server', address: agents.address, port: agents.port, profile: 'auto', icmp: false, tags: {}, origin: 'test', school: { code: 'T1', name_th: 'โรงเรียนทดสอบ', district: 'เมือง', office: false, contacts: [], tags: {}, devices: [] } } as Device;
}

describe('disk checks on the Linux recording (snmpsimd)', () => {
  it('judges / and /var, never /dev/shm, /run or /sys/fs/cgroup though the agent types them as fixed disks', async () => {
    const creds: SnmpCredentials = { version: 2, level: 'noAuthNoPriv', community: new Secret('linux-lsi') };
    const s = new SnmpSession(agents.address, agents.port, creds, { timeoutMs: 3000, retries: 1 });
    let poll: PollResult;
    try {
      poll = await pollDevice(s, server(), profiles, newMemory(), { maxRepetitions: 25 });
    } finally {
      s.close();
    }
    expect(poll.ok).toBe(true);
    // The recording really types the pseudo file systems as fixed disks (what made the filter keep them).
    const typed = Object.fromEntries(poll.points.filter((p) => p.measurement === 'storage').map((p) => [p.tags.storage, p.fields.type]));
    for (const m of ['/dev/shm', '/run', '/sys/fs/cgroup', '/', '/var']) expect(typed[m], m).toBe('1.3.6.1.2.1.25.2.1.4');
    const echo = { address: agents.address, sent: 3, received: 3, lossPct: 0, rtts: [1, 1, 1] };
    const disks = deviceChecks(server(), poll, echo, thresholds)
      .map((c) => c.check)
      .filter((c) => c.startsWith('storage.'))
      .sort();
    expect(disks).toEqual(['storage.used_pct:/', 'storage.used_pct:/var']);
  }, 60_000);
});

describe('pseudo mount points (the stated rule)', () => {
  it('excludes /dev, /run, /sys, /proc and /snap and anything under them', () => {
    for (const m of ['/dev', '/dev/shm', '/dev/mqueue', '/run', '/run/lock', '/run/user/1000', '/sys/fs/cgroup', '/sys/fs/cgroup/memory', '/proc', '/proc/sys/fs/binfmt_misc', '/snap/core20/1974']) {
      expect(isPseudoMount(m), m).toBe(true);
    }
  });
  it('keeps real disks, also ones whose names merely start like a pseudo one', () => {
    for (const m of ['/', '/var', '/home', '/srv/data', '/devel', '/running', '/system', '/snapshots', '/processing', 'C:\\ Label:  Serial Number 1234', '/mnt/run', '/data/sys', 'Physical memory', '']) {
      expect(isPseudoMount(m), m).toBe(false);
    }
  });
  it('answers quickly on long hostile names', () => {
    const t0 = performance.now();
    for (const m of ['/run' + '/'.repeat(100_000) + '\n', '/' + 'a/'.repeat(50_000), '/dev' + 'x'.repeat(100_000)]) isPseudoMount(m);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
