/** UTC day keys: the backend buckets analytics and costs by UTC day. */
export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}
