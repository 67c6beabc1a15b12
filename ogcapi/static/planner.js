// The viewer as a planner's tool (/viewer): what the tools share, the feature popup and the 3D view.
// window.cimPlanner.start(ctx) is called by viewer.js once the style has loaded, with
// ctx = {map, config, status, writeStatus, addError}; it adds to ctx:
//   api.get(url) / api.post(url, body, headers) -> Promise of {status, ok, body, headers} (JSON bodies;
//     the token field's value, when set, goes along as "Authorization: Bearer ...");
//   results.show(featureCollection) / results.clear(): the result layer ("cim-result-*"), coloured by
//     the features' "kind" (compliance: height / far / use, parcel) or "change" (added / removed / changed);
//   claim(handler) / release(): who takes the next map clicks (a drawing tool, the parcel inspector);
//   table(properties): a <table> of properties; message(el, text, isError).
// Then it starts the tools registered with cimPlanner.register(fn) (search.js, processes_panel.js,
// inspector.js) and the 3D toggle. Status (in <pre id="status">): "planner": {"view": "2d" | "3d",
//   "terrain", "feature": the last clicked feature {layer, id, full, properties}, and each tool's own}.
(function () {
  "use strict";
  // The height rule of LOD1 blocks, exactly as cim/heights.py (HeightRule.resolve) has it and the
  // 3D Tiles (tiles/threed/) apply: height_m when it is a finite number above 0, else floors x 3 m
  // when floors is above 0 (whole floors), else 10 m. Booleans and non-numbers count as missing.
  var FLOOR_HEIGHT_M = 3;     // cim/heights.py STOREY_HEIGHT_M
  var DEFAULT_HEIGHT_M = 10;  // cim/heights.py DEFAULT_HEIGHT_M
  var MAX_FINITE = 1.7976931348623157e308;
  // a property as a number; 0 (no value: the rule wants more than 0) when missing, boolean or not a number
  function number(name) {
    return ["case",
      ["==", ["typeof", ["get", name]], "boolean"], 0,
      ["to-number", ["get", name], 0]];
  }
  function finitePositive(value) { return ["all", [">", value, 0], ["<=", value, MAX_FINITE]]; }
  var LOD1_HEIGHT = ["let", "h", number("height_m"), "f", number("floors"),
    ["case",
      finitePositive(["var", "h"]), ["var", "h"],
      finitePositive(["var", "f"]), ["*", FLOOR_HEIGHT_M, ["floor", ["var", "f"]]],
      DEFAULT_HEIGHT_M]];
  var PITCH_3D = 60, BEARING_3D = -20;
  var RESULT = "cim-result";
  var TERRAIN = "cim-terrain";
  //: colours of result features by kind / change (the legend of the result layer)
  var COLOURS = {
    height: "#e03131", far: "#f08c00", use: "#9c36b5", parcel: "#1864ab",
    added: "#2f9e44", removed: "#c92a2a", changed: "#1971c2",
  };
  var DEFAULT_COLOUR = "#0b7285";
  var tools = [];

  function colourExpression() {
    var expr = ["match", ["to-string", ["coalesce", ["get", "kind"], ["get", "change"], ""]]];
    Object.keys(COLOURS).forEach(function (k) { expr.push(k, COLOURS[k]); });
    expr.push(DEFAULT_COLOUR);
    return expr;
  }

  function table(properties) {
    var t = document.createElement("table");
    Object.keys(properties || {}).sort().forEach(function (key) {
      var value = properties[key];
      var row = t.insertRow();
      var th = document.createElement("th");
      th.textContent = key;
      row.append(th);
      row.insertCell().textContent = value === null || value === undefined ? "—"
        : typeof value === "object" ? JSON.stringify(value) : String(value);
    });
    return t;
  }

  function message(el, text, isError) {
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  function makeApi(config) {
    function headers(extra) {
      var h = Object.assign({ Accept: "application/json" }, extra || {});
      var token = (document.getElementById("token") || {}).value;
      if (token && token.trim()) h.Authorization = "Bearer " + token.trim();
      return h;
    }
    function send(url, init) {
      return fetch(url, init).then(function (r) {
        return r.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
          return { status: r.status, ok: r.ok, body: body, headers: r.headers };
        });
      });
    }
    return {
      get: function (url) { return send(url, { headers: headers() }); },
      post: function (url, body, extra) {
        return send(url, { method: "POST", headers: headers(Object.assign({ "Content-Type": "application/json" }, extra)), body: JSON.stringify(body) });
      },
      // an OGC exception's description (or the HTTP status)
      reason: function (answer) {
        var b = answer.body;
        var text = b && typeof b === "object" ? (b.description || b.detail || b.title || JSON.stringify(b)) : String(b || "");
        return "HTTP " + answer.status + (text ? ": " + text : "");
      },
    };
  }

  function makeResults(map) {
    map.addSource(RESULT, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    var colour = colourExpression();
    var meta = { "cim:title": "Result", "cim:planner": true };
    map.addLayer({ id: RESULT + "-fill", type: "fill", source: RESULT, metadata: meta,
      filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": colour, "fill-opacity": 0.35 } });
    map.addLayer({ id: RESULT + "-line", type: "line", source: RESULT, metadata: meta,
      filter: ["!=", ["geometry-type"], "Point"], paint: { "line-color": colour, "line-width": 3 } });
    map.addLayer({ id: RESULT + "-point", type: "circle", source: RESULT, metadata: meta,
      filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-color": colour, "circle-radius": 6, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } });
    var shown = [];
    return {
      layers: [RESULT + "-fill", RESULT + "-line", RESULT + "-point"],
      show: function (collection, append) {
        var features = (collection && collection.features) || [];
        shown = append ? shown.concat(features) : features.slice();
        map.getSource(RESULT).setData({ type: "FeatureCollection", features: shown });
        return shown.length;
      },
      clear: function () { shown = []; map.getSource(RESULT).setData({ type: "FeatureCollection", features: [] }); },
      count: function () { return shown.length; },
    };
  }

  // --- click a feature: the tile's properties at once, then the whole feature from the Features API

  function complete(ctx, feature, tableEl) {
    var layer = feature.sourceLayer;
    var state = ctx.status.planner.feature = { layer: layer || feature.source, id: feature.id === undefined ? null : feature.id, full: false,
      properties: Object.keys(feature.properties || {}).length };
    ctx.writeStatus();
    if (!layer || feature.id === undefined || feature.id === null) return;
    var url = ctx.config.collections + "/" + encodeURIComponent(layer) + "/items/" + encodeURIComponent(feature.id) + "?f=json";
    ctx.api.get(url).then(function (answer) {
      if (!answer.ok || !answer.body || !answer.body.properties) {
        state.error = ctx.api.reason(answer);
        ctx.writeStatus();
        return;
      }
      var full = table(answer.body.properties);
      full.dataset.full = "1";
      tableEl.replaceWith(full);
      state.full = true;
      state.properties = Object.keys(answer.body.properties).length;
      ctx.writeStatus();
    }).catch(function (e) { state.error = String(e && e.message ? e.message : e); ctx.writeStatus(); });
  }

  // --- 3D: buildings extruded by height, the map pitched; terrain from the DEM when there is one

  function threeD(ctx) {
    var map = ctx.map;
    var button = document.getElementById("view-3d");
    var style = map.getStyle();
    var flat = style.layers.filter(function (l) { return l["source-layer"] === "buildings" && l.type === "fill"; })[0];
    var demId = Object.keys(style.sources).filter(function (id) { return style.sources[id].type === "raster-dem"; })[0] || null;
    var state = ctx.status.planner;
    state.view = "2d";
    state.terrain = false;
    if (!button) return;
    if (!flat) { button.disabled = true; button.title = "no buildings in this map"; }
    var extruded = flat ? flat.id + "-3d" : null;
    if (flat) {  // the CIM2 frame model: footprints extruded by height
      var before = style.layers.filter(function (l) { return (l.metadata || {})["cim:warnings"]; })[0];
      map.addLayer({
        id: extruded, type: "fill-extrusion", source: flat.source, "source-layer": flat["source-layer"],
        minzoom: flat.minzoom || 0, maxzoom: flat.maxzoom || 24,
        metadata: Object.assign({}, flat.metadata, { "cim:planner": true }),
        layout: { visibility: "none" },
        paint: {
          "fill-extrusion-color": (flat.paint || {})["fill-color"] || "#d9d0c9",
          "fill-extrusion-height": LOD1_HEIGHT,  // the rule of cim/heights.py (above)
          "fill-extrusion-base": 0,
          "fill-extrusion-opacity": 0.9,
        },
      }, before ? before.id : undefined);
    }
    function set(on) {
      if (flat) {  // the one shown takes the other's visibility (the legend's box acts on the one shown)
        var from = on ? flat.id : extruded, to = on ? extruded : flat.id;
        var visible = map.getLayoutProperty(from, "visibility") || "visible";
        map.setLayoutProperty(from, "visibility", "none");
        map.setLayoutProperty(to, "visibility", visible);
      }
      map.jumpTo({ pitch: on ? PITCH_3D : 0, bearing: on ? BEARING_3D : 0 });
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "2D" : "3D";
      state.view = on ? "3d" : "2d";
      ctx.writeStatus();
    }
    button.addEventListener("click", function () { set(state.view !== "3d"); });
    // terrain: opt-in (the "Terrain" box, shown when the release has a DEM), raised from a source of
    // its own with the same terrain-RGB tiles (MapLibre advises against sharing the hillshade's)
    var terrainBox = document.getElementById("terrain");
    if (terrainBox) {
      terrainBox.parentNode.hidden = !demId;
      terrainBox.addEventListener("change", function () {
        if (terrainBox.checked && !map.getSource(TERRAIN)) map.addSource(TERRAIN, style.sources[demId]);
        map.setTerrain(terrainBox.checked ? { source: TERRAIN, exaggeration: 1 } : null);
        state.terrain = terrainBox.checked;
        ctx.writeStatus();
      });
    }
    return { set: set };
  }

  window.cimPlanner = {
    register: function (fn) { tools.push(fn); },
    colours: COLOURS,
    // the height rule as a style expression (tests/test_3d_heights_qa.py compares it with cim/heights.py)
    lod1Height: LOD1_HEIGHT,
    table: table,
    complete: function (feature, tableEl) { if (window.cimPlanner.ctx) complete(window.cimPlanner.ctx, feature, tableEl); },
    // the viewer's click: true when a tool took it (no attribute popup then)
    takeClick: function (e) {
      var ctx = window.cimPlanner.ctx;
      return !!(ctx && ctx.claimed && ctx.claimed(e) !== false);
    },
    start: function (ctx) {
      window.cimPlanner.ctx = ctx;
      ctx.status.planner = {};
      ctx.api = makeApi(ctx.config);
      ctx.results = makeResults(ctx.map);
      ctx.table = table;
      ctx.message = message;
      ctx.claimed = null;
      ctx.claim = function (handler) { ctx.claimed = handler; ctx.map.getCanvas().style.cursor = "crosshair"; };
      ctx.release = function (handler) {
        if (!handler || ctx.claimed === handler) { ctx.claimed = null; ctx.map.getCanvas().style.cursor = ""; }
      };
      ctx.view = threeD(ctx);
      var clear = document.getElementById("clear-results");
      if (clear) clear.addEventListener("click", function () { ctx.results.clear(); });
      tools.forEach(function (tool) {
        try { tool(ctx); } catch (e) { ctx.addError("planner: " + (e && e.message ? e.message : e)); }
      });
      ctx.writeStatus();
      return ctx;
    },
  };
})();
