/* The run page: status, progress, timeline and log tail, live over the `agents` topic. */
import { LABELS, duration, setProgress } from "./common.js";

document.documentElement.classList.add("js");
const page = document.querySelector("[data-run-page]");
const runId = Number(page.dataset.runId);
const rootId = Number(page.dataset.rootId);
const state = JSON.parse(document.getElementById("run-state").textContent);
const logList = page.querySelector("[data-log]");
const followButton = page.querySelector("[data-log-follow]");
const levelSelect = page.querySelector("[data-log-level]");
const LEVELS = { debug: 10, info: 20, warning: 30, error: 40 };
let follow = true;
let lastLogId = state.logs.length ? state.logs[state.logs.length - 1].id : 0;
const tree = new Map(state.tree.map((r) => [r.id, r]));
const FINAL = ["succeeded", "failed", "cancelled", "timed_out"];

function field(name) { return page.querySelector(`[data-field="${name}"]`); }

function renderRun(run) {
  const card = page.querySelector("[data-run-card]");
  const wasFinal = FINAL.includes(card.dataset.state);
  card.dataset.state = run.status;
  field("status").textContent = LABELS[run.status] || run.status;
  setProgress(field("progress"), run.progress, true);
  field("cancelling").hidden = !(run.cancel_requested && !FINAL.includes(run.status));
  field("waiting").hidden = !(run.awaiting_children && !FINAL.includes(run.status));
  for (const key of ["started", "finished"]) {
    const el = field(key);
    const iso = run[`${key}_at`];
    if (iso && el.getAttribute("datetime") !== iso) {
      el.setAttribute("datetime", iso);
      el.textContent = new Date(iso).toLocaleString();
    }
  }
  field("duration").textContent = duration(run.started_at, run.finished_at);
  if (run.error) {
    page.querySelector("[data-error-card]").hidden = false;
    field("error").textContent = run.error;
  }
  // Actions, result and traceback change with the final state: the server renders them.
  if (FINAL.includes(run.status) && !wasFinal) setTimeout(() => location.reload(), 800);
}

function renderTimeline() {
  const box = page.querySelector("[data-timeline]");
  const runs = [...tree.values()].sort((a, b) => a.id - b.id);
  const start = Math.min(...runs.map((r) => Date.parse(r.queued_at)));
  const end = Math.max(Date.now() - 0, ...runs.map((r) => Date.parse(r.finished_at || r.queued_at)));
  const anyActive = runs.some((r) => !FINAL.includes(r.status));
  const stop = anyActive ? Date.now() : end;
  const span = Math.max(1, stop - start);
  const depth = new Map();
  const level = (r) => {
    if (!r.parent_id || !tree.has(r.parent_id)) return 0;
    if (!depth.has(r.id)) depth.set(r.id, level(tree.get(r.parent_id)) + 1);
    return depth.get(r.id);
  };
  box.replaceChildren(...runs.map((r) => {
    const row = document.createElement("a");
    row.className = "ag-tl-row" + (r.id === runId ? " is-current" : "");
    row.href = r.url;
    const label = document.createElement("span");
    label.className = "ag-tl-label";
    label.style.paddingLeft = `${level(r) * 0.75}rem`;
    label.textContent = `${r.agent} #${r.id}`;
    const track = document.createElement("span");
    track.className = "ag-tl-track";
    const bar = document.createElement("span");
    bar.className = "ag-tl-bar";
    bar.dataset.state = r.status;
    const from = Date.parse(r.started_at || r.queued_at);
    const to = r.finished_at ? Date.parse(r.finished_at) : stop;
    bar.style.left = `${(100 * (from - start)) / span}%`;
    bar.style.width = `${Math.max(0.5, (100 * (to - from)) / span)}%`;
    bar.title = `${LABELS[r.status] || r.status} · ${duration(r.started_at, r.finished_at)}`;
    track.append(bar);
    row.append(label, track);
    return row;
  }));
}

function appendLogs(entries) {
  const minimum = LEVELS[levelSelect.value] || 0;
  const empty = logList.querySelector("[data-log-empty]");
  for (const e of entries) {
    if (e.id <= lastLogId) continue;
    lastLogId = e.id;
    if ((LEVELS[e.level] || 0) < minimum) continue;
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.dataset.level = e.level;
    li.dataset.id = e.id;
    const time = document.createElement("time");
    time.dateTime = e.at;
    time.textContent = e.at.slice(11, 19);
    const lvl = document.createElement("span");
    lvl.className = "ag-level";
    lvl.textContent = e.level;
    const msg = document.createElement("span");
    msg.className = "ag-msg";
    msg.textContent = e.message;
    li.append(time, " ", lvl, " ", msg);
    logList.append(li);
  }
  while (logList.children.length > 2000) logList.firstElementChild.remove();
  if (follow) logList.scrollTop = logList.scrollHeight;
}

async function refetch(resetLogs = false) {
  const url = new URL(page.dataset.stateUrl, location.href);
  url.searchParams.set("after_log", resetLogs ? 0 : lastLogId);
  if (levelSelect.value) url.searchParams.set("level", levelSelect.value);
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const data = await response.json();
  tree.clear();
  data.tree.forEach((r) => tree.set(r.id, r));
  renderRun(data.run);
  renderTimeline();
  if (resetLogs) {
    logList.replaceChildren();
    lastLogId = 0;
  }
  appendLogs(data.logs);
}

followButton.addEventListener("click", () => {
  follow = !follow;
  followButton.setAttribute("aria-pressed", String(follow));
  followButton.textContent = follow ? "Following" : "Paused";
  if (follow) logList.scrollTop = logList.scrollHeight;
});
levelSelect.addEventListener("change", () => refetch(true));
page.querySelectorAll("[data-confirm]").forEach((button) =>
  button.addEventListener("click", (e) => { if (!confirm(button.dataset.confirm)) e.preventDefault(); }));

window.OpsLive.subscribe("agents", {
  onSnapshot: () => refetch(), // after (re)connect or a gap: resynchronise from the server
  onEvent(event, payload) {
    if (event === "run.changed" && payload.root_id === rootId) {
      const known = tree.get(payload.id);
      tree.set(payload.id, { ...(known || {}), ...payload, url: known ? known.url : `../${payload.id}/` });
      if (payload.id === runId) renderRun(payload);
      renderTimeline();
    } else if (event === "run.progress" && payload.id === runId) {
      setProgress(field("progress"), payload, true);
    } else if (event === "run.logs" && payload.run_id === runId) {
      appendLogs(payload.entries);
    }
  },
});
renderTimeline();
logList.scrollTop = logList.scrollHeight;
setInterval(() => {
  const run = tree.get(runId);
  if (run && !FINAL.includes(run.status)) { field("duration").textContent = duration(run.started_at, run.finished_at); renderTimeline(); }
}, 1000);
