// The playground's web chat: plain JavaScript, no build step, nothing loaded from elsewhere.
// It draws what the Bot API emulator holds (GET /api/...), follows /api/events (SSE) and acts
// only through the JSON API, like any script could. Text from the bot is never parsed as
// HTML: messages arrive as text + entities (what Telegram clients get) and become DOM nodes.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  bot: null,
  conversations: [],
  current: null, // conversation key
  messages: new Map(), // "chat:message_id" -> Bot API Message
  unread: new Map(), // conversation key -> count
  commands: [],
  lastEvent: 0,
  actionTimer: null,
  smsc: null,
};

// ---- small helpers -----------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function threadOf(message) {
  return message.is_topic_message ? message.message_thread_id : null;
}

function conversationOf(message) {
  const chat = message.chat.id;
  const thread = threadOf(message);
  return state.conversations.find((c) => c.chat_id === chat && c.thread_id === thread)
    || state.conversations.find((c) => c.chat_id === chat && c.thread_id === null);
}

function currentConversation() {
  return state.conversations.find((c) => c.key === state.current);
}

function formatSize(size) {
  let value = size;
  for (const unit of ["B", "KB", "MB", "GB"]) {
    if (value < 1024 || unit === "GB") return unit === "B" ? `${value} B` : `${value.toFixed(1)} ${unit}`;
    value /= 1024;
  }
  return `${size} B`;
}

function formatTime(unix) {
  return new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function initials(title) {
  return title.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0]).join("").toUpperCase();
}

function showToast(text) {
  const toast = $("toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(showToast.timer);
  showToast.timer = setTimeout(() => { toast.hidden = true; }, 4000);
}

function showAlert(text) {
  const dialog = $("alert-dialog");
  $("alert-text").textContent = text;
  if (typeof dialog.showModal === "function" && !dialog.open) dialog.showModal();
}

function setView(view) {
  document.body.dataset.view = view;
}

// ---- Telegram's entities to DOM (what HTML parse mode means on screen) --------------------

const SAFE_URL = /^(https?:|tg:|mailto:)/i;

function entityNode(entity, text) {
  switch (entity.type) {
    case "bold": return el("strong");
    case "italic": return el("em");
    case "underline": return el("u");
    case "strikethrough": return el("s");
    case "code": return el("code");
    case "pre": {
      const pre = el("pre");
      if (entity.language) pre.dataset.language = entity.language;
      return pre;
    }
    case "spoiler": {
      const span = el("span", { class: "spoiler", tabindex: "0", role: "button", "aria-label": "spoiler, press to reveal" });
      const reveal = () => { span.classList.add("revealed"); span.removeAttribute("role"); span.removeAttribute("aria-label"); span.removeAttribute("tabindex"); };
      span.addEventListener("click", reveal);
      span.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); reveal(); } });
      return span;
    }
    case "blockquote": return el("blockquote");
    case "expandable_blockquote": {
      const quote = el("blockquote", { class: "expandable collapsed", tabindex: "0", title: "press to expand" });
      const toggle = () => quote.classList.toggle("collapsed");
      quote.addEventListener("click", toggle);
      quote.addEventListener("keydown", (e) => { if (e.key === "Enter") toggle(); });
      return quote;
    }
    case "text_link": case "url": {
      const href = entity.type === "url" ? text : entity.url;
      if (!SAFE_URL.test(href || "")) return el("span", { class: "link" });
      return el("a", { href, target: "_blank", rel: "noopener noreferrer" });
    }
    case "email": return el("a", { href: `mailto:${text}` });
    case "bot_command": {
      // As in Telegram: a command in the bot's text is a link that sends it.
      return el("a", { href: "#", class: "command", onclick: (e) => { e.preventDefault(); sendText(text.split("@")[0]); } });
    }
    case "mention": case "hashtag": case "cashtag": case "phone_number": case "text_mention":
      return el("span", { class: "mention" });
    default: return el("span");
  }
}

