/* The SLO page: each SLO's daily SLI as bars against its objective (a line). Drawn from the
   figures the page was rendered with; days without events are gaps, not zeros. */
const root = document.querySelector("[data-slo-page]");

function colour(value, objective) {
  if (value === null) return "transparent";
  return value >= objective ? "#16a34a" : "#dc2626";
}

function draw(canvas) {
  const data = JSON.parse(document.getElementById(`slo-chart-${canvas.dataset.sloChart}`).textContent);
  const present = data.values.filter((v) => v !== null);
  // Zoom in on the interesting band: a 99.5 % objective drawn from 0 shows nothing.
  const low = Math.min(data.objective, ...present);
  const floor = Math.max(0, Math.floor(low - Math.max(0.5, (100 - low) * 0.5)));
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels.map((d) => d.slice(5)),
      datasets: [
        {
          type: "line", label: `Objective ${data.objective} %`, data: data.labels.map(() => data.objective),
          borderColor: "#64748b", borderDash: [5, 4], borderWidth: 1.5, pointRadius: 0, order: 0,
        },
        {
          label: "SLI %", data: data.values, order: 1,
          backgroundColor: data.values.map((v) => colour(v, data.objective)),
          // Bars start at the axis floor, so a day at 99.2 % still shows as a bar.
          base: floor,
        },
      ],
    },
    options: {
      animation: false, maintainAspectRatio: false, responsive: true,
      scales: {
        x: { ticks: { maxTicksLimit: canvas.clientWidth < 500 ? 5 : 10, maxRotation: 0 } },
        y: { min: floor, max: 100, ticks: { callback: (v) => `${v} %`, maxTicksLimit: 5 } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label(ctx) {
              if (ctx.dataset.type === "line") return `Objective ${data.objective} %`;
              const total = data.totals[ctx.dataIndex];
              if (ctx.raw === null) return "No events";
              const count = data.unit === "seconds" ? "" : ` (${Math.round(total).toLocaleString()} ${data.unit})`;
              return `SLI ${ctx.raw} %${count}`;
            },
          },
        },
      },
    },
  });
}

if (root && window.Chart) {
  root.querySelectorAll("canvas[data-slo-chart]").forEach(draw);
}
