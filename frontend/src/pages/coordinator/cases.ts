/**
 * A consultation's cases: add one (patient and clinical question), then attach a study by
 * searching a configured PACS node and importing it, with the import's live progress and a
 * retry for a failed one.
 */

import type { Case, Consultation } from "../../api";
import { errorBox, h, replaceChildren } from "../../dom";
import { ApiError, SessionExpired, type Session } from "../../session";
import { strings } from "../../strings";
import {
  addCase,
  consultationImports,
  getConsultation,
  getImport,
  pacsNodes,
  retryImport,
  searchStudies,
  startImport,
  type ImportJob,
  type PacsNode,
  type RemoteStudy,
  type StudyQuery,
} from "./api";
import { errorText } from "../load";
import { caseErrorField, importFraction, pollImport, type CaseField } from "./logic";

function dicomDate(value: string): string {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}` : value;
}

export function casesSection(session: Session, consultation: Consultation): { el: HTMLElement; dispose(): void } {
  const cid = consultation.id;
  const closed = consultation.status === "ended" || consultation.status === "cancelled";
  const stops = new Set<() => void>();
  let nodes: Promise<PacsNode[]> | null = null;
  const loadNodes = () => (nodes ??= pacsNodes(session));
  const caseEls = new Map<number, { el: HTMLElement; studies: HTMLElement; imports: HTMLElement; case: Case }>();
  const list = h("ul", { class: "case-list", "data-testid": "cases" });
  const listMessage = h("div", { "aria-live": "polite" });

  const renderStudies = (c: Case, into: HTMLElement) =>
    replaceChildren(
      into,
      h("p", { class: "muted" }, strings.caseStudies(c.study_instance_uids.length)),
      c.study_instance_uids.length ? h("ul", { class: "uid-list" }, c.study_instance_uids.map((u) => h("li", { "data-testid": "case-study" }, u))) : null,
    );

  const refreshStudies = async () => {
    try {
      const fresh = await getConsultation(session, cid);
      for (const c of fresh.cases) {
        const entry = caseEls.get(c.id);
        if (entry) {
          entry.case = c;
          renderStudies(c, entry.studies);
        }
      }
    } catch {
      // the import row already says done; the list catches up on the next load
    }
  };

  /** One import's row: progress bar, count, status, error and Retry. */
  const importRow = (initial: ImportJob): HTMLElement => {
    const bar = h("progress", { max: 1 });
    const text = h("span", { class: "import-count", "data-testid": "import-count" });
    const status = h("span", { class: "import-status", "data-testid": "import-status" });
    const extra = h("div", { class: "import-extra" });
    const row = h("li", { class: "import", "data-testid": "import", "data-import-id": initial.id }, h("code", { class: "uid" }, initial.study_instance_uid), bar, text, status, extra);
    let stop: (() => void) | null = null;
    const show = (job: ImportJob, error?: unknown) => {
      row.dataset.status = job.status;
      const fraction = importFraction(job);
      if (fraction === null) bar.removeAttribute("value");
      else bar.value = fraction;
      text.textContent = strings.importProgress(job.instances_done, job.instances_total);
      status.textContent = { queued: strings.importQueued, running: strings.importRunning, done: strings.importDone, failed: strings.importFailed }[job.status];
      status.className = `import-status import-${job.status}`;
      if (job.status === "failed") {
        const retry = h("button", { type: "button", "data-testid": "retry-import" }, strings.retryImport);
        retry.addEventListener("click", async () => {
          retry.disabled = true;
          try {
            const again = await retryImport(session, job.id);
            follow(again);
          } catch (err) {
            if (err instanceof SessionExpired) return;
            retry.disabled = false;
            replaceChildren(extra, errorBox(errorText(err)), retry);
          }
        });
        replaceChildren(extra, h("span", { class: "error-text", "data-testid": "import-error" }, strings.importError(job.error || "?")), retry);
      } else if (error && !(error instanceof SessionExpired)) {
        replaceChildren(extra, h("span", { class: "error-text" }, errorText(error)));
      } else {
        replaceChildren(extra);
      }
      if (job.status === "done") void refreshStudies();
    };
    const follow = (job: ImportJob) => {
      if (stop) {
        stops.delete(stop);
        stop();
      }
      show(job);
      stop = pollImport(job, (id) => getImport(session, id), show);
      stops.add(stop);
    };
    follow(initial);
    return row;
  };

  /** The PACS search panel for one case. */
  const pacsPanel = (entry: { case: Case; imports: HTMLElement }, close: () => void): HTMLElement => {
    const c = entry.case;
    const nodeSel = h("select", { "aria-label": strings.pacsNode, "data-testid": "pacs-node" });
    const pid = h("input", { type: "text", value: c.patient_id, "data-testid": "pacs-patient-id" });
    const pname = h("input", { type: "text", "data-testid": "pacs-patient-name" });
    const from = h("input", { type: "date", "data-testid": "pacs-date-from" });
    const to = h("input", { type: "date", "data-testid": "pacs-date-to" });
    const modality = h("input", { type: "text", size: 4, "data-testid": "pacs-modality" });
    const accession = h("input", { type: "text", "data-testid": "pacs-accession" });
    const submit = h("button", { type: "submit", class: "primary", "data-testid": "pacs-search" }, strings.search);
    const message = h("div", { class: "field-error", "aria-live": "polite" });
    const results = h("div", { class: "study-results", "data-testid": "study-results" });
    const form = h(
      "form",
      { class: "pacs-search" },
      h("div", { class: "picker-row" }, h("label", {}, strings.pacsNode, nodeSel)),
      h(
        "div",
        { class: "picker-row" },
        h("label", {}, strings.patientId, pid),
        h("label", {}, strings.patientName, pname),
        h("label", {}, strings.studyDateFrom, from),
        h("label", {}, strings.studyDateTo, to),
        h("label", {}, strings.modality, modality),
        h("label", {}, strings.accessionNumber, accession),
        submit,
      ),
      message,
    );
    loadNodes()
      .then((list) => {
        if (!list.length) {
          replaceChildren(message, errorBox(strings.noPacsNodes));
          submit.disabled = true;
        }
        replaceChildren(nodeSel, list.map((n) => h("option", { value: n.id }, n.name)));
      })
      .catch((err) => {
        nodes = null;
        if (!(err instanceof SessionExpired)) replaceChildren(message, errorBox(errorText(err)));
      });

    const studyRow = (s: RemoteStudy, nodeId: number): HTMLElement => {
      const btn = h("button", { type: "button", class: "primary", "data-testid": "import-study" }, strings.importStudy);
      const err = h("td", { class: "field-error" });
      btn.addEventListener("click", async () => {
        btn.disabled = true;
        btn.textContent = strings.importing;
        replaceChildren(err);
        try {
          const job = await startImport(session, cid, c.id, nodeId, s.study_instance_uid);
          entry.imports.append(importRow(job));
          btn.textContent = strings.importStudy;
        } catch (e) {
          if (e instanceof SessionExpired) return;
          btn.disabled = false;
          btn.textContent = strings.importStudy;
          replaceChildren(err, errorBox(e instanceof ApiError && e.code === "patient_mismatch" ? strings.patientMismatch(e.message) : errorText(e)));
        }
      });
      return h(
        "tr",
        { "data-testid": "study", "data-study-uid": s.study_instance_uid },
        h("td", {}, dicomDate(s.study_date)),
        h("td", {}, s.patient_id, h("br"), strings.personName(s.patient_name)),
        h("td", {}, s.study_description, s.accession_number ? h("span", { class: "muted" }, ` · ${s.accession_number}`) : null),
        h("td", {}, s.modalities.join(", ")),
        h("td", {}, s.number_of_instances ?? ""),
        h("td", {}, btn),
        err,
      );
    };

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      replaceChildren(message);
      const nodeId = Number(nodeSel.value);
      if (!nodeId) return;
      const criteria: StudyQuery = {
        patient_id: pid.value.trim() || undefined,
        patient_name: pname.value.trim() || undefined,
        study_date_from: from.value || undefined,
        study_date_to: to.value || undefined,
        modality: modality.value.trim().toUpperCase() || undefined,
        accession_number: accession.value.trim() || undefined,
      };
      if (!Object.values(criteria).some(Boolean)) {
        replaceChildren(message, errorBox(strings.needCriterion));
        return;
      }
      submit.disabled = true;
      submit.textContent = strings.searching;
      replaceChildren(results);
      try {
        const found = await searchStudies(session, nodeId, criteria);
        replaceChildren(
          results,
          found.length
            ? h(
                "table",
                { class: "studies-table" },
                h(
                  "thead",
                  {},
                  h(
                    "tr",
                    {},
                    [strings.studyDate, strings.patientName, strings.studyDescription, strings.modality, strings.instancesCount, "", ""].map((t) => h("th", {}, t)),
                  ),
                ),
                h("tbody", {}, found.map((s) => studyRow(s, nodeId))),
              )
            : h("p", { class: "empty" }, strings.noStudies),
        );
      } catch (err) {
        if (err instanceof SessionExpired) return;
        replaceChildren(message, errorBox(errorText(err)));
      } finally {
        submit.disabled = false;
        submit.textContent = strings.search;
      }
    });
    return h(
      "div",
      { class: "pacs-panel", "data-testid": "pacs-panel" },
      h("div", { class: "panel-head" }, h("h4", {}, strings.attachStudy), h("button", { type: "button", class: "link", onclick: close }, strings.closePanel)),
      form,
      results,
    );
  };

  const caseItem = (c: Case): HTMLElement => {
    const studies = h("div", { class: "case-studies" });
    const imports = h("ul", { class: "imports", "data-testid": "imports" });
    const panelSlot = h("div");
    const entry = { el: h("li"), studies, imports, case: c };
    const attach = h("button", { type: "button", "data-testid": "attach-study", disabled: closed }, strings.attachStudy);
    const close = () => {
      replaceChildren(panelSlot);
      attach.hidden = false;
    };
    attach.addEventListener("click", () => {
      attach.hidden = true;
      replaceChildren(panelSlot, pacsPanel(entry, close));
    });
    const sex = c.patient_sex ? ` · ${c.patient_sex}` : "";
    const born = c.patient_birth_date ? ` · ${c.patient_birth_date}` : "";
    entry.el = h(
      "li",
      { class: "case-item", "data-testid": "case", "data-case-id": c.id },
      h("h3", {}, strings.caseHeading(strings.personName(c.patient_name), c.patient_id), h("span", { class: "muted small" }, born + sex)),
      c.clinical_question ? h("p", { class: "question" }, c.clinical_question) : null,
      studies,
      imports,
      attach,
      panelSlot,
    );
    renderStudies(c, studies);
    caseEls.set(c.id, entry);
    return entry.el;
  };

  // The add-case form.
  const fields: Record<Exclude<CaseField, "form">, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement> = {
    patient_id: h("input", { type: "text", required: true, maxlength: 64, "data-testid": "case-patient-id" }),
    patient_name: h("input", { type: "text", required: true, maxlength: 324, "data-testid": "case-patient-name" }),
    patient_birth_date: h("input", { type: "date", "data-testid": "case-birth-date" }),
    patient_sex: h(
      "select",
      { "data-testid": "case-sex" },
      h("option", { value: "" }, strings.sexUnknown),
      h("option", { value: "M" }, strings.sexMale),
      h("option", { value: "F" }, strings.sexFemale),
      h("option", { value: "O" }, strings.sexOther),
    ),
    clinical_question: h("textarea", { rows: 2, "data-testid": "case-question" }),
  };
  const errors = new Map<CaseField, HTMLElement>();
  const slot = (f: CaseField) => {
    const el = h("span", { class: "field-error", "data-field": f, "aria-live": "polite" });
    errors.set(f, el);
    return el;
  };
  const labelled = (label: string, f: Exclude<CaseField, "form">) => h("label", {}, label, fields[f], slot(f));
  const addBtn = h("button", { type: "submit", class: "primary", "data-testid": "add-case" }, strings.addCase);
  const formMessage = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "case-form", "data-testid": "case-form" },
    h("h3", {}, strings.addCase),
    h(
      "div",
      { class: "form-grid" },
      labelled(strings.patientId, "patient_id"),
      labelled(strings.patientName, "patient_name"),
      labelled(strings.birthDate, "patient_birth_date"),
      labelled(strings.sex, "patient_sex"),
    ),
    labelled(strings.clinicalQuestion, "clinical_question"),
    slot("form"),
    h("div", { class: "form-actions" }, addBtn, formMessage),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of errors.values()) replaceChildren(el);
    replaceChildren(formMessage);
    const patientId = fields.patient_id.value.trim();
    const patientName = fields.patient_name.value.trim();
    if (!patientId || !patientName) {
      if (!patientId) errors.get("patient_id")!.textContent = strings.required;
      if (!patientName) errors.get("patient_name")!.textContent = strings.required;
      return;
    }
    addBtn.disabled = true;
    try {
      const c = await addCase(session, cid, {
        patient_id: patientId,
        patient_name: patientName,
        patient_birth_date: fields.patient_birth_date.value || null,
        patient_sex: fields.patient_sex.value,
        clinical_question: fields.clinical_question.value,
      });
      list.querySelector(".empty")?.remove();
      list.append(caseItem(c));
      form.reset();
      replaceChildren(formMessage, h("span", { class: "ok-text" }, strings.caseAdded));
    } catch (err) {
      if (err instanceof SessionExpired) return;
      const f = caseErrorField(err);
      const text = err instanceof ApiError && f !== "form" ? err.message : errorText(err);
      replaceChildren(errors.get(f)!, errorBox(text));
    } finally {
      addBtn.disabled = false;
    }
  });

  replaceChildren(list, consultation.cases.length ? consultation.cases.map(caseItem) : h("li", { class: "empty" }, strings.noCases));

  // Imports already running or done for these cases.
  void consultationImports(session, cid)
    .then((jobs) => {
      for (const job of jobs) caseEls.get(job.case_id)?.imports.append(importRow(job));
    })
    .catch((err) => {
      if (!(err instanceof SessionExpired)) replaceChildren(listMessage, errorBox(errorText(err)));
    });

  return {
    el: h("section", { class: "panel cases", "data-testid": "cases-section" }, h("h2", {}, strings.casesTitle), listMessage, list, closed ? null : form),
    dispose() {
      for (const stop of stops) stop();
      stops.clear();
    },
  };
}