// Entities nest (the emulator builds them from well-formed HTML); offsets are UTF-16 code
// units, which is exactly how JavaScript indexes strings.
function renderEntities(text, entities) {
  const sorted = (entities || []).slice().sort((a, b) => a.offset - b.offset || b.length - a.length);
  const build = (start, end, list) => {
    const frag = document.createDocumentFragment();
    let cursor = start;
    let i = 0;
    while (i < list.length) {
      const entity = list[i];
      const eStart = Math.max(entity.offset, cursor);
      const eEnd = Math.min(entity.offset + entity.length, end);
      if (eStart > cursor) frag.append(text.slice(cursor, eStart));
      const inner = [];
      let j = i + 1;
      while (j < list.length && list[j].offset < eEnd) { inner.push(list[j]); j += 1; }
      if (eEnd > eStart) {
        const node = entityNode(entity, text.slice(eStart, eEnd));
        node.append(build(eStart, eEnd, inner));
        frag.append(node);
      }
      cursor = Math.max(cursor, eEnd);
      i = j;
    }
    if (cursor < end) frag.append(text.slice(cursor, end));
    return frag;
  };
  return build(0, text.length, sorted.filter((e) => e.length > 0));
}

// ---- messages --------------------------------------------------------------------------

const key = (chatId, messageId) => `${chatId}:${messageId}`;

function renderKeyboard(message) {
  const rows = (message.reply_markup || {}).inline_keyboard || [];
  if (!rows.length) return null;
  const board = el("div", { class: "keyboard", role: "group", "aria-label": "Buttons" });
  for (const row of rows) {
    const line = el("div", { class: "row" });
    for (const button of row) {
      if (button.url) {
        line.append(el("a", { class: "kb", href: button.url, target: "_blank", rel: "noopener noreferrer" }, button.text, " ↗"));
      } else {
        line.append(el("button", {
          type: "button",
          class: "kb",
          "data-callback": button.callback_data || "",
          onclick: (e) => pressButton(message, button, e.currentTarget),
        }, button.text));
      }
    }
    board.append(line);
  }
  return board;
}

function renderDocument(message) {
  const doc = message.document;
  const name = doc.file_name || "document";
  const ext = (name.split(".").pop() || "file").slice(0, 4).toUpperCase();
  return el("div", { class: "file" },
    el("span", { class: "file-icon", "aria-hidden": "true" }, ext),
    el("span", { class: "file-facts" },
      el("span", { class: "file-name" }, name),
      el("span", { class: "file-size" }, doc.file_size !== undefined ? formatSize(doc.file_size) : "")),
    el("a", {
      class: "file-download",
      href: `/api/files/${encodeURIComponent(doc.file_id)}`,
      download: name,
      "aria-label": `Download ${name}`,
    }, "Download"));
}

function renderMessage(message) {
  const mine = !message.from || !message.from.is_bot;
  const conv = conversationOf(message);
  const li = el("li", { class: `msg ${mine ? "me" : "bot"}`, "data-key": key(message.chat.id, message.message_id), tabindex: "-1" });
  const bubble = el("div", { class: "bubble" });
  if (conv && conv.type !== "private") {
    const who = mine ? (message.from ? message.from.first_name : "you") : state.bot.first_name;
    bubble.append(el("p", { class: "sender" }, who));
  }
  const quoted = message.reply_to_message;
  if (quoted) {
    const snippet = (quoted.text || quoted.caption || (quoted.document ? quoted.document.file_name : "")).slice(0, 80);
    bubble.append(el("div", { class: "quote" }, el("strong", {}, quoted.from ? quoted.from.first_name : ""), el("span", {}, snippet)));
  }
  if (message.document) bubble.append(renderDocument(message));
  const text = message.text !== undefined ? message.text : message.caption;
  const entities = message.text !== undefined ? message.entities : message.caption_entities;
  if (text) bubble.append(el("div", { class: "text" }, renderEntities(text, entities)));
  bubble.append(el("p", { class: "meta" }, message.edit_date ? "edited · " : "", el("time", { datetime: new Date(message.date * 1000).toISOString() }, formatTime(message.date))));
  li.append(bubble);
  const keyboard = renderKeyboard(message);
  if (keyboard) li.append(keyboard);
  return li;
}

function messagesOf(conv) {
  return [...state.messages.values()]
    .filter((m) => m.chat.id === conv.chat_id && (conv.type === "private" || threadOf(m) === conv.thread_id))
    .sort((a, b) => a.message_id - b.message_id);
}

function nearBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 120;
}

