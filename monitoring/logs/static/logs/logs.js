/* The log viewer's live tail: follows the `logs` topic and shows new entries on top.
 *
 * Events only say that entries were stored; the rows come from the page's own view
 * (`?partial=1&after=<id>` with the page's filters), so live rows obey exactly the same
 * filters as the page, full-text search included. Paused, events are counted and a button
 * offers them; a snapshot (connect, reconnect, a gap) fetches whatever was missed.
 */
document.documentElement.classList.add("js");
const page = document.querySelector("[data-logs-page]");
if (page && page.dataset.live === "true" && window.OpsLive) start(page);

function start(page) {
  const list = page.querySelector("[data-entries]");
  const followButton = page.querySelector("[data-follow]");
  const newButton = page.querySelector("[data-new-entries]");
  const tooMany = page.querySelector("[data-too-many]");
  const empty = page.querySelector("[data-empty]");
  const count = page.querySelector("[data-count]");
  const MAX_ROWS = 500;
  let follow = true;
  let fetching = false;
  let again = false;
  let waiting = 0;
  let lowest = null; // smallest id announced since the last fetch: ids may commit out of order

  const topId = () => [...list.children].reduce((top, li) => Math.max(top, Number(li.dataset.id) || 0), 0);

  function setFollow(on) {
    follow = on;
    followButton.setAttribute("aria-pressed", String(on));
    followButton.textContent = on ? "Following" : "Paused";
    if (on) {
      waiting = 0;
      newButton.hidden = true;
      fetchNew();
    }
  }

  function insert(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    const known = new Set([...list.children].map((li) => li.dataset.id));
    for (const li of template.content.querySelectorAll("li[data-id]")) {
      if (known.has(li.dataset.id)) continue;
      const id = Number(li.dataset.id);
      li.classList.add("is-new");
      const before = [...list.children].find((el) => Number(el.dataset.id) < id);
      list.insertBefore(li, before || null);
    }
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
    empty.hidden = list.children.length > 0;
    const n = list.children.length;
    count.textContent = `${n} entr${n === 1 ? "y" : "ies"} shown · newest first`;
  }

  async function fetchNew() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      do {
        again = false;
        const after = Math.max(0, lowest === null ? topId() : Math.min(topId(), lowest - 1));
        lowest = null;
        const url = new URL(location.pathname, location.href);
        url.search = page.dataset.query;
        url.searchParams.set("partial", "1");
        url.searchParams.set("after", String(after));
        const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
        if (!response.ok) return;
        insert(await response.text());
        if (response.headers.get("X-Logs-More") === "1") tooMany.hidden = false;
      } while (again && follow);
    } catch (error) {
      console.warn("logs: could not fetch new entries", error);
    } finally {
      fetching = false;
    }
  }

  followButton.addEventListener("click", () => setFollow(!follow));
  newButton.addEventListener("click", () => setFollow(true));

  window.OpsLive.subscribe("logs", {
    onSnapshot(data) {
      if (follow) fetchNew();
      else if (data && data.latest_id > topId()) newButton.hidden = false;
    },
    onEvent(event, payload) {
      if (event !== "entries") return;
      const ids = payload.entries.map((e) => e.id).filter(Number.isFinite);
      if (ids.length) lowest = Math.min(lowest ?? Infinity, ...ids);
      if (follow) {
        fetchNew();
      } else {
        waiting += payload.entries.length;
        newButton.hidden = false;
        newButton.textContent = `${waiting} new — show`;
      }
    },
  });
}
