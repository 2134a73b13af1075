/**
 * The order a stack's frames load in, as plain bookkeeping (Cornerstone does the loading,
 * frameLoader.ts joins the two):
 * - the wanted slice (in a room: the one in control's) is requested first, as soon as it is
 *   wanted, and prefetch starts nothing more until it has arrived, so that on a saturated
 *   link it does not share the bandwidth with frames nobody looks at yet;
 * - then prefetch goes outward from it in both directions, the way the last move went first;
 * - latest wins: of the slices wanted while others were still on the way, only the newest
 *   is requested once a request slot frees, the ones passed over are left to prefetch.
 */

/**
 * Prefetch requests in flight at once. Few, so that a jump's request always finds a free
 * connection (browsers open 6 per host over HTTP/1.1) and the bandwidth of a weak link is
 * not spread over frames in flight; two keep a 100 ms round trip busy between responses.
 */
export const PREFETCH_CONCURRENCY = 2;

/** Requests for wanted slices in flight at once: the newest, and one it overtook. */
export const INTERACTION_CONCURRENCY = 2;

export type FrameState =
  | "pending"
  | "prefetching"
  | "fetching"
  | "loaded"
  | "failed"
  /** Dropped from the cache: reloaded when wanted, never by prefetch (no thrashing when a
   * series is larger than the cache). */
  | "evicted";

/** Indices of a stack of `count` from `center` outward, alternately one further in
 * `direction` and one further against it. */
export function* outward(center: number, count: number, direction: 1 | -1 = 1): Generator<number> {
  if (count <= 0) return;
  const c = Math.min(count - 1, Math.max(0, Math.round(center)));
  yield c;
  for (let d = 1; c + d < count || c - d >= 0; d++) {
    const ahead = c + d * direction;
    const behind = c - d * direction;
    if (ahead >= 0 && ahead < count) yield ahead;
    if (behind >= 0 && behind < count) yield behind;
  }
}

export class LoadQueue {
  private readonly states: FrameState[];
  private focusIndex: number | null = null;
  private direction: 1 | -1 = 1;
  private prefetching = 0;
  private fetching = 0;
  private loadedCount = 0;
  /** When each slice was last wanted (a counter), to tell the newest of those on the way. */
  private readonly wantedAt = new Map<number, number>();
  private wants = 0;

  constructor(
    readonly count: number,
    private readonly prefetchLimit = PREFETCH_CONCURRENCY,
    private readonly fetchLimit = INTERACTION_CONCURRENCY,
  ) {
    this.states = new Array<FrameState>(count).fill("pending");
  }

  get focus(): number | null {
    return this.focusIndex;
  }

  get loaded(): number {
    return this.loadedCount;
  }

  state(index: number): FrameState {
    return this.states[index];
  }

  isLoaded(index: number): boolean {
    return this.states[index] === "loaded";
  }

  /**
   * The slice to show now. True when its request should start now (call `started` for it);
   * false when it is loaded, on its way, or waiting for a request slot (`nextFetch`).
   * Wanting the same slice again changes nothing: a failed one is retried on a new want.
   */
  want(index: number): boolean {
    if (index < 0 || index >= this.count) return false;
    if (index === this.focusIndex) return false;
    if (this.focusIndex !== null) this.direction = index > this.focusIndex ? 1 : -1;
    this.focusIndex = index;
    this.wantedAt.set(index, ++this.wants);
    return this.nextFetch() === index;
  }

  /** The wanted slice if it still needs a request and a slot is free (it is then counted). */
  nextFetch(): number | null {
    const f = this.focusIndex;
    if (f === null || this.fetching >= this.fetchLimit) return null;
    const s = this.states[f];
    if (s !== "pending" && s !== "evicted" && s !== "failed") return null;
    this.states[f] = "fetching";
    this.fetching++;
    return f;
  }

  /** The prefetches to start now, nearest the wanted slice first; none while it is coming. */
  takePrefetch(): number[] {
    const f = this.focusIndex;
    if (f === null) return [];
    const s = this.states[f];
    if (s !== "loaded" && s !== "failed") return [];
    const out: number[] = [];
    for (const i of outward(f, this.count, this.direction)) {
      if (this.prefetching + out.length >= this.prefetchLimit) break;
      if (this.states[i] === "pending") out.push(i);
    }
    for (const i of out) this.states[i] = "prefetching";
    this.prefetching += out.length;
    return out;
  }

  /** A request for `index` ended (ours or anyone's: a slice loaded by the viewport itself
   * counts too). Idempotent. */
  settle(index: number, ok: boolean): void {
    const s = this.states[index];
    if (s === undefined || (!ok && s === "loaded")) return; // a late failure of a loaded slice
    if (s === "prefetching") this.prefetching--;
    if (s === "fetching") this.fetching--;
    if (ok && s !== "loaded") this.loadedCount++;
    this.states[index] = ok ? "loaded" : "failed";
  }

  /** The cache dropped the slice. */
  evict(index: number): void {
    const s = this.states[index];
    if (s !== "loaded") return;
    this.loadedCount--;
    this.states[index] = "evicted";
  }

  /**
   * Whether a slice that just arrived goes on screen: the wanted one; or, while that one is
   * still coming, a slice wanted after the one on screen (so a follower sees the controller's
   * way through the stack rather than a still picture until the scroll ends).
   */
  shouldShow(index: number, shown: number | null): boolean {
    const f = this.focusIndex;
    if (f === null || !this.isLoaded(index)) return false;
    if (index === f) return true;
    if (this.isLoaded(f)) return false;
    const at = this.wantedAt.get(index);
    if (at === undefined) return false;
    return shown === null || at > (this.wantedAt.get(shown) ?? 0);
  }
}
