/**
 * Placement: which worker gets a new environment of a function version.
 * Spread first (the zone holding fewest of this version's environments, so a
 * zone's loss takes the smallest share), then pack (in that zone, the worker
 * with the least free memory that still fits the environment, so large free
 * blocks stay whole for large functions). Pure: the router hands it its view.
 */

export interface Candidate {
  id: string;
  zone: string;
  /** Memory not yet taken by environments (MB). */
  freeMemoryMb: number;
  /** This version's environments there, as this frontend knows them. */
  environments: number;
}

/** The worker for one more environment needing `memoryMb`, or undefined when none can take it. */
export function place(candidates: readonly Candidate[], memoryMb: number): Candidate | undefined {
  const fits = candidates.filter((c) => c.freeMemoryMb >= memoryMb);
  if (fits.length === 0) return undefined;
  const perZone = new Map<string, number>();
  for (const c of candidates) perZone.set(c.zone, (perZone.get(c.zone) ?? 0) + c.environments);
  let best: Candidate | undefined;
  for (const c of fits) {
    if (!best) {
      best = c;
      continue;
    }
    const zc = perZone.get(c.zone) ?? 0;
    const zb = perZone.get(best.zone) ?? 0;
    if (zc !== zb) {
      if (zc < zb) best = c;
      continue;
    }
    if (c.freeMemoryMb !== best.freeMemoryMb) {
      if (c.freeMemoryMb < best.freeMemoryMb) best = c;
      continue;
    }
    if (c.environments < best.environments || (c.environments === best.environments && c.id < best.id))
      best = c;
  }
  return best;
}
