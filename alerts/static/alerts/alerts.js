/* The alerts page: firing, pending and resolved alerts, live over the `alerts` topic.

   The server renders the first paint; the snapshot (on connect, reconnect or a gap) and each
   `alert.changed` event then place and fill cards from the alert payloads, using a copy of the
   server's own card markup (<template data-card-template>) for alerts that arrive live.
   Acknowledge and Silence send the card's form with fetch; without JavaScript they post. */
import { ageOf, formatValue, sendForm, sinceOf, toast } from "./common.js";

document.documentElement.classList.add("js");
const root = document.querySelector("[data-alerts-page]");
const RANK = { critical: 4, high: 3, medium: 2, low: 1 };
const STATUS_LABEL = { firing: "Firing", pending: "Pending", resolved: "Resolved" };
const SINCE_LABEL = { firing: "firing for", pending: "pending for", resolved: "resolved" };
const SEVERITY_LABEL = { critical: "Critical", high: "High", medium: "Medium", low: "Low" };
const IMPLIED = new Set(["alertname", "severity"]);
const RESOLVED_SHOWN = 50;
const alerts = new Map(); // id -> latest payload

const filterStatus = root ? root.dataset.filterStatus : "";
const filterSeverity = root ? root.dataset.filterSeverity : "";

function cardOf(id) {
  return root.querySelector(`.al-card[data-alert="${id}"]`);
}

function field(el, name) {
  return el.querySelector(`[data-field="${name}"]`);
}

function shown(alert) {
  return (!filterSeverity || alert.severity === filterSeverity) && (!filterStatus || alert.status === filterStatus);
}

/** Order within a list: worst and newest first; resolved ones by when they resolved. */
function before(a, b) {
  if (a.status === "resolved") return (Date.parse(b.resolved_at) || 0) - (Date.parse(a.resolved_at) || 0);
  const rank = (RANK[b.severity] || 0) - (RANK[a.severity] || 0);
  if (rank) return rank;
  return Date.parse(b.pending_since) - Date.parse(a.pending_since);
}

function newCard(id) {
  const template = root.querySelector("template[data-card-template]");
  const el = template.content.firstElementChild.cloneNode(true);
  el.dataset.alert = String(id);
  el.setAttribute("aria-labelledby", `al-title-${id}`);
  const title = field(el, "title");
  title.id = `al-title-${id}`;
  // The template was rendered for alert 0: point its links and forms at this one.
  title.href = title.getAttribute("href").replace(/\/0\/$/, `/${id}/`);
  el.querySelectorAll("form").forEach((form) => {
    form.action = form.getAttribute("action").replace(/\/0\/([a-z]+\/)$/, `/${id}/$1`);
  });
  return el;
}

function fill(el, a) {
  el.dataset.status = a.status;
  el.dataset.severity = a.severity;
  el.dataset.acked = String(Boolean(a.acknowledged_at));
  field(el, "severity").textContent = SEVERITY_LABEL[a.severity] || a.severity;
  field(el, "status").textContent = STATUS_LABEL[a.status] || a.status;
  field(el, "since-label").textContent = SINCE_LABEL[a.status] || "";
  const since = field(el, "since");
  const iso = sinceOf(a) || "";
  since.setAttribute("datetime", iso);
  since.textContent = ageOf(iso);
  field(el, "since-suffix").textContent = a.status === "resolved" ? " ago" : "";
  field(el, "title").textContent = a.rule;
  const summary = field(el, "summary");
  summary.textContent = a.summary || "";
  summary.hidden = !a.summary;
  const labels = field(el, "labels");
  const pairs = Object.entries(a.labels || {}).filter(([k]) => !IMPLIED.has(k)).sort(([x], [y]) => (x < y ? -1 : 1));
  labels.replaceChildren(...pairs.map(([k, v]) => {
    const li = document.createElement("li");
    const key = document.createElement("span");
    key.className = "al-lk";
    key.textContent = k;
    const value = document.createElement("span");
    value.className = "al-lv";
    value.textContent = String(v);
    li.append(key, "=", value);
    return li;
  }));
  field(el, "value").textContent = formatValue(a.value);
  const marker = (name, on) => { const m = el.querySelector(`[data-marker="${name}"]`); if (m) m.hidden = !on; };
  marker("ack", Boolean(a.acknowledged_at));
  field(el, "ack-by").textContent = a.acknowledged_by || "someone";
  marker("silenced", a.silenced);
  marker("flapping", a.flapping);
  marker("notification-failed", a.notification_failed);
  marker("escalated", a.escalation_level > 0);
  field(el, "escalation").textContent = String(a.escalation_level || 0);
  const comment = field(el, "ack-comment");
  comment.textContent = a.ack_comment || "";
  comment.hidden = !(a.acknowledged_at && a.ack_comment);
  const open = a.status !== "resolved";
  const actions = field(el, "actions");
  if (actions) actions.hidden = !open;
  const ack = el.querySelector('[data-act="ack"]');
  if (ack) ack.hidden = Boolean(a.acknowledged_at);
  const silence = el.querySelector('[data-act="silence"]');
  if (silence) silence.hidden = a.silenced;
}

