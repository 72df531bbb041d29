"""octreport: batch reports for convolutional image classifiers (retinal OCT first).

    import octreport
    outcome = octreport.make_report(model, "path/to/OCT2017")   # an in-memory keras.Model or a file
    print(outcome.pdf_path)

Heavy libraries (TensorFlow, matplotlib, WeasyPrint) are imported lazily, so importing this
package and running ``octreport --help`` stay instant. Importing it sets ``TF_CPP_MIN_LOG_LEVEL``
and ``ABSL_MIN_LOG_LEVEL`` to 2 unless they are set. TensorFlow prints its start-up lines (CUDA
probing among them) whatever those say; ``make_report`` imports it with them kept off stderr, and
a script that imports keras itself calls ``octreport.import_tensorflow_quietly()`` first.
"""

from octreport._version import __version__
from octreport.logsetup import quiet_tensorflow

quiet_tensorflow()  # TensorFlow's C++ start-up chatter, unless the environment says otherwise (setdefault)

__all__ = ["__version__", "make_report", "import_tensorflow_quietly"]


def __getattr__(name: str):
    if name == "make_report":
        from octreport.api import make_report

        return make_report
    if name == "import_tensorflow_quietly":  # for scripts that build or load a model before make_report
        from octreport.logsetup import import_tensorflow_quietly

        return import_tensorflow_quietly
    raise AttributeError(f"module 'octreport' has no attribute {name!r}")
