"""Helpers shared by the test modules (no tests here): data makers, servers, clients.

- ``postgis``: the PostGIS test server (URL, admin connection, per-test databases);
- ``server``: the app on a real socket (``LiveServer``) or in process (``app_client``);
- ``browser``: headless Chromium over the DevTools protocol (the viewer tests);
- ``citydata``, ``tianjin``, ``rasters``, ``slow_requests``, ``corpus_builds``: test data;
- ``tiles``: decoding MVT and walking tile coordinates.

Fixtures live in tests/conftest.py; the markers (``postgis``, ``browser``, ``slow``) are set there too.
"""
