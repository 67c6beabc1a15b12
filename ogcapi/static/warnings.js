// Event warnings in the viewer (/viewer): a live GeoJSON overlay redrawn from Server-Sent Events.
// The warnings are loaded once from config.warnings.items (/collections/warnings/items: the warnings
// in force now) into the GeoJSON source "warnings-live", drawn with copies of the style's warnings
// layers (metadata "cim:warnings": fill, outline, label; the paint is tiles/warning_style.py's), and
// kept current from config.warnings.stream (GET /warnings/stream): created adds the version, updated
// replaces the versions of its chain, cancelled removes the chain, expired removes the version. The
// composite tiles' warnings layers are hidden so nothing is drawn twice. Why not refresh the vector
// source instead: a tile reload refetches every tile in view for one alert and flickers; the
// GeoJSON source changes exactly the alert an event names, at once.
// The stream is opened first and the collection loaded once it is open, so no event falls between
// the two; events arriving before the load finishes are applied after it.
// Status (in the viewer's <pre id="status">): "warnings": {"state": "loading" | "live" | "reconnecting"
//   | "off", "count", "events", "lastEventId", "kinds": {kind: n}, "loaded"}.
(function () {
  "use strict";
  var SOURCE = "warnings-live";
  var LABELS = "warnings-live-labels"; // one point per warning: a polygon's label once, not once per tile

  function ringCentroid(ring) {  // area-weighted centroid of a [lon, lat] ring (its area too)
    var a = 0, x = 0, y = 0;
    for (var i = 0, n = ring.length - 1; i < n; i++) {
      var p = ring[i], q = ring[i + 1], c = p[0] * q[1] - q[0] * p[1];
      a += c; x += (p[0] + q[0]) * c; y += (p[1] + q[1]) * c;
    }
    if (!a) return { area: 0, point: ring[0] };
    return { area: Math.abs(a / 2), point: [x / (3 * a), y / (3 * a)] };
  }

  function labelPoint(feature) {  // the centroid of the largest polygon's outer ring
    var g = feature.geometry;
    if (!g) return null;
    var polygons = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    var best = null;
    polygons.forEach(function (polygon) {
      var c = ringCentroid(polygon[0] || []);
      if (c.point && (!best || c.area > best.area)) best = c;
    });
    if (!best) return null;
    return { type: "Feature", id: feature.id, properties: feature.properties, geometry: { type: "Point", coordinates: best.point } };
  }
  var KINDS = ["created", "updated", "cancelled", "expired"];

  window.cimWarnings = function (map, config, status, writeStatus, addError) {
    var urls = config.warnings;
    var styleLayers = map.getStyle().layers.filter(function (l) { return (l.metadata || {})["cim:warnings"]; });
    if (!urls || !styleLayers.length) return null;
    var byFid = {};           // fid -> Feature (the versions in force)
    var pending = [];         // events received before the first load finished
    var loaded = false;
    var source = null;
    var state = status.warnings = { state: "loading", count: 0, events: 0, lastEventId: null, kinds: {}, loaded: false };
    var liveIds = styleLayers.map(function (l) { return l.id + "-live"; });

    styleLayers.forEach(function (layer) {
      map.setLayoutProperty(layer.id, "visibility", "none"); // drawn from the live source instead
    });
    map.addSource(SOURCE, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addSource(LABELS, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    styleLayers.forEach(function (layer) {
      var copy = JSON.parse(JSON.stringify(layer));
      copy.id = layer.id + "-live";
      copy.source = layer.type === "symbol" ? LABELS : SOURCE;
      delete copy["source-layer"];
      copy.layout = Object.assign({}, copy.layout || {}, { visibility: "visible" });
      copy.metadata = Object.assign({}, copy.metadata, { "cim:live": true });
      map.addLayer(copy);
    });

    function redraw() {
      var features = Object.keys(byFid).map(function (k) { return byFid[k]; });
      map.getSource(SOURCE).setData({ type: "FeatureCollection", features: features });
      map.getSource(LABELS).setData({ type: "FeatureCollection", features: features.map(labelPoint).filter(Boolean) });
      state.count = features.length;
      writeStatus();
    }

    function sameChain(a, b) {
      var pa = a.properties || {}, pb = b.properties || {};
      return (pa.chain && pa.chain === pb.chain) || (pa.identifier && pa.identifier === pb.identifier);
    }

    function referenced(feature) {  // identifiers of the versions a CAP references triple names
      var refs = ((feature.properties || {}).references || "").split(/\s+/);
      return refs.map(function (r) { return r.split(",")[1]; }).filter(Boolean);
    }

    function removeChainOf(feature) {
      var ids = referenced(feature);
      Object.keys(byFid).forEach(function (k) {
        var old = byFid[k];
        if (sameChain(old, feature) || ids.indexOf((old.properties || {}).identifier) >= 0) delete byFid[k];
      });
    }

    function apply(kind, feature) {
      if (!feature || feature.id === undefined || feature.id === null) return;
      if (kind === "created") {
        if ((feature.properties || {}).state !== "cancelled") byFid[feature.id] = feature;
      } else if (kind === "updated") {
        removeChainOf(feature);
        byFid[feature.id] = feature;
      } else if (kind === "cancelled") {
        removeChainOf(feature);
        delete byFid[feature.id];
      } else if (kind === "expired") {
        delete byFid[feature.id];
      }
    }

    function onEvent(e) {
      var message;
      try {
        message = JSON.parse(e.data);
      } catch (err) {
        addError("warnings: event " + e.lastEventId + " is not JSON");
        return;
      }
      var feature = message && message.data && message.data.type === "Feature" ? message.data : message;
      state.events += 1;
      state.kinds[e.type] = (state.kinds[e.type] || 0) + 1;
      state.lastEventId = e.lastEventId || state.lastEventId;
      if (!loaded) {
        pending.push([e.type, feature]);
        return;
      }
      apply(e.type, feature);
      redraw();
    }

    var loading = false;
    function load() {  // every page of the collection (the warnings in force now)
      if (loading) return;
      loading = true;
      var features = [];
      function page(url) {
        return fetch(url, { headers: { Accept: "application/geo+json" } }).then(function (r) {
          if (!r.ok) throw new Error(url + ": HTTP " + r.status);
          return r.json();
        }).then(function (doc) {
          features = features.concat(doc.features || []);
          var next = (doc.links || []).filter(function (l) { return l.rel === "next"; })[0];
          return next && features.length < 100000 ? page(next.href) : features;
        });
      }
      page(urls.items).then(function (all) {
        byFid = {};
        all.forEach(function (f) { apply("created", f); });
        pending.splice(0).forEach(function (p) { apply(p[0], p[1]); });
        loaded = true;
        state.loaded = true;
        redraw();
      }).catch(failed).then(function () { loading = false; });
    }

    var stream = null;
    function connect() {
      if (!window.EventSource) { state.state = "off"; writeStatus(); load(); return; }
      stream = new EventSource(urls.stream);
      KINDS.forEach(function (kind) { stream.addEventListener(kind, onEvent); });
      stream.onopen = function () {
        state.state = "live";
        writeStatus();
        if (!loaded) load(); // subscribed first, then the collection: no event falls in between
      };
      stream.onerror = function () {
        if (stream.readyState === EventSource.CLOSED) {
          // refused (not a stream): show what is in force, start again later with a fresh load
          // (a new EventSource has no Last-Event-ID)
          state.state = "reconnecting";
          writeStatus();
          if (!loaded) load();
          setTimeout(function () { loaded = false; state.loaded = false; connect(); }, 5000);
        } else {
          state.state = "reconnecting"; // the browser reconnects itself, sending Last-Event-ID
          writeStatus();
        }
      };
    }

    function failed(err) {
      addError("warnings: " + (err && err.message ? err.message : err));
    }

    connect();
    setTimeout(function () { if (!loaded) load(); }, 5000); // a stream that neither opens nor fails
    return {
      layers: liveIds,
      features: function () { return Object.keys(byFid).map(function (k) { return byFid[k]; }); },
      setVisible: function (visible) {
        liveIds.forEach(function (id) { map.setLayoutProperty(id, "visibility", visible ? "visible" : "none"); });
      },
      close: function () { if (stream) stream.close(); },
    };
  };

  // the legend entry: a show/hide box for the warnings and their colours with Chinese and English names
  window.cimWarnings.legend = function (list, warnings, legend, title) {
    var item = document.createElement("li");
    item.className = "warnings";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.title = "show / hide";
    box.addEventListener("change", function () { warnings.setVisible(box.checked); });
    var label = document.createElement("span");
    label.textContent = title + " 预警";
    item.append(box, label);
    list.append(item);
    (legend || []).forEach(function (entry) {
      var row = document.createElement("li");
      row.className = "warning-colour";
      var swatch = document.createElement("span");
      swatch.className = "swatch fill";
      swatch.style.background = entry.color;
      var name = document.createElement("span");
      name.textContent = entry.zh + " · " + entry.en;
      name.title = "CAP severity " + entry.severity;
      row.append(swatch, name);
      list.append(row);
    });
  };

  var COLOUR_ZH = { red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色" };

  // the popup of a clicked warning: headline, event, severity/colour, effective/expires, areas
  window.cimWarnings.popup = function (feature, title) {
    var p = feature.properties || {};
    var root = document.createElement("div");
    root.className = "cim-popup cim-warning";
    var h = document.createElement("h2");
    h.textContent = p.headline || p.event || title;
    var table = document.createElement("table");
    var colour = p.colour && p.colour !== "none" ? p.colour + (COLOUR_ZH[p.colour] ? " " + COLOUR_ZH[p.colour] : "") : "";
    [
      ["event", p.event],
      ["severity", [p.severity, colour].filter(Boolean).join(" / ")],
      ["urgency", p.urgency],
      ["effective", p.effective || p.valid_from],
      ["expires", p.expires || p.valid_until],
      ["area", p.area_desc],
      ["identifier", p.identifier],
    ].forEach(function (pair) {
      if (pair[1] === undefined || pair[1] === null || pair[1] === "") return;
      var row = table.insertRow();
      var th = document.createElement("th");
      th.textContent = pair[0];
      row.append(th);
      row.insertCell().textContent = String(pair[1]);
    });
    root.append(h, table);
    return root;
  };
})();
