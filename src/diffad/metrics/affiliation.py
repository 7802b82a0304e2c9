"""Affiliation precision / recall / F (Huet, Navarro, Rossi, KDD 2022), as TSB-AD computes it.

Each point index i is the interval [i, i+1). Every true event J owns an affiliation zone E (the time
closer to J than to any other true event). Inside E:

- precision of a predicted point x: 1 if x is in J, else the share of E lying at least as far from J
  as x is; averaged over the predicted time in E (undefined when E holds no prediction);
- recall of a true point y: the share of E lying at least as far from y as the nearest prediction in E
  is; averaged over J (0 when E holds no prediction).

Precision is the mean over the zones where it is defined, recall the mean over all events.

Implementation (written for diffad): the integrands are piecewise linear and every kink falls on a
multiple of 1/4 (zone edges are half-integers, kinks of the distance are at most halfway between
those), so integrating with the trapezoid rule on quarter steps is exact. Precision integrals are
computed once per point and summed per zone and threshold with histograms, so the 100-threshold
oracle costs a few passes over the data instead of a Python loop over events.
"""

from __future__ import annotations

import numpy as np

from ._common import check_inputs, check_preds, segments, threshold_grid

__all__ = ["affiliation_pr", "affiliation_f", "affiliation_f_oracle"]

_Q = np.array([0.0, 0.25, 0.5, 0.75])  # quarter-piece offsets inside a unit cell


def _zones(y: np.ndarray):
    """True events [a, b) and the edges of their affiliation zones (G + 1 values from 0 to n)."""
    a, e = segments(y)
    b = e + 1
    edges = np.r_[0.0, (b[:-1] + a[1:]) / 2.0, float(len(y))]
    return a.astype(float), b.astype(float), edges


def _pieces(cells: np.ndarray):
    """Quarter pieces of unit cells: left ends u, right ends v, midpoints m, each (len(cells), 4)."""
    u = cells[:, None] + _Q[None, :]
    return u, u + 0.25, u + 0.125


def _precision_integrals(n: int, a, b, edges):
    """Integral of the precision integrand over each half of each cell and the zone of that half.

    Returns ``(vals, zone)`` of shape (n, 2): halves [i, i+.5] and [i+.5, i+1].
    """
    u, v, m = _pieces(np.arange(n, dtype=float))
    z = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, len(a) - 1)  # zone of each piece
    A, B, e1, e2 = a[z], b[z], edges[z], edges[z + 1]

    def f(x):
        left = np.maximum(0, x - e1) + np.maximum(0, e2 - B - A + x)  # x before J: d = A - x
        right = np.maximum(0, A + B - x - e1) + np.maximum(0, e2 - x)  # x after J: d = x - B
        out = np.where(m < A, left, np.where(m > B, right, e2 - e1))
        return out / (e2 - e1)

    q = 0.125 * (f(u) + f(v))  # (n, 4) exact trapezoid integrals
    vals = np.stack([q[:, 0] + q[:, 1], q[:, 2] + q[:, 3]], axis=1)
    return vals, z[:, [0, 2]]


