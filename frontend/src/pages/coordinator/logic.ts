/** The coordinator pages' decisions that need no DOM: where an API error goes, import progress. */

import { ApiError } from "../../session";
import type { ImportJob } from "./api";

/** Form fields an API error can be shown next to. */
export type FormField =
  | "title"
  | "description"
  | "start"
  | "end"
  | "timezone"
  | "host_hospital_id"
  | "host_user_id"
  | "invitations"
  | "form";

const FORM_FIELDS = new Set<string>(["title", "description", "start", "end", "timezone", "host_hospital_id", "host_user_id", "invitations"]);

/**
 * The field an error belongs next to: the API's `field` (`invitations.2.user_id` → the
 * invitees), a booking clash next to the host expert; else the form as a whole.
 */
export function errorField(err: unknown): FormField {
  if (!(err instanceof ApiError)) return "form";
  if (err.code === "booking_clash") return "host_user_id";
  const head = (err.field ?? "").replace(/^body\./, "").split(".")[0];
  return FORM_FIELDS.has(head) ? (head as FormField) : "form";
}

/** Case form fields. */
export type CaseField = "patient_id" | "patient_name" | "patient_birth_date" | "patient_sex" | "clinical_question" | "form";

export function caseErrorField(err: unknown): CaseField {
  if (!(err instanceof ApiError)) return "form";
  const head = (err.field ?? "").split(".")[0];
  return ["patient_id", "patient_name", "patient_birth_date", "patient_sex", "clinical_question"].includes(head)
    ? (head as CaseField)
    : "form";
}

export function importFinished(job: ImportJob): boolean {
  return job.status === "done" || job.status === "failed";
}

/** Progress in [0, 1], or null while the total is unknown. */
export function importFraction(job: ImportJob): number | null {
  if (job.status === "done") return 1;
  if (!job.instances_total) return null;
  return Math.min(1, job.instances_done / job.instances_total);
}

/**
 * Polls an import until it is done or failed, calling `onUpdate` with each state. Returns a
 * stop function. Network errors are reported and polling goes on (the import runs in the
 * server regardless); `intervalMs` grows to 3 s while nothing moves.
 */
export function pollImport(
  job: ImportJob,
  fetchJob: (id: number) => Promise<ImportJob>,
  onUpdate: (job: ImportJob, error?: unknown) => void,
  options: { intervalMs?: number; maxIntervalMs?: number; setTimer?: (fn: () => void, ms: number) => unknown; clearTimer?: (t: unknown) => void } = {},
): () => void {
  const base = options.intervalMs ?? 700;
  const max = options.maxIntervalMs ?? 3000;
  const setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = options.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  let stopped = false;
  let timer: unknown = null;
  let interval = base;
  let last = job;
  const tick = async () => {
    timer = null;
    let error: unknown;
    try {
      const next = await fetchJob(last.id);
      if (stopped) return;
      const moved = next.instances_done !== last.instances_done || next.status !== last.status;
      interval = moved ? base : Math.min(max, Math.round(interval * 1.5));
      last = next;
    } catch (err) {
      if (stopped) return;
      error = err;
      interval = Math.min(max, Math.round(interval * 1.5));
    }
    onUpdate(last, error);
    if (!stopped && !importFinished(last)) timer = setTimer(() => void tick(), interval);
  };
  if (!importFinished(job)) timer = setTimer(() => void tick(), base);
  return () => {
    stopped = true;
    if (timer !== null) clearTimer(timer);
  };
}
