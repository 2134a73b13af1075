/**
 * The consultation room: join token, camera/microphone preview, room channel, lobby until
 * admitted, then the case viewer (room/viewerPanel.ts), the video grid (room/grid.ts, media
 * through the SFU in room/media.ts), who is in the room with the host's controls
 * (room/people.ts), chat (room/chat.ts), raised hands, the record (room/record.ts) and the minutes (room/minutes.ts). What
 * the room channel's events change is room/controller.ts's; this page builds and renders.
 */

import { consultation as getConsultation, joinToken, type Consultation } from "../api";
import { errorBox, h, replaceChildren } from "../dom";
import type { Page } from "../router";
import { ApiError, SessionExpired, type Session } from "../session";
import { strings } from "../strings";
import { ChatPanel } from "../room/chat";
import { ConsentPanel } from "../room/consent";
import { RoomConnection, type RoomStatus } from "../room/connection";
import { RoomController } from "../room/controller";
import { VideoGrid } from "../room/grid";
import { IceServers } from "../room/ice";
import { MediaSession, errorText } from "../room/media";
import { quality, SpeakingDetector } from "../room/model";
import { MinutesPanel } from "../room/minutes";
import { PeoplePanel } from "../room/people";
import { RecordPanel } from "../room/record";
import { describeMediaError, forgetChoice, openDevices, preview, reopenChoice, saveChoice, watchLevel } from "../room/preview";
import { VIEW_KEY, ViewerPanel } from "../room/viewerPanel";
import { topBar } from "./chrome";

function describeApiError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 404) return strings.roomNotFound;
    if (err.code === "too_early") return strings.roomTooEarly;
    if (err.code === "too_late") return strings.roomTooLate;
    return strings.roomError(strings.apiError(err.code, err.message));
  }
  return strings.networkError;
}

function closedMessage(status: Extract<RoomStatus, { kind: "closed" }>): string {
  switch (status.reason) {
    case "denied":
      return strings.roomDenied;
    case "removed":
      return strings.roomRemoved(status.message);
    case "replaced":
      return strings.roomReplaced;
    case "ended":
      return strings.roomEnded;
    case "refused":
      return status.code === "room_closed" ? strings.roomClosed : strings.roomError(status.message);
    default:
      return strings.roomError(status.message);
  }
}

