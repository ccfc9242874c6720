"""Face-aware editing: parse → pick regions → mask (grow, feather) → SD3.5 inpaint → exact composite."""
