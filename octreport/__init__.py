"""octreport: batch reports for convolutional image classifiers (retinal OCT first).

    import octreport
    outcome = octreport.make_report(model, "path/to/OCT2017")   # an in-memory keras.Model or a file
    print(outcome.pdf_path)

Heavy libraries (TensorFlow, matplotlib, WeasyPrint) are imported lazily, so importing this
package and running ``octreport --help`` stay instant. Importing it sets ``TF_CPP_MIN_LOG_LEVEL``
and ``ABSL_MIN_LOG_LEVEL`` to 2 unless they are set, so that TensorFlow, imported after it, stays
as quiet as it is under the command line.
"""

from octreport._version import __version__
from octreport.logsetup import quiet_tensorflow

quiet_tensorflow()  # TensorFlow's C++ start-up chatter, unless the environment says otherwise (setdefault)

__all__ = ["__version__", "make_report"]


def __getattr__(name: str):
    if name == "make_report":
        from octreport.api import make_report

        return make_report
    raise AttributeError(f"module 'octreport' has no attribute {name!r}")
