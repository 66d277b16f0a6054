"use strict";
// The web UI's only script (the CSP forbids inline scripts and other origins).

// Confirmation for forms marked data-confirm.
document.addEventListener("submit", function (e) {
  var message = e.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    e.preventDefault();
  }
});

// Live updates: the server sends one JSON message per changed probe ({id, row, counts, state}).
function survey6Live(onProbe) {
  if (!window.EventSource) {
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
    var counts = document.getElementById("counts");
    if (counts) {
      counts.innerHTML = message.counts;
    }
    onProbe(message);
  });
}

// Fleet table: live rows, and the filter applied as the operator types. The server filters and pages the
// whole fleet; the script fetches the filtered page and swaps its table and pager in, without a reload.
(function () {
  var table = document.getElementById("fleet");
  if (!table) {
    return;
  }
  var form = document.getElementById("filter");
  var timer = 0;
  var latest = 0;

  function load() {
    var query = new URLSearchParams(new FormData(form));
    Array.from(query.keys()).forEach(function (key) {
      if (!query.get(key)) {
        query.delete(key);
      }
    });
    var url = "/" + (query.toString() ? "?" + query.toString() : "");
    var ticket = ++latest;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        // An older answer arriving after a newer one is dropped.
        if (html === null || ticket !== latest) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["fleet", "pager", "counts"].forEach(function (id) {
          var now = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (now && next) {
            now.replaceWith(document.adoptNode(next));
          }
        });
        table = document.getElementById("fleet");
        window.history.replaceState(null, "", url);
        document.body.setAttribute("data-filtered", url);
      });
  }

  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(load, 250);
  }

  ["filter-state", "filter-label"].forEach(function (id) { document.getElementById(id).addEventListener("change", load); });
  document.getElementById("filter-q").addEventListener("input", soon);
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    load();
  });

  // A changed probe's row is replaced where this page shows it; probes on other pages only move the counts.
  survey6Live(function (message) {
    var row = document.getElementById("probe-" + message.id);
    if (!row) {
      return;
    }
    var template = document.createElement("template");
    template.innerHTML = message.row;
    var fresh = template.content.firstElementChild;
    if (fresh) {
      row.replaceWith(fresh);
    } else {
      row.remove();
    }
  });
})();

// Map: country shapes from the bundled TopoJSON, drawn with the equirectangular projection the
// server places the markers with (x = (lon + 180) / 360 * W, y = (90 - lat) / 180 * H).
(function () {
  var svg = document.getElementById("map");
  if (!svg) {
    return;
  }
  var land = document.getElementById("land");
  var box = svg.viewBox.baseVal;

  function decodeArcs(topology) {
    var scale = topology.transform.scale, translate = topology.transform.translate;
    return topology.arcs.map(function (arc) {
      var x = 0, y = 0;
      return arc.map(function (p) {
        x += p[0];
        y += p[1];
        var lon = x * scale[0] + translate[0], lat = y * scale[1] + translate[1];
        return [(lon + 180) / 360 * box.width, (90 - lat) / 180 * box.height];
      });
    });
  }

  function path(points, shift) {
    return "M" + points.map(function (p) { return (p[0] + shift).toFixed(1) + "," + p[1].toFixed(1); }).join("L") + "Z";
  }

  // One ring as path data. A ring that crosses the antimeridian jumps from one edge to the other; it is
  // unwrapped into one continuous shape and drawn once more a map width over, and the view box clips both.
  function ring(arcs, indexes) {
    var points = [];
    indexes.forEach(function (index, k) {
      var arc = index < 0 ? arcs[~index].slice().reverse() : arcs[index];
      // Consecutive arcs share their end points.
      points = points.concat(k === 0 ? arc : arc.slice(1));
    });
    var offset = 0, min = Infinity, max = -Infinity;
    var unwrapped = points.map(function (p, i) {
      if (i > 0) {
        var jump = p[0] - points[i - 1][0];
        if (jump > box.width / 2) {
          offset -= box.width;
        } else if (jump < -box.width / 2) {
          offset += box.width;
        }
      }
      var x = p[0] + offset;
      min = Math.min(min, x);
      max = Math.max(max, x);
      return [x, p[1]];
    });
    var d = path(unwrapped, 0);
    if (min < 0) {
      d += path(unwrapped, box.width);
    }
    if (max > box.width) {
      d += path(unwrapped, -box.width);
    }
    return d;
  }

  fetch("/assets/world-110m.json", { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (topology) {
      var arcs = decodeArcs(topology);
      var ns = "http://www.w3.org/2000/svg";
      topology.objects.countries.geometries.forEach(function (g) {
        var polygons = g.type === "Polygon" ? [g.arcs] : g.arcs;
        var d = polygons.map(function (polygon) {
          return polygon.map(function (r) { return ring(arcs, r); }).join("");
        }).join("");
        var path = document.createElementNS(ns, "path");
        path.setAttribute("d", d);
        path.setAttribute("class", "country");
        var title = document.createElementNS(ns, "title");
        title.textContent = g.properties.name;
        path.appendChild(title);
        land.appendChild(path);
      });
      svg.setAttribute("data-drawn", String(topology.objects.countries.geometries.length));
    });

  survey6Live(function (message) {
    var marker = document.getElementById("marker-" + message.id);
    if (marker && message.state) {
      marker.setAttribute("class", "marker " + message.state);
    }
  });
})();

// Probe page: reload the live part whenever the probe changes.
(function () {
  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var id = live.getAttribute("data-probe");
  var pending = false;
  var again = false;

  function refresh() {
    if (pending) {
      again = true;
      return;
    }
    pending = true;
    fetch("/probes/" + encodeURIComponent(id) + "/live", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          live.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .finally(function () {
        pending = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  survey6Live(function (message) {
    if (message.id === id) {
      refresh();
    }
  });
  // Ages ("12s ago") and charts move on even when nothing is reported.
  window.setInterval(refresh, 30000);
})();

// Copy buttons: data-copy names the element whose text is copied.
document.addEventListener("click", function (e) {
  var button = e.target.closest("[data-copy]");
  if (!button) {
    return;
  }
  var source = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById("copy-status");
  var text = source.textContent;
  function done(ok) {
    if (status) {
      status.textContent = ok ? "Copied." : "Select the command and copy it by hand.";
    }
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
  } else {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    done(document.execCommand && document.execCommand("copy"));
  }
});
