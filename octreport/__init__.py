"""octreport: batch reports for convolutional image classifiers (retinal OCT first).

    import octreport
    outcome = octreport.make_report(model, "path/to/OCT2017")   # an in-memory keras.Model or a file
    print(outcome.pdf_path)

Heavy libraries (TensorFlow, matplotlib, WeasyPrint) are imported lazily, so importing this
package and running ``octreport --help`` stay instant.
"""

from octreport._version import __version__

__all__ = ["__version__", "make_report"]


def __getattr__(name: str):
    if name == "make_report":
        from octreport.api import make_report

        return make_report
    raise AttributeError(f"module 'octreport' has no attribute {name!r}")
