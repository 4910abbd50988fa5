/* What the alerting pages share: formatting as the server does it, toasts, and sending an action form. */

/** Print a span as alerts/views/common.py format_age() does: 45 s, 12 min, 3 h 5 min, 2 d 4 h. */
export function formatAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Print a value as format_value() does: up to three decimals, no trailing zeros. */
export function formatValue(value) {
  if (value === null || value === undefined) return "—";
  const text = Number(value).toFixed(3).replace(/\.?0+$/, "");
  return text === "-0" || text === "" ? "0" : text;
}

/** When the alert's current state began (what its age counts from). */
export function sinceOf(alert) {
  if (alert.status === "resolved") return alert.resolved_at;
  if (alert.status === "firing") return alert.fired_at || alert.pending_since;
  return alert.pending_since;
}

export function ageOf(iso) {
  return iso ? formatAge((Date.now() - Date.parse(iso)) / 1000) : "—";
}

export function toast(root, text, kind = "ok") {
  const box = root.querySelector("[data-toasts]");
  if (!box || !text) return;
  const el = document.createElement("div");
  el.className = "al-toast";
  el.dataset.kind = kind;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.textContent = text;
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

/**
 * Send an action form with fetch and return {ok, status, data}.
 * The server answers JSON to `Accept: application/json`: the alert after the action, or
 * the refusal (409) or the form errors (400). Anything else (403, a proxy error) is a failure.
 */
export async function sendForm(form) {
  const button = form.querySelector("[type=submit]");
  const errorBox = form.querySelector("[data-form-error]");
  if (errorBox) errorBox.hidden = true;
  if (button) button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = { error: response.status === 403 ? "Not allowed: your role cannot do this (or the page is stale: reload it)." : `The server answered ${response.status}.` };
    }
    if (!response.ok && errorBox) {
      errorBox.textContent = data.error || "That did not work.";
      errorBox.hidden = false;
    }
    return { ok: response.ok, status: response.status, data };
  } catch (exc) {
    const data = { error: "Could not reach OpsCenter: check the connection and try again." };
    if (errorBox) {
      errorBox.textContent = data.error;
      errorBox.hidden = false;
    }
    return { ok: false, status: 0, data };
  } finally {
    if (button) button.disabled = false;
  }
}

/** Ask before a destructive button's form is sent (buttons with data-confirm). */
export function confirmButtons(root) {
  root.addEventListener("click", (e) => {
    const button = e.target.closest("[data-confirm]");
    if (button && !confirm(button.dataset.confirm)) e.preventDefault();
  });
}

// Each render masks the CSRF token anew: it is not a change.
const comparable = (el) => el.outerHTML.replace(/name="csrfmiddlewaretoken" value="[^"]*"/g, "");

/**
 * Fetch this page again and swap the parts marked [data-live-part] that changed, except a
 * part where the user is typing (`keep(part)` says so): their text must not vanish.
 */
export async function refreshParts(root, keep = () => false) {
  const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  if (!response.ok) return false;
  const html = await response.text();
  const fresh = new DOMParser().parseFromString(html, "text/html");
  let kept = false;
  root.querySelectorAll("[data-live-part]").forEach((part) => {
    const replacement = fresh.querySelector(`[data-live-part="${part.dataset.livePart}"]`);
    if (!replacement || comparable(replacement) === comparable(part)) return;
    if (keep(part)) {
      kept = true;
      return;
    }
    const openActs = [...part.querySelectorAll("details[open][data-act]")].map((d) => d.dataset.act);
    part.replaceWith(replacement);
    openActs.forEach((act) => {
      const d = replacement.querySelector(`details[data-act="${act}"]`);
      if (d) d.open = true;
    });
  });
  return kept;
}

/** Whether the user is typing in `part` (focus inside, or text in one of its fields). */
export function isTyping(part) {
  if (part.contains(document.activeElement) && document.activeElement.matches("textarea, input, select")) return true;
  return [...part.querySelectorAll("textarea, input[type=text]")].some((el) => el.value.trim() !== "");
}
