/* Keeps a region of a page current without reloading it.
 *
 * A region is an element with an id and `data-autorefresh="<seconds>"`. Every so often the
 * page's own URL is fetched again (same query string, so the same filters) and the region's
 * contents are swapped for the fresh ones. The page is not reloaded, so the scroll position
 * and the filter form stay as they are. Nothing is swapped while the user is busy: focus in a
 * form marked `data-autorefresh-pause` or inside the region itself, or the tab hidden. A
 * fresh region without the attribute stops the refreshing. Without JavaScript the page is an
 * ordinary page that shows what was current when it loaded.
 */
(function () {
  "use strict";

  function busy(region) {
    var active = document.activeElement;
    if (document.hidden) return true;
    if (!active || active === document.body) return false;
    return region.contains(active) || Boolean(active.closest("form[data-autorefresh-pause]"));
  }

  function keepFresh(region) {
    var seconds = Number(region.getAttribute("data-autorefresh"));
    if (!region.id || !(seconds > 0)) return;
    var timer = null;

    function later() {
      timer = window.setTimeout(refresh, seconds * 1000);
    }

    function refresh() {
      if (busy(region)) return later();
      fetch(window.location.href, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
        cache: "no-store",
      })
        .then(function (response) {
          // Signed out meanwhile (sent to the sign-in page) or an error page: try again later.
          if (!response.ok || response.redirected) throw new Error("not the page");
          return response.text();
        })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.getElementById(region.id);
          if (!fresh) throw new Error("region gone");
          if (!busy(region)) {
            region.innerHTML = fresh.innerHTML;
            seconds = Number(fresh.getAttribute("data-autorefresh"));
            region.setAttribute("data-autorefresh", fresh.getAttribute("data-autorefresh") || "");
            region.dispatchEvent(new CustomEvent("autorefresh:updated", { bubbles: true }));
          }
          if (seconds > 0) later();
          else timer = null;
        })
        .catch(later);
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer !== null) {
        window.clearTimeout(timer);
        refresh();
      }
    });
    later();
  }

  document.querySelectorAll("[data-autorefresh]").forEach(keepFresh);
})();
