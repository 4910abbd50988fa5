/* OpsCenter live client: one WebSocket per page, topics multiplexed over it.
 *
 * OpsLive.subscribe(topic, {onSnapshot(data, seq), onEvent(event, payload, seq)})
 * The server sends a snapshot first, then numbered deltas. A gap in the numbers (the
 * channel layer may drop a message) or a reconnect asks for a fresh snapshot.
 * Elements with [data-live-indicator] show the connection state.
 */
(function () {
  "use strict";
  const LABELS = {
    connecting: "Connecting…",
    connected: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline",
    denied: "Signed out",
  };
  const handlers = new Map(); // topic -> [{onSnapshot, onEvent}]
  const lastSeq = new Map(); // topic -> last sequence number applied
  const stateListeners = [];
  let socket = null;
  let state = "connecting";
  let retries = 0;
  let pingTimer = null;
  let pongDeadline = null;

  function setState(next) {
    state = next;
    document.querySelectorAll("[data-live-indicator]").forEach((el) => {
      el.dataset.state = next;
      const label = el.querySelector("[data-live-label]");
      if (label) label.textContent = LABELS[next] || next;
    });
    stateListeners.forEach((fn) => fn(next));
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/live/`);
    socket.addEventListener("open", () => {
      retries = 0;
      setState("connected");
      lastSeq.clear();
      if (handlers.size) send({ action: "subscribe", topics: [...handlers.keys()] });
      clearInterval(pingTimer);
      pingTimer = setInterval(() => {
        send({ action: "ping" });
        clearTimeout(pongDeadline);
        // No answer in 10 s: the connection is dead even if the browser has not noticed.
        pongDeadline = setTimeout(() => socket && socket.close(), 10000);
      }, 25000);
    });
    socket.addEventListener("message", (e) => dispatch(JSON.parse(e.data)));
    socket.addEventListener("close", (e) => {
      clearInterval(pingTimer);
      clearTimeout(pongDeadline);
      socket = null;
      if (e.code === 4401) {
        setState("denied");
        return;
      }
      setState(navigator.onLine === false ? "offline" : "reconnecting");
      retries += 1;
      const delay = Math.min(30000, 1000 * 2 ** Math.min(retries, 5)) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    });
  }

  function dispatch(msg) {
    if (msg.type === "pong") {
      clearTimeout(pongDeadline);
      return;
    }
    if (msg.type === "snapshot") {
      lastSeq.set(msg.topic, msg.seq);
      (handlers.get(msg.topic) || []).forEach((h) => h.onSnapshot && h.onSnapshot(msg.data, msg.seq));
    } else if (msg.type === "event") {
      const last = lastSeq.get(msg.topic);
      if (last === undefined || msg.seq <= last) return; // before our snapshot: already in it
      if (msg.seq !== last + 1) {
        lastSeq.delete(msg.topic);
        send({ action: "resync", topic: msg.topic });
        return;
      }
      lastSeq.set(msg.topic, msg.seq);
      (handlers.get(msg.topic) || []).forEach((h) => h.onEvent && h.onEvent(msg.event, msg.payload, msg.seq));
    } else if (msg.type === "error") {
      console.warn("live:", msg.topic || "", msg.code, msg.message);
    }
  }

  window.OpsLive = {
    subscribe(topic, handler) {
      if (!handlers.has(topic)) handlers.set(topic, []);
      handlers.get(topic).push(handler);
      if (!socket) connect();
      else send({ action: "subscribe", topics: [topic] });
    },
    /** Ask for a fresh snapshot of `topic` (e.g. when derived figures need recounting). */
    resync(topic) {
      lastSeq.delete(topic);
      send({ action: "resync", topic });
    },
    onState(fn) {
      stateListeners.push(fn);
      fn(state);
    },
    get state() {
      return state;
    },
  };
  window.addEventListener("offline", () => setState("offline"));
})();
