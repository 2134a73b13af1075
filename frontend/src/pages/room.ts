/**
 * The consultation room: join token, room channel, lobby until admitted, then the case
 * viewer (studies and series with thumbnails, the stack viewer) and who is in the room.
 */

import { consultation as getConsultation, joinToken, type Case, type Consultation } from "../api";
import { errorBox, h, replaceChildren } from "../dom";
import type { Page } from "../router";
import { ApiError, SessionExpired, type Session } from "../session";
import { strings } from "../strings";
import { RoomConnection, type Member, type RoomStatus, type Snapshot } from "../room/connection";
import { ViewerSync } from "../room/sync";
import { findStudy, listSeries, thumbnailUrl, type SeriesInfo, type StudyInfo } from "../viewer/dicomweb";
import { parseState, type ViewerState } from "../viewer/state";
import { ViewerStore } from "../viewer/store";
import type { WireViewerState } from "../viewer/wire";
import type { StackViewer } from "../viewer/viewer";
import { topBar } from "./chrome";

const VIEW_KEY = (id: number) => `hoichan.viewer.${id}`;
/** Laser pointer updates at most this often (the room's event rate limit is shared). */
const POINTER_INTERVAL_MS = 125;

function describeApiError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 404) return strings.roomNotFound;
    if (err.code === "too_early") return strings.roomTooEarly;
    if (err.code === "too_late") return strings.roomTooLate;
    return strings.roomError(err.message);
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

