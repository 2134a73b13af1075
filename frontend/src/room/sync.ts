/**
 * The viewer's side of the room channel (docs/signaling.md, "The synchronized viewer"):
 * sends this screen's state while it drives, at most every `intervalMs` (the latest state
 * wins), and applies the room's states in sequence order.
 */

import type { ViewerState } from "../viewer/state";
import type { ViewerStore } from "../viewer/store";
import { fromWire, toWire, type WireViewerState } from "../viewer/wire";

export interface SyncTransport {
  /** `viewer:state`; resolves with the sequence number the server gave it. */
  send(state: WireViewerState): Promise<{ seq: number }>;
}

export interface SyncOptions {
  intervalMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Length of a series this screen has loaded (to clamp received indexes). */
  imageCount?: (seriesUID: string) => number | null;
  onError?: (err: unknown) => void;
}

export class ViewerSync {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly imageCount: (seriesUID: string) => number | null;
  private readonly onError: (err: unknown) => void;
  private lastSent = -Infinity;
  private timer: unknown = null;
  private inFlight = 0;
  private unsubscribe: () => void;

  constructor(
    private readonly store: ViewerStore,
    private readonly transport: SyncTransport,
    options: SyncOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 100;
    this.now = options.now ?? (() => Date.now());
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
    this.imageCount = options.imageCount ?? (() => null);
    this.onError = options.onError ?? (() => undefined);
    this.unsubscribe = store.onLocalChange(() => this.schedule());
  }

  /** Whether this screen drives; on becoming the driver, its view is sent at once. */
  setDriving(driving: boolean): void {
    const was = this.store.isDriving;
    this.store.setDriving(driving);
    if (driving && !was && this.store.state.seriesUID) this.schedule();
  }

  /** A state from the room (`viewer:state`, or the snapshot's `viewer`). */
  receive(seq: number, wire: WireViewerState): void {
    const state = fromWire(wire, this.imageCount);
    if (!state) return;
    // A driver with its own change on the way keeps it: the server orders both, and the
    // co-driver gets ours next. Otherwise the newer state is shown.
    if (this.store.isDriving && (this.inFlight > 0 || this.timer !== null)) {
      this.store.recordShared({ seq, state });
    } else {
      this.store.applyShared({ seq, state });
    }
  }

  dispose(): void {
    this.unsubscribe();
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer !== null) return; // the pending send will take the latest state
    const wait = this.lastSent + this.intervalMs - this.now();
    if (wait <= 0) {
      void this.flush();
    } else {
      this.timer = this.setTimer(() => {
        this.timer = null;
        void this.flush();
      }, wait);
    }
  }

  private async flush(): Promise<void> {
    if (!this.store.isDriving) return;
    const state: ViewerState = this.store.state;
    if (!state.seriesUID) return;
    this.lastSent = this.now();
    this.inFlight++;
    try {
      const { seq } = await this.transport.send(toWire(state));
      this.store.recordShared({ seq, state });
    } catch (err) {
      this.onError(err);
    } finally {
      this.inFlight--;
    }
  }
}
