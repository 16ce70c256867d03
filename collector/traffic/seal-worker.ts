// The worker thread a seal runs in (archive.ts writeSegmentInWorker).
import { parentPort, workerData } from 'node:worker_threads';
import { writeSegment } from './archive.ts';

const { walFile, segmentDir, seq } = workerData as { walFile: string; segmentDir: string; seq: number };
try {
  parentPort!.postMessage({ ok: true, result: await writeSegment(walFile, segmentDir, seq) });
} catch (err) {
  parentPort!.postMessage({ ok: false, error: (err as Error).stack ?? String(err) });
}
