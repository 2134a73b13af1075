/**
 * Break the glass: an admin who must read a consultation's minutes or images states why and
 * gets a time-limited grant (POST .../break-glass), audited for review. Shown where a read
 * was refused with `break_glass_required`.
 */

import { errorBox, h, replaceChildren } from "../dom";
import type { Session } from "../session";
import { strings } from "../strings";

export const MIN_REASON = 10;

export function breakGlassForm(session: Session, consultationId: number, granted: () => void): HTMLElement {
  const reason = h("textarea", { name: "reason", rows: 3, required: true, minlength: MIN_REASON, maxlength: 2000, "data-testid": "break-glass-reason" });
  const minutes = h("select", { name: "minutes", "data-testid": "break-glass-minutes" },
    [30, 60, 120].map((m) => h("option", { value: m, selected: m === 60 }, strings.breakGlassMinutes(m))));
  const status = h("div", { role: "status" });
  const form = h(
    "form",
    { class: "break-glass", "data-testid": "break-glass" },
    h("p", {}, strings.breakGlassExplain),
    h("label", {}, strings.breakGlassReason, reason),
    h("label", {}, strings.breakGlassFor, minutes),
    h("button", { type: "submit", "data-testid": "break-glass-submit" }, strings.breakGlassSubmit),
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void (async () => {
      try {
        await session.json(`/api/consultations/${consultationId}/break-glass`, {
          method: "POST", json: { reason: reason.value.trim(), minutes: Number(minutes.value) },
        });
        granted();
      } catch (err) {
        replaceChildren(status, errorBox(err instanceof Error ? err.message : String(err)));
      }
    })();
  });
  return form;
}
