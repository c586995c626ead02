"""Solver-free formulations: problem spec, ReLU encodings and the declarative model."""

from . import status
from .builder import TrainingModel, build_training_model
from .certificate import Certificate, certify, certify_split_iterate, gate, losses_agree
from .encodings import (BUILTIN, DOMAINS, Encoding, available_encodings, get_encoding,
                        register_encoding)
from .errors import (InputError, LicenseLimitError, ModelClassError, ResourceLimitError, SolverUnavailableError,
                     UnknownNameError, UnrectifyError)
from .model import Model
from .network import forward, predict, relu
from .problem import LOSSES, TrainingProblem, loss_value, random_instance
from .status import STATUSES

__all__ = [
    "BUILTIN", "DOMAINS", "LOSSES", "STATUSES", "Certificate", "Encoding", "InputError", "LicenseLimitError", "Model",
    "ModelClassError", "ResourceLimitError", "SolverUnavailableError", "TrainingModel", "TrainingProblem",
    "UnknownNameError", "UnrectifyError", "available_encodings", "build_training_model", "certify",
    "certify_split_iterate", "gate", "losses_agree", "predict", "status",
    "forward", "get_encoding", "loss_value", "random_instance", "register_encoding", "relu",
]
