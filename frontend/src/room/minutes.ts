/**
 * The consultation minutes (biên bản hội chẩn, docs/api.md "Minutes"): every member sees the
 * latest version as the server has it (GET on opening, `minutes:updated` after each saved
 * change); the chair (the room's host) and the secretary the chair names write the draft,
 * saving with the revision they loaded, and each signs it; a signed version is read-only and
 * the chair amends it as a new version. Older versions open read-only; the PDF downloads in
 * the UI's language. The room uses it as a panel; pages/minutes.ts shows it on its own.
 */

import { errorBox, h, replaceChildren } from "../dom";
import { dateTime } from "../format";
import { ApiError, type Session } from "../session";
import { language, strings } from "../strings";
import { breakGlassForm } from "./breakGlass";
import type { KeyImageMark } from "../viewer/keyImage";

const when = (iso: string) => dateTime(iso, Intl.DateTimeFormat().resolvedOptions().timeZone);

export interface Answer {
  question: string;
  conclusion: string;
}

export interface MinutesContent {
  reason: string;
  questions: Answer[];
  history: string;
  course_of_treatment: string;
  findings: string;
  tests: string;
  diagnosis_before: string;
  diagnosis_after: string;
  treatment_plan: string;
  treatment_method: string;
  follow_up: string;
  outcome_feedback: string;
  /** The frames marked in the viewer, signed with the text (docs/api.md "Key images"). */
  key_images: KeyImageMark[];
}

export interface UserBrief {
  id: number;
  name: string;
  email?: string;
  hospital_id?: number;
}

export interface Attendee {
  user_id: number;
  name: string;
  hospital: string;
  tier: string;
  role: string;
  attended_from: string;
  attended_to: string | null;
}

export interface Signoff {
  role: "chair" | "secretary";
  user: UserBrief;
  signed_at: string;
  content_sha256: string;
}

export interface Minutes {
  consultation_id: number;
  version: number;
  status: "draft" | "signed";
  revision: number;
  content: MinutesContent;
  secretary: UserBrief | null;
  attendees: Attendee[];
  signoffs: Signoff[];
  missing: string[];
  amendment_reason: string;
  created_at: string;
  updated_at: string;
  signed_at: string | null;
  versions: number[];
}

/** Someone the chair may name secretary. */
export interface Candidate {
  user_id: number;
  name: string;
}

/** The free-text sections, in the order of the form (Appendix I). */
export const TEXT_FIELDS = [
  "reason",
  "history",
  "course_of_treatment",
  "findings",
  "tests",
  "diagnosis_before",
  "diagnosis_after",
  "treatment_plan",
  "treatment_method",
  "follow_up",
] as const;
export type TextField = (typeof TEXT_FIELDS)[number];

export function emptyContent(): MinutesContent {
  return {
    reason: "", questions: [], history: "", course_of_treatment: "", findings: "", tests: "",
    diagnosis_before: "", diagnosis_after: "", treatment_plan: "", treatment_method: "",
    follow_up: "", outcome_feedback: "", key_images: [],
  };
}

/** Who I am to these minutes. */
export interface Viewer {
  userId: number | null;
  isChair: boolean;
}

/** "chair", "secretary" or null: the role in which this user signs these minutes. */
export function signerRole(m: Minutes | null, who: Viewer): "chair" | "secretary" | null {
  if (who.isChair) return "chair";
  if (m?.secretary && who.userId !== null && m.secretary.id === who.userId) return "secretary";
  return null;
}

/** May this user change the text: the chair (who also starts the minutes) or the secretary,
 * on a draft nobody has signed yet. */
export function canEdit(m: Minutes | null, who: Viewer): boolean {
  if (m === null) return who.isChair;
  if (m.status !== "draft" || m.signoffs.length > 0) return false;
  return signerRole(m, who) !== null;
}

/** May this user sign now, and if not, why not (null when signing is no business of theirs). */
export function signState(m: Minutes | null, who: Viewer): { can: boolean; signed: boolean; missing: string[] } | null {
  const role = signerRole(m, who);
  if (m === null || role === null || m.status !== "draft") return null;
  const signed = m.signoffs.some((s) => s.role === role);
  return { can: !signed && m.missing.length === 0, signed, missing: m.missing };
}

