// The supervisor console: live queues, agents and conversations from one REST snapshot,
// refetched (debounced) whenever the websocket says routing changed, since one change moves
// several figures at once; inline SVG charts; messaging analytics; read-only monitoring.
// Plain ES module, no build step. Server data only ever reaches the page as text nodes.

const REFRESH_DEBOUNCE_MS = 300;
const REFRESH_EVERY_MS = 15000;
const ANALYTICS_EVERY_MS = 300000;
const TICK_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const TRANSFERABLE = new Set(["pending", "reserved", "assigned"]);

// ---------------------------------------------------------------- setup

function start(root) {
  const textNode = document.getElementById("supervisor-text");
  const TEXT = (textNode && JSON.parse(textNode.textContent)) || {};
  const lang = document.documentElement.lang || undefined;
  const ui = {
    root,
    lang,
    text: TEXT,
    num: new Intl.NumberFormat(lang),
    pct: new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 }),
    hour: new Intl.DateTimeFormat(lang, { hour: "numeric" }),
    hourLong: new Intl.DateTimeFormat(lang, { weekday: "short", hour: "numeric", minute: "2-digit" }),
    clock: new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit", second: "2-digit" }),
    time: new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" }),
    day: new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", hour: "numeric", minute: "2-digit" }),
    list: Intl.ListFormat ? new Intl.ListFormat(lang, { type: "conjunction" }) : null,
    apiBase: root.dataset.apiBase,
    deskApiBase: root.dataset.deskApiBase,
    wsPath: root.dataset.wsPath,
  };
  const state = {
    snapshot: null,
    receivedAt: 0, // performance.now() when the snapshot arrived: the base of the tickers
    inflight: null, // the state request in flight (at most one)
    again: false, // a refresh was asked for while one was in flight
    timer: 0,
    tickers: [],
    chartsKey: "",
    live: null,
    errors: new Map(), // source → message
    monitor: null, // {sid, stream, opener, ended}
    transfer: null, // {task, opener}
    analytics: { controller: null },
  };
  const app = { ui, state, t: (key, vars) => format(TEXT[key] ?? key, vars) };

  setConnection(app, "connecting");
  setUpTransferDialog(app);
  setUpMonitorPanel(app);
  setUpAnalytics(app);

  refresh(app).catch(() => {});
  loadAnalytics(app);
  setInterval(() => scheduleRefresh(app, 0), REFRESH_EVERY_MS);
  setInterval(() => loadAnalytics(app), ANALYTICS_EVERY_MS);
  setInterval(() => tick(app), TICK_MS);
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => state.snapshot && renderCharts(app, state.snapshot.charts || {}), 200);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") scheduleRefresh(app, 0);
  });
  connectLive(app);
}

async function connectLive(app) {
  let LiveClient;
  try {
    ({ LiveClient } = await import("./live.js"));
  } catch (error) {
    // Without the live module the console still works: it polls every 15 s.
    console.error("supervisor: live.js could not be loaded", error);
    setConnection(app, "offline");
    return;
  }
  const live = new LiveClient({
    url: app.ui.wsPath,
    resync: (stream) => resync(app, stream),
    onEvent: (frame) => onEvent(app, frame),
    onStatus: (status) => setConnection(app, status),
    onControl: (frame) => onControl(app, frame),
  });
  app.state.live = live;
  live.subscribe("supervisor");
  if (app.state.monitor) live.subscribe(app.state.monitor.stream);
  live.start();
}

// ---------------------------------------------------------------- small helpers

function format(template, vars = {}) {
  return String(template).replace(/\{(\w+)\}/g, (match, name) =>
    name in vars ? String(vars[name]) : match,
  );
}

/** A DOM element: attrs may hold class, text, dataset, hidden and plain attributes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  applyAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  applyAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function applyAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.setAttribute("class", value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "hidden") node.hidden = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function $(app, selector) {
  return app.ui.root.querySelector(selector);
}

function pad(value) {
  return String(value).padStart(2, "0");
}

/** Seconds as m:ss (or h:mm:ss past an hour). */
function duration(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  return hours ? `${hours}:${pad(minutes)}:${pad(rest)}` : `${pad(minutes)}:${pad(rest)}`;
}

function n(app, value) {
  return app.ui.num.format(Number(value) || 0);
}

function rate(app, value) {
  return value === null || value === undefined ? app.t("none") : app.ui.pct.format(value);
}

function joinList(app, items) {
  return app.ui.list ? app.ui.list.format(items) : items.join(", ");
}

function channelLabel(app, channel) {
  const key = `channel_${channel}`;
  return key in app.ui.text ? app.t(key) : channel || app.t("channel_default");
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
}

