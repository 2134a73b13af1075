/**
 * The words of the app in the user's language: the one they chose (saved with their account
 * and remembered in this browser), else the browser's own, else Vietnamese. Chosen once as
 * the page loads, before anything is drawn; changing it reloads the page (setLanguage).
 */

import { en, type Strings } from "./i18n/en";
import { vi } from "./i18n/vi";

export type Language = "vi" | "en";
export type { Strings };

export const CATALOGUES: Record<Language, Strings> = { vi, en };
/** Each language in its own words, for the switch. */
export const LANGUAGE_NAMES: Record<Language, string> = { vi: "Tiếng Việt", en: "English" };
export const LANGUAGE_STORAGE_KEY = "hoichan.language";

export function isLanguage(value: unknown): value is Language {
  return value === "vi" || value === "en";
}

/** The saved choice, else the first of the browser's languages we have, else Vietnamese. */
export function pickLanguage(saved: string | null, browser: readonly string[]): Language {
  if (isLanguage(saved)) return saved;
  for (const tag of browser) {
    const primary = tag.toLowerCase().split("-")[0];
    if (isLanguage(primary)) return primary;
  }
  return "vi";
}

function initialLanguage(): Language {
  let saved: string | null = null;
  try {
    saved = globalThis.localStorage?.getItem(LANGUAGE_STORAGE_KEY) ?? null;
  } catch {
    // Storage refused (private mode): the browser's language decides.
  }
  const nav = globalThis.navigator as Navigator | undefined;
  return pickLanguage(saved, nav?.languages ?? (nav?.language ? [nav.language] : []));
}

export const language: Language = initialLanguage();
export const strings: Strings = CATALOGUES[language];

if (typeof document !== "undefined") document.documentElement.lang = language;

/** Remembers ``next`` in this browser and redraws the app in it, if it is another language. */
export function rememberLanguage(next: Language, reload: () => void = () => window.location.reload()): void {
  try {
    globalThis.localStorage.setItem(LANGUAGE_STORAGE_KEY, next);
  } catch {
    // Not remembered here; the account keeps it.
  }
  if (next !== language) reload();
}
