"""The activation-matching explainer (method.md §2-4): U-Net mask network, loss terms, regimes."""