function safeUrl(value) {
  try {
    const url = new URL(value, window.location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- REST

class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

async function api(app, path, { method = "GET", body, base, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken();
  }
  let response;
  try {
    response = await fetch((base ?? app.ui.apiBase) + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(app.t("error_network"), null, 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // not JSON (a proxy's error page, a sign-in redirect)
  }
  if (!response.ok) {
    if (data && typeof data.message === "string") {
      throw new ApiError(data.message, data.code ?? null, response.status);
    }
    throw new ApiError(app.t("error_generic", { status: response.status }), null, response.status);
  }
  return data;
}

// ---------------------------------------------------------------- errors, announcements

function errorText(app, error) {
  if (error.code !== null && error.code !== undefined && error.code !== "") {
    return app.t("error_with_code", { message: error.message, code: error.code });
  }
  return error.message || app.t("error_generic", { status: error.status ?? "?" });
}

function showError(app, source, error) {
  app.state.errors.set(source, errorText(app, error));
  renderErrors(app);
}

function clearError(app, source) {
  if (app.state.errors.delete(source)) renderErrors(app);
}

function renderErrors(app) {
  const box = $(app, "[data-alerts]");
  box.replaceChildren(
    ...[...app.state.errors].map(([source, message]) =>
      el(
        "p",
        { class: "sup-error", dataset: { source } },
        el("span", { text: message }),
        el("button", {
          type: "button",
          class: "btn btn-quiet sup-error-close",
          text: app.t("dismiss"),
          "data-dismiss": source,
        }),
      ),
    ),
  );
  for (const button of box.querySelectorAll("[data-dismiss]")) {
    button.addEventListener("click", () => clearError(app, button.dataset.dismiss));
  }
}

function announce(app, message) {
  const region = $(app, "[data-announce]");
  region.textContent = "";
  // A fresh text node after a tick, so the same sentence twice is still read out.
  setTimeout(() => (region.textContent = message), 50);
}

// ---------------------------------------------------------------- live connection

const STATUS_KEYS = {
  connecting: "connecting",
  open: "live",
  connected: "live",
  live: "live",
  online: "live",
  ready: "live",
  subscribed: "live",
  syncing: "resyncing",
  resyncing: "resyncing",
  reconnecting: "reconnecting",
  closed: "offline",
  disconnected: "offline",
  offline: "offline",
  error: "offline",
  stopped: "offline",
};

function setConnection(app, status) {
  const raw = typeof status === "string" ? status : status?.status || status?.state || "";
  const key = STATUS_KEYS[raw] || "connecting";
  const box = $(app, "[data-testid=connection-status]");
  box.dataset.state = key;
  box.querySelector("[data-conn-text]").textContent = app.t(`status_${key}`);
}

function onEvent(app, frame) {
  if (frame.stream === "supervisor") {
    if (frame.event === "routing.changed" || frame.event === "worker.activity") {
      scheduleRefresh(app);
    }
    return;
  }
  if (app.state.monitor && frame.stream === app.state.monitor.stream) {
    onMonitorEvent(app, frame.event, frame.data || {});
  }
}

function onControl(app, frame) {
  if (frame.type === "revoked" && app.state.monitor && frame.stream === app.state.monitor.stream) {
    endMonitor(app);
  } else if (frame.type === "closed") {
    // 4401/4403: the session ended or lost its role; the socket will not come back.
    showError(app, "stream:closed", { message: app.t("error_signed_out"), code: null });
  } else if (frame.type === "error") {
    const message = app.t("error_stream", { message: frame.message || frame.code });
    showError(app, `stream:${frame.stream || ""}`, { message, code: null });
    if (app.state.monitor && frame.stream === app.state.monitor.stream) endMonitor(app);
  }
}

async function resync(app, stream) {
  if (stream === "supervisor") {
    // A snapshot requested before the subscription may predate its position: fetch anew.
    while (app.state.inflight) await app.state.inflight.catch(() => {});
    const snapshot = await refresh(app);
    return snapshot.streams.supervisor;
  }
  const monitor = app.state.monitor;
  if (monitor && stream === monitor.stream) {
    const data = await loadMonitor(app, monitor.sid);
    return data ? data.stream : null;
  }
  return null;
}

// ---------------------------------------------------------------- the snapshot

function scheduleRefresh(app, delay = REFRESH_DEBOUNCE_MS) {
  clearTimeout(app.state.timer);
  app.state.timer = setTimeout(() => refresh(app).catch(() => {}), delay);
}

function refresh(app) {
  const { state } = app;
  if (state.inflight) {
    state.again = true;
    return state.inflight;
  }
  state.inflight = (async () => {
    try {
      const snapshot = await api(app, "state");
      applySnapshot(app, snapshot);
      clearError(app, "state");
      return snapshot;
    } catch (error) {
      showError(app, "state", error);
      throw error;
    } finally {
      state.inflight = null;
      if (state.again) {
        state.again = false;
        scheduleRefresh(app);
      }
    }
  })();
  return state.inflight;
}

function applySnapshot(app, snapshot) {
  const { state } = app;
  state.snapshot = snapshot;
  state.receivedAt = performance.now();
  state.tickers = [];
  renderHeader(app, snapshot);
  renderQueues(app, snapshot);
  renderAgents(app, snapshot);
  renderTasks(app, snapshot);
  renderCharts(app, snapshot.charts || {});
  tick(app);
}

/** Register a cell that shows `base` seconds plus the time since the snapshot arrived. */
function ticker(app, node, base, moving = true) {
  node.textContent = duration(base);
  if (moving) app.state.tickers.push({ node, base: Number(base) || 0 });
}

function tick(app) {
  const elapsed = (performance.now() - app.state.receivedAt) / 1000;
  for (const { node, base } of app.state.tickers) {
    if (node.isConnected) node.textContent = duration(base + elapsed);
  }
}

function renderHeader(app, snapshot) {
  $(app, "[data-workspace]").textContent = snapshot.workspace?.name || "";
  const updated = $(app, "[data-updated]");
  const at = snapshot.generated_at ? new Date(snapshot.generated_at) : new Date();
  updated.textContent = app.t("updated_at", { time: app.ui.clock.format(at) });
  updated.setAttribute("title", at.toISOString());
}

/**
 * Keep one <tr> per key: rows are updated in place, so a focused control or an open select
 * survives a refresh. `build(item)` returns a new row, `update(row, item)` fills it.
 */
function syncRows(tbody, items, keyOf, build, update, empty) {
  const focused = document.activeElement;
  const existing = new Map();
  for (const row of [...tbody.rows]) {
    if (row.dataset.key === undefined) row.remove();
    else existing.set(row.dataset.key, row);
  }
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let row = existing.get(key);
    if (row) existing.delete(key);
    else {
      row = build(item);
      row.dataset.key = key;
    }
    update(row, item);
    const next = previous ? previous.nextSibling : tbody.firstChild;
    if (row !== next) tbody.insertBefore(row, next);
    previous = row;
  }
  for (const row of existing.values()) row.remove();
  if (!items.length && empty) tbody.append(empty);
  if (focused && focused !== document.activeElement && focused.isConnected) {
    focused.focus({ preventScroll: true });
  }
}

function emptyRow(columns, message) {
  return el("tr", { class: "sup-empty" }, el("td", { colspan: columns, text: message }));
}

// ---------------------------------------------------------------- queues

function priorityChips(app, byPriority) {
  const entries = Object.entries(byPriority || {})
    .map(([priority, count]) => [Number(priority), Number(count) || 0])
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[0] - a[0]);
  if (!entries.length) return null;
  return el(
    "ul",
    { class: "sup-chips" },
    entries.map(([priority, count]) =>
      el(
        "li",
        {
          class: "sup-chip",
          title: app.t("priority_full", { priority: n(app, priority), count: n(app, count) }),
        },
        el("span", { "aria-hidden": "true", text: app.t("priority_chip", { priority, count: n(app, count) }) }),
        el("span", {
          class: "visually-hidden",
          text: app.t("priority_full", { priority: n(app, priority), count: n(app, count) }),
        }),
      ),
    ),
  );
}

function serviceLevel(app, cell, value, threshold) {
  cell.replaceChildren();
  delete cell.dataset.level;
  if (value === null || value === undefined) {
    cell.append(el("span", { class: "muted", text: app.t("none"), title: app.t("service_level_none") }));
    return;
  }
  cell.dataset.level = value >= 0.8 ? "good" : value >= 0.6 ? "fair" : "poor";
  const text =
    threshold === null || threshold === undefined
      ? app.ui.pct.format(value)
      : app.t("service_level", {
          percent: app.ui.pct.format(value),
          threshold: app.t("seconds_short", { seconds: n(app, threshold) }),
        });
  cell.append(el("span", { class: "sup-level", text }));
}

function buildQueueRow() {
  const row = el("tr", { "data-testid": "queue-row" });
  row.append(
    el("th", { scope: "row", "data-cell": "name" }),
    el("td", { class: "num", "data-cell": "waiting" }),
    el("td", { class: "num tick", "data-cell": "longest" }),
    el("td", { class: "num", "data-cell": "assigned" }),
    el("td", { class: "num", "data-cell": "agents" }),
    el("td", { class: "num", "data-cell": "level", "data-testid": "queue-service-level" }),
    el("td", { class: "num", "data-cell": "answered" }),
    el("td", { class: "num", "data-cell": "abandoned" }),
  );
  return row;
}

function fillQueueRow(app, row, q) {
  const cell = (name) => row.querySelector(`[data-cell=${name}]`);
  cell("name").textContent = q.name;
  const waiting = cell("waiting");
  waiting.replaceChildren(
    el("strong", { "data-testid": "queue-waiting", text: n(app, q.waiting) }),
    priorityChips(app, q.waiting_by_priority) || "",
  );
  ticker(app, cell("longest"), q.longest_wait || 0, (q.waiting || 0) > 0);
  cell("assigned").textContent = n(app, (q.assigned || 0) + (q.wrapping || 0));
  const agents = cell("agents");
  agents.textContent = `${n(app, q.available_workers)} / ${n(app, q.eligible_workers)}`;
  agents.title = app.t("agents_available_of", {
    available: n(app, q.available_workers),
    eligible: n(app, q.eligible_workers),
  });
  serviceLevel(app, cell("level"), q.service_level, q.threshold);
  cell("answered").textContent = n(app, q.answered);
  cell("abandoned").textContent = n(app, q.abandoned);
}

function renderQueues(app, snapshot) {
  const queues = snapshot.queues || [];
  syncRows(
    $(app, "[data-queues]"),
    queues,
    (q) => q.sid,
    (q) => {
      const row = buildQueueRow();
      row.dataset.queue = q.sid;
      return row;
    },
    (row, q) => fillQueueRow(app, row, q),
    emptyRow(8, app.t("no_queues")),
  );
  renderQueueTotals(app, snapshot, queues);
}

function renderQueueTotals(app, snapshot, queues) {
  const foot = $(app, "[data-queues-total]");
  if (!queues.length) {
    foot.replaceChildren();
    return;
  }
  const sum = (field) => queues.reduce((total, q) => total + (Number(q[field]) || 0), 0);
  const byPriority = {};
  for (const q of queues) {
    for (const [priority, count] of Object.entries(q.waiting_by_priority || {})) {
      byPriority[priority] = (byPriority[priority] || 0) + (Number(count) || 0);
    }
  }
  const answered = sum("answered");
  const thresholds = new Set(queues.map((q) => q.threshold));
  const row = buildQueueRow();
  row.classList.add("sup-total");
  // Agents often serve several queues: count people once, from the agents list.
  const agents = snapshot.agents || [];
  const available = agents.filter((a) => a.available).length;
  fillQueueRow(app, row, {
    name: app.t("total"),
    waiting: sum("waiting"),
    waiting_by_priority: byPriority,
    longest_wait: Math.max(0, ...queues.map((q) => Number(q.longest_wait) || 0)),
    assigned: sum("assigned"),
    wrapping: sum("wrapping"),
    available_workers: available,
    eligible_workers: agents.length,
    // As the server counts it per queue: answered in time over answered plus abandoned.
    service_level: answered + sum("abandoned") ? sum("answered_within_threshold") / (answered + sum("abandoned")) : null,
    threshold: thresholds.size === 1 ? [...thresholds][0] : null,
    answered,
    abandoned: sum("abandoned"),
  });
  // The totals are no queue: keep the per-queue test ids to the queue rows.
  for (const node of row.querySelectorAll("[data-testid]")) node.removeAttribute("data-testid");
  row.dataset.testid = "queue-total";
  foot.replaceChildren(row);
}

// ---------------------------------------------------------------- agents

function buildAgentRow(app, agent) {
  const select = el("select", {
    class: "sup-activity",
    "data-testid": "agent-activity-select",
    "aria-label": app.t("activity_for", { name: agent.name }),
  });
  select.addEventListener("change", () => changeActivity(app, agent.sid, select));
  const row = el(
    "tr",
    { "data-testid": "agent-row", dataset: { worker: agent.sid } },
    el("th", { scope: "row", "data-cell": "name" }),
    el(
      "td",
      { "data-cell": "activity" },
      el(
        "span",
        { class: "sup-activity-wrap" },
        el("span", { class: "sup-dot", "aria-hidden": "true", "data-dot": "" }),
        el("span", { class: "visually-hidden", "data-availability": "" }),
        select,
      ),
    ),
    el("td", { class: "num tick", "data-cell": "since" }),
    el("td", { "data-cell": "held" }),
    el("td", { class: "num", "data-cell": "offered" }),
  );
  return row;
}

function syncOptions(select, activities) {
  const signature = activities.map((a) => `${a.sid}:${a.name}`).join("|");
  if (select.dataset.signature === signature) return;
  select.dataset.signature = signature;
  select.replaceChildren(...activities.map((a) => el("option", { value: a.sid, text: a.name })));
}

function fillAgentRow(app, row, agent, activities) {
  const cell = (name) => row.querySelector(`[data-cell=${name}]`);
  const name = cell("name");
  name.replaceChildren(el("span", { text: agent.name }));
  if (agent.user && agent.user !== agent.name) {
    name.append(el("span", { class: "sup-sub muted", text: agent.user }));
  }
  row.dataset.available = agent.available ? "true" : "false";
  row.querySelector("[data-availability]").textContent = app.t(agent.available ? "available" : "unavailable");
  const select = row.querySelector("select");
  const known = activities.some((a) => a.sid === agent.activity_sid);
  syncOptions(
    select,
    known ? activities : [...activities, { sid: agent.activity_sid, name: agent.activity_name }],
  );
  // Leave a select the supervisor is using alone; the next refresh catches up.
  if (document.activeElement !== select && !select.dataset.pending) select.value = agent.activity_sid;
  ticker(app, cell("since"), agent.seconds_in_activity || 0);
  fillHeld(app, cell("held"), agent);
  cell("offered").textContent = n(app, agent.offered);
}

function fillHeld(app, cell, agent) {
  const held = Number(agent.held ?? agent.assigned) || 0;
  const capacity = Number(agent.capacity) || 0;
  const share = capacity ? Math.min(1, held / capacity) : held ? 1 : 0;
  const channels = Object.entries(agent.channels || {}).map(([channel, c]) =>
    app.t("held_channel", {
      channel: channelLabel(app, channel),
      assigned: n(app, c.assigned),
      capacity: n(app, c.capacity),
    }),
  );
  const names = (agent.conversations || []).map((c) => c.customer_name || app.t("unknown_customer"));
  cell.replaceChildren(
    el(
      "span",
      { class: "sup-held", title: channels.join(" · ") || null },
      el("span", { "aria-hidden": "true", "data-testid": "agent-held", text: `${n(app, held)} / ${n(app, capacity)}` }),
      el("span", {
        class: "visually-hidden",
        text: app.t("held_of", { held: n(app, held), capacity: n(app, capacity) }),
      }),
    ),
    el(
      "span",
      { class: "sup-meter", "aria-hidden": "true", dataset: { load: share >= 1 ? "full" : share > 0 ? "some" : "none" } },
      bar(share),
    ),
    names.length ? el("span", { class: "sup-sub muted", text: names.join(", ") }) : "",
  );
}

function bar(share) {
  const fill = el("span");
  fill.style.width = `${Math.round(share * 100)}%`; // CSSOM, not a style attribute (CSP)
  return fill;
}

function renderAgents(app, snapshot) {
  const activities = snapshot.activities || [];
  syncRows(
    $(app, "[data-agents]"),
    snapshot.agents || [],
    (a) => a.sid,
    (a) => buildAgentRow(app, a),
    (row, a) => fillAgentRow(app, row, a, activities),
    emptyRow(5, app.t("no_agents")),
  );
}

async function changeActivity(app, workerSid, select) {
  const agent = (app.state.snapshot?.agents || []).find((a) => a.sid === workerSid);
  const previous = agent ? agent.activity_sid : null;
  const activity = select.selectedOptions[0]?.textContent || "";
  select.dataset.pending = "1";
  select.setAttribute("aria-busy", "true");
  try {
    await api(app, `workers/${encodeURIComponent(workerSid)}/activity`, {
      method: "POST",
      body: { activity_sid: select.value },
    });
    clearError(app, "action");
    if (agent) agent.activity_sid = select.value;
    announce(app, app.t("activity_changed", { name: agent?.name || "", activity }));
  } catch (error) {
    if (previous) select.value = previous;
    showError(app, "action", error);
  } finally {
    delete select.dataset.pending;
    select.removeAttribute("aria-busy");
    scheduleRefresh(app);
  }
}

// ---------------------------------------------------------------- tasks

function buildTaskRow(app, task) {
  const monitor = el("button", { type: "button", class: "btn btn-small", "data-testid": "monitor", text: app.t("monitor") });
  const transfer = el("button", { type: "button", class: "btn btn-small", "data-testid": "transfer", text: app.t("transfer") });
  const row = el(
    "tr",
    { "data-testid": "task-row", dataset: { task: task.task_sid } },
    el("td", { "data-cell": "status" }),
    el("td", { class: "num", "data-cell": "priority" }),
    el("td", { "data-cell": "queue" }),
    el("th", { scope: "row", "data-cell": "customer" }),
    el("td", { "data-cell": "channel" }),
    el("td", { class: "num tick", "data-cell": "age" }),
    el("td", { "data-cell": "agent" }),
    el("td", { class: "sup-actions", "data-cell": "actions" }, monitor, transfer),
  );
  const current = () => (app.state.snapshot?.tasks || []).find((t) => t.task_sid === task.task_sid) || task;
  monitor.addEventListener("click", () => openMonitor(app, current(), monitor));
  transfer.addEventListener("click", () => openTransfer(app, current(), transfer));
  return row;
}

function fillTaskRow(app, row, task) {
  const cell = (name) => row.querySelector(`[data-cell=${name}]`);
  const statusKey = `task_${task.status}`;
  cell("status").replaceChildren(
    el("span", {
      class: "sup-badge",
      dataset: { status: task.status },
      text: statusKey in app.ui.text ? app.t(statusKey) : task.status,
    }),
  );
  cell("priority").textContent = n(app, task.priority);
  cell("queue").textContent = task.queue_name || app.t("none");
  const customer = task.customer_name || task.customer_address || app.t("unknown_customer");
  cell("customer").replaceChildren(
    el("span", { text: customer }),
    task.customer_name && task.customer_address
      ? el("span", { class: "sup-sub muted", text: task.customer_address })
      : "",
  );
  cell("channel").textContent = channelLabel(app, task.channel);
  ticker(app, cell("age"), task.age || 0);
  const agent = cell("agent");
  agent.replaceChildren(
    task.agent_name ? el("span", { text: task.agent_name }) : el("span", { class: "muted", text: app.t("unassigned") }),
  );
  const [monitor, transfer] = cell("actions").querySelectorAll("button");
  monitor.hidden = !task.conversation_sid;
  monitor.setAttribute("aria-label", app.t("monitor_label", { name: customer }));
  transfer.hidden = !TRANSFERABLE.has(task.status);
  transfer.setAttribute("aria-label", app.t("transfer_label", { name: customer }));
  const monitored = app.state.monitor && app.state.monitor.sid === task.conversation_sid;
  row.classList.toggle("is-monitored", Boolean(monitored));
  if (monitored) monitor.setAttribute("aria-pressed", "true");
  else monitor.removeAttribute("aria-pressed");
}

function renderTasks(app, snapshot) {
  syncRows(
    $(app, "[data-tasks]"),
    snapshot.tasks || [],
    (t) => t.task_sid,
    (t) => buildTaskRow(app, t),
    (row, t) => fillTaskRow(app, row, t),
    emptyRow(8, app.t("no_tasks")),
  );
}

// ---------------------------------------------------------------- transfer dialog

function setUpTransferDialog(app) {
  const dialog = $(app, "[data-transfer-dialog]");
  const form = dialog.querySelector("[data-transfer-form]");
  for (const radio of form.querySelectorAll("[data-target-choice]")) {
    radio.addEventListener("change", () => showTarget(dialog, radio.value));
  }
  dialog.querySelector("[data-transfer-cancel]").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    const opener = app.state.transfer?.opener;
    app.state.transfer = null;
    if (opener && opener.isConnected) opener.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitTransfer(app, dialog);
  });
}

function showTarget(dialog, target) {
  for (const field of dialog.querySelectorAll("[data-target-field]")) {
    field.hidden = field.dataset.targetField !== target;
  }
}

function openTransfer(app, task, opener) {
  const dialog = $(app, "[data-transfer-dialog]");
  const snapshot = app.state.snapshot || {};
  const customer = task.customer_name || task.customer_address || app.t("unknown_customer");
  app.state.transfer = { task, opener };
  dialog.querySelector("[data-transfer-title]").textContent = app.t("transfer_title", { name: customer });
  dialog.querySelector("[data-transfer-error]").textContent = "";
  const queues = dialog.querySelector("[data-transfer-queue]");
  queues.replaceChildren(
    ...(snapshot.queues || []).map((q) =>
      el("option", {
        value: q.sid,
        text: q.sid === task.queue_sid ? app.t("transfer_current_queue", { name: q.name }) : q.name,
      }),
    ),
  );
  const other = (snapshot.queues || []).find((q) => q.sid !== task.queue_sid);
  if (other) queues.value = other.sid;
  const agents = [...(snapshot.agents || [])]
    .filter((a) => a.sid !== task.worker_sid)
    .sort((a, b) => Number(b.available) - Number(a.available) || a.name.localeCompare(b.name, app.ui.lang));
  dialog.querySelector("[data-transfer-worker]").replaceChildren(
    ...agents.map((a) =>
      el("option", {
        value: a.sid,
        text: app.t("transfer_agent_option", {
          name: a.name,
          activity: a.activity_name,
          held: n(app, a.held ?? a.assigned),
          capacity: n(app, a.capacity),
        }),
      }),
    ),
  );
  const queueRadio = dialog.querySelector("[data-target-choice][value=queue]");
  queueRadio.checked = true;
  showTarget(dialog, "queue");
  dialog.showModal();
  queueRadio.focus();
}

async function submitTransfer(app, dialog) {
  const transfer = app.state.transfer;
  if (!transfer) return;
  const target = dialog.querySelector("[data-target-choice]:checked").value;
  const select = dialog.querySelector(target === "queue" ? "[data-transfer-queue]" : "[data-transfer-worker]");
  const error = dialog.querySelector("[data-transfer-error]");
  if (!select.value) {
    error.textContent = app.t("transfer_pick");
    return;
  }
  const submit = dialog.querySelector("[data-transfer-submit]");
  submit.disabled = true;
  error.textContent = "";
  try {
    await api(app, `tasks/${encodeURIComponent(transfer.task.task_sid)}/transfer`, {
      method: "POST",
      body: target === "queue" ? { queue_sid: select.value } : { worker_sid: select.value },
    });
    dialog.close();
    clearError(app, "action");
    announce(app, app.t("transferred"));
    scheduleRefresh(app);
  } catch (failure) {
    error.textContent = errorText(app, failure);
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- monitor panel

function setUpMonitorPanel(app) {
  $(app, "[data-monitor-close]").addEventListener("click", () => closeMonitor(app));
  $(app, "[data-monitor]").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeMonitor(app);
  });
}

async function openMonitor(app, task, opener) {
  const sid = task.conversation_sid;
  if (!sid) return;
  const panel = $(app, "[data-monitor]");
  if (app.state.monitor?.sid === sid) {
    panel.querySelector("[data-monitor-title]").focus();
    return;
  }
  closeMonitor(app, { restoreFocus: false });
  const stream = `conversation:${sid}`;
  app.state.monitor = { sid, stream, opener, ended: false, taskSid: task.task_sid };
  const customer = task.customer_name || task.customer_address || app.t("unknown_customer");
  panel.hidden = false;
  $(app, "[data-live-area]").classList.add("has-monitor");
  panel.dataset.conversation = sid;
  panel.querySelector("[data-monitor-title]").textContent = app.t("monitor_title", { name: customer });
  panel.querySelector("[data-monitor-meta]").textContent = "";
  panel.querySelector("[data-monitor-note]").textContent = app.t("monitor_readonly");
  panel.querySelector("[data-monitor-thread]").replaceChildren(
    el("li", { class: "sup-thread-empty muted", text: app.t("monitor_loading") }),
  );
  markMonitoredRow(app);
  panel.querySelector("[data-monitor-title]").focus();
  try {
    await loadMonitor(app, sid);
    clearError(app, "monitor");
  } catch (error) {
    if (app.state.monitor?.sid === sid) showError(app, "monitor", error);
  }
  if (app.state.monitor?.sid === sid && app.state.live) app.state.live.subscribe(stream);
}

function markMonitoredRow(app) {
  for (const row of $(app, "[data-tasks]").rows) {
    const task = (app.state.snapshot?.tasks || []).find((t) => t.task_sid === row.dataset.task);
    if (task) fillTaskRow(app, row, task);
  }
  tick(app);
}

function closeMonitor(app, { restoreFocus = true } = {}) {
  const monitor = app.state.monitor;
  if (!monitor) return;
  app.state.monitor = null;
  if (app.state.live && typeof app.state.live.unsubscribe === "function") {
    app.state.live.unsubscribe(monitor.stream);
  }
  const panel = $(app, "[data-monitor]");
  panel.hidden = true;
  delete panel.dataset.conversation;
  $(app, "[data-live-area]").classList.remove("has-monitor");
  markMonitoredRow(app);
  clearError(app, "monitor");
  if (restoreFocus) {
    const row = $(app, `[data-testid=task-row][data-task="${CSS.escape(monitor.taskSid || "")}"]`);
    const target = monitor.opener?.isConnected ? monitor.opener : row?.querySelector("[data-testid=monitor]");
    (target || $(app, "#sup-tasks-title")).focus();
  }
}

function endMonitor(app) {
  if (!app.state.monitor) return;
  app.state.monitor.ended = true;
  $(app, "[data-monitor-note]").textContent = app.t("monitor_ended");
  announce(app, app.t("monitor_ended"));
}

async function loadMonitor(app, sid) {
  const data = await api(app, `conversations/${encodeURIComponent(sid)}`, { base: app.ui.deskApiBase });
  if (app.state.monitor?.sid !== sid) return null; // closed or switched meanwhile
  renderMonitor(app, data);
  return data;
}

function renderMonitor(app, data) {
  const conversation = data.conversation || {};
  app.state.monitor.conversation = conversation;
  renderMonitorMeta(app);
  const entries = [
    ...(data.messages || []).map((message) => ({ at: message.date_created, node: messageItem(app, message) })),
    ...(data.notes || []).map((note) => ({ at: note.date_created, node: noteItem(app, note) })),
  ].sort((a, b) => String(a.at).localeCompare(String(b.at)));
  const thread = $(app, "[data-monitor-thread]");
  thread.replaceChildren(...entries.map((entry) => entry.node));
  if (!entries.length) thread.append(el("li", { class: "sup-thread-empty muted", text: app.t("monitor_no_messages") }));
  thread.scrollTop = thread.scrollHeight;
}

function renderMonitorMeta(app) {
  const c = app.state.monitor.conversation || {};
  const parts = [];
  const customer = c.customer || {};
  if (customer.address) parts.push(customer.address);
  if (c.channel) parts.push(channelLabel(app, c.channel));
  if (c.queue_name) parts.push(app.t("monitor_queue", { name: c.queue_name }));
  if (c.agent_name) parts.push(app.t("monitor_agent", { name: c.agent_name }));
  if (c.task_status) {
    const key = `task_${c.task_status}`;
    parts.push(app.t("monitor_status", { status: key in app.ui.text ? app.t(key) : c.task_status }));
  }
  $(app, "[data-monitor-meta]").textContent = parts.join(" · ");
}

function statusLabel(app, status) {
  const key = `msg_status_${status}`;
  return key in app.ui.text ? app.t(key) : status || "";
}

function messageItem(app, message) {
  const author = message.author || (message.direction === "inbound" ? "customer" : "agent");
  const authorKey = `author_${author}`;
  const who = message.author_name || (authorKey in app.ui.text ? app.t(authorKey) : author);
  const media = (message.media || [])
    .map((m) => {
      const href = safeUrl(m.url);
      const label = app.t("attachment", { type: m.content_type || "?" });
      return href ? el("a", { href, target: "_blank", rel: "noopener", text: label }) : el("span", { text: label });
    });
  const item = el(
    "li",
    { class: "sup-msg", dataset: { sid: message.sid, author, direction: message.direction || "" } },
    el(
      "p",
      { class: "sup-msg-head" },
      el("span", { class: "sup-msg-author", text: who }),
      el("time", { datetime: message.date_created || "", text: message.date_created ? app.ui.time.format(new Date(message.date_created)) : "" }),
    ),
    message.body ? el("p", { class: "sup-msg-body", text: message.body }) : "",
    media.length ? el("p", { class: "sup-msg-media" }, media) : "",
    el("p", { class: "sup-msg-status muted", "data-status": "" }),
  );
  setMessageStatus(app, item, message);
  return item;
}

function setMessageStatus(app, item, { status, error_code: code, error_message: errorMessage }) {
  const node = item.querySelector("[data-status]");
  item.dataset.status = status || "";
  if (item.dataset.direction !== "outbound") {
    node.textContent = "";
    return;
  }
  if ((status === "failed" || status === "undelivered") && (errorMessage || code)) {
    node.textContent = app.t("message_failed", { message: errorMessage || code });
  } else {
    node.textContent = statusLabel(app, status);
  }
}

function noteItem(app, note) {
  return el(
    "li",
    { class: "sup-msg sup-note", dataset: { note: note.id } },
    el(
      "p",
      { class: "sup-msg-head" },
      el("span", { class: "sup-msg-author", text: app.t("note", { name: note.author_name || "" }) }),
      el("time", { datetime: note.date_created || "", text: note.date_created ? app.ui.time.format(new Date(note.date_created)) : "" }),
    ),
    el("p", { class: "sup-msg-body", text: note.body || "" }),
  );
}

function appendToThread(app, node, key, value) {
  const thread = $(app, "[data-monitor-thread]");
  if (thread.querySelector(`[data-${key}="${CSS.escape(String(value))}"]`)) return;
  thread.querySelector(".sup-thread-empty")?.remove();
  const nearBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
  thread.append(node);
  if (nearBottom) thread.scrollTop = thread.scrollHeight;
}

function onMonitorEvent(app, event, data) {
  const thread = $(app, "[data-monitor-thread]");
  if (event === "message.created" && data.message) {
    appendToThread(app, messageItem(app, data.message), "sid", data.message.sid);
  } else if (event === "message.status") {
    const item = thread.querySelector(`[data-sid="${CSS.escape(String(data.sid))}"]`);
    if (item) setMessageStatus(app, item, data);
  } else if (event === "note.created" && data.note) {
    appendToThread(app, noteItem(app, data.note), "note", data.note.id);
  } else if (event === "conversation.updated") {
    const c = app.state.monitor.conversation || (app.state.monitor.conversation = {});
    if ("task_status" in data) c.task_status = data.task_status;
    if ("agent_name" in data) c.agent_name = data.agent_name;
    if ("task_sid" in data) c.task_sid = data.task_sid;
    renderMonitorMeta(app);
  }
}

// ---------------------------------------------------------------- charts

function niceScale(max, steps = 4) {
  if (!(max > 0)) return { top: steps, step: 1 };
  const raw = max / steps;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  const step = Math.max(1, (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude);
  // Small counts still get a few grid lines (0..4) rather than a single 0..1 step.
  return { top: Math.max(Math.ceil(max / step) * step, step === 1 ? steps : 0), step };
}

/** A grouped bar chart as an SVG element (role img, summary as its accessible name). */
function barChart(app, { labels, series, xTitle, yTitle, summary, tooltips, width = 640 }) {
  // Drawn at the size it is shown (fonts stay 12 px on a phone); redrawn on resize.
  const height = 280;
  const margin = { top: 16, right: 12, bottom: 64, left: 60 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const max = Math.max(0, ...series.flatMap((s) => s.values.map((v) => Number(v) || 0)));
  const { top, step } = niceScale(max);
  const y = (value) => margin.top + plotH - (value / top) * plotH;
  const band = labels.length ? plotW / labels.length : plotW;
  const barW = (band * 0.76) / Math.max(1, series.length);
  const labelEvery = Math.max(1, Math.ceil(labels.length / Math.max(1, Math.floor(plotW / 56))));

  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "sup-chart-svg",
    role: "img",
    "aria-label": summary,
    preserveAspectRatio: "xMidYMid meet",
  });
  const grid = svg("g", { class: "sup-grid" });
  for (let value = 0; value <= top; value += step) {
    grid.append(
      svg("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value) }),
      svg("text", { x: margin.left - 8, y: y(value) + 4, "text-anchor": "end", class: "sup-tick" }, n(app, value)),
    );
  }
  chart.append(grid);

  const bars = svg("g", { class: "sup-bars" });
  labels.forEach((label, i) => {
    const x0 = margin.left + i * band + band * 0.12;
    series.forEach((s, j) => {
      const value = Number(s.values[i]) || 0;
      const h = (value / top) * plotH;
      bars.append(
        svg(
          "rect",
          {
            x: x0 + j * barW,
            y: margin.top + plotH - h,
            width: Math.max(1, barW - 2),
            height: h,
            rx: Math.min(3, barW / 4),
            class: `sup-bar sup-bar-${s.key}`,
          },
          svg("title", {}, `${tooltips ? tooltips[i] : label} · ${s.name}: ${n(app, value)}`),
        ),
      );
    });
    if (i % labelEvery === 0) {
      bars.append(
        svg("text", { x: margin.left + i * band + band / 2, y: margin.top + plotH + 18, "text-anchor": "middle", class: "sup-tick" }, label),
      );
    }
  });
  chart.append(bars);

  chart.append(
    svg("line", { class: "sup-axis", x1: margin.left, x2: width - margin.right, y1: y(0), y2: y(0) }),
    svg("text", { class: "sup-axis-title", x: margin.left + plotW / 2, y: height - 12, "text-anchor": "middle" }, xTitle),
    svg(
      "text",
      { class: "sup-axis-title", transform: `translate(16 ${margin.top + plotH / 2}) rotate(-90)`, "text-anchor": "middle" },
      yTitle,
    ),
  );
  if (max === 0) {
    chart.append(
      svg("text", { class: "sup-chart-empty", x: margin.left + plotW / 2, y: margin.top + plotH / 2, "text-anchor": "middle" }, app.t("chart_empty")),
    );
  }
  return chart;
}

function chartWidth(node) {
  return Math.round(Math.min(900, Math.max(300, node.clientWidth || 640)));
}

function renderCharts(app, charts) {
  const key = JSON.stringify([charts, chartWidth($(app, "[data-chart-wait]")), chartWidth($(app, "[data-chart-volume]"))]);
  if (key === app.state.chartsKey) return; // nothing moved: keep the SVG (and any hover)
  app.state.chartsKey = key;
  renderWaitChart(app, charts.wait_times || []);
  renderVolumeChart(app, charts.volume_per_hour || []);
}

function renderWaitChart(app, buckets) {
  const labels = buckets.map((b) => String(b.label));
  const counts = buckets.map((b) => Number(b.count) || 0);
  const total = counts.reduce((a, b) => a + b, 0);
  const summary = app.t("chart_wait_summary", {
    total: n(app, total),
    items: joinList(app, buckets.map((b) => app.t("chart_wait_item", { label: b.label, count: n(app, b.count) }))),
  });
  $(app, "[data-chart-wait]").replaceChildren(
    barChart(app, {
      labels,
      series: [{ key: "wait", name: app.t("axis_tasks"), values: counts }],
      xTitle: app.t("axis_wait"),
      yTitle: app.t("axis_tasks"),
      summary,
      width: chartWidth($(app, "[data-chart-wait]")),
    }),
  );
  $(app, "[data-chart-wait-table]").replaceChildren(
    ...buckets.map((b) =>
      el("tr", {}, el("th", { scope: "row", text: b.label }), el("td", { class: "num", text: n(app, b.count) })),
    ),
  );
}

function renderVolumeChart(app, hours) {
  const dates = hours.map((h) => new Date(h.hour));
  const labels = dates.map((d) => app.ui.hour.format(d));
  const longLabels = dates.map((d) => app.ui.hourLong.format(d));
  const inbound = hours.map((h) => Number(h.inbound) || 0);
  const outbound = hours.map((h) => Number(h.outbound) || 0);
  const sumIn = inbound.reduce((a, b) => a + b, 0);
  const sumOut = outbound.reduce((a, b) => a + b, 0);
  let busiest = 0;
  hours.forEach((_, i) => {
    if (inbound[i] + outbound[i] > inbound[busiest] + outbound[busiest]) busiest = i;
  });
  const summary =
    sumIn + sumOut
      ? app.t("chart_volume_summary", {
          hours: n(app, hours.length),
          inbound: n(app, sumIn),
          outbound: n(app, sumOut),
          hour: longLabels[busiest],
          busiest: n(app, inbound[busiest] + outbound[busiest]),
        })
      : app.t("chart_volume_empty", { hours: n(app, hours.length) });
  const series = [
    { key: "inbound", name: app.t("inbound"), values: inbound },
    { key: "outbound", name: app.t("outbound"), values: outbound },
  ];
  $(app, "[data-chart-volume]").replaceChildren(
    barChart(app, {
      labels,
      tooltips: longLabels,
      series,
      xTitle: app.t("axis_hour"),
      yTitle: app.t("axis_messages"),
      summary,
      width: chartWidth($(app, "[data-chart-volume]")),
    }),
  );
  $(app, "[data-chart-volume-legend]").replaceChildren(
    ...series.map((s) =>
      el("li", {}, el("span", { class: `sup-swatch sup-bar-${s.key}`, "aria-hidden": "true" }), s.name),
    ),
  );
  $(app, "[data-chart-volume-table]").replaceChildren(
    ...hours.map((h, i) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, el("time", { datetime: h.hour, text: longLabels[i] })),
        el("td", { class: "num", text: n(app, inbound[i]) }),
        el("td", { class: "num", text: n(app, outbound[i]) }),
      ),
    ),
  );
}

