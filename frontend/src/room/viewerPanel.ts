/**
 * The case and the shared viewer inside the room: studies and series with thumbnails, the
 * stack viewer in a frame that says who drives, the sync bar (who drives in words, back to
 * following, take / request / release control), the requests for control and the laser
 * pointer. What it offers comes from room/control.ts, from what the server says.
 */

import type { Case, Consultation } from "../api";
import { errorBox, h, replaceChildren } from "../dom";
import { ApiError, SessionExpired, type Session } from "../session";
import { strings } from "../strings";
import {
  DOCUMENT_MODALITIES, findStudy, listSeries, loadKeyObjects, thumbnailUrl, type SeriesInfo, type StudyInfo,
} from "../viewer/dicomweb";
import { parseState, type ViewerState } from "../viewer/state";
import { ViewerStore } from "../viewer/store";
import type { StackViewer } from "../viewer/viewer";
import type { ViewerStateIn } from "../wire/protocol";
import type { Member, RoomConnection } from "./connection";
import { controlView, type ControlAction, type ControlState, type ControlView } from "./control";
import { ViewerSync } from "./sync";

export const VIEW_KEY = (id: number) => `hoichan.viewer.${id}`;
/** Laser pointer updates at most this often (the room's event rate limit is shared). */
const POINTER_INTERVAL_MS = 125;

/** The viewer state kept per consultation for a reload or a return after signing in again. */
function loadView(id: number): ViewerState | null {
  try {
    return parseState(JSON.parse(sessionStorage.getItem(VIEW_KEY(id)) ?? "null"));
  } catch {
    return null;
  }
}

export interface RoomView {
  members: Member[];
  control: ControlState;
  me: string | null;
  myRole: string;
}

export class ViewerPanel {
  readonly requestList = h("section", { class: "control-requests", "data-testid": "control-requests" });
  private readonly frameLabel = h("span", { class: "viewer-frame-label", "data-testid": "frame-label" });
  private readonly notice = h("span", { class: "viewer-frame-notice", role: "status", "data-testid": "control-notice" });
  /** Around the viewer: coloured by who drives, with the driver's name on it. */
  private readonly frame = h("div", { class: "viewer-frame", "data-testid": "viewer-frame", "data-control": "nobody" },
    h("div", { class: "viewer-frame-bar" }, this.frameLabel, this.notice));
  viewer: StackViewer | null = null;
  private store: ViewerStore | null = null;
  private sync: ViewerSync | null = null;
  private pendingShared: { seq: number; state: ViewerStateIn } | null = null;
  private opening: string | null = null;
  private disposed = false;
  private readonly objectUrls: string[] = [];
  private readonly cleanups: (() => void)[] = [];
  private root: HTMLElement | null = null;

  constructor(
    private readonly session: Session,
    private readonly consultationId: number,
    private readonly connection: () => RoomConnection | null,
    private readonly room: () => RoomView,
    /** What the room shows under a case's heading besides its studies (its consents). */
    private readonly caseDetails: (caseItem: Case) => HTMLElement | null = () => null,
  ) {}

  private view(): ControlView {
    const { control, me, myRole, members } = this.room();
    return controlView(control, { me, myRole, members, following: this.store?.following ?? true });
  }

  private async control(event: string, payload: object = {}): Promise<void> {
    try {
      await this.connection()?.request(event, payload);
    } catch (err) {
      this.viewer?.syncBar.append(errorBox(strings.controlFailed(err instanceof Error ? err.message : String(err))));
    }
  }

  private renderSyncBar(view: ControlView): void {
    const { viewer, store } = this;
    if (!viewer || !store) return;
    const buttons = view.actions.map((a) =>
      h("button", {
        type: "button", class: a.kind === "follow" || a.kind === "take" ? "primary" : null, "data-testid": ACTION_TEST_IDS[a.kind],
        onclick: () => (a.event === null ? store.follow() : void this.control(a.event)),
      }, a.label),
    );
    replaceChildren(viewer.syncBar, h("span", { class: "sync-text", "data-testid": "sync-text" }, view.status), buttons);
    viewer.el.dataset.following = String(store.following);
    viewer.el.dataset.driving = String(view.driving);
  }

  private renderFrame(view: ControlView): void {
    this.frame.dataset.control = view.mode;
    this.frameLabel.textContent = view.frameLabel;
    this.notice.textContent = view.notice ?? "";
  }

  private renderRequests(view: ControlView): void {
    replaceChildren(
      this.requestList,
      view.requests.map((r) =>
        h("div", { class: "control-request", "data-participant": r.participant_id },
          h("span", {}, r.text),
          r.answer
            ? h("span", { class: "control-request-answer" },
                h("button", { type: "button", class: "primary", "data-testid": "give-control", onclick: () => void this.control("host:give_control", { participant_id: r.participant_id }) }, strings.giveControl),
                h("button", { type: "button", "data-testid": "decline-control", onclick: () => void this.control("control:deny", { participant_id: r.participant_id }) }, strings.declineControl))
            : null),
      ),
    );
  }

