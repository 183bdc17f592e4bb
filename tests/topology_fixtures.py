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


def train_state(mesh, *, zeros: bool = False):
    """A train state with every kind of leaf a checkpoint holds, placed on `mesh` as `fit`
    places it: params, momentum, a step, per-example rows split over the data axis (24 rows:
    divisible by 1, 2, 4 and 8 shards) and an incompressible uint32 leaf. `zeros`: the same
    structure with zero values (a restore target)."""
    import optax
    from kdjax.train import loop, state as state_lib
    from kdjax.train import mesh as mesh_lib
    rng = np.random.default_rng(1)
    state = state_lib.create_train_state(
        MODEL, optax.sgd(0.1, momentum=0.9), jax.random.PRNGKey(0), INFO.image_shape,
        example_state={"rows": np.arange(24, dtype=np.float32) * 0.5},
        extra={"noise": rng.integers(0, 2**32, 4096, dtype=np.uint32)})
    state = state.replace(step=7, opt_state=jax.tree.map(lambda a: np.asarray(a) + 0.25,
                                                         state.opt_state))
    if zeros:
        state = jax.tree.map(lambda a: np.zeros_like(a), state)
    return mesh_lib.put(state, loop._state_shardings(state, mesh))


def save_state(workdir: str, mesh=None) -> None:
    """`train_state()` on `mesh` (default: every device) as step 7 of `<workdir>/checkpoints`."""
    from kdjax.train import checkpoint as ckpt_lib, mesh as mesh_lib, state as state_lib
    mesh = mesh if mesh is not None else mesh_lib.make_mesh()
    ckpt = ckpt_lib.Checkpointer(f"{workdir}/checkpoints")
    ckpt.save(7, state_lib.checkpoint_items(train_state(mesh)), {"history": [{"epoch": 1}]},
              force=True)
    ckpt.wait()
    ckpt.close()


def restore_and_check(workdir: str, mesh=None) -> None:
    """Restore what `save_state` wrote, on `mesh`, as `fit` resumes (into a zero state's
    shardings) and as a teacher loads (`load_variables`); assert values and shardings."""
    from kdjax.train import checkpoint as ckpt_lib, mesh as mesh_lib, state as state_lib
    mesh = mesh if mesh is not None else mesh_lib.make_mesh()
    want = state_lib.checkpoint_items(train_state(mesh))
    target = state_lib.checkpoint_items(train_state(mesh, zeros=True))
    ckpt = ckpt_lib.Checkpointer(f"{workdir}/checkpoints")
    step, got, meta = ckpt.restore_latest_readable(target, ckpt.all_steps())
    ckpt.close()
    assert step == 7 and meta == {"history": [{"epoch": 1}]}, (step, meta)
    _assert_tree_equal(got, want, target)
    variables = ckpt_lib.load_variables(workdir, mesh=mesh)
    _assert_tree_equal(variables, {"params": want["params"], "batch_stats": want["batch_stats"]},
                       jax.tree.map(lambda _: mesh_lib.replicated(mesh), variables))


def _assert_tree_equal(got, want, like) -> None:
    """Same values as `want` (gathered whole) and the shardings of `like`, leaf by leaf."""
    from kdjax.train.checksum import host_value
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for (path, g), w, t in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want),
                               jax.tree.leaves(like)):
        sharding = getattr(t, "sharding", t)
        assert g.sharding.is_equivalent_to(sharding, g.ndim), (path, g.sharding, sharding)
        np.testing.assert_array_equal(host_value(g), host_value(w), err_msg=jax.tree_util.keystr(path))
