"""Active distillation (RAD paper, Alg. 1): selection strategies (`strategies`) and Fig. 2."""
from kdjax.active.strategies import STRATEGIES, Pool, Selection, cluster_embeddings, select

__all__ = ["STRATEGIES", "Pool", "Selection", "cluster_embeddings", "select"]
