"""LR+DS reproduce entries: the cpu versions run on offline data and declare it; the full
versions keep the paper's setting; reduced-scale model aliases resolve to zoo models."""
import pytest

from experiments import tables
from experiments.lrds import ablation_eta, ablation_fraction, cifar100, cifar100_cross_family
from experiments.lrds import imagenet
from kdjax.models import list_models
from kdjax.reproduce import sweep
from kdjax.reproduce.spec import load_config

LRDS_IDS = ("lrds_cifar100", "lrds_cifar100_cross_family", "lrds_imagenet",
            "lrds_ablation_eta", "lrds_ablation_fraction")
OFFLINE = ("fashion_mnist", "digits")


@pytest.mark.parametrize("tid", LRDS_IDS)
def test_cpu_version_is_offline_and_declared(tid):
    spec = tables.TABLES[tid]
    assert spec.cpu_offline
    for point in sweep.expand(spec, "cpu"):
        c = sweep.point_config(spec, point)
        assert c.data.name in OFFLINE
        assert c.scale_note.startswith("reduced scale: offline Fashion-MNIST")
        assert len(c.lrds.seeds) >= 2
        zoo = set(list_models())
        for pair in c.get("pairs", ()) or (f"{c.teacher.name}:{c.model.name}",):
            for name in pair.split(":"):
                assert cifar100.model_alias(c, name)[0] in zoo
    full = load_config(spec.config, spec.args["full"])
    assert full.data.name in ("cifar100", "imagenet2012")
    assert full.scale_note.startswith("full setting")


def test_full_versions_keep_the_paper_grids():
    spec = tables.TABLES["lrds_cifar100"]
    assert [p.param_dict["pairs"] for p in sweep.expand(spec, "full")] == [
        (p,) for p in cifar100.PAIRS]
    assert [p.param_dict["pairs"] for p in sweep.expand(spec, "cpu")] == [
        (p,) for p in cifar100.CPU_PAIRS]
    full = cifar100.get_config("full")
    assert (full.train.epochs, full.data.batch_size, full.data.augment) == (240, 64, True)
    assert cifar100_cross_family.get_config("full").pairs == cifar100_cross_family.PAIRS
    im = imagenet.get_config("full")
    assert (im.model.name, im.teacher.name, im.train.epochs) == ("resnet18", "resnet34", 100)
    for mod, field, grid in ((ablation_eta, "eta_sweep", ablation_eta.ETAS),
                             (ablation_fraction, "fraction_sweep", ablation_fraction.FRACTIONS)):
        for arg in ("cpu", "full"):   # the paper's grid at both scales
            assert tuple(mod.get_config(arg).lrds[field]) == grid
        assert mod.get_config("full").pairs == ("resnet56:resnet20",)


def test_model_alias_resolves_names_and_kwargs():
    c = cifar100.get_config("cpu")
    assert cifar100.model_alias(c, "mlp_3x256") == ("mlp", {"hidden": (256, 256, 256)})
    assert cifar100.model_alias(c, "resnet20") == ("resnet20", {})   # not an alias: zoo model
    assert (c.teacher.name, tuple(c.teacher.kwargs.hidden)) == ("mlp", (256, 256, 256))
    assert (c.model.name, tuple(c.model.kwargs.hidden)) == ("mlp", (64,))
    one = cifar100.get_config("cpu:resnet56:resnet20")   # an explicit zoo pair
    assert one.pairs == ("resnet56:resnet20",) and one.model.name == "resnet20"
    assert dict(one.model.kwargs) == {}


def test_runner_pairs_use_the_aliases(monkeypatch, tmp_path):
    from kdjax.methods import lrds_train
    seen = []

    def fake_run_pair(cfg, workdir):
        seen.append(cfg)
        return {"rows": [{"variant": "KD"}], "teacher": {}, "teacher_train_errors": 0}

    monkeypatch.setattr(lrds_train, "run_pair", fake_run_pair)
    res = lrds_train.run(cifar100.get_config("cpu"), str(tmp_path))
    assert [r["pair"] for r in res["rows"]] == list(cifar100.CPU_PAIRS)
    hidden = [(tuple(c.teacher.kwargs.hidden), tuple(c.model.kwargs.hidden)) for c in seen]
    assert hidden == [((256, 256, 256), (64,)), ((1024,), (32,))]
    assert all(c.model.name == c.teacher.name == "mlp" and not c.pairs for c in seen)
