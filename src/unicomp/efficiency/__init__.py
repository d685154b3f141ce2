"""The efficiency track: compute (FLOPs, MACs), footprint, device profiles and projections."""
