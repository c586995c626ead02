"""Solver-free formulations: problem spec, ReLU encodings and the declarative model."""

from .builder import TrainingModel, build_training_model
from .encodings import (BUILTIN, DOMAINS, Encoding, available_encodings, get_encoding,
                        register_encoding)
from .errors import (InputError, LicenseLimitError, ModelClassError, ResourceLimitError, SolverUnavailableError,
                     UnknownNameError, UnrectifyError)
from .model import Model
from .problem import LOSSES, TrainingProblem, forward, loss_value, random_instance, relu

__all__ = [
    "BUILTIN", "DOMAINS", "LOSSES", "Encoding", "InputError", "LicenseLimitError", "Model",
    "ModelClassError", "ResourceLimitError", "SolverUnavailableError", "TrainingModel", "TrainingProblem",
    "UnknownNameError", "UnrectifyError", "available_encodings", "build_training_model",
    "forward", "get_encoding", "loss_value", "random_instance", "register_encoding", "relu",
]
