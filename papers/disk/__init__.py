"""DiSK (Kag et al.): Table 1's 1D/2D toy problems, their training loop and runner; the model
sizes of Tables 2/5/6."""
