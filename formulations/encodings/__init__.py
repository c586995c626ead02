"""Built-in ReLU encodings; importing this package registers them."""

from .base import DOMAINS, Encoding, available_encodings, get_encoding, register_encoding
from .bigm import BigM
from .complementarity import Complementarity
from .sign import Sign
from .split import Split

BUILTIN = ("split", "sign", "bigm", "complementarity")

__all__ = ["DOMAINS", "BUILTIN", "Encoding", "available_encodings", "get_encoding", "register_encoding",
           "Split", "Sign", "BigM", "Complementarity"]