/** Is `incoming` newer than (or the same as) what is shown: a later version, or the same
 * version at a later or equal revision with at least as many sign-offs. */
export function isNewer(shown: Minutes | null, incoming: Minutes): boolean {
  if (shown === null) return true;
  if (incoming.version !== shown.version) return incoming.version > shown.version;
  if (incoming.revision !== shown.revision) return incoming.revision > shown.revision;
  return incoming.signoffs.length >= shown.signoffs.length || incoming.status !== shown.status;
}

/** The words for a missing field as the server names it ("questions[0].conclusion"...). */
export function missingLabel(name: string): string {
  const q = /^questions\[(\d+)\]\.conclusion$/.exec(name);
  if (q) return strings.minutesMissingConclusion(Number(q[1]) + 1);
  return strings.minutesField(name);
}

/** What a refused minutes request means to the user. */
export function minutesErrorText(err: unknown): string {
  if (err instanceof ApiError) {
    switch (err.code) {
      case "stale_revision":
        return strings.minutesStale;
      case "signing_started":
        return strings.minutesSigningStarted;
      case "minutes_signed":
        return strings.minutesAlreadySignedVersion;
      case "already_signed":
        return strings.minutesYouSigned;
      case "incomplete": {
        const missing = Array.isArray(err.detail.missing) ? (err.detail.missing as string[]) : [];
        return strings.minutesIncomplete(missing.map(missingLabel).join(", "));
      }
      case "not_invited":
        return strings.minutesNotInvited;
      case "patient_deidentified":
        return strings.minutesDeidentified;
      case "chair_as_secretary":
        return strings.minutesChairAsSecretary;
      case "observer_as_secretary":
        return strings.minutesObserverAsSecretary;
      case "not_signed":
        return strings.minutesNotSigned;
      case "wrong_status":
        return strings.minutesCancelled;
      case "forbidden":
        return strings.minutesForbidden;
      default:
        return strings.apiError(err.code, err.message);
    }
  }
  return err instanceof Error ? err.message : String(err);
}

export function pdfPath(consultationId: number, version: number, lang: string): string {
  return `/api/consultations/${consultationId}/minutes/pdf?version=${version}&language=${lang}`;
}

