// GET /healthz of a part that runs alone (`klaiwatch collector`, `klaiwatch
// archive serve`): its own figures as JSON on node:http, so a part stays free
// of the API's framework. Under `klaiwatch run` the API serves /healthz.
import { createServer, type Server } from 'node:http';

export function startHealthServer(listen: string, health: () => Record<string, unknown>): Promise<Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && (path === '/healthz' || path === '/')) {
      const body = health();
      res.writeHead(body.status === 'ok' ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body, null, 2) + '\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `no route ${req.method} ${path}; try GET /healthz` }) + '\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`http.listen ${listen}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    server.listen(port, host, () => resolve(server));
  });
}
