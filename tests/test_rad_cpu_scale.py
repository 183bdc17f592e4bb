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


def test_every_rad_cpu_entry_is_its_own_run():
    """No two RAD entries of docs/reproduction.md share a cpu run: their seeds are disjoint, and
    D.7's cpu config follows its grid cell (issue 18)."""
    from experiments.rad import (claim_cpu, d3_gains, d4_active_learning, d5_w_sweep,
                                 d6_entropy_gain, d7_svhn_grid, fig4_imagenet)
    configs = [fig3.get_config(f"cpu:{p}") for p in fig3.PANELS]
    configs += [m.get_config("cpu") for m in (fig4_imagenet, d3_gains, d4_active_learning,
                                              d5_w_sweep, d6_entropy_gain)]
    cells = d7_svhn_grid.grid()
    configs += [d7_svhn_grid.get_config(f"cpu:{cell}") for cell in cells]
    seen = set()
    for c in configs:
        seeds = set(range(c.seed, c.seed + c.active.num_trials))
        assert not seeds & seen, c.scale_note
        seen |= seeds
        assert c.active.claim.pairs and c.active.claim.kind in ("greater", "not_worse", "equal")
    first, last = (d7_svhn_grid.get_config(f"cpu:{cells[i]}") for i in (0, -1))
    assert (first.model.kwargs.widths, first.active.num_labeled, first.active.budget) != \
        (last.model.kwargs.widths, last.active.num_labeled, last.active.budget)
    c = claim_cpu.get_config("cpu:A1500")
    assert c.active.num_labeled == 1500 and c.active.pool_size == claim_cpu.POOL
    assert c.active.rounds * c.active.budget == 0.2 * claim_cpu.POOL
