/* The integration page: charts per source; re-fetch the sources when the `inbound` topic says so. */
const root = document.querySelector("[data-integration]");
const charts = new Map();
let refreshTimer = null;

function drawCharts() {
  if (!window.Chart) return;
  charts.forEach((chart) => chart.destroy());
  charts.clear();
  root.querySelectorAll("canvas[data-rate]").forEach((canvas) => {
    const slug = canvas.dataset.rate;
    const data = JSON.parse(document.getElementById(slug).textContent);
    charts.set(slug, new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Processed", data: data.processed, backgroundColor: "#16a34a", stack: "events" },
          { label: "Waiting", data: data.waiting, backgroundColor: "#60a5fa", stack: "events" },
          { label: "Failed or rejected", data: data.failed, backgroundColor: "#dc2626", stack: "events" },
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false, responsive: true,
        scales: { x: { stacked: true, ticks: { maxTicksLimit: 8 } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      },
    }));
  });
}

async function refresh() {
  const open = new Set([...root.querySelectorAll("details[open] code")].map((c) => c.textContent));
  try {
    const response = await fetch(root.dataset.sourcesUrl, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    root.querySelector("[data-sources]").innerHTML = await response.text();
    // Keep the payloads someone is reading open across the refresh.
    root.querySelectorAll("details").forEach((d) => {
      const code = d.querySelector("code");
      if (code && open.has(code.textContent)) d.open = true;
    });
    drawCharts();
  } catch (error) {
    /* the next event or snapshot tries again */
  }
}

function soon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 1000);
}

if (root) {
  drawCharts();
  window.OpsLive.subscribe("inbound", { onSnapshot: soon, onEvent: soon });
  setInterval(refresh, 60000); // "n min ago" and silence turn into "down" without any event
}
