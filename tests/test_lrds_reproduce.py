"""LR+DS reproduce entries: one point = one run (variant x pair x seed); the cpu versions run on
offline data and declare it; the full versions keep the paper's grids; every point's config
validates; pair settings resolve the reduced-scale aliases to zoo models."""
import pytest

from experiments import tables
from experiments.lrds import ablation_eta, ablation_fraction, cifar100, cifar100_cross_family
from experiments.lrds import fashion_mnist_reduced, imagenet, variants
from kdjax import config as config_lib
from kdjax.models import list_models
from kdjax.reproduce import aggregate, sweep
from kdjax.reproduce.spec import load_config

LRDS_IDS = ("lrds_cifar100", "lrds_cifar100_cross_family", "lrds_imagenet",
            "lrds_ablation_eta", "lrds_ablation_fraction", "lrds_fashion_mnist",
            "lrds_strong_teacher", "lrds_strong_teacher_scorers")
OFFLINE = ("fashion_mnist", "digits")
CONFIGS = ((cifar100, ("cpu", "full", "cpu:resnet56:resnet20", "full:vgg13:vgg8")),
           (cifar100_cross_family, ("cpu", "full")), (imagenet, ("cpu", "full")),
           (ablation_eta, ("cpu", "full")), (ablation_fraction, ("cpu", "full")),
           (fashion_mnist_reduced, ("cpu", "full")))


@pytest.mark.parametrize("module,args", CONFIGS, ids=[m.__name__ for m, _ in CONFIGS])
def test_every_config_file_validates(module, args):
    for arg in args:
        c = module.get_config(arg)
        config_lib.validate(c)
        assert c.method == "lrds"


@pytest.mark.parametrize("tid", LRDS_IDS)
def test_every_point_is_one_valid_run(tid):
    spec = tables.TABLES[tid]
    assert spec.seeds == "grid:seed"
    zoo = set(list_models())
    for scale in ("cpu", "full"):
        points = sweep.expand(spec, scale)
        for point in points:
            c = sweep.point_config(spec, point)
            config_lib.validate(c)
            assert c.method in ("lrds", "ce") and c.model.name in zoo and c.teacher.name in zoo
            if scale == "cpu":
                assert c.data.name in OFFLINE
        names = [p.name for p in points]
        assert len(set(names)) == len(names)
        draws = len({p.param_dict[spec.draw] for p in points}) if spec.draw else 1
        assert len({p.seed for p in points}) == draws * spec.default_seeds[scale]
    assert spec.cpu_offline
    if tid in LRDS_IDS[:5]:   # the paper stand-ins (not the reduced runs of our own)
        c = sweep.point_config(spec, sweep.expand(spec, "cpu")[0])
        assert c.scale_note.startswith("reduced scale: offline Fashion-MNIST")
        full = load_config(spec.config, spec.args["full"])
        assert full.data.name in ("cifar100", "imagenet2012")
        assert full.scale_note.startswith("full setting")


def _cells(tid, scale):
    spec = tables.TABLES[tid]
    return [(p.param_dict, sweep.point_config(spec, p)) for p in sweep.expand(spec, scale)
            if p.seed == 0]


def test_variants_are_config_fields():
    cells = {params["variant"]: c for params, c in _cells("lrds_fashion_mnist", "cpu")}
    switches = {v: (c.method, c.lrds.lr.enabled, c.lrds.ds.enabled, c.lrds.ds.lowest,
                    c.lrds.ds.scorer) for v, c in cells.items()}
    assert switches["CE"][0] == "ce"
    assert switches["KD"] == ("lrds", False, False, False, "influence")
    assert switches["KD+LR"] == ("lrds", True, False, False, "influence")
    assert switches["KD+DS"] == ("lrds", False, True, False, "influence")
    assert switches["KD+LR+DS"] == ("lrds", True, True, False, "influence")
    assert switches["KD+LR+DS (lowest scores)"] == ("lrds", True, True, True, "influence")
    for s in fashion_mnist_reduced.SCORER_SWEEP:
        assert switches[f"KD+LR+DS ({s})"] == ("lrds", True, True, False, s)
    eta = {p["variant"]: c.lrds.lr.eta for p, c in _cells("lrds_ablation_eta", "full")}
    assert eta == {"CE": 0.8, "KD": 0.8,
                   **{f"KD+LR+DS eta={e:g}": e for e in ablation_eta.ETAS}}
    frac = [c.lrds.ds.fraction for _, c in _cells("lrds_ablation_fraction", "cpu")][2:]
    assert tuple(frac) == ablation_fraction.FRACTIONS


