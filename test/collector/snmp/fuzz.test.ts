// Hostile SNMP agents, property-based: a relay in front of a real snmpsimd
// (RouterOS recording) answers with random bytes, with the agent's real
// replies cut short, or with bytes of them flipped (every reply, or only the
// k-th of the poll, so walks are hit too). The poll of that device never
// throws, never takes longer than its requests' timeouts, names what went
// wrong with a known kind (never "timeout" when something came back), and a
// device polled at the same time is not touched. Seeded (a failure
// reproduces), bounded to a few seconds a property; KW_FUZZ_RUNS=N runs N
// cases each, without the time limit.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { loadProfiles, BUILTIN_PROFILE_DIR, type Device, type SnmpCredentials } from '../../../config/load.ts';
import { Secret } from '../../../config/secret.ts';
import { SnmpSession, declaredLength, requestId } from '../../../collector/snmp/session.ts';
import { pollDevice, newMemory, type PollResult } from '../../../collector/snmp/poll.ts';
import { SNMP_ERROR_KINDS } from '../../../collector/snmp/errors.ts';
import { startTestAgents, type TestAgents } from '../../helpers/agents.ts';
import { loopbackBlock } from '../../helpers/peers.ts';
import { startSnmpRelay, type Rewrite, type SnmpRelay } from '../../helpers/snmp-relay.ts';

const SEED = 20261214;
const FUZZ_RUNS = Number(process.env.KW_FUZZ_RUNS ?? '') || undefined;
/** numRuns cases, or at most ~4 s of them in CI; KW_FUZZ_RUNS=N: N cases, however long. */
const params = (numRuns: number): fc.Parameters<unknown> => (FUZZ_RUNS ? { seed: SEED, numRuns: FUZZ_RUNS } : { seed: SEED, numRuns, interruptAfterTimeLimit: 4000 });
/** A test's own limit: vitest's 60 s, or room for KW_FUZZ_RUNS cases of up to ~3 s each. */
const LIMIT = FUZZ_RUNS ? 30_000 + FUZZ_RUNS * 3000 : 60_000;

const profiles = loadProfiles([BUILTIN_PROFILE_DIR], []);
const block = loopbackBlock('snmp-fuzz.test');
/** The hostile device: short timeout, no retry, so a case costs at most a few hundred ms per request. */
const BAD = { timeoutMs: 600, retries: 0 };
/** The healthy device beside it: patient, as on a loaded machine. */
const GOOD = { timeoutMs: 3000, retries: 1 };
const CREDS: SnmpCredentials = { version: 2, level: 'noAuthNoPriv', community: new Secret('router') };
const KNOWN = new Set<string>(SNMP_ERROR_KINDS);

let agents: TestAgents;
let relay: SnmpRelay;
beforeAll(async () => {
  agents = await startTestAgents(`${block}.1`);
  relay = await startSnmpRelay(`${block}.2`, { address: agents.address, port: agents.port });
});
afterAll(async () => {
  await relay?.close();
  await agents?.close();
});

function device(id: string, address: string, port: number): Device {
  return { id, kind: 'router', address, port, profile: 'auto', icmp: false, tags: {}, origin: 'test', school: { code: 'T1', name_th: 'โรงเรียนทดสอบ', district: 'เมือง', office: false, contacts: [], tags: {}, devices: [] } } as Device;
}

/** Applies `damage` to every reply, or to the k-th reply of the poll only (k from 0). */
function onReply(k: number | null, damage: (reply: Buffer, n: number) => Buffer): Rewrite {
  let n = 0;
  return (reply) => {
    const i = n++;
    return k === null || i === k ? damage(reply, i) : reply;
  };
}

/** The bad device through the relay and a good one straight to the agent, at the same time: one round's worth. */
async function round(rewrite: Rewrite): Promise<{ bad: PollResult; good: PollResult; took: number; requests: number; replies: number }> {
  relay.rewrite = rewrite;
  relay.stats.requests = 0;
  relay.stats.replies = 0;
  const badSession = new SnmpSession(relay.address, relay.port, CREDS, BAD);
  const goodSession = new SnmpSession(agents.address, agents.port, CREDS, GOOD);
  try {
    const started = performance.now();
    // The relay's counts as the bad poll ends (a reply the agent sends later must not count as one that came back).
    const badPoll = pollDevice(badSession, device('bad', relay.address, relay.port), profiles, newMemory(), { maxRepetitions: 25 }).then((r) => ({ r, took: performance.now() - started, requests: relay.stats.requests, replies: relay.stats.replies }));
    const [bad, good] = await Promise.all([badPoll, pollDevice(goodSession, device('good', agents.address, agents.port), profiles, newMemory(), { maxRepetitions: 25 })]);
    return { bad: bad.r, good, took: bad.took, requests: bad.requests, replies: bad.replies };
  } finally {
    badSession.close();
    goodSession.close();
  }
}

