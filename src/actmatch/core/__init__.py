"""The bottom layer: what every other package may import; it imports nothing of ours above it."""