export interface MinutesOptions {
  session: Session;
  consultationId: number;
  /** Who may be named secretary (the room's participants who are not observers). */
  candidates: () => Candidate[];
  /** Open from the start (the page of the minutes); the room's panel starts folded. */
  expanded?: boolean;
  /** The image the viewer shows with its lengths, to mark as key image; null: none shown. */
  keyImage?: () => KeyImageMark | null;
  /** Starts the browser's download of a file (tests replace it). */
  download?: (blob: Blob, name: string) => void;
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export class MinutesPanel {
  /** The latest version as the server has it (null: none written yet). */
  latest: Minutes | null = null;
  /** An older version opened read-only, or null for the latest. */
  private opened: Minutes | null = null;
  private who: Viewer = { userId: null, isChair: false };
  private loaded = false;
  private busy = false;
  /** The text being edited, and the revision it was loaded at. */
  private draft: MinutesContent | null = null;
  private draftRevision: number | null = null;
  private dirty = false;
  private readonly notice = h("div", { class: "minutes-notice", "data-testid": "minutes-notice" });
  private readonly status = h("div", { class: "minutes-status", role: "status", "data-testid": "minutes-status" });
  private readonly body = h("div", { class: "minutes-body" });
  private readonly content = h("div", { class: "minutes-content", "data-testid": "minutes-content" }, this.notice, this.body, this.status);
  private readonly toggle = h("button", { type: "button", class: "link", "data-testid": "minutes-toggle", "aria-expanded": "false" }, strings.minutesOpen);
  readonly el = h(
    "section",
    { class: "minutes", "data-testid": "minutes" },
    h("h3", {}, strings.minutesTitle, " ", this.toggle),
    this.content,
  );
  /** Folded, the panel asks nothing of the server (a room without minutes would answer 404):
   * opening it loads them, and a `minutes:updated` opens it with what it carries. */
  private expanded = false;

  constructor(private readonly options: MinutesOptions) {
    this.toggle.addEventListener("click", () => this.setExpanded(!this.expanded));
    this.content.hidden = true;
    if (options.expanded) this.setExpanded(true, false);
    this.render();
  }

  /** Opens (loading the minutes the first time, unless `load` is false) or folds the panel. */
  setExpanded(open: boolean, load = true): void {
    this.expanded = open;
    this.content.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    replaceChildren(this.toggle, open ? strings.minutesClose : strings.minutesOpen);
    if (open && load && !this.loaded) void this.load();
  }

  private get path(): string {
    return `/api/consultations/${this.options.consultationId}/minutes`;
  }

  /** Who is looking: the chair (room role host) or not, and their user id. */
  setViewer(who: Viewer): void {
    if (who.userId === this.who.userId && who.isChair === this.who.isChair) return;
    this.who = who;
    this.render();
  }

  /** The latest version (a 404 means none written yet). */
  async load(): Promise<void> {
    try {
      const m = await this.options.session.json<Minutes>(this.path);
      this.loaded = true;
      this.take(m, true);
    } catch (err) {
      this.loaded = true;
      if (err instanceof ApiError && err.status === 404) {
        this.latest = null;
        this.resetDraft();
        this.render();
        return;
      }
      if (err instanceof ApiError && err.code === "break_glass_required") {
        replaceChildren(this.notice, breakGlassForm(this.options.session, this.options.consultationId, () => {
          replaceChildren(this.notice);
          void this.load();
        }));
      } else {
        replaceChildren(this.notice, errorBox(strings.minutesLoadFailed(minutesErrorText(err))));
      }
      this.render();
    }
  }

  /** A version from `minutes:updated` or an answer: shown if newer; unsaved typing is kept
   * with a notice that the minutes changed. */
  receive(m: Minutes): void {
    this.loaded = true;
    if (!this.expanded) this.setExpanded(true, false);
    this.take(m, false);
  }

  private take(m: Minutes, force: boolean): void {
    if (!force && !isNewer(this.latest, m)) return;
    const sameBase = this.latest !== null && this.latest.version === m.version && this.latest.revision === m.revision;
    this.latest = m;
    if (this.opened && this.opened.version === m.version) this.opened = null;
    // The same text again (our own save's broadcast): keep any typing since.
    if (this.dirty && !force && sameBase && m.signoffs.length === 0) return;
    if (this.dirty && !force && !sameBase && canEdit(m, this.who)) {
      replaceChildren(
        this.notice,
        h(
          "div",
          { class: "notice", role: "status", "data-testid": "minutes-changed" },
          h("span", {}, strings.minutesChangedElsewhere),
          h("button", { type: "button", class: "link", "data-testid": "minutes-reload", onclick: () => this.dropDraft() }, strings.minutesShowLatest),
        ),
      );
      this.renderMeta();
      return;
    }
    this.resetDraft();
    replaceChildren(this.notice);
    this.render();
  }

  private dropDraft(): void {
    this.resetDraft();
    replaceChildren(this.notice);
    this.render();
  }

  private resetDraft(): void {
    const m = this.latest;
    this.draft = structuredCloneContent(m?.content ?? emptyContent());
    this.draftRevision = m?.revision ?? null;
    this.dirty = false;
  }

  /** Runs one request; its answer becomes the shown version, its refusal a message. */
  private async run(request: () => Promise<Minutes>, done?: string): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.status.dataset.state = "busy";
    replaceChildren(this.status, strings.minutesWorking);
    try {
      const m = await request();
      this.busy = false;
      this.take(m, true);
      this.status.dataset.state = "done";
      replaceChildren(this.status, done ? h("span", { class: "notice ok" }, done) : null);
    } catch (err) {
      this.busy = false;
      this.status.dataset.state = "failed";
      replaceChildren(this.status, h("div", { "data-testid": "minutes-error" }, errorBox(minutesErrorText(err))));
      if (err instanceof ApiError && err.code === "stale_revision") {
        // Someone else saved meanwhile: show theirs (the typing is lost only on request).
        await this.reloadAfterConflict();
      } else {
        this.render();
      }
    }
  }