def _recall(p: np.ndarray, a, b, edges) -> float:
    """Mean over true events of the recall integral (0 for an event whose zone has no prediction)."""
    n = p.size
    idx = np.arange(n)
    last = np.maximum.accumulate(np.where(p > 0, idx, -1))  # last predicted cell <= i
    nxt = np.minimum.accumulate(np.where(p > 0, idx, n)[::-1])[::-1]  # first predicted cell >= i
    cells = np.concatenate([np.arange(int(s), int(e)) for s, e in zip(a, b, strict=True)])  # true cells
    zone = np.repeat(np.arange(a.size), (b - a).astype(int))
    u, v, m = _pieces(cells.astype(float))
    e1, e2 = edges[zone][:, None], edges[zone + 1][:, None]
    inside = (p[cells] > 0)[:, None]
    lend = last[cells].astype(float)[:, None] + 1.0  # end of the nearest prediction on the left
    lend = np.where((last[cells][:, None] >= 0) & (lend > e1), lend, np.nan)
    nxt_c = nxt[np.minimum(cells + 1, n - 1)]
    rstart = np.where(cells + 1 < n, nxt_c, n).astype(float)[:, None]
    rstart = np.where(rstart < np.minimum(e2, n), rstart, np.nan)

    def f(x):
        with np.errstate(invalid="ignore"):
            d = np.fmin(x - lend, rstart - x)  # NaN-aware: a missing side is ignored
        val = (np.maximum(0, x - d - e1) + np.maximum(0, e2 - x - d)) / (e2 - e1)
        return np.where(inside, 1.0, val)

    q = 0.125 * (f(u) + f(v))  # (cells, 4)
    has_pred = ~(np.isnan(lend) & np.isnan(rstart)) | inside
    q = np.where(has_pred, q, 0.0)
    per_event = np.bincount(zone, weights=q.sum(axis=1), minlength=a.size) / (b - a)
    return float(per_event.mean())


def _f(prec: float, rec: float) -> float:
    return 2 * prec * rec / (prec + rec + 1e-15)


def affiliation_pr(labels, preds) -> tuple[float, float]:
    """(affiliation precision, affiliation recall) of 0/1 predictions. Precision is NaN without any prediction."""
    p = check_preds(preds, len(np.asarray(preds)))
    y, _ = check_inputs(labels, np.zeros(len(p)), need_both_classes=False)
    a, b, edges = _zones(y)
    if a.size == 0:
        raise ValueError(
            "labels: expected at least one anomalous segment, got none. Affiliation metrics need true events."
        )
    vals, zone = _precision_integrals(len(y), a, b, edges)
    w = np.repeat(p[:, None], 2, axis=1).astype(float)
    num = np.bincount(zone.ravel(), weights=(vals * w).ravel(), minlength=a.size)
    den = np.bincount(zone.ravel(), weights=0.5 * w.ravel(), minlength=a.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_zone = np.where(den > 0, num / den, np.nan)
    prec = float(np.nanmean(per_zone)) if np.isfinite(per_zone).any() else float("nan")
    return prec, _recall(p, a, b, edges)


def affiliation_f(labels, preds) -> float:
    """Affiliation F = 2PR / (P + R + 1e-15); 0 when nothing is predicted (precision undefined)."""
    prec, rec = affiliation_pr(labels, preds)
    return 0.0 if np.isnan(prec) else float(_f(prec, rec))


def affiliation_f_oracle(labels, scores) -> float:
    """Best affiliation F over TSB-AD's 100-threshold grid (oracle; ``pred = score > t``)."""
    y, s = check_inputs(labels, scores)
    a, b, edges = _zones(y)
    ts = threshold_grid(s)
    k_end = np.searchsorted(ts, s, side="left")  # point predicted at thresholds k < k_end
    vals, zone = _precision_integrals(len(y), a, b, edges)
    G, Q = a.size, ts.size
    # histogram over (zone, k_end), then a reverse cumulative sum over thresholds
    key = (zone * (Q + 1) + k_end[:, None]).ravel()
    num = np.bincount(key, weights=vals.ravel(), minlength=G * (Q + 1)).reshape(G, Q + 1)
    den = np.bincount(key, weights=np.full(key.size, 0.5), minlength=G * (Q + 1)).reshape(G, Q + 1)
    num = np.cumsum(num[:, ::-1], axis=1)[:, ::-1][:, 1:]  # (G, Q): points with k_end > k
    den = np.cumsum(den[:, ::-1], axis=1)[:, ::-1][:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_zone = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    best = -np.inf
    for k in range(Q):
        col = per_zone[:, k]
        if not np.isfinite(col).any():
            continue  # nothing predicted: F undefined at this threshold (skipped, as the reference's max does)
        best = max(best, _f(float(np.nanmean(col)), _recall((s > ts[k]).astype(np.int8), a, b, edges)))
    return float(best) if np.isfinite(best) else 0.0
