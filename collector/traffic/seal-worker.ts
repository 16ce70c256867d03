// The worker thread a seal runs in (archive.ts writeSegmentInWorker).
import { parentPort, workerData } from 'node:worker_threads';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { writeSegment } from './archive.ts';

// A seal is background work: at nice 10 (and DuckDB's threads, started from
// here, with it) it gives way to the receivers' thread whenever both want a
// core, and a burst of flows is read off the socket rather than dropped by
// the kernel while an hour's segment is written. On Linux a thread's own
// id (from /proc/thread-self) sets its priority alone; elsewhere it stays.
try {
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), 10);
} catch {
  // Not Linux, or not allowed: the seal runs at the collector's priority.
}

const { walFile, segmentDir, seq } = workerData as { walFile: string; segmentDir: string; seq: number };
try {
  parentPort!.postMessage({ ok: true, result: await writeSegment(walFile, segmentDir, seq) });
} catch (err) {
  parentPort!.postMessage({ ok: false, error: (err as Error).stack ?? String(err) });
}
