"""octreport: batch reports for convolutional image classifiers (retinal OCT first).

Heavy libraries (TensorFlow, matplotlib, WeasyPrint) are imported lazily, so importing this
package and running ``octreport --help`` stay instant.
"""

from octreport._version import __version__

__all__ = ["__version__"]
