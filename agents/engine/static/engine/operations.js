// Daily operations: re-render the live part when the content or agents topic reports a change.
// Events arrive in bursts (a batch submits fifty posts at once), so refreshes are coalesced to
// one a second; after a reconnect the snapshot triggers a refresh too, so nothing is missed.
const root = document.querySelector("[data-operations]");
const body = root?.querySelector("[data-live-body]");
let timer = null;
let inFlight = false;
let again = false;

async function refresh() {
  timer = null;
  if (inFlight) { again = true; return; }
  inFlight = true;
  try {
    const response = await fetch(root.dataset.stateUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) {
      const data = await response.json();
      body.innerHTML = data.html;
    }
  } catch (error) {
    console.warn("operations refresh failed", error);
  } finally {
    inFlight = false;
    if (again) { again = false; schedule(); }
  }
}

function schedule() {
  if (!timer) timer = setTimeout(refresh, 1000);
}

if (root && body && window.OpsLive) {
  const handler = { onSnapshot: schedule, onEvent: schedule };
  window.OpsLive.subscribe("content", handler);
  window.OpsLive.subscribe("agents", handler);
}
