"""Synthetic toy problems used by the papers' illustrative examples (DiSK Table 1)."""
