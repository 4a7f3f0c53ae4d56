// The customer phone page: follow one thread by polling (no websocket needed for a test
// tool), reply as the customer, keep the thread list fresh. Plain ES module, no build step.

const POLL_MS = 1500;
const THREADS_EVERY = 4; // refresh the thread list every 4th poll (6 s)
const TICKS = {
  accepted: "◷",
  scheduled: "◷",
  queued: "◷",
  sending: "◷",
  sent: "✓",
  delivered: "✓✓",
  read: "✓✓",
  undelivered: "!",
  failed: "!",
  canceled: "⊘",
  receiving: "",
  received: "",
};

const root = document.querySelector("[data-simulator]");
if (root) {
  const i18n = JSON.parse(document.getElementById("simulator-i18n").textContent);
  const lang = document.documentElement.lang || undefined;
  setUpPicker(root);
  localizeTimes(root, lang);
  drawTicks(root);
  const thread = root.querySelector("[data-thread]");
  if (thread && root.dataset.ready) {
    const follower = followThread(root, thread, i18n, lang);
    setUpComposer(root, follower);
  }
  keepThreadsFresh(root, i18n, lang);
}

// ---------------------------------------------------------------- picker

function setUpPicker(root) {
  const channel = root.querySelector("[data-channel-select]");
  const sender = root.querySelector("[data-sender-select]");
  const number = root.querySelector("#sim-number");
  if (!channel || !number) return;

  const applyChannel = () => {
    const option = channel.selectedOptions[0];
    number.placeholder = option?.dataset.placeholder || "";
    number.inputMode = channel.value === "messenger" ? "numeric" : "tel";
    if (!sender) return;
    // Only senders of the chosen channel can talk to this customer.
    for (const opt of sender.options) {
      const fits = opt.dataset.channel === channel.value;
      opt.hidden = !fits;
      opt.disabled = !fits;
    }
    for (const group of sender.querySelectorAll("optgroup")) {
      group.hidden = ![...group.children].some((o) => !o.hidden);
    }
    if (sender.selectedOptions[0]?.disabled) {
      const first = [...sender.options].find((o) => !o.disabled);
      sender.value = first ? first.value : "";
    }
  };
  channel.addEventListener("change", applyChannel);
  sender?.addEventListener("change", () => {
    const picked = sender.selectedOptions[0];
    if (picked && picked.dataset.channel !== channel.value) {
      channel.value = picked.dataset.channel;
      applyChannel();
    }
  });
  applyChannel();
}

// ---------------------------------------------------------------- thread

function followThread(root, list, i18n, lang) {
  const params = new URLSearchParams({
    customer: root.dataset.customer,
    sender: root.dataset.sender,
  });
  const url = `${root.dataset.threadUrl}?${params}`;
  const offline = root.querySelector("[data-offline]");
  let lastSignature = null;
  let timer = null;
  let stickToBottom = true;

  list.addEventListener("scroll", () => {
    stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  });
  scrollDown(list);

  async function poll() {
    clearTimeout(timer);
    try {
      const response = await fetch(url, {
        headers: { Accept: "application/json" },
        cache: "no-store",
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      offline.hidden = true;
      const signature = JSON.stringify(data.messages);
      if (signature !== lastSignature) {
        const follow = stickToBottom || lastSignature === null;
        lastSignature = signature;
        renderMessages(list, data.messages, i18n, lang);
        if (follow) scrollDown(list);
      }
    } catch {
      offline.hidden = false;
    } finally {
      timer = setTimeout(poll, POLL_MS);
    }
  }
  poll();
  return {
    refresh() {
      stickToBottom = true;
      return poll();
    },
  };
}

function scrollDown(list) {
  list.scrollTop = list.scrollHeight;
}

function renderMessages(list, messages, i18n, lang) {
  const items = messages.map((m) => messageItem(m, lang));
  if (!items.length) {
    const empty = el("li", "sim-messages-empty", i18n.empty);
    empty.dataset.empty = "";
    items.push(empty);
  }
  list.replaceChildren(...items);
}

function messageItem(m, lang) {
  const item = el("li", `sim-msg ${m.from_customer ? "sim-msg-customer" : "sim-msg-business"}`);
  item.dataset.sid = m.sid;
  item.dataset.status = m.status;

  const bubble = el("div", "sim-bubble");
  if (m.body) bubble.append(el("p", "sim-body", m.body));
  for (const media of m.media) {
    const link = el("a", "sim-media", media.content_type || media.url);
    link.href = media.url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    bubble.append(link);
  }

  const meta = el("div", "sim-meta");
  const time = el("time", "", formatTime(m.date, lang));
  time.dateTime = m.date;
  const status = el("span", `sim-status sim-status-${m.status}`);
  const tick = el("span", "sim-tick", TICKS[m.status] ?? "");
  tick.setAttribute("aria-hidden", "true");
  status.append(tick, el("span", "sim-status-label", m.status_label));
  meta.append(time, status);
  if (m.error_code) {
    const error = el("span", "sim-error", `${m.error_code} · ${m.error_message}`);
    error.title = m.error_message;
    meta.append(error);
  }
  item.append(bubble, meta);
  return item;
}

// ---------------------------------------------------------------- composer

function setUpComposer(root, follower) {
  const form = root.querySelector("[data-composer]");
  if (!form) return;
  const textarea = form.querySelector("textarea");
  const button = form.querySelector("[data-send]");
  const error = form.querySelector("[data-composer-error]");
  const label = button.textContent;
  const i18n = JSON.parse(document.getElementById("simulator-i18n").textContent);

  const grow = () => {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
  };
  textarea.addEventListener("input", grow);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!textarea.value.trim() || button.disabled) return;
    button.disabled = true;
    button.textContent = i18n.sending;
    error.hidden = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.message || `HTTP ${response.status}`);
      textarea.value = "";
      grow();
      await follower.refresh();
    } catch (exc) {
      error.textContent = `${i18n.error}: ${exc.message}`;
      error.hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = label;
      textarea.focus();
    }
  });
}

