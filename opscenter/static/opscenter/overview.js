// Overview page: follows the `system` topic and repaints the component cards.
const root = document.querySelector(".oc-overview");
if (root && window.OpsLive) {
  const staleAfterMs = Number(root.dataset.heartbeatSeconds || 5) * 3000;
  let lastBeat = null;

  const paintComponent = (c) => {
    const card = root.querySelector(`[data-component="${c.name}"]`);
    if (!card) return;
    card.dataset.ok = c.ok ? "true" : "false";
    card.querySelector('[data-field="state"]').textContent = c.ok ? "Up" : "Down";
    card.querySelector('[data-field="latency"]').textContent = c.latency_ms == null ? "—" : `${c.latency_ms} ms`;
    card.querySelector('[data-field="detail"]').textContent = c.detail || "—";
  };

  const paintHeartbeat = (beat, receivedLive) => {
    if (!beat) return;
    // A snapshot may hold an old heartbeat: age it from when the server made it.
    lastBeat = receivedLive ? Date.now() : Date.parse(beat.server_time);
    Object.values(beat.components || {}).forEach(paintComponent);
    const set = (key, value) => {
      const el = root.querySelector(`[data-heartbeat="${key}"]`);
      if (el) el.textContent = value;
    };
    set("server_time", new Date(beat.server_time).toLocaleTimeString());
    set("workers_online", beat.workers_online);
    set("queue_length", beat.queue_length);
    set("workers", (beat.workers || []).join(", ") || "—");
  };

  // Only a running worker publishes heartbeats: silence means the worker is gone.
  setInterval(() => {
    if (lastBeat && Date.now() - lastBeat > staleAfterMs) {
      const seconds = Math.round((Date.now() - lastBeat) / 1000);
      paintComponent({ name: "worker", ok: false, latency_ms: null, detail: `no heartbeat for ${seconds}s` });
    }
  }, 2000);

  window.OpsLive.subscribe("system", {
    onSnapshot: (data) => paintHeartbeat(data.heartbeat, false),
    onEvent: (event, payload) => {
      if (event === "heartbeat") paintHeartbeat(payload, true);
    },
  });
}
