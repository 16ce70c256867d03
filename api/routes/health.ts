// GET /healthz: the parts' health (collector, archive: as the supervisor
// relays it, or as `klaiwatch api` alone fetches it), the mail outbox, and
// the open incidents and failing checks from the state store. 200 when all
// is ok, 503 otherwise. It needs no token (a load balancer or a monitoring
// script asks it), so without an officer's token it leaves out whatever
// names a school, a device or an address: the problem lists, the checks not
// watched, the flow exporters, the last error texts and the addresses of
// InfluxDB and of the parts. The counts and every
// part's status stay.
import { z } from 'zod';
import type { App } from '../app.ts';
import type { ApiContext } from '../context.ts';

/** Keys whose values name schools, devices or addresses. */
const PRIVATE_KEYS = new Set(['problems', 'not_watched', 'exporters', 'last_error', 'bound', 'url', 'listen', 'asked']);

/** The answer without PRIVATE_KEYS, at any depth (bounded: the health object is ours, a few levels deep). */
export function publicHealth(v: unknown, depth = 0): unknown {
  if (depth > 6 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => publicHealth(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (!PRIVATE_KEYS.has(k)) out[k] = publicHealth(x, depth + 1);
  return out;
}

export async function register(app: App, ctx: ApiContext): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Health of every part, the outbox, open incidents and checks',
        description: 'No token needed. With an officer token the answer also lists the open problems, the checks not watched, the flow exporters and the last errors (they name schools, devices and addresses).',
        security: [],
        response: { 200: z.looseObject({ status: z.string() }), 503: z.looseObject({ status: z.string() }) },
      },
    },
    async (req, reply) => {
      const full = await ctx.health();
      const body = (req.principal?.role === 'officer' ? full : publicHealth(full)) as { status: string };
      return reply.code(full.status === 'ok' ? 200 : 503).header('cache-control', 'no-store').send(body);
    },
  );
}
