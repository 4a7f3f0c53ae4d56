// The agent desktop (/desk/): offers, conversations, composer, wrap-up. Plain ES module.
//
// Live events come over one websocket (LiveClient, static/js/live.js); REST snapshots are
// the truth: every stream is (re)built from its snapshot in `resync`, then events patch it.
// All server data is untrusted text: the DOM is built with nodes and textContent only.

import { LiveClient } from "./live.js";

const root = document.querySelector("[data-desk]");
if (root) start(root);

function start(root) {
  const T = JSON.parse(document.getElementById("desk-text").textContent);
  const LANG = document.documentElement.lang || undefined;
  const monitorSid = new URLSearchParams(location.search).get("monitor") || "";

  // ------------------------------------------------------------------ state

  const state = {
    apiBase: root.dataset.apiBase || "/desk/api/",
    agentStream: root.dataset.agentStream || "",
    workerSid: root.dataset.workerSid || "",
    monitorSid,
    worker: null,
    activities: [],
    capacity: {},
    dispositions: [],
    canned: [],
    offers: new Map(), // reservation sid → offer (+ _total seconds for the bar)
    conversations: new Map(), // conversation sid → Summary, in list order
    details: new Map(), // conversation sid → {readonly, conversation, messages, notes, templates, variables}
    subscribed: new Set(),
    openSid: "",
    pendingOpen: "",
    file: null,
    encodingTicket: 0,
    wrapupDone: new Set(), // conversations whose wrap-up this page saved
    leaving: new Map(), // conversation sid → the notice to show when it leaves (our own action)
  };

  const q = (sel, base = root) => base.querySelector(sel);
  const ui = {
    activity: q("[data-activity]"),
    capacity: q("[data-capacity]"),
    notice: q("[data-notice]"),
    connection: q("[data-connection]"),
    connectionText: q("[data-connection-text]"),
    error: q("[data-error]"),
    errorText: q("[data-error-text]"),
    announcer: q("[data-announcer]"),
    offers: q("[data-offers]"),
    list: q("[data-conversations]"),
    listEmpty: q("[data-conversations-empty]"),
    convEmpty: q("[data-conv-empty]"),
    convBody: q("[data-conv-body]"),
    convTitle: q("[data-conv-title]"),
    convSub: q("[data-conv-sub]"),
    window: q("[data-window]"),
    actions: q("[data-actions]"),
    transferOpen: q("[data-transfer-open]"),
    wrapupOpen: q("[data-wrapup-open]"),
    complete: q("[data-complete]"),
    readonlyBanner: q("[data-readonly-banner]"),
    wrappingBanner: q("[data-wrapping-banner]"),
    timeline: q("[data-timeline]"),
    composer: q("[data-composer-form]"),
    body: q("[data-body]"),
    suggest: q("[data-suggest]"),
    segments: q("[data-segments]"),
    smart: q("[data-smart]"),
    canned: q("[data-canned]"),
    file: q("[data-file]"),
    attached: q("[data-attached]"),
    send: q("[data-send]"),
    templateForm: q("[data-template-form]"),
    windowClosed: q("[data-window-closed]"),
    template: q("[data-template]"),
    templateFields: q("[data-template-fields]"),
    templatePreviewBox: q("[data-template-preview-box]"),
    templatePreview: q("[data-template-preview]"),
    templateSend: q("[data-template-send]"),
    customerEmpty: q("[data-customer-empty]"),
    customer: q("[data-customer]"),
    customerName: q("[data-customer-name]"),
    customerAddress: q("[data-customer-address]"),
    customerChannel: q("[data-customer-channel]"),
    customerCountry: q("[data-customer-country]"),
    attributesBox: q("[data-attributes-box]"),
    attributes: q("[data-attributes]"),
    noteBox: q("[data-note-box]"),
    noteForm: q("[data-note-form]"),
    noteBody: q("[data-note-body]"),
    transferDialog: q("[data-transfer-dialog]"),
    transferForm: q("[data-transfer-form]"),
    transferTarget: q("[data-transfer-target]"),
    wrapupDialog: q("[data-wrapup-dialog]"),
    wrapupForm: q("[data-wrapup-form]"),
    disposition: q("[data-disposition]"),
    wrapupNotes: q("[data-wrapup-notes]"),
    notesHint: q("[data-notes-hint]"),
    helpDialog: q("[data-help-dialog]"),
    helpOpen: q("[data-help-open]"),
  };

  // ------------------------------------------------------------------ helpers

  /** A translated string with `%(name)s` placeholders filled in. */
  function t(key, vars = {}) {
    const text = T[key] ?? key;
    return text.replace(/%\((\w+)\)s/g, (match, name) => (name in vars ? String(vars[name]) : match));
  }

  function plural(base, count) {
    return t(count === 1 ? `${base}_one` : `${base}_other`, { count });
  }

  /** Build an element: attrs may hold class, text, on<event> handlers and attributes. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function channelLabel(channel) {
    return T[`channel_${channel}`] ?? (channel ? String(channel) : T.channel_chat);
  }

  function channelBadge(channel) {
    const known = ["sms", "whatsapp", "messenger", "chat"].includes(channel) ? channel : "chat";
    return el("span", { class: `desk-badge desk-badge-${known}`, text: channelLabel(channel) });
  }

  function safeUrl(url) {
    if (!url) return null;
    try {
      const parsed = new URL(url, location.origin);
      return ["http:", "https:"].includes(parsed.protocol) ? parsed.href : null;
    } catch {
      return null;
    }
  }

  function toDate(iso) {
    const date = iso ? new Date(iso) : null;
    return date && !Number.isNaN(date.getTime()) ? date : null;
  }

  const timeFormat = new Intl.DateTimeFormat(LANG, { hour: "2-digit", minute: "2-digit" });
  const dayTimeFormat = new Intl.DateTimeFormat(LANG, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });

  function formatTime(iso) {
    const date = toDate(iso);
    if (!date) return "";
    const today = new Date().toDateString() === date.toDateString();
    return (today ? timeFormat : dayTimeFormat).format(date);
  }

  function timeNode(iso, cls = null) {
    const date = toDate(iso);
    if (!date) return null;
    return el("time", { class: cls, datetime: date.toISOString(), title: date.toLocaleString(LANG) }, formatTime(iso));
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return t("duration_seconds", { seconds: s });
    if (s < 3600) return t("duration_minutes", { minutes: Math.floor(s / 60) });
    return t("duration_hours", { hours: Math.floor(s / 3600), minutes: Math.floor((s % 3600) / 60) });
  }

  function customerName(item) {
    return item?.customer_name || item?.customer?.name || item?.customer_address || item?.customer?.address || T.unknown_customer;
  }

  function conversationStream(sid) {
    return `conversation:${sid}`;
  }

  function isTyping(target) {
    return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function debounce(fn, ms) {
    let timer = 0;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  // ------------------------------------------------------------------ REST

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    return q("input[name=csrfmiddlewaretoken]")?.value || "";
  }

  async function api(path, { method = "GET", json, form } = {}) {
    const headers = { Accept: "application/json" };
    const options = { method, headers, credentials: "same-origin" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (form) options.body = form;
    else if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(state.apiBase + path, options);
    } catch {
      throw new ApiError(T.error_network, 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = data?.message
        ? data.code ? t("error_with_code", { message: data.message, code: data.code }) : data.message
        : t("error_generic", { status: response.status });
      throw new ApiError(message, response.status, data?.code);
    }
    return data ?? {};
  }

  const convPath = (sid, action = "") =>
    `conversations/${encodeURIComponent(sid)}${action ? `/${action}` : ""}`;

  // ------------------------------------------------------------------ feedback

  let errorTimer = 0;
  function showError(error, { sticky = false } = {}) {
    ui.errorText.textContent = error instanceof Error ? error.message : String(error);
    ui.error.hidden = false;
    clearTimeout(errorTimer);
    if (!sticky) errorTimer = setTimeout(clearError, 15000);
  }

  function clearError() {
    ui.error.hidden = true;
    ui.errorText.textContent = "";
  }
  q("[data-error-close]").addEventListener("click", clearError);

  let noticeTimer = 0;
  function notice(text) {
    ui.notice.textContent = text;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { ui.notice.textContent = ""; }, 6000);
  }

  function announce(text) {
    // Re-set the text so the same sentence twice is announced twice.
    ui.announcer.textContent = "";
    setTimeout(() => { ui.announcer.textContent = text; }, 50);
  }

  /** Run an action with its button disabled; show the server's message on failure. */
  async function act(button, fn) {
    if (button) button.disabled = true;
    try {
      return await fn();
    } catch (error) {
      showError(error);
      return undefined;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ sound

  // Browsers only allow audio after a user gesture: the first click or key unlocks it.
  const audio = { ctx: null };
  function unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!audio.ctx) audio.ctx = new Context();
    if (audio.ctx.state === "suspended") audio.ctx.resume().catch(() => {});
  }
  document.addEventListener("pointerdown", unlockAudio);
  document.addEventListener("keydown", unlockAudio);

  function beep() {
    const ctx = audio.ctx;
    if (!ctx || ctx.state !== "running") return;
    const now = ctx.currentTime;
    for (const [offset, freq] of [[0, 880], [0.18, 1175]]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.18, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.15);
      osc.connect(gain).connect(ctx.destination);
      osc.start(now + offset);
      osc.stop(now + offset + 0.16);
    }
  }

  // ------------------------------------------------------------------ live

  const live = new LiveClient({
    url: root.dataset.wsPath || "/ws/desk/",
    resync,
    onEvent,
    onStatus: renderConnection,
    onControl,
  });

  function subscribe(stream) {
    if (!stream || state.subscribed.has(stream)) return;
    state.subscribed.add(stream);
    live.subscribe(stream);
  }

  function unsubscribe(stream) {
    if (!state.subscribed.delete(stream)) return;
    live.unsubscribe(stream);
  }

  async function resync(stream) {
    if (stream === state.agentStream) {
      const snapshot = await api("state");
      applyState(snapshot);
      return snapshot.streams?.[stream];
    }
    const sid = stream.replace(/^conversation:/, "");
    let snapshot;
    try {
      snapshot = await api(convPath(sid));
    } catch (error) {
      if (error.status === 403 || error.status === 404) dropConversation(sid, T.conversation_gone);
      throw error;
    }
    applyConversation(sid, snapshot);
    return snapshot.stream;
  }

  function onEvent(frame) {
    const data = frame.data || {};
    const sid = frame.stream?.startsWith("conversation:") ? frame.stream.slice("conversation:".length) : "";
    switch (frame.event) {
      case "reservation.created": return onOffer(data);
      case "reservation.updated": return onReservationUpdated(data);
      case "worker.activity": return onActivity(data);
      case "message.created": return onMessage(sid, data.message);
      case "message.status": return onMessageStatus(sid, data);
      case "note.created": return onNote(sid, data.note);
      case "conversation.updated": return onConversationUpdated(sid, data);
      default: return undefined;
    }
  }

  function onControl(frame) {
    if (frame.type === "revoked" && frame.stream?.startsWith("conversation:")) {
      const sid = frame.stream.slice("conversation:".length);
      state.subscribed.delete(frame.stream);
      if (sid === state.monitorSid) notice(T.conversation_gone);
      else dropConversation(sid, T.conversation_gone);
    } else if (frame.type === "closed") {
      showError(frame.code === 4401 ? T.error_signed_out : T.error_no_role, { sticky: true });
    } else if (frame.type === "error") {
      if (frame.stream) state.subscribed.delete(frame.stream);
      showError(t("error_stream", { message: frame.message || frame.code }));
    }
  }

  function renderConnection(status) {
    ui.connection.dataset.status = status;
    ui.connectionText.textContent = T[`status_${status}`] ?? status;
    if (status === "offline") probeSession();
    if (status === "live" && ui.errorText.textContent === T.error_signed_out) clearError();
  }

  // A socket refused at the handshake looks like any network failure to the browser; ask
  // the REST side (at most every 10 s) whether the session is gone, and say so.
  let probedAt = 0;
  async function probeSession() {
    if (Date.now() - probedAt < 10000) return;
    probedAt = Date.now();
    try {
      await api("encoding?body=");
    } catch (error) {
      if (error.status === 401) showError(T.error_signed_out, { sticky: true });
    }
  }
  renderConnection("connecting");

  // ------------------------------------------------------------------ snapshots

  function applyState(snapshot) {
    state.worker = snapshot.worker || null;
    state.activities = snapshot.activities || [];
    state.capacity = snapshot.capacity || {};
    state.dispositions = snapshot.dispositions || [];
    state.canned = snapshot.canned_responses || [];

    const fresh = new Map();
    for (const offer of snapshot.offers || []) {
      const known = state.offers.get(offer.reservation_sid);
      fresh.set(offer.reservation_sid, { ...offer, _total: known?._total ?? offerSeconds(offer) });
    }
    const gained = [...fresh.keys()].some((sid) => !state.offers.has(sid));
    state.offers = fresh;

    const conversations = new Map();
    for (const summary of snapshot.conversations || []) {
      const previous = state.conversations.get(summary.sid);
      // The snapshot of a conversation stream marks it read on the server, so keep the
      // count this page has seen for conversations the agent has not opened.
      const unread = summary.sid === state.openSid ? 0 : Math.max(summary.unread || 0, previous?.unread || 0);
      conversations.set(summary.sid, { ...summary, unread });
    }
    for (const sid of state.conversations.keys()) {
      if (!conversations.has(sid)) forgetConversation(sid);
    }
    state.conversations = conversations;
    for (const sid of conversations.keys()) subscribe(conversationStream(sid));

    renderActivity();
    renderCapacity();
    renderCanned();
    renderOffers();
    if (gained) beep();
    renderList();

    if (state.pendingOpen && conversations.has(state.pendingOpen)) {
      const sid = state.pendingOpen;
      state.pendingOpen = "";
      openConversation(sid);
    } else if (state.openSid && !conversations.has(state.openSid) && state.openSid !== state.monitorSid) {
      closeConversation();
    } else {
      renderConversation({ keepScroll: true });
    }
  }

  const refreshState = debounce(() => {
    if (!state.agentStream) return;
    api("state").then(applyState, showError);
  }, 150);

  function applyConversation(sid, snapshot) {
    const previous = state.details.get(sid);
    const detail = {
      readonly: Boolean(snapshot.readonly) || sid === state.monitorSid,
      conversation: snapshot.conversation || {},
      messages: new Map(),
      notes: new Map(),
      templates: snapshot.templates || [],
      variables: snapshot.variables || {},
    };
    for (const message of snapshot.messages || []) detail.messages.set(message.sid, message);
    // A message this page sent may be newer than the snapshot it raced with.
    for (const [msid, message] of previous?.messages || []) {
      if (!detail.messages.has(msid)) detail.messages.set(msid, message);
      else mergeMessage(detail, message);
    }
    for (const note of snapshot.notes || []) detail.notes.set(String(note.id), note);
    state.details.set(sid, detail);

    const summary = state.conversations.get(sid);
    if (summary) {
      const last = lastMessage(detail);
      if (last) {
        summary.last_body = previewOf(last);
        summary.last_message_at = last.date_created;
      }
      const conv = detail.conversation;
      if (conv.reservation_status === "wrapping" || conv.task_status === "wrapping") summary.status = "wrapping";
      renderList();
    }
    if (sid === state.openSid) renderConversation({ keepScroll: Boolean(previous) });
  }

  function forgetConversation(sid) {
    unsubscribe(conversationStream(sid));
    setTimeout(() => state.leaving.delete(sid), 3000); // the late one of event / answer
    state.details.delete(sid);
    state.wrapupDone.delete(sid);
  }

  /** The conversation left this agent (completed, transferred, revoked). */
  function dropConversation(sid, message) {
    const known = state.conversations.has(sid) || state.details.has(sid);
    // The server's events may beat our own POST's answer: say what the agent did.
    if (state.leaving.has(sid)) message = state.leaving.get(sid);
    forgetConversation(sid);
    state.conversations.delete(sid);
    if (sid === state.openSid) closeConversation();
    renderList();
    if (known && message) notice(message);
  }

  // ------------------------------------------------------------------ activity

  function renderActivity() {
    const select = ui.activity;
    select.replaceChildren(
      ...state.activities.map((a) => el("option", { value: a.sid, text: a.name })),
    );
    if (state.worker) select.value = state.worker.activity_sid;
    select.disabled = !state.worker || state.activities.length === 0;
    select.dataset.available = state.worker?.available ? "true" : "false";
  }

  ui.activity.addEventListener("change", async () => {
    const previous = state.worker?.activity_sid || "";
    const activitySid = ui.activity.value;
    const worker = await act(ui.activity, () => api("activity", { method: "POST", json: { activity_sid: activitySid } }));
    if (worker) {
      state.worker = { ...state.worker, ...(worker.worker || worker) };
      renderActivity();
      notice(t("activity_changed", { activity: state.worker.activity_name || "" }));
      refreshState();
    } else {
      ui.activity.value = previous;
    }
  });

  function onActivity(data) {
    if (!state.worker || (data.worker_sid && data.worker_sid !== state.worker.sid)) return;
    state.worker = {
      ...state.worker,
      activity_sid: data.activity_sid,
      activity_name: data.activity_name,
      available: data.available,
      activity_changed_at: data.changed_at,
    };
    renderActivity();
  }

  function renderCapacity() {
    // Channels the desk cannot serve (voice, default) only show when they hold something.
    const parts = Object.entries(state.capacity || {})
      .filter(([channel, c]) => `channel_${channel}` in T || (c.assigned ?? 0) > 0)
      .map(([channel, c]) =>
      t("capacity_item", { channel: channelLabel(channel), assigned: c.assigned ?? 0, capacity: c.capacity ?? 0 }),
    );
    ui.capacity.textContent = parts.join(" · ");
  }

  // ------------------------------------------------------------------ offers

  function offerSeconds(offer) {
    const end = toDate(offer.timeout_at);
    return end ? Math.max(1, (end.getTime() - Date.now()) / 1000) : 1;
  }

  function onOffer(data) {
    if (state.offers.has(data.reservation_sid)) return;
    state.offers.set(data.reservation_sid, { ...data, _total: offerSeconds(data) });
    renderOffers(); // the offers region is aria-live: the new card is announced
    beep();
  }

  function onReservationUpdated(data) {
    if (data.status !== "pending" && state.offers.delete(data.reservation_sid)) renderOffers();
    const sid = data.conversation_sid || [...state.conversations.values()].find((c) => c.reservation_sid === data.reservation_sid)?.sid;
    const summary = sid ? state.conversations.get(sid) : null;
    if (["accepted", "wrapping"].includes(data.status)) {
      if (summary && summary.reservation_sid === data.reservation_sid) {
        summary.status = data.status;
        renderList();
        if (sid === state.openSid) renderConversation({ keepScroll: true });
      } else {
        refreshState(); // a conversation gained: its summary comes with the snapshot
      }
    } else if (summary && summary.reservation_sid === data.reservation_sid) {
      dropConversation(sid, data.status === "completed" ? T.completed : T.conversation_gone);
      refreshState(); // capacity changed
    }
  }

  function renderOffers() {
    const cards = new Map([...ui.offers.children].map((card) => [card.dataset.reservation, card]));
    for (const [rsid, card] of cards) {
      if (!state.offers.has(rsid)) card.remove();
    }
    const ordered = oldestOffers();
    for (const offer of ordered) {
      if (!cards.has(offer.reservation_sid)) ui.offers.append(offerCard(offer));
    }
    tickOffers();
  }

  function oldestOffers() {
    return [...state.offers.values()].sort((a, b) =>
      String(a.waiting_since || "").localeCompare(String(b.waiting_since || "")));
  }

  function offerCard(offer) {
    const name = customerName(offer);
    const titleId = `offer-${offer.reservation_sid}`;
    const accept = el("button", {
      type: "button", class: "btn btn-primary", "data-testid": "offer-accept",
      "aria-keyshortcuts": "Alt+A", "aria-label": t("accept_label", { customer: name }),
      onclick: (event) => acceptOffer(offer.reservation_sid, event.currentTarget),
    }, T.accept);
    const reject = el("button", {
      type: "button", class: "btn", "data-testid": "offer-reject",
      "aria-label": t("reject_label", { customer: name }),
      onclick: (event) => rejectOffer(offer.reservation_sid, event.currentTarget),
    }, T.reject);
    return el("article", {
      class: "desk-offer", "data-testid": "offer", "data-reservation": offer.reservation_sid,
      "aria-labelledby": titleId,
    },
    el("div", { class: "desk-offer-head" },
      channelBadge(offer.channel),
      el("h3", { id: titleId, text: name }),
      offer.customer_address && offer.customer_address !== name
        ? el("span", { class: "desk-offer-address", text: offer.customer_address }) : null),
    el("p", { class: "desk-offer-meta" },
      el("span", { text: t("offer_queue", { queue: offer.queue_name || T.no_queue }) }),
      el("span", { "data-offer-waiting": "" })),
    el("div", { class: "desk-offer-timer" },
      el("span", { class: "desk-offer-bar", "aria-hidden": "true" }, el("span", { "data-offer-bar": "" })),
      el("span", { class: "desk-offer-countdown", "data-offer-countdown": "", "aria-live": "off" })),
    el("div", { class: "desk-offer-actions" }, reject, accept));
  }

  function tickOffers() {
    const now = Date.now();
    for (const card of ui.offers.children) {
      const offer = state.offers.get(card.dataset.reservation);
      if (!offer) continue;
      const end = toDate(offer.timeout_at);
      const left = end ? Math.max(0, Math.ceil((end.getTime() - now) / 1000)) : 0;
      const countdown = card.querySelector("[data-offer-countdown]");
      countdown.textContent = left > 0 ? t("offer_countdown", { seconds: left }) : T.offer_expired;
      countdown.setAttribute("aria-label", left > 0 ? t("offer_countdown_label", { seconds: left }) : T.offer_expired);
      card.classList.toggle("is-urgent", left <= 10);
      const bar = card.querySelector("[data-offer-bar]");
      bar.style.width = `${Math.min(100, (left / offer._total) * 100)}%`;
      const since = toDate(offer.waiting_since);
      card.querySelector("[data-offer-waiting]").textContent = since
        ? t("offer_waiting", { time: formatDuration((now - since.getTime()) / 1000) }) : "";
      // The server times the offer out; if that event was lost, drop the card a bit later.
      if (end && now - end.getTime() > 5000) {
        state.offers.delete(offer.reservation_sid);
        card.remove();
      }
    }
    updateTitle();
  }
  setInterval(tickOffers, 1000);

  async function acceptOffer(rsid, button) {
    const card = button?.closest("[data-testid=offer]");
    card?.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const result = await api(`reservations/${encodeURIComponent(rsid)}/accept`, { method: "POST" });
      state.offers.delete(rsid);
      renderOffers();
      if (result.conversation_sid) {
        state.pendingOpen = result.conversation_sid;
        if (state.conversations.has(result.conversation_sid)) openConversation(result.conversation_sid);
      }
      refreshState();
    } catch (error) {
      showError(error);
      card?.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      if (error.status === 404 || error.status === 409) {
        state.offers.delete(rsid);
        renderOffers();
      }
    }
  }

  async function rejectOffer(rsid, button) {
    const card = button?.closest("[data-testid=offer]");
    card?.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      await api(`reservations/${encodeURIComponent(rsid)}/reject`, { method: "POST" });
      state.offers.delete(rsid);
      renderOffers();
    } catch (error) {
      showError(error);
      card?.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }
  }

  function acceptOldest() {
    const oldest = oldestOffers()[0];
    if (!oldest) return;
    const button = ui.offers.querySelector(`[data-reservation="${CSS.escape(oldest.reservation_sid)}"] [data-testid=offer-accept]`);
    acceptOffer(oldest.reservation_sid, button);
  }

  // ------------------------------------------------------------------ conversation list

  function previewOf(message) {
    if (message.body) return message.body;
    return message.media?.length ? T.attachment_preview : "";
  }

  function renderList() {
    const focusedSid = document.activeElement?.closest?.("[data-testid=conversation-item]")?.dataset.conversation;
    const items = [...state.conversations.values()].map((summary) => el("li", {}, listItem(summary)));
    ui.list.replaceChildren(...items);
    ui.listEmpty.textContent = items.length ? "" : (state.agentStream ? T.no_conversations : "");
    ui.listEmpty.hidden = items.length > 0;
    if (focusedSid) ui.list.querySelector(`[data-conversation="${CSS.escape(focusedSid)}"]`)?.focus();
    updateTitle();
  }

  function listItem(summary) {
    const name = customerName(summary);
    const unread = summary.sid === state.openSid ? 0 : summary.unread || 0;
    return el("button", {
      type: "button",
      class: `desk-item${summary.status === "wrapping" ? " is-wrapping" : ""}`,
      "data-testid": "conversation-item",
      "data-conversation": summary.sid,
      "data-status": summary.status,
      "aria-current": summary.sid === state.openSid ? "true" : null,
      onclick: () => openConversation(summary.sid),
    },
    el("span", { class: "desk-item-top" },
      channelBadge(summary.channel),
      el("span", { class: "desk-item-name", text: name }),
      timeNode(summary.last_message_at, "desk-item-time")),
    el("span", { class: "desk-item-bottom" },
      el("span", { class: "desk-item-preview", text: summary.last_body || T.no_messages_preview }),
      unread > 0 ? el("span", { class: "desk-unread", "data-testid": "unread", "aria-hidden": "true", text: unread }) : null,
      unread > 0 ? el("span", { class: "visually-hidden", text: t("unread_label", { count: unread }) }) : null),
    summary.status === "wrapping" ? el("span", { class: "desk-item-state", text: T.wrapping }) : null);
  }

  function updateTitle() {
    const unread = [...state.conversations.values()].reduce((n, c) => n + (c.sid === state.openSid ? 0 : c.unread || 0), 0);
    const count = unread + state.offers.size;
    const base = document.title.replace(/^\(\d+\)\s*/, "");
    document.title = count ? `(${count}) ${base}` : base;
  }

  function stepConversation(delta) {
    const sids = [...state.conversations.keys()];
    if (!sids.length) return;
    const index = sids.indexOf(state.openSid);
    const next = index === -1 ? (delta > 0 ? 0 : sids.length - 1) : (index + delta + sids.length) % sids.length;
    openConversation(sids[next]);
    ui.list.querySelector(`[data-conversation="${CSS.escape(sids[next])}"]`)?.focus();
  }

  // ------------------------------------------------------------------ open / close

  function openConversation(sid) {
    const changed = sid !== state.openSid;
    state.openSid = sid;
    state.pendingOpen = "";
    const summary = state.conversations.get(sid);
    if (summary) summary.unread = 0;
    if (changed) resetComposer();
    renderList();
    if (!state.details.has(sid)) {
      const stream = conversationStream(sid);
      if (state.subscribed.has(stream)) {
        // Its resync is late (or failed): fetch now so the agent is not left waiting.
        api(convPath(sid)).then((snapshot) => applyConversation(sid, snapshot), showError);
      } else {
        subscribe(stream); // the subscription's resync fills the detail
      }
    }
    renderConversation();
    if (summary && !isReadonly()) markRead(sid);
  }

  function closeConversation() {
    state.openSid = "";
    resetComposer();
    renderConversation();
    renderList();
  }

  function markRead(sid) {
    api(convPath(sid, "read"), { method: "POST" }).catch(() => {}); // counts only: best effort
  }
  const markReadSoon = debounce(markRead, 800);

  function isReadonly() {
    const detail = state.details.get(state.openSid);
    return state.openSid === state.monitorSid || Boolean(detail?.readonly) || !state.conversations.has(state.openSid);
  }

  // ------------------------------------------------------------------ conversation view

  function renderConversation({ keepScroll = false } = {}) {
    const sid = state.openSid;
    const detail = state.details.get(sid);
    ui.convEmpty.hidden = Boolean(sid);
    ui.convBody.hidden = !sid;
    ui.convEmpty.textContent = sid ? "" : T.pick_conversation;
    renderCustomer(detail);
    if (!sid) {
      ui.noteBox.hidden = true;
      return;
    }
    if (!detail) {
      ui.convTitle.textContent = customerName(state.conversations.get(sid));
      ui.convSub.replaceChildren(T.loading);
      ui.window.hidden = true;
      ui.timeline.replaceChildren();
      ui.actions.hidden = true;
      ui.composer.hidden = true;
      ui.templateForm.hidden = true;
      ui.noteBox.hidden = true;
      ui.readonlyBanner.hidden = true;
      ui.wrappingBanner.hidden = true;
      return;
    }
    const conv = detail.conversation;
    const summary = state.conversations.get(sid);
    const readonly = isReadonly();
    const wrapping = summary?.status === "wrapping" || conv.reservation_status === "wrapping" || conv.task_status === "wrapping";

    ui.convTitle.textContent = customerName(conv);
    ui.convSub.replaceChildren(
      channelBadge(conv.channel),
      el("span", { text: conv.customer?.address || "" }),
      conv.queue_name ? el("span", { text: t("queue_label", { queue: conv.queue_name }) }) : null,
    );
    renderWindow(conv.window);

    ui.readonlyBanner.hidden = !readonly;
    ui.readonlyBanner.textContent = sid === state.monitorSid ? T.monitoring : T.readonly;
    ui.wrappingBanner.hidden = readonly || !wrapping;
    ui.wrappingBanner.textContent = state.wrapupDone.has(sid) ? T.wrapup_saved : T.wrapping;

    ui.actions.hidden = readonly;
    ui.transferOpen.hidden = wrapping;
    ui.complete.hidden = !wrapping;

    const windowClosed = Boolean(conv.window?.applies && !conv.window?.open);
    ui.composer.hidden = readonly || wrapping || windowClosed;
    ui.templateForm.hidden = readonly || wrapping || !windowClosed;
    ui.noteBox.hidden = readonly;
    if (windowClosed) renderTemplates(detail);

    renderTimeline(detail, keepScroll);
  }

  function renderWindow(window) {
    ui.windowClosed.textContent = T.window_closed;
    // A closed window is explained above the template picker instead.
    if (!window?.applies || !window.open) {
      ui.window.hidden = true;
      return;
    }
    ui.window.hidden = !window.ends_at;
    ui.window.textContent = t("window_open_until", { time: formatTime(window.ends_at) });
  }

  // Task attributes that only repeat the customer fields above, or are routing plumbing.
  const ROUTING_KEYS = new Set(["conversationSid", "channelType", "customerAddress", "businessAddress", "name"]);

  function renderCustomer(detail) {
    const conv = detail?.conversation;
    ui.customerEmpty.hidden = Boolean(conv);
    ui.customer.hidden = !conv;
    if (!conv) {
      ui.attributesBox.hidden = true;
      return;
    }
    const customer = conv.customer || {};
    ui.customerName.textContent = customer.name || T.unknown_customer;
    ui.customerAddress.textContent = customer.address || "—";
    ui.customerChannel.textContent = channelLabel(customer.channel || conv.channel);
    ui.customerCountry.textContent = customer.country || "—";
    const entries = Object.entries(conv.attributes || {}).filter(([key]) => !ROUTING_KEYS.has(key));
    ui.attributesBox.hidden = entries.length === 0;
    ui.attributes.replaceChildren(...entries.flatMap(([key, value]) => [
      el("dt", { text: key }),
      el("dd", { text: typeof value === "object" && value !== null ? JSON.stringify(value) : String(value) }),
    ]));
  }

  function lastMessage(detail) {
    let last = null;
    for (const message of detail.messages.values()) {
      if (!last || String(message.date_created) >= String(last.date_created)) last = message;
    }
    return last;
  }

  function timelineEntries(detail) {
    const entries = [
      ...[...detail.messages.values()].map((m) => ({ at: m.date_created, node: () => messageNode(m) })),
      ...[...detail.notes.values()].map((n) => ({ at: n.date_created, node: () => noteNode(n) })),
    ];
    // Stable sort keeps server order for equal times.
    return entries.sort((a, b) => (toDate(a.at)?.getTime() ?? 0) - (toDate(b.at)?.getTime() ?? 0));
  }

  function renderTimeline(detail, keepScroll) {
    const box = ui.timeline;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const previousTop = box.scrollTop;
    const entries = timelineEntries(detail);
    if (!entries.length) box.replaceChildren(el("li", { class: "desk-timeline-empty", text: T.no_history }));
    else box.replaceChildren(...entries.map((entry) => entry.node()));
    if (!keepScroll || nearBottom) box.scrollTop = box.scrollHeight;
    else box.scrollTop = previousTop;
  }

  const TICKS = {
    accepted: "✓", queued: "✓", sending: "✓", sent: "✓",
    delivered: "✓✓", read: "✓✓",
    failed: "✗", undelivered: "✗",
    scheduled: "◷", canceled: "⊘",
  };

  function messageNode(message) {
    const author = message.author || (message.direction === "inbound" ? "customer" : "agent");
    const outbound = message.direction === "outbound";
    const label = message.author_name || T[`author_${author}`] || author;
    const failed = ["failed", "undelivered"].includes(message.status);
    const bubble = el("div", { class: "desk-bubble" },
      el("p", { class: "desk-author" },
        el("span", { text: label }),
        message.author_name && author !== "customer" ? el("span", { class: "desk-author-kind", text: T[`author_${author}`] || author }) : null),
      message.body ? el("p", { class: "desk-text", text: message.body }) : null,
      ...(message.media || []).map((media) => mediaNode(media, label)));
    const meta = el("p", { class: "desk-meta" }, timeNode(message.date_created), outbound ? tickNode(message.status) : null);
    const error = outbound && failed && (message.error_code || message.error_message)
      ? el("p", { class: "desk-msg-error" }, message.error_code
        ? t("error_detail", { code: message.error_code, message: message.error_message || "" })
        : t("error_no_code", { message: message.error_message }))
      : null;
    return el("li", {
      class: `desk-msg desk-msg-${author} ${outbound ? "is-out" : "is-in"}${failed ? " is-failed" : ""}`,
      "data-testid": "message",
      "data-sid": message.sid,
      "data-author": author,
      "data-status": message.status || "",
    }, bubble, meta, error);
  }

  function tickNode(status) {
    const tick = TICKS[status];
    if (!tick) return null;
    const label = T[`status_${status}`] || status;
    return el("span", { class: `desk-tick desk-tick-${status}`, title: label },
      el("span", { "aria-hidden": "true", text: tick }),
      el("span", { class: "visually-hidden", text: label }));
  }

  const IMAGE_NAME = /\.(png|jpe?g|gif|webp|bmp)$/i;

  function mediaNode(media, author) {
    const url = safeUrl(media.url);
    if (!url) return null;
    const name = decodeURIComponent(new URL(url).pathname.split("/").pop() || "") || media.sid || "";
    // Files the agent sent may come back without a content type: fall back on the name.
    const type = media.content_type || (IMAGE_NAME.test(name) ? "image/*" : "");
    if (type.startsWith("image/")) {
      return el("a", { class: "desk-media-image", href: url, target: "_blank", rel: "noopener" },
        el("img", { src: url, alt: t("image_from", { author }), loading: "lazy" }));
    }
    return el("a", { class: "desk-media-file", href: url, target: "_blank", rel: "noopener" },
      type ? t("attachment_typed", { name, type }) : t("attachment", { name }));
  }

  function noteNode(note) {
    const label = note.system ? T.system_note
      : note.author_name ? t("private_note_by", { author: note.author_name }) : T.private_note;
    return el("li", { class: `desk-note-item${note.system ? " is-system" : ""}`, "data-testid": "note", "data-note": note.id },
      el("p", { class: "desk-note-label", text: label }),
      el("p", { class: "desk-text", text: note.body || "" }),
      el("p", { class: "desk-meta" }, timeNode(note.date_created)));
  }

  // ------------------------------------------------------------------ conversation events

  const STATUS_RANK = {
    scheduled: 0, accepted: 0, queued: 1, sending: 2, sent: 3, delivered: 4, read: 5,
    undelivered: 6, failed: 6, canceled: 6, receiving: 0, received: 1,
  };

  /** Upsert a message, never moving its status backwards (events and responses race). */
  function mergeMessage(detail, message) {
    const current = detail.messages.get(message.sid);
    if (current && (STATUS_RANK[current.status] ?? 0) > (STATUS_RANK[message.status] ?? 0)) {
      detail.messages.set(message.sid, { ...message, status: current.status, error_code: current.error_code, error_message: current.error_message });
    } else {
      detail.messages.set(message.sid, { ...current, ...message });
    }
  }

  function onMessage(sid, message) {
    if (!sid || !message) return;
    const detail = state.details.get(sid);
    const isNew = !detail?.messages.has(message.sid);
    if (detail) mergeMessage(detail, message);
    const summary = state.conversations.get(sid);
    if (summary) {
      summary.last_body = previewOf(message);
      summary.last_message_at = message.date_created;
    }
    if (isNew && message.direction === "inbound") {
      if (sid !== state.openSid && summary) summary.unread = (summary.unread || 0) + 1;
      else if (sid === state.openSid && !isReadonly()) markReadSoon(sid);
      announce(t("new_message_from", { customer: customerName(summary || detail?.conversation), body: previewOf(message) }));
    }
    renderList();
    if (sid === state.openSid) renderConversation({ keepScroll: true });
  }

  function onMessageStatus(sid, data) {
    const detail = state.details.get(sid);
    const message = detail?.messages.get(data.sid);
    if (!message) return;
    mergeMessage(detail, { ...message, status: data.status, error_code: data.error_code, error_message: data.error_message });
    if (sid !== state.openSid) return;
    const node = ui.timeline.querySelector(`[data-sid="${CSS.escape(data.sid)}"]`);
    if (!node) return;
    const box = ui.timeline;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    node.replaceWith(messageNode(detail.messages.get(data.sid)));
    if (nearBottom) box.scrollTop = box.scrollHeight; // an error line may have been added
  }

  function onNote(sid, note) {
    const detail = state.details.get(sid);
    if (!detail || !note) return;
    detail.notes.set(String(note.id), note);
    if (sid === state.openSid) renderConversation({ keepScroll: true });
  }

  function onConversationUpdated(sid, data) {
    const detail = state.details.get(sid);
    if (detail) {
      detail.conversation.task_status = data.task_status;
      if (data.task_sid) detail.conversation.task_sid = data.task_sid;
    }
    const summary = state.conversations.get(sid);
    if (summary && data.task_status === "wrapping") summary.status = "wrapping";
    renderList();
    if (sid === state.openSid) renderConversation({ keepScroll: true });
  }

  // ------------------------------------------------------------------ composer

  function resetComposer() {
    ui.body.value = "";
    clearFile();
    ui.segments.textContent = "";
    ui.smart.hidden = true;
    ui.suggest.hidden = true;
    ui.template.value = "";
    ui.templateFields.replaceChildren();
    ui.templatePreviewBox.hidden = true;
    state.templatesFor = "";
  }

  function fillVariables(text, variables) {
    return String(text).replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (match, key) =>
      (variables && key in variables && variables[key] !== null ? String(variables[key]) : match));
  }

  function renderCanned() {
    const options = [el("option", { value: "", text: T.canned_placeholder })];
    for (const item of state.canned) {
      const shortcut = normaliseShortcut(item.shortcut);
      const label = [item.title, shortcut ? `/${shortcut}` : "", item.language ? `(${item.language})` : ""].filter(Boolean).join(" ");
      options.push(el("option", { value: String(item.id), text: label }));
    }
    ui.canned.replaceChildren(...options);
    ui.canned.hidden = state.canned.length === 0;
  }

  function normaliseShortcut(shortcut) {
    return String(shortcut || "").replace(/^\//, "");
  }

  function insertCanned(item, replaceAll = false) {
    const variables = state.details.get(state.openSid)?.variables || {};
    const text = fillVariables(item.body || "", variables);
    const area = ui.body;
    if (replaceAll) {
      area.value = text;
    } else {
      const start = area.selectionStart ?? area.value.length;
      const end = area.selectionEnd ?? area.value.length;
      area.value = area.value.slice(0, start) + text + area.value.slice(end);
      area.selectionStart = area.selectionEnd = start + text.length;
    }
    ui.suggest.hidden = true;
    area.focus();
    scheduleEncoding();
  }

  ui.canned.addEventListener("change", () => {
    const item = state.canned.find((c) => String(c.id) === ui.canned.value);
    ui.canned.value = "";
    if (item) insertCanned(item);
  });

  function renderSuggestions() {
    const match = ui.body.value.match(/^\/([^\s]*)$/);
    const typed = match ? match[1].toLowerCase() : null;
    const found = typed === null ? [] : state.canned
      .filter((c) => normaliseShortcut(c.shortcut).toLowerCase().startsWith(typed) && normaliseShortcut(c.shortcut))
      .slice(0, 6);
    ui.suggest.hidden = found.length === 0;
    ui.suggest.replaceChildren(...(found.length ? [
      el("p", { class: "visually-hidden", text: t("canned_suggestions", { shortcut: `/${typed}` }) }),
      ...found.map((item) => el("button", {
        type: "button", class: "desk-suggestion", "data-testid": "canned-suggestion",
        onclick: () => insertCanned(item, true),
      }, el("strong", { text: `/${normaliseShortcut(item.shortcut)}` }), " ", el("span", { text: item.title }))),
    ] : []));
  }

  ui.suggest.addEventListener("keydown", (event) => {
    const buttons = [...ui.suggest.querySelectorAll("button")];
    const index = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = index + (event.key === "ArrowDown" ? 1 : -1);
      if (next < 0) ui.body.focus();
      else buttons[Math.min(next, buttons.length - 1)].focus();
    } else if (event.key === "Escape") {
      ui.suggest.hidden = true;
      ui.body.focus();
    }
  });

  ui.body.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && !ui.suggest.hidden && !event.altKey) {
      event.preventDefault();
      ui.suggest.querySelector("button")?.focus();
    } else if (event.key === "Escape" && !ui.suggest.hidden) {
      ui.suggest.hidden = true;
    }
  });

  ui.body.addEventListener("input", () => {
    renderSuggestions();
    scheduleEncoding();
  });

  const scheduleEncoding = debounce(updateEncoding, 300);

  function prettyEncoding(encoding) {
    const value = String(encoding || "");
    if (/gsm/i.test(value)) return "GSM-7";
    if (/ucs/i.test(value)) return "UCS-2";
    return value;
  }

  function encodingSummary(info) {
    return t("encoding_summary", {
      encoding: prettyEncoding(info.encoding),
      segments: plural("segments", info.segments ?? 0),
      characters: plural("characters", info.characters ?? 0),
    });
  }

  async function updateEncoding() {
    const body = ui.body.value;
    const ticket = ++state.encodingTicket;
    if (!body) {
      ui.segments.textContent = "";
      ui.smart.hidden = true;
      return;
    }
    let info;
    try {
      info = await api(`encoding?body=${encodeURIComponent(body)}`);
    } catch {
      return; // a hint only; sending shows real errors
    }
    if (ticket !== state.encodingTicket) return; // a newer keystroke won
    ui.segments.textContent = encodingSummary(info);
    const smart = info.smart_encoding;
    const differs = smart && smart.body !== undefined && smart.body !== body
      && (smart.encoding !== info.encoding || smart.segments !== info.segments);
    ui.smart.hidden = !differs;
    if (differs) {
      ui.smart.replaceChildren(
        el("span", { text: t("smart_encoding", { summary: encodingSummary({ ...smart, characters: [...smart.body].length }) }) }),
        el("span", { class: "desk-smart-body", text: t("smart_preview", { body: smart.body }) }),
      );
    }
  }

  function clearFile() {
    state.file = null;
    ui.file.value = "";
    ui.attached.hidden = true;
    ui.attached.replaceChildren();
  }

  ui.file.addEventListener("change", () => {
    const file = ui.file.files?.[0];
    if (!file) return clearFile();
    state.file = file;
    ui.attached.hidden = false;
    ui.attached.replaceChildren(
      el("span", { text: t("attached", { name: file.name }) }),
      el("button", {
        type: "button", class: "btn btn-quiet", "aria-label": T.remove_attachment, title: T.remove_attachment,
        onclick: () => { clearFile(); ui.body.focus(); },
      }, el("span", { "aria-hidden": "true", text: "×" })),
    );
  });

  async function sendMessage(payload) {
    const sid = state.openSid;
    const result = await api(convPath(sid, "messages"), { method: "POST", ...payload });
    const detail = state.details.get(sid);
    if (result?.message && detail) {
      mergeMessage(detail, result.message);
      const summary = state.conversations.get(sid);
      if (summary) {
        summary.last_body = previewOf(result.message);
        summary.last_message_at = result.message.date_created;
        renderList();
      }
      if (sid === state.openSid) renderConversation();
    }
    return result;
  }

  ui.composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!state.openSid || isReadonly()) return;
    const body = ui.body.value;
    if (!body.trim() && !state.file) {
      showError(T.empty_message);
      ui.body.focus();
      return;
    }
    let payload;
    if (state.file) {
      const form = new FormData();
      form.append("body", body);
      form.append("file", state.file);
      payload = { form };
    } else {
      payload = { json: { body } };
    }
    const sent = await act(ui.send, () => sendMessage(payload));
    if (sent) {
      clearError();
      ui.body.value = "";
      clearFile();
      ui.segments.textContent = "";
      ui.smart.hidden = true;
      ui.suggest.hidden = true;
      ui.body.focus();
    }
  });

  // ------------------------------------------------------------------ templates (closed window)

  function renderTemplates(detail) {
    if (state.templatesFor === state.openSid) return; // keep what the agent typed
    state.templatesFor = state.openSid;
    ui.template.replaceChildren(
      el("option", { value: "", text: T.template_placeholder }),
      ...detail.templates.map((tpl) => el("option", { value: tpl.sid, text: tpl.language ? `${tpl.name} (${tpl.language})` : tpl.name })),
    );
    ui.template.value = "";
    ui.templateFields.replaceChildren();
    ui.templatePreviewBox.hidden = true;
  }

  function currentTemplate() {
    return state.details.get(state.openSid)?.templates.find((tpl) => tpl.sid === ui.template.value) || null;
  }

  ui.template.addEventListener("change", () => {
    const tpl = currentTemplate();
    ui.templateFields.replaceChildren(...(tpl?.placeholders || []).map((name) => {
      const id = `desk-tpl-${name}`;
      return el("div", { class: "desk-field" },
        el("label", { for: id, text: t("template_field", { name }) }),
        el("input", { type: "text", id, "data-placeholder": name, required: true, oninput: renderTemplatePreview }));
    }));
    renderTemplatePreview();
  });

  function templateValues() {
    const values = {};
    for (const input of ui.templateFields.querySelectorAll("input[data-placeholder]")) {
      values[input.dataset.placeholder] = input.value;
    }
    return values;
  }

  function renderTemplatePreview() {
    const tpl = currentTemplate();
    ui.templatePreviewBox.hidden = !tpl;
    if (!tpl) return;
    const values = templateValues();
    ui.templatePreview.textContent = String(tpl.body || "").replace(/\{\{\s*(\w+)\s*\}\}/g,
      (match, key) => (values[key] ? values[key] : match));
  }

  ui.templateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!state.openSid || isReadonly()) return;
    const tpl = currentTemplate();
    if (!tpl) {
      showError(T.template_placeholder);
      ui.template.focus();
      return;
    }
    const values = templateValues();
    const missing = (tpl.placeholders || []).find((name) => !values[name]?.trim());
    if (missing) {
      showError(T.fill_placeholders);
      ui.templateFields.querySelector(`[data-placeholder="${CSS.escape(missing)}"]`)?.focus();
      return;
    }
    const sent = await act(ui.templateSend, () => sendMessage({ json: { content_sid: tpl.sid, content_variables: values } }));
    if (sent) {
      clearError();
      state.templatesFor = "";
      renderTemplates(state.details.get(state.openSid));
      ui.template.focus();
    }
  });

  // ------------------------------------------------------------------ notes

  ui.noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sid = state.openSid;
    const body = ui.noteBody.value.trim();
    if (!sid || !body) {
      ui.noteBody.focus();
      return;
    }
    const button = ui.noteForm.querySelector("[data-note-submit]");
    const result = await act(button, () => api(convPath(sid, "notes"), { method: "POST", json: { body } }));
    if (result?.note) {
      state.details.get(sid)?.notes.set(String(result.note.id), result.note);
      ui.noteBody.value = "";
      if (sid === state.openSid) renderConversation({ keepScroll: false });
    }
  });

  // ------------------------------------------------------------------ dialogs

  function openDialog(dialog) {
    dialog.querySelector("[data-dialog-error]")?.replaceChildren();
    if (!dialog.open) dialog.showModal();
  }

  function dialogError(dialog, message) {
    dialog.querySelector("[data-dialog-error]").textContent = message;
  }

  for (const dialog of [ui.transferDialog, ui.wrapupDialog, ui.helpDialog]) {
    for (const button of dialog.querySelectorAll("[data-dialog-cancel]")) {
      button.addEventListener("click", () => dialog.close());
    }
  }

  ui.helpOpen.addEventListener("click", () => openDialog(ui.helpDialog));

  // Transfer
  ui.transferOpen.addEventListener("click", async () => {
    if (!state.openSid || isReadonly()) return;
    ui.transferTarget.replaceChildren(el("option", { value: "", text: T.loading }));
    openDialog(ui.transferDialog);
    try {
      const targets = await api("transfer-targets");
      const queues = (targets.queues || []).map((queue) => el("option", {
        value: `queue:${queue.sid}`, text: t("transfer_queue_option", { name: queue.name, waiting: queue.waiting ?? 0 }),
      }));
      const agents = (targets.agents || []).filter((agent) => agent.sid !== state.workerSid).map((agent) => el("option", {
        value: `worker:${agent.sid}`, text: t("transfer_agent_option", { name: agent.name, activity: agent.activity_name || "" }),
      }));
      ui.transferTarget.replaceChildren(
        el("option", { value: "", text: queues.length || agents.length ? T.pick_target : T.transfer_none }),
        queues.length ? el("optgroup", { label: T.transfer_queues }, queues) : null,
        agents.length ? el("optgroup", { label: T.transfer_agents }, agents) : null,
      );
      ui.transferTarget.focus();
    } catch (error) {
      dialogError(ui.transferDialog, error.message);
    }
  });

  ui.transferForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sid = state.openSid;
    const [kind, targetSid] = ui.transferTarget.value.split(":");
    if (!sid || !targetSid) {
      dialogError(ui.transferDialog, T.pick_target);
      ui.transferTarget.focus();
      return;
    }
    const submit = ui.transferForm.querySelector("[type=submit]");
    submit.disabled = true;
    state.leaving.set(sid, T.transferred);
    try {
      await api(convPath(sid, "transfer"), {
        method: "POST", json: kind === "queue" ? { queue_sid: targetSid } : { worker_sid: targetSid },
      });
      ui.transferDialog.close();
      dropConversation(sid, T.transferred);
      refreshState();
      (ui.list.querySelector("[data-testid=conversation-item]") || ui.activity).focus();
    } catch (error) {
      state.leaving.delete(sid);
      dialogError(ui.transferDialog, error.message);
    } finally {
      submit.disabled = false;
    }
  });

  // Wrap-up
  function renderDispositions() {
    ui.disposition.replaceChildren(
      el("option", { value: "", text: T.disposition_placeholder }),
      ...state.dispositions.map((d) => el("option", {
        value: d.code, text: d.requires_notes ? t("notes_required_marker", { label: d.label }) : d.label,
      })),
    );
  }

  function selectedDisposition() {
    return state.dispositions.find((d) => d.code === ui.disposition.value) || null;
  }

  function updateNotesRequirement() {
    const required = Boolean(selectedDisposition()?.requires_notes);
    ui.wrapupNotes.required = required;
    ui.wrapupNotes.setAttribute("aria-required", required ? "true" : "false");
    ui.notesHint.textContent = required ? T.notes_required_hint : "";
  }
  ui.disposition.addEventListener("change", updateNotesRequirement);

  function openWrapup() {
    if (!state.openSid || isReadonly()) return;
    const keep = ui.disposition.value;
    renderDispositions();
    ui.disposition.value = keep;
    updateNotesRequirement();
    openDialog(ui.wrapupDialog);
    ui.disposition.focus();
  }
  ui.wrapupOpen.addEventListener("click", openWrapup);

  ui.wrapupForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sid = state.openSid;
    const disposition = selectedDisposition();
    const notes = ui.wrapupNotes.value.trim();
    if (!disposition) {
      dialogError(ui.wrapupDialog, T.pick_disposition);
      ui.disposition.focus();
      return;
    }
    if (disposition.requires_notes && !notes) {
      dialogError(ui.wrapupDialog, T.notes_required);
      ui.wrapupNotes.focus();
      return;
    }
    const submit = ui.wrapupForm.querySelector("[type=submit]");
    submit.disabled = true;
    try {
      await api(convPath(sid, "wrapup"), { method: "POST", json: { disposition: disposition.code, notes } });
      ui.wrapupDialog.close();
      ui.disposition.value = "";
      ui.wrapupNotes.value = "";
      state.wrapupDone.add(sid);
      const summary = state.conversations.get(sid);
      if (summary) summary.status = "wrapping";
      const detail = state.details.get(sid);
      if (detail) detail.conversation.task_status = "wrapping";
      renderList();
      renderConversation({ keepScroll: true });
      ui.complete.focus();
    } catch (error) {
      dialogError(ui.wrapupDialog, error.message);
    } finally {
      submit.disabled = false;
    }
  });

  ui.complete.addEventListener("click", async () => {
    const sid = state.openSid;
    if (!sid) return;
    state.leaving.set(sid, T.completed);
    const done = await act(ui.complete, () => api(convPath(sid, "complete"), { method: "POST" }));
    if (!done) state.leaving.delete(sid);
    if (done) {
      clearError();
      dropConversation(sid, T.completed);
      refreshState();
      (ui.list.querySelector("[data-testid=conversation-item]") || ui.activity).focus();
    }
  });

  // ------------------------------------------------------------------ keyboard

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented) return;
    const inDialog = [ui.transferDialog, ui.wrapupDialog, ui.helpDialog].some((d) => d.open);
    if (event.altKey && !event.ctrlKey && !event.metaKey && !inDialog) {
      if (event.code === "KeyA") {
        event.preventDefault();
        acceptOldest();
      } else if (event.code === "KeyW") {
        event.preventDefault();
        openWrapup();
      } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
        event.preventDefault();
        stepConversation(event.key === "ArrowDown" ? 1 : -1);
      }
      return;
    }
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      const form = event.target.closest?.("[data-composer-form], [data-template-form], [data-note-form]");
      if (form && !form.hidden) {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (event.key === "?" && !isTyping(event.target) && !inDialog) {
      event.preventDefault();
      openDialog(ui.helpDialog);
    }
  });

  // ------------------------------------------------------------------ start

  renderConversation();
  renderList();
  if (state.agentStream) subscribe(state.agentStream);
  if (state.monitorSid) {
    state.openSid = state.monitorSid;
    subscribe(conversationStream(state.monitorSid));
    renderConversation();
  }
  live.start();
}
