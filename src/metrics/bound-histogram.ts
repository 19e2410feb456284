import type { Metric, Registry } from 'prom-client';

/** One line of the rendered histogram, as prom-client's registry reads it. */
interface RenderedValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** One labelled series of a BoundHistogram: observing costs a bucket search and three additions. */
export class HistogramSeries {
  /** Per bucket (not cumulative), the last one for values above every bound (+Inf). */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let bucket = 0;
    while (bucket < this.bounds.length && value > this.bounds[bucket]) bucket++;
    this.counts[bucket]++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A Prometheus histogram for the per-request hot path. prom-client's Histogram hashes the label set on every
 * observation, which costs more than an OCSP answer from the cache; here a label set is looked up once
 * (`series`) and the caller may keep the series. Registered in a prom-client Registry, which renders it like any
 * histogram (cumulative `_bucket` series with `le`, `_sum`, `_count`).
 */
export class BoundHistogram<L extends string> {
  readonly type = 'histogram';
  private readonly all = new Map<string, { labels: Record<L, string>; series: HistogramSeries }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  series(labels: Record<L, string>): HistogramSeries {
    let key = '';
    for (const name of this.labelNames) key += `${labels[name]}\u0000`;
    let entry = this.all.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, series: new HistogramSeries(this.bounds) };
      this.all.set(key, entry);
    }
    return entry.series;
  }

  /** What the registry renders (prom-client calls it on every scrape). */
  get(): { name: string; help: string; type: 'histogram'; values: RenderedValue[]; aggregator: 'sum' } {
    const values: RenderedValue[] = [];
    for (const { labels, series } of this.all.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i];
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: series.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: series.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  reset(): void {
    this.all.clear();
  }
}
