/**
 * The viewer's store: the state this screen shows, and the room's shared state.
 *
 * - Following (the default): the screen shows the room's state; a newer shared state
 *   (higher sequence number, given by the server) replaces it, older or repeated ones are
 *   dropped.
 * - Looking around: a member who does not drive and scrolls or windows locally stops
 *   following; the shared state is still tracked, and `follow()` goes back to it at once.
 * - Driving (the server names this member the driver: room/control.ts): every local change
 *   is shown at once and handed to the `onLocalChange` listeners, for the room channel, so
 *   the driver is never the one looking around while the room waits.
 */

import { EMPTY_STATE, reduce, type ViewerAction, type ViewerState } from "./state";

export interface SharedState {
  seq: number;
  state: ViewerState;
}

type Listener = (state: ViewerState, previous: ViewerState) => void;

export class ViewerStore {
  private current: ViewerState;
  private sharedState: SharedState | null = null;
  private followingShared = true;
  private driving = false;
  private listeners = new Set<Listener>();
  private localListeners = new Set<(state: ViewerState) => void>();
  private followListeners = new Set<(following: boolean) => void>();

  constructor(initial: ViewerState = EMPTY_STATE) {
    this.current = initial;
  }

  get state(): ViewerState {
    return this.current;
  }

  get shared(): SharedState | null {
    return this.sharedState;
  }

  get following(): boolean {
    return this.followingShared;
  }

  get isDriving(): boolean {
    return this.driving;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Local changes while driving, to be sent to the room. */
  onLocalChange(listener: (state: ViewerState) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  onFollowChange(listener: (following: boolean) => void): () => void {
    this.followListeners.add(listener);
    return () => this.followListeners.delete(listener);
  }

  /** A change made on this screen (tool, keyboard, button). */
  dispatch(action: ViewerAction): ViewerState {
    const previous = this.current;
    const next = reduce(previous, action);
    if (next === previous) return next;
    this.set(next);
    if (this.driving) {
      for (const listener of this.localListeners) listener(next);
    } else if (this.sharedState && !this.isLoadingShared(action, this.sharedState.state)) {
      // Loading the shared series is following; anything else is looking around.
      this.setFollowing(false);
    }
    return next;
  }

  /** Loading the series the room shows (its length now known) in either viewport. */
  private isLoadingShared(action: ViewerAction, shared: ViewerState): boolean {
    if (action.type === "series") return action.seriesUID === shared.seriesUID;
    if (action.type === "compare") return action.compare !== null && action.compare.seriesUID === shared.compare?.seriesUID;
    return false;
  }

  /** The room's state, numbered by the server; shown when following. Returns whether newer. */
  applyShared(update: SharedState): boolean {
    if (!this.recordShared(update)) return false;
    if (this.followingShared) this.set(update.state);
    return true;
  }

  /** Keeps the room's state without showing it (e.g. the ack of what this screen sent). */
  recordShared(update: SharedState): boolean {
    if (this.sharedState && update.seq <= this.sharedState.seq) return false;
    this.sharedState = update;
    return true;
  }

  /** The room's current state read again (same seq): its image found in a series loaded since. */
  reviseShared(update: SharedState): void {
    if (this.sharedState?.seq !== update.seq) return;
    this.sharedState = update;
    if (this.followingShared && !this.driving) this.set(update.state);
  }

  /** Back to the room's view (the "follow" button). */
  follow(): void {
    this.setFollowing(true);
    if (this.sharedState) this.set(this.sharedState.state);
  }

  /** Whether this screen drives the room's view. A driver is following by definition. */
  setDriving(driving: boolean): void {
    if (driving === this.driving) return;
    this.driving = driving;
    if (driving) this.setFollowing(true);
  }

  /** Replaces the shown state without going through the reducer (restore after reload). */
  replace(state: ViewerState): void {
    this.set(state);
  }

  private setFollowing(following: boolean): void {
    if (following === this.followingShared) return;
    this.followingShared = following;
    for (const listener of this.followListeners) listener(following);
  }

  private set(next: ViewerState): void {
    const previous = this.current;
    if (next === previous) return;
    this.current = next;
    for (const listener of this.listeners) listener(next, previous);
  }
}
