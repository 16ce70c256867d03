// Half-open time intervals [start, end) in milliseconds, kept sorted and
// disjoint: the arithmetic every evaluation figure is made of (scheduled
// time minus maintenance, outages within it), exact to the millisecond.

export type Interval = readonly [number, number];

/** Sorted, merged, empty ones dropped. */
export function union(xs: readonly Interval[]): Interval[] {
  const s = xs.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Both inputs normalised (see union). */
export function intersect(xs: readonly Interval[], ys: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let i = 0;
  let j = 0;
  while (i < xs.length && j < ys.length) {
    const [a1, b1] = xs[i]!;
    const [a2, b2] = ys[j]!;
    const a = Math.max(a1, a2);
    const b = Math.min(b1, b2);
    if (b > a) out.push([a, b]);
    if (b1 < b2) i++;
    else j++;
  }
  return out;
}

/** xs minus ys; both normalised. */
export function subtract(xs: readonly Interval[], ys: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const [a0, b] of xs) {
    let a = a0;
    for (const [c, d] of ys) {
      if (d <= a) continue;
      if (c >= b) break;
      if (c > a) out.push([a, c]);
      a = Math.max(a, d);
      if (a >= b) break;
    }
    if (a < b) out.push([a, b]);
  }
  return out;
}

export function total(xs: readonly Interval[]): number {
  let t = 0;
  for (const [a, b] of xs) t += b - a;
  return t;
}

export function clip(xs: readonly Interval[], from: number, to: number): Interval[] {
  return intersect(xs, [[from, to]]);
}