export function roomPage(
  session: Session,
  consultationId: number,
  signOut: () => void,
  navigate: (path: string) => void,
): Page {
  const body = h("main", { class: "room-body" }, h("p", { class: "room-wait" }, strings.roomJoining));
  const banner = h("div", { class: "banner", role: "status", hidden: true, "data-testid": "reconnecting" }, strings.reconnecting);
  const title = h("span", { class: "room-title" });
  const leaveButton = h("button", { type: "button", class: "danger", "data-testid": "leave" }, strings.leave);
  const el = h("div", { class: "page room-page" }, topBar(session, signOut, title, leaveButton), banner, body);

  let current: Consultation | null = null;
  let connection: RoomConnection | null = null;
  let media: MediaSession | null = null;
  /** A new join token; its TURN servers are the ones new peer connections take. */
  const renewJoinToken = async (): Promise<string> => {
    const token = await joinToken(session, consultationId);
    iceServers.set(token.ice_servers);
    return token.token;
  };
  const iceServers = new IceServers(renewJoinToken);
  let disposed = false;
  let shownKind: RoomStatus["kind"] | null = null;
  const cleanups: (() => void)[] = [];
  let socketDown = false;
  let mediaDown = false;
  let localStream: MediaStream | null = null;
  let startMic = true;
  let startCamera = true;
  const speakingNow = new SpeakingDetector();
  let stopLevel: () => void = () => undefined;

  const room = new RoomController({
    people: () => {
      renderPeople();
      renderMinutesViewer();
    },
    toolbar: () => renderToolbar(),
    viewer: () => viewerPanel.update(),
    grid: () => renderGrid(),
    quality: () => renderQuality(),
    viewerState: (seq, state) => viewerPanel.receive(seq, state),
    pointer: (x, y) => viewerPanel.pointer(x, y),
    chat: (m) => chat.receive(m),
    chatHistory: (messages, me) => chat.setHistory(messages, me),
    record: (r) => record.receive(r),
    minutes: (m) => minutes.receive(m),
    consent: (c) => consents.get(c.case_id)?.receive(c),
    muted: (audio, video) => {
      if (audio) media?.setMic(false);
      if (video) media?.setCamera(false);
      replaceChildren(mediaStatus, h("div", { class: "notice", role: "status", "data-testid": "mute-notice" },
        [audio ? strings.mutedByHost : null, video ? strings.cameraOffByHost : null].filter(Boolean).join(" ")));
    },
    requestFailed: (err) => showMediaError(errorText(err)),
  });
  const consents = new Map<number, ConsentPanel>();
  const viewerPanel = new ViewerPanel(session, consultationId, () => connection, () => {
    const { members, control, me, myRole } = room.state;
    return { members, control, me, myRole };
  }, (caseItem) => {
    const panel = new ConsentPanel({ session, consultationId, caseId: caseItem.id });
    consents.set(caseItem.id, panel);
    void panel.load();
    return panel.el;
  });
  const people = new PeoplePanel(() => connection);
  const chat = new ChatPanel(() => connection);
  const record = new RecordPanel(session, consultationId);
  // The secretary is named from the room's participants (not observers, not the chair).
  const minutes = new MinutesPanel({
    session,
    consultationId,
    candidates: () => {
      const seen = new Map<number, string>();
      for (const m of room.state.members) {
        if (m.role !== "observer" && m.role !== "host" && !seen.has(m.user_id)) seen.set(m.user_id, m.name);
      }
      return [...seen].map(([user_id, name]) => ({ user_id, name }));
    },
    keyImage: () => viewerPanel.viewer?.keyImage() ?? null,
  });
  const grid = new VideoGrid();
  const toolbar = h("div", { class: "media-bar", "data-testid": "media-bar" });
  const mediaStatus = h("div", { class: "media-status", "data-testid": "media-status" });
  const qualityEl = h("span", { class: "quality", "data-testid": "quality", "data-level": "unknown" });

  const showError = (message: string) => {
    viewerPanel.dispose();
    replaceChildren(body, h("div", { class: "room-closed" }, errorBox(message), h("a", { class: "button", href: "/" }, strings.backHome)));
  };
  const showMediaError = (message: string) => replaceChildren(mediaStatus, errorBox(strings.mediaError(message)));

  leaveButton.addEventListener("click", async () => {
    leaveButton.disabled = true;
    media?.close();
    await connection?.leave();
    sessionStorage.removeItem(VIEW_KEY(consultationId));
    forgetChoice(consultationId);
    navigate("/");
  });

  const updateBanner = () => {
    banner.hidden = !socketDown && !mediaDown;
    banner.textContent = socketDown ? strings.reconnecting : strings.mediaReconnecting;
  };

  const renderGrid = () => {
    const { members, me, hands, forwarding } = room.state;
    const paused = new Set((forwarding?.paused ?? []).map((v) => (v.screen_share ? `${v.publisher_id}:screen` : v.publisher_id)));
    const screens = media?.screens() ?? [];
    if (media?.state.screen && me) screens.unshift(me);
    grid.render({
      members,
      me,
      hands,
      paused,
      screens,
      video: (pid, screen) => {
        if (pid === me) return screen ? (media?.screenStreamLocal ?? null) : media?.publishing ? media.local : null;
        return media?.video(pid, screen) ?? null;
      },
      audio: (pid) => media?.audio(pid) ?? null,
      speaking: (pid) => pid === me && speakingNow.value && !!media?.state.mic,
    });
  };

  const renderQuality = () => {
    const level = quality(room.state.receiveStats, room.state.forwarding?.link_state ?? null);
    qualityEl.dataset.level = level;
    replaceChildren(qualityEl, h("span", { class: "quality-dot" }), ` ${strings.qualityLabel}: ${strings.quality(level)}`);
  };

  const renderToolbar = () => {
    const { me, myRole, hands } = room.state;
    const buttons: HTMLElement[] = [];
    const canPublish = myRole !== "observer";
    if (canPublish && media?.publishing) {
      const s = media.state;
      buttons.push(
        h("button", { type: "button", "data-testid": "toggle-mic", "aria-pressed": String(!s.mic), onclick: () => media?.setMic(!s.mic) }, s.mic ? strings.micOn : strings.micOff),
        h("button", { type: "button", "data-testid": "toggle-camera", "aria-pressed": String(!s.camera), onclick: () => media?.setCamera(!s.camera) }, s.camera ? strings.cameraOn : strings.cameraOff),
        h("button", {
          type: "button", "data-testid": "toggle-screen", "aria-pressed": String(s.screen),
          onclick: async () => {
            replaceChildren(mediaStatus);
            try {
              if (media?.state.screen) await media.stopScreen();
              else await media?.startScreen();
            } catch (err) {
              replaceChildren(mediaStatus, errorBox(strings.screenShareFailed(errorText(err))));
            }
          },
        }, s.screen ? strings.stopSharing : strings.shareScreen),
      );
    } else if (canPublish && media) {
      buttons.push(h("button", { type: "button", "data-testid": "start-media", onclick: () => void startDevices() }, strings.startMedia));
    }
    const raised = me !== null && hands.includes(me);
    buttons.push(
      h("button", { type: "button", "data-testid": "toggle-hand", "aria-pressed": String(raised),
        onclick: () => void room.request(raised ? "hand:lower" : "hand:raise") }, raised ? strings.lowerHand : strings.raiseHand),
    );
    replaceChildren(toolbar, buttons, qualityEl);
    renderQuality();
  };

  /** A participant who joined without devices (or was made one from observer) turns them on. */
  const startDevices = async () => {
    try {
      localStream = await openDevices(null, null);
      if (!media) return;
      media.local = localStream;
      media.state.mic = media.state.camera = true;
      watchSpeaking();
      await media.restart();
    } catch (err) {
      replaceChildren(mediaStatus, errorBox(describeMediaError(err)));
    }
  };

  const renderMinutesViewer = () => {
    minutes.setViewer({ userId: session.user?.id ?? null, isChair: room.state.isHost });
    minutes.candidatesChanged();
  };

  const renderPeople = () => {
    const { members, lobby, me, isHost, control, hands } = room.state;
    people.render({ members, lobby, me, isHost, holder: control.holder, driver: control.driver, hands });
    renderGrid();
  };

  const watchSpeaking = () => {
    stopLevel();
    stopLevel = localStream
      ? watchLevel(localStream, (level) => {
          if (speakingNow.sample(level, performance.now())) {
            media?.setSpeaking(speakingNow.value);
            renderGrid();
          }
        })
      : () => undefined;
  };

  const startMedia = () => {
    if (media || !connection) return;
    const { myRole } = room.state;
    media = new MediaSession(connection, myRole === "observer" ? null : localStream, myRole !== "observer", {
      onRemote: () => renderGrid(),
      onLocal: () => {
        renderToolbar();
        renderGrid();
      },
      onError: (message) => showMediaError(message),
      onConnection: (pub, sub) => {
        mediaDown = [pub, sub].some((s) => s === "disconnected" || s === "failed");
        updateBanner();
      },
    }, () => iceServers.current());
    if (localStream) {
      media.setMic(startMic);
      media.setCamera(startCamera);
    }
    watchSpeaking();
    renderToolbar();
    void media.restart();
  };

  const showRoom = (c: Consultation) => {
    const casePanel = h("aside", { class: "case-panel", "data-testid": "case-panel" });
    const viewerHost = h("div", { class: "viewer-host" });
    const roomPanel = h("aside", { class: "room-panel" }, toolbar, mediaStatus, grid.el, viewerPanel.requestList, people.el, minutes.el, record.el, chat.el);
    replaceChildren(body, h("div", { class: "room-layout" }, casePanel, viewerHost, roomPanel));
    void viewerPanel.show(c, casePanel, viewerHost, showError);
    record.setHost(room.state.isHost);
    void record.load();
    renderMinutesViewer();
  };

  const onStatus = (status: RoomStatus) => {
    if (disposed) return;
    socketDown = status.kind === "reconnecting";
    updateBanner();
    if (status.kind === "reconnecting" || status.kind === "connecting") return;
    if (status.kind === "closed") {
      media?.close();
      media = null;
      stopLevel();
      if (status.reason !== "left") {
        forgetChoice(consultationId);
        showError(closedMessage(status));
      }
      shownKind = "closed";
      return;
    }
    if (status.kind === "lobby") {
      if (shownKind !== "lobby") {
        replaceChildren(body, h("div", { class: "lobby", "data-testid": "lobby" }, h("h2", {}, strings.lobbyTitle), h("p", {}, strings.lobbyWaiting)));
      }
      shownKind = "lobby";
      return;
    }
    room.applySnapshot(status.snapshot);
    if (shownKind !== "admitted" && current) {
      shownKind = "admitted";
      // Media first: its peer connections then negotiate while the viewer loads its code
      // and the first images, which hold the page's thread for a while.
      startMedia();
      showRoom(current);
    }
  };

  const start = async () => {
    try {
      const [c, token] = await Promise.all([getConsultation(session, consultationId), joinToken(session, consultationId)]);
      if (disposed) return;
      current = c;
      iceServers.set(token.ice_servers);
      room.joined(token.room_role);
      title.textContent = c.title;
      document.title = `${c.title} · ${strings.appName}`;
      // Camera and microphone first (observers neither send nor preview).
      if (room.state.myRole !== "observer") {
        let chosen = await reopenChoice(consultationId);
        if (!chosen) {
          chosen = await preview(body, c.title);
          saveChoice(consultationId, chosen);
        }
        if (disposed) {
          for (const t of chosen.stream?.getTracks() ?? []) t.stop();
          return;
        }
        localStream = chosen.stream;
        startMic = chosen.mic;
        startCamera = chosen.camera;
        replaceChildren(body, h("p", { class: "room-wait" }, strings.roomJoining));
      }
      connection = new RoomConnection({
        consultationId,
        token: token.token,
        renewToken: renewJoinToken,
      });
      room.listen(connection);
      cleanups.push(connection.onStatus(onStatus));
      connection.connect();
    } catch (err) {
      if (err instanceof SessionExpired || disposed) return;
      showError(describeApiError(err));
    }
  };
  void start();

  return {
    el,
    dispose() {
      disposed = true;
      room.dispose();
      for (const cleanup of cleanups) cleanup();
      stopLevel();
      media?.close();
      for (const t of localStream?.getTracks() ?? []) t.stop();
      // Going elsewhere in the app leaves the room; a session that expired keeps the place
      // (for the reconnect grace period) while the user signs in again. A reload never
      // gets here: it keeps the place too.
      if (session.isSignedIn()) void connection?.leave();
      else connection?.close("left", "");
      viewerPanel.dispose();
      grid.dispose();
      document.title = strings.appName;
    },
  };
}
