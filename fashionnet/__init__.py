"""fashionnet: the classic Keras Fashion-MNIST CNN assignment on Keras 3, any backend, exported to the edge."""

__version__ = "0.1.0"

from fashionnet.errors import FashionNetError  # noqa: E402

__all__ = ["__version__", "FashionNetError"]
