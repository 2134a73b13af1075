/** The admin's audit trail: filters in the address (so a search can be shared and reloaded),
 * a page of events newest first, and the same selection downloaded as CSV. */

import { h, replaceChildren } from "../dom";
import type { Page } from "../router";
import { errorFromResponse, type Session } from "../session";
import { strings } from "../strings";
import { topBar } from "./chrome";
import { errorText, loadInto } from "./load";

export const AUDIT_PATH = "/admin/audit";
const PAGE_SIZE = 50;

export interface AuditEvent {
  id: number;
  at: string;
  actor_id: number | null;
  actor_email: string;
  action: string;
  object_type: string;
  object_id: string;
  consultation_id: number | null;
  client_addr: string;
  outcome: string;
  detail: Record<string, unknown>;
}

interface AuditPage {
  items: AuditEvent[];
  total: number;
}

/** The filters the page offers, as the API names them. */
export const AUDIT_FILTERS = ["actor_email", "action", "outcome", "patient_id", "study", "since", "until"] as const;
type Filter = (typeof AUDIT_FILTERS)[number];

/** The API query of the page's address: its filters, times as the instants they name. */
export function auditQuery(url: URL, offset = 0): URLSearchParams {
  const q = new URLSearchParams();
  for (const name of AUDIT_FILTERS) {
    const value = url.searchParams.get(name)?.trim();
    if (!value) continue;
    // datetime-local values are the browser's local time; the API takes instants.
    q.set(name, name === "since" || name === "until" ? new Date(value).toISOString() : value);
  }
  if (offset) q.set("offset", String(offset));
  return q;
}

function objectText(e: AuditEvent): string {
  return e.object_type ? `${e.object_type} ${e.object_id}` : "";
}

function row(e: AuditEvent): HTMLElement {
  return h(
    "tr",
    { "data-testid": "audit-row", "data-outcome": e.outcome },
    h("td", {}, new Date(e.at).toLocaleString(strings.locale)),
    h("td", {}, e.actor_email),
    h("td", {}, e.action),
    h("td", { class: `outcome outcome-${e.outcome}` }, strings.auditOutcomeName(e.outcome)),
    h("td", { class: "uid" }, objectText(e)),
    h("td", {}, e.client_addr),
    h("td", { class: "detail" }, h("code", {}, JSON.stringify(e.detail))),
  );
}

async function downloadCsv(session: Session, query: URLSearchParams): Promise<void> {
  const response = await session.fetch(`/api/audit.csv?${query}`, { headers: { Accept: "text/csv" } });
  if (!response.ok) throw await errorFromResponse(response);
  const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "")?.[1] ?? "audit.csv";
  const link = h("a", { href: URL.createObjectURL(await response.blob()), download: name });
  link.click();
  URL.revokeObjectURL(link.href);
}

export function auditPage(session: Session, url: URL, signOut: () => void, navigate: (path: string) => void): Page {
  const offset = Math.max(0, Number(url.searchParams.get("offset")) || 0);
  const value = (name: Filter) => url.searchParams.get(name) ?? "";
  const input = (name: Filter, label: string, type = "text") =>
    h("label", {}, label, h("input", { type, name, value: value(name), "data-testid": `audit-${name}` }));
  const outcome = h(
    "select",
    { name: "outcome", "data-testid": "audit-outcome" },
    h("option", { value: "" }, strings.auditAnyOutcome),
    ...["success", "failure", "denied"].map((o) => h("option", { value: o, selected: value("outcome") === o }, strings.auditOutcomeName(o))),
  );
  const problem = h("p", { class: "error-inline", role: "alert", "data-testid": "audit-problem" });
  const exportButton = h("button", { type: "button", "data-testid": "audit-export" }, strings.auditExport);
  exportButton.addEventListener("click", async () => {
    exportButton.disabled = true;
    replaceChildren(problem);
    try {
      await downloadCsv(session, auditQuery(url));
    } catch (err) {
      replaceChildren(problem, errorText(err));
    } finally {
      exportButton.disabled = false;
    }
  });
  const form = h(
    "form",
    { class: "audit-filters", "data-testid": "audit-filters" },
    input("actor_email", strings.auditWho),
    input("action", strings.auditAction),
    h("label", {}, strings.auditOutcome, outcome),
    input("patient_id", strings.auditPatient),
    input("study", strings.auditStudy),
    input("since", strings.auditSince, "datetime-local"),
    input("until", strings.auditUntil, "datetime-local"),
    h("button", { type: "submit", class: "primary", "data-testid": "audit-search" }, strings.search),
    exportButton,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [name, v] of new FormData(form)) if (typeof v === "string" && v.trim()) q.set(name, v.trim());
    navigate(`${AUDIT_PATH}?${q}`);
  });
  const at = (n: number) => {
    const next = new URL(url);
    if (n) next.searchParams.set("offset", String(n));
    else next.searchParams.delete("offset");
    return next.pathname + next.search;
  };
  const results = h("div", { class: "audit-results", "aria-busy": "true" }, strings.loading);
  loadInto(results, async () => {
    const query = auditQuery(url, offset);
    query.set("limit", String(PAGE_SIZE));
    const page = await session.json<AuditPage>(`/api/audit?${query}`);
    if (!page.items.length) return [h("p", { class: "empty", "data-testid": "audit-empty" }, strings.auditNone)];
    return [
      h("p", { "data-testid": "audit-total" }, strings.auditTotal(page.total)),
      h(
        "table",
        { class: "audit-table", "data-testid": "audit-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...[strings.auditTime, strings.auditWho, strings.auditAction, strings.auditOutcome, strings.auditObject, strings.auditFrom, strings.auditDetail].map((t) =>
              h("th", {}, t),
            ),
          ),
        ),
        h("tbody", {}, page.items.map(row)),
      ),
      h(
        "nav",
        { class: "pager" },
        offset > 0 ? h("a", { href: at(Math.max(0, offset - PAGE_SIZE)), "data-testid": "audit-newer" }, strings.auditNewer) : null,
        offset + PAGE_SIZE < page.total ? h("a", { href: at(offset + PAGE_SIZE), "data-testid": "audit-older" }, strings.auditOlder) : null,
      ),
    ];
  });
  return {
    el: h(
      "div",
      { class: "page audit-page" },
      topBar(session, signOut),
      h("main", { class: "content" }, h("h1", {}, strings.auditTitle), form, problem, results),
    ),
  };
}
