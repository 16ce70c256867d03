// GET /healthz: the parts' health (collector, archive: as the supervisor
// relays it, or as `klaiwatch api` alone fetches it), the mail outbox, and
// the open incidents and failing checks from the state store. 200 when all
// is ok, 503 otherwise. Public, as it was before the API: a load balancer or
// a monitoring script asks it without a token.
import { z } from 'zod';
import type { App } from '../app.ts';
import type { ApiContext } from '../context.ts';

export async function register(app: App, ctx: ApiContext): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Health of every part, the outbox, open incidents and checks',
        security: [],
        response: { 200: z.looseObject({ status: z.string() }), 503: z.looseObject({ status: z.string() }) },
      },
    },
    async (_req, reply) => {
      const body = await ctx.health();
      return reply.code(body.status === 'ok' ? 200 : 503).header('cache-control', 'no-store').send(body as { status: string });
    },
  );
}
