// The worker thread seals and merges run in (archive.ts inBackground).
import { parentPort, workerData } from 'node:worker_threads';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { writeMerged, writeSegment, type BackgroundJob } from './archive.ts';

// Seals and merges are background work: at nice 10 (and DuckDB's threads,
// started from here, with it) they give way to the receivers' thread
// whenever both want a core, and a burst of flows is read off the socket
// rather than dropped by the kernel while an hour's segment is written. On
// Linux a thread's own id (from /proc/thread-self) sets its priority alone;
// elsewhere it stays.
try {
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), 10);
} catch {
  // Not Linux, or not allowed: the work runs at the collector's priority.
}

const job = workerData as BackgroundJob;
try {
  const result = job.kind === 'seal' ? await writeSegment(job.walFile, job.segmentDir, job.seq) : await writeMerged(job.files, job.out, job.workDir);
  parentPort!.postMessage({ ok: true, result });
} catch (err) {
  parentPort!.postMessage({ ok: false, error: (err as Error).stack ?? String(err) });
}
