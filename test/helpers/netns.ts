// A host of our own that we can unplug (sim/netns.ts): a network namespace
// joined to this one by a veth pair (10.254.N.1 here, 10.254.N.2 there),
// plugged at first. Traffic to it never leaves the machine. Needs root.
import { namespaceHost, type NamespaceHost } from '../../sim/netns.ts';

export type TestHost = NamespaceHost;

export function createTestHost(n: number): TestHost {
  return namespaceHost(n, { ns: 'kwt', link: 'kwt' }, true, 'network-namespace tests need root (ip netns add); run the suite as root, as CI does');
}
