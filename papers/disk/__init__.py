"""DiSK (Kag et al.) Table 1: the 1D/2D toy problems, their training loop and the table's runner."""