  private async reloadAfterConflict(): Promise<void> {
    try {
      const m = await this.options.session.json<Minutes>(this.path);
      this.dirty = false;
      this.take(m, true);
    } catch {
      this.render();
    }
  }

  async save(): Promise<void> {
    const content = this.draft ?? emptyContent();
    const revision = this.draftRevision;
    await this.run(
      () => this.options.session.json<Minutes>(this.path, {
        method: "PUT",
        json: revision === null ? { content } : { content, revision },
      }),
      strings.minutesSaved,
    );
  }

  async nameSecretary(userId: number): Promise<void> {
    const revision = this.latest?.revision;
    await this.run(() => this.options.session.json<Minutes>(`${this.path}/secretary`, {
      method: "PUT",
      json: revision === undefined ? { user_id: userId } : { user_id: userId, revision },
    }));
  }

  async sign(): Promise<void> {
    const m = this.latest;
    if (!m) return;
    if (this.dirty) {
      replaceChildren(this.status, errorBox(strings.minutesSaveFirst));
      return;
    }
    await this.run(() => this.options.session.json<Minutes>(`${this.path}/sign`, {
      method: "POST",
      json: { revision: m.revision },
    }), strings.minutesSignedByYou);
  }

  async amend(reason: string): Promise<void> {
    await this.run(() => this.options.session.json<Minutes>(`${this.path}/amend`, {
      method: "POST",
      json: { reason },
    }));
  }

  async open(version: number): Promise<void> {
    if (this.latest && version === this.latest.version) {
      this.opened = null;
      this.render();
      return;
    }
    try {
      this.opened = await this.options.session.json<Minutes>(`${this.path}/versions/${version}`);
      this.render();
    } catch (err) {
      replaceChildren(this.status, errorBox(minutesErrorText(err)));
    }
  }

  async downloadPdf(): Promise<void> {
    const m = this.opened ?? this.latest;
    if (!m) return;
    try {
      const response = await this.options.session.fetch(pdfPath(this.options.consultationId, m.version, language));
      if (!response.ok) throw new ApiError(response.status, `http_${response.status}`, response.statusText);
      const blob = await response.blob();
      (this.options.download ?? saveBlob)(blob, `bien-ban-hoi-chan-${this.options.consultationId}-v${m.version}.pdf`);
    } catch (err) {
      replaceChildren(this.status, errorBox(strings.minutesPdfFailed(minutesErrorText(err))));
    }
  }

  // ---- drawing ---------------------------------------------------------------------------

  private readonly meta = h("div", { class: "minutes-meta", "data-testid": "minutes-meta" });

  private renderMeta(): void {
    const m = this.opened ?? this.latest;
    if (!m) {
      replaceChildren(this.meta, h("p", { "data-testid": "minutes-none" }, this.loaded ? strings.minutesNone : strings.loading));
      return;
    }
    const versions = m.versions.length > 1
      ? h(
          "label",
          { class: "minutes-versions" },
          strings.minutesVersions,
          h(
            "select",
            {
              "data-testid": "minutes-version-select",
              onchange: (e: Event) => void this.open(Number((e.target as HTMLSelectElement).value)),
            },
            m.versions.map((v) => {
              const o = h("option", { value: v }, strings.minutesVersion(v));
              if (v === m.version) o.selected = true;
              return o;
            }),
          ),
        )
      : null;
    replaceChildren(
      this.meta,
      h(
        "p",
        {},
        h("span", { class: `status minutes-state-${m.status}`, "data-testid": "minutes-state", "data-status": m.status }, strings.minutesStatus(m.status)),
        " · ",
        h("span", { "data-testid": "minutes-version", "data-version": m.version, "data-revision": m.revision }, strings.minutesVersion(m.version)),
        " · ",
        strings.minutesUpdatedAt(when(m.updated_at)),
      ),
      m.amendment_reason ? h("p", { "data-testid": "minutes-amendment" }, strings.minutesAmendmentReason(m.amendment_reason)) : null,
      versions,
      this.opened ? h("p", { class: "notice" }, strings.minutesOlderVersion,
        " ", h("button", { type: "button", class: "link", "data-testid": "minutes-latest", onclick: () => void this.open(this.latest?.version ?? 0) }, strings.minutesBackToLatest)) : null,
      h("button", { type: "button", class: "link", "data-testid": "minutes-pdf", onclick: () => void this.downloadPdf() }, strings.minutesDownloadPdf),
      !this.opened && m.status === "signed" && m.content.key_images.length && signerRole(m, this.who)
        ? [" · ", h("button", { type: "button", class: "link", "data-testid": "minutes-send-key-objects", onclick: () => void this.sendKeyObjects() }, strings.minutesSendKeyObjects)]
        : null,
    );
  }

