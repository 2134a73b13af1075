/**
 * The consultation record in the room: the conclusion and the treatment plan. Everyone sees
 * the saved text (GET on entering; 404 means none yet); the host writes it (PUT) and every
 * member's panel follows `record:saved`. A host who is typing keeps the draft: a save from
 * elsewhere shows "updated by X" instead of overwriting it.
 */

import { errorBox, h, replaceChildren } from "../dom";
import type { Session } from "../session";
import { clock } from "../format";
import { strings } from "../strings";

export interface RecordText {
  conclusion: string;
  treatment_plan: string;
}

export interface SavedRecord extends RecordText {
  author: { id: number; name: string; email?: string; hospital_id?: number };
  updated_at: string;
}

/**
 * What to do with a saved record that arrives (the GET, the PUT's answer or `record:saved`):
 * "stale" if it is older than the one shown (or that one again), "apply" if the panel may show it (no draft, the
 * draft is unchanged from the one shown, or the draft already says the same), "keep-draft"
 * if the host has unsaved typing that differs.
 */
export function incomingAction(
  shown: SavedRecord | null,
  draft: RecordText | null,
  incoming: SavedRecord,
): "stale" | "apply" | "keep-draft" {
  if (shown && Date.parse(incoming.updated_at) < Date.parse(shown.updated_at)) return "stale";
  if (shown && incoming.updated_at === shown.updated_at && sameText(shown, incoming)) return "stale";
  if (draft === null || sameText(draft, incoming)) return "apply";
  const base: RecordText = shown ?? { conclusion: "", treatment_plan: "" };
  return sameText(draft, base) ? "apply" : "keep-draft";
}

export function sameText(a: RecordText, b: RecordText): boolean {
  return a.conclusion === b.conclusion && a.treatment_plan === b.treatment_plan;
}


export class RecordPanel {
  private shown: SavedRecord | null = null;
  private isHost = false;
  private saving = false;
  private readonly meta = h("p", { class: "record-meta", "data-testid": "record-meta" });
  private readonly notice = h("div", { class: "record-notice" });
  private readonly status = h("div", { class: "record-status", "data-testid": "record-status", role: "status" });
  private readonly body = h("div", { class: "record-body" });
  private readonly conclusion = h("textarea", { name: "conclusion", rows: 3, maxlength: 10000, "data-testid": "record-conclusion", "aria-label": strings.recordConclusion });
  private readonly plan = h("textarea", { name: "treatment_plan", rows: 3, maxlength: 10000, "data-testid": "record-plan", "aria-label": strings.recordPlan });
  private readonly save = h("button", { type: "submit", "data-testid": "record-save" }, strings.recordSave);
  private readonly form = h(
    "form",
    { class: "record-form" },
    h("label", {}, strings.recordConclusion, this.conclusion),
    h("label", {}, strings.recordPlan, this.plan),
    h("div", { class: "record-actions" }, this.save, this.status),
  );
  readonly el = h("section", { class: "record", "data-testid": "record" }, h("h3", {}, strings.recordTitle), this.meta, this.notice, this.body);

  constructor(
    private readonly session: Session,
    private readonly consultationId: number,
  ) {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.submit();
    });
    this.render();
  }

  private get path(): string {
    return `/api/consultations/${this.consultationId}/record`;
  }

  private draft(): RecordText | null {
    return this.isHost ? { conclusion: this.conclusion.value, treatment_plan: this.plan.value } : null;
  }

  setHost(isHost: boolean): void {
    if (this.isHost === isHost) return;
    this.isHost = isHost;
    this.fill();
    this.render();
  }

  /** The saved record (on entering the room), as the consultation carries it: asking the
   * record itself would be a 404 (logged by the browser as an error) until one is saved. */
  async load(): Promise<void> {
    try {
      const { record } = await this.session.json<{ record: SavedRecord | null }>(
        `/api/consultations/${this.consultationId}`);
      if (record) this.receive(record);
      else this.render();
    } catch (err) {
      replaceChildren(this.notice, errorBox(strings.recordLoadFailed(err instanceof Error ? err.message : String(err))));
    }
  }

  /** A saved record: from the GET, the PUT's answer or `record:saved`. */
  receive(record: SavedRecord): void {
    const action = incomingAction(this.shown, this.draft(), record);
    if (action === "stale") return;
    this.shown = record;
    if (action === "apply") {
      this.fill();
      replaceChildren(this.notice);
    } else {
      replaceChildren(
        this.notice,
        h(
          "div",
          { class: "notice", role: "status", "data-testid": "record-updated" },
          h("span", {}, strings.recordUpdatedBy(record.author.name, clock(record.updated_at))),
          h("button", { type: "button", class: "link", "data-testid": "record-take", onclick: () => this.takeSaved() }, strings.recordShowSaved),
        ),
      );
    }
    this.render();
  }

  /** The host drops the draft for the saved text. */
  private takeSaved(): void {
    this.fill();
    replaceChildren(this.notice);
    replaceChildren(this.status);
  }

  private fill(): void {
    this.conclusion.value = this.shown?.conclusion ?? "";
    this.plan.value = this.shown?.treatment_plan ?? "";
  }

  private async submit(): Promise<void> {
    if (this.saving) return;
    const body = { conclusion: this.conclusion.value, treatment_plan: this.plan.value };
    this.saving = true;
    this.save.disabled = true;
    this.status.dataset.state = "saving";
    replaceChildren(this.status, strings.recordSaving);
    try {
      const saved = await this.session.json<SavedRecord>(this.path, { method: "PUT", json: body });
      this.receive(saved);
      replaceChildren(this.notice);
      this.status.dataset.state = "saved";
      replaceChildren(this.status, h("span", { class: "notice ok" }, strings.recordSaved(clock(saved.updated_at))));
    } catch (err) {
      this.status.dataset.state = "failed";
      replaceChildren(this.status, errorBox(strings.recordSaveFailed(err instanceof Error ? err.message : String(err))));
    } finally {
      this.saving = false;
      this.save.disabled = false;
    }
  }

  private render(): void {
    const r = this.shown;
    this.meta.textContent = r ? strings.recordSavedBy(r.author.name, clock(r.updated_at)) : strings.recordNone;
    if (this.isHost) {
      if (this.form.parentElement !== this.body) replaceChildren(this.body, this.form);
      return;
    }
    replaceChildren(
      this.body,
      r
        ? h(
            "dl",
            { class: "record-view", "data-testid": "record-view" },
            h("dt", {}, strings.recordConclusion),
            h("dd", { "data-testid": "record-view-conclusion" }, r.conclusion || "—"),
            h("dt", {}, strings.recordPlan),
            h("dd", { "data-testid": "record-view-plan" }, r.treatment_plan || "—"),
          )
        : null,
    );
  }
}
