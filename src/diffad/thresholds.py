"""Thresholds fitted without test labels, and one explicitly named oracle.

A threshold turns continuous scores (higher = more anomalous) into 0/1 decisions:

- :func:`contamination_threshold`: a quantile of training-side scores;
- :func:`pot`, :class:`SPOT`, :class:`DSPOT`: extreme-value thresholds (Siffer et al., KDD 2017) from a
  generalised Pareto tail fitted with scipy, for a fixed risk ``q`` and for streams;
- :func:`fit_vote_thresholds` / :func:`ensemble_vote`: ImDiffusion's step-ensemble vote;
- :func:`oracle_vote_xi`: the vote level chosen on test labels, **only** to reproduce the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import genpareto

from .validation import check_fraction, fail

__all__ = [
    "THRESHOLD_RULES",
    "fit_threshold",
    "decide",
    "auto_threshold",
    "contamination_threshold",
    "apply_threshold",
    "pot",
    "SPOT",
    "DSPOT",
    "fit_vote_thresholds",
    "vote_ratios",
    "ensemble_vote",
    "oracle_vote_xi",
]


def _clean(scores, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise fail(name, "at least one non-NaN value", "none", "Check the detector's output.")
    if not np.isfinite(s).all():
        raise fail(name, "finite values", "infinities", "Replace them before thresholding.")
    return s


def contamination_threshold(scores, contamination: float) -> float:
    """The ``(1 - contamination)`` quantile of training-side ``scores``: about a ``contamination``
    fraction of the fitted scores lie strictly above it. NaN scores are ignored."""
    check_fraction(contamination, name="contamination", low=0.0, high=0.5)
    return float(np.quantile(_clean(scores), 1.0 - contamination, method="higher"))


THRESHOLD_RULES = ("contamination", "pot", "spot", "dspot")


def auto_threshold(scores) -> float:
    """``contamination="auto"``: no flag rate assumed; the far-out fence of the training scores,
    Q3 + 3 x (Q3 - Q1) (Tukey), so that a clean training series flags almost nothing and a heavy tail
    flags its outliers."""
    q1, q3 = np.quantile(_clean(scores), [0.25, 0.75])
    return float(q3 + 3.0 * (q3 - q1))


def fit_threshold(scores, rule: str = "contamination", contamination: float | str = 0.01) -> float:
    """``threshold_`` from training-side ``scores`` by a detector's ``threshold`` rule:

    - ``"contamination"``: the ``1 - contamination`` quantile (:func:`contamination_threshold`), or
      with ``contamination="auto"`` :func:`auto_threshold`;
    - ``"pot"``: peaks over threshold (:func:`pot`, risk 1e-3 above the 98 % level);
    - ``"spot"`` / ``"dspot"``: the same POT threshold to start with; decisions on new data then adapt
      along the series (:func:`decide`).
    """
    if rule not in THRESHOLD_RULES:
        raise fail(
            "threshold",
            f"one of {list(THRESHOLD_RULES)}",
            repr(rule),
            "Use contamination, pot, spot or dspot.",
        )
    if rule != "contamination":
        return pot(scores)
    if contamination == "auto":
        return auto_threshold(scores)
    if isinstance(contamination, str):
        raise fail("contamination", 'a fraction in (0, 0.5) or "auto"', repr(contamination), "Use e.g. 0.01.")
    return contamination_threshold(scores, contamination)


def decide(scores, threshold: float, rule: str = "contamination", train_scores=None) -> np.ndarray:
    """0/1 decisions for ``scores`` of one series in time order: ``scores > threshold``, or with
    ``"spot"`` / ``"dspot"`` the streaming thresholds of :class:`SPOT` / :class:`DSPOT` calibrated on
    ``train_scores`` and run along ``scores`` (the threshold moves with the peaks it sees)."""
    if rule in ("spot", "dspot"):
        s = np.asarray(scores, dtype=np.float64).ravel()
        ok = np.isfinite(s)  # NaN scores (unobserved points) are no alarm and do not move the threshold
        out = np.zeros(s.size, dtype=np.int64)
        out[ok] = (SPOT() if rule == "spot" else DSPOT()).fit(train_scores).run(s[ok])[1]
        return out
    return apply_threshold(scores, threshold)


def apply_threshold(scores, threshold: float) -> np.ndarray:
    """1 where ``scores > threshold``, else 0 (NaN scores give 0)."""
    s = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (s > threshold).astype(np.int64)


# ------------------------------------------------------------------------------------ POT / SPOT
def _gpd_quantile(t: float, peaks: np.ndarray, n: int, q: float) -> float:
    """Threshold z_q with P(X > z_q) = q from a generalised Pareto fit of the ``peaks`` (excesses over t).

    Siffer et al., eq. (1): z_q = t + sigma/gamma * ((q n / N_t)^(-gamma) - 1), and t - sigma log(q n / N_t)
    when gamma = 0.
    """
    if peaks.size < 2 or np.ptp(peaks) == 0:
        return float(t + (peaks.max() if peaks.size else 0.0))
    gamma, _, sigma = genpareto.fit(peaks, floc=0.0)
    r = q * n / peaks.size
    if abs(gamma) < 1e-8:
        return float(t - sigma * np.log(r))
    return float(t + sigma / gamma * (r ** (-gamma) - 1.0))


def pot(scores, q: float = 1e-3, level: float = 0.98) -> float:
    """Peaks-over-threshold: fit a generalised Pareto tail to the scores above their ``level`` quantile
    and return the threshold exceeded with probability ``q``."""
    check_fraction(q, name="q")
    check_fraction(level, name="level")
    s = _clean(scores)
    t = float(np.quantile(s, level))
    peaks = s[s > t] - t
    return _gpd_quantile(t, peaks, s.size, q)


@dataclass
class SPOT:
    """Streaming POT (Siffer et al., KDD 2017, algorithm SPOT).

    ``fit(calibration)`` runs POT on calibration scores; ``run(stream)`` walks the stream: a score
    above the current threshold is an alarm (and does not update the model); one between the initial
    level and the threshold is a new peak, which refits the tail and moves the threshold.

    Parameters
    ----------
    q : float
        Risk: probability of exceeding the threshold under the fitted tail.
    level : float
        Quantile of the calibration scores that sets the initial threshold t.
    """

    q: float = 1e-3
    level: float = 0.98
    t_: float = field(init=False, default=float("nan"))
    threshold_: float = field(init=False, default=float("nan"))

    def fit(self, calibration) -> SPOT:
        check_fraction(self.q, name="q")
        check_fraction(self.level, name="level")
        s = _clean(calibration, "calibration scores")
        self.t_ = float(np.quantile(s, self.level))
        self._peaks = list(s[s > self.t_] - self.t_)
        self._n = s.size
        self.threshold_ = _gpd_quantile(self.t_, np.asarray(self._peaks), self._n, self.q)
        return self

    def _transform(self, x: float) -> float:
        return x

    def _accept(self, x: float) -> None:
        pass

    def run(self, stream) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(thresholds, alarms)``: the threshold in force at each point and 0/1 alarms."""
        if np.isnan(self.threshold_):
            raise fail("SPOT", "fit(calibration) before run()", "an unfitted SPOT", "Call fit first.")
        s = np.asarray(stream, dtype=np.float64).ravel()
        thresholds = np.empty(s.size)
        alarms = np.zeros(s.size, dtype=np.int64)
        for i, raw in enumerate(s):
            x = self._transform(raw)
            thresholds[i] = self.threshold_ + (raw - x)
            if x > self.threshold_:
                alarms[i] = 1
                continue
            if x > self.t_:
                self._peaks.append(x - self.t_)
                self._n += 1
                self.threshold_ = _gpd_quantile(self.t_, np.asarray(self._peaks), self._n, self.q)
            else:
                self._n += 1
            self._accept(raw)
        return thresholds, alarms


