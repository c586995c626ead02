"""Import and export ReLU networks as ``torch.nn.Sequential`` (torch stays optional).

Only plain fully connected ReLU networks map to the project's weights format
``[(W_1, b_1), ..., (W_L, b_L)]`` (``W_l`` of shape ``(n_l, n_{l-1})``, hidden ReLU, affine
output): a ``Sequential`` of ``Linear, ReLU, Linear, ReLU, ..., Linear`` (nested
``Sequential`` containers are flattened).  Any other layer, a missing ReLU between two
``Linear`` layers or a ReLU after the last ``Linear`` is refused with a one-line
:class:`~unrectify.formulations.errors.InputError` naming the layer.  torch is imported on first use;
without it a one-line :class:`TorchUnavailableError` (an ``ImportError``) says how to install it.
Weights are copied to float64 numpy arrays (exact for float32 models).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from unrectify.formulations.errors import InputError, TorchUnavailableError
from unrectify.formulations.fixed_weight import FixedNetwork
from unrectify.formulations.problem import TrainingProblem
from unrectify.formulations.validation import check_weights

Weights = list[tuple[np.ndarray, np.ndarray]]

INSTALL_HINT = "pip install torch==2.13.0 (the CPU build; a looser spec downloads a multi-GB CUDA build)"


def import_torch() -> Any:
    """Import torch or raise a one-line :class:`TorchUnavailableError` with the install command."""
    try:
        import torch
    except ModuleNotFoundError:
        raise TorchUnavailableError(f"this function needs torch: {INSTALL_HINT}") from None
    return torch


def _plain(module, cls) -> bool:
    """``module`` is a ``cls`` that computes what ``cls`` computes: a subclass with its own
    ``forward`` could compute anything, so it is not read as one."""
    return isinstance(module, cls) and type(module).forward is cls.forward


def _hooked(module) -> bool:
    """Forward hooks change what a module computes; they are not part of the weights."""
    return any(getattr(module, name, None) for name in ("_forward_hooks", "_forward_pre_hooks"))


def _flatten(module, torch) -> Iterable:
    # _modules keeps a module used twice (children() yields it once): Sequential runs it twice
    for child in [m for m in module._modules.values() if m is not None]:
        if isinstance(child, torch.nn.modules.lazy.LazyModuleMixin) and child.has_uninitialized_params():
            raise InputError(f"{type(child).__name__} is uninitialised (a lazy module): run one forward pass first")
        if _hooked(child):
            raise InputError(f"{type(child).__name__} has forward hooks, which the weights do not carry: "
                             f"remove them to export the network")
        if isinstance(child, torch.nn.Sequential):
            if not _plain(child, torch.nn.Sequential):
                raise InputError(f"{type(child).__name__} overrides Sequential.forward: only plain Sequential "
                                 f"containers map to a ReLU network")
            yield from _flatten(child, torch)
        else:
            yield child


def _linear_weights(layer, i: int, torch) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of a Linear as float64 numpy copies; weights that are not real numbers held in
    memory (complex, integer, on the meta device, uninitialised lazy) are refused by name."""
    params = [p for p in (layer.weight, layer.bias) if p is not None]
    if any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in params):
        raise InputError(f"layer {i} (Linear) is uninitialised (a lazy module): run one forward pass first")
    for p in params:
        if not p.dtype.is_floating_point:
            raise InputError(f"layer {i} (Linear) has {p.dtype} weights; a ReLU network needs real floating-point weights")
        if p.device.type == "meta":
            raise InputError(f"layer {i} (Linear) has weights on the meta device (no values)")
    W = layer.weight.detach().cpu().to(torch.float64).numpy().copy()
    b = (layer.bias.detach().cpu().to(torch.float64).numpy().copy() if layer.bias is not None
         else np.zeros(W.shape[0]))
    return W, b


def from_torch(seq) -> Weights:
    """Weights ``[(W, b), ...]`` (float64 copies) of a ``Sequential(Linear, ReLU, ..., Linear)``."""
    torch = import_torch()
    if not isinstance(seq, torch.nn.Sequential):
        raise InputError(f"expected a torch.nn.Sequential, got {type(seq).__name__}")
    if not _plain(seq, torch.nn.Sequential):
        raise InputError(f"{type(seq).__name__} overrides Sequential.forward: only a plain Sequential maps to a ReLU network")
    if _hooked(seq) or torch.nn.modules.module._global_forward_hooks \
            or torch.nn.modules.module._global_forward_pre_hooks:
        raise InputError("the network has forward hooks, which the weights do not carry: remove them to export it")
    layers = list(_flatten(seq, torch))
    if not layers:
        raise InputError("the Sequential is empty")
    weights: Weights = []
    expect_linear = True
    for i, layer in enumerate(layers):
        kind = type(layer).__name__
        base = next((c for c in (torch.nn.Linear, torch.nn.ReLU) if isinstance(layer, c)), None)
        if base is not None and not _plain(layer, base):
            raise InputError(f"layer {i} ({kind}) overrides forward: only plain Linear and ReLU layers map to a ReLU network")
        if isinstance(layer, torch.nn.Linear):
            if not expect_linear:
                raise InputError(f"layer {i} ({kind}) follows a Linear without a ReLU in between; "
                                 f"hidden layers must be Linear followed by ReLU")
            W, b = _linear_weights(layer, i, torch)
            if weights and W.shape[1] != weights[-1][0].shape[0]:
                raise InputError(f"layer {i} (Linear) takes {W.shape[1]} inputs but the previous Linear "
                                 f"gives {weights[-1][0].shape[0]}")
            weights.append((W, b))
            expect_linear = False
        elif isinstance(layer, torch.nn.ReLU):
            if expect_linear:
                raise InputError(f"layer {i} (ReLU) must follow a Linear layer")
            expect_linear = True
        else:
            raise InputError(f"layer {i} ({kind}) is not supported: only Linear and ReLU layers map to a ReLU network")
    if expect_linear:
        raise InputError(f"layer {len(layers) - 1} (ReLU) ends the network: the output layer must be an affine Linear")
    return check_weights(weights, name="torch model weights")   # finite, chaining shapes


