// System resources page: charts from the metric store, hosts and processes live over `metrics`.
const root = document.querySelector("[data-system]");

const UNITS = ["B", "KB", "MB", "GB", "TB"];
function bytes(n) {
  let value = Number(n) || 0;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < UNITS.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${value.toFixed(value >= 100 || i === 0 ? 0 : 1)} ${UNITS[i]}`;
}
const fixed = (n, digits) => (n == null ? "—" : Number(n).toFixed(digits));
const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569"];

function formatValue(unit, value) {
  if (unit === "bytes") return bytes(value);
  if (unit === "bytes/s") return `${bytes(value)}/s`;
  if (unit === "percent") return `${fixed(value, 0)} %`;
  return fixed(value, 2);
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function facts(pairs) {
  const dl = el("dl", { class: "sy-facts" });
  pairs.forEach(([term, value]) => {
    const row = el("div");
    row.append(el("dt", {}, term), el("dd", {}, value));
    dl.append(row);
  });
  return dl;
}

function paintHosts(hosts) {
  const box = root.querySelector("[data-hosts]");
  box.replaceChildren();
  if (!hosts.length) {
    box.append(el("p", { class: "oc-muted" }, "No host has reported yet."));
    return;
  }
  hosts.forEach((h) => {
    const card = el("section", { class: "oc-card sy-host" });
    const dl = facts([
      ["CPU", `${fixed(h.cpu_percent, 0)} %`],
      ["Memory", `${fixed(h.memory_used_percent, 0)} % · ${bytes(h.memory_used_bytes)} of ${bytes(h.memory_total_bytes)}`],
      ["Disk (var)", `${fixed(h.disk_used_percent, 0)} % · ${bytes(h.disk_free_bytes)} free`],
      ["Load", `${fixed(h.load1, 2)} / ${fixed(h.load5, 2)} / ${fixed(h.load15, 2)}`],
    ]);
    dl.className = "sy-figures";
    card.append(el("h3", { class: "sy-title" }, h.host), dl);
    box.append(card);
  });
}

function paintProcesses(list, which, emptyText) {
  const box = root.querySelector(`[data-procs="${which}"]`);
  box.replaceChildren();
  if (!list.length) {
    box.append(el("p", { class: "oc-muted" }, emptyText));
    return;
  }
  list.forEach((p) => {
    const card = el("article", { class: "sy-proc", "data-online": p.online ? "true" : "false" });
    const head = el("header");
    head.append(el("span", { class: "sy-role" }, p.role), el("span", { class: "sy-name" }, p.name),
      el("span", { class: "sy-state" }, p.online ? "Online" : "Gone"));
    const pairs = [["Host", p.host], ["PID", String(p.pid)]];
    if (p.role === "worker") {
      pairs.push(["Concurrency", p.concurrency == null ? "—" : String(p.concurrency)]);
      pairs.push(["Active tasks", p.active_tasks == null ? "—" : String(p.active_tasks)]);
    }
    pairs.push(["RSS", bytes(p.rss_bytes)], ["CPU", `${fixed(p.cpu_percent, 1)} %`],
      ["Last heartbeat", `${Math.round(p.age_seconds || 0)} s ago`]);
    card.append(head, facts(pairs));
    box.append(card);
  });
}

function paint(snapshot) {
  if (!snapshot) return;
  paintHosts(snapshot.hosts || []);
  const procs = snapshot.processes || [];
  paintProcesses(procs.filter((p) => p.role === "worker"), "worker", "No worker has reported yet.");
  paintProcesses(procs.filter((p) => p.role !== "worker"), "other", "No web or beat process has reported yet.");
}

// --- charts ----------------------------------------------------------------------------------

const charts = new Map(); // chart id -> {chart, unit, how}
const windowKey = root ? root.dataset.window : "1h";
const windowMs = windowKey === "1d" ? 86400000 : 3600000;

function timeLabel(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}
const narrow = () => window.matchMedia("(max-width: 639px)").matches;
let range = { min: Date.now() - windowMs, max: Date.now() };

function buildChart(spec) {
  const card = root.querySelector(`[data-chart="${spec.id}"]`);
  if (!card || !window.Chart) return;
  const empty = !spec.datasets.some((d) => d.points.length);
  card.querySelector("[data-empty]").hidden = !empty;
  const datasets = spec.datasets.map((d, i) => ({
    label: d.label,
    key: d.key,
    data: d.points.map(([x, y]) => ({ x, y })),
    borderColor: PALETTE[i % PALETTE.length],
    backgroundColor: PALETTE[i % PALETTE.length],
    borderWidth: 1.5,
    pointRadius: 0,
    tension: 0.2,
  }));
  const existing = charts.get(spec.id);
  if (existing) {
    existing.chart.data.datasets = datasets;
    Object.assign(existing.chart.options.scales.x, range);
    existing.chart.update("none");
    return;
  }
  const chart = new window.Chart(card.querySelector("canvas"), {
    type: "line",
    data: { datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        // The whole window, data or not: an hour-old process shows as a line starting mid-chart.
        x: {
          type: "linear", min: range.min, max: range.max,
          // Round steps (10 or 20 min, 4 or 6 h) land on round clock times.
          ticks: {
            stepSize: { "1h": narrow() ? 1200000 : 600000, "1d": narrow() ? 21600000 : 14400000 }[windowKey],
            maxTicksLimit: narrow() ? 5 : 8, maxRotation: 0, callback: (v) => timeLabel(v),
          },
        },
        y: {
          beginAtZero: true,
          suggestedMax: spec.unit === "percent" ? 100 : undefined,
          ticks: { maxTicksLimit: 5, callback: (v) => formatValue(spec.unit, v) },
        },
      },
      plugins: {
        legend: { display: datasets.length > 1, position: "bottom", labels: { boxWidth: 10, font: { size: 11 } } },
        tooltip: {
          callbacks: {
            title: (items) => (items.length ? new Date(items[0].parsed.x).toLocaleString() : ""),
            label: (item) => `${item.dataset.label}: ${formatValue(spec.unit, item.parsed.y)}`,
          },
        },
      },
    },
  });
  charts.set(spec.id, { chart, unit: spec.unit, how: spec.how });
}

async function loadCharts() {
  const response = await fetch(`${root.dataset.chartsUrl}?window=${encodeURIComponent(windowKey)}`, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) return;
  const data = await response.json();
  range = { min: data.end * 1000 - windowMs, max: data.end * 1000 };
  data.charts.forEach(buildChart);
}

// Live points for the last-hour charts: the same figures the sampler stores, as they arrive.
const lastCounters = new Map(); // dataset key -> [ms, cumulative value]
const SOURCES = {
  cpu: [["opscenter_system_cpu_percent", "cpu_percent"]],
  memory: [["opscenter_system_memory_used_percent", "memory_used_percent"]],
  disk: [["opscenter_system_disk_used_percent", "disk_used_percent"]],
  load: [["opscenter_system_load1", "load1"]],
  network: [
    ["opscenter_system_network_received_bytes_total", "network_received_bytes"],
    ["opscenter_system_network_sent_bytes_total", "network_sent_bytes"],
  ],
};

function appendPoint(chartId, key, label, x, y) {
  const entry = charts.get(chartId);
  if (!entry) return;
  let dataset = entry.chart.data.datasets.find((d) => d.key === key);
  if (!dataset) {
    const i = entry.chart.data.datasets.length;
    dataset = { label, key, data: [], borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
      borderWidth: 1.5, pointRadius: 0, tension: 0.2 };
    entry.chart.data.datasets.push(dataset);
  }
  dataset.data.push({ x, y });
  const cutoff = x - windowMs;
  while (dataset.data.length && dataset.data[0].x < cutoff) dataset.data.shift();
  entry.chart.options.plugins.legend.display = entry.chart.data.datasets.length > 1;
  const card = root.querySelector(`[data-chart="${chartId}"]`);
  if (card) card.querySelector("[data-empty]").hidden = true;
}

function labelsKey(labels) {
  const sorted = Object.keys(labels).sort().map((k) => `"${k}":"${labels[k]}"`);
  return `{${sorted.join(",")}}`;
}

function appendLive(snapshot) {
  if (windowKey !== "1h" || !snapshot) return;
  const x = Math.round(snapshot.t) * 1000;
  (snapshot.hosts || []).forEach((h) => {
    const hostKey = labelsKey({ host: h.host });
    Object.entries(SOURCES).forEach(([chartId, sources]) => {
      sources.forEach(([metric, field]) => {
        const key = metric + hostKey;
        const label = chartId === "network" ? `${h.host} ${field.includes("received") ? "in" : "out"}` : h.host;
        if (chartId === "network") {
          const before = lastCounters.get(key);
          lastCounters.set(key, [x, h[field]]);
          if (!before || x <= before[0] || h[field] < before[1]) return;
          appendPoint(chartId, key, label, x, (h[field] - before[1]) / ((x - before[0]) / 1000));
        } else {
          appendPoint(chartId, key, label, x, h[field]);
        }
      });
    });
  });
  (snapshot.processes || []).filter((p) => p.online).forEach((p) => {
    const labels = { role: p.role, host: p.host, pid: String(p.pid) };
    const label = `${p.role} ${p.host}:${p.pid}`;
    appendPoint("process_rss", `opscenter_process_resident_memory_bytes${labelsKey(labels)}`, label, x, p.rss_bytes);
    appendPoint("process_cpu", `opscenter_process_cpu_percent${labelsKey(labels)}`, label, x, p.cpu_percent);
  });
  range = { min: x - windowMs, max: x };
  charts.forEach(({ chart }) => {
    Object.assign(chart.options.scales.x, range);
    chart.update("none");
  });
}

if (root) {
  const initial = document.getElementById("system-snapshot");
  if (initial) paint(JSON.parse(initial.textContent));
  loadCharts();
  // The day view moves slowly: reload it every few minutes instead of appending live points.
  if (windowKey === "1d") setInterval(loadCharts, 300000);
  if (window.OpsLive) {
    window.OpsLive.subscribe("metrics", {
      onSnapshot: (data) => paint(data),
      onEvent: (event, payload) => {
        if (event !== "sample") return;
        paint(payload);
        appendLive(payload);
      },
    });
  }
}
