/* Small helpers shared by the agents pages. */
export const LABELS = {
  idle: "Idle", queued: "Queued", running: "Running", succeeded: "Succeeded",
  failed: "Failed", cancelled: "Cancelled", timed_out: "Timed out",
};

export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

export function duration(startIso, endIso) {
  if (!startIso) return "—";
  const end = endIso ? Date.parse(endIso) : Date.now();
  const s = Math.max(0, (end - Date.parse(startIso)) / 1000);
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function setProgress(container, progress, show) {
  if (!container) return;
  container.hidden = !show;
  const bar = container.querySelector("[data-field=bar]");
  const text = container.querySelector("[data-field=progress-text]");
  const meter = container.querySelector("[role=progressbar]");
  const pct = progress && progress.total ? Math.min(100, Math.round((100 * progress.done) / progress.total)) : null;
  if (bar) bar.style.width = `${pct ?? 0}%`;
  if (meter) {
    if (pct === null) meter.removeAttribute("aria-valuenow");
    else meter.setAttribute("aria-valuenow", String(pct));
  }
  if (text && progress) {
    const count = progress.total ? `${progress.done}/${progress.total}` : progress.done ? String(progress.done) : "";
    text.textContent = `${count} ${progress.note || ""}`.trim();
  }
}
