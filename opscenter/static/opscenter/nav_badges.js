/* Keeps the sidebar's count badges current on every page.

   A badge (opscenter.navigation._section_title) names a live topic and a key of its
   `counts`; the topic's snapshot and events carry {counts: {key: n}}. The sidebar HTML
   is cached and holds no number: the snapshot brings it as soon as the socket is up,
   and each event keeps it current. One subscription per topic; zero hides the badge. */
const badges = [...document.querySelectorAll("[data-nav-badge]")];

function render(topic, counts) {
  if (!counts) return;
  for (const el of badges) {
    if (el.dataset.topic !== topic || !(el.dataset.key in counts)) continue;
    const n = Number(counts[el.dataset.key]) || 0;
    el.textContent = String(n);
    el.title = `${n} ${el.dataset.label}`;
    el.setAttribute("aria-label", el.title);
    el.hidden = n === 0;
  }
}

if (badges.length && window.OpsLive) {
  for (const topic of new Set(badges.map((el) => el.dataset.topic))) {
    window.OpsLive.subscribe(topic, {
      onSnapshot: (data) => render(topic, data && data.counts),
      onEvent: (_event, payload) => render(topic, payload && payload.counts),
    });
  }
}