@dataclass
class DSPOT(SPOT):
    """SPOT on drift-corrected scores: each score minus the mean of the last ``depth`` accepted
    (non-alarm) scores (Siffer et al., algorithm DSPOT)."""

    depth: int = 50

    def fit(self, calibration) -> DSPOT:
        s = _clean(calibration, "calibration scores")
        if s.size <= self.depth:
            raise fail(
                "calibration scores",
                f"more than depth={self.depth} values",
                str(s.size),
                "Pass more calibration data or a smaller depth.",
            )
        window = np.lib.stride_tricks.sliding_window_view(s[:-1], self.depth).mean(axis=1)  # (m - depth,)
        super().fit(s[self.depth :] - window)
        self._window = list(s[-self.depth :])
        return self

    def _transform(self, x: float) -> float:
        return x - float(np.mean(self._window))

    def _accept(self, x: float) -> None:
        self._window.pop(0)
        self._window.append(x)


# ------------------------------------------------------------------------------ ensemble voting
def vote_ratios(step_errors, r: float) -> np.ndarray:
    """Per-step flag ratios r_i = r * mean_err_0 / mean_err_i (step 0 = the final denoising step).

    Steps that impute worse (larger mean error, earlier in the reverse process) flag a smaller share of
    points, so their noisier errors weigh less in the vote. Ratios are capped at 1.
    """
    E = np.asarray(step_errors, dtype=np.float64)
    if E.ndim != 2:
        raise fail(
            "step_errors", "shape (n_steps, n_points)", f"shape {E.shape}", "Stack one error row per step."
        )
    check_fraction(r, name="r")
    means = np.nanmean(E, axis=1)
    if not (means > 0).all():
        raise fail(
            "step_errors",
            "positive mean error on every step",
            f"means {means.tolist()}",
            "Check the imputation errors.",
        )
    return np.minimum(r * means[0] / means, 1.0)


