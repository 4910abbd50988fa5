/* The analytics charts, drawn from the figures the page was rendered with. */
const root = document.querySelector("[data-analytics]");

function chart(name, config) {
  const canvas = root.querySelector(`canvas[data-chart="${name}"]`);
  if (!canvas || !window.Chart) return;
  config.options = {
    animation: false, maintainAspectRatio: false, responsive: true,
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    scales: { x: { stacked: !!config.stacked, ticks: { maxTicksLimit: 8 } },
              y: { stacked: !!config.stacked, beginAtZero: true, ticks: { precision: 0 } } },
    ...(config.options || {}),
  };
  new window.Chart(canvas, config);
}

if (root) {
  const daily = JSON.parse(document.getElementById("an-daily").textContent);
  const hours = JSON.parse(document.getElementById("an-hours").textContent);
  const labels = daily.map((d) => d.day.slice(5));
  const series = (key) => daily.map((d) => d[key]);
  chart("content", { type: "line", data: { labels, datasets: [
    { label: "Generated", data: series("generated"), borderColor: "#6366f1", backgroundColor: "#6366f1" },
    { label: "Approved", data: series("approved"), borderColor: "#16a34a", backgroundColor: "#16a34a" },
    { label: "Delivered", data: series("delivered"), borderColor: "#0ea5e9", backgroundColor: "#0ea5e9" },
  ] } });
  chart("clicks", { type: "bar", stacked: true, data: { labels, datasets: [
    { label: "Retrieve", data: series("clicks_retrieve"), backgroundColor: "#6366f1" },
    { label: "Unlock", data: series("clicks_unlock"), backgroundColor: "#f59e0b" },
    { label: "Share", data: series("clicks_share"), backgroundColor: "#16a34a" },
  ] } });
  chart("hours", { type: "bar", data: { labels: hours.map((_, h) => `${h}`), datasets: [
    { label: "Clicks", data: hours, backgroundColor: "#6366f1" },
  ] } });
  chart("chat", { type: "bar", stacked: true, data: { labels, datasets: [
    { label: "From advisors", data: series("chat_messages_in"), backgroundColor: "#0ea5e9" },
    { label: "From the assistant", data: series("chat_messages_out"), backgroundColor: "#a855f7" },
  ] } });
}
