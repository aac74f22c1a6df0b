"""Tables and figures built from ``results/`` only (functions return DataFrames and Figures)."""