  /** The signed version's key images into the study and to its source PACS (a KOS and an
   * SR per study); each study's outcome is shown, a failed send can be tried again. */
  async sendKeyObjects(): Promise<void> {
    replaceChildren(this.status, strings.minutesSendingKeyObjects);
    try {
      const sent = await this.options.session.json<{ studies: { study_instance_uid: string; status: string; node: string | null; error?: string | null }[] }>(
        `/api/consultations/${this.options.consultationId}/minutes/key-objects`, { method: "POST" });
      replaceChildren(this.status, h("ul", { "data-testid": "minutes-key-objects-result" }, sent.studies.map((st) =>
        h("li", { "data-status": st.status }, strings.minutesKeyObjectsStatus(st.status, st.node ?? "", st.error ?? "")))));
    } catch (err) {
      replaceChildren(this.status, errorBox(minutesErrorText(err)));
    }
  }

  render(): void {
    this.renderMeta();
    const m = this.opened ?? this.latest;
    const editing = this.opened === null && this.loaded && canEdit(this.latest, this.who);
    replaceChildren(
      this.body,
      this.meta,
      editing ? this.form() : m ? this.view(m) : null,
      m ? this.people(m) : null,
      this.opened === null ? this.actions() : null,
    );
  }

  private textInput(name: TextField): HTMLElement {
    const draft = this.draft ?? (this.draft = emptyContent());
    const area = h("textarea", { name, rows: name === "reason" || name.startsWith("diagnosis") ? 2 : 3, maxlength: 10000, "data-testid": `minutes-${name}` });
    area.value = draft[name];
    area.addEventListener("input", () => {
      draft[name] = area.value;
      this.dirty = true;
    });
    return h("label", {}, strings.minutesField(name), area);
  }

