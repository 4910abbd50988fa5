// Review queue: sends the page's forms with fetch, follows the `content` topic, claims the
// card in hand, and adds keyboard shortcuts. Without this script every form still works
// as a plain POST that redirects back with a message.
const root = document.querySelector("[data-review-root]");
if (root) init(root);

function init(root) {
  "use strict";
  const me = root.dataset.username;
  const canReview = root.dataset.canReview === "true";
  const claimMs = Number(root.dataset.claimSeconds || 120) * 1000;
  // Server clock minus ours: claim expiry and ages are server times.
  const skew = Date.parse(root.dataset.serverNow) - Date.now() || 0;
  const serverNow = () => Date.now() + skew;
  const list = root.querySelector("[data-list]");
  const empty = root.querySelector("[data-empty]");
  const more = root.querySelector("[data-more]");
  const banner = root.querySelector("[data-new-banner]");
  const bulkForm = root.querySelector("[data-bulk-form]");
  const toasts = root.querySelector("[data-toasts]");
  const help = root.querySelector("[data-help]");
  const filters = {
    cycle_date: root.dataset.filterCycleDate,
    advisor_id: root.dataset.filterAdvisorId,
    compliance_verdict: root.dataset.filterVerdict,
    kind: root.dataset.filterKind,
  };
  const LEFT = {
    approved: ["approved", "is-approved"],
    scheduled: ["approved", "is-approved"],
    delivered: ["approved", "is-approved"],
    failed: ["approved", "is-approved"],
    rejected: ["rejected", "is-rejected"],
    needs_revision: ["sent back for revision", "is-revised"],
    draft: ["moved back to draft", ""],
  };
  const NOTE_REQUIRED = "Write a note: the writer needs to know what to change.";
  const newIds = new Set();
  let current = null;
  let claimed = null; // {id, url, releaseUrl, timer}
  let snapshots = 0;
  let counterTimer = null;

  root.dataset.enhanced = "";

  // --- small helpers ------------------------------------------------------------------------
  const cards = () => [...list.querySelectorAll("[data-card]:not(.is-gone)")];
  const cardById = (id) => list.querySelector(`[data-card][data-id="${CSS.escape(String(id))}"]`);
  const csrf = () => (root.querySelector("[name=csrfmiddlewaretoken]") || {}).value || "";

  async function request(url, { method = "GET", body = null, keepalive = false } = {}) {
    const response = await fetch(url, {
      method,
      body,
      keepalive,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf() },
    });
    // Signed out meanwhile: the admin sends the sign-in page instead.
    if (response.redirected && /\/login\//.test(response.url)) {
      window.location.reload();
      throw new Error("signed out");
    }
    let data = {};
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("application/json")) data = await response.json();
    else if (response.ok) data = { html: await response.text() };
    else if (response.status === 403) data = { error: "Your role does not allow this." };
    else data = { error: `The server answered ${response.status}. Try again.` };
    return { status: response.status, ok: response.ok, data };
  }

  function post(url, fields = {}, keepalive = false) {
    const body = fields instanceof FormData ? fields : new FormData();
    if (!(fields instanceof FormData)) Object.entries(fields).forEach(([k, v]) => body.append(k, v));
    if (!body.has("csrfmiddlewaretoken")) body.append("csrfmiddlewaretoken", csrf());
    return request(url, { method: "POST", body, keepalive });
  }

  function toast(text, { error = false, ms = 3200 } = {}) {
    const el = document.createElement("div");
    el.className = `rq-toast${error ? " is-error" : ""}`;
    el.setAttribute("role", error ? "alert" : "status");
    el.textContent = text;
    toasts.append(el);
    while (toasts.children.length > 3) toasts.firstElementChild.remove();
    setTimeout(() => el.classList.add("is-fading"), ms);
    setTimeout(() => el.remove(), ms + 400);
  }

  function ageLabel(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    const d = Math.floor(h / 24);
    return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
  }

  function parseHTML(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return [...template.content.querySelectorAll("[data-card]")];
  }

  // A broken page link or invalid filters say so themselves; no "all caught up" then.
  const emptyAllowed = !root.querySelector(".rq-notice-error");
  function syncEmpty() {
    empty.hidden = !emptyAllowed || list.querySelector("[data-card]") !== null;
  }

  // --- counters -----------------------------------------------------------------------------
  function paintCounters(counters) {
    if (!counters) return;
    const pending = root.querySelector('[data-counter="pending"]');
    const oldest = root.querySelector('[data-counter="oldest"]');
    const changed = pending.textContent !== String(counters.pending);
    pending.textContent = counters.pending;
    oldest.dataset.oldest = counters.oldest_submitted_at || "";
    paintAges();
    if (changed) {
      const stat = pending.closest(".rq-stat");
      stat.classList.remove("is-updated");
      void stat.offsetWidth; // restart the animation
      stat.classList.add("is-updated");
    }
  }

  function refreshCountersSoon() {
    // A burst of events (a bulk approval, a night's run submitting) asks once.
    clearTimeout(counterTimer);
    counterTimer = setTimeout(async () => {
      try {
        const { ok, data } = await request(root.dataset.countersUrl);
        if (ok) paintCounters(data);
      } catch (e) {
        /* the next event or snapshot tries again */
      }
    }, 1200);
  }

  function paintAges() {
    const oldest = root.querySelector('[data-counter="oldest"]');
    if (oldest.dataset.oldest) oldest.textContent = ageLabel(serverNow() - Date.parse(oldest.dataset.oldest));
    else if (snapshots) oldest.textContent = "—";
    list.querySelectorAll("time[data-age]").forEach((el) => {
      el.textContent = ageLabel(serverNow() - Date.parse(el.getAttribute("datetime")));
    });
  }
  setInterval(paintAges, 30000);

  // --- claims ---------------------------------------------------------------------------------
  function paintClaim(card, who, expires) {
    const label = card.querySelector("[data-claim-label]");
    const live = who && who !== me && expires && Date.parse(expires) > serverNow();
    card.dataset.claimedBy = live ? who : "";
    card.dataset.claimExpires = live ? expires : "";
    card.classList.toggle("is-claimed", Boolean(live));
    if (label) {
      label.hidden = !live;
      if (live) label.querySelector("[data-claim-name]").textContent = who;
    }
  }

  // Claims expire by themselves; the page lets them go at the same moment.
  setInterval(() => {
    list.querySelectorAll("[data-card].is-claimed").forEach((card) => {
      if (Date.parse(card.dataset.claimExpires) <= serverNow()) paintClaim(card, "", "");
    });
  }, 2000);

  async function claim(card) {
    if (!canReview || !card.dataset.claimUrl || card.matches(".is-gone, .is-busy")) return;
    const id = card.dataset.id;
    try {
      const { ok, status, data } = await post(card.dataset.claimUrl);
      if (ok) {
        if (current !== card) {
          post(card.dataset.releaseUrl).catch(() => {}); // moved on while it was on its way
          return;
        }
        clearInterval(claimed && claimed.timer);
        claimed = { id, releaseUrl: card.dataset.releaseUrl, timer: setInterval(() => renew(card), claimMs / 2) };
      } else if (status === 409 && data.status === "pending_review") {
        paintClaim(card, data.claimed_by, data.claim_expires_at);
      }
    } catch (e) {
      /* a claim is advice; the review itself does not depend on it */
    }
  }

  function renew(card) {
    if (document.visibilityState !== "visible" || current !== card) return;
    post(card.dataset.claimUrl).catch(() => {});
  }

  function releaseClaim({ keepalive = false } = {}) {
    if (!claimed) return;
    clearInterval(claimed.timer);
    post(claimed.releaseUrl, {}, keepalive).catch(() => {});
    claimed = null;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") releaseClaim({ keepalive: true });
    else if (current) claim(current);
  });
  window.addEventListener("pagehide", () => releaseClaim({ keepalive: true }));

  // --- the card in hand ---------------------------------------------------------------------
  let claimDelay = null;
  function setCurrent(card, { scroll = false, focus = true } = {}) {
    if (card === current) return;
    if (current) current.classList.remove("is-current");
    if (claimed && (!card || claimed.id !== card.dataset.id)) releaseClaim();
    current = card;
    clearTimeout(claimDelay);
    if (!card) return;
    card.classList.add("is-current");
    if (scroll) card.scrollIntoView({ block: "start", behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
    if (focus && !card.contains(document.activeElement)) card.focus({ preventScroll: true });
    // A short delay: paging through with j/k should not claim every card on the way.
    claimDelay = setTimeout(() => current === card && claim(card), 400);
  }

  function move(step) {
    const all = cards();
    if (!all.length) return;
    const at = all.indexOf(current);
    const next = at === -1 ? all[step > 0 ? 0 : all.length - 1] : all[Math.min(all.length - 1, Math.max(0, at + step))];
    setCurrent(next, { scroll: true });
  }

  list.addEventListener("focusin", (e) => {
    const card = e.target.closest("[data-card]");
    if (card && !card.classList.contains("is-gone")) setCurrent(card, { focus: false });
  });
  list.addEventListener("click", (e) => {
    const card = e.target.closest("[data-card]");
    if (card && !card.classList.contains("is-gone")) setCurrent(card, { focus: false });
  });

  // --- leaving the page -----------------------------------------------------------------------
  function leave(card, text, { tone = "", delay = 1400 } = {}) {
    if (card.classList.contains("is-gone")) return;
    const wasCurrent = card === current;
    const all = cards();
    const next = all[all.indexOf(card) + 1] || all[all.indexOf(card) - 1] || null;
    const checkbox = card.querySelector("[data-select]");
    if (checkbox) checkbox.checked = false;
    if (claimed && claimed.id === card.dataset.id) {
      clearInterval(claimed.timer);
      claimed = null; // acting on an item drops its claim on the server
    }
    const focusWasInside = card.contains(document.activeElement);
    card.classList.remove("is-current", "is-claimed", "is-busy", "is-selected");
    card.classList.add("is-gone", ...(tone ? [tone] : []));
    card.removeAttribute("tabindex");
    const icon = document.createElement("span");
    icon.className = "material-symbols-outlined";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = tone === "is-approved" ? "check_circle" : tone === "is-rejected" ? "cancel" : "info";
    const words = document.createElement("span");
    words.textContent = text;
    card.replaceChildren(icon, words);
    if (wasCurrent) {
      current = null;
      if (next) setCurrent(next, { focus: focusWasInside || document.activeElement === document.body });
    }
    updateSelection();
    setTimeout(() => {
      card.style.maxHeight = `${card.offsetHeight}px`;
      requestAnimationFrame(() => {
        card.classList.add("is-folding");
        card.style.maxHeight = "0px";
      });
      setTimeout(() => {
        card.remove();
        syncEmpty();
      }, 320);
    }, delay);
  }

  function handledText(status, reviewer) {
    const [what] = LEFT[status] || ["no longer pending"];
    const who = reviewer ? ` by ${reviewer === me ? "you" : reviewer}` : "";
    return [what, who];
  }

  // --- actions --------------------------------------------------------------------------------
  function showCardError(card, text) {
    const box = card.querySelector("[data-card-error]");
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
    card.classList.toggle("is-conflict", Boolean(text));
  }

  function setBusy(card, busy) {
    card.classList.toggle("is-busy", busy);
    // A blocked Approve (fails compliance, not an Admin) stays disabled whatever happens.
    card.querySelectorAll("button").forEach((b) => (b.disabled = busy || b.hasAttribute("data-blocked")));
  }

  // The card's forms that open under its buttons: the note (reject / revise) and, on an item
  // failing compliance, an Admin's override reason. One is open at a time.
  const FORMS = "[data-note-form], [data-override-form]";

  function hideForm(form) {
    form.classList.remove("is-open");
    if (location.hash === `#${form.id}`) history.replaceState(null, "", location.pathname + location.search);
    noteError(form, "");
  }

  function openNote(card, mode) {
    const form = card.querySelector("[data-note-form]");
    if (!form) return;
    setCurrent(card, { focus: false });
    card.querySelectorAll("[data-override-form].is-open, [data-override-form]:target").forEach(hideForm);
    card.querySelector("[data-open-override]")?.classList.remove("is-chosen");
    form.classList.add("is-open");
    form.dataset.mode = mode;
    form.action = form.querySelector(`[data-submit="${mode}"]`).getAttribute("formaction");
    form.querySelector("[data-note-title]").textContent =
      mode === "reject" ? "Why reject it? The writer sees this note." : "What should the writer change?";
    card.querySelectorAll("[data-open-note]").forEach((b) => b.classList.toggle("is-chosen", b.dataset.openNote === mode));
    const area = form.querySelector("textarea");
    area.focus({ preventScroll: true });
    form.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function openOverride(card) {
    const form = card.querySelector("[data-override-form]");
    if (!form) return;
    setCurrent(card, { focus: false });
    const note = card.querySelector("[data-note-form]");
    if (note) {
      hideForm(note);
      note.dataset.mode = "";
      card.querySelectorAll("[data-open-note]").forEach((b) => b.classList.remove("is-chosen"));
    }
    form.classList.add("is-open");
    card.querySelector("[data-open-override]")?.classList.add("is-chosen");
    form.querySelector("textarea").focus({ preventScroll: true });
    form.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function closeNote(card) {
    const forms = card.querySelectorAll(FORMS);
    if (!forms.length) return;
    forms.forEach(hideForm);
    const note = card.querySelector("[data-note-form]");
    if (note) note.dataset.mode = "";
    card.querySelectorAll("[data-open-note], [data-open-override]").forEach((b) => b.classList.remove("is-chosen"));
    card.focus({ preventScroll: true });
  }

  function noteError(form, text) {
    const box = form.querySelector("[data-note-error]");
    const area = form.querySelector("textarea");
    box.textContent = text;
    box.hidden = !text;
    if (text) area.setAttribute("aria-invalid", "true");
    else area.removeAttribute("aria-invalid");
  }

  async function act(card, form, submitter) {
    if (card.classList.contains("is-busy") || card.classList.contains("is-gone")) return;
    const action = (submitter && submitter.dataset.submit) || form.dataset.mode || "approve";
    const url = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    const isNote = form.matches(FORMS);
    if (isNote) {
      const area = form.querySelector("textarea");
      if (!area.value.trim()) {
        noteError(form, form.dataset.required || NOTE_REQUIRED);
        area.focus();
        return;
      }
      noteError(form, "");
    }
    const body = new FormData(form);
    setBusy(card, true);
    showCardError(card, "");
    let result;
    try {
      result = await post(url, body);
    } catch (e) {
      setBusy(card, false);
      showCardError(card, "Could not reach OpsCenter. Check the connection and try again.");
      return;
    }
    const { ok, status, data } = result;
    if (ok) {
      const [what] = handledText(data.status, me);
      const word = what.charAt(0).toUpperCase() + what.slice(1);
      leave(card, `${word} by you`, { tone: (LEFT[data.status] || [])[1], delay: 900 });
      toast(`${word}: “${card.dataset.title}”`);
      return;
    }
    setBusy(card, false);
    if (status === 400 && isNote) {
      noteError(form, data.error || NOTE_REQUIRED);
      form.querySelector("textarea").focus();
    } else if (data.code === "compliance_blocked" || data.code === "permission_denied") {
      // Refused for failing compliance: the item stays; say why where the reviewer is looking.
      if (isNote && data.field) {
        noteError(form, data.error);
        form.querySelector("textarea").focus();
      } else showCardError(card, data.error || "This item fails compliance.");
    } else if (status === 409 && data.stale) {
      // Still pending but changed since this page loaded: show the new version.
      showCardError(card, data.error);
      await refreshCard(card, data.error);
    } else if (status === 409) {
      setBusy(card, true);
      showCardError(card, data.error || "Someone else acted on this item first.");
      const [what, who] = handledText(data.status, data.reviewer);
      setTimeout(() => leave(card, `${what.charAt(0).toUpperCase() + what.slice(1)}${who}`, { tone: (LEFT[data.status] || [])[1] }), 3500);
    } else {
      showCardError(card, data.error || "That did not work. Try again.");
    }
  }

  async function refreshCard(card, keepError = "") {
    try {
      const { ok, data } = await request(`${card.dataset.cardUrl}?next=${encodeURIComponent(root.dataset.nextUrl)}`);
      if (!ok) return;
      const [fresh] = parseHTML(data.html);
      if (!fresh) return;
      const wasCurrent = card === current;
      card.replaceWith(fresh);
      if (wasCurrent) {
        current = null;
        setCurrent(fresh);
      }
      if (keepError) showCardError(fresh, keepError);
      paintAges();
    } catch (e) {
      /* keep the card as it is */
    }
  }

  root.addEventListener("submit", (e) => {
    const form = e.target;
    if (form === bulkForm) {
      e.preventDefault();
      bulkApprove();
      return;
    }
    const card = form.closest("[data-card]");
    if (!card || !form.hasAttribute("data-action-form")) return;
    e.preventDefault();
    act(card, form, e.submitter);
  });

  root.addEventListener("click", (e) => {
    const opener = e.target.closest("[data-open-note]");
    if (opener) {
      e.preventDefault();
      openNote(opener.closest("[data-card]"), opener.dataset.openNote);
      return;
    }
    const override = e.target.closest("[data-open-override]");
    if (override) {
      e.preventDefault();
      openOverride(override.closest("[data-card]"));
      return;
    }
    const cancel = e.target.closest("[data-cancel-note]");
    if (cancel) {
      closeNote(cancel.closest("[data-card]"));
      return;
    }
    const chip = e.target.closest("[data-reason]");
    if (chip) {
      const area = chip.closest("form").querySelector("textarea");
      const text = chip.dataset.reason;
      area.value = area.value.trim() ? `${area.value.trim()}\n${text}` : text;
      noteError(chip.closest("form"), "");
      area.focus();
      return;
    }
    const pointer = e.target.closest("[data-finding]");
    if (pointer) {
      e.preventDefault();
      const anchor = document.getElementById(pointer.getAttribute("href").slice(1));
      let mark = anchor && anchor.nextElementSibling;
      while (mark && mark.tagName !== "MARK") mark = mark.nextElementSibling; // several anchors may share a spot
      if (mark) {
        mark.scrollIntoView({ block: "center", behavior: "smooth" });
        mark.classList.add("is-pointed");
        setTimeout(() => mark.classList.remove("is-pointed"), 1600);
      }
    }
  });

  // --- selection and bulk approval ---------------------------------------------------------
  function selected() {
    return [...list.querySelectorAll("[data-select]:checked")].filter((c) => !c.closest(".is-gone"));
  }

  function updateSelection() {
    if (!bulkForm) return;
    list.querySelectorAll("[data-card]").forEach((card) => {
      const box = card.querySelector("[data-select]");
      card.classList.toggle("is-selected", Boolean(box && box.checked));
    });
    const n = selected().length;
    bulkForm.classList.toggle("has-selection", n > 0);
    if (n > 0) root.dataset.selecting = "";
    else delete root.dataset.selecting;
    bulkForm.querySelector("[data-selected-count]").textContent = n ? `${n} selected` : "Approve several at once";
    bulkForm.querySelector("[data-bulk-approve]").textContent = n > 1 ? `Approve ${n}` : "Approve selected";
  }

  list.addEventListener("change", (e) => {
    if (e.target.matches("[data-select]")) updateSelection();
  });

  async function bulkApprove() {
    const boxes = selected();
    if (!boxes.length) return;
    const body = new FormData(bulkForm);
    body.delete("ids");
    boxes.forEach((b) => body.append("ids", b.value));
    const button = bulkForm.querySelector("[data-bulk-approve]");
    button.disabled = true;
    boxes.forEach((b) => b.closest("[data-card]").classList.add("is-busy"));
    try {
      const { ok, status, data } = await post(bulkForm.getAttribute("action"), body);
      if (status === 200 || ok) {
        (data.results || []).forEach((r) => {
          const card = cardById(r.id);
          if (!card) return;
          card.classList.remove("is-busy");
          if (r.ok) leave(card, "Approved by you", { tone: "is-approved", delay: 900 });
          else {
            showCardError(card, r.error || "Someone else acted on this item first.");
            const box = card.querySelector("[data-select]");
            if (box) box.checked = false;
          }
        });
        toast(data.message || "Done.", { error: !data.ok });
      } else {
        toast(data.error || "That did not work. Try again.", { error: true });
      }
    } catch (e) {
      toast("Could not reach OpsCenter. Check the connection and try again.", { error: true });
    } finally {
      button.disabled = false;
      list.querySelectorAll(".is-busy").forEach((c) => c.classList.remove("is-busy"));
      updateSelection();
    }
  }

  root.querySelector("[data-select-passing]")?.addEventListener("click", () => {
    cards().forEach((card) => {
      const box = card.querySelector("[data-select]");
      if (box && card.dataset.verdict === "pass") box.checked = true;
    });
    updateSelection();
    if (!selected().length) toast("No compliant items on the page.");
  });
  root.querySelector("[data-select-none]")?.addEventListener("click", () => {
    list.querySelectorAll("[data-select]").forEach((b) => (b.checked = false));
    updateSelection();
  });

  // --- loading cards: more pages, new items ---------------------------------------------------
  function append(html, { fresh = false } = {}) {
    const added = [];
    parseHTML(html).forEach((card) => {
      if (newIds.delete(Number(card.dataset.id))) paintBanner();
      if (cardById(card.dataset.id)) return; // already on the page (a new item, then its page)
      if (fresh) card.classList.add("is-new");
      list.append(card);
      added.push(card);
    });
    syncEmpty();
    paintAges();
    return added;
  }

  const moreLink = more.querySelector("[data-load-more]");
  moreLink.addEventListener("click", async (e) => {
    e.preventDefault();
    const cursor = new URL(moreLink.href, location.href).searchParams.get("after");
    const query = new URLSearchParams(root.dataset.filterQuery);
    query.set("after", cursor);
    query.set("next", root.dataset.nextUrl);
    moreLink.textContent = "Loading…";
    try {
      const { ok, data } = await request(`${root.dataset.itemsUrl}?${query}`);
      if (!ok) throw new Error(data.error);
      append(data.html);
      if (data.next_page_url) moreLink.href = data.next_page_url;
      more.hidden = !data.next_page_url;
    } catch (err) {
      toast("Could not load more items. Try again.", { error: true });
    } finally {
      moreLink.textContent = "Load more";
    }
  });

  function paintBanner() {
    const n = newIds.size;
    banner.hidden = n === 0;
    banner.textContent = n === 1 ? "↓ 1 new item — show it" : `↓ ${n} new items — show them`;
  }

  banner.addEventListener("click", async () => {
    const ids = [...newIds];
    if (!ids.length) return;
    const query = new URLSearchParams(root.dataset.filterQuery);
    query.set("ids", ids.join(","));
    query.set("next", root.dataset.nextUrl);
    banner.disabled = true;
    try {
      const { ok, data } = await request(`${root.dataset.itemsUrl}?${query}`);
      if (!ok) throw new Error(data.error);
      ids.forEach((id) => newIds.delete(id));
      const added = append(data.html, { fresh: true });
      if (added[0]) setCurrent(added[0], { scroll: true });
    } catch (err) {
      toast("Could not load the new items. Try again.", { error: true });
    } finally {
      banner.disabled = false;
      paintBanner();
    }
  });

  function matchesFilters(item) {
    return Object.entries(filters).every(([key, want]) => !want || String(item[key]) === want);
  }

  // --- live -----------------------------------------------------------------------------------
  function onChanged(item) {
    const card = cardById(item.id);
    if (item.status === "pending_review") {
      if (card && Number(card.dataset.version) < item.version) refreshCard(card);
      else if (!card && matchesFilters(item)) {
        newIds.add(item.id);
        paintBanner();
      }
    } else {
      if (newIds.delete(item.id)) paintBanner();
      if (card && !card.matches(".is-busy, .is-gone")) {
        const [what, who] = handledText(item.status, item.reviewer);
        const word = what.charAt(0).toUpperCase() + what.slice(1);
        leave(card, `${word}${who}`, { tone: (LEFT[item.status] || [])[1], delay: item.reviewer === me ? 900 : 2200 });
        if (item.reviewer !== me) toast(`“${card.dataset.title}” was ${what}${who}.`);
      }
    }
    refreshCountersSoon();
  }

  async function catchUp() {
    // After a gap or a reconnect: the snapshot has counters, but cards may have moved on.
    const ids = [...list.querySelectorAll("[data-card]:not(.is-gone)")].map((c) => c.dataset.id);
    if (!ids.length) return;
    try {
      const { ok, data } = await request(`${root.dataset.stateUrl}?ids=${ids.join(",")}`);
      if (!ok) return;
      const known = new Set();
      (data.items || []).forEach((item) => {
        known.add(String(item.id));
        if (item.status !== "pending_review") onChanged(item);
        else {
          const card = cardById(item.id);
          if (card) paintClaim(card, item.claimed_by, item.claim_expires_at);
        }
      });
      ids.filter((id) => !known.has(id)).forEach((id) => {
        const card = cardById(id);
        if (card) leave(card, "No longer in the queue", { delay: 1200 });
      });
    } catch (e) {
      /* the next snapshot tries again */
    }
  }

  if (window.OpsLive) {
    window.OpsLive.subscribe("content", {
      onSnapshot(data) {
        snapshots += 1;
        paintCounters(data.counters);
        if (snapshots > 1) catchUp();
      },
      onEvent(event, item) {
        if (event === "content.changed") onChanged(item);
        else if (event === "content.claimed") {
          const card = cardById(item.id);
          if (card && item.status === "pending_review") paintClaim(card, item.claimed_by, item.claim_expires_at);
        }
      },
    });
  }

  // --- filters --------------------------------------------------------------------------------
  const filterBox = root.querySelector("[data-filters]");
  if (filterBox && matchMedia("(min-width: 900px)").matches) filterBox.open = true;
  const filterForm = root.querySelector("[data-filter-form]");
  filterForm?.addEventListener("change", (e) => {
    if (e.target.matches("select, input[type=date]")) filterForm.requestSubmit();
  });

  // --- keyboard -------------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey) return;
    const target = e.target;
    const typing = target.closest && target.closest("input, textarea, select, [contenteditable]");
    if (typing) {
      const form = target.closest(FORMS);
      if (form && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        const mode = form.dataset.mode || "reject";
        act(form.closest("[data-card]"), form, form.querySelector(`[data-submit="${mode}"]`));
      } else if (form && e.key === "Escape") {
        e.preventDefault();
        closeNote(form.closest("[data-card]"));
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || (help && help.open)) return;
    const card = current && !current.classList.contains("is-gone") ? current : null;
    switch (e.key) {
      case "j":
        move(1);
        break;
      case "k":
        move(-1);
        break;
      case "a":
        if (card && canReview) {
          // An item failing compliance is never approved by a key: an Admin writes the reason.
          const form = card.querySelector("form.rq-approve");
          if (form) act(card, form, form.querySelector("[data-submit]"));
          else if (card.querySelector("[data-open-override]")) openOverride(card);
          else toast((card.querySelector("[data-blocked-reason]") || {}).textContent || "Fails compliance.", { error: true });
        } else if (!card) move(1);
        break;
      case "r":
      case "e":
        if (card && canReview) openNote(card, e.key === "r" ? "reject" : "request_revision");
        else if (!card) move(1);
        break;
      case "x":
        if (card) {
          const box = card.querySelector("[data-select]");
          if (box) {
            box.checked = !box.checked;
            updateSelection();
          }
        }
        break;
      case "?":
        help?.showModal();
        break;
      default:
        return;
    }
    e.preventDefault();
  });
  root.querySelector("[data-help-open]")?.addEventListener("click", () => help?.showModal());

  updateSelection();
  syncEmpty();
  paintAges();
}