/** The viewer state kept per consultation for a reload or a return after signing in again. */
function loadView(id: number): ViewerState | null {
  try {
    return parseState(JSON.parse(sessionStorage.getItem(VIEW_KEY(id)) ?? "null"));
  } catch {
    return null;
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
  let viewer: StackViewer | null = null;
  let store: ViewerStore | null = null;
  let disposed = false;
  let shownKind: RoomStatus["kind"] | null = null;
  const objectUrls: string[] = [];
  const cleanups: (() => void)[] = [];
  let members: Member[] = [];
  let controlHolder: string | null = null;
  let me: string | null = null;
  const memberList = h("ul", { class: "members", "data-testid": "members" });
  let lobby: Member[] = [];
  let isHost = false;
  let myRole = "";
  let sync: ViewerSync | null = null;
  let pendingShared: { seq: number; state: WireViewerState } | null = null;
  let controlRequests: { participant_id: string; name: string }[] = [];
  let controlAsked = false;
  let lastDriver: string | null = null;
  const requestList = h("section", { class: "control-requests", "data-testid": "control-requests" });
  const lobbyList = h("ul", { class: "members lobby-list", "data-testid": "lobby-list" });
  const lobbySection = h("section", { class: "lobby-section", hidden: true }, h("h3", {}, strings.waitingToEnter), lobbyList);

  const showError = (message: string) => {
    replaceChildren(
      body,
      h("div", { class: "room-closed" }, errorBox(message), h("a", { class: "button", href: "/" }, strings.backHome)),
    );
  };

  leaveButton.addEventListener("click", async () => {
    leaveButton.disabled = true;
    await connection?.leave();
    sessionStorage.removeItem(VIEW_KEY(consultationId));
    navigate("/");
  });

  const renderMembers = () => {
    replaceChildren(
      memberList,
      members.map((m) =>
        h(
          "li",
          { class: `member ${m.status}`, "data-participant": m.participant_id },
          h("span", { class: "member-name" }, m.name, m.participant_id === me ? ` (${strings.you})` : ""),
          h("span", { class: "member-hospital" }, strings.hospitalWithTier(m.hospital.name, m.hospital.tier)),
          h(
            "span",
            { class: "member-role" },
            strings.role(m.role),
            m.participant_id === controlHolder ? ` · ${strings.controlHolder}` : "",
            m.status === "reconnecting" ? ` · ${strings.memberReconnecting}` : "",
          ),
        ),
      ),
    );
    renderSyncBar();
    renderRequests();
  };

  const renderLobby = () => {
    lobbySection.hidden = !isHost || lobby.length === 0;
    replaceChildren(
      lobbyList,
      lobby.map((m) => {
        const admit = h("button", { type: "button", class: "primary", "data-testid": "admit" }, strings.admit);
        const item = h(
          "li",
          { class: "member", "data-participant": m.participant_id },
          h("span", { class: "member-name" }, m.name),
          h("span", { class: "member-hospital" }, strings.hospitalWithTier(m.hospital.name, m.hospital.tier)),
          admit,
        );
        admit.addEventListener("click", async () => {
          admit.disabled = true;
          try {
            await connection?.request("lobby:admit", { participant_id: m.participant_id });
          } catch (err) {
            admit.disabled = false;
            item.append(errorBox(strings.admitFailed(err instanceof Error ? err.message : String(err))));
          }
        });
        return item;
      }),
    );
  };

  /** Drives the shared view: holds control; while nobody does, the presenter, or the host
   * when no presenter is connected (the server's rule, docs/signaling.md). */
  const canDrive = () => {
    if (controlHolder !== null) return controlHolder === me;
    if (myRole === "presenter") return true;
    return myRole === "host" &&
      !members.some((m) => m.role === "presenter" && m.status === "connected");
  };

  const control = async (event: string, payload: object = {}) => {
    try {
      await connection?.request(event, payload);
    } catch (err) {
      viewer?.syncBar.append(errorBox(strings.controlFailed(err instanceof Error ? err.message : String(err))));
    }
  };

  const renderSyncBar = () => {
    if (!viewer || !store) return;
    // Who leads: the control holder, else whoever sent the last shared state.
    const leader = members.find((m) => m.participant_id === (controlHolder ?? lastDriver));
    const driving = store.isDriving;
    const text = driving
      ? strings.syncDriving
      : store.following
        ? strings.syncFollowing(leader?.name ?? null)
        : strings.syncLookingAround;
    const buttons: HTMLElement[] = [];
    if (!driving && !store.following) {
      buttons.push(h("button", { type: "button", class: "primary", "data-testid": "follow", onclick: () => store?.follow() }, strings.follow));
    }
    if (controlHolder !== null && controlHolder === me) {
      buttons.push(h("button", { type: "button", "data-testid": "release-control", onclick: () => void control("control:release") }, strings.releaseControl));
    } else if (!canDrive() && myRole !== "observer") {
      const ask = h("button", { type: "button", "data-testid": "request-control", disabled: controlAsked,
        onclick: async () => {
          controlAsked = true;
          renderSyncBar();
          await control("control:request");
        } }, controlAsked ? strings.controlRequested : strings.requestControl);
      buttons.push(ask);
    }
    if (myRole === "host" && controlHolder !== null && controlHolder !== me) {
      buttons.push(h("button", { type: "button", "data-testid": "take-control",
        onclick: () => void control("host:give_control", { participant_id: null }) }, strings.takeBackControl));
    }
    replaceChildren(viewer.syncBar, h("span", { class: "sync-text", "data-testid": "sync-text" }, text), buttons);
    viewer.el.dataset.following = String(store.following);
    viewer.el.dataset.driving = String(driving);
  };

  const renderRequests = () => {
    controlRequests = controlRequests.filter(
      (r) => r.participant_id !== controlHolder && members.some((m) => m.participant_id === r.participant_id),
    );
    replaceChildren(
      requestList,
      controlRequests.map((r) =>
        h(
          "div",
          { class: "control-request", "data-participant": r.participant_id },
          h("span", {}, strings.asksForControl(r.name)),
          h("button", { type: "button", class: "primary", "data-testid": "give-control",
            onclick: () => void control("host:give_control", { participant_id: r.participant_id }) }, strings.giveControl),
        ),
      ),
    );
  };

  const updateDriving = () => {
    sync?.setDriving(canDrive());
    renderSyncBar();
    renderRequests();
  };

  const applySnapshot = (snapshot: Snapshot) => {
    members = snapshot.members;
    controlHolder = snapshot.control_holder;
    me = snapshot.you;
    myRole = members.find((m) => m.participant_id === me)?.role ?? myRole;
    lobby = snapshot.lobby ?? [];
    renderMembers();
    renderLobby();
    if (snapshot.viewer) {
      if (sync) sync.receive(snapshot.viewer.seq, snapshot.viewer.state);
      else pendingShared = snapshot.viewer;
    }
    updateDriving();
  };

  const seriesButton = (series: SeriesInfo): HTMLElement => {
    const img = h("img", { class: "thumb", alt: "", width: 96, height: 96 });
    thumbnailUrl(session, series).then(
      (url) => {
        if (disposed) return URL.revokeObjectURL(url);
        objectUrls.push(url);
        img.src = url;
      },
      () => img.classList.add("thumb-missing"),
    );
    const button = h(
      "button",
      {
        type: "button",
        class: "series",
        "data-testid": "series",
        "data-series-uid": series.seriesUID,
        onclick: () => void openSeries(series),
      },
      img,
      h("span", { class: "series-label" }, strings.seriesLabel(series.number, series.description, series.instanceCount)),
    );
    return button;
  };

  let opening: string | null = null;
  const openSeries = async (series: SeriesInfo) => {
    if (!viewer) return;
    opening = series.seriesUID;
    for (const b of el.querySelectorAll<HTMLElement>("button.series")) {
      b.classList.toggle("active", b.dataset.seriesUid === series.seriesUID);
    }
    try {
      await viewer.open(series);
      viewer.focus();
    } catch (err) {
      if (err instanceof SessionExpired) return;
      // the viewer shows the failure in place
    } finally {
      if (opening === series.seriesUID) opening = null;
    }
  };

  /** The study's block at once, filled when its series are known (the promise). */
  const studyBlock = (studyUID: string, caseItem: Case): [HTMLElement, Promise<SeriesInfo[]>] => {
    const block = h("div", { class: "study", "data-study-uid": studyUID }, strings.loading);
    return [block, fillStudy(block, studyUID, caseItem)];
  };

  const fillStudy = async (block: HTMLElement, studyUID: string, caseItem: Case): Promise<SeriesInfo[]> => {
    try {
      const [study, series] = await Promise.all([findStudy(session, studyUID), listSeries(session, studyUID)]);
      if (!study && series.length === 0) {
        replaceChildren(block, h("p", { class: "muted" }, strings.studyNotAvailable));
        return [];
      }
      replaceChildren(
        block,
        h("h4", {}, studyTitle(study, caseItem)),
        series.length ? h("div", { class: "series-list" }, series.map(seriesButton)) : h("p", { class: "muted" }, strings.noSeries),
      );
      return series;
    } catch (err) {
      if (!(err instanceof SessionExpired)) {
        replaceChildren(block, errorBox(err instanceof ApiError ? strings.serverError(err.message) : strings.networkError));
      }
      return [];
    }
  };

  const showRoom = async (c: Consultation) => {
    store = new ViewerStore();
    const saved = loadView(consultationId);
    // Cornerstone (several MB) is loaded only here, not for the login and home pages.
    let viewerModule: typeof import("../viewer/viewer");
    try {
      viewerModule = await import("../viewer/viewer");
    } catch (err) {
      showError(strings.viewerLoadFailed(err instanceof Error ? err.message : String(err)));
      return;
    }
    if (disposed) return;
    viewer = new viewerModule.StackViewer(session, store);
    const casePanel = h("aside", { class: "case-panel", "data-testid": "case-panel" });
    const roomPanel = h("aside", { class: "room-panel" }, requestList, lobbySection, h("h3", {}, strings.participants), memberList);
    replaceChildren(body, h("div", { class: "room-layout" }, casePanel, viewer.el, roomPanel));

    let saveTimer: number | undefined;
    cleanups.push(
      store.subscribe((state) => {
        window.clearTimeout(saveTimer);
        saveTimer = window.setTimeout(() => sessionStorage.setItem(VIEW_KEY(consultationId), JSON.stringify(state)), 250);
      }),
    );
    const mounted = viewer.mount();

    const studiesListed: Promise<SeriesInfo[]>[] = [];
    for (const caseItem of c.cases) {
      const section = h(
        "section",
        { class: "case" },
        h("h3", {}, strings.caseHeading(strings.personName(caseItem.patient_name), caseItem.patient_id)),
        caseItem.clinical_question
          ? h("p", { class: "question" }, h("strong", {}, strings.clinicalQuestion), " ", caseItem.clinical_question)
          : null,
        h("h4", { class: "studies-title" }, strings.studies),
      );
      casePanel.append(section);
      for (const uid of caseItem.study_instance_uids) {
        const [block, listed] = studyBlock(uid, caseItem);
        section.append(block);
        studiesListed.push(listed);
      }
    }
    const allSeries = (await Promise.all(studiesListed)).flat();
    if (disposed) return;
    try {
      await mounted;
    } catch (err) {
      replaceChildren(viewer.el, errorBox(strings.viewerLoadFailed(err instanceof Error ? err.message : String(err))));
      return;
    }
    if (disposed) return;

    // The room's view: the shared state when there is one (a late joiner or a reload opens
    // there), else this browser's last view, else the first series.
    const liveStore = store;
    const liveViewer = viewer;
    sync = new ViewerSync(liveStore, {
      send: (wire) => {
        if (!connection) return Promise.reject(new Error("not connected"));
        return connection.request<{ seq: number }>("viewer:state", wire);
      },
    }, {
      imageCount: (uid) => liveViewer.imageCount(uid),
      onError: (err) => console.warn("viewer:state", err),
    });
    cleanups.push(() => sync?.dispose(), liveStore.onFollowChange(() => renderSyncBar()));
    if (pendingShared) sync.receive(pendingShared.seq, pendingShared.state);
    pendingShared = null;
    if (!liveStore.shared && saved && allSeries.some((s) => s.seriesUID === saved.seriesUID)) liveStore.replace(saved);
    const find = (uid: string | null) => allSeries.find((s) => s.seriesUID === uid);
    const initial = find(liveStore.state.seriesUID) ?? allSeries[0];
    // Whatever series the shown state names (shared, followed again, or chosen) is opened.
    cleanups.push(
      liveStore.subscribe((state) => {
        if (state.seriesUID && state.seriesUID !== liveViewer.series?.seriesUID && state.seriesUID !== opening) {
          const next = find(state.seriesUID);
          if (next) void openSeries(next);
        }
      }),
    );
    updateDriving();

    // The laser pointer: sent while driving, shown while following.
    let pointerTimer: number | undefined;
    let lastPointer = 0;
    let nextPoint: [number, number] | null = null;
    const sendPointer = () => {
      pointerTimer = undefined;
      lastPointer = Date.now();
      const p = nextPoint;
      void connection?.request("viewer:pointer", p ? { x: p[0], y: p[1] } : {}).catch(() => undefined);
    };
    liveViewer.onPointer((point) => {
      if (!liveStore.isDriving) return;
      nextPoint = point;
      if (point === null) {
        window.clearTimeout(pointerTimer);
        sendPointer();
      } else if (pointerTimer === undefined) {
        pointerTimer = window.setTimeout(sendPointer, Math.max(0, lastPointer + POINTER_INTERVAL_MS - Date.now()));
      }
    });
    cleanups.push(() => window.clearTimeout(pointerTimer));

    if (initial) await openSeries(initial);
  };

  const onStatus = (status: RoomStatus) => {
    if (disposed) return;
    banner.hidden = status.kind !== "reconnecting";
    if (status.kind === "reconnecting" || status.kind === "connecting") return;
    if (status.kind === "closed") {
      if (status.reason !== "left") {
        viewer?.dispose();
        viewer = null;
        showError(closedMessage(status));
      }
      shownKind = "closed";
      return;
    }
    if (status.kind === "lobby") {
      if (shownKind !== "lobby") {
        replaceChildren(
          body,
          h(
            "div",
            { class: "lobby", "data-testid": "lobby" },
            h("h2", {}, strings.lobbyTitle),
            h("p", {}, strings.lobbyWaiting),
          ),
        );
      }
      shownKind = "lobby";
      return;
    }
    applySnapshot(status.snapshot);
    if (shownKind !== "admitted" && current) {
      shownKind = "admitted";
      void showRoom(current);
    }
  };

  const start = async () => {
    try {
      const [c, token] = await Promise.all([
        getConsultation(session, consultationId),
        joinToken(session, consultationId),
      ]);
      if (disposed) return;
      current = c;
      isHost = token.room_role === "host";
      myRole = token.room_role;
      title.textContent = c.title;
      document.title = `${c.title} · ${strings.appName}`;
      connection = new RoomConnection({
        consultationId,
        token: token.token,
        renewToken: async () => (await joinToken(session, consultationId)).token,
      });
      cleanups.push(
        connection.on<{ member: Member }>("presence:join", ({ member }) => {
          members = [...members.filter((m) => m.participant_id !== member.participant_id), member];
          renderMembers();
        }),
        connection.on<{ member: Member }>("presence:update", ({ member }) => {
          members = members.map((m) => (m.participant_id === member.participant_id ? member : m));
          renderMembers();
        }),
        connection.on<{ participant_id: string }>("presence:leave", ({ participant_id }) => {
          members = members.filter((m) => m.participant_id !== participant_id);
          renderMembers();
        }),
        connection.on<{ participant_id: string; role: string }>("role:changed", ({ participant_id, role }) => {
          members = members.map((m) => (m.participant_id === participant_id ? { ...m, role } : m));
          if (participant_id === me) myRole = role;
          renderMembers();
          updateDriving();
        }),
        connection.on<{ seq: number; by: string; state: WireViewerState }>("viewer:state", ({ seq, by, state }) => {
          if (lastDriver !== by) {
            lastDriver = by;
            renderSyncBar();
          }
          if (sync) sync.receive(seq, state);
          else if (!pendingShared || seq > pendingShared.seq) pendingShared = { seq, state };
        }),
        connection.on<{ x: number | null; y: number | null }>("viewer:pointer", ({ x, y }) => {
          if (!store?.following || store.isDriving) return;
          viewer?.showPointer(x === null || y === null ? null : [x, y]);
        }),
        connection.on<{ participant_id: string; name: string }>("control:requested", (r) => {
          controlRequests = [...controlRequests.filter((x) => x.participant_id !== r.participant_id), r];
          renderRequests();
        }),
        connection.on<{ lobby: Member[] }>("lobby:update", (body) => {
          lobby = body.lobby;
          renderLobby();
        }),
        connection.on<{ holder: string | null }>("control:changed", ({ holder }) => {
          controlHolder = holder;
          controlAsked = false;
          renderMembers();
          updateDriving();
        }),
      );
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
      // Going elsewhere in the app leaves the room; a session that expired keeps the place
      // (for the reconnect grace period) while the user signs in again. A reload never
      // gets here: it keeps the place too.
      if (session.isSignedIn()) void connection?.leave();
      else connection?.close("left", "");
      viewer?.dispose();
      for (const url of objectUrls) URL.revokeObjectURL(url);
      document.title = strings.appName;
    },
  };
}

function studyTitle(study: StudyInfo | null, caseItem: Case): string {
  if (!study) return caseItem.patient_id;
  const date = study.date.length === 8 ? `${study.date.slice(0, 4)}-${study.date.slice(4, 6)}-${study.date.slice(6)}` : study.date;
  return [study.description, study.modalities.join("/"), date].filter(Boolean).join(" · ");
}
