/* The live agent tree: node states over the `agents` topic; a snapshot after (re)connect. */
import { LABELS, ago, duration, setProgress } from "./common.js";

document.documentElement.classList.add("js");
const root = document.querySelector("[data-hierarchy]");
const highlight = root && root.dataset.highlightRun;
let resyncTimer = null;

function node(slug) {
  return root.querySelector(`.ag-node[data-agent="${CSS.escape(slug)}"]`);
}

function renderTimes(el, run) {
  const last = el.querySelector(":scope > .ag-row [data-field=last-time]");
  const dur = el.querySelector(":scope > .ag-row [data-field=duration]");
  if (last) last.textContent = run ? (run.started_at ? ago(run.started_at) : "queued") : "never";
  if (dur) dur.textContent = run && run.started_at ? duration(run.started_at, run.finished_at) : "—";
}

function applyRun(el, run) {
  el.dataset.state = run.status;
  el.dataset.lastRun = String(run.id);
  const chip = el.querySelector(":scope > .ag-row [data-field=state]");
  if (chip) chip.textContent = LABELS[run.status] || run.status;
  setProgress(el.querySelector(":scope > .ag-row [data-field=progress]"), run.progress, run.status === "running");
  const link = el.querySelector(":scope > .ag-row [data-field=last-link]");
  if (link) link.href = link.href.replace(/runs\/\d+\//, `runs/${run.id}/`);
  el._run = run;
  renderTimes(el, run);
  if (highlight && String(run.id) === highlight) el.classList.add("is-highlighted");
}

function applyNode(data) {
  const el = node(data.slug);
  if (!el) return false;
  if (data.last_run) applyRun(el, data.last_run);
  else {
    el.dataset.state = "idle";
    renderTimes(el, null);
  }
  const success = el.querySelector(":scope > .ag-row [data-field=success]");
  if (success) success.textContent = data.success_rate === null ? "—" : `${Math.round(data.success_rate * 100)}%`;
  return (data.children || []).every(applyNode);
}

function onSnapshot(data) {
  const complete = (data.agents || []).every(applyNode);
  const known = root.querySelectorAll(".ag-node").length;
  let count = 0;
  const walk = (nodes) => nodes.forEach((n) => { count += 1; walk(n.children || []); });
  walk(data.agents || []);
  if (!complete || count !== known) location.reload(); // the hierarchy itself changed
}

function onEvent(event, payload) {
  if (event === "run.changed") {
    const el = node(payload.agent);
    if (!el) return;
    const current = Number(el.dataset.lastRun || 0);
    if (payload.id >= current) applyRun(el, payload);
    if (["succeeded", "failed", "cancelled", "timed_out"].includes(payload.status)) {
      clearTimeout(resyncTimer); // success rates are recounted by the server
      resyncTimer = setTimeout(() => window.OpsLive.resync("agents"), 1500);
    }
  } else if (event === "run.progress") {
    const el = node(payload.agent);
    if (el && Number(el.dataset.lastRun) === payload.id) {
      el.dataset.state = "running";
      setProgress(el.querySelector(":scope > .ag-row [data-field=progress]"), payload, true);
    }
  }
}

async function toggleRuns(button) {
  const el = button.closest(".ag-node");
  const box = el.querySelector(":scope > [data-runs]");
  const open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", String(open));
  box.hidden = !open;
  if (!open) return;
  box.textContent = "Loading…";
  const url = root.dataset.runsUrlTemplate.replace("SLUG", encodeURIComponent(el.dataset.agent));
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const { runs } = await response.json();
    box.replaceChildren();
    if (!runs.length) { box.textContent = "No runs yet."; return; }
    const list = document.createElement("ul");
    list.className = "ag-runlist";
    for (const run of runs) {
      const li = document.createElement("li");
      li.dataset.state = run.status;
      const a = document.createElement("a");
      a.className = "ag-runlink";
      a.href = run.url;
      const chip = document.createElement("span");
      chip.className = "ag-chip";
      chip.textContent = LABELS[run.status] || run.status;
      const text = document.createElement("span");
      text.textContent = `#${run.id} · ${run.trigger} · ${ago(run.queued_at)} · ${duration(run.started_at, run.finished_at)}`;
      a.append(chip, text);
      li.append(a);
      list.append(li);
    }
    box.append(list);
  } catch (error) {
    box.textContent = "Could not load the runs; try again.";
  }
}

if (root) {
  root.querySelectorAll("[data-runs-toggle]").forEach((b) => b.addEventListener("click", () => toggleRuns(b)));
  window.OpsLive.subscribe("agents", { onSnapshot, onEvent });
  setInterval(() => root.querySelectorAll(".ag-node").forEach((el) => el._run && renderTimes(el, el._run)), 1000);
}
