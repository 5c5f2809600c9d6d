// Vigil console: the only script. Pages work without it; it adds
// confirmations on destructive forms and live updates (server-sent
// events from /live): a badge on the menu and a notice per new alert or
// incident change. No inline script, no eval: CSP script-src 'self'.
(function () {
  "use strict";

  document.addEventListener("submit", function (e) {
    var f = e.target;
    var msg = f.getAttribute && f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      e.preventDefault();
    }
  });

  var box = document.getElementById("toasts");
  if (!box || !window.EventSource) {
    return;
  }
  var counts = { alert: 0, incident: 0 };

  function bump(kind) {
    counts[kind]++;
    var b = document.getElementById("live-" + kind + "s");
    if (b) {
      b.textContent = "+" + counts[kind];
      b.hidden = false;
    }
  }

  function toast(kind, it) {
    var div = document.createElement("div");
    div.className = "toast sev-" + it.severity;
    var a = document.createElement("a");
    a.href = it.url;
    a.textContent = (kind === "alert" ? "New alert: " : "Incident " + (it.status || "") + ": ") + it.title +
      (it.device ? " (" + it.device + ")" : "");
    var x = document.createElement("button");
    x.type = "button";
    x.className = "link";
    x.setAttribute("aria-label", "Dismiss");
    x.textContent = "×";
    x.addEventListener("click", function () { div.remove(); });
    div.appendChild(a);
    div.appendChild(x);
    box.prepend(div);
    while (box.children.length > 5) {
      box.lastChild.remove();
    }
  }

  function liveRow(it) {
    var list = document.getElementById("live-list");
    if (!list || it.kind !== "incident") {
      return;
    }
    var li = document.createElement("li");
    li.className = "fresh";
    var sev = document.createElement("span");
    sev.className = "sev sev-" + it.severity;
    sev.textContent = it.severity;
    var a = document.createElement("a");
    a.href = it.url;
    a.textContent = it.title;
    var st = document.createElement("span");
    st.className = "st st-" + it.status;
    st.textContent = it.status;
    li.append(sev, " ", a, " ", st);
    list.prepend(li);
  }

  var es = new EventSource(box.getAttribute("data-live"));
  ["alert", "incident"].forEach(function (kind) {
    es.addEventListener(kind, function (e) {
      var it;
      try { it = JSON.parse(e.data); } catch (err) { return; }
      bump(kind);
      toast(kind, it);
      liveRow(it);
    });
  });
})();
