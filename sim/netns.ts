// A host of our own that can be unplugged: a network namespace joined to
// this one by a veth pair (10.254.N.1 here, 10.254.N.2 there). Every 127.x
// address answers on loopback, so a device that is really down cannot live
// there; traffic to this one never leaves the machine. Needs root and
// iproute2. The demo (sim/area.ts) and the tests (test/helpers/netns.ts)
// both use it, under their own names.
import { execFileSync } from 'node:child_process';

export interface NamespaceHost {
  address: string;
  unplug(): void;
  plug(): void;
  remove(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

/**
 * Namespace `names.ns`, veth `names.link`a here and `names.link`b there;
 * the far end starts plugged when `plugged`. `needsRoot` is the error said
 * when not run as root.
 */
export function namespaceHost(n: number, names: { ns: string; link: string }, plugged: boolean, needsRoot: string): NamespaceHost {
  if (process.getuid?.() !== 0) throw new Error(needsRoot);
  const ns = `${names.ns}${n}`;
  const here = `${names.link}${n}a`;
  const there = `${names.link}${n}b`;
  try {
    ip('netns', 'del', ns); // left over from a run that was killed
  } catch {
    // none
  }
  ip('netns', 'add', ns);
  ip('link', 'add', here, 'type', 'veth', 'peer', 'name', there);
  ip('link', 'set', there, 'netns', ns);
  ip('addr', 'add', `10.254.${n}.1/30`, 'dev', here);
  ip('link', 'set', here, 'up');
  ip('netns', 'exec', ns, 'ip', 'addr', 'add', `10.254.${n}.2/30`, 'dev', there);
  if (plugged) ip('netns', 'exec', ns, 'ip', 'link', 'set', there, 'up');
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