def _dtype(torch, dtype):
    if dtype in ("float64", "double", torch.float64):
        return torch.float64
    if dtype in ("float32", "float", torch.float32):
        return torch.float32
    raise InputError(f"unsupported dtype {dtype!r}; choose float64 or float32")


def to_torch(weights: Sequence[tuple[np.ndarray, np.ndarray]], dtype: Any = "float64"):
    """``Sequential(Linear, ReLU, ..., Linear)`` holding ``weights`` in ``dtype``
    (``"float64"`` or ``"float32"``; gurobi-machinelearning needs float32)."""
    torch = import_torch()
    net = FixedNetwork(weights)   # validates shapes and finiteness
    dt = _dtype(torch, dtype)
    mods: list = []
    L = net.n_layers
    for l, (W, b) in enumerate(net.weights, start=1):
        lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if l < L:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def load_state_dict(path: str) -> Weights:
    """Weights ``[(W, b), ...]`` from a file saved with ``torch.save(seq.state_dict(), path)``
    for a ``Sequential(Linear, ReLU, ..., Linear)``.

    Files are data, never code: ``torch.load(..., weights_only=True)`` refuses anything but
    tensors and plain containers (a pickled module or object fails with a one-line
    :class:`InputError`).  Keys ``"<i>.weight"`` / ``"<i>.bias"`` are ordered by ``i``; the
    result goes through the package's weights validator (shapes chain, finite values)."""
    import os

    torch = import_torch()
    if not os.path.isfile(path):
        raise InputError(f"state dict file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # UnpicklingError, RuntimeError (not a torch file), EOFError ...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot load {path} as a torch state dict ({type(exc).__name__}: {msg[:160]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise InputError(f"{path} does not hold a state dict (a mapping of parameter names to tensors)")
    layers: dict[int, dict[str, Any]] = {}
    for key, value in state.items():
        idx, _, kind = key.rpartition(".")
        if kind not in ("weight", "bias") or not idx.isdigit() or not isinstance(value, torch.Tensor):
            raise InputError(f"{path}: unexpected entry {key!r}; expected '<layer>.weight' and '<layer>.bias' tensors "
                             f"of a Sequential of Linear and ReLU layers")
        layers.setdefault(int(idx), {})[kind] = value.detach().cpu().to(torch.float64).numpy()
    pairs = []
    for i in sorted(layers):
        if "weight" not in layers[i]:
            raise InputError(f"{path}: layer {i} has a bias but no weight")
        W = layers[i]["weight"]
        pairs.append((W, layers[i].get("bias", np.zeros(W.shape[0] if W.ndim else 0))))
    return check_weights(pairs, name=f"{path} weights")


def problem_from_torch(seq, X, Y, loss: str = "mse", weight_bound: float | None = 2.0,
                       freeze: Sequence[int] = ()) -> TrainingProblem:
    """A :class:`TrainingProblem` with the architecture of ``seq`` on data ``(X, Y)``.

    ``freeze`` lists 1-based layers whose weights are taken from ``seq`` as data (e.g.
    ``freeze=(2,)`` trains the first layer under the torch read-out); the other layers are
    unknowns in the weight box ``|W|, |b| <= weight_bound``.
    """
    weights = from_torch(seq)
    widths = (weights[0][0].shape[1],) + tuple(W.shape[0] for W, _ in weights)
    frozen = {}
    for l in freeze:
        if not 1 <= int(l) <= len(weights):
            raise InputError(f"freeze layer {l} outside 1..{len(weights)}")
        frozen[int(l)] = weights[int(l) - 1]
    return TrainingProblem(X, Y, widths, loss=loss, weight_bound=weight_bound, frozen=frozen)


def fixed_network_from_torch(seq, input_lo=0.0, input_hi=1.0) -> FixedNetwork:
    """A :class:`~unrectify.formulations.fixed_weight.FixedNetwork` of ``seq`` on the box ``[input_lo, input_hi]``."""
    return FixedNetwork(from_torch(seq), input_lo, input_hi)


__all__ = ["TorchUnavailableError", "fixed_network_from_torch", "from_torch", "import_torch", "load_state_dict",
           "problem_from_torch", "to_torch"]
