// The 3D viewer (/viewer/3d, ogcapi/viewer3d.py): CesiumJS with the release's LOD1 buildings as
// 3D Tiles, its terrain (quantized-mesh) when it has a DEM, the base map's PNG map tiles and its raster map tiles as imagery, the
// warnings in force (kept current from /warnings/stream) and a job's GeoJSON results.
// Nothing comes from Cesium ion or a CDN. <pre id="status"> holds JSON for tests and the benchmark:
// state "loading" -> "ready" (every tileset and the globe loaded; readyMs = performance.now() then).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("cim-viewer3d-config").textContent);
  var statusEl = document.getElementById("status");
  var panel = document.getElementById("feature");
  var status = {
    state: "loading", webgl: null, release: config.release, cesium: config.cesiumVersion,
    tilesets: {}, globe: { terrain: config.terrain ? config.terrain.id : "ellipsoid", tilesLoaded: false },
    imagery: { layers: config.imagery.map(function (l) { return l.id; }), basemap: !!config.basemap, tilesFailed: 0 },
    warnings: { state: "connecting", loaded: false, count: 0, events: 0 },
    featuresPicked: 0, picked: null, job: null, errors: [], readyMs: null,
  };
  var written = 0;
  function writeStatus() {
    written += 1;
    statusEl.textContent = JSON.stringify(status, null, 1);
    statusEl.setAttribute("data-state", status.state);
  }
  function addError(message) {
    if (status.errors.length < 50) status.errors.push(String(message));
    writeStatus();
  }
  function messageOf(err) { return err && err.message ? err.message : String(err); }
  window.addEventListener("error", function (e) { addError("page: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) { addError("page: " + messageOf(e.reason)); });
  function plain(value) {  // property table values as JSON can hold them (INT64 ids are BigInts)
    if (typeof value === "bigint") return Number(value);
    if (value && typeof value === "object" && typeof value.length === "number") return Array.prototype.map.call(value, plain);
    return value;
  }
  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function table(rows) {
    var t = el("table");
    rows.forEach(function (row) {
      var tr = el("tr");
      tr.appendChild(el("th", row[0]));
      tr.appendChild(el("td", row[1] === null || row[1] === undefined ? "—" : row[1]));
      t.appendChild(tr);
    });
    return t;
  }

  // --- the globe: no ion, no online imagery/terrain/geocoder ------------------------------------
  window.CESIUM_BASE_URL = config.cesiumBaseUrl;
  Cesium.Ion.defaultAccessToken = "";
  var viewer = new Cesium.Viewer("globe", {
    baseLayer: false, baseLayerPicker: false, geocoder: false, homeButton: true, sceneModePicker: false,
    timeline: false, animation: false, navigationHelpButton: false, infoBox: false, selectionIndicator: false,
    fullscreenButton: false, skyBox: false, terrainProvider: new Cesium.EllipsoidTerrainProvider(),
    requestRenderMode: true, maximumRenderTimeChange: Infinity,
  });
  var scene = viewer.scene;
  scene.globe.baseColor = Cesium.Color.fromCssColorString("#e8e4dc");
  scene.globe.depthTestAgainstTerrain = true;
  // terrain and imagery refined to 4 px of screen error (Cesium's default: 2): about half the globe
  // tiles, each one reprojected and drawn on the CPU where WebGL is software (docs/3d-viewer.md)
  scene.globe.maximumScreenSpaceError = 4;
  scene.renderError.addEventListener(function (s, err) { addError("render: " + messageOf(err)); });
  status.webgl = scene.context.webgl2 ? "webgl2" : "webgl";
  window.cimViewer3d = { viewer: viewer, config: config, status: status };

  // the composite base map (PNG map tiles drawn from the vector tiles) first: under any imagery
  (config.basemap ? [config.basemap] : []).concat(config.imagery).forEach(function (layer) {
    var options = { url: layer.url, tilingScheme: new Cesium.WebMercatorTilingScheme(),
      minimumLevel: layer.minzoom, maximumLevel: layer.maxzoom, credit: layer.id };
    if (layer.bbox) options.rectangle = Cesium.Rectangle.fromDegrees(layer.bbox[0], layer.bbox[1], layer.bbox[2], layer.bbox[3]);
    var provider = new Cesium.UrlTemplateImageryProvider(options);
    // a tile without data is 204 (or 404 below the layer's zooms): counted, not an error
    provider.errorEvent.addEventListener(function (e) { status.imagery.tilesFailed += 1; if (e) e.retry = false; });
    viewer.imageryLayers.addImageryProvider(provider);
  });

  var pending = 0;  // tilesets and terrain still being opened
  if (config.terrain) {
    pending += 1;
    Cesium.CesiumTerrainProvider.fromUrl(config.terrain.url).then(function (provider) {
      viewer.terrainProvider = provider;
    }).catch(function (err) {
      status.globe.terrain = "ellipsoid";
      addError("terrain " + config.terrain.url + ": " + messageOf(err));
    }).then(function () { pending -= 1; scene.requestRender(); });
  }

  // --- buildings: one 3D Tiles tileset per lod1 layer, coloured by height -------------------------
  var HEIGHT_COLOURS = [[40, "#b30000"], [20, "#e34a33"], [10, "#fc8d59"], [0, "#fdbb84"]];
  var style = new Cesium.Cesium3DTileStyle({
    color: { conditions: HEIGHT_COLOURS.map(function (c) { return ["${height} >= " + c[0], "color('" + c[1] + "')"]; })
      .concat([["true", "color('" + HEIGHT_COLOURS[HEIGHT_COLOURS.length - 1][1] + "')"]]) },
  });
  var tilesets = [];
  var legend = document.getElementById("legend");
  config.tilesets.forEach(function (layer) {
    var entry = status.tilesets[layer.id] = { state: "loading", tilesLoaded: 0, tilesFailed: 0, features: 0 };
    pending += 1;
    Cesium.Cesium3DTileset.fromUrl(layer.url).then(function (tileset) {
      tileset.cimLayer = layer;
      tileset.style = style;
      tileset.tileLoad.addEventListener(function (tile) {
        entry.tilesLoaded += 1;
        entry.features += tile.content ? tile.content.featuresLength : 0;
      });
      tileset.tileFailed.addEventListener(function (e) {
        entry.tilesFailed += 1;
        addError("tileset " + layer.id + ": " + e.url + ": " + e.message);
      });
      scene.primitives.add(tileset);
      tilesets.push(tileset);
      entry.state = "open";
    }).catch(function (err) {
      entry.state = "failed";
      addError("tileset " + layer.url + ": " + messageOf(err));
    }).then(function () { pending -= 1; writeStatus(); scene.requestRender(); });
  });
  HEIGHT_COLOURS.forEach(function (c, i) {
    var li = el("li");
    var swatch = el("span", null, { class: "swatch" });
    swatch.style.background = c[1];
    li.appendChild(swatch);
    li.appendChild(document.createTextNode(i === 0 ? "buildings ≥ " + c[0] + " m" : "buildings " + c[0] + "–" + HEIGHT_COLOURS[i - 1][0] + " m"));
    legend.appendChild(li);
  });

  // --- the camera: the city's centre at ~45°, or #lat/lon/height (height: distance in metres) ----
  function hashParts() {
    var view = null, params = {};
    window.location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) return;
      var eq = part.indexOf("=");
      if (eq > 0) { params[decodeURIComponent(part.slice(0, eq))] = decodeURIComponent(part.slice(eq + 1)); return; }
      var n = part.split("/").map(Number);
      if (n.length >= 2 && n.every(isFinite) && Math.abs(n[0]) <= 90 && Math.abs(n[1]) <= 180) {
        view = { lat: n[0], lon: n[1], range: n.length > 2 && n[2] > 0 ? n[2] : null };
      }
    });
    return { view: view, params: params };
  }
  function startView() {
    var view = hashParts().view || {};
    var centre = config.center || { lon: 0, lat: 0 };
    var lon = view.lon !== undefined ? view.lon : centre.lon, lat = view.lat !== undefined ? view.lat : centre.lat;
    var range = view.range || (config.center ? config.camera.range : 2e7);
    viewer.camera.lookAt(Cesium.Cartesian3.fromDegrees(lon, lat, 0),
      new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(config.camera.pitch), range));
    viewer.camera.lookAtTransform(Cesium.Matrix4.IDENTITY);
    scene.requestRender();
  }
  startView();
  viewer.homeButton.viewModel.command.beforeExecute.addEventListener(function (e) { e.cancel = true; startView(); });
  window.addEventListener("hashchange", function () {
    startView();
    var job = hashParts().params.job;
    if (job) showJob(job);
  });

  // --- ready: every tileset opened and loaded, the globe's tiles loaded ---------------------------
  var settledFrames = 0;
  function loaded() {
    if (pending > 0 || !scene.globe.tilesLoaded) return false;
    return tilesets.every(function (t) { return t.tilesLoaded; });
  }
  scene.postRender.addEventListener(function () {
    status.globe.tilesLoaded = scene.globe.tilesLoaded;
    if (status.state !== "loading") return;
    settledFrames = loaded() ? settledFrames + 1 : 0;
    if (settledFrames >= 2) {  // two frames in a row with nothing left to load
      status.state = "ready";
      status.readyMs = Math.round(performance.now());
      writeStatus();
    }
  });
  setInterval(function () {
    if (status.state === "loading") scene.requestRender();  // frames until ready (requestRenderMode)
    writeStatus();
  }, 400);

  // --- click a building: its property table row, then its Features API item ---------------------
  var highlighted = null;
  function showFeature(feature) {
    var layer = feature.tileset.cimLayer || {};
    var props = {};
    feature.getPropertyIds().forEach(function (id) { props[id] = plain(feature.getProperty(id)); });
    if (highlighted && highlighted.feature !== feature) highlighted.feature.color = highlighted.color;
    if (!highlighted || highlighted.feature !== feature) highlighted = { feature: feature, color: Cesium.Color.clone(feature.color) };
    feature.color = Cesium.Color.fromCssColorString("#2f6fde");
    scene.requestRender();
    var fid = props.fid;
    var picked = status.picked = { layer: layer.id, fid: fid, properties: props, item: null };
    status.featuresPicked += 1;
    writeStatus();
    panel.hidden = false;
    panel.textContent = "";
    panel.appendChild(el("h2", (layer.title || layer.id) + (props.name ? " — " + props.name : "") + " #" + fid));
    panel.appendChild(el("h3", "3D tile"));
    panel.appendChild(table(Object.keys(props).map(function (k) { return [k, props[k]]; })));
    if (fid === undefined || fid === null || !layer.items) return;
    var href = layer.items + "/" + encodeURIComponent(fid);
    var heading = el("h3");
    heading.appendChild(el("a", "Features API item " + fid, { href: href, target: "_blank", rel: "noopener" }));
    panel.appendChild(heading);
    var body = el("div", "loading …", { class: "item" });
    panel.appendChild(body);
    fetch(href + "?f=json", { headers: { Accept: "application/geo+json" } }).then(function (r) {
      if (!r.ok) throw new Error(href + ": HTTP " + r.status);
      return r.json();
    }).then(function (item) {
      if (status.picked !== picked) return;
      var p = item.properties || {};
      picked.item = { id: item.id, properties: p };
      body.textContent = "";
      body.appendChild(table(Object.keys(p).map(function (k) {
        var v = p[k];
        return [k, v !== null && typeof v === "object" ? JSON.stringify(v) : v];
      })));
      writeStatus();
    }).catch(function (err) {
      body.textContent = messageOf(err);
      body.className = "item error";
      addError("feature " + fid + ": " + messageOf(err));
    });
  }
  function showEntity(entity) {  // a warning or a job's result feature
    var rows = [];
    if (entity.properties) {
      entity.properties.propertyNames.forEach(function (k) {
        var v = entity.properties[k].getValue(Cesium.JulianDate.now());
        rows.push([k, v !== null && typeof v === "object" ? JSON.stringify(v) : v]);
      });
    }
    panel.hidden = false;
    panel.textContent = "";
    panel.appendChild(el("h2", entity.cimKind || "Feature"));
    panel.appendChild(table(rows));
  }
  var handler = new Cesium.ScreenSpaceEventHandler(scene.canvas);
  handler.setInputAction(function (click) {
    var picked = scene.pick(click.position);
    if (picked instanceof Cesium.Cesium3DTileFeature) {
      showFeature(picked);
    } else if (picked && picked.id instanceof Cesium.Entity) {
      showEntity(picked.id);
    } else {
      panel.hidden = true;
    }
  }, Cesium.ScreenSpaceEventType.LEFT_CLICK);

  // --- warnings in force: ground-clamped polygons in their colour, live over SSE -------------------
  var W = config.warnings;
  var warningSource = new Cesium.GeoJsonDataSource("warnings");
  viewer.dataSources.add(warningSource);
  window.cimViewer3d.warnings = warningSource;
  var byFid = {}, wLoaded = false, wPending = [];
  function warningColour(p) {
    var name = W.colours[p.colour] ? p.colour : W.severityColours[p.severity];
    return Cesium.Color.fromCssColorString(W.colours[name] || W.noColour);
  }
  function drawWarnings() {
    var features = Object.keys(byFid).map(function (k) { return byFid[k]; });
    status.warnings.count = features.length;
    warningSource.load({ type: "FeatureCollection", features: features }, { clampToGround: true }).then(function () {
      warningSource.entities.values.forEach(function (entity) {
        entity.cimKind = "Warning";
        if (!entity.polygon) return;
        var colour = warningColour(entity.properties ? entity.properties.getValue(Cesium.JulianDate.now()) : {});
        entity.polygon.material = colour.withAlpha(0.45);
      });
      scene.requestRender();
      writeStatus();
    }).catch(function (err) { addError("warnings: " + messageOf(err)); });
  }
  function sameChain(a, b) {
    var pa = a.properties || {}, pb = b.properties || {};
    return (pa.chain && pa.chain === pb.chain) || (pa.identifier && pa.identifier === pb.identifier);
  }
  function removeChainOf(feature) {
    var refs = ((feature.properties || {}).references || "").split(/\s+/).map(function (r) { return r.split(",")[1]; }).filter(Boolean);
    Object.keys(byFid).forEach(function (k) {
      var old = byFid[k];
      if (sameChain(old, feature) || refs.indexOf((old.properties || {}).identifier) >= 0) delete byFid[k];
    });
  }
  function applyWarning(kind, feature) {
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
  function loadWarnings() {
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
    return page(W.items).then(function (all) {
      byFid = {};
      all.forEach(function (f) { applyWarning("created", f); });
      wPending.splice(0).forEach(function (p) { applyWarning(p[0], p[1]); });
      wLoaded = status.warnings.loaded = true;
      drawWarnings();
    }).catch(function (err) { addError("warnings: " + messageOf(err)); });
  }
  function onWarningEvent(e) {
    var message;
    try { message = JSON.parse(e.data); } catch (err) { addError("warnings: event " + e.lastEventId + " is not JSON"); return; }
    var feature = message && message.data && message.data.type === "Feature" ? message.data : message;
    status.warnings.events += 1;
    if (!wLoaded) { wPending.push([e.type, feature]); return; }
    applyWarning(e.type, feature);
    drawWarnings();
  }
  if (window.EventSource) {
    var stream = new EventSource(W.stream);
    ["created", "updated", "cancelled", "expired"].forEach(function (k) { stream.addEventListener(k, onWarningEvent); });
    stream.onopen = function () { status.warnings.state = "live"; if (!wLoaded) loadWarnings(); };
    stream.onerror = function () {
      status.warnings.state = "reconnecting";  // the browser reconnects itself (Last-Event-ID)
      if (!wLoaded) loadWarnings();
    };
    setTimeout(function () { if (!wLoaded) loadWarnings(); }, 5000);
  } else {
    status.warnings.state = "off";
    loadWarnings();
  }

  // --- a job's results: #job=<id> or the form; its GeoJSON outputs drawn -------------------------
  var jobSource = new Cesium.GeoJsonDataSource("job");
  viewer.dataSources.add(jobSource);
  window.cimViewer3d.job = jobSource;
  var jobResult = document.getElementById("job-result");
  function isGeoJson(v) { return v && typeof v === "object" && (v.type === "FeatureCollection" || v.type === "Feature"); }
  function showJob(id) {
    var url = config.jobs + "/" + encodeURIComponent(id) + "/results";
    jobResult.className = "";
    jobResult.textContent = "loading " + id + " …";
    status.job = { id: id, outputs: [], features: 0, error: null };
    fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (doc) {
        if (!r.ok) throw new Error((doc && doc.description) || "HTTP " + r.status);
        return doc;
      });
    }).then(function (doc) {
      var outputs = isGeoJson(doc) ? { result: doc } : doc;
      var features = [];
      Object.keys(outputs || {}).forEach(function (k) {
        var v = outputs[k];
        if (v && isGeoJson(v.value)) v = v.value;
        if (!isGeoJson(v)) return;
        status.job.outputs.push(k);
        features = features.concat(v.type === "Feature" ? [v] : v.features || []);
      });
      status.job.features = features.length;
      jobResult.textContent = features.length + " features from " + (status.job.outputs.join(", ") || "no GeoJSON output");
      return jobSource.load({ type: "FeatureCollection", features: features }, {
        clampToGround: true, fill: Cesium.Color.fromCssColorString("#7b2cbf").withAlpha(0.5),
        stroke: Cesium.Color.fromCssColorString("#7b2cbf"), markerColor: Cesium.Color.fromCssColorString("#7b2cbf"),
      }).then(function () {
        jobSource.entities.values.forEach(function (e) { e.cimKind = "Result of job " + id; });
        writeStatus();
        if (features.length) viewer.flyTo(jobSource, { duration: 0 });
      });
    }).catch(function (err) {
      status.job.error = messageOf(err);
      jobResult.className = "error";
      jobResult.textContent = id + ": " + messageOf(err);
      writeStatus();
    });
  }
  document.getElementById("job-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var id = document.getElementById("job-id").value.trim();
    if (id) showJob(id);
  });
  var firstJob = hashParts().params.job;
  if (firstJob) showJob(firstJob);
  writeStatus();
})();
