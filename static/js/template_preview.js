// The content template change page: a WhatsApp preview beside each translation, redrawn as
// the admin types (header, body with the sample values in place of the placeholders, footer,
// buttons). Plain ES module, no build step. The words come from the page
// (#template-preview-i18n) in the admin's language; the rules themselves are checked by the
// server when the form is saved (messaging/content_templates.py), not here.

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
const VALID_KEY = /^(?:[1-9][0-9]*|[a-z][a-z0-9_]*)$/;
const LIMITS = { header_text: 60, body: 1024, footer: 60 };
const MEDIA_HEADERS = ["image", "video", "document"];

const i18n = JSON.parse(document.getElementById("template-preview-i18n")?.textContent || "{}");
const group = document.getElementById("translations-group");

if (group) {
  for (const row of group.querySelectorAll(".inline-related:not(.empty-form)")) {
    setUp(row);
  }
  // "Add another translation" clones the empty form: give the new one its preview too.
  document.addEventListener("formset:added", (event) => {
    if (event.detail?.formsetName === "translations") setUp(event.target);
  });
}

// ---------------------------------------------------------------- set up

function setUp(row) {
  if (row.querySelector(".wa-preview")) return;
  const preview = buildPreview();
  row.classList.add("wa-has-preview");
  row.append(preview.root);
  const redraw = () => draw(row, preview);
  row.addEventListener("input", redraw);
  row.addEventListener("change", redraw);
  redraw();
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function buildPreview() {
  const root = element("aside", "wa-preview");
  root.setAttribute("aria-live", "polite");
  root.dataset.testid = "template-preview";
  const title = element("p", "wa-preview-title");
  const chat = element("div", "wa-chat");
  const bubble = element("div", "wa-bubble");
  const parts = {
    media: element("div", "wa-media"),
    header: element("div", "wa-header"),
    body: element("div", "wa-body"),
    footer: element("div", "wa-footer"),
    time: element("div", "wa-time", clock()),
  };
  bubble.append(...Object.values(parts));
  const buttons = element("div", "wa-buttons");
  chat.append(bubble, buttons);
  const notes = element("ul", "wa-notes");
  root.append(title, chat, notes);
  return { root, title, bubble, buttons, notes, ...parts };
}

function clock() {
  const lang = document.documentElement.lang || undefined;
  return new Date().toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
}

// ---------------------------------------------------------------- reading the form

function field(row, name) {
  return row.querySelector(`[name$="-${name}"]`);
}

function value(row, name) {
  const input = field(row, name);
  return input ? input.value : "";
}

function parseJson(text, fallback) {
  if (!text.trim()) return { value: fallback, ok: true };
  try {
    return { value: JSON.parse(text), ok: true };
  } catch {
    return { value: fallback, ok: false };
  }
}

function read(row) {
  const buttons = parseJson(value(row, "buttons"), []);
  const samples = parseJson(value(row, "samples"), {});
  return {
    language: value(row, "language").trim(),
    headerType: value(row, "header_type") || "none",
    headerText: value(row, "header_text"),
    mediaUrl: value(row, "header_media_url").trim(),
    body: value(row, "body"),
    footer: value(row, "footer"),
    buttons: Array.isArray(buttons.value) ? buttons.value : [],
    buttonsOk: buttons.ok && Array.isArray(buttons.value),
    samples: samples.value && typeof samples.value === "object" ? samples.value : {},
    samplesOk: samples.ok && !Array.isArray(samples.value),
  };
}

// ---------------------------------------------------------------- rendering

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// WhatsApp's own formatting: *bold*, _italic_, ~strikethrough~, ```monospace```.
function formatted(html) {
  return html
    .replace(/```([^`]+)```/g, "<code>$1</code>")
    .replace(/\*([^*\n]+)\*/g, "<strong>$1</strong>")
    .replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,!?:;])/gm, "$1<em>$2</em>")
    .replace(/~([^~\n]+)~/g, "<s>$1</s>");
}

// Placeholders become samples (or stay visible as {{1}} when there is none); the text around
// them is escaped and formatted. Markers keep the placeholders out of the formatting rules.
function fill(text, samples, missing) {
  const pieces = [];
  const marked = text.replace(PLACEHOLDER, (match, key) => {
    if (!VALID_KEY.test(key)) return match;
    const sample = samples[key];
    if (sample === undefined || sample === "") {
      missing.add(key);
      pieces.push(`<span class="wa-placeholder">${escapeHtml(match)}</span>`);
    } else {
      pieces.push(`<span class="wa-sample">${escapeHtml(String(sample))}</span>`);
    }
    return `\u0001${pieces.length - 1}\u0002`;
  });
  return formatted(escapeHtml(marked)).replace(/\u0001(\d+)\u0002/g, (_m, i) => pieces[i]);
}

function drawMedia(preview, form) {
  const media = preview.media;
  media.replaceChildren();
  media.hidden = !MEDIA_HEADERS.includes(form.headerType);
  if (media.hidden) return;
  media.dataset.kind = form.headerType;
  if (form.headerType === "image" && /^https?:\/\/\S+$/i.test(form.mediaUrl)) {
    const image = element("img");
    image.alt = i18n.image || "Image";
    image.src = form.mediaUrl;
    media.append(image);
    return;
  }
  // A badge with the file's extension (PDF, MP4…), else the kind; then the file's name.
  const name = form.mediaUrl.split(/[?#]/)[0].split("/").pop();
  const extension = name.includes(".") ? name.split(".").pop().toUpperCase().slice(0, 4) : "";
  media.append(
    element("span", "wa-media-icon", extension || i18n[form.headerType] || form.headerType),
    element("span", "wa-media-label", name || i18n[form.headerType] || form.headerType),
  );
}

function drawButtons(preview, form, missing) {
  preview.buttons.replaceChildren();
  for (const button of form.buttons) {
    if (!button || typeof button !== "object") continue;
    const url = button.type === "URL";
    const item = element("div", url ? "wa-button wa-button-url" : "wa-button");
    item.append(element("span", "wa-button-icon", url ? "↗" : "↩"));
    item.append(element("span", "wa-button-text", String(button.text ?? "")));
    if (url && typeof button.url === "string") {
      const filled = document.createElement("span");
      filled.innerHTML = fill(button.url, form.samples, missing);
      item.title = filled.textContent;
    }
    preview.buttons.append(item);
  }
  preview.buttons.hidden = preview.buttons.childElementCount === 0;
}

function note(preview, text, className = "") {
  preview.notes.append(element("li", className, text));
}

function drawNotes(preview, form, missing) {
  preview.notes.replaceChildren();
  const counted = [
    ["header_text", i18n.header || "Header", form.headerType === "text" ? form.headerText : null],
    ["body", i18n.body || "Body", form.body],
    ["footer", i18n.footer || "Footer", form.footer || null],
  ];
  for (const [name, label, text] of counted) {
    if (text === null) continue;
    const over = text.length > LIMITS[name];
    note(
      preview,
      `${label}: ${text.length}/${LIMITS[name]} ${i18n.characters || "characters"}`,
      over ? "wa-note-over" : "wa-note-count",
    );
  }
  if (!form.buttonsOk) note(preview, i18n.badButtons, "wa-note-error");
  if (!form.samplesOk) note(preview, i18n.badSamples, "wa-note-error");
  for (const key of missing) {
    note(preview, (i18n.noSample || "No sample for %s").replace("%s", `{{${key}}}`), "wa-note");
  }
}

function draw(row, preview) {
  const form = read(row);
  const missing = new Set();
  preview.title.textContent = [i18n.title || "WhatsApp preview", form.language]
    .filter(Boolean)
    .join(" · ");
  drawMedia(preview, form);
  const header = form.headerType === "text" ? form.headerText : "";
  preview.header.innerHTML = fill(header, form.samples, missing);
  preview.header.hidden = !header.trim();
  const body = form.body.trim();
  preview.body.innerHTML = body ? fill(body, form.samples, missing) : "";
  preview.body.classList.toggle("wa-empty", !body);
  if (!body) preview.body.textContent = i18n.empty || "";
  preview.footer.textContent = form.footer;
  preview.footer.hidden = !form.footer.trim();
  drawButtons(preview, form, missing);
  drawNotes(preview, form, missing);
}
