import numpy as np
import pytest

from diffad import DataValidationError
from diffad.metrics.interpretation import hit_rate, interpretation_scores, zscore_attribution


def test_hit_rate_by_hand():
    A = np.zeros((10, 4))
    A[2:5, 1] = 3.0  # channel 1 most to blame over [2, 4]
    A[2:5, 3] = 2.0
    A[2:5, 0] = 1.0
    seg = [(2, 4, (1, 2))]  # labelled: channels 1 and 2
    assert hit_rate(A, seg, 100) == 0.5  # top 2: {1, 3} -> one of two
    assert hit_rate(A, seg, 150) == 0.5  # top 3: {1, 3, 0}
    assert (
        hit_rate(A, seg + [(7, 8, (0,))], 100) == 0.75
    )  # all-zero segment: ties go by channel order, top 1 = {0}: (0.5 + 1) / 2
    assert np.isnan(hit_rate(A, [(20, 30, (1,))]))
    assert set(interpretation_scores(A, seg)) == {"HitRate@100%", "HitRate@150%"}
    with pytest.raises(DataValidationError):
        hit_rate(np.zeros(5), seg)


def test_zscore_attribution_blames_the_shifted_channel():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(500, 3))
    test = rng.normal(size=(50, 3))
    test[10:20, 2] += 8.0
    assert hit_rate(zscore_attribution(train, test), [(10, 19, (2,))], 100) == 1.0
