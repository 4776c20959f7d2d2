// Patron pop-ups, loaded by tracker.js when the page has some: window.patronPopups(config)
// arms each pop-up's trigger (a delay from the page's start, a scroll depth, exit intent on desktop), keeps the
// frequency cap in localStorage ("_patron_pop<id>": "x" once sent, never again; else the
// time until which it stays hidden after being shown or closed), and shows the form in an
// accessible dialog drawn and sent by forms.js (window.patronForms.mount).
(function (w, d) {
  "use strict";
  var POP = "_patron_pop", open = false;

  function read(name) {
    try { return w.localStorage.getItem(name) || ""; } catch (e) { return ""; }
  }
  function write(name, value) {
    try { w.localStorage.setItem(name, value); } catch (e) { /* storage off */ }
  }
  function arm(p, c) {
    var cap = read(POP + p.id);
    if (cap === "x" || +cap > Date.now()) return;
    var done = false, off = function () {};
    function fire() {
      if (done || open) return;
      done = true;
      off();
      show(p, c);
    }
    if (p.trigger === "delay") w.setTimeout(fire, p.value * 1000 - (Date.now() - c.start));
    else if (p.trigger === "scroll") {
      var depth = function () {
        var root = d.documentElement;
        if ((w.scrollY + w.innerHeight) * 100 >= root.scrollHeight * p.value) fire();
      };
      w.addEventListener("scroll", depth, { passive: true });
      off = function () { w.removeEventListener("scroll", depth); };
    } else if (p.trigger === "exit" && w.matchMedia && w.matchMedia("(pointer: fine)").matches) {
      var leave = function (e) { if (!e.relatedTarget && e.clientY <= 0) fire(); };
      d.addEventListener("mouseout", leave);
      off = function () { d.removeEventListener("mouseout", leave); };
    }
  }
  function node(tag, attrs, css) {
    var n = d.createElement(tag);
    for (var a in attrs) n.setAttribute(a, attrs[a]);
    for (var c in css) n.style[c] = css[c];
    return n;
  }
  function show(p, c) {
    open = true;
    write(POP + p.id, String(Date.now() + p.cap_days * 864e5));
    if (w.patron && w.patron.track) w.patron.track("popup.shown", { popup: p.id, form: p.form });
    var back = d.activeElement;
    var layer = node("div", { "class": "patron-popup" }, { position: "fixed", inset: "0", zIndex: "2147483000",
      background: "rgba(0,0,0,.5)", display: "flex", alignItems: "center", justifyContent: "center" });
    var box = node("div", { role: "dialog", "aria-modal": "true", "aria-label": p.title, tabindex: "-1", "class": "patron-popup-dialog" },
      { position: "relative", background: "#fff", color: "#111", padding: "1.5rem", borderRadius: "8px",
        maxWidth: "32rem", width: "90%", maxHeight: "90vh", overflow: "auto" });
    var x = node("button", { type: "button", "aria-label": "Close", "class": "patron-popup-close" },
      { position: "absolute", top: ".5rem", right: ".5rem", border: "0", background: "none", fontSize: "1.5rem", cursor: "pointer" });
    x.textContent = "\u00d7";
    var holder = node("div", { "data-patron-form": p.form, "data-patron-base": c.base });
    box.appendChild(x);
    box.appendChild(holder);
    layer.appendChild(box);
    function close() {
      open = false;
      layer.remove();
      d.removeEventListener("keydown", key);
      d.removeEventListener("focusin", keep);
      if (back && back.focus) back.focus();
    }
    function key(e) { if (e.key === "Escape") close(); }
    function keep(e) { if (!box.contains(e.target)) box.focus(); }
    x.addEventListener("click", close);
    layer.addEventListener("click", function (e) { if (e.target === layer) close(); });
    holder.addEventListener("patron:sent", function () { write(POP + p.id, "x"); });
    d.addEventListener("keydown", key);
    d.addEventListener("focusin", keep);
    d.body.appendChild(layer);
    box.focus();
    if (w.patronForms) w.patronForms.mount(holder);
    else {
      var s = node("script", { src: c.script });
      s.onload = function () { w.patronForms.mount(holder); };
      d.head.appendChild(s);
    }
  }

  w.patronPopups = function (c) {
    c.popups.forEach(function (p) { arm(p, c); });
  };
})(window, document);
