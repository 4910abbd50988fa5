/* Small helpers shared by the health pages. */
export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

export function since(iso) {
  if (!iso) return "—";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function uptime(value) {
  if (value === null || value === undefined) return "—";
  if (value >= 1) return "100%";
  return `${Math.min(value * 100, 99.99).toFixed(2)}%`.replace(".00%", "%");
}

export function stateLabel(check) {
  if (!check.enabled) return "Disabled";
  return { up: "Up", down: "Down", unknown: "Unknown" }[check.state] || check.state;
}

export function renderStrip(strip, recent) {
  if (!strip) return;
  strip.replaceChildren();
  for (const [at, ok, latency] of recent || []) {
    const tick = document.createElement("span");
    tick.className = "hc-tick";
    tick.dataset.ok = String(ok);
    tick.title = `${new Date(at).toLocaleString()}${latency === null ? "" : ` · ${latency} ms`}`;
    strip.append(tick);
  }
  const words = (recent || []).map((r) => (r[1] ? "up" : "down"));
  strip.setAttribute("aria-label", `Last ${words.length} results: ${words.join(", ")}`);
}

export function setText(root, field, text) {
  const el = root.querySelector(`[data-field="${field}"]`);
  if (el && el.textContent !== text) el.textContent = text;
  return el;
}
