/** Summaries of repeated measurements, for the benchmarks' printed lines. */
export interface Summary {
  min: number;
  median: number;
  max: number;
}

/** min, median (middle value, or the mean of the two middle ones) and max. */
export function summarize(xs: number[]): Summary {
  if (xs.length === 0) throw new Error('summarize: no measurements');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s.at(-1)! };
}
