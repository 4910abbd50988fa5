/* The health page: every check's state live over the `health` topic; a snapshot after (re)connect. */
import { ago, renderStrip, setText, since, stateLabel, uptime } from "./common.js";

document.documentElement.classList.add("js");
const root = document.querySelector("[data-health-overview]");
const checks = new Map(); // id -> latest summary
let resyncTimer = null;

function row(id) {
  return root.querySelector(`.hc-row[data-check="${id}"]`);
}

function renderTimes(el, check) {
  const sinceEl = setText(el, "since", check.enabled ? since(check.state_since) : "—");
  if (sinceEl) sinceEl.setAttribute("datetime", check.state_since);
  setText(el, "last", ago(check.last_checked_at));
}

function apply(check) {
  const previous = checks.get(check.id) || {};
  const merged = { ...previous, ...check };
  checks.set(check.id, merged);
  const el = row(check.id);
  if (!el) return false;
  el.dataset.state = merged.state;
  el.dataset.enabled = String(merged.enabled);
  setText(el, "state", stateLabel(merged));
  setText(el, "latency", merged.latency_ms === null || merged.latency_ms === undefined ? "—" : `${merged.latency_ms} ms`);
  const detail = setText(el, "detail", merged.detail || "");
  if (detail) detail.title = merged.detail || "";
  if (merged.uptime) {
    setText(el, "uptime-24h", uptime(merged.uptime["24h"]));
    setText(el, "uptime-7d", uptime(merged.uptime["7d"]));
    setText(el, "uptime-30d", uptime(merged.uptime["30d"]));
  }
  renderStrip(el.querySelector("[data-field=strip]"), merged.recent);
  renderTimes(el, merged);
  return true;
}

function renderOverall() {
  const box = root.querySelector("[data-overall]");
  if (!box) return;
  const enabled = [...checks.values()].filter((c) => c.enabled);
  const count = (state) => enabled.filter((c) => c.state === state).length;
  const up = count("up");
  const down = count("down");
  const unknown = count("unknown");
  const state = down ? "down" : unknown || !enabled.length ? "unknown" : "up";
  box.dataset.state = state;
  let title;
  if (state === "up") title = `All ${enabled.length} checks up`;
  else if (state === "down") title = `${down} of ${enabled.length} checks down`;
  else if (!enabled.length) title = "No checks enabled";
  else title = `${unknown} of ${enabled.length} checks not run yet`;
  setText(box, "overall-title", title);
  setText(box, "overall-counts", `${up} up · ${down} down · ${unknown} unknown`);
}

function onSnapshot(data) {
  checks.clear();
  const ids = new Set((data.checks || []).map((c) => String(c.id)));
  const shown = new Set([...root.querySelectorAll(".hc-row")].map((el) => el.dataset.check));
  if (ids.size !== shown.size || [...ids].some((id) => !shown.has(id))) {
    location.reload(); // checks were added or removed: the server renders the new list
    return;
  }
  (data.checks || []).forEach(apply);
  renderOverall();
}

function onEvent(event, payload) {
  if (event === "checks.updated") {
    let flipped = false;
    for (const check of payload.checks || []) {
      if (!apply(check)) flipped = true; // a new check: the snapshot brings its row
      flipped = flipped || check.flipped;
    }
    renderOverall();
    if (flipped) {
      clearTimeout(resyncTimer); // uptime is recounted by the server
      resyncTimer = setTimeout(() => window.OpsLive.resync("health"), 1500);
    }
  } else if (event === "check.deleted") {
    window.OpsLive.resync("health");
  }
}

if (root) {
  window.OpsLive.subscribe("health", { onSnapshot, onEvent });
  setInterval(() => checks.forEach((check) => {
    const el = row(check.id);
    if (el) renderTimes(el, check);
  }), 1000);
}
