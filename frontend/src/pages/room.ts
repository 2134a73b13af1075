/**
 * The consultation room: join token, camera/microphone preview, room channel, lobby until
 * admitted, then the case viewer (room/viewerPanel.ts), the video grid (room/grid.ts, media
 * through the SFU in room/media.ts), who is in the room with the host's controls
 * (room/people.ts), chat (room/chat.ts), raised hands and the record (room/record.ts).
 */

import { consultation as getConsultation, joinToken, type Consultation } from "../api";
import { errorBox, h, replaceChildren } from "../dom";
import type { Page } from "../router";
import { ApiError, SessionExpired, type Session } from "../session";
import { strings } from "../strings";
import { ChatPanel } from "../room/chat";
import { RoomConnection, type Member, type RoomStatus, type Snapshot } from "../room/connection";
import * as control from "../room/control";
import { VideoGrid } from "../room/grid";
import { IceServers } from "../room/ice";
import { MediaSession, errorText } from "../room/media";
import { quality, SpeakingDetector, type ChatMessage, type Forwarding, type ReceiveStats } from "../room/model";
import { PeoplePanel } from "../room/people";
import { RecordPanel, type SavedRecord } from "../room/record";
import { describeMediaError, forgetChoice, openDevices, preview, reopenChoice, saveChoice, watchLevel } from "../room/preview";
import { VIEW_KEY, ViewerPanel } from "../room/viewerPanel";
import type { WireViewerState } from "../viewer/wire";
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
  let members: Member[] = [];
  let controlState: control.ControlState = control.NO_CONTROL;
  let me: string | null = null;
  let lobby: Member[] = [];
  let hands: string[] = [];
  let isHost = false;
  let myRole = "";
  let socketDown = false;
  let mediaDown = false;
  let forwarding: Forwarding | null = null;
  let receiveStats: ReceiveStats | null = null;
  let localStream: MediaStream | null = null;
  let startMic = true;
  let startCamera = true;
  const speakingNow = new SpeakingDetector();
  let stopLevel: () => void = () => undefined;

  const viewerPanel = new ViewerPanel(session, consultationId, () => connection, () => ({ members, control: controlState, me, myRole }));
  const people = new PeoplePanel(() => connection);
  const chat = new ChatPanel(() => connection);
  const record = new RecordPanel(session, consultationId);
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
    const level = quality(receiveStats, forwarding?.link_state ?? null);
    qualityEl.dataset.level = level;
    replaceChildren(qualityEl, h("span", { class: "quality-dot" }), ` ${strings.qualityLabel}: ${strings.quality(level)}`);
  };

  const renderToolbar = () => {
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
        onclick: () => void request(raised ? "hand:lower" : "hand:raise") }, raised ? strings.lowerHand : strings.raiseHand),
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

  const request = async (event: string, payload: object = {}) => {
    try {
      await connection?.request(event, payload);
    } catch (err) {
      showMediaError(errorText(err));
    }
  };

  const renderPeople = () => {
    people.render({ members, lobby, me, isHost, holder: controlState.holder, driver: controlState.driver, hands });
    renderGrid();
  };

  const renderAll = () => {
    renderPeople();
    renderToolbar();
    viewerPanel.update();
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

  const applySnapshot = (snapshot: Snapshot) => {
    members = snapshot.members;
    controlState = control.fromSnapshot(controlState, snapshot);
    me = snapshot.you;
    myRole = members.find((m) => m.participant_id === me)?.role ?? myRole;
    lobby = snapshot.lobby ?? [];
    hands = snapshot.hands ?? [];
    chat.setHistory((snapshot.chat ?? []) as ChatMessage[], me);
    if (snapshot.viewer) viewerPanel.receive(snapshot.viewer.seq, snapshot.viewer.state);
    renderAll();
  };

  const showRoom = (c: Consultation) => {
    const casePanel = h("aside", { class: "case-panel", "data-testid": "case-panel" });
    const viewerHost = h("div", { class: "viewer-host" });
    const roomPanel = h("aside", { class: "room-panel" }, toolbar, mediaStatus, grid.el, viewerPanel.requestList, people.el, record.el, chat.el);
    replaceChildren(body, h("div", { class: "room-layout" }, casePanel, viewerHost, roomPanel));
    void viewerPanel.show(c, casePanel, viewerHost, showError);
    record.setHost(isHost);
    void record.load();
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
    applySnapshot(status.snapshot);
    if (shownKind !== "admitted" && current) {
      shownKind = "admitted";
      // Media first: its peer connections then negotiate while the viewer loads its code
      // and the first images, which hold the page's thread for a while.
      startMedia();
      showRoom(current);
    }
  };

  const listen = (conn: RoomConnection) => {
    cleanups.push(
      conn.on<{ member: Member }>("presence:join", ({ member }) => {
        members = [...members.filter((m) => m.participant_id !== member.participant_id), member];
        renderPeople();
        viewerPanel.update();
      }),
      conn.on<{ member: Member }>("presence:update", ({ member }) => {
        members = members.map((m) => (m.participant_id === member.participant_id ? member : m));
        renderPeople();
        viewerPanel.update();
      }),
      conn.on<{ participant_id: string }>("presence:leave", ({ participant_id }) => {
        members = members.filter((m) => m.participant_id !== participant_id);
        hands = hands.filter((p) => p !== participant_id);
        renderPeople();
        viewerPanel.update();
      }),
      conn.on<{ participant_id: string; role: string }>("role:changed", ({ participant_id, role }) => {
        members = members.map((m) => (m.participant_id === participant_id ? { ...m, role } : m));
        if (participant_id === me) myRole = role;
        renderAll();
      }),
      conn.on<{ seq: number; state: WireViewerState }>("viewer:state", ({ seq, state }) => viewerPanel.receive(seq, state)),
      conn.on<{ x: number | null; y: number | null }>("viewer:pointer", ({ x, y }) => viewerPanel.pointer(x, y)),
      conn.on<control.ControlRequest>("control:requested", (r) => {
        controlState = control.requested(controlState, r);
        viewerPanel.update();
      }),
      conn.on<control.RequestWithdrawn>("control:request_cancelled", (w) => {
        controlState = control.withdrawn(controlState, w);
        viewerPanel.update();
      }),
      conn.on<{ lobby: Member[] }>("lobby:update", (b) => {
        lobby = b.lobby;
        renderPeople();
      }),
      conn.on<control.ControlChanged>("control:changed", (e) => {
        controlState = control.changed(controlState, e);
        renderPeople();
        viewerPanel.update();
      }),
      conn.on<{ hands: string[] }>("hands:update", (b) => {
        hands = b.hands;
        renderPeople();
        renderToolbar();
      }),
      conn.on<ChatMessage>("chat:message", (m) => chat.receive(m)),
      conn.on<SavedRecord>("record:saved", (r) => record.receive(r)),
      conn.on<{ audio: boolean; video: boolean }>("mute:requested", ({ audio, video }) => {
        if (audio) media?.setMic(false);
        if (video) media?.setCamera(false);
        replaceChildren(mediaStatus, h("div", { class: "notice", role: "status", "data-testid": "mute-notice" },
          [audio ? strings.mutedByHost : null, video ? strings.cameraOffByHost : null].filter(Boolean).join(" ")));
      }),
      conn.on<Forwarding>("media:forwarding", (f) => {
        forwarding = f;
        renderQuality();
        renderGrid();
      }),
      conn.on<{ participants: Record<string, { receive?: ReceiveStats | null }> }>("stats", (s) => {
        receiveStats = (me && s.participants?.[me]?.receive) || null;
        renderQuality();
      }),
    );
  };

  const start = async () => {
    try {
      const [c, token] = await Promise.all([getConsultation(session, consultationId), joinToken(session, consultationId)]);
      if (disposed) return;
      current = c;
      iceServers.set(token.ice_servers);
      isHost = token.room_role === "host";
      myRole = token.room_role;
      title.textContent = c.title;
      document.title = `${c.title} · ${strings.appName}`;
      // Camera and microphone first (observers neither send nor preview).
      if (myRole !== "observer") {
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
      listen(connection);
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
