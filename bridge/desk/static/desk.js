/* The operator desk's own script: live events (EventSource), the call pop, the case form's
   draft (localStorage) and unit search.  No outside code but htmx, vendored beside it. */
(function () {
  "use strict";
  var body = document.body;

  // ---------------------------------------------------------------- live events
  function onCall(msg) {
    var box = document.getElementById("call-pops");
    var old = box ? box.querySelector('.call-pop[data-linkedid="' + CSS.escape(msg.linkedid) + '"]') : null;
    if (msg.html && box) {
      var holder = document.createElement("div");
      holder.innerHTML = msg.html;
      var pop = holder.firstElementChild;
      if (old) {
        var waited = old.querySelector(".pop-waited");
        if (waited && pop.dataset.kind !== "ringing") pop.querySelector(".pop-waited").textContent = waited.textContent;
        pop.dataset.waitedFrozen = old.dataset.kind === "ringing" ? "1" : (old.dataset.waitedFrozen || "");
        old.replaceWith(pop);
      } else {
        box.prepend(pop);
      }
      var idle = box.querySelector(".idle");
      if (idle) idle.hidden = true;
      tick();
    } else if (old && msg.kind === "ring_stopped" && old.dataset.kind === "ringing") {
      old.remove();
    } else if (old && msg.kind === "ended") {
      old.dataset.kind = "ended";
      old.classList.add("ended");
      var state = old.querySelector(".pop-state");
      if (state) state.textContent = state.dataset.ended;
    }
  }

  function connect() {
    if (!body.dataset.events || !window.EventSource) return;
    var source = new EventSource(body.dataset.events);
    source.addEventListener("ready", function () { body.dataset.live = "ready"; });
    source.addEventListener("call", function (e) { onCall(JSON.parse(e.data)); });
    source.addEventListener("calls", function (e) {
      body.dispatchEvent(new CustomEvent("hb:calls", { detail: JSON.parse(e.data) }));
    });
    source.addEventListener("callbacks", function (e) {
      body.dispatchEvent(new CustomEvent("hb:callbacks", { detail: JSON.parse(e.data) }));
    });
    source.addEventListener("case", function (e) {
      body.dispatchEvent(new CustomEvent("hb:case", { detail: JSON.parse(e.data) }));
    });
    source.addEventListener("presence", function (e) {
      body.dispatchEvent(new CustomEvent("hb:presence", { detail: JSON.parse(e.data) }));
    });
    var leaving = false;  // the page is going away by itself (e.g. its own sign-out): no second navigation
    window.addEventListener("beforeunload", function () { leaving = true; });
    source.addEventListener("signed_out", function () {  // ended on the server: sign in again
      source.close();
      if (!leaving) window.location.assign("/desk/login?ended=1");
    });
    source.onerror = function () { body.dataset.live = "reconnecting"; };  // EventSource retries by itself
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function mmss(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function tick() {
    document.querySelectorAll(".call-pop").forEach(function (pop) {
      var out = pop.querySelector(".pop-waited");
      if (!out || !pop.dataset.arrived) return;
      if (pop.dataset.kind === "ringing" || (!pop.dataset.waitedFrozen && out.textContent === "–")) {
        out.textContent = mmss((Date.now() - Date.parse(pop.dataset.arrived)) / 1000);
        if (pop.dataset.kind !== "ringing") pop.dataset.waitedFrozen = "1";
      }
    });
  }

  document.addEventListener("click", function (e) {
    var close = e.target.closest(".pop-close");
    if (close) close.closest(".call-pop").remove();
  });

  // ------------------------------------------------------------ the case form
  function formDraft(form) {
    var key = form.dataset.draftKey;
    var skip = { csrf_token: 1, call_linkedid: 1 };
    function save() {
      var data = {};
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || skip[el.name] || el.type === "hidden") return;
        if (el.type === "checkbox") data[el.name] = el.checked;
        else if (el.type === "radio") { if (el.checked) data[el.name] = el.value; }
        else data[el.name] = el.value;
      });
      data._saved = Date.now();
      try { localStorage.setItem(key, JSON.stringify(data)); } catch (err) { /* private mode: no draft */ }
    }
    function offered(name, value) {
      return Array.prototype.some.call(form.elements, function (el) {
        return el.type === "radio" && el.name === name && el.value === value;
      });
    }
    function restore() {
      var raw = null;
      try { raw = localStorage.getItem(key); } catch (err) { return; }
      if (!raw) return;
      var data = JSON.parse(raw);
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || !(el.name in data) || skip[el.name] || el.type === "hidden") return;
        if (el.type === "checkbox") el.checked = !!data[el.name];
        else if (el.type === "radio") {
          // a value no choice offers (a draft from when the best time was free text) keeps the preselected one
          if (offered(el.name, data[el.name])) el.checked = data[el.name] === el.value;
        }
        else el.value = data[el.name];
      });
      var note = document.getElementById("draft-note");
      if (note) note.hidden = false;
    }
    if (form.dataset.restore === "1") restore();
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    var discard = document.getElementById("draft-discard");
    if (discard) discard.addEventListener("click", function () {
      localStorage.removeItem(key);
      window.location.reload();
    });
  }

  function unitPicker(form) {
    var select = form.querySelector("#department");
    var search = form.querySelector("#unit-search");
    var dataNode = document.getElementById("units-data");
    if (!select || !search || !dataNode) return;
    var units = JSON.parse(dataNode.textContent);
    function filter() {
      var q = search.value.trim().toLowerCase();
      var first = null;
      Array.prototype.forEach.call(select.options, function (opt) {
        var match = !q || opt.dataset.name.toLowerCase().indexOf(q) >= 0 ||
          (opt.dataset.initials || "").indexOf(q) >= 0 || opt.value.toLowerCase().indexOf(q) >= 0;
        opt.hidden = !match;
        if (match && !first) first = opt;
      });
      if (q && first && (select.selectedIndex < 0 || select.options[select.selectedIndex].hidden)) {
        first.selected = true;
        form.dispatchEvent(new Event("change"));
      }
    }
    function choose(code) {
      select.value = code;
      search.value = "";
      filter();
      var opt = select.options[select.selectedIndex];
      if (opt) opt.scrollIntoView({ block: "nearest" });
      form.dispatchEvent(new Event("change"));
    }
    var words = form.querySelector(".from-words");
    var description = form.querySelector('[name="description"]');
    function suggest() {
      var text = description.value;
      var found = [];
      units.forEach(function (u) {
        var hits = (u.keywords || "").split(/\s+/).filter(function (w) { return w.length >= 2 && text.indexOf(w) >= 0; });
        if (hits.length) found.push({ unit: u, hits: hits });
      });
      found.sort(function (a, b) { return b.hits.length - a.hits.length; });
      words.textContent = "";
      if (!found.length) return;
      words.append(words.dataset.label + " ");
      found.slice(0, 5).forEach(function (f) {
        var b = document.createElement("button");
        b.type = "button"; b.className = "suggest"; b.dataset.code = f.unit.code;
        b.textContent = f.unit.name + "（" + f.hits.join("、") + "）";
        words.append(b, " ");
      });
    }
    search.addEventListener("input", filter);
    search.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); select.focus(); } });
    form.addEventListener("click", function (e) {
      var b = e.target.closest(".suggest");
      if (b) choose(b.dataset.code);
    });
    var timer = null;
    description.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(suggest, 300); });
    suggest();
  }

  function clearFiledDraft() {
    var filed = document.querySelector("[data-clear-draft]");
    if (filed && filed.dataset.clearDraft) {
      try { localStorage.removeItem(filed.dataset.clearDraft); } catch (err) { /* nothing stored */ }
    }
  }

  function start() {
    connect();
    setInterval(tick, 1000);
    var form = document.getElementById("case-form");
    if (form) { formDraft(form); unitPicker(form); }
    clearFiledDraft();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