// ---------------------------------------------------------------- analytics

function setUpAnalytics(app) {
  $(app, "[data-analytics-period]").addEventListener("change", () => loadAnalytics(app));
}

async function loadAnalytics(app) {
  const days = $(app, "[data-analytics-period]").value || "7";
  app.state.analytics.controller?.abort(); // the newest period wins
  const controller = new AbortController();
  app.state.analytics.controller = controller;
  const range = $(app, "[data-analytics-range]");
  range.textContent = app.t("analytics_loading");
  for (const table of ["services", "tags"]) $(app, `[data-testid=analytics-${table}]`).setAttribute("aria-busy", "true");
  try {
    const data = await api(app, `analytics?days=${encodeURIComponent(days)}`, { signal: controller.signal });
    renderAnalytics(app, data);
    clearError(app, "analytics");
  } catch (error) {
    if (error.name === "AbortError") return;
    range.textContent = "";
    showError(app, "analytics", error);
  } finally {
    if (app.state.analytics.controller === controller) {
      app.state.analytics.controller = null;
      for (const table of ["services", "tags"]) $(app, `[data-testid=analytics-${table}]`).removeAttribute("aria-busy");
    }
  }
}

function renderAnalytics(app, data) {
  const range = $(app, "[data-analytics-range]");
  range.textContent =
    data.start && data.end
      ? app.t("analytics_period", {
          start: app.ui.day.format(new Date(data.start)),
          end: app.ui.day.format(new Date(data.end)),
        })
      : "";
  fillAnalytics(app, $(app, "[data-analytics-services]"), data.services || []);
  fillAnalytics(app, $(app, "[data-analytics-tags]"), data.tags || []);
}

