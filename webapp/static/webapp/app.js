// Registers the service worker (webapp/pwa.py): installable app, cached shell, offline page.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  });
}

// Live polls with conditional requests (webapp/live.py): an element with data-etag sends the fingerprint
// it shows as If-None-Match; a 304 leaves the page alone, a 200 brings the new fingerprint in its ETag.
document.addEventListener("htmx:configRequest", (event) => {
  const tag = event.detail.elt.dataset ? event.detail.elt.dataset.etag : undefined;
  if (tag) event.detail.headers["If-None-Match"] = tag;
});
// htmx fires beforeSwap on the swap's target, not on the polling element: a 304 is never swapped, whichever.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 304) {
    event.detail.shouldSwap = false;
    event.detail.isError = false;
  }
});
// afterRequest fires on the element that asked: it keeps the fingerprint the page now shows.
document.addEventListener("htmx:afterRequest", (event) => {
  const elt = event.detail.elt;
  const tag = event.detail.xhr.getResponseHeader("ETag");
  if (tag && elt.dataset && elt.dataset.etag !== undefined && event.detail.xhr.status === 200) elt.dataset.etag = tag;
});

// Focus across swaps, for keyboard and screen-reader users: a swap that replaces the element holding focus
// (a live inbox refresh, "Older conversations", "Older messages") would drop it on <body>, back at the top of
// the page. It stays on the same item (data-id) when that is still there, else goes to the first item the
// swap brought.
let refocus = null;
document.addEventListener("htmx:beforeSwap", (event) => {
  const active = document.activeElement;
  refocus = null;
  if (!event.detail.shouldSwap || !active || active === document.body || !event.detail.target.contains(active)) return;
  const item = active.closest("[data-id]");
  const seen = new Set(Array.from(document.querySelectorAll("[data-id]"), (e) => e.dataset.id));
  refocus = { id: item ? item.dataset.id : null, seen };
});
document.addEventListener("htmx:afterSettle", () => {
  if (!refocus || (document.activeElement && document.activeElement !== document.body)) return;
  const { id, seen } = refocus;
  refocus = null;
  const items = Array.from(document.querySelectorAll("[data-id]"));
  const item = items.find((e) => e.dataset.id === id) || items.find((e) => !seen.has(e.dataset.id));
  if (!item) return;
  const target = item.querySelector("a, button, input, textarea, select") || item;
  if (target === item && !item.hasAttribute("tabindex")) item.setAttribute("tabindex", "-1");
  target.focus();
});
