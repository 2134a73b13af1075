/**
 * The patient's consents on a case, in the room's case panel: to the tele-consultation and
 * to its recording, each "granted", "refused", "withdrawn" or not yet recorded. Those who
 * may record consent (the consultation's doctors, not observers) see who gave it, when and
 * how, and record a new one; observers see the states alone (the server sends no more).
 * `consent:updated` carries the states; a member who may see more reads the records again.
 */

import { errorBox, h, replaceChildren } from "../dom";
import { dateTime } from "../format";
import { browserZone } from "../time";
import type { Session } from "../session";
import { language, strings } from "../strings";
import { saveBlob } from "./minutes";

export type Scope = "teleconsultation" | "recording";
export type Status = "none" | "granted" | "refused" | "withdrawn";

export interface ConsentRecord {
  id: number;
  scope: Scope;
  decision: Exclude<Status, "none">;
  given_by: "patient" | "representative";
  giver_name: string;
  relation: string;
  method: "signed_form" | "verbal";
  given_at: string;
  note: string;
  recorded_by: { id: number; name: string };
  recorded_at: string;
}

export interface ConsentState {
  status: Status;
  latest: ConsentRecord | null;
}

export interface CaseConsents {
  consultation_id: number;
  case_id: number;
  teleconsultation: ConsentState;
  recording: ConsentState;
  history: ConsentRecord[];
  /** Absent in `consent:updated` (it differs per member). */
  can_record?: boolean;
}

export const SCOPES: Scope[] = ["teleconsultation", "recording"];

export function consentsPath(consultationId: number, caseId: number): string {
  return `/api/consultations/${consultationId}/cases/${caseId}/consents`;
}

/** One line per scope: its state, and who, when and how when the record is shown. */
export function describe(state: ConsentState): string {
  const words = strings.consentStatus[state.status];
  const r = state.latest;
  if (!r) return words;
  const giver = r.given_by === "representative" ? strings.consentRepresentative(r.giver_name, r.relation) : r.giver_name;
  const how = r.method === "signed_form" ? strings.consentSignedForm : strings.consentVerbal(r.recorded_by.name);
  return `${words}: ${giver}, ${how}, ${dateTime(r.given_at, browserZone())}`;
}

export interface ConsentOptions {
  session: Session;
  consultationId: number;
  caseId: number;
  download?: (blob: Blob, name: string) => void;
}

export class ConsentPanel {
  private shown: CaseConsents | null = null;
  private canRecord = false;
  private readonly lines = h("ul", { class: "consent-states" });
  private readonly status = h("div", { class: "consent-status", role: "status", "data-testid": "consent-status" });
  private readonly formHost = h("div");
  readonly el = h(
    "section",
    { class: "consent", "data-testid": "consent" },
    h("h4", {}, strings.consentTitle),
    this.lines,
    h("button", { type: "button", class: "link", "data-testid": "consent-form-pdf", onclick: () => void this.downloadForm() }, strings.consentPrintForm),
    this.formHost,
    this.status,
  );

  constructor(private readonly options: ConsentOptions) {
    this.render();
  }

  private get path(): string {
    return consentsPath(this.options.consultationId, this.options.caseId);
  }

  async load(): Promise<void> {
    try {
      this.show(await this.options.session.json<CaseConsents>(this.path));
    } catch (err) {
      replaceChildren(this.status, errorBox(strings.consentLoadFailed(message(err))));
    }
  }

  /** `consent:updated`: the states at once; the records behind them for those who see them. */
  receive(update: CaseConsents): void {
    if (update.case_id !== this.options.caseId) return;
    if (this.canRecord) void this.load();
    else this.show({ ...update, can_record: false });
  }

  private show(consents: CaseConsents): void {
    this.shown = consents;
    const canRecord = consents.can_record ?? this.canRecord;
    if (canRecord !== this.canRecord || !this.formHost.firstChild) {
      this.canRecord = canRecord;
      replaceChildren(this.formHost, canRecord ? this.form() : null);
    }
    this.render();
  }

  private render(): void {
    const c = this.shown;
    replaceChildren(
      this.lines,
      SCOPES.map((scope) =>
        h("li", { "data-testid": `consent-${scope}`, "data-status": c ? c[scope].status : "none" },
          h("strong", {}, strings.consentScope[scope], ": "),
          c ? describe(c[scope]) : strings.loading),
      ),
    );
  }

  private form(): HTMLElement {
    const select = (name: string, options: [string, string][]) =>
      h("select", { name, "data-testid": `consent-${name}` }, options.map(([value, label]) => h("option", { value }, label)));
    const scope = select("scope", SCOPES.map((s) => [s, strings.consentScope[s]]));
    const decision = select("decision", (["granted", "refused", "withdrawn"] as const).map((d) => [d, strings.consentDecision[d]]));
    const givenBy = select("given_by", [["patient", strings.consentPatient], ["representative", strings.consentByRepresentative]]);
    const method = select("method", [["signed_form", strings.consentSignedForm], ["verbal", strings.consentVerbalMethod]]);
    const name = h("input", { type: "text", name: "giver_name", required: true, maxlength: 200, "data-testid": "consent-giver-name" });
    const relation = h("input", { type: "text", name: "relation", maxlength: 100, "data-testid": "consent-relation" });
    const relationLabel = h("label", { hidden: true }, strings.consentRelation, relation);
    const note = h("input", { type: "text", name: "note", maxlength: 2000, "data-testid": "consent-note" });
    givenBy.addEventListener("change", () => {
      relationLabel.hidden = givenBy.value !== "representative";
      relation.required = !relationLabel.hidden;
    });
    const form = h(
      "form",
      { class: "consent-record" },
      h("label", {}, strings.consentScopeLabel, scope),
      h("label", {}, strings.consentDecisionLabel, decision),
      h("label", {}, strings.consentGivenBy, givenBy),
      h("label", {}, strings.consentGiverName, name),
      relationLabel,
      h("label", {}, strings.consentMethod, method),
      h("label", {}, strings.consentNote, note),
      h("button", { type: "submit", "data-testid": "consent-save" }, strings.consentSave),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const body = {
        scope: scope.value, decision: decision.value, given_by: givenBy.value,
        giver_name: name.value.trim(), method: method.value, note: note.value.trim(),
        ...(givenBy.value === "representative" ? { relation: relation.value.trim() } : {}),
      };
      void this.submit(body, form);
    });
    return h("details", { class: "consent-new" }, h("summary", { "data-testid": "consent-open" }, strings.consentRecord), form);
  }

  private async submit(body: object, form: HTMLFormElement): Promise<void> {
    replaceChildren(this.status);
    try {
      this.show(await this.options.session.json<CaseConsents>(this.path, { method: "POST", json: body }));
      form.reset();
      replaceChildren(this.status, strings.consentSaved);
    } catch (err) {
      replaceChildren(this.status, errorBox(strings.consentSaveFailed(message(err))));
    }
  }

  private async downloadForm(): Promise<void> {
    const { consultationId, caseId, session } = this.options;
    try {
      const response = await session.fetch(
        `/api/consultations/${consultationId}/cases/${caseId}/consent-form?language=${language}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      (this.options.download ?? saveBlob)(await response.blob(), `giay-dong-y-${consultationId}-${caseId}.pdf`);
    } catch (err) {
      replaceChildren(this.status, errorBox(strings.consentLoadFailed(message(err))));
    }
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