def test_full_versions_keep_the_paper_grids():
    cells = _cells("lrds_cifar100", "full")
    assert sorted({p["pair"] for p, _ in cells}) == sorted(cifar100.PAIRS)
    assert {p["variant"] for p, _ in cells} == {v.label for v in variants.STANDARD} | {"CE"}
    assert {p["pair"] for p, _ in _cells("lrds_cifar100", "cpu")} == set(cifar100.CPU_PAIRS)
    assert {p["pair"] for p, _ in _cells("lrds_cifar100_cross_family", "full")} == set(
        cifar100_cross_family.PAIRS)
    full = cifar100.get_config("full")
    assert (full.train.epochs, full.data.batch_size, full.data.augment) == (240, 64, True)
    assert (full.loss.temperature, full.loss.kd_weight, full.loss.ce_weight) == (4.0, 0.9, 0.1)
    im = imagenet.get_config("full")
    assert (im.model.name, im.teacher.name, im.train.epochs) == ("resnet18", "resnet34", 100)
    assert im.lrds.ds.hessian == "auto"
    # RepDistiller's 0.01 for MobileNet / ShuffleNet students, 0.05 otherwise
    lr = {p["pair"]: c.train.learning_rate for p, c in _cells("lrds_cifar100_cross_family",
                                                               "full")}
    assert lr["vgg13:mobilenetv2"] == 0.01 and lr["resnet50:vgg8"] == 0.05


def test_pair_setting_resolves_aliases():
    fields = dict(cifar100.pair_setting("mlp_3x256:mlp_1x64").fields)
    assert (fields["teacher.name"], fields["teacher.kwargs"]) == ("mlp", {"hidden": (256,) * 3})
    assert (fields["model.name"], fields["model.kwargs"]) == ("mlp", {"hidden": (64,)})
    assert cifar100.model_alias("resnet20") == ("resnet20", {})   # not an alias: zoo model
    c = cifar100.get_config("cpu")
    assert (c.teacher.name, tuple(c.teacher.kwargs.hidden)) == ("mlp", (256, 256, 256))
    one = cifar100.get_config("cpu:resnet56:resnet20")   # an explicit zoo pair
    assert one.model.name == "resnet20" and dict(one.model.kwargs) == {}
    with pytest.raises(ValueError, match="teacher:student"):
        cifar100.pair_setting("resnet56")


def test_paper_numbers_reach_their_cells():
    spec = tables.TABLES["lrds_cifar100"]
    student = spec.metrics[0]
    from papers.paper_numbers import PAPERS
    look = lambda pair, variant: aggregate.lookup_paper(
        "lrds", student.paper, {"pair": pair, "variant": variant, "seed": 0}, PAPERS)
    assert look("resnet56:resnet20", "KD") == 70.66
    assert look("resnet56:resnet20", "KD+LR") is None
    assert look("mlp_3x256:mlp_1x64", "KD") is None   # reduced rows carry no paper number


def test_metric_rows_average_seeds_per_cell():
    spec = tables.TABLES["lrds_imagenet"]
    records = [{"params": {"variant": "KD", "seed": s}, "seed": s,
                "result": {"test_accuracy": acc, "teacher": {"test_accuracy": 0.8},
                           "lrds": {"teacher_train_errors": 7, "teacher_supervised": 10,
                                    "teacher_wrong_supervised": 7, "revised_targets": 0}}}
               for s, acc in ((0, 0.81), (1, 0.83))]
    rows = {r["metric"]: r for r in aggregate.metric_rows(spec, records)}
    assert rows["student"]["mean"] == pytest.approx(82.0) and rows["student"]["n"] == 2
    assert rows["teacher train errors"]["mean"] == 7
    assert rows["revised targets (all changed)"]["mean"] == 0
