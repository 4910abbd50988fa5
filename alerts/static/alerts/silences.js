/* The silences page: a live "matches N open alerts" hint while typing matchers, and the lists
   follow the `alerts` topic (silences start, end and cover alerts as they come and go). */
import { confirmButtons, refreshParts } from "./common.js";

document.documentElement.classList.add("js");
const root = document.querySelector("[data-silences-page]");
let timer = null;
let asked = 0;

async function hint(input, box) {
  const text = input.value.trim();
  const mine = ++asked;
  if (!text) {
    box.textContent = "";
    box.dataset.state = "";
    return;
  }
  const url = new URL(root.dataset.matchesUrl, location.href);
  url.searchParams.set("matchers", text);
  let data;
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    data = await response.json();
  } catch {
    return;
  }
  if (mine !== asked) return; // an older answer arriving late
  if (!data.ok) {
    box.dataset.state = "error";
    box.textContent = data.error;
    return;
  }
  box.dataset.state = "ok";
  const names = (data.alerts || []).map((a) => `“${a.rule}”` + (a.labels ? ` (${a.labels})` : ""));
  const more = data.count > names.length ? ` and ${data.count - names.length} more` : "";
  box.textContent = data.count === 0
    ? "Matches no open alert right now (it still covers alerts that match later)."
    : `Matches ${data.count} open alert${data.count === 1 ? "" : "s"}: ${names.join(", ")}${more}.`;
}

if (root) {
  confirmButtons(root);
  const input = root.querySelector('[data-silence-form] [name="matchers"]');
  const box = root.querySelector("[data-matches-hint]");
  if (input && box) {
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => hint(input, box), 250);
    });
    if (input.value.trim()) hint(input, box);
  }
  let refresh = null;
  const refreshSoon = () => {
    clearTimeout(refresh);
    refresh = setTimeout(() => refreshParts(root), 500);
  };
  let first = true;
  window.OpsLive.subscribe("alerts", {
    onSnapshot() {
      if (first) first = false;
      else refreshSoon();
    },
    onEvent(event) {
      if (event === "silences.changed" || event === "alert.changed") refreshSoon();
    },
  });
}
