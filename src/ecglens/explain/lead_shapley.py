"""Exact and sampled Shapley values of the leads, for all classes at once from forward passes.

Players are leads (or groups of leads: the six limb leads as one player); the value of a coalition is the
class probability with the leads outside it made absent. What "absent" means is the baseline:

- ``zeros``: a flat 0 mV lead. Off the data's distribution, and an impossible ECG when some limb leads stay
  (III = II - I to 1 uV in every recording).
- ``mean``: the background's mean record.
- ``conditional`` (the default where a background is known): an absent limb lead is rebuilt from the
  present limb leads whenever two of them are present (Einthoven's and Goldberger's laws: the six limb leads
  are linear combinations of any two), so every coalition is an ECG that could have been recorded; an absent
  limb lead with fewer than two present, and an absent precordial lead, becomes the background's mean.

Under ``conditional`` the limb leads are redundant players: once two are present the others add nothing, so
each limb lead's value is small however much the limb leads matter together. Treat them as one player
(``limb_as_one``) to read the limb leads' joint value.

Exact values use all 2^n coalitions; the sampled estimator averages marginal contributions along random
(antithetic) player orders. Both satisfy efficiency exactly: the values add up to f(all) - f(none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import factorial
from typing import overload

import numpy as np
import torch
from torch import nn

from ecglens.explain.attribution import evaluation_mode
from ecglens.leads import LEAD_NAMES

BASELINES = ("conditional", "mean", "zeros")
LIMB_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF")
LIMB_PLAYER = "limb leads"
_LIMB_IN_I_II = {
    "I": (1.0, 0.0),
    "II": (0.0, 1.0),
    "III": (-1.0, 1.0),
    "aVR": (-0.5, -0.5),
    "aVL": (1.0, -0.5),
    "aVF": (-0.5, 1.0),
}
"""Each limb lead as a combination of I and II (Einthoven: III = II - I; Goldberger: aVR = -(I + II)/2, ...)."""


def limb_coefficients(names: Sequence[str]) -> np.ndarray:
    """The limb leads ``names`` as rows of coefficients on (I, II): len(names) x 2."""
    return np.array([_LIMB_IN_I_II[name] for name in names])


@overload
def rebuild_limb_leads(present: np.ndarray, present_names: Sequence[str], wanted: Sequence[str]) -> np.ndarray: ...


@overload
def rebuild_limb_leads(present: torch.Tensor, present_names: Sequence[str], wanted: Sequence[str]) -> torch.Tensor: ...


def rebuild_limb_leads(
    present: np.ndarray | torch.Tensor, present_names: Sequence[str], wanted: Sequence[str]
) -> np.ndarray | torch.Tensor:
    """The limb leads ``wanted`` computed from at least two present limb leads (rows of ``present``).

    Two limb leads fix the frontal-plane vector (any two of the six are linearly independent); more are
    combined by least squares.
    """
    if len(present_names) < 2:
        raise ValueError("rebuilding limb leads needs two present limb leads")
    mix = limb_coefficients(wanted) @ np.linalg.pinv(limb_coefficients(present_names))
    if isinstance(present, torch.Tensor):
        return torch.as_tensor(mix, dtype=present.dtype, device=present.device) @ present
    return mix @ present


@dataclass(frozen=True)
class LeadGame:
    """What a coalition of players feeds the model.

    Attributes:
        lead_names: the model's input leads.
        players: the leads each player holds (indices into ``lead_names``).
        player_names: a lead's name, or `LIMB_PLAYER`.
        baseline: one of `BASELINES`.
    """

    lead_names: tuple[str, ...]
    players: tuple[tuple[int, ...], ...]
    player_names: tuple[str, ...]
    baseline: str = "zeros"

    @classmethod
    def of(cls, lead_names: Sequence[str] = LEAD_NAMES, baseline: str = "zeros", limb_as_one: bool = False) -> LeadGame:
        """One player per lead, or the limb leads the model has as one player (``limb_as_one``)."""
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r}; choose from {', '.join(BASELINES)}")
        names = tuple(lead_names)
        limbs = tuple(i for i, name in enumerate(names) if name in LIMB_LEADS)
        if limb_as_one and limbs:
            others = tuple((i,) for i in range(len(names)) if i not in limbs)
            return cls(names, (limbs, *others), (LIMB_PLAYER, *(names[i] for (i,) in others)), baseline)
        return cls(names, tuple((i,) for i in range(len(names))), names, baseline)

    def lead_masks(self, masks: np.ndarray) -> np.ndarray:
        """Player masks (coalitions x players) as lead masks (coalitions x leads)."""
        out = np.zeros((len(masks), len(self.lead_names)), np.float32)
        for p, leads in enumerate(self.players):
            out[:, list(leads)] = masks[:, [p]]
        return out

    def inputs(self, x: torch.Tensor, masks: np.ndarray, background_mean: torch.Tensor | None) -> torch.Tensor:
        """The model inputs of coalitions (lead masks, coalitions x leads) of one record (leads x samples)."""
        if self.baseline == "zeros":
            base = torch.zeros_like(x)
        elif background_mean is None:
            raise ValueError(f"the {self.baseline!r} baseline needs a background set")
        else:
            base = background_mean.to(x)
        keep = torch.as_tensor(masks, dtype=x.dtype, device=x.device)[:, :, None]
        out = keep * x[None] + (1 - keep) * base[None]
        if self.baseline != "conditional":
            return out
        limbs = [i for i, name in enumerate(self.lead_names) if name in LIMB_LEADS]
        for row, mask in enumerate(masks):
            present = [i for i in limbs if mask[i] > 0]
            absent = [i for i in limbs if mask[i] == 0]
            if len(present) >= 2 and absent:
                out[row, absent] = rebuild_limb_leads(
                    x[present], [self.lead_names[i] for i in present], [self.lead_names[i] for i in absent]
                )
        return out


@torch.no_grad()
def _coalition_values(
    model: nn.Module,
    x: torch.Tensor,
    game: LeadGame,
    background_mean: torch.Tensor | None,
    masks: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Probabilities (coalitions x classes) of one record (leads x samples) under player masks."""
    out = []
    device = next(model.parameters()).device
    x = x.to(device)
    lead_masks = game.lead_masks(masks)
    for start in range(0, len(masks), batch_size):
        inputs = game.inputs(x, lead_masks[start : start + batch_size], background_mean)
        out.append(torch.sigmoid(model(inputs)).float().cpu().numpy())
    return np.concatenate(out)


