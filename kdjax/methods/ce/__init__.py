"""The cross-entropy baseline: a student trained on the ground truth alone, no teacher."""
