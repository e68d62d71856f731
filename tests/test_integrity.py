"""Control-integrity helpers catch the mistakes that turn a control into no control."""
import numpy as np
import pytest
import torch

from utils.controls import (ControlError, random_weights_copy, require_disjoint, require_equal_norm,
                            require_labels_shuffled, require_not_identity, require_redrawn, spectrum_matched_copy)
from utils.stats import choose, split_units


def test_equal_norm_catches_a_shorter_random_vector():
    vector = torch.randn(64)
    randoms = torch.randn(20, 64)
    fair = randoms / randoms.norm(dim=-1, keepdim=True) * vector.norm()
    require_equal_norm(fair, vector)
    with pytest.raises(ControlError, match="norm"):
        require_equal_norm(fair / 10, vector)                  # ten times shorter
    with pytest.raises(ControlError, match="norm"):
        require_equal_norm(randoms, vector)                    # never rescaled
    require_equal_norm(fair[0], float(vector.norm()))            # a single vector, a number as reference


def test_disjoint_catches_selection_overlapping_evaluation():
    split = split_units(np.repeat(np.arange(12), 2), (0.5, 0.25, 0.25), seed=0)
    require_disjoint(split.val, split.test)
    choice = choose({"layer 4": 0.3, "layer 10": 0.6}, chosen_on=split.val)
    require_disjoint(choice, split.test)
    with pytest.raises(ControlError, match="share"):
        require_disjoint(choice, np.concatenate([split.test, split.val[:1]]))
    with pytest.raises(ControlError, match="share"):
        require_disjoint(["Paris", "Rome"], ["Rome", "Oslo"], what="train and test subjects")
    with pytest.raises(ControlError, match="empty"):
        require_disjoint([], [1, 2])


def test_identity_permutation_is_no_shuffle():
    require_not_identity(torch.randperm(50, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ControlError, match="in place"):
        require_not_identity(torch.arange(50))
    with pytest.raises(ControlError, match="not a permutation"):
        require_not_identity(torch.tensor([0, 0, 1]))


def test_shuffled_labels_must_be_shuffled():
    labels = torch.tensor([0, 1] * 50)
    require_labels_shuffled(labels[torch.randperm(100, generator=torch.Generator().manual_seed(1))], labels)
    with pytest.raises(ControlError, match="not shuffled"):
        require_labels_shuffled(labels.clone(), labels)
    with pytest.raises(ControlError, match="counts"):
        require_labels_shuffled(torch.ones(100, dtype=torch.long), labels)


def test_redrawn_catches_a_control_that_is_the_trained_model():
    from utils.models import tiny_transformer
    trained = tiny_transformer(n_layers=1, d_model=32, n_heads=2, d_vocab=20, n_ctx=8, device="cpu", seed=0)
    random = random_weights_copy(trained, seed=1)
    matched = spectrum_matched_copy(trained, seed=2)
    require_redrawn(random, trained, what="random-weights model")
    require_redrawn(matched, trained, others=[random], what="spectrum-matched model")
    with pytest.raises(ControlError, match="aligned with the original"):
        require_redrawn(trained, trained)                             # the "control" is the model itself
    with pytest.raises(ControlError, match="another control"):
        # a second copy of one control, passed off as another
        require_redrawn(spectrum_matched_copy(trained, seed=2), trained, others=[matched])
