"""edgecap: attention-based image captioners that run on small devices.

Layout follows the pipeline: ``edgecap.data`` → ``edgecap.models`` → ``edgecap.training``
→ ``edgecap.export`` → ``edgecap.runtime``. ``edgecap.runtime`` and ``edgecap.decoding``
import without TensorFlow.
"""

__version__ = "0.1.0"
