r"""Generator-prior decoder: recovery through a trained ReLU generator, solved exactly.

Beyond the paper (docs/cs_results.md).  ``fit`` trains a small autoencoder on the training
images ``S`` (the measurements are not needed): an encoder ``n -> ... -> k`` ending in a
sigmoid, so every latent code lies in the box ``[0, 1]^k``, and a ReLU generator

    G(w) = W_L relu(... relu(W_1 w + b_1) ...) + b_L,      G: [0, 1]^k -> R^n,

trained together by Adam on the mean squared reconstruction error (torch, float32, seeded).
``reconstruct`` then decodes each measurement ``y`` as ``G(w*)`` with

    w* = argmin_{w in [0,1]^k} || Phi G(w) - y ||_1 .

``Phi G`` is itself a fixed-weight ReLU network (its last layer is ``(Phi W_L, Phi b_L)``), so
the problem is the ``l1`` inversion of :mod:`unrectify.formulations.fixed_weight`:

* ``solver="exact"``: a MILP (``encoding="bigm"``, binary activations, HiGHS by default) or the
  split form (``encoding="split"``, SCIP), one solve per image with ``time_limit`` seconds;
  ``report["certified"]`` counts the images solved to certified global optimality (the model's
  output equal to the forward pass at ``w*``);
* ``solver="gd"``: projected Adam on ``w`` from ``gd_starts`` uniform starts per image
  (subgradient of the ``l1`` loss, vectorised over images and starts), the best iterate kept.

The exact path is for small generators (a few dozen hidden units) and few test images.
:meth:`PriorDecoder.latent_exact` and :meth:`PriorDecoder.latent_gd` return the latent codes and
objectives of both solvers for comparison; :meth:`PriorDecoder.set_generator` installs given
generator weights instead of training (no torch needed then).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from unrectify.formulations.network import forward, input_vjp, predict

from ..errors import CSInputError
from .adam import import_torch
from .base import Decoder, register_decoder
from .mlp import Weights, check_weights

SOLVERS = ("exact", "gd")


def _check_exact_route(encoding: str, domain: str, backend: str, bounds: str) -> None:
    """Unknown encoding, domain, backend or bound method of the exact inversion: refused when the
    decoder is built, not when the first image is solved."""
    from unrectify.backends import backend_names
    from unrectify.formulations import get_encoding
    from unrectify.formulations.fixed_network import BOUND_METHODS

    backends, bound_methods = ["auto", *backend_names()], [*BOUND_METHODS, "lp"]

    try:
        get_encoding(encoding).check_domain(domain)
    except ValueError as exc:
        raise CSInputError(f"prior {exc}") from None
    if backend not in backends:
        raise CSInputError(f"unknown prior backend {backend!r}; valid: {', '.join(backends)}")
    if bounds not in bound_methods:
        raise CSInputError(f"unknown prior bounds {bounds!r}; valid: {', '.join(bound_methods)}")


@register_decoder("prior")
class PriorDecoder(Decoder):
    """ReLU generator prior. Options: ``latent`` (k, default 6), ``hidden`` (generator hidden
    widths, default (24,); the encoder mirrors them), ``epochs``, ``batch_size``, ``lr``, ``seed``,
    ``solver`` (``exact`` | ``gd``), ``encoding`` (``bigm`` | ``split`` | ...), ``domain``,
    ``backend`` (``auto``: HiGHS for bigm, SCIP for split), ``time_limit`` (seconds per image),
    ``bounds`` (``crown`` | ``interval``), ``gd_starts``, ``gd_steps``, ``gd_lr``, ``progress``."""

    name = "prior"
    learned = True
    budget_option = None      # its time_limit is per image solve; training runs for ``epochs``
    requires = ("torch",)

    def __init__(
        self, Phi: np.ndarray, *, latent: int = 6, hidden: Sequence[int] = (24,), epochs: int = 150,
        batch_size: int = 64, lr: float = 3e-3, seed: int = 0, solver: str = "exact", encoding: str = "bigm",
        domain: str = "binary", backend: str = "auto", time_limit: float = 10.0, bounds: str = "crown",
        gd_starts: int = 8, gd_steps: int = 300, gd_lr: float = 0.05, progress: bool = False,
        shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        hidden = tuple(int(h) for h in hidden)
        if int(latent) < 1 or any(h < 1 for h in hidden):
            raise CSInputError(f"prior latent and hidden widths must be positive, got {latent}, {hidden}")
        if solver not in SOLVERS:
            raise CSInputError(f"unknown prior solver {solver!r}; choose exact or gd")
        if int(epochs) < 1 or int(batch_size) < 1 or int(gd_starts) < 1 or int(gd_steps) < 1:
            raise CSInputError("prior epochs, batch_size, gd_starts and gd_steps must be >= 1")
        for name, v in (("lr", lr), ("gd_lr", gd_lr), ("time_limit", time_limit)):
            if not (np.isfinite(v) and v > 0):
                raise CSInputError(f"prior {name} must be a positive number, got {v!r}")
        if solver == "exact":
            _check_exact_route(encoding, domain, backend, bounds)
        self.latent, self.hidden = int(latent), hidden
        self.epochs, self.batch_size, self.lr, self.seed = int(epochs), int(batch_size), float(lr), int(seed)
        self.solver, self.encoding, self.domain, self.backend = solver, encoding, domain, backend
        self.time_limit, self.bounds = float(time_limit), bounds
        self.gd_starts, self.gd_steps, self.gd_lr = int(gd_starts), int(gd_steps), float(gd_lr)
        self.progress = bool(progress)
        self.report: dict[str, Any] = {}

    # ------------------------------------------------------------------ generator
    def set_generator(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> PriorDecoder:
        """Install generator weights ``[(W_1, b_1), ...]`` mapping ``R^k -> R^n``; marks fitted."""
        w = check_weights(weights, self.latent)
        if w[-1][0].shape[0] != self.n:
            raise CSInputError(f"generator output width {w[-1][0].shape[0]} does not match n = {self.n}")
        self.generator_ = w
        self.n_features_in_ = self.m
        return self

    def generate(self, W: np.ndarray) -> np.ndarray:
        """``G(w)`` for every row of ``W`` ``(N, k)``."""
        return _forward(self._require(), np.asarray(W, dtype=float))

    def _require(self) -> Weights:
        if getattr(self, "generator_", None) is None:
            raise CSInputError("the prior decoder has no generator: call fit or set_generator first")
        return self.generator_

    def measured_network(self) -> Weights:
        """Weights of ``Phi G`` (last layer ``(Phi W_L, Phi b_L)``), a ReLU network ``R^k -> R^m``."""
        g = self._require()
        W, b = g[-1]
        return g[:-1] + [(self.Phi @ W, self.Phi @ b)]

    def _fit(self, Y: np.ndarray, S: np.ndarray, groups: np.ndarray | None = None) -> None:
        torch = import_torch("the prior decoder (to train its generator)")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)   # tiny networks: threads only add overhead (10x on a busy 2-core machine)
        try:
            self._train(torch, S)
        finally:
            torch.set_num_threads(threads)

    def _train(self, torch: Any, S: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        St = torch.from_numpy(S.astype(np.float32))
        enc_w = [self.n, *reversed(self.hidden), self.latent]
        dec_w = [self.latent, *self.hidden, self.n]
        enc: list[Any] = []
        for i in range(len(enc_w) - 1):
            enc += [torch.nn.Linear(enc_w[i], enc_w[i + 1]),
                    torch.nn.ReLU() if i < len(enc_w) - 2 else torch.nn.Sigmoid()]
        dec: list[Any] = []
        for i in range(len(dec_w) - 1):
            dec.append(torch.nn.Linear(dec_w[i], dec_w[i + 1]))
            if i < len(dec_w) - 2:
                dec.append(torch.nn.ReLU())
        encoder, decoder = torch.nn.Sequential(*enc), torch.nn.Sequential(*dec)
        with torch.no_grad():
            dec[-1].bias.copy_(St.mean(dim=0))
        params = list(encoder.parameters()) + list(decoder.parameters())
        opt = torch.optim.Adam(params, lr=self.lr)
        N = St.shape[0]
        self.loss_history_ = []
        from tqdm.auto import tqdm

        for _ in tqdm(range(self.epochs), desc="prior generator", disable=not self.progress, leave=False):
            perm = torch.randperm(N, generator=gen)
            total = 0.0
            for start in range(0, N, self.batch_size):
                idx = perm[start: start + self.batch_size]
                opt.zero_grad()
                loss = torch.mean((decoder(encoder(St[idx])) - St[idx]) ** 2)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            self.loss_history_.append(total / N)
        linears = [m for m in dec if isinstance(m, torch.nn.Linear)]
        self.set_generator([(m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy())
                            for m in linears])

    # ------------------------------------------------------------------ latent solvers
    def objectives(self, W: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``||Phi G(w_i) - y_i||_1`` for every row (forward pass in numpy)."""
        return np.abs(_forward(self.measured_network(), W) - Y).sum(axis=1)

    def latent_exact(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Exact latent codes, one solve per measurement: ``(W (N, k), objectives (N,), info)``.

        ``info`` has per-image ``status``, ``certified``, ``bound``, ``seconds`` and the count of
        certified images; an image without an incumbent falls back to the ``gd`` answer."""
        from unrectify.formulations.fixed_weight import FixedNetwork
        from unrectify.fixed import invert

        Y = self._check_Y(Y)
        net = FixedNetwork(self.measured_network(), 0.0, 1.0)
        N = Y.shape[0]
        W = np.zeros((N, self.latent))
        status, certified, bound, seconds = [], [], [], []
        missing = []
        for i in range(N):   # one MILP per image: each gets its own time limit and certificate
            sol = invert(net, Y[i], "l1", self.encoding, self.domain, self.backend, self.time_limit,
                         bounds=self.bounds)
            status.append(sol.status)
            certified.append(bool(sol.certified_optimal))
            bound.append(sol.bound)
            seconds.append(sol.seconds)
            if sol.input is None:
                missing.append(i)
            else:
                W[i] = np.clip(sol.input, 0.0, 1.0)
        if missing:
            W[missing] = self.latent_gd(Y[missing])[0]
        info = {"status": status, "certified": certified, "n_certified": int(sum(certified)), "bound": bound,
                "seconds": seconds, "fallback_gd": missing}
        return W, self.objectives(W, Y), info

    def latent_gd(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Projected Adam on ``w in [0,1]^k`` from ``gd_starts`` uniform starts per measurement,
        all images and starts at once; returns the best iterate per image."""
        Y = self._check_Y(Y)
        layers = self.measured_network()
        N, S, k = Y.shape[0], self.gd_starts, self.latent
        rng = np.random.default_rng(self.seed)
        w = rng.uniform(0.0, 1.0, (N * S, k))
        Yr = np.repeat(Y, S, axis=0)
        m1, m2 = np.zeros_like(w), np.zeros_like(w)
        b1, b2, eps = 0.9, 0.999, 1e-8
        best_w, best_f = w.copy(), np.full(N * S, np.inf)
        for t in range(1, self.gd_steps + 1):
            f, g = _l1_value_and_grad(layers, w, Yr)
            better = f < best_f
            best_f = np.where(better, f, best_f)
            best_w[better] = w[better]
            m1 = b1 * m1 + (1 - b1) * g
            m2 = b2 * m2 + (1 - b2) * g * g
            lr = self.gd_lr * 0.5 * (1 + np.cos(np.pi * (t - 1) / self.gd_steps))   # cosine decay
            w = np.clip(w - lr * (m1 / (1 - b1 ** t)) / (np.sqrt(m2 / (1 - b2 ** t)) + eps), 0.0, 1.0)
        f = _l1_value_and_grad(layers, w, Yr)[0]
        better = f < best_f
        best_f = np.where(better, f, best_f)
        best_w[better] = w[better]
        best_f = best_f.reshape(N, S)
        pick = best_f.argmin(axis=1)
        Wb = best_w.reshape(N, S, k)[np.arange(N), pick]
        return Wb, best_f[np.arange(N), pick], {"starts": S, "steps": self.gd_steps}

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        self._require()
        t0 = time.perf_counter()
        if self.solver == "exact":
            W, obj, info = self.latent_exact(Y)
        else:
            W, obj, info = self.latent_gd(Y)
        self.report = {"solver": self.solver, "objectives": obj, "latent": W,
                       "seconds": time.perf_counter() - t0, **info}
        return self.generate(W)


def _forward(weights: Weights, X: np.ndarray) -> np.ndarray:
    return predict(weights, X, dtype=None)   # the one forward pass (unrectify.formulations.network)


def _l1_value_and_grad(weights: Weights, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row values ``||f(x) - y||_1`` and a subgradient with respect to ``x`` (backpropagation)."""
    zs, _ = forward(weights, X, dtype=None)   # the one forward pass (unrectify.formulations.network)
    r = zs[-1] - Y
    return np.abs(r).sum(axis=1), input_vjp(weights, zs, np.sign(r))
