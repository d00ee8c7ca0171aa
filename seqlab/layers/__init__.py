"""The supported Keras layers; importing this package fills the registry."""

from . import attention  # noqa: F401
from . import conv  # noqa: F401
from . import core  # noqa: F401
from . import merging  # noqa: F401
from . import normalization  # noqa: F401
from . import recurrent  # noqa: F401
from . import reshaping  # noqa: F401
from . import wrappers  # noqa: F401