function drawMessages() {
  const conv = currentConversation();
  const list = $("messages");
  list.replaceChildren();
  const items = messagesOf(conv);
  if (!items.length) {
    // Like Telegram's START button in a new chat with a bot.
    const start = el("button", { type: "button", class: "start", onclick: () => sendText("/start") }, "Start");
    list.append(el("li", { class: "empty" }, conv.allowed
      ? "No messages yet. Press Start, type /tasks, or open the / menu for every command."
      : "Type /tasks here to see what the bot tells a chat that is not on its allowlist.",
    conv.allowed ? el("br") : null, conv.allowed ? start : null));
  }
  for (const message of items) list.append(renderMessage(message));
  list.scrollTop = list.scrollHeight;
}

// Put one message in place (new, or edited in place), keeping keyboard focus where it was.
function upsertMessage(message) {
  const k = key(message.chat.id, message.message_id);
  const isNew = !state.messages.has(k);
  state.messages.set(k, message);
  const conv = conversationOf(message);
  if (!conv) return;
  if (conv.key !== state.current) {
    if (isNew) {
      state.unread.set(conv.key, (state.unread.get(conv.key) || 0) + 1);
      drawChatList();
    }
    return;
  }
  const list = $("messages");
  const stick = nearBottom(list);
  const fresh = renderMessage(message);
  const old = list.querySelector(`li[data-key="${k}"]`);
  if (old) {
    const focused = old.contains(document.activeElement) ? document.activeElement : null;
    old.replaceWith(fresh);
    if (focused) {
      const again = focused.dataset && focused.dataset.callback !== undefined
        ? fresh.querySelector(`button[data-callback]`) : null;
      (again || fresh).focus();
    }
  } else {
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.append(fresh);
  }
  if (stick || (isNew && message.from && !message.from.is_bot)) list.scrollTop = list.scrollHeight;
  if (message.from && message.from.is_bot && isNew) clearAction();
}

function removeMessage(chatId, messageId) {
  state.messages.delete(key(chatId, messageId));
  const old = $("messages").querySelector(`li[data-key="${key(chatId, messageId)}"]`);
  if (old) old.remove();
}

// ---- chat list, header, composer ------------------------------------------------------------

function drawChatList() {
  const list = $("chat-list");
  list.replaceChildren();
  for (const conv of state.conversations) {
    const unread = state.unread.get(conv.key) || 0;
    const label = conv.topic ? `${conv.title} › ${conv.topic}` : conv.title;
    const button = el("button", {
      type: "button",
      class: `chat-item${conv.allowed ? "" : " refused"}`,
      "aria-current": conv.key === state.current ? "true" : null,
      "data-key": conv.key,
      onclick: () => selectConversation(conv.key, true),
    },
    el("span", { class: `avatar${conv.topic ? " topic" : ""}${conv.allowed ? "" : " refused"}`, "aria-hidden": "true" }, conv.topic ? "#" : initials(conv.title)),
    el("span", { class: "chat-text" },
      el("span", { class: "chat-name" }, label, conv.key === "stranger" ? el("span", { class: "as" }, " as Mallory") : null),
      el("span", { class: "chat-about" }, conv.about)),
    unread ? el("span", { class: "badge", "aria-label": `${unread} new` }, String(unread)) : null);
    list.append(el("li", {}, button));
  }
}

function selectConversation(convKey, focusComposer) {
  state.current = convKey;
  state.unread.delete(convKey);
  const conv = currentConversation();
  $("chat-title").textContent = conv.topic ? `${conv.title} › ${conv.topic}` : conv.title;
  $("chat-about").textContent = conv.about;
  $("chat-avatar").textContent = conv.topic ? "#" : initials(conv.title);
  $("chat-avatar").className = `avatar${conv.topic ? " topic" : ""}${conv.allowed ? "" : " refused"}`;
  $("composer-input").placeholder = `Message as ${conv.as_user.first_name}`;
  clearAction();
  drawChatList();
  drawMessages();
  setView("chat");
  if (focusComposer) $("composer-input").focus();
}

// The demo user's Telegram app language: the bot answers in it unless the chat chose /language.
function userLanguage() {
  return $("language").value;
}

async function sendText(text) {
  const conv = currentConversation();
  if (!conv || !text.trim()) return;
  try {
    const data = await api("POST", `/api/chats/${conv.chat_id}/messages`, { text, thread_id: conv.thread_id, language_code: userLanguage() });
    upsertMessage(data.message);
  } catch (err) {
    showToast(`Not sent: ${err.message}`);
  }
}