function fillAnalytics(app, tbody, rows) {
  tbody.replaceChildren(...rows.map((row) => analyticsRow(app, row)));
  if (!rows.length) tbody.append(emptyRow(6, app.t("analytics_empty")));
}

function analyticsRow(app, row) {
  const errors = [...(row.failed_by_error || [])].sort((a, b) => b.count - a.count).slice(0, 3);
  const delivered =
    row.delivered_rate === null || row.delivered_rate === undefined
      ? null
      : app.t("delivered_of", { delivered: n(app, row.delivered), sent: n(app, row.sent) });
  return el(
    "tr",
    { dataset: { key: row.key ?? "" } },
    el("th", { scope: "row", text: row.name || row.key || app.t("none") }),
    el("td", { class: "num", text: n(app, row.sent) }),
    el(
      "td",
      { class: "num" },
      el("span", { text: rate(app, row.delivered_rate) }),
      delivered ? el("span", { class: "sup-sub muted", text: delivered }) : "",
    ),
    el(
      "td",
      {},
      el("span", { class: "sup-failed", text: n(app, row.failed) }),
      errors.length
        ? el(
            "ul",
            { class: "sup-chips sup-chips-inline" },
            errors.map((e) =>
              el("li", {
                class: "sup-chip sup-chip-error",
                text: app.t("error_count", {
                  code: e.code === null || e.code === undefined || e.code === "" ? app.t("error_unknown_code") : e.code,
                  count: n(app, e.count),
                }),
              }),
            ),
          )
        : "",
    ),
    el(
      "td",
      { class: "num" },
      el("span", { text: rate(app, row.response_rate) }),
      row.recipients
        ? el("span", {
            class: "sup-sub muted",
            text: app.t("responded_of", { responded: n(app, row.responded), recipients: n(app, row.recipients) }),
          })
        : "",
    ),
    el("td", { class: "num", text: n(app, row.opt_outs) }),
  );
}

// ---------------------------------------------------------------- go (last: every const above is initialised)

const root = document.querySelector("[data-supervisor]");
if (root) start(root);
