// Search by name or address (/viewer): buildings and POIs through the Features API with a CQL2 text
// filter, e.g. CASEI(name) LIKE CASEI('%xx%') OR CASEI(address) LIKE CASEI('%xx%') (case-insensitive;
// the text's %, _ and \ are escaped with \, quotes doubled). Only the layers of config.search.layers the
// style draws are searched, on the fields of config.search.fields their queryables have. A result is a
// button: click -> the map flies to it, outlines it and shows its attributes.
// Status: "planner.search": {"state": "idle" | "searching" | "done" | "error", "query", "count",
//   "results": [{layer, id, name}], "errors": [...]}.
(function () {
  "use strict";
  var HIGHLIGHT = "cim-search-hit";

  //: a CQL2 text string literal for LIKE matching ``text`` anywhere
  function likeLiteral(text) {
    var pattern = "%" + text.replace(/[\\%_]/g, "\\$&") + "%";
    return "'" + pattern.replace(/'/g, "''") + "'";
  }

  function bounds(geometry) {
    var box = [Infinity, Infinity, -Infinity, -Infinity];
    (function walk(c) {
      if (typeof c[0] === "number") {
        box[0] = Math.min(box[0], c[0]); box[1] = Math.min(box[1], c[1]);
        box[2] = Math.max(box[2], c[0]); box[3] = Math.max(box[3], c[1]);
      } else c.forEach(walk);
    })(geometry.coordinates);
    return box;
  }

  window.cimPlanner.register(function (ctx) {
    var map = ctx.map, config = ctx.config.search || {};
    var form = document.getElementById("search"), input = document.getElementById("search-text");
    var list = document.getElementById("search-results");
    var state = ctx.status.planner.search = { state: "idle", query: "", count: 0, results: [], errors: [] };
    if (!form) return;
    var drawn = {};
    map.getStyle().layers.forEach(function (l) { if (l["source-layer"]) drawn[l["source-layer"]] = true; });
    var layers = (config.layers || []).filter(function (name) { return drawn[name]; });
    var fields = {};  // layer -> the search fields it has (from its queryables)

    map.addSource(HIGHLIGHT, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: HIGHLIGHT, type: "line", source: HIGHLIGHT, paint: { "line-color": "#f03e3e", "line-width": 3 } });
    map.addLayer({ id: HIGHLIGHT + "-point", type: "circle", source: HIGHLIGHT, filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-radius": 9, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": "#f03e3e", "circle-stroke-width": 3 } });

    function fieldsOf(layer) {
      if (fields[layer]) return Promise.resolve(fields[layer]);
      return ctx.api.get(ctx.config.collections + "/" + encodeURIComponent(layer) + "/queryables?f=json").then(function (a) {
        var props = (a.ok && a.body && a.body.properties) || {};
        fields[layer] = (config.fields || []).filter(function (f) { return props[f]; });
        return fields[layer];
      });
    }

    function searchLayer(layer, text) {
      return fieldsOf(layer).then(function (names) {
        if (!names.length) return [];
        var literal = likeLiteral(text);
        var filter = names.map(function (f) { return "CASEI(" + f + ") LIKE CASEI(" + literal + ")"; }).join(" OR ");
        var url = ctx.config.collections + "/" + encodeURIComponent(layer) + "/items?f=json&limit=" + (config.limit || 10)
          + "&filter-lang=cql2-text&filter=" + encodeURIComponent(filter);
        return ctx.api.get(url).then(function (a) {
          if (!a.ok) { state.errors.push(layer + ": " + ctx.api.reason(a)); return []; }
          return ((a.body && a.body.features) || []).map(function (f) { return { layer: layer, feature: f }; });
        });
      });
    }

    function show(hit) {
      var f = hit.feature;
      if (!f.geometry) return;
      map.getSource(HIGHLIGHT).setData({ type: "FeatureCollection", features: [f] });
      var box = bounds(f.geometry);
      if (f.geometry.type === "Point") map.jumpTo({ center: [box[0], box[1]], zoom: Math.max(map.getZoom(), 17) });
      else map.fitBounds([[box[0], box[1]], [box[2], box[3]]], { padding: 120, maxZoom: 18, duration: 0 });
      var root = document.createElement("div");
      root.className = "cim-popup";
      var h = document.createElement("h2");
      h.textContent = hit.layer + " #" + f.id;
      root.append(h, ctx.table(f.properties));
      new maplibregl.Popup({ maxWidth: "320px" }).setLngLat([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]).setDOMContent(root).addTo(map);
      state.shown = { layer: hit.layer, id: f.id };
      ctx.writeStatus();
    }

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = input.value.trim();
      list.textContent = "";
      state.query = text;
      state.errors = [];
      if (!text) { state.state = "idle"; state.results = []; state.count = 0; ctx.writeStatus(); return; }
      state.state = "searching";
      ctx.writeStatus();
      Promise.all(layers.map(function (l) { return searchLayer(l, text); })).then(function (parts) {
        var hits = [].concat.apply([], parts);
        hits.forEach(function (hit) {
          var p = hit.feature.properties || {};
          var item = document.createElement("li");
          var button = document.createElement("button");
          button.type = "button";
          button.textContent = (p.name || "#" + hit.feature.id) + (p.address ? " — " + p.address : "");
          button.title = hit.layer;
          button.addEventListener("click", function () { show(hit); });
          item.append(button);
          list.append(item);
        });
        if (!hits.length) {
          var none = document.createElement("li");
          none.textContent = "nothing found for “" + text + "”";
          list.append(none);
        }
        state.state = "done";
        state.count = hits.length;
        state.results = hits.map(function (h) { return { layer: h.layer, id: h.feature.id, name: (h.feature.properties || {}).name || null }; });
        ctx.writeStatus();
      }).catch(function (err) {
        state.state = "error";
        state.errors.push(String(err && err.message ? err.message : err));
        ctx.writeStatus();
      });
    });
  });
})();