async function pressButton(message, button, node) {
  node.setAttribute("aria-busy", "true");
  try {
    await api("POST", `/api/chats/${message.chat.id}/messages/${message.message_id}/press`, { data: button.callback_data, language_code: userLanguage() });
  } catch (err) {
    showToast(`Button: ${err.message}`);
  } finally {
    node.removeAttribute("aria-busy");
  }
}

const ACTIONS = {
  typing: "typing…",
  upload_document: "sending a file…",
  upload_photo: "sending a photo…",
};

function showAction(event) {
  const conv = currentConversation();
  if (!conv || conv.chat_id !== event.chat_id || (conv.type !== "private" && (event.thread_id ?? null) !== conv.thread_id)) return;
  $("chat-action").textContent = `${state.bot.first_name} is ${ACTIONS[event.action] || event.action.replace(/_/g, " ") + "…"}`;
  clearTimeout(state.actionTimer);
  state.actionTimer = setTimeout(clearAction, 6000); // Telegram shows an action for ~5 s
}

function clearAction() {
  clearTimeout(state.actionTimer);
  $("chat-action").textContent = "";
}

function drawMenu() {
  const menu = $("menu");
  menu.replaceChildren(el("p", { class: "menu-title" }, "Commands (from setMyCommands)"));
  if (!state.commands.length) menu.append(el("p", { class: "menu-empty" }, "The bot has not set a menu."));
  for (const command of state.commands) {
    menu.append(el("button", {
      type: "button",
      class: "menu-item",
      onclick: () => { closeMenu(); sendText(`/${command.command}`); $("composer-input").focus(); },
    }, el("span", { class: "cmd" }, `/${command.command}`), el("span", { class: "desc" }, command.description)));
  }
}

function openMenu() {
  drawMenu();
  $("menu").hidden = false;
  $("menu-button").setAttribute("aria-expanded", "true");
  const first = $("menu").querySelector("button");
  if (first) first.focus();
}

function closeMenu() {
  $("menu").hidden = true;
  $("menu-button").setAttribute("aria-expanded", "false");
}

// ---- the SMSC panel ------------------------------------------------------------------------

async function smscAction(method, path, body) {
  try {
    await api(method, path, body);
  } catch (err) {
    showToast(`SMSC: ${err.message}`);
  }
  await refreshSmsc();
}

function drawFaults() {
  const box = $("faults");
  box.replaceChildren();
  const current = state.smsc.fault;
  for (const fault of state.smsc.faults) {
    const on = current && current.kind === fault.kind;
    box.append(el("button", {
      type: "button",
      class: "fault",
      "aria-pressed": on ? "true" : "false",
      "data-kind": fault.kind,
      onclick: () => smscAction("PUT", "/api/smsc/fault", { kind: fault.kind }),
    }, fault.label));
  }
  box.append(el("button", {
    type: "button",
    class: "fault clear",
    disabled: current ? null : true,
    onclick: () => smscAction("DELETE", "/api/smsc/fault"),
  }, "Clear the fault"));
  $("fault-now").textContent = current
    ? `Now: ${current.label}. Try /tasks, or wait for the next poll.`
    : "SMSC behaves.";
}

const FINAL = new Set(["completed", "failed", "canceled"]);

function drawTasks() {
  const list = $("tasks");
  const focusedKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.action : null;
  list.replaceChildren();
  for (const task of state.smsc.tasks) {
    const actions = el("span", { class: "task-actions" });
    if (!FINAL.has(task.status)) {
      for (const [status, label] of [["completed", "Complete"], ["failed", "Fail"], ["canceled", "Cancel"]]) {
        actions.append(el("button", {
          type: "button",
          "data-action": `${task.id}:${status}`,
          "aria-label": `${label} task ${task.id}`,
          onclick: () => smscAction("PATCH", `/api/smsc/tasks/${task.id}`, { status }),
        }, label));
      }
      if (!task.size_bytes || task.size_bytes < 60000000) {
        actions.append(el("button", {
          type: "button",
          "data-action": `${task.id}:big`,
          "aria-label": `Give task ${task.id} a 60 MB file`,
          onclick: () => smscAction("PATCH", `/api/smsc/tasks/${task.id}`, { size_mb: 60 }),
        }, "60 MB"));
      }
    }
    const size = task.size_bytes ? ` · ${formatSize(task.size_bytes)} file` : "";
    list.append(el("li", { class: `task ${task.status}` },
      el("span", { class: "task-head" },
        el("span", { class: "task-id" }, `#${task.id}`),
        el("span", { class: `status ${task.status}` }, task.label)),
      el("span", { class: "task-name" }, task.name),
      el("span", { class: "task-file" }, `${task.file}${size}`),
      actions));
  }
  if (focusedKey) {
    const again = list.querySelector(`[data-action="${focusedKey}"]`);
    if (again) again.focus();
  }
}