  /** Roles, members, control or following changed: drive or follow as the server says. */
  update(): void {
    // Becoming the driver also ends looking around: the view is read again after that.
    this.sync?.setDriving(this.view().driving);
    const view = this.view();
    this.renderSyncBar(view);
    this.renderFrame(view);
    this.renderRequests(view);
  }

  /** A shared state (`viewer:state`, or the snapshot's `viewer`). */
  receive(seq: number, state: ViewerStateIn): void {
    if (this.sync) this.sync.receive(seq, state);
    else if (!this.pendingShared || seq > this.pendingShared.seq) this.pendingShared = { seq, state };
  }

  pointer(x: number | null, y: number | null): void {
    if (!this.store?.following || this.store.isDriving) return;
    this.viewer?.showPointer(x === null || y === null ? null : [x, y]);
  }

  /** Builds the case panel and the viewer into `casePanel` / `viewerHost`. */
  async show(c: Consultation, casePanel: HTMLElement, viewerHost: HTMLElement, onFail: (message: string) => void): Promise<void> {
    const store = (this.store = new ViewerStore());
    const saved = loadView(this.consultationId);
    // Cornerstone (several MB) is loaded only here, not for the login and home pages.
    let viewerModule: typeof import("../viewer/viewer");
    try {
      viewerModule = await import("../viewer/viewer");
    } catch (err) {
      onFail(strings.viewerLoadFailed(err instanceof Error ? err.message : String(err)));
      return;
    }
    if (this.disposed) return;
    const viewer = (this.viewer = new viewerModule.StackViewer(this.session, store));
    this.root = casePanel;
    this.frame.append(viewer.el);
    replaceChildren(viewerHost, this.frame);

    let saveTimer: number | undefined;
    this.cleanups.push(
      store.subscribe((state) => {
        window.clearTimeout(saveTimer);
        saveTimer = window.setTimeout(() => sessionStorage.setItem(VIEW_KEY(this.consultationId), JSON.stringify(state)), 250);
      }),
    );
    const mounted = viewer.mount();

    const studiesListed: Promise<SeriesInfo[]>[] = [];
    for (const caseItem of c.cases) {
      const section = h(
        "section",
        { class: "case" },
        h("h3", {}, strings.caseHeading(strings.personName(caseItem.patient_name), caseItem.patient_id)),
        caseItem.clinical_question ? h("p", { class: "question" }, h("strong", {}, strings.clinicalQuestion), " ", caseItem.clinical_question) : null,
        this.caseDetails(caseItem),
        h("h4", { class: "studies-title" }, strings.studies),
      );
      casePanel.append(section);
      for (const uid of caseItem.study_instance_uids) {
        const block = h("div", { class: "study", "data-study-uid": uid }, strings.loading);
        section.append(block);
        studiesListed.push(this.fillStudy(block, uid, caseItem));
      }
    }
    const allSeries = (await Promise.all(studiesListed)).flat();
    if (this.disposed) return;
    try {
      await mounted;
    } catch (err) {
      replaceChildren(viewer.el, errorBox(strings.viewerLoadFailed(err instanceof Error ? err.message : String(err))));
      return;
    }
    if (this.disposed) return;

    // The room's view: the shared state when there is one (a late joiner or a reload opens
    // there), else this browser's last view, else the first series.
    const sync = (this.sync = new ViewerSync(
      store,
      {
        send: (wire) => {
          const connection = this.connection();
          if (!connection) return Promise.reject(new Error("not connected"));
          return connection.request<{ seq: number }>("viewer:state", wire);
        },
      },
      { imageCount: (uid) => viewer.imageCount(uid), images: (uid) => viewer.imageRefs(uid), onError: (err) => console.warn("viewer:state", err) },
    ));
    this.cleanups.push(() => sync.dispose(), store.onFollowChange(() => this.update()));
    if (this.pendingShared) sync.receive(this.pendingShared.seq, this.pendingShared.state);
    this.pendingShared = null;
    if (!store.shared && saved && allSeries.some((s) => s.seriesUID === saved.seriesUID)) store.replace(saved);
    // Every series of the case may be opened beside the first (a prior study to compare).
    viewer.setCatalog(allSeries);
    const find = (uid: string | null) => allSeries.find((s) => s.seriesUID === uid);
    const initial = find(store.state.seriesUID) ?? allSeries[0];
    // Whatever series the shown state names (shared, followed again, or chosen) is opened.
    this.cleanups.push(
      store.subscribe((state) => {
        if (state.seriesUID && state.seriesUID !== viewer.series?.seriesUID && state.seriesUID !== this.opening) {
          const next = find(state.seriesUID);
          if (next) void this.openSeries(next);
        }
      }),
    );
    this.update();

    // The laser pointer: sent while driving, shown while following.
    let pointerTimer: number | undefined;
    let lastPointer = 0;
    let nextPoint: [number, number] | null = null;
    const sendPointer = () => {
      pointerTimer = undefined;
      lastPointer = Date.now();
      const p = nextPoint;
      void this.connection()?.request("viewer:pointer", p ? { x: p[0], y: p[1] } : {}).catch(() => undefined);
    };
    viewer.onPointer((point) => {
      if (!store.isDriving) return;
      nextPoint = point;
      if (point === null) {
        window.clearTimeout(pointerTimer);
        sendPointer();
      } else if (pointerTimer === undefined) {
        pointerTimer = window.setTimeout(sendPointer, Math.max(0, lastPointer + POINTER_INTERVAL_MS - Date.now()));
      }
    });
    this.cleanups.push(() => window.clearTimeout(pointerTimer));

    if (initial) await this.openSeries(initial);
  }

