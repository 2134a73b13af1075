/**
 * Cine: the driver (or a screen on its own) steps the state; a follower plays locally at the
 * shared rate and is re-aligned by each shared image index it receives, so that the room's
 * channel carries no frame-by-frame updates.
 */

import type { ViewerStore } from "./store";

/** The next cine step: the state's slice, or only the viewport's while following. */
export function cineStep(store: ViewerStore, target: number, count: number): { shared: boolean; index: number } {
  const followingRoom = !store.isDriving && store.following && store.shared !== null;
  return followingRoom ? { shared: false, index: (target + 1) % count } : { shared: true, index: (store.state.imageIndex + 1) % count };
}

export class Cine {
  private timer: ReturnType<typeof setInterval> | undefined;
  private rate = 0;

  constructor(private readonly step: () => void) {}

  get playing(): boolean {
    return this.timer !== undefined;
  }

  /** Plays at `fps` while `play`; a new rate restarts the timer, the same one keeps it. */
  update(play: boolean, fps: number): void {
    if (!play) return this.stop();
    if (this.timer !== undefined && this.rate === fps) return;
    clearInterval(this.timer);
    this.rate = fps;
    this.timer = setInterval(this.step, 1000 / fps);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.rate = 0;
  }
}
