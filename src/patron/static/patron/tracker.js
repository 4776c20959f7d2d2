// Patron web tracker: page views, time on page and custom events, sent to Patron's collect
// endpoint. One tag per page: <script async src=".../tracker.js" data-site="KEY"
// data-collect="https://patron.example/t/e" [data-consent="required"] [data-dnt="honour"]>.
// API: patron.track(name, properties), patron.identify(email), patron.consent(true|false).
// Calls made before the script loaded wait in window.patron.q as [name, ...arguments].
// Pop-ups: after the page view (when tracking is allowed) the site's pop-ups for this page
// are fetched from <collect>/../popups and, if there are any, shown by popups.js.
(function (w, d) {
  "use strict";
  var script = d.currentScript;
  if (!script || w.patron && w.patron.loaded) return;
  var site = script.getAttribute("data-site");
  var collect = script.getAttribute("data-collect");
  var needsConsent = script.getAttribute("data-consent") === "required";
  var nav = w.navigator;
  var KEY = "_patron_vid", CONSENT = "_patron_consent", REF = "_pt";
  var dnt = script.getAttribute("data-dnt") === "honour" &&
    (nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true);
  var waiting = [], visitor = "", view = id(12), shown = Date.now(), visible = 0, reported = -1, ref = "";
  var store = w.localStorage, asked = false, began = Date.now();

  function id(n) {
    var chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", out = "";
    var bytes = w.crypto.getRandomValues(new Uint8Array(n));
    for (var i = 0; i < n; i++) out += chars[bytes[i] & 63];
    return out;
  }
  function read(name) {
    try { return store.getItem(name) || ""; } catch (e) { return ""; }
  }
  function write(name, value) {
    try { if (value === null) store.removeItem(name); else store.setItem(name, value); } catch (e) { /* storage off */ }
  }
  function cookie() {
    var found = d.cookie.match(/(?:^|; )_patron_vid=([A-Za-z0-9_-]{8,64})/);
    return found ? found[1] : "";
  }
  function allowed() {
    return !dnt && (!needsConsent || read(CONSENT) === "yes");
  }
  // The first-party visitor id: a cookie and localStorage on the site's own domain
  // (either one surviving is enough), made only once tracking is allowed.
  function remember() {
    visitor = visitor || cookie() || read(KEY) || id(22);
    write(KEY, visitor);
    d.cookie = KEY + "=" + visitor + "; path=/; max-age=31536000; SameSite=Lax" +
      (w.location.protocol === "https:" ? "; Secure" : "");
    w.patronVisitorId = visitor;
  }
  function post(body) {
    var text = JSON.stringify(body);
    try {
      if (nav.sendBeacon && nav.sendBeacon(collect, text)) return;
    } catch (e) { /* fall back to fetch */ }
    if (w.fetch) w.fetch(collect, { method: "POST", body: text, keepalive: true, credentials: "omit", headers: { "Content-Type": "text/plain" } });
  }
  function send(event, extra) {
    if (dnt) return;
    if (event) event.at = event.at || Date.now();
    if (!allowed()) { if (needsConsent && read(CONSENT) !== "no") waiting.push([event, extra]); return; }
    remember();
    var body = { site: site, visitor: visitor, consent: true, events: event ? [event] : [] };
    if (extra) for (var name in extra) body[name] = extra[name];
    post(body);
  }
  function here() {
    return w.location.href;
  }
  function pageView() {
    var extra = ref ? { ref: ref } : null;
    ref = "";
    send({ type: "page", view: view, url: here(), title: d.title, referrer: d.referrer }, extra);
  }
  // Time on page counts while the page is visible; it is sent each time the page is hidden
  // (another tab, the app switched, the page closed) and Patron keeps the longest.
  function hide() {
    if (shown) { visible += Date.now() - shown; shown = 0; }
    var seconds = Math.round(visible / 1000);
    if (seconds !== reported && allowed()) {
      reported = seconds;
      send({ type: "leave", view: view, seconds: seconds });
    }
  }

  // Pop-ups: the site's pop-ups for this page, armed and drawn by popups.js (loaded only
  // when there are some).
  function popups() {
    if (asked || !w.fetch || !allowed()) return;
    asked = true;
    remember();
    w.fetch(collect.replace(/\/e$/, "/popups") + "?k=" + encodeURIComponent(site) + "&v=" + visitor +
      "&u=" + encodeURIComponent(w.location.pathname), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : { popups: [] }; })
      .then(function (c) {
        if (!c.popups.length) return;
        var s = d.createElement("script");
        s.src = c.ui;
        c.start = began;
        s.onload = function () { w.patronPopups(c); };
        d.head.appendChild(s);
      })
      .catch(function () { /* no pop-ups */ });
  }

  // A click from a Patron email carries a signed reference: keep it for the page view,
  // and take it out of the address bar so it is not shared along with the address.
  try {
    var url = new URL(here());
    ref = url.searchParams.get(REF) || "";
    if (ref) {
      url.searchParams.delete(REF);
      w.history.replaceState(w.history.state, "", url.toString());
    }
  } catch (e) { ref = ""; }

  var api = {
    loaded: true,
    track: function (name, properties) {
      send({ type: "event", name: String(name), properties: properties || {}, url: here() });
    },
    identify: function (email) {
      send(null, { identify: String(email) });
    },
    consent: function (given) {
      write(CONSENT, given ? "yes" : "no");
      if (!given) {
        waiting = [];
        write(KEY, null);
        d.cookie = KEY + "=; path=/; max-age=0";
        visitor = "";
        w.patronVisitorId = undefined;
        return;
      }
      var held = waiting;
      waiting = [];
      for (var i = 0; i < held.length; i++) send(held[i][0], held[i][1]);
      popups();
    }
  };
  var queued = w.patron && w.patron.q || [];
  w.patron = api;
  if (allowed()) remember();
  pageView();
  popups();
  d.addEventListener("visibilitychange", function () {
    if (d.visibilityState === "hidden") hide();
    else if (!shown) shown = Date.now();
  });
  w.addEventListener("pagehide", hide);
  for (var i = 0; i < queued.length; i++) {
    var call = queued[i];
    if (api[call[0]]) api[call[0]].apply(api, Array.prototype.slice.call(call, 1));
  }
})(window, document);