  private seriesButton(series: SeriesInfo): HTMLElement {
    const img = h("img", { class: "thumb", alt: "", width: 96, height: 96 });
    thumbnailUrl(this.session, series).then(
      (url) => {
        if (this.disposed) return URL.revokeObjectURL(url);
        this.objectUrls.push(url);
        img.src = url;
      },
      () => img.classList.add("thumb-missing"),
    );
    return h(
      "button",
      { type: "button", class: "series", "data-testid": "series", "data-series-uid": series.seriesUID, onclick: () => void this.openSeries(series) },
      img,
      h("span", { class: "series-label" }, strings.seriesLabel(series.number, series.description, series.instanceCount)),
    );
  }

  private async openSeries(series: SeriesInfo, sopUID?: string): Promise<void> {
    if (!this.viewer) return;
    this.opening = series.seriesUID;
    for (const b of this.root?.querySelectorAll<HTMLElement>("button.series") ?? []) {
      b.classList.toggle("active", b.dataset.seriesUid === series.seriesUID);
    }
    try {
      await this.viewer.open(series);
      if (sopUID) this.viewer.showInstance(sopUID);
      this.viewer.focus();
    } catch (err) {
      if (err instanceof SessionExpired) return;
      // the viewer shows the failure in place
    } finally {
      if (this.opening === series.seriesUID) this.opening = null;
    }
  }

  private async fillStudy(block: HTMLElement, studyUID: string, caseItem: Case): Promise<SeriesInfo[]> {
    try {
      const [study, series] = await Promise.all([findStudy(this.session, studyUID), listSeries(this.session, studyUID)]);
      if (!study && series.length === 0) {
        replaceChildren(block, h("p", { class: "muted" }, strings.studyNotAvailable));
        return [];
      }
      const images = series.filter((s) => !DOCUMENT_MODALITIES.has(s.modality.toUpperCase()));
      const keys = h("div", { class: "key-images", "data-testid": "key-images" });
      replaceChildren(
        block,
        h("h4", {}, studyTitle(study, caseItem)),
        images.length ? h("div", { class: "series-list" }, images.map((s) => this.seriesButton(s))) : h("p", { class: "muted" }, strings.noSeries),
        keys,
      );
      void this.fillKeyImages(keys, images, series.filter((s) => s.modality.toUpperCase() === "KO"));
      return images;
    } catch (err) {
      if (!(err instanceof SessionExpired)) {
        replaceChildren(block, errorBox(err instanceof ApiError ? strings.apiError(err.code, err.message) : strings.networkError));
      }
      return [];
    }
  }

  /** The signed minutes' key images (their KO documents), each a button opening its image. */
  private async fillKeyImages(block: HTMLElement, images: SeriesInfo[], documents: SeriesInfo[]): Promise<void> {
    if (!documents.length) return;
    try {
      const refs = (await Promise.all(documents.map((d) => loadKeyObjects(this.session, d)))).flat();
      const buttons = refs.flatMap((ref, i) => {
        const series = images.find((s) => s.seriesUID === ref.seriesUID);
        return series ? [h("button", {
          type: "button", class: "link", "data-testid": "key-image",
          onclick: () => void this.openSeries(series, ref.sopUID),
        }, strings.minutesKeyImage(i + 1, 0))] : [];
      });
      if (buttons.length) replaceChildren(block, h("span", {}, strings.minutesKeyImages, ": "), ...buttons);
    } catch {
      // The key images are a shortcut: the series themselves are listed above.
    }
  }

  dispose(): void {
    this.disposed = true;
    for (const cleanup of this.cleanups) cleanup();
    this.viewer?.dispose();
    this.viewer = null;
    for (const url of this.objectUrls) URL.revokeObjectURL(url);
  }
}

const ACTION_TEST_IDS: Record<ControlAction["kind"], string> = {
  follow: "follow",
  take: "take-control",
  release: "release-control",
  request: "request-control",
  cancel: "cancel-request",
};

function studyTitle(study: StudyInfo | null, caseItem: Case): string {
  if (!study) return caseItem.patient_id;
  const date = study.date.length === 8 ? `${study.date.slice(0, 4)}-${study.date.slice(4, 6)}-${study.date.slice(6)}` : study.date;
  return [study.description, study.modalities.join("/"), date].filter(Boolean).join(" · ");
}