  private form(): HTMLElement {
    const draft = this.draft ?? (this.draft = emptyContent());
    const questions = h("ol", { class: "minutes-questions", "data-testid": "minutes-questions" });
    draft.questions.forEach((q, i) => {
      const question = h("input", { type: "text", maxlength: 2000, "data-testid": `minutes-question-${i}` });
      question.value = q.question;
      question.addEventListener("input", () => {
        q.question = question.value;
        this.dirty = true;
      });
      const conclusion = h("textarea", { rows: 2, maxlength: 10000, "data-testid": `minutes-conclusion-${i}` });
      conclusion.value = q.conclusion;
      conclusion.addEventListener("input", () => {
        q.conclusion = conclusion.value;
        this.dirty = true;
      });
      questions.append(h(
        "li",
        {},
        h("label", {}, strings.minutesQuestion(i + 1), question),
        h("label", {}, strings.minutesConclusion, conclusion),
        h("button", {
          type: "button", class: "link", "data-testid": `minutes-remove-question-${i}`,
          onclick: () => {
            draft.questions.splice(i, 1);
            this.dirty = true;
            this.render();
          },
        }, strings.minutesRemoveQuestion),
      ));
    });
    const form = h(
      "form",
      { class: "minutes-form", "data-testid": "minutes-form" },
      this.textInput("reason"),
      h("fieldset", {}, h("legend", {}, strings.minutesQuestions), questions,
        h("button", {
          type: "button", "data-testid": "minutes-add-question",
          onclick: () => {
            draft.questions.push({ question: "", conclusion: "" });
            this.dirty = true;
            this.render();
          },
        }, strings.minutesAddQuestion)),
      TEXT_FIELDS.filter((f) => f !== "reason").map((f) => this.textInput(f)),
      this.keyImages(draft),
      h("div", { class: "minutes-actions" }, h("button", { type: "submit", class: "primary", "data-testid": "minutes-save" }, strings.minutesSave)),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save();
    });
    return form;
  }

  /** The marked frames, each with its caption, and the action adding the one shown. */
  private keyImages(draft: MinutesContent): HTMLElement {
    const list = h("ol", { "data-testid": "minutes-key-images" });
    draft.key_images.forEach((mark, i) => {
      const caption = h("input", { type: "text", maxlength: 500, "data-testid": `minutes-key-image-caption-${i}` });
      caption.value = mark.caption;
      caption.addEventListener("input", () => {
        mark.caption = caption.value;
        this.dirty = true;
      });
      list.append(h(
        "li",
        {},
        strings.minutesKeyImage(i + 1, mark.measurements.length),
        h("label", {}, strings.minutesKeyImageCaption, caption),
        h("button", {
          type: "button", class: "link", "data-testid": `minutes-remove-key-image-${i}`,
          onclick: () => {
            draft.key_images.splice(i, 1);
            this.dirty = true;
            this.render();
          },
        }, strings.minutesRemoveKeyImage),
      ));
    });
    const mark = this.options.keyImage;
    return h("fieldset", {}, h("legend", {}, strings.minutesKeyImages), list,
      mark ? h("button", {
        type: "button", "data-testid": "minutes-mark-key-image",
        onclick: () => {
          const shown = mark();
          if (!shown) {
            replaceChildren(this.status, h("span", { class: "notice" }, strings.minutesNoImageShown));
            return;
          }
          draft.key_images.push(shown);
          this.dirty = true;
          this.render();
        },
      }, strings.minutesMarkKeyImage) : null);
  }

  private view(m: Minutes): HTMLElement {
    const rows: HTMLElement[] = [];
    const field = (name: TextField) => {
      rows.push(h("dt", {}, strings.minutesField(name)), h("dd", { "data-testid": `minutes-view-${name}` }, m.content[name] || "—"));
    };
    field("reason");
    rows.push(
      h("dt", {}, strings.minutesQuestions),
      h("dd", {}, m.content.questions.length
        ? h("ol", { "data-testid": "minutes-view-questions" }, m.content.questions.map((q, i) => h(
            "li", {},
            h("p", { "data-testid": `minutes-view-question-${i}` }, q.question),
            h("p", {}, h("strong", {}, `${strings.minutesConclusion}: `), h("span", { "data-testid": `minutes-view-conclusion-${i}` }, q.conclusion || "—")),
          )))
        : "—"),
    );
    for (const f of TEXT_FIELDS) if (f !== "reason") field(f);
    return h("dl", { class: "minutes-view", "data-testid": "minutes-view" }, rows);
  }

  private people(m: Minutes): HTMLElement {
    const attendees = m.attendees.length
      ? h(
          "table",
          { class: "minutes-attendees", "data-testid": "minutes-attendees" },
          h("thead", {}, h("tr", {}, h("th", {}, strings.minutesAttendeeName), h("th", {}, strings.minutesAttendeeHospital), h("th", {}, strings.minutesAttendeeRole))),
          h("tbody", {}, m.attendees.map((a) => h("tr", {}, h("td", {}, a.name), h("td", {}, a.hospital), h("td", {}, strings.role(a.role))))),
        )
      : h("p", {}, strings.minutesNoAttendees);
    const signoff = (role: "chair" | "secretary") => {
      const s = m.signoffs.find((x) => x.role === role);
      return h("li", { "data-testid": `minutes-signoff-${role}`, "data-signed": s ? "yes" : "no" },
        `${strings.minutesRole(role)}: `,
        s ? strings.minutesSignedBy(s.user.name, when(s.signed_at)) : strings.minutesNotYetSigned);
    };
    return h(
      "div",
      { class: "minutes-people" },
      h("p", { "data-testid": "minutes-secretary" }, `${strings.minutesRole("secretary")}: `, m.secretary ? m.secretary.name : strings.minutesNoSecretary),
      h("h4", {}, strings.minutesAttendees),
      attendees,
      h("h4", {}, strings.minutesSignoffs),
      h("ul", { class: "minutes-signoffs" }, signoff("chair"), signoff("secretary")),
    );
  }

  private secretarySelect: HTMLSelectElement | null = null;

  /** The room's people changed: the secretary's choices follow (nothing else redrawn). */
  candidatesChanged(): void {
    this.fillCandidates();
  }

  private fillCandidates(): void {
    const select = this.secretarySelect;
    if (!select) return;
    const chosen = select.value || String(this.latest?.secretary?.id ?? "");
    const people = this.options.candidates().filter((c) => c.user_id !== this.who.userId);
    const secretary = this.latest?.secretary;
    if (secretary && !people.some((c) => c.user_id === secretary.id)) people.push({ user_id: secretary.id, name: secretary.name });
    replaceChildren(select, h("option", { value: "" }, strings.minutesChooseSecretary),
      people.map((c) => h("option", { value: c.user_id }, c.name)));
    select.value = people.some((c) => String(c.user_id) === chosen) ? chosen : "";
  }

  private actions(): HTMLElement | null {
    const m = this.latest;
    const parts: HTMLElement[] = [];
    this.secretarySelect = null;
    // The chair names the secretary while nobody has signed.
    if (this.who.isChair && (m === null || (m.status === "draft" && m.signoffs.length === 0))) {
      const select = h("select", { "data-testid": "minutes-secretary-select" });
      this.secretarySelect = select;
      this.fillCandidates();
      parts.push(h("div", { class: "minutes-secretary-pick" },
        h("label", {}, strings.minutesNameSecretary, select),
        h("button", {
          type: "button", "data-testid": "minutes-secretary-save",
          onclick: () => {
            if (select.value) void this.nameSecretary(Number(select.value));
          },
        }, strings.minutesNameSecretaryButton)));
    }
    const sign = signState(m, this.who);
    if (sign) {
      const button = h("button", { type: "button", class: "primary", "data-testid": "minutes-sign", onclick: () => void this.sign() },
        sign.signed ? strings.minutesYouSigned : strings.minutesSign(strings.minutesRole(signerRole(m, this.who) ?? "chair")));
      button.disabled = !sign.can || this.busy;
      parts.push(button);
      if (!sign.signed && sign.missing.length) {
        parts.push(h("div", { class: "minutes-missing", "data-testid": "minutes-missing" },
          strings.minutesMissingBefore,
          h("ul", {}, sign.missing.map((f) => h("li", {}, missingLabel(f))))));
      }
    }
    if (this.who.isChair && m?.status === "signed") {
      const reason = h("input", { type: "text", maxlength: 2000, "data-testid": "minutes-amend-reason", "aria-label": strings.minutesAmendReasonLabel });
      parts.push(h("div", { class: "minutes-amend" },
        h("label", {}, strings.minutesAmendReasonLabel, reason),
        h("button", {
          type: "button", "data-testid": "minutes-amend",
          onclick: () => {
            if (reason.value.trim()) void this.amend(reason.value.trim());
            else replaceChildren(this.status, errorBox(strings.minutesAmendNeedsReason));
          },
        }, strings.minutesAmend)));
    }
    return parts.length ? h("div", { class: "minutes-actions" }, parts) : null;
  }
}

function structuredCloneContent(c: MinutesContent): MinutesContent {
  return {
    ...emptyContent(), ...c, questions: c.questions.map((q) => ({ ...q })),
    key_images: (c.key_images ?? []).map((k) => ({ ...k })),
  };
}
