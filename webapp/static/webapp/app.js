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
