// A locked access journal (another writer holds it) costs the auditor's request a 503 after its wait, and
// nothing else: the API's other requests go on meanwhile. node:sqlite is synchronous, so a 10 s busy timeout
// inside SQLite used to stop the whole process for 10 s per auditor request (the review found /v1/status and
// /healthz taking 38 s while three auditor requests waited one after another).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { startApiArea, type ApiArea } from './area.ts';
import { fillArchive, type TestArchive } from './auditor-archive.ts';
import { tempDir } from '../helpers/peers.ts';

let a: ApiArea;
let arc: TestArchive;
const store = tempDir('journal-lock');
let base: string;

beforeAll(async () => {
  arc = await fillArchive(store.path);
  a = await startApiArea({ octet: 181, rounds: 1, extraSettings: { traffic: arc.settings } });
  await a.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = a.app.server.address() as { port: number };
  base = `http://127.0.0.1:${addr.port}`;
}, 180_000);
afterAll(async () => {
  await a?.close();
  store.remove();
});

describe('a locked access journal', () => {
  it("answers the auditor 503 after its wait, while the officer's and the monitor's requests are answered at once", async () => {
    const db = new DatabaseSync(join(arc.dir, 'journal.sqlite'));
    db.exec('BEGIN EXCLUSIVE');
    try {
      const t0 = Date.now();
      const auditor = Promise.all(
        [0, 1].map(() => fetch(`${base}/v1/traffic/search?ip=10.23.4.5&from=2026-06-03&to=2026-06-04`, { headers: a.as('auditor') }).then(async (r) => ({ status: r.status, body: await r.text(), ms: Date.now() - t0 }))),
      );
      // Meanwhile, other roles: each answered well before the auditor's wait is over.
      await new Promise((r) => setTimeout(r, 300));
      const others: number[] = [];
      for (let i = 0; i < 5; i++) {
        const s = Date.now();
        const r = await fetch(`${base}/v1/status`, { headers: a.as('officer') });
        expect(r.status).toBe(200);
        const h = await fetch(`${base}/healthz`);
        expect([200, 503]).toContain(h.status);
        others.push(Date.now() - s);
      }
      expect(Math.max(...others), `status + healthz took ${others.join(', ')} ms`).toBeLessThan(2_000);
      const answers = await auditor;
      for (const r of answers) {
        expect(r.status).toBe(503);
        expect(JSON.parse(r.body)).toEqual({ error: 'unavailable', message: expect.stringMatching(/^the access journal cannot be written: .*locked/) });
        expect(r.body).not.toContain(arc.dir);
      }
      // The two waited side by side (about 10 s each), not one after the other.
      expect(Math.max(...answers.map((r) => r.ms))).toBeLessThan(18_000);
    } finally {
      if (db.isTransaction) db.exec('ROLLBACK');
      db.close();
    }
    // Released: the auditor is answered again.
    const ok = await fetch(`${base}/v1/traffic/search?ip=10.23.4.5&from=2026-06-03&to=2026-06-04`, { headers: a.as('auditor') });
    expect(ok.status).toBe(200);
  }, 60_000);
});
