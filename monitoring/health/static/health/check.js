/* A check's page: its state, latency chart and results live over the `health` topic. */
import { ago, renderStrip, setText, since, stateLabel, uptime } from "./common.js";

document.documentElement.classList.add("js");
const root = document.querySelector("[data-health-check]");
const id = root ? Number(root.dataset.checkId) : null;
let current = null;
let chart = null;
let resyncTimer = null;
const MAX_POINTS = 1500;

function point(r) {
  return { x: Date.parse(r.at), y: r.latency_ms === null ? 0 : r.latency_ms, ok: r.ok };
}

function timeLabel(ms, span) {
  const d = new Date(ms);
  const seconds = span < 15 * 60 * 1000 ? { second: "2-digit" } : {};
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", ...seconds });
}

function makeChart(series) {
  const canvas = root.querySelector("[data-latency-chart]");
  if (!canvas || !window.Chart) return null;
  const css = getComputedStyle(document.documentElement);
  const primary = css.getPropertyValue("--color-primary-600").trim();
  const line = primary || "#7c3aed"; // Unfold's primary colour, an oklch() value canvases accept
  return new window.Chart(canvas, {
    type: "line",
    data: {
      datasets: [{
        label: "Latency (ms)",
        data: series.map(point),
        borderColor: line,
        borderWidth: 1.5,
        pointRadius: (ctx) => (ctx.raw && !ctx.raw.ok ? 3 : 0),
        pointBackgroundColor: (ctx) => (ctx.raw && !ctx.raw.ok ? "#dc2626" : line),
        pointBorderColor: (ctx) => (ctx.raw && !ctx.raw.ok ? "#dc2626" : line),
        tension: 0.2,
        parsing: false,
      }],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: {
          type: "linear",
          ticks: {
            callback(value) { return timeLabel(value, this.max - this.min); },
            maxTicksLimit: canvas.clientWidth < 500 ? 3 : 6,
            maxRotation: 0,
          },
        },
        y: { beginAtZero: true, title: { display: true, text: "ms" } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => new Date(items[0].raw.x).toLocaleString(),
            label: (item) => `${item.raw.ok ? "up" : "down"} · ${item.raw.y} ms`,
          },
        },
      },
    },
  });
}

function renderTimes() {
  if (!current) return;
  const el = setText(root, "since", `${since(current.state_since)} (${new Date(current.state_since).toLocaleString()})`);
  if (el) el.setAttribute("datetime", current.state_since);
  setText(root, "last", ago(current.last_checked_at));
}

function apply(check) {
  current = { ...(current || {}), ...check };
  const card = root.querySelector("[data-check-card]");
  card.dataset.state = current.state;
  card.dataset.enabled = String(current.enabled);
  setText(card, "state", stateLabel(current));
  setText(card, "latency", current.latency_ms === null || current.latency_ms === undefined ? "—" : `${current.latency_ms} ms`);
  setText(card, "detail", current.detail || "—");
  if (current.uptime) {
    setText(card, "uptime-24h", uptime(current.uptime["24h"]));
    setText(card, "uptime-7d", uptime(current.uptime["7d"]));
    setText(card, "uptime-30d", uptime(current.uptime["30d"]));
  }
  renderStrip(card.querySelector("[data-field=strip]"), current.recent);
  renderTimes();
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (text instanceof Node) td.append(text);
  else td.textContent = text;
  return td;
}

function addResult(check) {
  const last = (check.recent || [])[check.recent.length - 1];
  if (!last || last[0] !== check.last_checked_at) return;
  const [at, ok, latency] = last;
  if (chart) {
    const data = chart.data.datasets[0].data;
    if (!data.length || data[data.length - 1].x < Date.parse(at)) {
      data.push(point({ at, ok, latency_ms: latency }));
      const cutoff = Date.now() - 24 * 3600 * 1000;
      while (data.length && (data[0].x < cutoff || data.length > MAX_POINTS)) data.shift();
      chart.update("none");
      root.querySelector("[data-chart-empty]").hidden = true;
    }
  }
  if (root.dataset.firstPage !== "true") return;
  const body = root.querySelector("[data-results]");
  body.querySelector("[data-results-empty]")?.remove();
  const tr = document.createElement("tr");
  tr.dataset.ok = String(ok);
  const time = document.createElement("time");
  time.dateTime = at;
  time.textContent = new Date(at).toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const chip = document.createElement("span");
  chip.className = "hc-chip";
  chip.dataset.state = ok ? "up" : "down";
  chip.textContent = ok ? "Up" : "Down";
  tr.append(cell(time), cell(chip), cell(latency === null ? "—" : `${latency.toFixed(1)} ms`),
    cell(check.status_code ? String(check.status_code) : "—"), cell(check.detail || "", "hc-wrap"));
  body.prepend(tr);
  while (body.children.length > 50) body.lastElementChild.remove();
}

function onSnapshot(data) {
  const check = (data.checks || []).find((c) => c.id === id);
  if (!check) {
    root.querySelector("[data-field=deleted]").hidden = false;
    return;
  }
  apply(check);
}

function onEvent(event, payload) {
  if (event === "checks.updated") {
    const check = (payload.checks || []).find((c) => c.id === id);
    if (!check) return;
    apply(check);
    addResult(check);
    if (check.flipped) {
      clearTimeout(resyncTimer); // uptime and the flips table come from the server
      resyncTimer = setTimeout(() => window.OpsLive.resync("health"), 1500);
    }
  } else if (event === "check.deleted" && payload.id === id) {
    root.querySelector("[data-field=deleted]").hidden = false;
  }
}

if (root) {
  const series = JSON.parse(document.getElementById("health-series").textContent);
  chart = makeChart(series);
  const form = root.querySelector("[data-run-form]");
  if (form) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("[data-run-button]");
      // Disabled after the submit has started, so the POST still goes out once.
      setTimeout(() => { button.disabled = true; button.textContent = "Running…"; }, 0);
    });
  }
  window.OpsLive.subscribe("health", { onSnapshot, onEvent });
  setInterval(renderTimes, 1000);
}
