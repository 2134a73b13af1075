/** The room's chat (history from the snapshot, then `chat:message`). */

import { errorBox, h, replaceChildren } from "../dom";
import { clock } from "../format";
import { strings } from "../strings";
import type { RoomConnection } from "./connection";
import { mergeChat, type ChatMessage } from "./model";

export class ChatPanel {
  private messages: ChatMessage[] = [];
  private readonly list = h("ol", { class: "chat-list", "data-testid": "chat-list", "aria-live": "polite" });
  private readonly input = h("input", { type: "text", name: "chat", maxlength: 2000, autocomplete: "off", placeholder: strings.chatPlaceholder, "data-testid": "chat-input", "aria-label": strings.chatPlaceholder });
  private readonly send = h("button", { type: "submit", "data-testid": "chat-send" }, strings.send);
  private readonly status = h("div", { class: "chat-status" });
  private readonly form = h("form", { class: "chat-form" }, this.input, this.send);
  readonly el = h("section", { class: "chat", "data-testid": "chat" }, h("h3", {}, strings.chat), this.list, this.status, this.form);
  private me: string | null = null;
  private counter = 0;

  constructor(private readonly connection: () => RoomConnection | null) {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.submit();
    });
  }

  setHistory(history: ChatMessage[], me: string | null): void {
    this.me = me;
    this.messages = mergeChat([], history);
    this.render();
  }

  receive(message: ChatMessage): void {
    this.messages = mergeChat(this.messages, [message]);
    this.render();
  }

  private async submit(): Promise<void> {
    const text = this.input.value.trim();
    if (!text) return;
    this.send.disabled = true;
    replaceChildren(this.status);
    try {
      const ack = await this.connection()?.request<{ message: ChatMessage }>("chat:send", { text, client_id: `c${Date.now()}-${this.counter++}` });
      if (ack) this.receive(ack.message);
      this.input.value = "";
    } catch (err) {
      replaceChildren(this.status, errorBox(strings.chatFailed(err instanceof Error ? err.message : String(err))));
    } finally {
      this.send.disabled = false;
    }
  }

  private render(): void {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    replaceChildren(
      this.list,
      this.messages.map((m) =>
        h(
          "li",
          { class: m.participant_id === this.me ? "chat-message mine" : "chat-message", "data-testid": "chat-message" },
          h("span", { class: "chat-author" }, m.name),
          h("time", { class: "chat-time", datetime: m.sent_at }, clock(m.sent_at)),
          h("p", { class: "chat-text" }, m.text),
        ),
      ),
    );
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }
}

