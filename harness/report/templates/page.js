// index.html's case table: filter by status, search id/metric/slice, sort; state in location.hash
// (#status=fail,error&q=text&sort=id), so a link opens a filtered view.  No network, no libraries.
(function () {
  "use strict";
  var root = document.documentElement, list = document.getElementById("groups");
  var form = document.getElementById("flt");
  if (!list || !form) { root.dataset.ready = performance.now().toFixed(1); return; }
  var groups = Array.prototype.slice.call(list.children);
  var boxes = Array.prototype.slice.call(form.querySelectorAll("input[name=status]"));
  var q = document.getElementById("q"), sort = document.getElementById("sort");
  var shown = document.getElementById("shown"), order = "severity";
  var rows = groups.map(function (g) { return Array.prototype.slice.call(g.querySelectorAll(":scope > .c")); });
  var byKey = function (a, b) { return a.dataset.k < b.dataset.k ? -1 : a.dataset.k > b.dataset.k ? 1 : 0; };
  var sorts = {
    severity: function (a, b) { return (a.dataset.r - b.dataset.r) || (b.dataset.s - a.dataset.s) || byKey(a, b); },
    id: byKey,
    time: function (a, b) { return (b.dataset.t - a.dataset.t) || byKey(a, b); }
  };

  function state() {
    return { status: boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }),
             q: q.value.trim().toLowerCase(), sort: sorts[sort.value] ? sort.value : "severity" };
  }

  function toHash(s) {
    var p = new URLSearchParams();
    if (s.status.length !== boxes.length) p.set("status", s.status.join(","));
    if (s.q) p.set("q", s.q);
    if (s.sort !== "severity") p.set("sort", s.sort);
    var h = p.toString();
    return h ? "#" + h : "";
  }

  function fromHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    var st = p.has("status") ? p.get("status").split(",") : null;
    boxes.forEach(function (b) { b.checked = !st || st.indexOf(b.value) >= 0; });
    q.value = p.get("q") || "";
    sort.value = sorts[p.get("sort")] ? p.get("sort") : "severity";
  }

  function apply() {
    var s = state(), nGroups = 0, nCases = 0;
    groups.forEach(function (g, i) {
      var any = false, keyHit = !s.q || g.dataset.k.toLowerCase().indexOf(s.q) >= 0;
      rows[i].forEach(function (c) {
        var ok = s.status.indexOf(c.dataset.st) >= 0 && (keyHit || c.dataset.q.indexOf(s.q) >= 0);
        c.hidden = !ok;
        if (ok) { any = true; nCases++; }
      });
      g.hidden = !any;
      if (any) { nGroups++; if (s.q) g.open = true; }
    });
    if (s.sort !== order) {
      groups.slice().sort(sorts[s.sort]).forEach(function (g) { list.appendChild(g); });
      order = s.sort;
    }
    shown.textContent = nGroups + " of " + groups.length + " groups, " + nCases + " cases shown";
    root.dataset.groups = nGroups;
    root.dataset.cases = nCases;
    var h = toHash(s);
    if (h !== location.hash && !(h === "" && location.hash === "#")) {
      history.replaceState(null, "", h || location.pathname + location.search);
    }
  }

  var timer = null;
  q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  sort.addEventListener("change", apply);
  window.addEventListener("hashchange", function () { fromHash(); apply(); });
  document.getElementById("expand").addEventListener("click", function () {
    groups.forEach(function (g) { if (!g.hidden) g.open = true; });
  });
  document.getElementById("collapse").addEventListener("click", function () {
    groups.forEach(function (g) { g.open = false; });
  });
  fromHash();
  apply();
  root.dataset.ready = performance.now().toFixed(1);
})();
