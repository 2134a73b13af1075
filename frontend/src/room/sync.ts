/**
 * The viewer's side of the room channel (docs/signaling.md, "The synchronized viewer"):
 * sends this screen's state while it drives, at most every `intervalMs` (the latest state
 * wins), and applies the room's states in sequence order.
 */

import type { ViewerState } from "../viewer/state";
import type { ViewerStore } from "../viewer/store";
import { fromWire, toWire, type SeriesImages } from "../viewer/wire";
import type { ViewerStateIn } from "../wire/protocol";

export interface SyncTransport {
  /** `viewer:state`; resolves with the sequence number the server gave it. */
  send(state: ViewerStateIn): Promise<{ seq: number }>;
}

export interface SyncOptions {
  intervalMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Length of a series this screen has loaded (to clamp received indexes). */
  imageCount?: (seriesUID: string) => number | null;
  /** The images of a series this screen has loaded (their instance and frame). */
  images?: SeriesImages;
  onError?: (err: unknown) => void;
}

export class ViewerSync {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly imageCount: (seriesUID: string) => number | null;
  private readonly images: SeriesImages;
  private readonly onError: (err: unknown) => void;
  private lastSent = -Infinity;
  private timer: unknown = null;
  private inFlight = 0;
  private received: { seq: number; wire: ViewerStateIn } | null = null;
  private readonly unsubscribe: (() => void)[];

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
    this.images = options.images ?? (() => null);
    this.onError = options.onError ?? (() => undefined);
    this.unsubscribe = [
      store.onLocalChange(() => this.schedule()),
      // A series loaded (either viewport): the shown room state's image is looked up again,
      // after the change that announced it has reached every listener.
      store.subscribe((state, previous) => {
        if (state.imageCount !== previous.imageCount || state.compare?.imageCount !== previous.compare?.imageCount) {
          queueMicrotask(() => this.lookUpAgain());
        }
      }),
    ];
  }

  /** Whether this screen drives; on becoming the driver, its view is sent at once. */
  setDriving(driving: boolean): void {
    const was = this.store.isDriving;
    this.store.setDriving(driving);
    if (driving && !was && this.store.state.seriesUID) this.schedule();
  }

  /** A state from the room (`viewer:state`, or the snapshot's `viewer`). */
  receive(seq: number, wire: ViewerStateIn): void {
    const state = fromWire(wire, this.imageCount, this.images);
    if (!state) return;
    if (!this.received || seq > this.received.seq) this.received = { seq, wire };
    // A driver with its own change on the way keeps it: the server orders both, and the
    // co-driver gets ours next. Otherwise the newer state is shown.
    if (this.store.isDriving && (this.inFlight > 0 || this.timer !== null)) {
      this.store.recordShared({ seq, state });
    } else {
      this.store.applyShared({ seq, state });
    }
  }

  /**
   * The room's state names its images by instance and frame, the index only a hint: one
   * received before its series was loaded here is resolved again once it is.
   */
  private lookUpAgain(): void {
    const received = this.received;
    const shared = this.store.shared;
    if (!received || !shared || shared.seq !== received.seq || this.store.isDriving) return;
    const state = fromWire(received.wire, this.imageCount, this.images);
    if (!state) return;
    if (state.imageIndex === shared.state.imageIndex && state.compare?.imageIndex === shared.state.compare?.imageIndex) return;
    this.store.reviseShared({ seq: received.seq, state });
  }

  dispose(): void {
    for (const unsubscribe of this.unsubscribe) unsubscribe();
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
      const { seq } = await this.transport.send(toWire(state, this.images));
      this.store.recordShared({ seq, state });
    } catch (err) {
      this.onError(err);
    } finally {
      this.inFlight--;
    }
  }
}
