"""The declared CPU reduction of the RAD figure configs (experiments/rad/, reproduce issue 6)."""
from experiments.rad import _base, fig3


def test_cpu_note_states_the_reduced_sizes():
    c = _base.cpu_base("what", trials=2, max_train=6000, max_test=2500)
    assert c.data.max_train_examples == 6000 and c.data.max_test_examples == 2500
    assert c.active.num_trials == 2
    assert "6,000-image train subset, 2,500 test images" in c.scale_note
    assert "2 trials" in c.scale_note


def test_fig3_cpu_panels_use_disjoint_seeds():
    seen = set()
    for panel in fig3.PANELS:
        c = fig3.get_config(f"cpu:{panel}")
        seeds = set(range(c.seed, c.seed + c.active.num_trials))
        assert not seeds & seen, panel
        seen |= seeds
        assert f"seeds {c.seed}," in c.scale_note
        assert c.data.name == "fashion_mnist"
    # The full setting keeps the paper's 10 trials from seed 0 for every panel.
    assert fig3.get_config("full:svhn:mobilenet").seed == 0
