/**
 * Loads one stack's frames into Cornerstone's cache in the order loadOrder.ts decides: the
 * wanted slice as an Interaction request, the rest as Prefetch requests through
 * imageLoadPoolManager, a few at a time, outward from the wanted slice. It replaces
 * Cornerstone's stackPrefetch, which hands every remaining frame to the pools at once: a
 * jump's request then waits behind all of them in the browser's connection queue.
 */

import { cache, Enums, eventTarget, imageLoader, imageLoadPoolManager, type Types } from "@cornerstonejs/core";

import { LoadQueue } from "./loadOrder";

const { RequestType } = Enums;
const Events = Enums.Events;

/** Pool priorities: the lower goes first within a request type (as Cornerstone's viewport
 * asks for the image it displays). */
const INTERACTION_PRIORITY = -5;
const PREFETCH_PRIORITY = 0;

export interface FrameListener {
  /** A loaded slice should go on screen now (the wanted one, or one on the way to it). */
  ready(index: number): void;
  /** Loaded count or the wanted slice's state changed. */
  changed(): void;
}

export class FrameLoader {
  private readonly queue: LoadQueue;
  private readonly indexOf = new Map<string, number>();
  private readonly cleanups: (() => void)[] = [];
  private shown: number | null = null;
  private disposed = false;

  constructor(
    readonly imageIds: readonly string[],
    private readonly listener: FrameListener,
  ) {
    this.queue = new LoadQueue(imageIds.length);
    imageIds.forEach((id, i) => {
      this.indexOf.set(id, i);
      if (cache.isLoaded(id)) this.queue.settle(i, true);
    });
    const on = <T>(type: string, fn: (detail: T) => void) => {
      const listener = ((e: CustomEvent<T>) => fn(e.detail)) as EventListener;
      eventTarget.addEventListener(type, listener);
      this.cleanups.push(() => eventTarget.removeEventListener(type, listener));
    };
    // Loads by anyone count: the viewport's own (a wheel scroll), the compare view's.
    on<Types.EventTypes.ImageLoadedEventDetail>(Events.IMAGE_LOADED, (d) => this.settled(d.image?.imageId, true));
    on<Types.EventTypes.ImageLoadedFailedEventDetail>(Events.IMAGE_LOAD_FAILED, (d) => this.settled(d.imageId, false));
    on<Types.EventTypes.ImageCacheImageRemovedEventDetail>(Events.IMAGE_CACHE_IMAGE_REMOVED, (d) => {
      const i = this.indexOf.get(d.imageId);
      if (i === undefined) return;
      this.queue.evict(i);
      this.listener.changed();
    });
  }

  get loaded(): number {
    return this.queue.loaded;
  }

  get total(): number {
    return this.imageIds.length;
  }

  get wanted(): number | null {
    return this.queue.focus;
  }

  isLoaded(index: number): boolean {
    return this.queue.isLoaded(index);
  }

  /** The wanted slice's last request failed (cleared by wanting another). */
  get wantedFailed(): boolean {
    const f = this.queue.focus;
    return f !== null && this.queue.state(f) === "failed";
  }

  /** The slice to show: requested ahead of every prefetch unless it is loaded already. */
  want(index: number): void {
    if (this.disposed) return;
    const changed = index !== this.queue.focus;
    if (this.queue.want(index)) this.request(index, RequestType.Interaction, INTERACTION_PRIORITY);
    if (this.queue.isLoaded(index)) this.listener.ready(index);
    if (changed) this.listener.changed();
    this.pump();
  }

  /** The slice whose frame is on screen now. */
  displayed(index: number | null): void {
    this.shown = index;
  }

  dispose(): void {
    this.disposed = true;
    for (const cleanup of this.cleanups) cleanup();
    this.cleanups.length = 0;
  }

  private settled(imageId: string | undefined, ok: boolean): void {
    const i = imageId === undefined ? undefined : this.indexOf.get(imageId);
    if (this.disposed || i === undefined) return;
    const before = this.queue.state(i);
    this.queue.settle(i, ok);
    if (before === this.queue.state(i)) return; // already counted (one load, two reports)
    if (this.queue.shouldShow(i, this.shown)) this.listener.ready(i);
    this.listener.changed();
    this.pump();
  }

  private pump(): void {
    if (this.disposed) return;
    const next = this.queue.nextFetch();
    if (next !== null) this.request(next, RequestType.Interaction, INTERACTION_PRIORITY);
    for (const i of this.queue.takePrefetch()) this.request(i, RequestType.Prefetch, PREFETCH_PRIORITY);
  }

  private request(index: number, requestType: Enums.RequestType, priority: number): void {
    const imageId = this.imageIds[index];
    imageLoadPoolManager.addRequest(
      () =>
        imageLoader
          .loadAndCacheImage(imageId, { requestType, priority })
          .then(
            () => this.settled(imageId, true),
            () => this.settled(imageId, false),
          ),
      requestType,
      { imageId },
      priority,
    );
  }
}
