"""`config.simkd`: SimKD's own settings (Chen et al., CVPR 2022; DiSK Table 8 / A.7)."""
import ml_collections


def section() -> ml_collections.ConfigDict:
    s = ml_collections.ConfigDict()
    s.factor = 2                 # [SimKD] projector bottleneck: hidden width = F_t // factor
    s.ce_weight = 0.0            # CE weight of the SimKD student, on the teacher head's logits
    #                              ([SimKD] 0: the feature loss only); kept apart from
    #                              loss.ce_weight, which DiSK's and KD's students use
    return s


CHECKS = {
    "factor": (lambda v: v >= 1, "an integer >= 1"),
    "ce_weight": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
}