function place(a) {
  let el = cardOf(a.id);
  const list = shown(a) ? root.querySelector(`[data-list="${a.status}"]`) : null;
  if (!list) {
    if (el) el.remove();
    return;
  }
  if (!el) el = newCard(a.id);
  fill(el, a);
  const next = [...list.children].find((c) => c !== el && alerts.has(Number(c.dataset.alert))
    && before(a, alerts.get(Number(c.dataset.alert))) < 0) || null;
  // Move only when the place changes: moving a card with a form in use would lose its focus.
  if (el.parentElement !== list || (el.nextElementSibling !== next && next !== el)) list.insertBefore(el, next);
}

function trimResolved() {
  const list = root.querySelector('[data-list="resolved"]');
  if (!list) return;
  while (list.children.length > RESOLVED_SHOWN) list.lastElementChild.remove();
}

function renderCounts(counts) {
  if (counts) {
    for (const key of ["firing", "pending", "unacknowledged"]) {
      root.querySelectorAll(`[data-count="${key}"], [data-tab-count="${key}"]`).forEach((el) => {
        el.textContent = String(counts[key] ?? 0);
      });
    }
    const big = root.querySelector("[data-counts-firing]");
    if (big) big.dataset.zero = String(!counts.firing);
  }
  const resolved = [...alerts.values()].filter((a) => a.status === "resolved").length;
  root.querySelectorAll('[data-tab-count="resolved"]').forEach((el) => { el.textContent = String(Math.min(resolved, RESOLVED_SHOWN)); });
  root.querySelectorAll("[data-list]").forEach((list) => {
    const name = list.dataset.list;
    const n = list.children.length;
    const count = root.querySelector(`[data-group-count="${name}"]`);
    if (count) count.textContent = String(n);
    const empty = root.querySelector(`[data-empty="${name}"]`);
    if (empty) empty.hidden = n > 0;
  });
}

function onSnapshot(data) {
  alerts.clear();
  for (const a of [...(data.alerts || []), ...(data.resolved || [])]) alerts.set(a.id, a);
  root.querySelectorAll(".al-list .al-card").forEach((el) => {
    if (!alerts.has(Number(el.dataset.alert))) el.remove();
  });
  for (const a of alerts.values()) place(a);
  trimResolved();
  renderCounts(data.counts);
}

function apply(alert, counts) {
  alerts.set(alert.id, alert);
  place(alert);
  trimResolved();
  renderCounts(counts);
}

function onEvent(event, payload) {
  if (event === "alert.changed" && payload.alert) apply(payload.alert, payload.counts);
}

async function onSubmit(e) {
  const form = e.target.closest("form[data-action]");
  if (!form || !root.contains(form)) return;
  e.preventDefault();
  const { ok, data } = await sendForm(form);
  if (data.alert) apply(data.alert, data.counts);
  if (ok) {
    toast(root, data.message);
    form.reset();
    const details = form.closest("details");
    if (details) details.open = false;
  } else {
    toast(root, data.error || "That did not work.", "error");
  }
}

if (root) {
  root.addEventListener("submit", onSubmit);
  window.OpsLive.subscribe("alerts", { onSnapshot, onEvent });
  setInterval(() => {
    root.querySelectorAll('.al-list [data-field="since"]').forEach((el) => {
      el.textContent = ageOf(el.getAttribute("datetime"));
    });
    root.querySelectorAll("[data-ago]").forEach((el) => { el.textContent = ageOf(el.getAttribute("datetime")); });
  }, 10000);
}
