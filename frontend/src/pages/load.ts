/** Filling a part of a page from the server: loading state, and on failure a message with a
 * retry (a session that ended has already taken the user to sign in). */

import { errorBox, replaceChildren, type Child } from "../dom";
import { ApiError, SessionExpired } from "../session";
import { strings } from "../strings";

/** What to tell the user of a failed request, in their language (by the error's code). */
export function errorText(err: unknown): string {
  return err instanceof ApiError ? strings.apiError(err.code, err.message) : strings.networkError;
}

/** Loads into `target` now; returns the function that loads again. */
export function loadInto(target: HTMLElement, render: () => Promise<Child[]>): () => Promise<void> {
  const load = async (): Promise<void> => {
    target.setAttribute("aria-busy", "true");
    replaceChildren(target, strings.loading);
    try {
      replaceChildren(target, await render());
    } catch (err) {
      if (err instanceof SessionExpired) return;
      replaceChildren(target, errorBox(errorText(err), { label: strings.retry, run: () => void load() }));
    } finally {
      target.setAttribute("aria-busy", "false");
    }
  };
  void load();
  return load;
}
