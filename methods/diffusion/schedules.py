"""Schedules: the walk over respaced indices a sampler takes (which levels, in which order).

A schedule is a list of respaced indices, first the start level, last ``-1`` (the clean
image); a step to a lower index is one network evaluation (a reverse step), a step to a
higher index a forward jump. :func:`plain_schedule` descends once; :func:`repaint_schedule`
is RePaint's resampling walk (Lugmayr et al. 2022, Sec. 4.2); :func:`sdedit_schedule` cuts a
schedule for an SDEdit start (Meng et al. 2022); :func:`schedule_nfe` counts its network
evaluations.
"""

from __future__ import annotations

from typing import Sequence

from inpaintbench.core.errors import InputError

__all__ = ["plain_schedule", "repaint_schedule", "schedule_nfe", "sdedit_schedule"]


def plain_schedule(num_steps: int) -> list[int]:
    """Plain descent ``[t_T - 1, ..., 0, -1]``: one reverse step per respaced index."""
    return list(range(num_steps - 1, -2, -1))


def repaint_schedule(t_T: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """The resampling schedule of RePaint (Lugmayr et al. 2022, Sec. 4.2 and Alg. 1).

    Starting at respaced index ``t_T - 1`` the chain walks down one index at a time; on
    reaching a multiple of ``jump_length`` below ``t_T - jump_length`` it jumps back up
    ``jump_length`` indices (one forward-diffusion step each) and walks down again, and this
    is done ``jump_n_sample - 1`` times per such point (the paper's ``j`` and ``r``;
    ``r = 1`` is :func:`plain_schedule`, no resampling).

    Args:
        t_T: number of respaced diffusion steps (>= 1).
        jump_length: ``j`` (>= 1).
        jump_n_sample: ``r`` (>= 1).

    Returns:
        The visited indices, first the start state ``t_T - 1``, last ``-1`` (the clean image).
        A step from ``a`` to ``b < a`` is one network evaluation (denoising), a step to
        ``b > a`` is forward noising. The number of denoising steps is
        ``t_T + (r - 1) * j * len(range(0, t_T - j, j))``.

    >>> repaint_schedule(4, 2, 2)
    [3, 2, 1, 0, 1, 2, 1, 0, -1]
    """
    if t_T < 1 or jump_length < 1 or jump_n_sample < 1:
        raise InputError(
            f"t_T, jump_length and jump_n_sample must be >= 1, got {t_T}, {jump_length}, {jump_n_sample}"
        )
    jumps = {point: jump_n_sample - 1 for point in range(0, t_T - jump_length, jump_length)}
    t = t_T - 1
    visited = [t]
    while t >= 0:
        t -= 1
        visited.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                visited.append(t)
    return visited


def sdedit_schedule(schedule: Sequence[int], num_steps: int, strength: float) -> list[int]:
    """SDEdit start (Meng et al. 2022): the suffix of ``schedule`` from respaced index
    ``max(round(strength * t_T) - 1, 0)``; the loop then starts from the input noised to that
    index instead of pure noise.

    Args:
        schedule: a schedule over ``num_steps`` indices (:func:`repaint_schedule`...).
        num_steps: ``t_T``.
        strength: in ``(0, 1]``; 1 returns ``schedule`` unchanged.
    """
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength must lie in (0, 1], got {strength}")
    if strength == 1.0:
        return list(schedule)
    start = max(round(strength * num_steps) - 1, 0)
    return list(schedule[list(schedule).index(start):])


def schedule_nfe(schedule: Sequence[int]) -> int:
    """Network evaluations of a schedule (its downward steps)."""
    return sum(1 for a, b in zip(schedule[:-1], schedule[1:]) if b < a)
