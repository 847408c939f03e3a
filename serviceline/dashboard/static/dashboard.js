// Keeps the page live without reloading it: the page's regions are fetched again and the ones
// that changed are swapped in; links and buttons do the same. Without this script every link
// and button still works, by loading the page.
(() => {
  "use strict";
  const every = Number(document.body.dataset.pollSeconds || 2) * 1000;
  let latest = 0;

  async function refresh() {
    const mine = ++latest;
    let response;
    try {
      response = await fetch("/fragments" + location.search, { headers: { Accept: "text/html" } });
    } catch {
      return; // the next refresh tries again
    }
    if (!response.ok || mine !== latest) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    if (mine !== latest) return;
    for (const region of fresh.querySelectorAll("[data-live]")) {
      const shown = document.getElementById(region.id);
      if (shown && shown.innerHTML !== region.innerHTML) swap(shown, region);
    }
  }

  function swap(shown, region) {
    const focused = shown.contains(document.activeElement) ? document.activeElement.id : "";
    shown.innerHTML = region.innerHTML;
    if (focused) document.getElementById(focused)?.focus();
  }

  document.addEventListener("click", async (event) => {
    const link = event.target.closest("a[data-select]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    history.pushState(null, "", link.getAttribute("href"));
    await refresh();
    const heading = document.getElementById("detail-heading");
    heading?.focus({ preventScroll: true });
    heading?.scrollIntoView({ block: "start" });
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    const action = event.submitter?.getAttribute("formaction") || form.getAttribute("action");
    if (!action) return;
    event.preventDefault();
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    try {
      await fetch(action, { method: "POST", redirect: "manual" });
    } finally {
      await refresh();
    }
  });

  window.addEventListener("popstate", refresh);
  setInterval(() => {
    if (!document.hidden) refresh();
  }, every);
})();
