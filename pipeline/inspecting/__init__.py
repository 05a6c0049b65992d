"""Inspection: the HTML conversion report and Netron for the intermediate models.

* :func:`render_report_html` / :func:`write_report_html` - a JSON report (export, lower or
  convert) as one self-contained HTML page;
* :func:`pipeline.inspecting.netron.serve` - open an .onnx/.mlpackage/.mlmodel in Netron on
  localhost; :func:`pipeline.inspecting.netron.resolve` finds a stage in an intermediates folder.
"""

from pipeline.inspecting.report_html import render as render_report_html
from pipeline.inspecting.report_html import write as write_report_html

__all__ = ["render_report_html", "write_report_html"]
