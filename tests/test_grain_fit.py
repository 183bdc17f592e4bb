"""prepare -> grain loader -> `fit`: a JPEG class-folder set trains with RandomResizedCrop + flip
in the loader, and a run killed mid-epoch resumes to exactly the uninterrupted parameters."""
import jax
import numpy as np
import pytest

from kdjax import experiment
from kdjax.data import loader, prepare
from kdjax.methods.ce.method import ce_loss
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train.method import Method
from tests import fit_probes
from tests.configs import tiny
from tests.test_prepare import write_class_folders


@pytest.mark.slow  # three short fits: ~40 s on a loaded 2-core machine
def test_fit_on_prepared_jpegs_resumes_exactly(tmp_path, monkeypatch):
    write_class_folders(str(tmp_path / "src"), per_class=11)
    prepare.prepare("folder", str(tmp_path / "src"), str(tmp_path / "rec"), num_workers=1,
                    examples_per_shard=10, image_size=16)
    config = tiny.override(tiny.get_config("ce"), **{
        "data.name": f"records:{tmp_path / 'rec'}", "data.num_validation": 0,
        "data.augment": True, "data.batch_size": 8, "data.eval_batch_size": 8,
        "data.workers": 0, "model.name": "cnn_small", "train.epochs": 2,
        "train.checkpoint_every_steps": 3})
    config.model.kwargs = {"widths": (4, 8), "hidden": 16}
    splits, info = experiment.load_splits(config.data)
    assert loader.host_augments(splits["train"]) and info.image_shape == (16, 16, 3)
    model = experiment.build_model(config.model, info.num_classes)

    def fit(name):
        return loop.fit(config, str(tmp_path / name), model=model, method=Method(loss=ce_loss),
                        train=splits["train"], info=info)

    full = fit("full")  # 33 images: 4 steps per epoch (the remainder dropped), 8 steps
    fit_probes.die_after(monkeypatch, loader, 7)  # mid-epoch 2; the last checkpoint is step 6
    with pytest.raises(fit_probes.Killed):
        fit("cut")
    monkeypatch.undo()
    assert ckpt_lib.Checkpointer(str(tmp_path / "cut" / "checkpoints")).latest_step() == 6
    resumed = fit("cut")
    leaves = [jax.tree.leaves(jax.device_get(r.state.params)) for r in (full, resumed)]
    for a, b in zip(*leaves):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(resumed.state.step) == 8