/** What every case must hold, whatever the bytes. */
function check({ bad, good, took, requests, replies }: Awaited<ReturnType<typeof round>>): void {
  // Never longer than its requests' timeouts (plus slack for a loaded machine).
  expect(took).toBeLessThan(bad.pdus * BAD.timeoutMs * (BAD.retries + 1) + 3000);
  if (!bad.ok) {
    expect(bad.problems!.length).toBeGreaterThan(0);
    for (const p of bad.problems!) {
      expect(KNOWN.has(p.kind), p.message).toBe(true);
      if (p.kind === 'timeout') expect(p.message).toMatch(/^[^:]+: timeout after \d+ tr(y|ies) of \d+ ms$/);
      else expect(p.message.startsWith(`${p.kind}: `), p.message).toBe(true);
    }
    expect(bad.error!.startsWith(`school T1 router bad ${relay.address}: `)).toBe(true);
    expect(bad.error!.length).toBeLessThan(3000);
    expect(bad.error).not.toMatch(/\n|\r|\bat .*\.ts:\d+/); // one line, no stack trace
    // Something came back for every request: a timeout only if the agent itself was late.
    if (bad.problems!.some((p) => p.kind === 'timeout')) expect(replies).toBeLessThan(requests);
  }
  const dp = bad.points.find((p) => p.measurement === 'device')!;
  expect(dp.fields.error).toBe(bad.error ?? '');
  // The device polled beside it: untouched.
  expect(good.ok, good.error).toBe(true);
  expect(good.points.filter((p) => p.measurement === 'interface')).toHaveLength(12);
}

describe('hostile SNMP replies (seeded fuzzing through a relay to a real agent)', () => {
  it('random bytes for every reply: the poll fails, named, never as a timeout', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 700 }), async (bytes) => {
        const res = await round(() => Buffer.from(bytes));
        check(res);
        expect(res.bad.ok).toBe(false);
      }),
      params(12),
    );
  }, LIMIT);

  it('real replies cut short (every one, or only the k-th of the poll)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.option(fc.integer({ min: 0, max: 8 }), { nil: null }), fc.double({ min: 0, max: 0.999, noNaN: true }), async (k, keep) => {
        const res = await round(onReply(k, (reply) => reply.subarray(0, Math.floor(reply.length * keep))));
        check(res);
        // A cut reply is never used: the poll fails whenever one reached it (and, unless the agent itself was late, not as a timeout).
        if (k === null || k < res.replies) {
          expect(res.bad.ok).toBe(false);
          if (res.replies === res.requests) expect(res.bad.problems!.map((p) => p.kind)).not.toContain('timeout');
        }
      }),
      params(12),
    );
  }, LIMIT);

  it('real replies with bytes flipped (every one, or only the k-th of the poll)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.integer({ min: 0, max: 8 }), { nil: null }),
        fc.array(fc.record({ at: fc.nat({ max: 1500 }), mask: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }),
        async (k, flips) => {
          const res = await round(
            onReply(k, (reply) => {
              const out = Buffer.from(reply);
              for (const f of flips) out[f.at % out.length]! ^= f.mask;
              return out;
            }),
          );
          check(res);
        },
      ),
      params(16),
    );
  }, LIMIT);

  it('the reading of headers from the wire (length, request id) never throws on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), (bytes) => {
        const b = Buffer.from(bytes);
        const len = declaredLength(b);
        expect(len === Infinity || len === -1 || (Number.isInteger(len) && len >= 2)).toBe(true);
        const id = requestId(b);
        expect(Number.isNaN(id) || Number.isSafeInteger(id)).toBe(true);
      }),
      FUZZ_RUNS ? { seed: SEED, numRuns: FUZZ_RUNS } : { seed: SEED, numRuns: 5000 },
    );
  });
});
