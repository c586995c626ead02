"""Tunable parameters of the ALM solver, with their defaults and validation.

The defaults follow the measurements in docs/alm.md: a loose start
(``mu0 = 10``), slow tightening (``mu *= 0.5`` after a failed outer step), many inner sweeps,
and starts from the forward pass of weights whose kinks lie inside the data range.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from unrectify.formulations.errors import InputError

DTYPES = ("float64", "float32")
STRATEGIES = ("random", "diverse", "hop")
METHODS = ("auto", "blocks", "reduced")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class ALMOptions:
    """Every knob of :func:`unrectify.backends.alm.solve_alm` (passed there as keyword arguments).

    Outer loop (Conn-Gould-Toint style; ``mu`` is the penalty *weight* ``1/rho``, smaller is
    stricter):

    * ``mu0`` initial penalty parameter; ``tau`` factor applied to ``mu`` after an outer step
      whose violation exceeds ``eta``; ``mu_min`` floor for ``mu``.
    * ``eta0`` initial feasibility target ``||C||_inf <= eta``; after a successful step
      ``eta <- max(eta * eta_decay, tol)``; after a failed one ``eta <- max(eta0 * (mu/mu0)**0.1, tol)``.
    * ``omega0`` initial inner stationarity target; success: ``omega <- max(omega * omega_decay,
      stat_tol)``; failure: ``omega <- max(omega0 * mu / mu0, stat_tol)``.
    * ``tol`` feasibility tolerance on ``||C||_inf``; ``stat_tol`` tolerance on the projected
      gradient of the augmented Lagrangian (per-sample scale, see ``state.stationarity``).
      Converged (status ``"local"``) means both hold.

    Inner loop: block-coordinate sweeps until the projected gradient is below ``omega``
    (checked every ``check_every`` sweeps), the relative decrease of L over ``check_every``
    sweeps falls below ``stall_rtol``, or ``max_inner`` sweeps.

    Polish (:mod:`unrectify.backends.alm.polish`): with ``polish`` the ALM phase of a restart ends as soon
    as ``||C||_inf <= polish_at``, and every restart ends with at most ``polish_iters`` iterations
    of SLSQP (networks with at most ``polish_max_weights`` weights; pre-activations within
    ``polish_deg * ||C||_inf`` of 0 are held at 0) or L-BFGS-B (larger ones) on the forward loss
    in the box, followed by the forward-pass iterate with backpropagated KKT multipliers (exactly
    feasible; converged when its projected gradient is ``<= stat_tol``).  Without it the ALM runs
    until its own tolerances are met.  A restart stopped by the time limit is not polished; the
    polish itself stops at the time limit.  Networks with at most ``polish_max_weights`` weights also
    get up to ``pattern_moves`` moves of a local search over activation patterns
    (:mod:`unrectify.backends.alm.patterns`: one sample moved across one kink, the pattern program solved
    by SLSQP, first improvement accepted) before the final refinement; 0 disables it.

    Restarts (:mod:`unrectify.backends.alm.init`): ``strategy`` picks the starts: ``"random"``
    (independent kink-in-data starts), ``"diverse"`` (kink quantiles stratified across restarts,
    first-layer orientation classes cycled across restarts, and among ``candidates`` starts the
    first whose activation pattern was not visited yet), ``"hop"`` (``"diverse"`` for the first
    ``explore`` fraction of the restarts, then perturbations of the incumbent: one hidden unit
    gets a new kink position or the opposite orientation).  Default ``"diverse"``: on 32
    certified N = 10 instances (seeds 0-31, widths 1,2,1, B = 2) best-of-10 reached the optimum
    on 31 with ``"diverse"`` and 26 with ``"hop"`` (the earlier default, tuned on 11 N = 6
    instances); docs/alm.md has the held-out check.

    Reduced method (:mod:`unrectify.backends.alm.reduced`, large networks): ``batch_size``
    samples per inner step, Adam step ``lr`` on the weights, constant or (``lr_schedule=
    "cosine"``) decayed as ``lr (1 + cos(pi f)) / 2`` with ``f`` the fraction of the budget used
    (the larger of elapsed / time limit of the ALM phase and outer / ``max_outer``), as the
    Adam decoders do; the other knobs are listed in docs/alm.md.
    """

    mu0: float = 10.0
    tau: float = 0.5
    mu_min: float = 1e-12
    eta0: float = 0.1
    eta_decay: float = 0.25
    omega0: float = 1.0
    omega_decay: float = 0.25
    tol: float = 1e-6
    stat_tol: float = 1e-6
    max_outer: int = 60
    max_inner: int = 100
    check_every: int = 10
    stall_rtol: float = 1e-12
    polish: bool = True
    polish_at: float = 1e-3
    polish_iters: int = 100
    polish_deg: float = 10.0
    polish_max_weights: int = 300
    pattern_moves: int = 10
    strategy: str = "diverse"
    candidates: int = 8
    explore: float = 0.5
    dtype: str = "float64"
    box_newton_dim: int = 64
    box_iters: int = 100
    method: str = "auto"
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"
    inner_epochs: int = 1
    outer_samples: int = 8192
    rho0: float = 1.0
    rho_growth: float = 10.0
    rho_max: float = 1e8
    feas_ratio: float = 0.5
    lam_max: float = 1e8
    d_damp: float = 1.0
    d_refresh: bool = True
    d_step: bool = True
    stall_window: int = 20
    stall_obj_rtol: float = 1e-3
    stall_viol_ratio: float = 0.5
    polish_share: float = 0.5

    def __post_init__(self) -> None:
        positive = ("mu0", "mu_min", "eta0", "omega0", "tol", "stat_tol", "polish_at", "polish_deg")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f"ALM option {name} must be a positive finite number, got {v!r}")
        for name in ("tau", "eta_decay", "omega_decay", "explore"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 1):
                raise InputError(f"ALM option {name} must be in (0, 1], got {v!r}")
        if self.tau >= 1:
            raise InputError(f"ALM option tau must be < 1 (mu must shrink after a failed step), got {self.tau!r}")
        for name in ("max_outer", "max_inner", "check_every", "candidates", "box_newton_dim", "box_iters",
                     "polish_iters", "polish_max_weights"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"ALM option {name} must be a positive integer, got {v!r}")
        if isinstance(self.pattern_moves, bool) or not isinstance(self.pattern_moves, int) or self.pattern_moves < 0:
            raise InputError(f"ALM option pattern_moves must be an integer >= 0, got {self.pattern_moves!r}")
        if not (isinstance(self.stall_rtol, (int, float)) and self.stall_rtol >= 0):
            raise InputError(f"ALM option stall_rtol must be >= 0, got {self.stall_rtol!r}")
        for name in ("polish",):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"ALM option {name} must be True or False, got {getattr(self, name)!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"ALM dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.method not in METHODS:
            raise InputError(f"ALM method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("lr", "rho0", "rho_max", "lam_max", "d_damp", "stall_obj_rtol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0) or (
                    name in ("lr", "rho0", "rho_max") and v == 0):
                raise InputError(f"ALM option {name} must be a finite number > 0 (>= 0 for lam_max, d_damp, "
                                 f"stall_obj_rtol), got {v!r}")
        if not (isinstance(self.rho_growth, (int, float)) and math.isfinite(self.rho_growth) and self.rho_growth > 1):
            raise InputError(f"ALM option rho_growth must be > 1, got {self.rho_growth!r}")
        for name in ("feas_ratio", "stall_viol_ratio", "polish_share"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v < 1):
                raise InputError(f"ALM option {name} must be in (0, 1), got {v!r}")
        for name in ("batch_size", "inner_epochs", "outer_samples", "stall_window"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"ALM option {name} must be a positive integer, got {v!r}")
        for name in ("d_refresh", "d_step"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"ALM option {name} must be True or False, got {getattr(self, name)!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"ALM lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.strategy not in STRATEGIES:
            raise InputError(f"ALM restart strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> ALMOptions:
        """Build from keyword arguments; an unknown name raises :class:`InputError`."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise InputError(f"unknown ALM option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**kwargs)  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        return asdict(self)
