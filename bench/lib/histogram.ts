// Latency histogram: exact to the microsecond below 1 ms, then buckets 1% wide, so it is small,
// mergeable across load processes, and its percentiles are within 1% of the true value.

const LINEAR_US = 1000
const GROWTH = Math.log(1.01)

export interface HistogramData {
  counts: Record<string, number>
  count: number
  max: number
  sum: number
}

function bucketOf (us: number): number {
  if (us < LINEAR_US) return Math.max(0, Math.floor(us))
  return LINEAR_US + Math.floor(Math.log(us / LINEAR_US) / GROWTH)
}

function valueOf (bucket: number): number {
  if (bucket < LINEAR_US) return bucket
  // The bucket's upper edge: percentiles are never reported lower than they were.
  return LINEAR_US * Math.exp((bucket - LINEAR_US + 1) * GROWTH)
}

export class Histogram {
  counts = new Map<number, number>()
  count = 0
  max = 0
  sum = 0

  /** Records one latency in milliseconds. */
  record (ms: number): void {
    const us = ms * 1000
    const bucket = bucketOf(us)
    this.counts.set(bucket, (this.counts.get(bucket) ?? 0) + 1)
    this.count++
    this.sum += us
    if (us > this.max) this.max = us
  }

  merge (other: HistogramData): void {
    for (const [bucket, n] of Object.entries(other.counts)) this.counts.set(Number(bucket), (this.counts.get(Number(bucket)) ?? 0) + n)
    this.count += other.count
    this.sum += other.sum
    if (other.max > this.max) this.max = other.max
  }

  toJSON (): HistogramData {
    return { counts: Object.fromEntries(this.counts), count: this.count, max: this.max, sum: this.sum }
  }

  static from (data: HistogramData): Histogram {
    const histogram = new Histogram()
    histogram.merge(data)
    return histogram
  }

  /** The p-th percentile (0..100) in milliseconds; NaN when empty. */
  percentile (p: number): number {
    if (this.count === 0) return Number.NaN
    const rank = Math.ceil((p / 100) * this.count)
    let seen = 0
    for (const bucket of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(bucket)!
      if (seen >= rank) return Math.min(valueOf(bucket), this.max) / 1000
    }
    return this.max / 1000
  }

  summary (): { p50: number, p99: number, max: number, mean: number, count: number } {
    return {
      p50: this.percentile(50),
      p99: this.percentile(99),
      max: this.max / 1000,
      mean: this.count === 0 ? Number.NaN : this.sum / this.count / 1000,
      count: this.count
    }
  }
}
