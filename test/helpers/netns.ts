// A host of our own that we can unplug: a network namespace joined to this
// one by a veth pair (10.254.N.1 here, 10.254.N.2 there). Traffic to it never
// leaves the machine. Needs root and iproute2.
import { execFileSync } from 'node:child_process';

export interface TestHost {
  address: string;
  unplug(): void;
  plug(): void;
  remove(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

export function createTestHost(n: number): TestHost {
  if (process.getuid?.() !== 0) throw new Error('network-namespace tests need root (ip netns add); run the suite as root, as CI does');
  const ns = `kwt${n}`;
  const here = `kwt${n}a`;
  const there = `kwt${n}b`;
  try {
    ip('netns', 'del', ns);
  } catch {
    // not left over from an earlier run
  }
  ip('netns', 'add', ns);
  ip('link', 'add', here, 'type', 'veth', 'peer', 'name', there);
  ip('link', 'set', there, 'netns', ns);
  ip('addr', 'add', `10.254.${n}.1/30`, 'dev', here);
  ip('link', 'set', here, 'up');
  ip('netns', 'exec', ns, 'ip', 'addr', 'add', `10.254.${n}.2/30`, 'dev', there);
  ip('netns', 'exec', ns, 'ip', 'link', 'set', there, 'up');
  ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  return {
    address: `10.254.${n}.2`,
    unplug: () => void ip('netns', 'exec', ns, 'ip', 'link', 'set', there, 'down'),
    plug: () => void ip('netns', 'exec', ns, 'ip', 'link', 'set', there, 'up'),
    remove: () => {
      try {
        ip('netns', 'del', ns); // takes the veth pair with it
      } catch {
        // already gone
      }
    },
  };
}
