"use strict";
// Confirmation for forms marked data-confirm (no inline scripts: the CSP forbids them).
document.addEventListener("submit", function (e) {
  var message = e.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    e.preventDefault();
  }
});

// Live fleet table: the server sends one JSON message per changed probe.
(function () {
  var table = document.getElementById("fleet");
  if (!table || !window.EventSource) {
    return;
  }
  var source = new EventSource("/events/fleet");
  source.addEventListener("open", function () {
    document.body.setAttribute("data-live", "1");
  });
  source.addEventListener("error", function () {
    document.body.setAttribute("data-live", "0");
  });
  source.addEventListener("probe", function (e) {
    var message = JSON.parse(e.data);
    var body = table.tBodies[0];
    var row = document.getElementById("probe-" + message.id);
    var template = document.createElement("template");
    template.innerHTML = message.row;
    var fresh = template.content.firstElementChild;
    if (row && fresh) {
      row.replaceWith(fresh);
    } else if (row) {
      row.remove();
    } else if (fresh) {
      body.appendChild(fresh);
    }
    var counts = document.getElementById("counts");
    if (counts) {
      counts.innerHTML = message.counts;
    }
  });
})();
