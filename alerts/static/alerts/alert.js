/* An alert's page: its state, timeline and notification log follow the `alerts` topic.

   An event about this alert (or a snapshot after a reconnect) fetches the page again and
   swaps the parts that changed; the actions part is left alone while someone types in it.
   The action forms are sent with fetch; without JavaScript they post and redirect. */
import { confirmButtons, isTyping, refreshParts, sendForm, toast } from "./common.js";

document.documentElement.classList.add("js");
const root = document.querySelector("[data-alert-page]");
const id = root ? Number(root.dataset.alertId) : null;
let timer = null;
let pendingActions = false;

function refreshSoon(delay = 300) {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    pendingActions = await refreshParts(root, (part) => part.dataset.livePart === "actions" && isTyping(part));
  }, delay);
}

root?.addEventListener("submit", async (e) => {
  const form = e.target.closest("form[data-action]");
  if (!form) return;
  e.preventDefault();
  const { ok, data } = await sendForm(form);
  if (ok) {
    form.reset();
    toast(root, data.message);
  } else {
    toast(root, data.error || "That did not work.", "error");
  }
  // The actions change with the state (acknowledged, silenced, resolved): take the server's.
  pendingActions = await refreshParts(root, (part) => part.dataset.livePart === "actions" && !ok && isTyping(part));
});

// A change held back while typing lands once the field is left empty.
root?.addEventListener("focusout", () => { if (pendingActions) refreshSoon(1000); });

if (root) {
  confirmButtons(root);
  let first = true;
  window.OpsLive.subscribe("alerts", {
    onSnapshot() {
      if (first) first = false; // the page was rendered just now
      else refreshSoon(0); // a reconnect or a gap: something may have changed meanwhile
    },
    onEvent(event, payload) {
      if (event === "alert.changed" && payload.alert && payload.alert.id === id) refreshSoon();
      else if (event === "silences.changed") refreshSoon(800);
    },
  });
}
