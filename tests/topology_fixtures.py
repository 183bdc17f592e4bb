"""The model, parameters and split the topology tests share with tests/topology_worker.py."""
import jax
import numpy as np

from kdjax.data import DatasetInfo, make_split
from kdjax.models import get_model

INFO = DatasetInfo("synthetic", 10, (8, 8, 1), (0.5,), (0.25,))
MODEL = get_model("mlp", INFO.num_classes, hidden=(32,))


def eval_split(n: int = 1237):
    """`n` random 8x8 images with random labels (an odd count: every batch size leaves a tail)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, *INFO.image_shape), dtype=np.uint8)
    return make_split(images, rng.integers(0, INFO.num_classes, n))


def init_params(seed: int = 0) -> dict:
    """The MLP's variables, as host arrays."""
    variables = MODEL.init(jax.random.PRNGKey(seed), np.zeros((1, *INFO.image_shape), np.float32))
    return jax.tree.map(np.asarray, jax.device_get(dict(variables)))


def save_tree(tree, path: str) -> None:
    np.savez(path, **{jax.tree_util.keystr(k): np.asarray(v)
                      for k, v in jax.tree_util.tree_leaves_with_path(tree)})


def load_tree(like, path: str):
    """The arrays `save_tree` wrote, in the structure of `like`."""
    flat = np.load(path)
    paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    return jax.tree_util.tree_unflatten(treedef,
                                        [flat[jax.tree_util.keystr(k)] for k, _ in paths])
