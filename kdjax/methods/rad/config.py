"""`config.active`: RAD's active distillation (Alg. 1), the section of `method='rad'`,
`'rad_compare'` and the drivers built on them (`kdjax.methods.rad.compare:run`,
`papers.rad.compose_active:run`)."""
import ml_collections

SECTION = "active"


def section() -> ml_collections.ConfigDict:
    a = ml_collections.ConfigDict()
    a.strategy = "rad"           # uniform | margin | entropy | coreset | cluster_margin |
    #                              unixkd | rad | rad_entropy
    a.strategies = ("rad", "margin", "uniform")   # compared side by side
    a.num_labeled = 5000         # |A|
    a.budget = 1000              # b, soft labels queried per round
    a.rounds = 5                 # T
    a.num_trials = 1
    a.m_estimate = "uniform"     # validation | uniform | fixed | oracle (Sec. 3.3 / D.1)
    a.b_uniform = 200            # queries spent on estimating m
    a.w = -1.0                   # < 0: w = 1 - m/n (Cor. 1); D.5 sets it
    a.teacher_temperature = 1.0
    a.num_clusters = 50          # CLUSTER MARGIN's agglomerative clusters of the pool
    a.cluster_bucket_size = 0    # > 0: D.2's bucketed clustering for big pools
    a.label_oracle = False       # D.4 (active learning): queries return the true label
    a.m_fraction = 0.0           # m_estimate='fixed': m = m_fraction·n (D.4: 0.05)
    a.round0_workdir = ""        # shared home of round 0 (set by kdjax.methods.rad.compare)
    a.pool_size = 0              # > 0: a fixed random subset of the unlabeled pool
    a.pairs = ()                 # compare: (a, b) strategy pairs printed as paired a − b
    a.retrain = "kl"             # loss of rounds >= 1 (retrain.py): 'kl' = Alg. 1's KL to the
    #                              targets, or a method ('kd', 'lrds', 'alm', 'disk'); queried
    #                              points carry the teacher's arg-max as their label
    a.retrains = ("kd", "lrds", "alm")   # papers.rad.compose_active: compared side by side
    # What the paper claims about the compared strategies (kdjax/methods/rad/paired.py judges
    # it on the paired differences; printed by the compare runner and the reproduce report):
    a.claim = ml_collections.ConfigDict()
    a.claim.text = ""            # the claim in words ('' = none)
    a.claim.kind = "greater"     # greater | not_worse | equal (kdjax/reproduce/stats.py)
    a.claim.pairs = ()           # ((a, b), ...): the claimed differences a − b
    a.claim.on = "all"           # all (mean over rounds 1..T) | last (the last round)
    a.claim.margin = 0.0         # δ of kinds 'not_worse' / 'equal' (accuracy fraction)
    return a


CHECKS = {
    "claim.kind": (lambda v: v in ("greater", "not_worse", "equal"),
                   "one of ('greater', 'not_worse', 'equal')"),
    "claim.on": (lambda v: v in ("all", "last"), "'all' or 'last'"),
    "claim.margin": (lambda v: v >= 0, ">= 0"),
    "retrain": (lambda v: bool(v) and v not in ("rad", "rad_compare"),
                "'kl' or a method with make_method (e.g. 'kd', 'lrds', 'alm', 'disk')"),
}