// ---------------------------------------------------------------- thread list

function keepThreadsFresh(root, i18n, lang) {
  const list = root.querySelector("[data-thread-list]");
  if (!list) return;
  const current = `${root.dataset.customer}|${root.dataset.sender}`;
  let lastSignature = null;
  const refresh = async () => {
    try {
      const response = await fetch(root.dataset.threadsUrl, {
        headers: { Accept: "application/json" },
        cache: "no-store",
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const { threads } = await response.json();
      const signature = JSON.stringify(threads);
      if (signature === lastSignature) return;
      lastSignature = signature;
      list.replaceChildren(...threadItems(threads, current, root.dataset.pageUrl, i18n, lang));
    } catch {
      // The thread poll shows the offline notice; this list simply waits for the next round.
    }
  };
  setInterval(refresh, POLL_MS * THREADS_EVERY);
}

function threadItems(threads, current, pageUrl, i18n, lang) {
  if (!threads.length) return [el("li", "sim-thread-empty muted", i18n.noThreads)];
  return threads.map((t) => {
    const link = el("a", "sim-thread");
    link.href = `${pageUrl}?${new URLSearchParams({ customer: t.customer, sender: t.sender })}`;
    if (`${t.customer}|${t.sender}` === current) {
      link.classList.add("is-current");
      link.setAttribute("aria-current", "true");
    }
    const top = el("span", "sim-thread-top");
    const time = el("time", "", formatTime(t.date, lang, true));
    time.dateTime = t.date;
    top.append(el("span", "sim-thread-customer", t.customer), time);
    const sender = el("span", "sim-thread-sender");
    sender.append(
      el("span", `sim-channel-badge sim-channel-${t.channel}`, t.channel),
      ` ${t.sender_address}`,
    );
    const last = el("span", "sim-thread-last", truncate(t.last_body, 60));
    link.append(top, sender, last);
    const item = el("li");
    item.append(link);
    return item;
  });
}

// ---------------------------------------------------------------- helpers

function el(tag, className = "", text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null) node.textContent = text;
  return node;
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function formatTime(iso, lang, short = false) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const sameDay = date.toDateString() === new Date().toDateString();
  const clock = { hour: "2-digit", minute: "2-digit" };
  const day = { day: "numeric", month: "short" };
  if (sameDay) return date.toLocaleTimeString(lang, clock);
  // In the thread list an older thread shows its day only; in a thread, day and time.
  return date.toLocaleString(lang, short ? day : { ...day, ...clock });
}

function localizeTimes(root, lang) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    time.textContent = formatTime(time.dateTime, lang, time.hasAttribute("data-short"));
  }
}

function drawTicks(root) {
  for (const item of root.querySelectorAll(".sim-msg[data-status] .sim-tick")) {
    item.textContent = TICKS[item.closest(".sim-msg").dataset.status] ?? "";
  }
}
