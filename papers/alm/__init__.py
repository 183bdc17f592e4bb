"""ALM-KD (Sarkar et al.) Sec. 5: the synthetic experiment (Fig. 3/4), its variants and report."""
