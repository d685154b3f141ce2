"""Compression methods (one registry) and the layer-by-layer calibration engine they share."""
