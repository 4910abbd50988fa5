/* The rule editor's preview: the rule's value per group over the last 24 hours, the threshold,
   and the spans it would have fired (shaded), from alerts.evaluation.preview_rule.

   A saved rule is previewed as saved when the page opens; "Preview the form" previews the
   unsaved values in the form (the same POST, with the form's fields). */
const box = document.querySelector("[data-rule-preview]");
const COLOURS = ["#2563eb", "#7c3aed", "#0891b2", "#65a30d", "#db2777"];
const SHOWN_GROUPS = 5;
const COMPARATORS = { gt: ">", gte: "≥", lt: "<", lte: "≤", eq: "=", ne: "≠" };
let chart = null;

function labelsText(labels) {
  const pairs = Object.entries(labels || {}).filter(([k]) => k !== "alertname" && k !== "severity");
  return pairs.length ? pairs.map(([k, v]) => `${k}=${v}`).join(", ") : "all series";
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
}

function minutes(from, until, end) {
  const span = ((until ?? end) - from) / 60;
  return span < 60 ? `${Math.max(1, Math.round(span))} min` : `${(span / 60).toFixed(1)} h`;
}

// Shades the would-have-fired intervals behind the lines.
const shading = {
  id: "wouldFire",
  beforeDatasetsDraw(c, _args, options) {
    const { ctx, chartArea, scales } = c;
    ctx.save();
    ctx.fillStyle = "rgba(220, 38, 38, 0.14)";
    for (const span of options.intervals || []) {
      const left = Math.max(chartArea.left, scales.x.getPixelForValue(span.from * 1000));
      const right = Math.min(chartArea.right, scales.x.getPixelForValue((span.until ?? options.end) * 1000));
      if (right > left) ctx.fillRect(left, chartArea.top, Math.max(2, right - left), chartArea.bottom - chartArea.top);
    }
    ctx.restore();
  },
};

function show(el, on) {
  el.hidden = !on;
}

function status(text, state = "") {
  const el = box.querySelector("[data-preview-status]");
  el.textContent = text;
  el.dataset.state = state;
}

function showErrors(errors) {
  const list = box.querySelector("[data-preview-errors]");
  const items = Object.entries(errors || {}).flatMap(([name, messages]) =>
    (Array.isArray(messages) ? messages : [messages]).map((m) => `${name === "__all__" ? "" : `${name.replaceAll("_", " ")}: `}${m}`));
  list.replaceChildren(...items.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
  show(list, items.length > 0);
}

function draw(data) {
  const groups = data.groups.slice(0, SHOWN_GROUPS);
  const datasets = groups.map((g, i) => ({
    label: labelsText(g.labels),
    data: g.points.map(([t, v]) => ({ x: t * 1000, y: v })),
    borderColor: COLOURS[i % COLOURS.length],
    backgroundColor: COLOURS[i % COLOURS.length],
    borderWidth: 1.5,
    // Few points (a new metric, sparse data): show them, a line needs two neighbours.
    pointRadius: g.points.filter(([, v]) => v !== null).length < 60 ? 2 : 0,
    spanGaps: false,
    parsing: false,
  }));
  datasets.push({
    label: `threshold ${COMPARATORS[data.comparator] || ""} ${data.threshold}`,
    data: [{ x: data.start * 1000, y: data.threshold }, { x: data.end * 1000, y: data.threshold }],
    borderColor: "#dc2626",
    borderDash: [6, 4],
    borderWidth: 1.5,
    pointRadius: 0,
    parsing: false,
  });
  const intervals = data.firing.map((f) => ({ from: f.from, until: f.until }));
  const canvas = box.querySelector("[data-preview-chart]");
  if (chart) chart.destroy();
  chart = new window.Chart(canvas, {
    type: "line",
    data: { datasets },
    plugins: [shading],
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: {
          type: "linear",
          min: data.start * 1000,
          max: data.end * 1000,
          ticks: {
            maxTicksLimit: canvas.clientWidth < 500 ? 4 : 8,
            maxRotation: 0,
            callback: (value) => new Date(value).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }),
          },
        },
        y: { beginAtZero: false },
      },
      plugins: {
        wouldFire: { intervals, end: data.end },
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: {
          callbacks: {
            title: (items) => (items.length ? new Date(items[0].parsed.x).toLocaleString() : ""),
          },
        },
      },
    },
  });
}

function listFirings(data) {
  const list = box.querySelector("[data-preview-firing]");
  const shown = data.firing.slice(-10).reverse();
  list.replaceChildren(...shown.map((f) => {
    const li = document.createElement("li");
    const until = f.until ? clock(f.until) : "still firing";
    li.textContent = `${clock(f.from)} – ${until} (${minutes(f.from, f.until, data.end)}) · ${labelsText(f.labels)}`;
    return li;
  }));
  show(list, shown.length > 0);
}

function describe(data) {
  const n = data.fired_count;
  const groups = data.groups_total;
  let text;
  if (!groups) {
    text = "No data for this metric and these matchers in the last 24 hours.";
  } else if (n) {
    text = `Would have fired ${n} time${n === 1 ? "" : "s"} in the last 24 hours`;
  } else {
    text = "Would not have fired in the last 24 hours";
  }
  if (groups) {
    text += ` (${groups} group${groups === 1 ? "" : "s"} from ${data.series} series`;
    text += groups > SHOWN_GROUPS ? `; the chart shows the ${SHOWN_GROUPS} closest to firing).` : ").";
  }
  if (data.truncated) text += " Only the first series were read: narrow the matchers for an exact preview.";
  return { text, state: !groups ? "" : n ? "fired" : "quiet" };
}

async function run(saved) {
  const form = document.getElementById(box.dataset.form);
  const body = saved || !form ? new FormData() : new FormData(form);
  const token = document.querySelector("[name=csrfmiddlewaretoken]");
  if (token && !body.has("csrfmiddlewaretoken")) body.set("csrfmiddlewaretoken", token.value);
  if (box.dataset.ruleId) body.set("rule_id", box.dataset.ruleId);
  if (saved) body.set("saved", "1");
  status("Computing the preview…");
  const button = box.querySelector("[data-preview-run]");
  button.disabled = true;
  try {
    const response = await fetch(box.dataset.url, {
      method: "POST", body, headers: { Accept: "application/json" }, credentials: "same-origin",
    });
    let data;
    try {
      data = await response.json();
    } catch {
      data = { ok: false, error: `The server answered ${response.status}.` };
    }
    if (!data.ok) {
      status(data.error || "The rule cannot be previewed.", "");
      showErrors(data.errors);
      show(box.querySelector("[data-preview-box]"), false);
      show(box.querySelector("[data-preview-firing]"), false);
      return;
    }
    showErrors({});
    const { text, state } = describe(data);
    status(text, state);
    show(box.querySelector("[data-preview-box]"), data.groups_total > 0);
    if (data.groups_total > 0) draw(data);
    listFirings(data);
  } catch {
    status("Could not reach OpsCenter for the preview.");
  } finally {
    button.disabled = false;
  }
}

if (box && window.Chart) {
  const button = box.querySelector("[data-preview-run]");
  if (box.dataset.editable === "true") {
    button.hidden = false;
    button.addEventListener("click", () => run(false));
  }
  if (box.dataset.ruleId) run(true);
}
