// Set up before every test file: the unit tests' expectations are written in English, so the
// app's words come from the English catalogue here (with no choice saved and no browser
// language, the app would speak Vietnamese).
import { vi } from "vitest";

vi.stubGlobal("localStorage", { getItem: (key: string) => (key === "hoichan.language" ? "en" : null) });
