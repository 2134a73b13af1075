/**
 * Control of the shared viewer as this screen shows it: who holds control and who drives
 * (both as the server says, in the snapshot and in `control:changed`: the rule lives in
 * signaling/viewer.py only), the requests everyone sees, the last change in words, and what
 * the panel offers. Pure, so each transition is unit-tested without a DOM.
 */

import { strings } from "../strings";
import type { ControlChanged } from "../wire/protocol";

/** `control:changed`, as signaling/schemas.py defines it (generated: ../wire/protocol.ts). */
export type { ControlChanged };
export type ControlReason = ControlChanged["reason"];

export interface ControlRequest {
  participant_id: string;
  name: string;
}

/** `control:request_cancelled`: `by` is the asker (withdrawn) or the host (declined). */
export interface RequestWithdrawn {
  participant_id: string;
  by: string;
}

type Notice =
  | { kind: "changed"; reason: ControlReason; by: string | null; holder: string | null }
  | { kind: "requested"; participant_id: string; name: string }
  | { kind: "declined"; participant_id: string; name: string };

export interface ControlState {
  holder: string | null;
  driver: string | null;
  /** Pending requests for control, oldest first. */
  requests: ControlRequest[];
  /** The last thing that happened to control, for everyone to read. */
  notice: Notice | null;
}

export const NO_CONTROL: ControlState = { holder: null, driver: null, requests: [], notice: null };

/** A snapshot (join, admission, resume): the server keeps no requests, so ours stay. */
export function fromSnapshot(state: ControlState, snapshot: { control_holder: string | null; driver: string | null }): ControlState {
  return { ...state, holder: snapshot.control_holder, driver: snapshot.driver };
}

export function changed(state: ControlState, e: ControlChanged): ControlState {
  return {
    holder: e.holder,
    driver: e.driver,
    requests: state.requests.filter((r) => r.participant_id !== e.holder),
    notice: { kind: "changed", reason: e.reason, by: e.by, holder: e.holder },
  };
}

export function requested(state: ControlState, r: ControlRequest): ControlState {
  return {
    ...state,
    requests: [...state.requests.filter((x) => x.participant_id !== r.participant_id), r],
    notice: { kind: "requested", participant_id: r.participant_id, name: r.name },
  };
}

export function withdrawn(state: ControlState, w: RequestWithdrawn): ControlState {
  const request = state.requests.find((r) => r.participant_id === w.participant_id);
  const requests = state.requests.filter((r) => r.participant_id !== w.participant_id);
  if (w.by !== w.participant_id) {
    return { ...state, requests, notice: { kind: "declined", participant_id: w.participant_id, name: request?.name ?? strings.someone } };
  }
  // A withdrawn request leaves no trace, not even the notice that announced it.
  const stale = state.notice?.kind === "requested" && state.notice.participant_id === w.participant_id;
  return { ...state, requests, notice: stale ? null : state.notice };
}

export interface ControlMember {
  participant_id: string;
  name: string;
}

export interface ControlContext {
  me: string | null;
  myRole: string;
  /** Admitted members, for names; a request from someone gone is not shown. */
  members: ControlMember[];
  /** Whether this screen shows the room's view (not looking around). */
  following: boolean;
}

/** The viewer's frame: its colour, and the word on it. */
export type ControlMode = "driving" | "following" | "looking" | "nobody";

export interface ControlAction {
  kind: "follow" | "take" | "release" | "request" | "cancel";
  label: string;
  /** The event to send (payload `{}`); null for following again, which is local. */
  event: string | null;
}

export interface ControlView {
  driving: boolean;
  mode: ControlMode;
  status: string;
  frameLabel: string;
  notice: string | null;
  actions: ControlAction[];
  requests: { participant_id: string; text: string; answer: boolean }[];
}

export function controlView(state: ControlState, c: ControlContext): ControlView {
  const name = (pid: string, you: string) => (pid === c.me ? you : (c.members.find((m) => m.participant_id === pid)?.name ?? strings.someone));
  const subject = (pid: string | null) => (pid === null ? strings.someone : name(pid, strings.youSubject));
  const isHost = c.myRole === "host";
  const driving = c.me !== null && state.driver === c.me;
  const driver = state.driver === null ? null : name(state.driver, strings.youSubject);
  const mode: ControlMode = driving ? "driving" : !c.following ? "looking" : driver === null ? "nobody" : "following";

  let status =
    mode === "driving" ? strings.syncDriving
    : mode === "looking" ? strings.syncLookingAround(driver)
    : driver === null ? strings.syncNobodyDrives
    : strings.syncFollowing(driver);
  if (state.holder !== null && state.holder !== state.driver) status += ` ${strings.holderReconnecting(subject(state.holder))}`;
  const frameLabel =
    mode === "driving" ? strings.frameYouDrive
    : mode === "looking" ? strings.frameLooking(driver)
    : driver === null ? strings.frameNobody
    : strings.frameDriver(driver);

  const actions: ControlAction[] = [];
  if (mode === "looking") actions.push({ kind: "follow", label: strings.backToView(driver), event: null });
  if (isHost && !driving) {
    const fromSomeone = state.holder !== null && state.holder !== c.me;
    actions.push({ kind: "take", label: fromSomeone ? strings.takeBackControl : strings.takeControl, event: "control:take" });
  }
  if (state.holder !== null && state.holder === c.me) {
    actions.push({ kind: "release", label: strings.releaseControl, event: "control:release" });
  } else if (!isHost && !driving && c.myRole !== "observer") {
    const asked = state.requests.some((r) => r.participant_id === c.me);
    actions.push(asked
      ? { kind: "cancel", label: strings.cancelRequest, event: "control:cancel" }
      : { kind: "request", label: strings.requestControl, event: "control:request" });
  }

  const requests = state.requests
    .filter((r) => r.participant_id === c.me || c.members.some((m) => m.participant_id === r.participant_id))
    .map((r) => ({
      participant_id: r.participant_id,
      text: r.participant_id === c.me ? strings.youAskedForControl : strings.asksForControl(r.name),
      answer: isHost,
    }));

  return { driving, mode, status, frameLabel, notice: noticeText(state.notice, c, subject, (pid) => name(pid, strings.youObject)), actions, requests };
}

function noticeText(notice: Notice | null, c: ControlContext, subject: (pid: string | null) => string, object: (pid: string) => string): string | null {
  if (notice === null) return null;
  switch (notice.kind) {
    case "requested":
      return notice.participant_id === c.me ? strings.youAskedForControl : strings.asksForControl(notice.name);
    case "declined":
      return notice.participant_id === c.me ? strings.yourRequestDeclined : strings.requestDeclined(notice.name);
    case "changed":
      switch (notice.reason) {
        case "given":
          return strings.controlGiven(subject(notice.by), notice.holder === null ? strings.someone : object(notice.holder));
        case "taken":
          return strings.controlTaken(subject(notice.by));
        case "released":
          return strings.controlReleased(subject(notice.by));
        case "left":
          return strings.driverLeft;
        case "reconnecting":
          return strings.driverReconnecting;
        // Someone arriving or a role moving the driver: the status line says who drives.
        case "resumed":
        case "joined":
        case "role_changed":
          return null;
      }
  }
}
