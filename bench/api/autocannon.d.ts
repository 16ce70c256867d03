// The part of autocannon's programmatic API that bench/api/run.ts uses
// (autocannon ships no types; @types/autocannon is not a dependency).
declare module 'autocannon' {
  interface Histogram {
    average: number;
    mean: number;
    p50: number;
    p90: number;
    p99: number;
    max: number;
    total: number;
  }
  interface Options {
    url: string;
    headers?: Record<string, string>;
    method?: string;
    connections?: number;
    duration?: number;
    overallRate?: number;
    pipelining?: number;
    workers?: number;
  }
  interface Result {
    requests: Histogram;
    latency: Histogram;
    throughput: Histogram;
    errors: number;
    timeouts: number;
    non2xx: number;
    duration: number;
  }
  function autocannon(o: Options): Promise<Result>;
  export default autocannon;
}