def _game(
    x: torch.Tensor, baseline: torch.Tensor | None, game: LeadGame | None
) -> tuple[LeadGame, torch.Tensor | None]:
    """The game to play: ``game`` as given, else one player per lead against ``baseline`` (a tensor; zeros when
    None), as before games existed."""
    if game is not None:
        return game, baseline
    names = LEAD_NAMES if x.shape[0] == len(LEAD_NAMES) else tuple(f"lead {i}" for i in range(x.shape[0]))
    return LeadGame(
        names, tuple((i,) for i in range(x.shape[0])), names, "zeros" if baseline is None else "mean"
    ), baseline


def exact_lead_shapley(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor | None = None,
    batch_size: int = 128,
    game: LeadGame | None = None,
) -> np.ndarray:
    """Exact Shapley values of one record's players: players x classes.

    Args:
        model: the classifier (logits; probabilities are explained).
        x: one record, leads x samples.
        baseline: the background's mean record (leads x samples), for the ``mean`` and ``conditional`` games;
            without ``game``, what an absent lead becomes (zeros when None).
        batch_size: coalitions per forward pass.
        game: the players and baseline (`LeadGame`); default one player per lead.
    """
    game, baseline = _game(x, baseline, game)
    n = len(game.players)
    codes = np.arange(2**n)
    masks = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float32)
    with evaluation_mode(model):
        values = _coalition_values(model, x, game, baseline, masks, batch_size)
    sizes = masks.sum(axis=1).astype(int)
    weights = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)])
    shapley = np.zeros((n, values.shape[1]))
    for player in range(n):
        without = codes[(codes >> player) & 1 == 0]
        gains = values[without | (1 << player)] - values[without]
        shapley[player] = (weights[sizes[without]][:, None] * gains).sum(0)
    return shapley


def sampled_lead_shapley(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor | None = None,
    n_permutations: int = 16,
    seed: int = 0,
    batch_size: int = 128,
    game: LeadGame | None = None,
) -> np.ndarray:
    """Permutation-sampling estimate of the players' Shapley values (players x classes), antithetic pairs.

    Each order costs n + 1 forward passes (shared by all classes) and its contributions add up to
    f(all) - f(none) exactly, so efficiency holds for the estimate too. Arguments as `exact_lead_shapley`.
    """
    game, baseline = _game(x, baseline, game)
    n = len(game.players)
    rng = np.random.default_rng(seed)
    orders = []
    for _ in range((n_permutations + 1) // 2):
        order = rng.permutation(n)
        orders += [order, order[::-1]]
    orders = orders[:n_permutations]
    masks = []
    for order in orders:
        mask = np.zeros(n, np.float32)
        masks.append(mask.copy())
        for player in order:
            mask[player] = 1
            masks.append(mask.copy())
    with evaluation_mode(model):
        values = _coalition_values(model, x, game, baseline, np.array(masks), batch_size)
    values = values.reshape(len(orders), n + 1, -1)
    shapley = np.zeros((n, values.shape[2]))
    for k, order in enumerate(orders):
        contributions = np.diff(values[k], axis=0)
        shapley[order] += contributions
    return shapley / len(orders)
