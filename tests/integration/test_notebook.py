"""nbclient executes sample.ipynb against the kernel under test; the outputs stored in the
notebook are what a user would see in Jupyter."""

import copy
import os
import unittest

import kernel_harness as H
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

SAMPLE = os.path.join(H.HERE, "sample.ipynb")


def run_notebook(nb, **kw):
    client = NotebookClient(nb, kernel_name=H.KERNEL_NAME, timeout=60,
                            startup_timeout=H.STARTUP_TIMEOUT,
                            resources={"metadata": {"path": H.TMP}}, **kw)
    return client.execute()


def streams(cell, name):
    return "".join(o["text"] for o in cell.outputs
                   if o["output_type"] == "stream" and o["name"] == name)


class SampleNotebookTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.original = nbformat.read(SAMPLE, as_version=4)
        cls.nb = copy.deepcopy(cls.original)
        cls.error = None
        try:
            run_notebook(cls.nb)
        except Exception as e:  # reported by every test, see cell()
            cls.error = e

    def cell(self, cell_id):
        if self.error is not None:
            self.fail("executing sample.ipynb failed: %s: %s" % (type(self.error).__name__,
                                                                 self.error))
        for c in self.nb.cells:
            if c.get("id") == cell_id:
                return c
        raise KeyError(cell_id)

    def output_types(self, cell):
        return [o["output_type"] for o in cell.outputs]

    def test_markdown_cells_untouched(self):
        self.cell("intro")
        for before, after in zip(self.original.cells, self.nb.cells):
            if before.cell_type == "markdown":
                self.assertEqual(before, after)

    def test_execution_counts_in_order(self):
        self.cell("intro")
        counts = [c.execution_count for c in self.nb.cells if c.cell_type == "code"]
        self.assertEqual(counts, list(range(1, len(counts) + 1)))

    def test_stdout_stream(self):
        c = self.cell("stdout")
        self.assertEqual(streams(c, "stdout"), "hello from cell\n")
        self.assertEqual(self.output_types(c), ["stream"])

    def test_execute_result_text_plain(self):
        c = self.cell("result")
        self.assertEqual(self.output_types(c), ["execute_result"])
        self.assertEqual(c.outputs[0]["data"]["text/plain"], "42")
        self.assertEqual(c.outputs[0]["execution_count"], c.execution_count)

    def test_stderr_stream(self):
        c = self.cell("stderr")
        self.assertEqual(streams(c, "stderr"), "a warning\n")
        self.assertEqual(streams(c, "stdout"), "")

    def test_display_data_html(self):
        c = self.cell("html")
        self.assertEqual(self.output_types(c), ["display_data"])
        self.assertEqual(c.outputs[0]["data"]["text/html"], "<b>bold</b>")
        self.assertIn("text/plain", c.outputs[0]["data"])

    def test_error_cell_with_raises_exception_tag(self):
        c = self.cell("error")
        self.assertEqual(self.output_types(c), ["error"])
        err = c.outputs[0]
        self.assertEqual(err["ename"], "ZeroDivisionError")
        self.assertIn("division by zero", err["evalue"])
        self.assertIsInstance(err["traceback"], list)
        self.assertTrue(err["traceback"])

    def test_state_carried_between_cells(self):
        c = self.cell("state")
        self.assertEqual(streams(c, "stdout"), "22\n")

    def test_fd_level_stdout_captured(self):
        c = self.cell("fdwrite")
        self.assertEqual(streams(c, "stdout"), "fd-level stdout\n")

    def test_c_extension_printf_captured(self):
        c = self.cell("cext")
        self.assertEqual(streams(c, "stdout"), "printf from C\n")


def small_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("a = 1", id="a"),
        nbformat.v4.new_code_cell("raise ValueError('nb-boom')", id="boom"),
        nbformat.v4.new_code_cell("b = a + 1\nb", id="after"),
    ])
    return nb


class NotebookErrorTests(unittest.TestCase):
    def test_error_without_tag_stops_execution(self):
        nb = small_notebook()
        with self.assertRaises(CellExecutionError) as cm:
            run_notebook(nb)
        self.assertIn("ValueError", str(cm.exception))
        self.assertIn("nb-boom", str(cm.exception))
        self.assertEqual(nb.cells[1].outputs[0]["output_type"], "error")
        self.assertEqual(nb.cells[1].outputs[0]["ename"], "ValueError")
        self.assertIsNone(nb.cells[2].execution_count)
        self.assertEqual(nb.cells[2].outputs, [])

    def test_allow_errors_runs_every_cell(self):
        nb = small_notebook()
        run_notebook(nb, allow_errors=True)
        self.assertEqual([c.execution_count for c in nb.cells], [1, 2, 3])
        self.assertEqual(nb.cells[1].outputs[0]["ename"], "ValueError")
        self.assertEqual(nb.cells[2].outputs[0]["data"]["text/plain"], "2")


if __name__ == "__main__":
    unittest.main(verbosity=2)