def fit_vote_thresholds(step_errors, r: float) -> np.ndarray:
    """Per-step thresholds: step i flags its top r_i fraction of ``step_errors`` (n_steps, n).

    Fit them on training-side (validation) errors for the honest protocol; ImDiffusion's published
    code fits them on the test errors themselves (no labels, but transductive).
    """
    E = np.asarray(step_errors, dtype=np.float64)
    ratios = vote_ratios(E, r)
    return np.array([np.nanquantile(e, 1.0 - ri) for e, ri in zip(E, ratios, strict=True)])


def ensemble_vote(step_errors, thresholds, xi: int) -> tuple[np.ndarray, np.ndarray]:
    """Votes per point (how many steps flag it) and decisions ``votes > xi``."""
    E = np.asarray(step_errors, dtype=np.float64)
    th = np.asarray(thresholds, dtype=np.float64)
    if th.shape != (E.shape[0],):
        raise fail(
            "thresholds",
            f"one per step, shape ({E.shape[0]},)",
            f"shape {th.shape}",
            "Fit them on errors with the same steps.",
        )
    if not 0 <= xi < E.shape[0]:
        raise fail("xi", f"an integer in [0, {E.shape[0] - 1}]", repr(xi), "Votes range from 0 to n_steps.")
    with np.errstate(invalid="ignore"):
        votes = (E > th[:, None]).sum(axis=0)
    return votes, (votes > xi).astype(np.int64)


def oracle_vote_xi(labels, votes, n_steps: int, metric=None) -> tuple[int, float]:
    """ORACLE (uses test labels): the vote level xi in 0..n_steps-1 whose decisions score best under
    ``metric`` (default: point-adjusted F1), as ImDiffusion's paper protocol does. Returns (xi, score)."""
    from .metrics import pa_f1

    metric = metric or pa_f1
    v = np.asarray(votes)
    results = [(xi, metric(labels, (v > xi).astype(np.int64))) for xi in range(n_steps)]
    return max(results, key=lambda t: t[1])
