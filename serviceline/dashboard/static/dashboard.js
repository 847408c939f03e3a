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
    if (shown.id === "line") {
      zoomable();
      show(traced.shown);
    }
    if (focused) document.getElementById(focused)?.focus();
  }

  // a service's or an edge's path: itself and what its data-path names, the rest dimmed. What
  // is under the pointer and what has focus are kept apart, by id, so that a refresh that swaps
  // the picture (and the pointerover the browser then fires at the new copy) leaves the path
  // the user last chose lit.
  const traced = { pointer: "", focus: "", shown: "" };
  const pathOf = (element) => element?.closest?.("[data-path]")?.id || "";

  function show(id) {
    traced.shown = id;
    const picture = document.querySelector("svg.picture");
    if (!picture) return;
    for (const lit of picture.querySelectorAll(".lit")) lit.classList.remove("lit");
    const start = id ? document.getElementById(id) : null;
    picture.classList.toggle("tracing", Boolean(start));
    if (!start) return;
    start.classList.add("lit");
    for (const part of start.dataset.path.split(" ")) document.getElementById(part)?.classList.add("lit");
    // a label box stays lit while one of its rows is; a box of other edges is dimmed with them
    for (const label of picture.querySelectorAll(".label[data-edges]")) {
      const ids = label.dataset.edges.split(" ");
      label.classList.toggle("lit", ids.some((part) => document.getElementById(part)?.classList.contains("lit")));
    }
  }
  function point(id) {
    if (id === traced.pointer) return;
    traced.pointer = id;
    show(id || traced.focus);
  }
  function focus(id) {
    traced.focus = id;
    show(id || traced.pointer);
  }
  document.addEventListener("pointerover", (event) => point(pathOf(event.target)));
  document.addEventListener("pointerout", (event) => {
    if (!event.relatedTarget && event.target.isConnected) point("");
  });
  document.addEventListener("focusin", (event) => focus(pathOf(event.target)));
  document.addEventListener("focusout", (event) => {
    if (!pathOf(event.relatedTarget)) focus("");
  });

  // zoom with the buttons (or Ctrl and the wheel), pan by dragging or scrolling the frame
  let zoom = 1;
  function zoomable() {
    const graph = document.querySelector(".graph");
    const picture = graph?.querySelector("svg.picture");
    if (!picture) return;
    if (!graph.querySelector(".zoom")) {
      const bar = document.createElement("div");
      bar.className = "zoom";
      for (const [text, label, by] of [["+", "Zoom in", 1.5], ["−", "Zoom out", 1 / 1.5], ["Fit", "Fit the picture to the page", 0]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "quiet";
        button.textContent = text;
        button.setAttribute("aria-label", label);
        button.dataset.zoom = String(by);
        bar.append(button);
      }
      graph.prepend(bar);
    }
    graph.classList.toggle("zoomed", zoom > 1);
    picture.style.width = zoom > 1 ? `${zoom * 100}%` : "";
  }
  function zoomTo(by, graph) {
    const before = zoom;
    zoom = by === 0 ? 1 : Math.min(Math.max(zoom * by, 1), 6);
    const x = (graph.scrollLeft + graph.clientWidth / 2) / before;
    const y = (graph.scrollTop + graph.clientHeight / 2) / before;
    zoomable();
    graph.scrollTo(x * zoom - graph.clientWidth / 2, y * zoom - graph.clientHeight / 2);
  }
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-zoom]");
    if (button) zoomTo(Number(button.dataset.zoom), button.closest(".graph"));
  });
  document.addEventListener("wheel", (event) => {
    const graph = event.target.closest?.(".graph");
    if (!graph || !event.ctrlKey) return;
    event.preventDefault();
    zoomTo(event.deltaY < 0 ? 1.25 : 1 / 1.25, graph);
  }, { passive: false });
  let drag = null;
  document.addEventListener("pointerdown", (event) => {
    const graph = event.target.closest?.(".graph.zoomed");
    if (!graph || event.target.closest("a, button")) return;
    drag = { graph, x: event.clientX, y: event.clientY, left: graph.scrollLeft, top: graph.scrollTop };
    graph.classList.add("panning");
  });
  document.addEventListener("pointermove", (event) => {
    if (!drag) return;
    drag.graph.scrollTo(drag.left - (event.clientX - drag.x), drag.top - (event.clientY - drag.y));
  });
  document.addEventListener("pointerup", () => {
    drag?.graph.classList.remove("panning");
    drag = null;
  });
  zoomable();

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
    if (form.method === "get") {
      event.preventDefault();
      const query = new URLSearchParams(new FormData(form));
      for (const [name, value] of [...query]) if (!value) query.delete(name);
      history.pushState(null, "", `/?${query}`);
      await refresh();
      return;
    }
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
