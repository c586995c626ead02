"""torch.nn.Sequential import/export and a fixed-weight round trip."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from unrectify.formulations import InputError, TrainingProblem
from unrectify.fixed import invert, optimize_output
from unrectify.torch_io import (
    fixed_network_from_torch,
    from_torch,
    problem_from_torch,
    to_torch,
)

from .conftest import needs


def torch_net(widths, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    mods = []
    for i in range(len(widths) - 1):
        mods.append(torch.nn.Linear(widths[i], widths[i + 1], dtype=dtype))
        if i < len(widths) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def tforward(seq, X):
    p = next(seq.parameters())
    with torch.no_grad():
        return seq(torch.as_tensor(X, dtype=p.dtype)).double().numpy()


def test_from_and_to_torch_round_trip(rng):
    seq = torch_net((3, 7, 5, 2))
    w = from_torch(seq)
    assert [W.shape for W, _ in w] == [(7, 3), (5, 7), (2, 5)] and all(W.dtype == np.float64 for W, _ in w)
    X = rng.uniform(-1, 1, (20, 3))
    net = fixed_network_from_torch(seq, -1.0, 1.0)
    np.testing.assert_allclose(net.forward(X), tforward(seq, X), atol=1e-12)
    back = to_torch(w)
    np.testing.assert_allclose(tforward(back, X), tforward(seq, X), atol=1e-12)
    f32 = to_torch(w, dtype="float32")
    assert next(f32.parameters()).dtype == torch.float32
    np.testing.assert_allclose(tforward(f32, X), tforward(seq, X), atol=1e-5)
    # float32 models import exactly (float64 holds every float32)
    w32 = from_torch(f32)
    assert all(np.array_equal(a[0], a[0].astype(np.float32)) for a in w32)


def test_nested_sequential_and_no_bias():
    seq = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 3, bias=False), torch.nn.ReLU()),
                              torch.nn.Linear(3, 1))
    w = from_torch(seq)
    assert np.array_equal(w[0][1], np.zeros(3))


@pytest.mark.parametrize("mods, match", [
    ([torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)], r"layer 1 \(Tanh\) is not supported"),
    ([torch.nn.Linear(2, 3), torch.nn.ReLU()], r"layer 1 \(ReLU\) ends the network"),
    ([torch.nn.Linear(2, 3), torch.nn.Linear(3, 1)], r"layer 1 \(Linear\) follows a Linear"),
    ([torch.nn.ReLU(), torch.nn.Linear(3, 1)], r"layer 0 \(ReLU\) must follow"),
    ([torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(4, 1)], "takes 4 inputs"),
    ([torch.nn.Flatten(), torch.nn.Linear(3, 1)], r"layer 0 \(Flatten\)"),
    ([], "empty"),
])
def test_rejects_other_layers(mods, match):
    with pytest.raises(InputError, match=match):
        from_torch(torch.nn.Sequential(*mods))
    with pytest.raises(InputError, match="Sequential"):
        from_torch(torch.nn.Linear(2, 1))


class _ScaledLinear(torch.nn.Linear):
    def forward(self, x):
        return 2.0 * super().forward(x)


class _KeptLinear(torch.nn.Linear):
    """A subclass that computes what Linear computes (inherited forward)."""


class _SkipSequential(torch.nn.Sequential):
    def forward(self, x):
        return x + super().forward(x)


def test_rejects_layers_that_override_forward():
    """A subclass with its own forward may compute anything: refused, naming the layer."""
    with pytest.raises(InputError, match=r"layer 2 \(_ScaledLinear\) overrides forward"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), _ScaledLinear(3, 1)))
    with pytest.raises(InputError, match="_SkipSequential overrides Sequential.forward"):
        from_torch(_SkipSequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)))
    with pytest.raises(InputError, match="_SkipSequential overrides Sequential.forward"):
        from_torch(torch.nn.Sequential(_SkipSequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2)),
                                       torch.nn.ReLU(), torch.nn.Linear(2, 1)))
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), _KeptLinear(3, 1))
    assert len(from_torch(seq)) == 2


def test_reused_modules_hooks_and_weights_that_are_not_real_numbers():
    """A module used twice is run twice (children() would list it once); hooks and complex,
    meta-device or uninitialised weights are refused by name."""
    relu, lin = torch.nn.ReLU(), torch.nn.Linear(3, 3)
    w = from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3), relu, lin, relu, lin, relu, torch.nn.Linear(3, 1)))
    assert len(w) == 4 and np.array_equal(w[1][0], w[2][0])
    seq = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    handle = seq[2].register_forward_hook(lambda mod, inp, out: out + 100)
    with pytest.raises(InputError, match="forward hooks"):
        from_torch(seq)
    handle.remove()
    handle = seq.register_forward_pre_hook(lambda mod, inp: inp)
    with pytest.raises(InputError, match="forward hooks"):
        from_torch(seq)
    handle.remove()
    assert len(from_torch(seq)) == 2
    for layer, match in ((torch.nn.Linear(2, 1, dtype=torch.complex64), "complex64"),
                         (torch.nn.Linear(2, 1, device="meta"), "meta device"),
                         (torch.nn.LazyLinear(1), "uninitialised")):
        with pytest.raises(InputError, match=match):
            from_torch(torch.nn.Sequential(layer))


def test_problem_from_torch(rng):
    seq = torch_net((2, 3, 1))
    X, Y = rng.uniform(-1, 1, (5, 2)), rng.normal(size=(5, 1))
    p = problem_from_torch(seq, X, Y, loss="mae", weight_bound=3.0, freeze=(2,))
    assert isinstance(p, TrainingProblem) and p.widths == (2, 3, 1) and p.loss == "mae"
    np.testing.assert_array_equal(p.frozen[2][0], from_torch(seq)[1][0])
    # the torch weights are a feasible network of the problem: its loss is the torch loss
    pred = tforward(seq, X)
    assert p.forward_loss(from_torch(seq)) == pytest.approx(np.abs(pred - Y).mean())
    with pytest.raises(InputError, match="freeze layer 3"):
        problem_from_torch(seq, X, Y, freeze=(3,))


@needs("highs")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fixed_weight_solution_matches_torch_forward(dtype):
    seq = torch_net((3, 8, 8, 2), dtype=dtype, seed=1)
    net = fixed_network_from_torch(seq, 0.0, 1.0)
    sol = optimize_output(net, 1, "max", backend="highs", time_limit=30)
    assert sol.certified_optimal
    ref = tforward(to_torch(from_torch(seq)), sol.input[None, :])[0]   # float64 torch forward
    np.testing.assert_allclose(sol.output, ref, atol=1e-6)
    np.testing.assert_allclose(sol.forward_output, ref, atol=1e-12)
    inv = invert(net, [[0.1, -0.2], [0.0, 0.3]], "l1", backend="highs", time_limit=30)
    assert inv.certified_optimal
    np.testing.assert_allclose(inv.output, tforward(to_torch(from_torch(seq)), inv.input), atol=1e-6)


def test_missing_torch_is_a_one_line_import_error(monkeypatch):
    from unrectify.torch_io import TorchUnavailableError

    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch==2.13.0") as exc:
        to_torch([(np.ones((1, 2)), np.zeros(1))])
    assert isinstance(exc.value, TorchUnavailableError) and "\n" not in str(exc.value)