async function refreshSmsc() {
  try {
    state.smsc = await api("GET", "/api/smsc");
  } catch (err) {
    return;
  }
  drawFaults();
  drawTasks();
}

// ---- live updates -------------------------------------------------------------------------

function setLive(text, kind) {
  const live = $("live");
  live.textContent = text;
  live.dataset.state = kind;
}

function handleEvent(data) {
  switch (data.type) {
    case "message": case "edit":
      upsertMessage(data.message);
      if (data.message.from && data.message.from.is_bot) scheduleSmscRefresh();
      break;
    case "delete": removeMessage(data.chat_id, data.message_id); break;
    case "action": showAction(data); break;
    case "toast": if (data.show_alert) showAlert(data.text); else showToast(data.text); break;
    case "commands": state.commands = data.commands; break;
    case "stopping": stopped(); break;
    default: break;
  }
}

function scheduleSmscRefresh() {
  clearTimeout(scheduleSmscRefresh.timer);
  scheduleSmscRefresh.timer = setTimeout(refreshSmsc, 300);
}

let source = null;

function follow() {
  source = new EventSource(`/api/events?after=${state.lastEvent}`);
  source.onopen = () => setLive("live", "live");
  source.onerror = () => setLive("reconnecting…", "down");
  source.onmessage = (e) => {
    state.lastEvent = Number(e.lastEventId) || state.lastEvent;
    handleEvent(JSON.parse(e.data));
  };
  source.addEventListener("reload", () => { source.close(); load(); });
  source.addEventListener("stopping", stopped);
}

function stopped() {
  if (source) source.close();
  setLive("stopped", "down");
  showToast("The playground stopped: run make demo again.");
}

async function load() {
  const data = await api("GET", "/api/state");
  state.bot = data.bot;
  state.conversations = data.conversations;
  state.commands = data.commands;
  state.lastEvent = data.last_event_id;
  state.smsc = data.smsc;
  if (data.poll_interval) $("poll-interval").textContent = String(Math.round(data.poll_interval));
  const chats = [...new Set(state.conversations.map((c) => c.chat_id))];
  const lists = await Promise.all(chats.map((id) => api("GET", `/api/chats/${id}/messages`)));
  state.messages.clear();
  for (const list of lists) for (const m of list.messages) state.messages.set(key(m.chat.id, m.message_id), m);
  selectConversation(state.current || state.conversations[0].key, false);
  drawFaults();
  drawTasks();
  follow();
}

// ---- wiring -------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("composer-input");
    const text = input.value;
    input.value = "";
    sendText(text);
  });
  $("menu-button").addEventListener("click", () => ($("menu").hidden ? openMenu() : closeMenu()));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("menu").hidden) { closeMenu(); $("menu-button").focus(); }
  });
  document.addEventListener("click", (e) => {
    if (!$("menu").hidden && !$("menu").contains(e.target) && e.target !== $("menu-button")) closeMenu();
  });
  $("composer-input").addEventListener("input", (e) => {
    if (e.target.value === "/" && $("menu").hidden) { openMenu(); e.target.focus(); }
  });
  for (const button of document.querySelectorAll("[data-show]")) {
    button.addEventListener("click", () => setView(button.dataset.show));
  }
  $("new-task").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const body = { name: form.elements.name.value };
    if (form.elements.big.checked) body.size_mb = 60;
    await smscAction("POST", "/api/smsc/tasks", body);
    form.reset();
  });
  setInterval(refreshSmsc, 5000); // scripted transitions happen on SMSC's side on their own
  load().catch((err) => setLive(`error: ${err.message}`, "down"));
});
